"""Read a spec file, apply command-line overrides, validate, and explain any error plainly."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import typing
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Type

import yaml
from pydantic import BaseModel, ValidationError

from keel.spec.base import DECLARED, alternatives, is_section
from keel.spec.models import Spec


class SpecError(ValueError):
    """A spec that cannot be used; the message names the file, the key, the expectation and the value."""


_KEY_PART = re.compile(r'"([^"]+)"|([^."]+)')


class QuotedName(str):
    """A key part given in double quotes: a name as it is (dots and brackets included), never an index."""


def _key_parts(key: str) -> Optional[List[str]]:
    """`a.b.c` -> ["a", "b", "c"]; a part in double quotes may hold dots (`features."Sepal.Length"`, a
    column name as R writes them). None when the key is not such a path."""
    parts, position = [], 0
    while True:
        match = _KEY_PART.match(key, position)
        if match is None:
            return None
        parts.append(QuotedName(match.group(1)) if match.group(1) is not None else match.group(2))
        position = match.end()
        if position == len(key):
            return parts
        if key[position] != ".":
            return None
        position += 1


SET_FORM = 'KEY.PATH=VALUE, e.g. split.seed=3 (a name holding dots in double quotes: data.features."Sepal.Length".min=0)'


def parse_override(text: str, flag: str = "--set", form: str = SET_FORM) -> Tuple[List[str], Any]:
    """`a.b.c=value` -> (["a", "b", "c"], value), the value read as a YAML scalar or list. `flag` and
    `form` name the option and its expected form in messages."""
    key, sep, raw = text.partition("=")
    parts = _key_parts(key.strip()) if sep else None
    if not parts:
        raise SpecError(f"{flag} {text!r}: expected {form}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise SpecError(f"{flag} {text!r}: the value is not valid YAML ({error.problem})") from None
    return parts, value


_INDEXED = re.compile(r"^(.+)\[([^\[\]]+)\]$")


class ByMetric(str):
    """A list item named by its `metric` (`gates[roc_auc]`): unlike a position, it cannot silently
    point at another gate when the list is reordered."""


def _steps(path: List[str]) -> List[Any]:
    """`["gates[3]", "max"]` -> `["gates", 3, "max"]`; `["gates[roc_auc]", "min"]` -> `["gates", ByMetric("roc_auc"), "min"]`."""
    steps: List[Any] = []
    for part in path:
        match = None if isinstance(part, QuotedName) else _INDEXED.match(part)
        if not match:
            steps.append(part)
        else:
            inside = match.group(2)
            steps += [match.group(1), int(inside) if inside.isdigit() else ByMetric(inside)]
    return steps


def _select(node: Any, metric: "ByMetric", text: str, where: str) -> int:
    """The position of the one item of list `node` whose `metric` is `metric`."""
    if not isinstance(node, list):
        raise SpecError(f"--set {text!r}: `{where}` is not a list")
    found = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("metric") == metric]
    if len(found) != 1:
        named = sorted({str(item.get("metric")) for item in node if isinstance(item, dict)})
        problem = "no item" if not found else f"{len(found)} items (give the position instead, e.g. [{found[0]}])"
        raise SpecError(f"--set {text!r}: `{where}` has {problem} with metric {metric!r}; it has: {', '.join(named)}")
    return found[0]


def apply_overrides(raw: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of `raw` with each `key.path=value` (or `list[index].key=value`) set.

    Unknown keys are set all the same, so that validation names them."""
    result = json.loads(json.dumps(raw))
    for text in overrides:
        path, value = parse_override(text)
        steps = _steps(path)
        node: Any = result
        for depth, step in enumerate(steps[:-1]):
            where = ".".join(map(str, steps[: depth + 1]))
            if isinstance(step, ByMetric):
                step = steps[depth] = _select(node, step, text, ".".join(map(str, steps[:depth])))
            if isinstance(step, int):
                if not isinstance(node, list) or step >= len(node):
                    raise SpecError(f"--set {text!r}: `{where}` has no item {step}")
                node = node[step]
                continue
            if isinstance(node, list):
                raise SpecError(_list_addressed_by_name(text, steps[:depth], step))
            if not isinstance(node, dict):
                raise SpecError(f"--set {text!r}: `{where}` is a value, not a section")
            child = node.get(step)
            if child is None:
                child = [] if isinstance(steps[depth + 1], int) else {}
                node[step] = child
            elif not isinstance(child, (dict, list)):
                raise SpecError(f"--set {text!r}: `{where}` is a value, not a section")
            node = child
        last = steps[-1]
        if isinstance(last, ByMetric):
            last = _select(node, last, text, ".".join(map(str, steps[:-1])))
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise SpecError(f"--set {text!r}: no item {last} to set")
        elif isinstance(node, list):
            raise SpecError(_list_addressed_by_name(text, steps[:-1], last))
        elif not isinstance(node, dict):
            raise SpecError(f"--set {text!r}: cannot set `{last}` inside a value")
        node[last] = value
    return result


