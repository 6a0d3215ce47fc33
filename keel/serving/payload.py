"""Request payloads validated against the spec: the same contract the training data met.

Built from the spec with pydantic: JSON numbers only for numeric features (no strings, no NaN or
Infinity), the spec's categories only, ranges enforced, no extra fields. Errors are field-level. A
sensitive attribute is a field only while a version deciding with it is served."""

from __future__ import annotations

import math
from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError,
                      create_model)

from keel.serving.prediction_log import MAX_ENTITY_ID_LENGTH
from keel.spec.models import CategoricalFeature, DataSpec

MAX_BATCH_ROWS = 10_000


def _whole(value: float) -> float:
    if value != int(value):
        raise ValueError("expected a whole number")
    return value


def _bounded_entity_id(value):
    """The prediction log stores entity ids as text of bounded width (a huge integer counts too)."""
    if value is not None and len(str(value)) > MAX_ENTITY_ID_LENGTH:
        raise ValueError(f"at most {MAX_ENTITY_ID_LENGTH} characters")
    return value


def _field(feature) -> Tuple[Any, Any]:
    if isinstance(feature, CategoricalFeature):
        kind: Any = Literal[tuple(feature.categories)]  # type: ignore[misc]
    else:
        base = StrictFloat  # strict: JSON numbers only, never strings
        if feature.type == "integer":
            base = Annotated[StrictFloat, AfterValidator(_whole)]
        bounds = {k: v for k, v in (("ge", feature.min), ("le", feature.max)) if v is not None}
        kind = Annotated[base, Field(**bounds)]
    if feature.nullable:  # may be null or left out
        return Optional[kind], None
    return kind, ...


def _decision_attribute_field(data: DataSpec, name: str) -> Tuple[Any, Any]:
    """A sensitive attribute a mitigated version decides with: typed as the spec declares it, optional
    (a record without it is decided at that version's own threshold, as a group it cannot judge)."""
    if name in data.features:
        kind, _ = _field(data.features[name])
    else:
        kind = Literal[tuple(data.sensitive_attributes[name].categories)]  # type: ignore[misc]
    return Optional[kind], Field(None, description="sensitive attribute: used at decision time by a mitigated "
                                                   "version only; logged, never a feature of another version")


def record_model(data: DataSpec, decision_attributes: Sequence[str] = ()) -> type[BaseModel]:
    """A pydantic model of one scoring request: the model's features plus an optional entity id, and
    the sensitive attributes a served (mitigated) version decides with, only when one is served."""
    fields: Dict[str, Any] = {name: _field(data.features[name]) for name in data.model_features}
    for name in decision_attributes:
        if name not in fields:
            fields[name] = _decision_attribute_field(data, name)
    fields["entity_id"] = (Annotated[Optional[Union[StrictInt, str]], AfterValidator(_bounded_entity_id)],
                           Field(None, description="who is scored; routes by it"))
    config = ConfigDict(extra="forbid", allow_inf_nan=False)
    return create_model("ScoringRecord", __config__=config, **fields)


def _json_safe(value: Any) -> Any:
    """What was found, in a form any JSON encoder accepts (NaN and Infinity become text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (int, float, str, bool, type(None))):
        return value if not isinstance(value, str) else value[:80]
    return str(value)[:80]


def field_errors(error: ValidationError, prefix: str = "") -> List[dict]:
    """pydantic's errors as [{field, problem, found}], for a 4xx body."""
    errors = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"] if not str(part).startswith(("function-", "constrained-")))
        problem = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
        errors.append({"field": f"{prefix}{location}", "problem": problem,
                       "found": _json_safe(item.get("input") if item["type"] != "missing" else None)})
    return errors


class PayloadError(ValueError):
    def __init__(self, status: int, errors: List[dict]):
        super().__init__(errors[0]["problem"] if errors else "bad request")
        self.status = status
        self.errors = errors


def parse_records(body: Any, model: type[BaseModel], max_rows: int = MAX_BATCH_ROWS) -> List[BaseModel]:
    """One record (a JSON object) or a batch (`{"records": [...]}` or a JSON list) -> validated records."""
    if isinstance(body, dict) and set(body) == {"records"}:
        body = body["records"]
    rows = body if isinstance(body, list) else [body]
    if not rows:
        raise PayloadError(422, [{"field": "records", "problem": "no records given", "found": None}])
    if len(rows) > max_rows:
        raise PayloadError(413, [{"field": "records", "problem": f"at most {max_rows} records per request",
                                  "found": len(rows)}])
    parsed, errors = [], []
    for index, row in enumerate(rows):
        prefix = f"records[{index}]." if isinstance(body, list) else ""
        if not isinstance(row, dict):
            errors.append({"field": prefix.rstrip(".") or "body", "problem": "expected a JSON object",
                           "found": type(row).__name__})
            continue
        try:
            parsed.append(model.model_validate(row))
        except ValidationError as error:
            errors.extend(field_errors(error, prefix))
    if errors:
        raise PayloadError(422, errors)
    return parsed
