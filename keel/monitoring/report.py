"""The drift report: static HTML with inline SVG (the dashboard shows it in a sandboxed iframe)."""

from __future__ import annotations

from typing import Optional

from keel.monitoring.drift import performance_verdict
from keel.monitoring.records import DriftStatus, RetrainingDecision
from keel.reports.html import Raw, heading, key_values, page, paragraph, table, verdict
from keel.reports.svg import bar_chart
from keel.reports.values import format_value


def drift_report_html(status: DriftStatus, decision: Optional[RetrainingDecision] = None) -> str:
    window = status.get("window", {})
    verdict_info = status.get("verdict", {})
    sections = [
        key_values({"model": f"{status.get('model')} v{status.get('model_version')}",
                    "window": f"{window.get('window')} from {window.get('start')} to {window.get('end')}",
                    "predictions in the window": window.get("rows"),
                    "new predictions profiled in this pass": window.get("new_rows"),
                    "verdict": verdict(not verdict_info.get("alarm"), verdict_info.get("summary", "-"))}),
    ]
    if not status.get("judged"):
        sections.append(paragraph(status.get("reason") or "not judged"))
    features = status.get("features", {})
    rows = []
    for name, f in sorted(features.get("features", {}).items(), key=lambda item: -(item[1].get("effect") or 0)):
        rows.append((name, f.get("test") or "-", format_value(f.get("p_value")), format_value(f.get("effect")),
                     f.get("min_effect"), format_value(f.get("target_null_fraction")),
                     format_value(f.get("reference_null_fraction")), ", ".join(f.get("unseen_categories", [])) or "-",
                     f.get("problem") or "-", verdict(not f.get("drifted"), "DRIFT" if f.get("drifted") else "stable")))
    sections.append(heading("Data drift per feature"))
    sections.append(paragraph(
        "Numbers: Kolmogorov-Smirnov test on whylogs' KLL sketches (effect = largest CDF distance). "
        "Categories: two-sample chi-square on the category counts of whylogs' frequent items, categories "
        "expected fewer than 5 times pooled (effect = total variation distance). "
        f"A feature drifts when p < {features.get('alpha') or 0:.2g} (the spec's p-value over "
        f"{features.get('tested', 0)} features tested) and the effect reaches the minimum."))
    if rows:
        sections.append(bar_chart([r[0] for r in rows], [float(r[3]) if r[3] != "-" else 0.0 for r in rows],
                                  title="effect size per feature"))
        sections.append(table(["feature", "test", "p-value", "effect", "min effect", "null fraction",
                               "reference null fraction", "categories absent from the training rows", "problem",
                               "verdict"], rows))
    prediction = status.get("prediction", {})
    sections.append(heading("Prediction drift"))
    sections.append(key_values({"score KS distance": format_value(prediction.get("score_ks")),
                                "score p-value": format_value(prediction.get("score_p_value")),
                                "decision rate": format_value(prediction.get("decision_rate")),
                                "reference decision rate": format_value(prediction.get("reference_decision_rate")),
                                "verdict": verdict(not prediction.get("drifted"),
                                                   "DRIFT" if prediction.get("drifted") else "stable")}))
    labels = status.get("labels", {})
    label = status.get("label", {})
    performance = status.get("performance", {})
    sections.append(heading("Delayed labels, label drift and performance"))
    sections.append(key_values({
        "labels read": labels.get("labels") if not labels.get("source_not_found")
        else f"none: {labels['source_not_found']} (performance and label drift not judged)",
        "joined to this version's predictions, known in this window": labels.get("matched"),
        "known before this window (judged earlier)": labels.get("known_before_window"),
        "for another version's predictions": labels.get("other_versions"),
        "empty labels (unlabelled)": labels.get("missing_labels"),
        "values that are neither class": f"{labels.get('unknown_label_values', 0)} "
                                         f"{labels.get('unknown_value_examples') or ''}".strip(),
        "labels for unknown ids (not predicted)": f"{labels.get('unknown_ids', 0)} "
                                                  f"{labels.get('unknown_examples') or ''}".strip(),
        "labels dated before their prediction": labels.get("before_prediction"),
        "duplicate labels": labels.get("duplicates"), "unreadable label times": labels.get("unreadable_times"),
        "labels dated in the future (not used)": labels.get("future_times"),
        "positive rate (window / training)": f"{format_value(label.get('rate'))} / {format_value(label.get('reference_rate'))}",
        "label drift": verdict(not label.get("drifted"), "DRIFT" if label.get("drifted")
                               else ("stable" if label.get("judged") else label.get("reason", "not judged"))),
        f"{performance.get('metric')} (window / test)": f"{format_value(performance.get('value'))} / "
                                                          f"{format_value(performance.get('reference'))}",
        "performance drift": verdict(not performance.get("drifted"), performance_verdict(performance)),
        "concept drift": verdict(not verdict_info.get("concept_drift"),
                                 "YES: performance fell while inputs were stable" if verdict_info.get("concept_drift")
                                 else "no"),
    }))
    if status.get("production") is not None:
        sections += production_sections(status["production"])
    if decision is not None:
        sections.append(heading("Continuous-training decision"))
        sections.append(table(["trigger", "enabled", "fired", "evidence"],
                              [(t["trigger"], t["enabled"], verdict(not t["fired"], "FIRED" if t["fired"] else "no"),
                                Raw("<code>" + _escape_json(t["evidence"]) + "</code>"))
                               for t in decision.get("triggers", [])]))
        outcome = ("retrain" if decision.get("retrain") else
                   f"no retraining ({decision.get('suppressed_by') or 'no trigger fired'})")
        sections.append(paragraph(f"decision: {outcome}"))
    return page(f"Monitoring: {status.get('model')} v{status.get('model_version')}", *sections)


