"""Which keel extra (pyproject.toml) a component flavor needs, and whether it is installed.

Checked before anything is registered, so that a missing extra is named at once rather than failing
when a pipeline first touches the component. Only importability is checked (no import), so it is fast.
"""

from __future__ import annotations

import importlib.util
from typing import Callable, Dict, List, Optional, Tuple

from keel.stacks.models import StackFile

# (component type, flavor) -> (extra, modules that flavor's implementation imports)
FLAVOR_EXTRAS: Dict[Tuple[str, str], Tuple[str, Tuple[str, ...]]] = {
    ("artifact_store", "s3"): ("remote", ("s3fs", "boto3")),
    ("container_registry", "aws"): ("aws", ("boto3", "aws_profile_manager")),
    ("artifact_store", "gcp"): ("gcp", ("gcsfs", "google.cloud.storage")),
    ("orchestrator", "kubernetes"): ("kubernetes", ("kubernetes",)),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing
        return False


def missing_extras(stack_file: StackFile,
                   installed: Callable[[str], bool] = _installed) -> List[Tuple[str, str, str, List[str]]]:
    """[(component type, flavor, extra, missing modules)] for every component whose extra is absent."""
    missing = []
    if stack_file.engine.kind == "dask":
        absent = [module for module in ("dask", "distributed") if not installed(module)]
        if absent:
            missing.append(("engine", "dask", "dask", absent))
    for kind, component in stack_file.components.items():
        extra: Optional[Tuple[str, Tuple[str, ...]]] = FLAVOR_EXTRAS.get((kind, component.flavor))
        if extra is None:
            continue
        absent = [module for module in extra[1] if not installed(module)]
        if absent:
            missing.append((kind, component.flavor, extra[0], absent))
    return missing


def describe_missing_extras(source: str, missing: List[Tuple[str, str, str, List[str]]]) -> str:
    extras = sorted({extra for _, _, extra, _ in missing})
    lines = [f"{source}: Python packages for this stack are not installed (nothing was registered):"]
    lines += [(f"  - engine (kind dask) needs {', '.join(modules)}: the '{extra}' extra" if kind == "engine" else
               f"  - components.{kind} (flavor {flavor}) needs {', '.join(modules)}: the '{extra}' extra")
              for kind, flavor, extra, modules in missing]
    lines.append(f"  install with: pip install -e '.[{','.join(extras)}]'")
    return "\n".join(lines)
