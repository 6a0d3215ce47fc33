"""Who is acting: the authenticated identity of the active stack, resolved once per command.

On a stack whose store is a ZenML server, the ZenML user or service account the server authenticated
(by password or API key): `authenticated: true` unless the server runs without authentication. On the
local stack (a SQLite store, no server), the OS account of this process, read from the password
database by its effective uid (never from $USER or $LOGNAME, which anyone can set):
`authenticated: false`. `--by` is a display name beside it, never the identity.

No ZenML import at module level: the spec's validation and `--help` never load it.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import asdict, dataclass
from typing import Iterable, Optional

ZENML, OS = "zenml", "os"  # identity sources; an actor is "<source>:<name>"


@dataclass(frozen=True)
class Identity:
    name: str
    source: str  # ZENML or OS
    kind: str  # "user", "service account", "OS account"
    authenticated: bool
    authority: str  # who vouches for it: the server's URL, or this host's password database
    id: Optional[str] = None

    @property
    def actor(self) -> str:
        """As the audit trail names it, e.g. `zenml:keel-ci`, `os:alice`."""
        return f"{self.source}:{self.name}"

    def describe(self) -> str:
        how = "authenticated" if self.authenticated else "NOT authenticated"
        return f"{self.actor} ({self.kind}, {how}, by {self.authority})"

    def record(self) -> dict:
        """As audit records' details carry it."""
        return {**asdict(self), "actor": self.actor}


def os_identity() -> Identity:
    account = pwd.getpwuid(os.geteuid())
    return Identity(account.pw_name, OS, "OS account", False, f"the password database of {os.uname().nodename}",
                    str(account.pw_uid))


def on_server() -> Optional[str]:
    """The active store's server URL, or None for a local (SQL) store."""
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import StoreType

    store = GlobalConfiguration().store_configuration
    return store.url if store.type == StoreType.REST else None


def server_identity(url: str) -> Identity:
    """The user or service account the server knows this client as (one request, cached by ZenML)."""
    from zenml.client import Client
    from zenml.enums import AuthScheme

    client = Client()
    user = client.active_user
    authenticated = client.zen_store.get_store_info().auth_scheme != AuthScheme.NO_AUTH
    return Identity(user.name, ZENML, "service account" if user.is_service_account else "user", authenticated,
                    f"the ZenML server {url}", str(user.id))


_resolved: dict = {}  # (store url, euid) -> Identity: one resolution per command (and per store)
_established: Optional[Identity] = None


def resolve_identity() -> Identity:
    url = on_server()
    key = (url, os.geteuid())
    if key not in _resolved:
        _resolved[key] = server_identity(url) if url else os_identity()
    return _resolved[key]


def establish(identity: Optional[Identity]) -> None:
    """From now on, audit records that name no actor are this identity's (None: as before, see
    keel.governance.audit.resolve_actor). Set by each command once it has checked who acts."""
    global _established
    _established = identity


def established() -> Optional[Identity]:
    return _established


def other_identities_named(name: str, me: Identity, declared: Iterable[str] = ()) -> list:
    """Identities other than `me` that `name` (a `--by` display name) would pass for: a name declared in
    the spec's roles, an OS account of this host, or (on a server) a ZenML user or service account."""
    wanted = name.strip()
    bare = wanted.split(":", 1)[1] if wanted.startswith((f"{ZENML}:", f"{OS}:")) else wanted
    if wanted in (me.actor, me.name):
        return []
    found = [d for d in declared if d in (wanted, bare) or d.split(":", 1)[-1] == bare]
    try:
        pwd.getpwnam(bare)
        found.append(f"{OS}:{bare}")
    except KeyError:
        pass
    if me.source == ZENML:
        found += [f"{ZENML}:{bare}" for _ in _zenml_accounts_named(bare)]
    return sorted(set(found) - {me.actor, me.name})


def _zenml_accounts_named(name: str) -> list:
    from zenml.client import Client

    client = Client()
    found = []
    for listing in (client.list_users, client.list_service_accounts):
        try:
            found += [a for a in listing(name=name, size=5) if a.name == name]
        except Exception:  # a listing this account may not read: the names in the spec still count
            continue
    return found
