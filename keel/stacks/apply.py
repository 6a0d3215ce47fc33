"""Apply a stack file with ZenML's Client: connect to the stack's store, register or update each
component and the stack, activate it. Idempotent: applying an unchanged file changes nothing and
never prompts (`zenml stack import` demands an exact ZenML version and prompts on any difference).

ZenML is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import os
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from keel.stacks.extras import describe_missing_extras, missing_extras
from keel.stacks.load import STACKS_DIR, StackFileError, load_stack_file, stack_file_for
from keel.stacks.models import ComponentSpec, StackFile, is_credential_key, redact_credentials
from keel.stacks.redaction import redact_url_credentials


class StackApplyError(RuntimeError):
    """A stack that cannot be applied or chosen; the message says where and what to do (a URL in it,
    ours or one in ZenML's own error, never shows its credentials)."""

    def __init__(self, message: str):
        super().__init__(redact_url_credentials(message))


@dataclass(frozen=True)
class Change:
    """What applying did to one component or to the stack."""

    kind: str  # a component type, or "stack"
    name: str
    flavor: str
    action: str  # created | updated | unchanged
    keys: List[str] = field(default_factory=list)  # the configuration keys that changed (names only)


# ------------------------------------------------------------------------------------------- the store

def _store_description(url: str) -> str:
    if url.startswith("sqlite://"):
        return "the local ZenML store"
    return f"the ZenML store at {redact_url_credentials(url)}"


def check_server_reachable(url: str, timeout: float, source: str, verify_ssl: bool = True) -> None:
    """A ZenML server answers `GET /health`; anything else is an error before any pipeline starts.
    With `verify_ssl` false (server.verify_ssl: false, e.g. a self-signed certificate) the certificate
    is not checked here either, as ZenML's client will not check it."""
    context = None
    if url.startswith("https://") and not verify_ssl:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout, context=context) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code} from /health: not a ZenML server?"
    except (urllib.error.URLError, OSError) as error:
        reason = str(getattr(error, "reason", error))
    raise StackApplyError(f"{source}: server.url {url}: no ZenML server answers ({reason}). Start the "
                          f"server or fix the URL; nothing was changed and no pipeline started.")


