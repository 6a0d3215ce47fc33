"""The base every spec section derives from (unknown keys are errors, values are frozen), and how
the spec's annotations are read by the error messages, override checks and the generated reference."""

import typing
from typing import Any, List

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Annotated


# Validation context of a spec as its author declares it now (a spec file given to a command, with its
# --set overrides), as opposed to one recorded earlier and read back (a deployment bundle, a training
# run's spec, a pipeline step's parameter). Checks of where keel may write on this machine apply to the
# former only: a bundle or a run recorded before such a check must still load.
# A random seed as NumPy, scikit-learn and LightGBM take it: a negative one passed validation and crashed
# `check` with a traceback.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="a random seed, 0 to 2^32 - 1")]

DECLARED = {"declared": True}


def is_declared(info: Any) -> bool:
    return bool(info.context and info.context.get("declared"))


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def alternatives(annotation: Any) -> List[Any]:
    """An annotation without Annotated/Optional/Union wrappers: the types a value may have."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return alternatives(typing.get_args(annotation)[0])
    if origin is typing.Union or type(annotation).__name__ == "UnionType":
        return [kind for member in typing.get_args(annotation) for kind in alternatives(member)]
    return [annotation]


def is_section(kind: Any) -> bool:
    """A spec section (a model with keys of its own), as opposed to a value."""
    return isinstance(kind, type) and issubclass(kind, BaseModel)
