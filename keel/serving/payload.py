"""Request payloads validated against the spec: the same contract the training data met.

Built from the spec with pydantic: JSON numbers only for numeric features (no strings, no NaN or
Infinity), the spec's categories only, ranges enforced, no extra fields. Errors are field-level. A
sensitive attribute is a field only while a version deciding with it is served."""

from __future__ import annotations

import math
from typing import Annotated, Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

from pydantic import (AfterValidator, AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, StrictFloat,
                      StrictInt, StrictStr, ValidationError, WithJsonSchema, create_model)
from pydantic_core import PydanticCustomError

from keel.reports.values import LISTED, listed
from keel.serving.prediction_log import MAX_ENTITY_ID_LENGTH
from keel.spec.data import CategoricalFeature, DataSpec

MAX_BATCH_ROWS = 10_000
NOT_NULLABLE = "a value is required: this feature is not nullable"
# JSON may spell a lone UTF-16 surrogate ("\\ud800"): Python keeps it in a string, but it is no
# Unicode text, so neither the prediction log nor a JSON answer could hold it.
LONE_SURROGATE = ("not valid Unicode text: it holds a lone UTF-16 surrogate (\\ud800 to \\udfff without its "
                  "pair); send the character itself or its full surrogate pair")


def _whole(value: float) -> float:
    if value != int(value):
        raise ValueError("expected a whole number")
    return value


def _bounded_entity_id(value):
    """The prediction log stores entity ids as text of bounded width (a huge integer counts too), and
    only text (no lone surrogate)."""
    if value is not None and len(str(value)) > MAX_ENTITY_ID_LENGTH:
        raise ValueError(f"at most {MAX_ENTITY_ID_LENGTH} characters")
    if isinstance(value, str) and not _is_unicode(value):
        raise ValueError(LONE_SURROGATE)
    return value


