"""The spec: pydantic models and their loader. Imports nothing heavy, so validation is instant."""

from keel.spec.load import SpecError, load_spec, spec_hash, validate_spec
from keel.spec.models import Spec

__all__ = ["Spec", "SpecError", "load_spec", "spec_hash", "validate_spec"]