def production_sections(production: dict) -> list:
    """Fairness per group in the window, label coverage per decision, referrals and overrides."""
    verdict_text = production.get("verdict", "not judged")
    sections = [heading("Decisions and fairness in production"),
                key_values({"predictions of this version in the window": format_value(production.get("rows")),
                            "fairness": verdict(verdict_text in ("pass", "reported", "not watched"), verdict_text)})]
    problems = ([("breach", b) for b in production.get("breaches", [])]
                + [("not judged", u) for u in production.get("not_judged", [])]
                + [("judged", j) for j in production.get("judged_on", [])])
    if problems:
        sections.append(table(["finding", "detail"], problems))
    for attribute, found in sorted((production.get("fairness") or {}).items()):
        sections.append(paragraph(f"{attribute}: parity ratio {format_value(found['parity_ratio'])}, TPR gap "
                                  f"{format_value(found['tpr_gap'])}, {found['rows_without_group']} rows without their group"))
        sections.append(table(["group", "rows", "favourable rate", "95% interval", "judged", "labelled rows", "TPR"],
                              [(g["group"], g["rows"], g["favourable_rate"],
                                f"{g['favourable_rate_low']}-{g['favourable_rate_high']}",
                                "yes" if g["judged"] else f"no: {g['reason']}", g["labelled_rows"],
                                format_value(g["tpr"]) if g["tpr"] is not None else f"- ({g['tpr_reason']})")
                               for g in found["groups"]]))
    coverage = production.get("label_coverage")
    if coverage is not None:
        sections.append(key_values({"labels known for favourable decisions": format_value(coverage["favourable"]),
                                    "labels known for unfavourable decisions": format_value(coverage["unfavourable"]),
                                    "selective labels": verdict(not coverage["selective"],
                                                                coverage["note"] or "no")}))
    reviews = production.get("reviews")
    if reviews is not None:
        sections.append(key_values({"referred to a person (decisions.refer_band)": reviews["referred"],
                                    "refer rate": format_value(reviews.get("refer_rate")),
                                    "decided by a person": reviews["decided"],
                                    "human override rate": format_value(reviews["override_rate"])}))
    sections += refusal_sections(production)
    return sections


def refusal_sections(production: dict) -> list:
    """Requests refused for their records' content in the window, and what was refused most: no prediction
    is logged for them, so nothing above sees them."""
    refusals = production.get("refusals")
    if refusals is None:
        note = production.get("refusals_note")
        return [paragraph(f"refused requests: {note}")] if note else []
    sections = [key_values({"requests refused for their records' content (422)": refusals["refused_requests"],
                            "requests answered": refusals["answered_requests"],
                            "refusal rate": format_value(refusals["refusal_rate"])})]
    if refusals["most_refused"]:
        sections.append(table(["field", "value", "problem", "requests"],
                              [(r["field"], "-" if r["found"] is None else r["found"], r["problem"], r["requests"])
                               for r in refusals["most_refused"]]))
    return sections


def _escape_json(value) -> str:
    import json
    from html import escape

    return escape(json.dumps(value, default=str))


def profile_html(profile) -> str:
    """A profile's columns: count, missing, mean and quantiles, or the most frequent categories."""
    from keel.monitoring.profiles import column_summary

    rows = []
    for name in profile.columns:
        s = column_summary(profile, name)
        quantiles = s["quantiles"] or {}
        top = sorted((s["frequencies"] or {}).items(), key=lambda item: -item[1])[:5]
        rows.append((name, s["kind"], s["count"], format_value(s["null_fraction"]), format_value(s["mean"]),
                     format_value(quantiles.get(0.01)), format_value(quantiles.get(0.5)), format_value(quantiles.get(0.99)),
                     ", ".join(f"{k}: {v}" for k, v in top) or "-"))
    return page("Profile (whylogs)", paragraph(f"{profile.rows()} rows, {len(profile.columns)} columns"),
                table(["column", "kind", "count", "null fraction", "mean", "p1", "median", "p99",
                       "top categories"], rows))
