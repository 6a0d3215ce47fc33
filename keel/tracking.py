"""Query recorded training runs: `--where 'roc_auc>0.85'` filters on metrics and parameters."""

from __future__ import annotations

import operator
import re
from typing import Callable, List, Tuple

from keel import registration as keys

_OPERATORS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
              "=": operator.eq, ">": operator.gt, "<": operator.lt}
# Linear: the value is matched greedily and stripped afterwards (a lazy value before `\s*$` backtracked
# quadratically over inner spaces: 7 s on a 50,000-character value).
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|!=|==|=|>|<)\s*([^<>=!\s].*)$", re.DOTALL)
MAX_CONDITION_CHARS = 1000


class QueryError(ValueError):
    pass


Condition = Tuple[str, Callable, object, str]


def parse_where(text: str) -> Condition:
    """`roc_auc>0.85`, `test.f1>=0.4`, `hyperparameters.num_leaves=31`, `model_family=lightgbm`."""
    if len(text) > MAX_CONDITION_CHARS:
        raise QueryError(f"--where: a condition of {len(text)} characters; at most {MAX_CONDITION_CHARS}")
    match = _CONDITION.match(text)
    if not match:
        raise QueryError(f"--where {text!r}: expected FIELD OP VALUE with OP one of "
                         f"{', '.join(_OPERATORS)} (e.g. 'roc_auc>0.85')")
    field, op, raw = match.groups()
    raw = raw.strip()
    try:
        value: object = float(raw)
    except ValueError:
        value = raw.strip("'\"")
    return field, _OPERATORS[op], value, text


def field_value(record: dict, field: str):
    """Bare metric names mean validation metrics (what selection used); `test.X` the test split."""
    if "." not in field and field in record.get(keys.VALIDATION_METRICS, {}):
        return record[keys.VALIDATION_METRICS][field]
    prefix, _, rest = field.partition(".")
    aliases = {"test": keys.TEST_METRICS, "validation": keys.VALIDATION_METRICS, "params": keys.HYPERPARAMETERS}
    node = record.get(aliases.get(prefix, prefix)) if rest else record.get(field)
    for part in rest.split(".") if rest else []:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def matches(record: dict, conditions: List[Condition]) -> bool:
    for field, compare, expected, _ in conditions:
        actual = field_value(record, field)
        if actual is None:
            return False
        try:
            if isinstance(expected, float):
                actual = float(actual)
            else:
                actual = str(actual)
            if not compare(actual, expected):
                return False
        except (TypeError, ValueError):
            return False
    return True


def unknown_fields(records: List[dict], conditions: List[Condition]) -> List[str]:
    """The fields of `conditions` that no record holds (a misspelt `rocauc` matched nothing and said only
    "no training runs match"); none when there is no record to tell by."""
    if not records:
        return []
    return [field for field, *_ in conditions if all(field_value(record, field) is None for record in records)]


def known_fields(records: List[dict]) -> List[str]:
    """What `--where` can name in these records: bare validation metrics, test.X, params.X, and plain keys."""
    names = set()
    for record in records:
        names |= set(record.get(keys.VALIDATION_METRICS, {}))
        names |= {f"test.{name}" for name in record.get(keys.TEST_METRICS, {})}
        names |= {f"params.{name}" for name in record.get(keys.HYPERPARAMETERS, {})}
        names |= {name for name, value in record.items() if isinstance(value, (str, int, float))}
    return sorted(names)
