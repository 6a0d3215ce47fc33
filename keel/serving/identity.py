"""Who a keel service is: the model it serves and the deployment folder it serves from.

/readyz answers with it, and every probe keel makes checks it, so another service on the same port
(another keel project's, another model's, or no keel service at all) is never taken for ours. The
folder is named by a hash: the answer is public (orchestrators probe without a key), the path is not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from keel.serving.layout import DEPLOYMENT_FILE

SERVICE = "keel"


@dataclass(frozen=True)
class ServiceIdentity:
    model: str
    folder: Path

    @classmethod
    def of_folder(cls, folder: Path) -> "ServiceIdentity":
        """The identity of the service a bundled deployment folder makes (its spec names the model)."""
        config = json.loads((Path(folder) / DEPLOYMENT_FILE).read_text())
        return cls(config["spec"]["problem"]["name"], Path(folder))

    @property
    def deployment(self) -> str:
        return hashlib.sha256(str(Path(self.folder).resolve()).encode()).hexdigest()[:16]

    def answer(self) -> dict:
        """The body of /readyz."""
        return {"service": SERVICE, "model": self.model, "deployment": self.deployment}

    def matches(self, answer: object) -> bool:
        return isinstance(answer, dict) and {k: answer.get(k) for k in ("service", "model", "deployment")} == self.answer()
