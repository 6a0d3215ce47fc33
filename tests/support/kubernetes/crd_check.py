"""Offline validation of a custom resource against its CRD's OpenAPI v3 schema (kubernetes-validate
knows only the built-in kinds). Strict as an API server with field validation: an unknown field is
an error unless the schema preserves unknown fields there."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import List

import yaml

HERE = Path(__file__).parent
DASKCLUSTER_CRD = HERE / "daskcluster-crd.yaml"


def _strict(schema):
    """The schema with `additionalProperties: false` on every object that lists its properties."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def crd_problems(manifest: dict, crd_path: Path = DASKCLUSTER_CRD) -> List[str]:
    """One line per problem ('Kind/name: where: what'); empty when the manifest is valid."""
    import jsonschema

    crd = yaml.safe_load(crd_path.read_text())
    spec = crd["spec"]
    name = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name')}"
    versions = {f"{spec['group']}/{v['name']}": v for v in spec["versions"] if v.get("served", True)}
    problems = []
    if manifest.get("kind") != spec["names"]["kind"]:
        problems.append(f"{name}: kind: expected {spec['names']['kind']}")
    version = versions.get(manifest.get("apiVersion"))
    if version is None:
        return problems + [f"{name}: apiVersion: expected one of {sorted(versions)}"]
    if not (manifest.get("metadata") or {}).get("name"):
        problems.append(f"{name}: metadata.name: required")
    schema = _strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    schema.setdefault("properties", {}).update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                "metadata": {"type": "object"}})
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(manifest), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "(top level)"
        problems.append(f"{name}: {where}: {error.message}")
    return problems
