"""What a credential looks like in a stack file or a URL, and the redaction that keeps it out of any
printout. Pure and import-free, so that everything keel prints can pass through it."""

from __future__ import annotations

import re
from typing import Any

# Configuration keys that hold credentials in ZenML's flavors (S3 `key`/`secret`/`token`, GCP
# `service_account_json`, passwords, tokens); a literal value there would put a secret in git.
CREDENTIAL_KEY = re.compile(r"(^|_)(key|secret|token|password|service_account_json)$")
_NOT_CREDENTIALS = {"authentication_secret"}  # names a ZenML secret, holds no credential itself
HIDDEN = "***"  # what stands for a credential (as SQLAlchemy prints a URL's password)

# `scheme://userinfo@`: the userinfo runs to the authority's last `@` (a password may hold an unescaped
# `@`), never past the first `/`, `?`, `#` or white space.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]*)@")
_QUERY_VALUE = re.compile(r"(?P<lead>[?&;](?P<name>[A-Za-z0-9_.-]+)=)(?P<value>[^&;#\s]*)")


def is_credential_key(key: Any) -> bool:
    return isinstance(key, str) and key not in _NOT_CREDENTIALS and bool(CREDENTIAL_KEY.search(key))


def redact_url_credentials(text: str) -> str:
    """`text` with the credentials of every URL in it hidden: `user:password@host` -> `user:***@host`;
    a name with no password (often a token, `https://TOKEN@host`) -> `***@host`; the value of a query
    parameter named like a credential (`?password=...`, `&api_key=...`) -> `***`."""

    def userinfo(match: re.Match) -> str:
        user, colon, _ = match.group("userinfo").partition(":")
        return f"{match.group('scheme')}{user + ':' if colon else ''}{HIDDEN}@"

    def query(match: re.Match) -> str:
        return match.group("lead") + HIDDEN if is_credential_key(match.group("name").lower()) else match.group(0)

    if "://" not in text:
        return text
    return _QUERY_VALUE.sub(query, _URL_USERINFO.sub(userinfo, text))
