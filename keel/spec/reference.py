"""The reference of every spec key — type, default, meaning — generated from the pydantic models, so that
it cannot drift from what validation accepts. `run.py spec reference` prints it; docs/spec-reference.md
holds it (a test regenerates and compares). Pure pydantic and typing: no heavy import."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple, Type

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from keel.spec.base import alternatives, is_section

INTRODUCTION = """\
# Spec reference

Every key of a keel problem spec, section by section: its type, its default ("required" when it has
none) and what it means. Unknown keys are errors; a value outside its type or bounds is an error naming
the key. Generated from the pydantic models in `keel/spec/` by `python run.py spec reference` — do not
edit by hand: after changing a model, run `python run.py spec reference > docs/spec-reference.md`
(a test compares the two).

`a.b[]` is an item of the list `a.b`; `a.b.<name>` is the entry `name` of the mapping `a.b` (for
`data.features`, a column name). A section that comes in kinds (`data.source`) has one table per kind,
selected by its `kind` (or `type`) key.
"""

_NAMES = {bool: "true/false", int: "integer", float: "number", str: "text", Path: "path", Any: "any"}


def _type_text(annotation: Any) -> str:
    kinds = alternatives(annotation)
    nullable = type(None) in kinds
    kinds = [kind for kind in kinds if kind is not type(None)]
    sections = [kind for kind in kinds if is_section(kind)]
    others = [kind for kind in kinds if kind not in sections]
    if sections:
        text = "section (below)" if len(sections) == 1 else f"section, one of {len(sections)} kinds (below)"
        if others:  # e.g. a statement: a text, or a section of texts
            text = " or ".join(_type_text(kind) for kind in others) + " or " + text
    else:
        parts = []
        for kind in kinds:
            origin, args = typing.get_origin(kind), typing.get_args(kind)
            if origin is typing.Literal:
                parts.append("one of " + ", ".join(f"`{value}`" for value in args))
            elif origin in (list, tuple):
                parts.append("list of " + (_type_text(args[0]) if args else "values"))
            elif origin is dict:
                parts.append("mapping of name to " + (_type_text(args[1]) if args else "value"))
            else:
                parts.append(_NAMES.get(kind, getattr(kind, "__name__", str(kind))))
        text = " or ".join(parts)
    return text + (", or null" if nullable else "")


def _bounds(field: FieldInfo) -> str:
    words = []
    for item in field.metadata:
        for attribute, shown in (("gt", "> {}"), ("ge", ">= {}"), ("lt", "< {}"), ("le", "<= {}"),
                                 ("min_length", "length >= {}"), ("max_length", "length <= {}"),
                                 ("pattern", "pattern `{}`")):
            value = getattr(item, attribute, None)
            if value is not None:
                words.append(shown.format(value))
    return (", " + ", ".join(words)) if words else ""


def _default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "its defaults (below)"
    return f"`{json.dumps(value, default=str, ensure_ascii=False)}`"


def _first_paragraph(model: Type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__") or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _meaning(name: str, field: FieldInfo, model: Type[BaseModel], tagged: bool) -> str:
    if field.description:
        return field.description
    if tagged and name in ("kind", "type") and typing.get_origin(field.annotation) is typing.Literal:
        return "Selects this kind of section"
    sections = [kind for kind in _all_sections(field.annotation)]
    if len(sections) == 1:
        return _first_paragraph(sections[0])
    return ""


def _all_sections(annotation: Any) -> List[Type[BaseModel]]:
    """The sections a field holds, directly or as list items or mapping values."""
    found = []
    for kind in alternatives(annotation):
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if is_section(kind):
            found.append(kind)
        elif origin in (list, tuple) and args:
            found += _all_sections(args[0])
        elif origin is dict and args:
            found += _all_sections(args[1])
    return found


def _tag(model: Type[BaseModel]) -> str:
    """`kind csv, parquet` for a member of a union chosen by a Literal field."""
    for name in ("kind", "type"):
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return f"{name}: " + " | ".join(str(value) for value in typing.get_args(field.annotation))
    return ""


def _children(annotation: Any, path: str) -> Iterator[Tuple[str, Type[BaseModel], bool]]:
    """(path, section, one of several kinds) for the sections a field holds."""
    for kind in alternatives(annotation):
        origin, args = typing.get_origin(kind), typing.get_args(kind)
        if origin in (list, tuple) and args:
            yield from _children(args[0], path + "[]")
        elif origin is dict and args:
            yield from _children(args[1], path + ".<name>")
    sections = [kind for kind in alternatives(annotation) if is_section(kind)]
    for kind in sections:
        yield path, kind, len(sections) > 1


def sections(root: Optional[Type[BaseModel]] = None) -> List[Tuple[str, Type[BaseModel], str]]:
    """Every section of the spec as (key path, model, tag), parents before their children."""
    if root is None:
        from keel.spec.models import Spec

        root = Spec
    found: List[Tuple[str, Type[BaseModel], str]] = []

    def visit(path: str, model: Type[BaseModel], tagged: bool) -> None:
        found.append((path, model, _tag(model) if tagged else ""))
        for name, field in model.model_fields.items():
            for child_path, child, several in _children(field.annotation, f"{path}.{name}" if path else name):
                visit(child_path, child, several)

    visit("", root, False)
    return found


def spec_reference(root: Optional[Type[BaseModel]] = None) -> str:
    """The Markdown reference: one table per section (per kind for sections that come in kinds)."""
    parts = [INTRODUCTION]
    for path, model, tag in sections(root):
        title = f"`{path}`" if path else "The top level"
        parts.append(f"\n## {title}" + (f" — {tag}" if tag else "") + "\n")
        about = _first_paragraph(model)
        if about:
            parts.append(f"\n{about}\n")
        parts.append("\n| key | type | default | meaning |\n|---|---|---|---|\n")
        for name, field in model.model_fields.items():
            parts.append(f"| `{name}` | {_cell(_type_text(field.annotation) + _bounds(field))} | "
                         f"{_cell(_default_text(field))} | {_cell(_meaning(name, field, model, bool(tag)))} |\n")
    return "".join(parts)
