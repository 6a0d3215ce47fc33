"""The `governance` section: high-stakes handling, where the technical documentation goes, and who may
do what (roles, maker-checker approval)."""

from __future__ import annotations

from typing import Dict, List, Literal, Optional

from pydantic import Field, field_validator, model_validator

from keel.spec.base import StrictModel

Role = Literal["developer", "validator", "approver", "operator"]
# A ZenML account or OS account name, optionally qualified by its source (`zenml:ci-bot`, `os:alice`).
IDENTITY_PATTERN = r"^((zenml|os):)?[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$"


class GovernanceSpec(StrictModel):
    """What regulators will ask for, decided up front."""

    high_stakes: bool = Field(False, description="every prediction links to its model version and can be explained "
                                                 "on request; explanations come with the full lineage")
    explanation_top_features: int = Field(10, ge=1, le=500, description="contributions listed by `run.py explain`")
    explanation_background_rows: int = Field(200, ge=10, le=100_000,
                                             description="validation rows as the SHAP reference of linear models")
    documentation_folder: str = Field("reports", description="`run.py docs` writes <folder>/<model>/v<N>/")
    roles: Optional[Dict[Role, List[str]]] = Field(
        None, description="who holds each role: ZenML users or service accounts (remote stack), OS accounts (local "
                          "stack); `zenml:NAME` or `os:NAME` for one source only. Declared, every command checks "
                          "them (train/evaluate: developer or validator; approve: approver; deploy, rollback: "
                          "operator) and approvals are maker-checker; absent, anyone may do anything")
    required_approvals: int = Field(1, ge=1, le=10, description="distinct approvers a version needs (with roles)")
    approval_valid_days: Optional[int] = Field(
        None, ge=1, le=3650, description="an approval expires this many days after it was given (none: it does not)")

    @field_validator("roles")
    @classmethod
    def _every_role_named(cls, roles: Optional[Dict[str, List[str]]]) -> Optional[Dict[str, List[str]]]:
        import re

        if roles is None:
            return None
        missing = [role for role in ("developer", "validator", "approver", "operator") if not roles.get(role)]
        if missing:
            raise ValueError(f"declare who holds every role; none holds {', '.join(missing)} (a role nobody holds "
                             "would stop the lifecycle there)")
        for role, names in roles.items():
            bad = [n for n in names if not re.fullmatch(IDENTITY_PATTERN, n)]
            if bad:
                raise ValueError(f"roles.{role}: {bad} are not account names (letters, digits, . _ @ + -, "
                                 "optionally prefixed zenml: or os:)")
        return roles

    @model_validator(mode="after")
    def _approvals_can_be_met(self) -> "GovernanceSpec":
        if self.roles is not None and len(set(self.roles["approver"])) < self.required_approvals:
            raise ValueError(f"required_approvals is {self.required_approvals} but roles.approver names only "
                             f"{len(set(self.roles['approver']))}: no version could ever be approved")
        return self
