"""`run.py explain --prediction ID`: why a logged prediction came out as it did."""

from __future__ import annotations

from typing import Optional

from keel.cli.console import fail, format_table, say


def explain(spec, request_id: str, row_number: Optional[int] = None) -> int:
    from keel.deployment.deploy import prediction_log_url
    from keel.governance.explanations import explain_logged
    from keel.governance.lineage import logged_rows

    try:
        rows = logged_rows(prediction_log_url(spec), request_id, row_number, answered_only=True)
    except LookupError as error:
        return fail(f"keel: {error}", 1)
    if row_number is None and len(rows) > 1:
        return fail(f"keel: request {request_id} scored {len(rows)} records; choose one with --row N "
                    f"({rows[0]['row']}..{rows[-1]['row']})", 2)
    from keel.cli.lineage import TamperedTrail, print_links, verified_records, version_links
    from keel.artifacts import Artifact
    from keel.registry import evaluation_outcome, load_version_model, version_artifacts

    governance, name = spec.governance, spec.problem.name
    try:  # a high-stakes answer's lineage must come from an intact trail, and the version be in this registry
        trails = {r["model_name"]: verified_records(r["model_name"]) for r in rows} if governance.high_stakes else {}
        models = {int(r["model_version"]): load_version_model(r["model_name"], int(r["model_version"])) for r in rows}
        lineages = {int(r["model_version"]): version_links(r["model_name"], int(r["model_version"]), trails[r["model_name"]])
                    for r in rows} if governance.high_stakes else {}
    except (LookupError, TamperedTrail) as error:
        return fail(f"keel: {error}", 1)
    for row in rows:
        version = int(row["model_version"])
        model = models[version]
        background = version_artifacts(row["model_name"], version, [Artifact.VALIDATION])[Artifact.VALIDATION].load()
        background = background[spec.data.model_features].head(governance.explanation_background_rows)
        threshold = (evaluation_outcome(row["model_name"], version) or {}).get("threshold")
        result = explain_logged(row, model, threshold, spec.data, background, governance.explanation_top_features)
        say(f"prediction {row['request_id']} row {row['row']} (entity {row['entity_id']}, {row['time'].isoformat()}): "
            f"{name} v{version}, arm {row['arm']}")
        say(f"  score {result['logged_score']:.6f} (recomputed by v{version}: {result['recomputed_score']:.6f}, "
            f"{'the same' if result['same_score'] else 'DIFFERENT: the stored model is not the one that answered'}); "
            f"decision {result['decision']}" + (f" at threshold {threshold:.4f}" if threshold is not None else ""))
        say("  SHAP contributions (log-odds; positive pushes towards "
            f"'{spec.data.target.positive_label}'), from the base value to the model's raw output:")
        say(format_table(["feature", "value", "contribution"],
                         [("(base value: the expected raw output)", "", result["base_value"])]
                         + [(feature, value, contribution) for feature, contribution, value in result["contributions"]]
                         + ([("(all other features)", "", result["other_features"])] if result["other_features"] else [])
                         + [("= raw output (log-odds)", "", result["raw_output"])]))
        if governance.high_stakes:  # a high-stakes answer carries its whole lineage
            say("  lineage:")
            print_links(lineages[version])
        if not result["same_score"]:
            return 1
    return 0
