"""Who runs this command and may they: the one check each governed command makes before its work.

Without `governance.roles` on the local stack nothing changes (anyone may do anything, actors as named
by `--by` or $KEEL_ACTOR) and one line says so. On a ZenML server the actor is always the identity the
server authenticated. With roles, the identity must hold a role the command accepts; a refusal is one
message (exit 1) naming the role and who holds it, and is recorded in the audit trail. `--by` is a
display name: one that names another identity is refused.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

from keel.spec.models import Spec

REFUSED_EXIT = 1


@dataclass(frozen=True)
class Authorization:
    identity: Optional[object] = None  # keel.governance.identity.Identity, when resolved
    actor: Optional[str] = None  # what the command records as its actor (None: as before roles)
    display_name: Optional[str] = None
    enforced: bool = False  # governance.roles declared: maker-checker and release checks apply
    exit_code: Optional[int] = None  # set: refused, return it

    @property
    def refused(self) -> bool:
        return self.exit_code is not None


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def authorize(spec: Spec, command: str, by: Optional[str] = None, version: Optional[int] = None) -> Authorization:
    from keel.governance.identity import establish, on_server, other_identities_named, resolve_identity
    from keel.governance.roles import refusal, roles_of

    roles = spec.governance.roles
    if roles is None and on_server() is None:
        establish(None)
        note("keel: governance.roles is not declared: no role checks and no maker-checker; the actor is --by, "
             "$KEEL_ACTOR or the ZenML user as before (declare governance.roles to enforce them)")
        return Authorization(actor=by, display_name=by)
    identity = resolve_identity()
    establish(identity)
    declared = [name for names in (roles or {}).values() for name in names]
    if by is not None and by.strip():
        others = other_identities_named(by, identity, declared)
        if others:
            message = (f"keel: {command} refused: --by {by!r} names another identity ({', '.join(others)}); you are "
                       f"{identity.describe()}. --by is only a display name for your own identity")
            return _refuse(spec, version, command, identity, message)
    if roles is None:
        note(f"keel: acting as {identity.describe()}; governance.roles is not declared: no role checks")
        return Authorization(identity, identity.actor, by)
    message = refusal(roles, command, identity.actor, identity.authenticated)
    if message is not None:
        return _refuse(spec, version, command, identity, message)
    note(f"keel: acting as {identity.describe()}, holding {', '.join(roles_of(roles, identity.actor))}")
    return Authorization(identity, identity.actor, by, enforced=True)


def _refuse(spec: Spec, version: Optional[int], command: str, identity, message: str) -> Authorization:
    from keel.cli.console import fail
    from keel.lifecycle.approval import record_refusal

    try:
        record_refusal(spec.problem.name, version, command, identity, message)
    except Exception as error:  # the refusal stands even when the trail cannot take it; say so
        message += f"\n(the refusal could not be recorded in the audit trail: {error})"
    return Authorization(identity, exit_code=fail(message, REFUSED_EXIT))
