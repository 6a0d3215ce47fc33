"""`run.py explain --prediction ID`: why a logged prediction came out as it did."""

from __future__ import annotations

import json
from typing import List, Optional

from keel.cli.console import fail, format_table, say


# The prediction log is not tamper-evident and the model artifact is checked by its content hash when
# loaded: a row edited after it was written is the likelier of the two.
DIFFERENT_SCORE = ("DIFFERENT: the logged row was changed after it was written, or the stored model is not the one "
                   "that answered (reproduce --model-version checks the model)")


def decision_lines(row: dict, review: Optional[dict], target) -> List[str]:
    """What the person was told and who decided: the principal reasons logged with an unfavourable
    decision (as the answer gave them), and a referral with the human decision once made (and the
    reasons logged at referral, unless a person decided it favourably)."""
    from keel.governance.lineage import human_decision_favourable, referral_links
    from keel.serving.reasons import reason_text

    lines, favourable = [], None
    if review is not None:
        lines += [text if link == "referral" else f"  {link}: {text}"
                  for link, text in referral_links(review, target=target)]
        favourable = human_decision_favourable(review, target)
    reasons = row.get("reasons")
    if isinstance(reasons, str):  # as the log stores it (JSON text)
        reasons = json.loads(reasons)
    if reasons and review is not None:  # logged at referral, for a person who declines it
        if favourable:
            return lines
        lines.append("principal reasons for the person's unfavourable decision (the model's, logged at referral):"
                     if review["decided_at"] is not None else
                     "principal reasons, should a person decline it (the model's, logged at referral):")
    elif reasons:
        lines.append("principal reasons given with the answer:")
    elif review is None:
        lines.append("principal reasons: none logged (a favourable decision, a version that gives none, or a "
                     "prediction logged before reasons were)")
    lines += [f"  {reason_text(i, r)}" for i, r in enumerate(reasons or [], 1)]
    return lines


def explain(spec, request_id: str, row_number: Optional[int] = None) -> int:
    from keel.lifecycle.explanation import explain_prediction

    explained = explain_prediction(spec, request_id, row_number)
    if explained.error is not None:
        return fail(explained.error, explained.exit_code)
    from keel.cli.lineage import print_links

    for shown in explained.rows:
        row, version, result, threshold = shown.row, shown.version, shown.result, shown.threshold
        say(f"prediction {row['request_id']} row {row['row']} (entity {row['entity_id']}, {row['time'].isoformat()}): "
            f"{spec.problem.name} v{version}, arm {row['arm']}")
        say(f"  score {result['logged_score']:.6f} (recomputed by v{version}: {result['recomputed_score']:.6f}, "
            f"{'the same' if result['same_score'] else DIFFERENT_SCORE}); "
            f"decision {result['decision']}" + (f" at threshold {threshold:.4f}" if threshold is not None else ""))
        for line in decision_lines(row, shown.review, spec.data.target):
            say(f"  {line}")
        say("  SHAP contributions (log-odds; positive pushes towards "
            f"'{spec.data.target.positive_label}'), from the base value to the model's raw output:")
        say(format_table(["feature", "value", "contribution"],
                         [("(base value: the expected raw output)", "", result["base_value"])]
                         + [(feature, value, contribution) for feature, contribution, value in result["contributions"]]
                         + ([("(all other features)", "", result["other_features"])] if result["other_features"] else [])
                         + [("= raw output (log-odds)", "", result["raw_output"])]))
        if shown.lineage is not None:  # a high-stakes answer carries its whole lineage
            say("  lineage:")
            print_links(shown.lineage)
    return explained.exit_code
