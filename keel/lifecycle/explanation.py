"""Why a logged prediction came out as it did: each scored row of a request recomputed by the model
version that answered it, with its SHAP contributions against that version's validation rows, the
threshold it was judged at, its referral and, for a high-stakes model, its lineage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class RowExplanation:
    row: dict  # the logged row (request_id, row, entity_id, time, model_name, model_version, arm, ...)
    version: int
    result: dict  # keel.governance.explanations.explain_logged's: scores, decision, contributions
    threshold: Optional[float] = None
    review: Optional[dict] = None  # the referral and its human decision, if the row was referred
    lineage: Optional[list] = None  # (label, value) pairs, for a high-stakes model


@dataclass
class ExplanationResult:
    """The rows explained, in log order, up to and including the first whose recomputed score differs
    from the logged one (the stored model is then not the one that answered); or `error`."""

    rows: List[RowExplanation] = field(default_factory=list)
    error: Optional[str] = None
    error_code: int = 1  # 2: the request scored several records and none was chosen

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return self.error_code
        return 0 if all(r.result["same_score"] for r in self.rows) else 1


def explain_prediction(spec, request_id: str, row_number: Optional[int] = None) -> ExplanationResult:
    """Explain the answered rows of `request_id` (one: `row_number`) from the spec's prediction log."""
    from keel.deployment.deploy import prediction_log_url
    from keel.governance.lineage import logged_rows

    log_url = prediction_log_url(spec)
    try:
        rows = logged_rows(log_url, request_id, row_number, answered_only=True)
    except LookupError as error:
        return ExplanationResult(error=f"keel: {error}")
    if row_number is None and len(rows) > 1:
        return ExplanationResult(error=f"keel: request {request_id} scored {len(rows)} records; choose one with "
                                       f"--row N ({rows[0]['row']}..{rows[-1]['row']})", error_code=2)
    from keel.artifacts import Artifact
    from keel.governance.explanations import background_rows, explain_logged
    from keel.lifecycle.lineage import TamperedTrail, verified_records, version_links
    from keel.lifecycle.review import trail_disagreements
    from keel.registry import evaluation_outcome, load_version_model, version_artifacts
    from keel.serving.reviews import review_of

    governance = spec.governance
    try:  # a high-stakes answer's lineage must come from an intact trail, and the version be in this registry
        trails = {r["model_name"]: verified_records(r["model_name"]) for r in rows} if governance.high_stakes else {}
        models = {int(r["model_version"]): load_version_model(r["model_name"], int(r["model_version"])) for r in rows}
        lineages = {int(r["model_version"]): version_links(r["model_name"], int(r["model_version"]), trails[r["model_name"]])
                    for r in rows} if governance.high_stakes else {}
    except (LookupError, TamperedTrail) as error:
        return ExplanationResult(error=f"keel: {error}")
    explained = ExplanationResult()
    for row in rows:
        review = review_of(log_url, row["request_id"], int(row["row"]))
        if review is not None and review.get("decided_at") is not None:
            try:  # the log's table is not tamper-evident: the person's decision shown must be the trail's
                records = trails.get(row["model_name"]) or verified_records(row["model_name"])
            except TamperedTrail as error:
                return ExplanationResult(error=f"keel: {error}")
            problems = trail_disagreements([review], records, every_review=False)
            if problems:
                return ExplanationResult(error=f"keel: {problems[0]}; the person's decision cannot be shown as "
                                               "recorded (python run.py audit verify)")
        version = int(row["model_version"])
        validation = version_artifacts(row["model_name"], version, [Artifact.VALIDATION])[Artifact.VALIDATION].load()
        background = background_rows(validation, spec.data.model_features, governance.explanation_background_rows)
        threshold = (evaluation_outcome(row["model_name"], version) or {}).get("threshold")
        result = explain_logged(row, models[version], threshold, spec.data, background,
                                governance.explanation_top_features)
        explained.rows.append(RowExplanation(row, version, result, threshold, review, lineages.get(version)))
        if not result["same_score"]:
            break
    return explained
