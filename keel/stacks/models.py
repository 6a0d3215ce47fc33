"""A stack file: a ZenML stack and every component defined in full, and where its ZenML store lives.

Values that are credentials are never written in the file: they must be ZenML secret references,
`{{secret_name.key}}`, resolved by ZenML when the component runs.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Literal, Optional, get_args

from pydantic import Field, field_validator, model_validator

from keel.engine.spec import EngineSpec, LocalEngine
from keel.spec.base import StrictModel
from keel.stacks.redaction import is_credential_key, redact_url_credentials

# ZenML's StackComponentType values (zenml.enums), kept here so that validation needs no ZenML import.
ComponentType = Literal[
    "orchestrator", "artifact_store", "container_registry", "image_builder", "step_operator",
    "model_deployer", "deployer", "experiment_tracker", "alerter", "annotator", "data_validator",
    "feature_store", "model_registry", "log_store",
]
COMPONENT_TYPES = get_args(ComponentType)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SECRET_REFERENCE = re.compile(r"^\{\{\s*([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\s*\}\}$")


def secret_references(value: Any) -> Dict[str, set]:
    """Every `{{name.key}}` inside a configuration value, and every `authentication_secret: name`
    (a whole secret, no particular key): {secret name: {keys}}."""
    found: Dict[str, set] = {}
    if isinstance(value, dict):
        named = value.get("authentication_secret")
        if isinstance(named, str) and named:
            found.setdefault(named, set())
        for item in value.values():
            for name, keys in secret_references(item).items():
                found.setdefault(name, set()).update(keys)
    elif isinstance(value, list):
        for item in value:
            for name, keys in secret_references(item).items():
                found.setdefault(name, set()).update(keys)
    elif isinstance(value, str):
        match = SECRET_REFERENCE.match(value)
        if match:
            found.setdefault(match.group(1), set()).add(match.group(2))
    return found


def literal_credentials(value: Any, where: str = "") -> list:
    """The key paths (e.g. `client_kwargs.aws_secret_access_key`) of every credential key, at any
    depth of dicts and lists, that holds literal text rather than a ZenML secret reference. Only text
    can be a credential (a flag such as pass_zenml_token_as_secret: true is not)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if is_credential_key(key) and _holds_literal_text(item):
                found.append(path)
            elif isinstance(item, (dict, list)):
                found += literal_credentials(item, path)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += literal_credentials(item, f"{where}[{position}]")
    return found


def _holds_literal_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value) and not SECRET_REFERENCE.match(value)
    if isinstance(value, list):  # e.g. a list of tokens under a credential key
        return any(_holds_literal_text(item) for item in value)
    return False


def redact_credentials(value: Any) -> Any:
    """A copy with every literal text under a credential key (at any depth) replaced and the credentials
    of every URL hidden (`user:***@host`), so that no printout can show one; secret references and
    everything else are kept."""
    if isinstance(value, dict):
        return {key: ("(a literal value, not shown)" if is_credential_key(key) and _holds_literal_text(item)
                      else redact_credentials(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_credentials(item) for item in value]
    if isinstance(value, str):
        return redact_url_credentials(value)
    return value


class ComponentSpec(StrictModel):
    name: str = Field(pattern=NAME_PATTERN)
    flavor: str = Field(pattern=NAME_PATTERN)
    configuration: Dict[str, Any] = Field(default_factory=dict)

    @field_validator("configuration")
    @classmethod
    def _credentials_are_references(cls, configuration: Dict[str, Any]) -> Dict[str, Any]:
        # Nested too: e.g. an S3 store's client_kwargs.aws_secret_access_key reaches boto3 as is.
        literal = literal_credentials(configuration)
        if literal:
            last = literal[0].rsplit(".", 1)[-1].split("[", 1)[0]
            named = " and ".join(f"`{path}`" for path in literal)
            raise ValueError(f"{named} {'each ' if len(literal) > 1 else ''}holds a credential: "
                             f"expected a ZenML secret reference such as '{{{{my_secret.{last}}}}}', "
                             f"never the value itself")
        return configuration


class ServerSpec(StrictModel):
    """A ZenML server the stack lives on; the client logs in with a service-account API key read
    from the environment variable `api_key_env` (never from the file)."""

    url: str = Field(pattern=r"^https?://[^\s/]+(/\S*)?$")
    api_key_env: str = Field(default="KEEL_ZENML_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    verify_ssl: bool = True
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)


class StackFile(StrictModel):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    server: Optional[ServerSpec] = None  # None: the local ZenML store (SQLite in ZenML's config folder)
    components: Dict[ComponentType, ComponentSpec]
    # Where keel's data work runs (not a ZenML component: recorded as a label of the ZenML stack).
    engine: EngineSpec = Field(default_factory=LocalEngine, discriminator="kind")

    @model_validator(mode="after")
    def _has_the_required_components(self) -> "StackFile":
        missing = [kind for kind in ("orchestrator", "artifact_store") if kind not in self.components]
        if missing:
            raise ValueError(f"a stack needs an orchestrator and an artifact_store; missing "
                             f"{', '.join(missing)} under `components`")
        return self

    def secret_references(self) -> Dict[str, set]:
        """Secrets the components reference: {name: {keys}}; they must exist in the stack's store."""
        found: Dict[str, set] = {}
        for component in self.components.values():
            for name, keys in secret_references(component.configuration).items():
                found.setdefault(name, set()).update(keys)
        return found