def _list_addressed_by_name(text: str, list_steps: list, name: str) -> str:
    """`evaluation.gates.roc_auc.min=0.9`: a list's item named as if it were a key."""
    where = ".".join(map(str, list_steps))
    return (f"--set {text!r}: `{where}` is a list: address an item by its position, `{where}[0]`, or a gate by "
            f"its metric, `{where}[{name}]`")


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _key_path(raw: Any, location: Sequence[Any]) -> str:
    """The user's key path: pydantic's union tags (e.g. `generator`) are not keys in the file."""
    parts, node = [], raw
    for position, item in enumerate(location):
        last = position == len(location) - 1
        if isinstance(node, dict) and item in node:
            parts.append(str(item))
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            parts.append(f"[{item}]")
            node = node[item]
        elif isinstance(node, dict) and item in (node.get("kind"), node.get("type")):
            continue  # a union tag
        elif last:
            parts.append(str(item))  # a missing key: name it all the same
    return ".".join(parts).replace(".[", "[") or "(top level)"


def _problem(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "expected no such key (misspelt, or in the wrong section)"
    if kind == "missing":
        return "expected a value (this key is required)"
    if kind == "union_tag_invalid":
        ctx = error["ctx"]
        return f"{ctx['discriminator']} must be one of {', '.join(_tags(ctx['expected_tags']))}"
    if kind == "union_tag_not_found":
        return f"expected a {error['ctx']['discriminator']} key"
    if kind == "literal_error":
        return f"expected one of {', '.join(_tags(error['ctx']['expected']))}"
    message = error["msg"]
    if message.startswith("Value error, "):
        return message[len("Value error, "):]
    return "expected " + message[0].lower() + message[1:]


def _tags(expected: str) -> List[str]:
    """pydantic's "'a', 'b' or 'c'" as ["a", "b", "c"]."""
    return re.findall(r"'([^']*)'", expected)


def _tag_values(model: Type[BaseModel]) -> List[str]:
    """The values of a section's Literal-typed fields: the tags that select it in a union (`kind: csv`)."""
    return [str(value) for field in model.model_fields.values()
            if typing.get_origin(field.annotation) is typing.Literal for value in typing.get_args(field.annotation)]


def _annotations_at(root: Type[BaseModel], location: Sequence[Any]) -> List[Any]:
    """The types the value at a pydantic error location may have: fields, list items, mapping values and
    union members chosen by their tag (pydantic puts the tag in the location)."""
    candidates: List[Any] = [root]
    for item in location:
        following: List[Any] = []
        for annotation in candidates:
            for kind in alternatives(annotation):
                origin = typing.get_origin(kind)
                if is_section(kind):
                    if isinstance(item, str) and item in kind.model_fields:
                        following.append(kind.model_fields[item].annotation)
                    elif isinstance(item, str) and item in _tag_values(kind):
                        following.append(kind)  # a union tag: the member it selects
                elif origin is dict and typing.get_args(kind):
                    following.append(typing.get_args(kind)[1])
                elif origin in (list, tuple) and isinstance(item, int) and typing.get_args(kind):
                    following.append(typing.get_args(kind)[0])
        candidates = following
    return candidates


def _nearest_first(word: str, choices: Sequence[str]) -> List[str]:
    return sorted(choices, key=lambda choice: -difflib.SequenceMatcher(None, word.lower(), choice.lower()).ratio())


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _hint(root: Type[BaseModel], raw: dict, item: dict) -> str:
    """What to write instead: the keys allowed where an unknown key is (nearest match first), the tag
    nearest a wrong one."""
    kind, location = item["type"], item["loc"]
    if kind == "extra_forbidden" and location:
        sections = [k for a in _annotations_at(root, location[:-1]) for k in alternatives(a) if is_section(k)]
        if len(sections) == 1:
            allowed = list(sections[0].model_fields)
            where = f"in {_key_path(raw, location[:-1])}" if len(location) > 1 else "at the top level"
            return (f" ({_did_you_mean(str(location[-1]), allowed)}keys allowed {where}: "
                    f"{', '.join(_nearest_first(str(location[-1]), allowed))})")
    if kind == "union_tag_invalid":
        suggestion = _did_you_mean(str(item["ctx"]["tag"]), _tags(item["ctx"]["expected_tags"])).strip()
        return f" ({suggestion})" if suggestion else ""
    if kind == "union_tag_not_found":
        name = item["ctx"]["discriminator"].strip("'")
        tags = [tag for a in _annotations_at(root, location) for k in alternatives(a) if is_section(k)
                for tag in _tag_values(k)]
        given = item.get("input") if isinstance(item.get("input"), dict) else {}
        misspelt = difflib.get_close_matches(name, [str(key) for key in given], n=1, cutoff=0.6)
        return ((f" (give {name}: one of {', '.join(dict.fromkeys(tags))}" if tags else f" (give {name}")
                + (f"; {misspelt[0]!r} looks like a misspelling of {name!r}" if misspelt else "") + ")")
    if kind == "literal_error" and isinstance(item.get("input"), str):
        suggestion = _did_you_mean(item["input"], _tags(item["ctx"]["expected"])).strip()
        return f" ({suggestion})" if suggestion else ""
    return ""


def format_validation_error(source: str, raw: dict, error: ValidationError,
                            root: Optional[Type[BaseModel]] = None) -> str:
    """One line per problem: the key path in the file, what was expected, what was found, and a hint
    (the keys allowed at that level, the nearest spelling). `root`: the model `raw` was validated as
    (default: the problem spec)."""
    root = root or Spec
    lines = [f"{source}: the spec is not valid ({error.error_count()} problem(s))"]
    for item in error.errors():
        key = _key_path(raw, item["loc"])
        found = "nothing" if item["type"] == "missing" else _shown(item.get("input"))
        if not item["loc"] and item["type"] == "value_error":
            # A check across sections names its keys itself; the input would be the whole spec.
            lines.append(f"  - {key}: {_problem(item)}{_hint(root, raw, item)}")
            continue
        if item["type"] == "union_tag_invalid":
            found = repr(item["ctx"]["tag"])
        lines.append(f"  - {key}: {_problem(item)}; found {found}{_hint(root, raw, item)}")
    return "\n".join(lines)


def validate_spec(raw: Any, source: str = "<spec>", declared: bool = False) -> Spec:
    """`declared`: the spec as its author gives it now (see keel.spec.base.DECLARED), not one read back
    from a record."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a YAML mapping with sections problem, data, ...; "
                        f"found {type(raw).__name__}")
    try:
        return Spec.model_validate(raw, context=DECLARED if declared else None)
    except ValidationError as error:
        raise SpecError(format_validation_error(source, raw, error)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping: PyYAML keeps the last silently, so a
    second `evaluation:` section at the end of a spec dropped the first one's gates."""

    def construct_mapping(self, node, deep=False):
        first_seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` merges on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first_seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if earlier is not key_node.start_mark:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice (first at line {earlier.line + 1}); YAML would keep "
                                "only the last", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_yaml_file(path: Path, error: Type[Exception], missing: str) -> Any:
    """A YAML file's content. A missing or unreadable file, or bad YAML, raises `error` naming the file
    (and the line); `missing` says what the file should have been."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except (OSError, UnicodeDecodeError) as problem:
        raise error(f"{path}: cannot be read ({problem})") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(problem, 'problem', problem)}") from None


def read_spec_file(path: Path) -> dict:
    raw = read_yaml_file(path, SpecError, "no such spec file")
    return raw if raw is not None else {}


def load_spec(path: Path, overrides: Iterable[str] = ()) -> Spec:
    """Read, override and validate a spec; raise SpecError with a readable message."""
    overrides = list(overrides)
    raw = read_spec_file(path)
    if overrides and isinstance(raw, dict):
        raw = apply_overrides(raw, overrides)
    source = str(path) + (" (with --set overrides)" if overrides else "")
    return validate_spec(raw, source, declared=True)


def spec_hash(spec: Spec) -> str:
    """A stable hash of the validated spec (defaults included), recorded with every model."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