def connect_store(stack_file: StackFile, source: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """Point this client at the stack's store: its server (logged in with the service-account API key
    from the environment) or the local store. Returns the store URL."""
    from zenml.config.global_config import GlobalConfiguration

    environ = os.environ if environ is None else environ
    config = GlobalConfiguration()
    forced = environ.get("ZENML_STORE_URL")
    wanted = stack_file.server.url.rstrip("/") if stack_file.server else None
    if forced and forced.rstrip("/") != (wanted or config.get_default_store().url):
        raise StackApplyError(f"{source}: ZENML_STORE_URL={forced} is set and overrides the store of "
                              f"this stack ({wanted or 'the local store'}); unset it to use this stack file.")
    if stack_file.server is None:
        if config.store_configuration.url != config.get_default_store().url:
            config.set_default_store()
        return config.store_configuration.url

    server = stack_file.server
    check_server_reachable(wanted, server.connect_timeout_seconds, source, server.verify_ssl)
    from zenml.exceptions import AuthorizationException, CredentialsNotValid, IllegalOperationError
    from zenml.login.credentials_store import get_credentials_store
    from zenml.zen_stores.rest_zen_store import RestZenStoreConfiguration

    credentials = get_credentials_store()
    api_key = environ.get(server.api_key_env, "").strip()
    if api_key:
        credentials.set_api_key(wanted, api_key)
    elif not credentials.has_valid_credentials(wanted):
        raise StackApplyError(f"{source}: server.url {wanted}: no credentials. Set the environment "
                              f"variable {server.api_key_env} to a service-account API key (e.g. "
                              f"`zenml service-account create keel-ci` on the server); nothing was changed.")
    if not api_key and config.store_configuration.url.rstrip("/") == wanted:
        return wanted
    import requests

    try:
        config.set_store(RestZenStoreConfiguration(url=wanted, verify_ssl=server.verify_ssl))
    except (CredentialsNotValid, AuthorizationException, IllegalOperationError) as error:
        raise StackApplyError(f"{source}: server.url {wanted}: the server refused the API key in "
                              f"{server.api_key_env} ({error}); nothing was changed.") from None
    except (RuntimeError, requests.RequestException) as error:
        # Something answers /health but is no working ZenML API (another service on the port, a
        # proxy, a server mid-start): ZenML raises RuntimeError("Error connecting to URL ...").
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StackApplyError(f"{source}: server.url {wanted}: a server answers /health there but its "
                              f"ZenML API does not work ({first_line}). Check that the URL is the ZenML "
                              f"server's; nothing was changed and no pipeline started.") from None
    return wanted


# ------------------------------------------------------------------------------------ secrets, components

def check_secrets(client: Any, stack_file: StackFile, source: str, store: str) -> None:
    """Every secret the components reference exists in the store with the keys referenced (values are
    never read into messages)."""
    problems = []
    for name, keys in sorted(stack_file.secret_references().items()):
        try:
            secret = client.get_secret(name, allow_partial_name_match=False)
        except KeyError:
            needed = " ".join(f"--{key}=..." for key in sorted(keys)) or "--<key>=..."
            problems.append(f"  - secret '{name}' does not exist: create it with "
                            f"`zenml secret create {name} {needed}`")
            continue
        absent = sorted(set(keys) - set(secret.values))
        if absent:
            problems.append(f"  - secret '{name}' has no key(s) {', '.join(absent)}: "
                            f"`zenml secret update {name} " + " ".join(f"--{k}=..." for k in absent) + "`")
    if problems:
        raise StackApplyError("\n".join([f"{source}: the stack references secrets missing in "
                                         f"{_store_description(store)} (nothing was registered):", *problems]))


def _shown(key: str, value: Any) -> str:
    if is_credential_key(key.rsplit(".", 1)[-1]):
        return "a value (not shown)"
    text = repr(redact_credentials(value))
    return text if len(text) <= 60 else text[:57] + "..."


def desired_configuration(kind: str, component: ComponentSpec, source: str) -> Dict[str, Any]:
    """The configuration as ZenML stores it (validated by the flavor's config class). A configuration
    the flavor refuses is a problem of the file, as a wrong key of the file's own schema is
    (StackFileError, exit code 2)."""
    from pydantic import ValidationError
    from zenml.enums import StackComponentType
    from zenml.stack.utils import validate_stack_component_config

    where = f"{source}: components.{kind}"
    try:
        config = validate_stack_component_config(
            configuration_dict=dict(component.configuration), flavor=component.flavor,
            component_type=StackComponentType(kind), validate_custom_flavors=True)
    except KeyError:
        raise StackFileError(f"{where}.flavor: expected a {kind} flavor known to ZenML "
                             f"(`zenml {kind.replace('_', '-')} flavor list`); found '{component.flavor}'") from None
    except ValidationError as error:  # (a subclass of ValueError: caught first)
        lines = [f"{where}.configuration: not valid for the '{component.flavor}' flavor"]
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"]) or "(all)"
            found = "nothing" if item["type"] == "missing" else _shown(key, item.get("input"))
            lines.append(f"  - {key}: {item['msg']}; found {found}")
        raise StackFileError("\n".join(lines)) from None
    except ValueError as error:  # ZenML's own check: keys the flavor does not know
        raise StackFileError(f"{where}.configuration: not valid for the '{component.flavor}' flavor: "
                             f"{error}") from None
    return config.model_dump(mode="json", exclude_unset=True)


def apply_component(client: Any, kind: str, component: ComponentSpec, source: str) -> Change:
    from zenml.enums import StackComponentType

    component_type = StackComponentType(kind)
    desired = desired_configuration(kind, component, source)
    try:
        existing = client.get_stack_component(component_type, component.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack_component(name=component.name, flavor=component.flavor,
                                      component_type=component_type, configuration=desired)
        return Change(kind, component.name, component.flavor, "created", sorted(desired))
    if existing.flavor_name != component.flavor:
        raise StackApplyError(
            f"{source}: components.{kind}: a {kind} named '{component.name}' exists with flavor "
            f"'{existing.flavor_name}', not '{component.flavor}'; ZenML cannot change a flavor: rename "
            f"the component in the file, or delete the old one (`zenml {kind.replace('_', '-')} delete "
            f"{component.name}`) if no other stack uses it.")
    current = dict(existing.configuration)
    changed = sorted(key for key in set(current) | set(desired) if current.get(key) != desired.get(key))
    if not changed:
        return Change(kind, component.name, component.flavor, "unchanged")
    # Defined in full: a key the file no longer sets goes back to the flavor's default (None removes it).
    update = {**desired, **{key: None for key in current if key not in desired}}
    client.update_stack_component(component.name, component_type, configuration=update)
    return Change(kind, component.name, component.flavor, "updated", changed)


def apply_stack(client: Any, stack_file: StackFile) -> Change:
    from zenml.enums import StackComponentType

    from keel.engine.selection import ENGINE_LABEL

    desired = {StackComponentType(kind): [client.get_stack_component(
        StackComponentType(kind), component.name, allow_name_prefix_match=False).id]
        for kind, component in stack_file.components.items()}
    engine = stack_file.engine.model_dump(mode="json")
    try:
        existing = client.get_stack(stack_file.name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack(name=stack_file.name, components=desired, labels={ENGINE_LABEL: engine})
        if stack_file.description:
            client.update_stack(stack_file.name, description=stack_file.description)
        return Change("stack", stack_file.name, "-", "created", sorted(kind.value for kind in desired) + ["engine"])
    current = {kind: [c.id for c in components] for kind, components in existing.components.items() if components}
    changed = sorted({kind.value for kind in set(current) | set(desired) if current.get(kind) != desired.get(kind)})
    description_changed = (existing.description or "") != stack_file.description
    engine_changed = (existing.labels or {}).get(ENGINE_LABEL) != engine
    if not changed and not description_changed and not engine_changed:
        return Change("stack", stack_file.name, "-", "unchanged")
    if changed:
        updates = {**desired, **{kind: [] for kind in current if kind not in desired}}
        client.update_stack(stack_file.name, component_updates=updates)
    if engine_changed:
        client.update_stack(stack_file.name, labels={**(existing.labels or {}), ENGINE_LABEL: engine})
        changed.append("engine")
    if description_changed:
        from zenml.models import StackUpdate

        # Client.update_stack skips a falsy description, so it could never remove one; the store can.
        client.zen_store.update_stack(existing.id, StackUpdate(description=stack_file.description))
    return Change("stack", stack_file.name, "-", "updated",
                  changed + (["description"] if description_changed else []))


# --------------------------------------------------------------------------------------- entry points

def _connect_checked(path: Path, environ: Optional[Mapping[str, str]]):
    """Load a stack file, check its extras are installed, connect to its store and check its secrets
    exist there: (stack file, ZenML client, store)."""
    source = str(path)
    stack_file = load_stack_file(path, environ)
    missing = missing_extras(stack_file)
    if missing:
        raise StackApplyError(describe_missing_extras(source, missing))
    store = connect_store(stack_file, source, environ)
    from zenml.client import Client

    client = Client()
    check_secrets(client, stack_file, source, store)
    return stack_file, client, store


def apply_stack_file(path: Path, activate: bool = True, environ: Optional[Mapping[str, str]] = None) -> List[Change]:
    """Register or update the stack of `path` in its store and (by default) make it the active stack."""
    source = str(path)
    stack_file, client, _ = _connect_checked(path, environ)
    # Validate every component before registering any, so a bad file changes nothing.
    for kind, component in stack_file.components.items():
        desired_configuration(kind, component, source)
    changes = [apply_component(client, kind, component, source)
               for kind, component in stack_file.components.items()]
    changes.append(apply_stack(client, stack_file))
    if activate:
        client.activate_stack(stack_file.name)
    return changes


def use_stack(name: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """Activate a stack for a command (`--stack NAME`). NAME is a file in stacks/ (or a path to one):
    connect to its store first; otherwise a stack already registered in the current store."""
    path = stack_file_for(name)
    if path is None and _looks_like_a_path(name):
        raise StackFileError(f"--stack {name}: no such file")
    from zenml.client import Client

    if path is not None:
        # The same checks as `stack apply`, so a missing package or secret is named here rather
        # than when a step first touches the component.
        stack_file, client, store = _connect_checked(path, environ)
        try:
            client.activate_stack(stack_file.name)
        except KeyError:
            raise StackApplyError(f"--stack {name}: the stack '{stack_file.name}' of {path} is not registered "
                                  f"in {_store_description(store)}; register it first: "
                                  f"python run.py stack apply {path}") from None
        from keel.engine.cluster import EngineUnavailableError
        from keel.engine.selection import check_engine
        from keel.engine.spec import describe_engine

        try:
            check_engine(stack_file.engine)
        except EngineUnavailableError as error:
            raise StackApplyError(f"--stack {name}: {error}") from None
        return f"stack '{stack_file.name}' in {_store_description(store)}, engine {describe_engine(stack_file.engine)}"
    client = Client()
    try:
        client.activate_stack(name)
    except KeyError:
        files = sorted(p.stem for p in STACKS_DIR.glob("*.yaml"))
        known = sorted(stack.name for stack in client.list_stacks(size=100).items)
        raise StackApplyError(f"--stack {name}: no such stack: no stacks/{name}.yaml (files: "
                              f"{', '.join(files)}) and none registered under that name (registered: "
                              f"{', '.join(known) or 'none'})") from None
    return f"stack '{name}'"


def _looks_like_a_path(name: str) -> bool:
    """`--stack stacks/x.yaml` or `--stack ./x` names a file, never a registered stack."""
    return Path(name).suffix in (".yaml", ".yml") or os.sep in name or (os.altsep or os.sep) in name