def _is_unicode(text: str) -> bool:
    """Whether the text encodes as UTF-8 (Python strings may hold lone surrogates; text does not)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """Text from the request as an answer may echo it: a lone surrogate escaped (\\ud800), since no
    JSON answer (UTF-8) could carry it."""
    return text if _is_unicode(text) else text.encode("utf-8", "backslashreplace").decode("utf-8")


def _booleans_as_spelt(categories: Sequence[str]) -> Optional[BeforeValidator]:
    """A JSON true/false for a feature whose two categories spell a boolean (a True/False column read from
    a file becomes the categories "True" and "False"): the category as spelt. Nothing else is coerced."""
    spelt = {category.lower(): category for category in categories}
    if sorted(spelt) != ["false", "true"]:
        return None
    return BeforeValidator(lambda value: spelt[str(value).lower()] if isinstance(value, bool) else value)


def _integers_as_spelt(categories: Sequence[str]) -> Optional[BeforeValidator]:
    """A JSON integer whose decimal text is one of the categories (an integer-coded category such as a
    merchant code 5411, read from a file as the text "5411", as batch scoring reads it): that category.
    Not a boolean, a float (5411.0) or a differently spelt number (7 for "007"): those stay refused."""
    spelt = {category for category in categories if category.lstrip("-").isdigit() and str(int(category)) == category}
    if not spelt:
        return None

    def as_category(value):
        if isinstance(value, int) and not isinstance(value, bool) and str(value) in spelt:
            return str(value)
        return value

    return BeforeValidator(as_category)


def _one_of(categories: Sequence[str]) -> Any:
    """The categories as a type: a Literal, whose errors name each one, up to LISTED of them; past that, text
    checked against them, whose error names the first ones and how many (the schema still lists all)."""
    if len(categories) <= LISTED:
        return Literal[tuple(categories)]  # type: ignore[misc]
    allowed = frozenset(categories)
    message = f"Input should be one of the spec's categories: {listed(categories)}"

    def known(value: str) -> str:
        if value not in allowed:
            raise PydanticCustomError("literal_error", message)
        return value

    return Annotated[StrictStr, AfterValidator(known), WithJsonSchema({"type": "string", "enum": list(categories)})]


def _field(feature) -> Tuple[Any, Any]:
    if isinstance(feature, CategoricalFeature):
        kind: Any = _one_of(feature.categories)
        for spelt in (_booleans_as_spelt(feature.categories), _integers_as_spelt(feature.categories)):
            if spelt is not None:
                kind = Annotated[kind, spelt]
    else:
        base = StrictFloat  # strict: JSON numbers only, never strings
        if feature.type == "integer":
            base = Annotated[StrictFloat, AfterValidator(_whole)]
        low, high = feature.bounds
        kind = Annotated[base, Field(ge=low, le=high)]
    if feature.nullable:  # may be null or left out
        return Optional[kind], None
    return kind, ...


def _attribute_kind(data: DataSpec, name: str) -> Any:
    """A sensitive attribute's type as the spec declares it (a feature's, or its categories)."""
    if name in data.features:
        return _field(data.features[name])[0]
    return Literal[tuple(data.sensitive_attributes[name].categories)]  # type: ignore[misc]


def _decision_attribute_field(data: DataSpec, name: str) -> Tuple[Any, Any]:
    """A sensitive attribute a mitigated version decides with: typed as the spec declares it, optional
    (a record without it is decided at that version's own threshold, as a group it cannot judge)."""
    return Optional[_attribute_kind(data, name)], Field(
        None, description="sensitive attribute: used at decision time by a mitigated version only; logged, never a "
                          "feature of another version")


def _logged_attribute_field(data: DataSpec, name: str) -> Tuple[Any, Any]:
    """A sensitive attribute sent beside the features for fairness monitoring (monitoring.fairness)."""
    return Optional[_attribute_kind(data, name)], Field(
        None, description="sensitive attribute: logged for fairness monitoring, never given to the model")


def record_model(data: DataSpec, decision_attributes: Sequence[str] = (),
                 logged_attributes: Sequence[str] = ()) -> type[BaseModel]:
    """A pydantic model of one scoring request: the model's features plus an optional entity id, the
    sensitive attributes a served (mitigated) version decides with, only when one is served, and the
    sensitive attributes sent for fairness monitoring (`logged_attributes`: optional, logged, never
    given to a model)."""
    fields: Dict[str, Any] = {name: _field(data.features[name]) for name in data.model_features}
    for name in decision_attributes:
        if name not in fields:
            fields[name] = _decision_attribute_field(data, name)
    for name in logged_attributes:
        if name not in fields:
            fields[name] = _logged_attribute_field(data, name)
    # The entity id may also come under the spec's id column, as the record stands in the data.
    names = ["entity_id"] + [c for c in [data.id_column] if c and c != "entity_id" and c not in fields]
    fields["entity_id"] = (Annotated[Optional[Union[StrictInt, str]], AfterValidator(_bounded_entity_id)],
                           Field(None, validation_alias=AliasChoices(*names), description="who is scored; routes by it"))
    config = ConfigDict(extra="forbid", allow_inf_nan=False)
    return create_model("ScoringRecord", __config__=config, **fields)


def _json_safe(value: Any) -> Any:
    """What was found, in a form any JSON encoder accepts (NaN and Infinity become text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (int, float, str, bool, type(None))):
        return value if not isinstance(value, str) else _printable(value[:80])
    return _printable(str(value)[:80])


def problem_text(item: dict) -> str:
    """What is wrong, in words, for one of pydantic's errors. A null where a value is required is said so
    (pydantic would answer with the type expected: "a valid number", or every category); worded here, on
    the error path only, not by a validator run on every field of every request."""
    if item["type"] != "missing" and "input" in item and item["input"] is None:
        return NOT_NULLABLE
    # pydantic judges a record with a lone surrogate in a field name as a whole (no location).
    return {"extra_forbidden": "unknown field", "string_unicode": LONE_SURROGATE}.get(item["type"], item["msg"])


def field_errors(error: ValidationError, prefix: str = "") -> List[dict]:
    """pydantic's errors as [{field, problem, found}], for a 4xx body."""
    errors = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"] if not str(part).startswith(("function-", "constrained-")))
        problem = problem_text(item)
        errors.append({"field": _printable(f"{prefix}{location}".rstrip(".") or "body"), "problem": _printable(problem),
                       "found": _json_safe(item.get("input") if item["type"] != "missing" else None)})
    return errors


class PayloadError(ValueError):
    def __init__(self, status: int, errors: List[dict]):
        super().__init__(errors[0]["problem"] if errors else "bad request")
        self.status = status
        self.errors = errors


def entity_keys(model: type[BaseModel]) -> Tuple[str, ...]:
    """The names a record may give its entity id under: `entity_id`, then the spec's id column."""
    alias = model.model_fields["entity_id"].validation_alias
    return tuple(c for c in alias.choices if isinstance(c, str)) if isinstance(alias, AliasChoices) else ("entity_id",)


def _batch_rows(body: dict, keys: Tuple[str, ...]) -> Any:
    """The records of `{"records": [...]}`; an entity id beside them names the entity of a single record.
    Anything else beside them is one clear error, not each record field reported missing."""
    others = sorted(set(body) - {"records", *keys})
    if others:
        raise PayloadError(422, [{"field": _printable(name), "found": _json_safe(body[name]),
                                  "problem": "unknown field beside records: a batch is {\"records\": [...]}, and "
                                             "each record's fields belong inside it"} for name in others])
    given = [k for k in keys if k in body]
    records = body["records"]
    if not given:
        return records
    if len(given) > 1:
        raise PayloadError(422, [{"field": given[1], "found": _json_safe(body[given[1]]),
                                  "problem": f"the entity id is given twice, as {given[0]} and as {given[1]}: give it once"}])
    key = given[0]
    if not isinstance(records, list) or len(records) != 1:
        raise PayloadError(422, [{"field": key, "found": _json_safe(body[key]),
                                  "problem": "an entity id beside records names the entity of one record; with several "
                                             "records give each its own inside it (records[i].entity_id)"}])
    record = records[0]
    if isinstance(record, dict):
        own = [k for k in keys if k in record]
        if own and record[own[0]] != body[key]:
            raise PayloadError(422, [{"field": f"records[0].{own[0]}", "found": _json_safe(record[own[0]]),
                                      "problem": f"the record names another entity than {key} beside it: give it once"}])
        record = {**{k: v for k, v in record.items() if k not in keys}, "entity_id": body[key]}
    return [record]


def parse_records(body: Any, model: type[BaseModel], max_rows: int = MAX_BATCH_ROWS) -> List[BaseModel]:
    """One record (a JSON object) or a batch (`{"records": [...]}` or a JSON list) -> validated records."""
    keys = entity_keys(model)
    if isinstance(body, dict) and "records" in body and "records" not in model.model_fields:
        body = _batch_rows(body, keys)
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
        twice = [k for k in keys[1:] if k in row and "entity_id" in row and row[k] != row["entity_id"]]
        if twice:
            errors.append({"field": f"{prefix}{twice[0]}", "found": _json_safe(row[twice[0]]),
                           "problem": f"the entity id is given twice, as entity_id and as {twice[0]}, with different "
                                      "values: give it once"})
            continue
        if "entity_id" in row and any(k in row for k in keys[1:]):
            row = {k: v for k, v in row.items() if k not in keys[1:]}  # the same id twice: once is enough
        try:
            parsed.append(model.model_validate(row))
        except ValidationError as error:
            errors.extend(field_errors(error, prefix))
    if errors:
        raise PayloadError(422, errors)
    return parsed
