"""Read a stack file: YAML, `${ENV_VAR}` / `${ENV_VAR:-default}` substitution, validation with errors
that name the file, the key, what was expected and what was found."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional

from pydantic import ValidationError

from keel.provenance import PROJECT_ROOT
from keel.spec.load import _key_path, _problem, _shown, read_yaml_file  # the spec's wording, shared
from keel.stacks.models import COMPONENT_TYPES, StackFile
from keel.stacks.redaction import redact_url_credentials

STACKS_DIR = PROJECT_ROOT / "stacks"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class StackFileError(ValueError):
    """A stack file that cannot be used; the message names the file and the key (a URL in it never
    shows its credentials)."""

    def __init__(self, message: str):
        super().__init__(redact_url_credentials(message))


def stack_file_for(name_or_path: str) -> Optional[Path]:
    """`remote` -> stacks/remote.yaml; a path to a .yaml file is itself. None if there is no such file."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        return candidate if candidate.is_file() else None
    for suffix in (".yaml", ".yml"):
        if (STACKS_DIR / f"{name_or_path}{suffix}").is_file():
            return STACKS_DIR / f"{name_or_path}{suffix}"
    return None


def substitute_environment(raw: Any, environ: Mapping[str, str], source: str, where: str = "") -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string; a string then starting with `~/` is
    under the user's home. An unset variable without a default is an error naming the key."""
    if isinstance(raw, dict):
        return {key: substitute_environment(value, environ, source, f"{where}.{key}" if where else str(key))
                for key, value in raw.items()}
    if isinstance(raw, list):
        return [substitute_environment(value, environ, source, f"{where}[{i}]") for i, value in enumerate(raw)]
    if not isinstance(raw, str):
        return raw

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise StackFileError(f"{source}: {where or '(top level)'}: expected the environment variable "
                             f"{name} to be set (or a default: ${{{name}:-value}}); found it unset")

    value = _VARIABLE.sub(replace, raw)
    return os.path.expanduser(value) if value.startswith("~/") else value


def validate_stack_file(raw: Any, source: str) -> StackFile:
    if not isinstance(raw, dict):
        raise StackFileError(f"{source}: expected a YAML mapping with keys name, components (and "
                             f"optionally description, server); found {type(raw).__name__}")
    try:
        return StackFile.model_validate(raw)
    except ValidationError as error:
        raise StackFileError(format_stack_errors(source, raw, error)) from None


def format_stack_errors(source: str, raw: dict, error: ValidationError) -> str:
    """One line per problem: key, expectation, what was found. A value that may be a credential is
    never shown, nor is a whole section (it may hold one)."""
    lines = [f"{source}: the stack file is not valid ({error.error_count()} problem(s))"]
    for item in error.errors():
        key = _key_path(raw, item["loc"])
        if item["loc"] and item["loc"][-1] == "[key]":  # a key of `components` that is no component type
            lines.append(f"  - {key.rsplit('[', 1)[0]}: expected a ZenML component type, one of "
                         f"{', '.join(COMPONENT_TYPES)}; found {_shown(item.get('input'))}")
            continue
        if item["type"] == "missing":
            found = "nothing"
        elif "holds a credential" in item["msg"]:
            found = "a literal value (not shown)"
        elif isinstance(item.get("input"), (dict, list)):
            found = (f"a section with keys {sorted(item['input'])}" if isinstance(item["input"], dict)
                     else f"a list of {len(item['input'])}")
        else:
            found = _shown(item.get("input"))
        lines.append(f"  - {key}: {_problem(item)}; found {found}")
    return "\n".join(lines)


def load_stack_file(path: Path, environ: Optional[Mapping[str, str]] = None) -> StackFile:
    path = Path(path)
    raw = read_yaml_file(path, StackFileError, "no such stack file (the files in stacks/: "
                         f"{', '.join(sorted(p.stem for p in STACKS_DIR.glob('*.yaml')))})")
    raw = substitute_environment(raw, os.environ if environ is None else environ, str(path))
    return validate_stack_file(raw, str(path))
