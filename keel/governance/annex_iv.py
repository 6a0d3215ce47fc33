"""Technical documentation after the EU AI Act's Annex IV, assembled only from recorded evidence:
the spec, the model version's metadata, the evaluation run's reports and the audit trail. Each row
names where its statement comes from. Rendered as Markdown and as static HTML."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import List, Optional

from keel import registration as keys
from keel.data.screening import screening_rows, sensitive_inputs
from keel.data.split import periods_text
from keel.evaluation.record import gate_history
from keel.governance.audit import DEPLOYMENT_OUTCOME, EVALUATED
from keel.governance.timeline import describe_split, served_at
from keel.provenance import source_text
from keel.reports import html
from keel.reports.values import format_value as _fmt

SPEC, METADATA, EVALUATION, AUDIT = "spec", "model version metadata", "evaluation run", "audit trail"


def settings_rows(model, prefix: str, evidence: str) -> List[tuple]:
    """Every field of a spec section with its value and its declared meaning, whatever fields it has."""
    rows = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}.{name}"
        if hasattr(type(value), "model_fields"):
            rows += settings_rows(value, key, evidence)
        else:
            dumped = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
            meaning = f" — {info.description}" if info.description else ""
            rows.append((key, f"{_fmt(dumped)}{meaning}", evidence))
    return rows


def _section(title: str, text: str, rows: List[tuple]) -> dict:
    return {"title": title, "text": text, "rows": rows}


def metric_rows(metadata: dict, performance: Optional[dict]) -> List[tuple]:
    """Section 3's metrics, each threshold-dependent one labelled with its operating point: the
    evaluation's test metrics at the decision threshold (its performance report, as the model card
    shows them), then the training record's validation and test metrics at the threshold training
    scored at (0.5), never unlabelled beside the decision threshold. Threshold-free ones as they are."""
    from keel.training.metrics import THRESHOLD_METRICS, metrics_threshold_text

    rows = []
    if performance:
        at = f"{float(performance['threshold']):.4f}"
        rows += [(f"test {k}" + (f" @ {at} (decision threshold)" if k in THRESHOLD_METRICS else ""), v,
                  EVALUATION) for k, v in (performance.get("metrics") or {}).items()]
    trained_at = f" @ {metrics_threshold_text(metadata)} (training's fixed threshold, not the decision threshold)"
    # Beside the evaluation's rows, a threshold-free metric of the registration is named as such.
    registered = " (at registration)" if performance else ""
    for split, key in (("validation", keys.VALIDATION_METRICS), ("test", keys.TEST_METRICS)):
        rows += [(f"{split} {k}" + (trained_at if k in THRESHOLD_METRICS else registered), v, METADATA)
                 for k, v in (metadata.get(key) or {}).items()]
    return rows


def documentation_sections(spec, model: str, version: int, metadata: dict, reports: dict,
                           records: List[dict], monitoring_spec: Optional[tuple] = None) -> List[dict]:
    """`reports` holds the evaluation run's `fairness`, `robustness` and `performance` reports (None if
    not evaluated), and its `mitigation` report if it analysed one.
    `monitoring_spec`: (the monitoring section that `monitor` runs with, where it comes from); without
    it, the training spec's."""
    problem, data = spec.problem, spec.data
    evaluation = metadata.get(keys.EVALUATION) or {}
    mine = [r for r in records if r.get("version") == version]
    served = [r for r in records if any(a.get("version") == version for a in
                                        ((r.get("details") or {}).get("routing") or {}).get("arms", []))]
    rollbacks = [r for r in mine if r["event"] == "rollback"]  # a rollback record names the version rolled back
    fairness, robustness = reports.get("fairness"), reports.get("robustness")
    sections = [
        _section("1. General description and intended purpose", problem.objective, [
            ("Model", f"{model} v{version}", METADATA),
            ("Intended users", problem.intended_users, SPEC),
            ("Business metric", problem.business_metric, SPEC),
            ("Positive class", data.target.positive_meaning(), SPEC),
            ("Success criteria", "; ".join(c.describe() for c in problem.success_criteria), SPEC),
            ("High-stakes", "yes: every prediction is logged with its version and explainable on request"
             if spec.governance.high_stakes else "no", SPEC),
            ("Model family", metadata.get(keys.MODEL_FAMILY), METADATA),
            ("Registered by", next((f"{r['actor']} at {r['time']}" for r in mine if r["event"] == "training_run_registered"),
                                   None), AUDIT),
        ]),
        _section("2. Development process", "Data, features, training and the environment, as recorded at training.", [
            ("Data source", metadata.get(keys.DATA_SOURCE), METADATA),
            ("Data fingerprint (SHA-256)", metadata.get(keys.DATA_FINGERPRINT), METADATA),
            ("Rows (train / validation / test)", " / ".join(str((metadata.get(keys.ROWS) or {}).get(k, "-"))
                                                            for k in ("train", "validation", "test")), METADATA),
            ("Split", f"{spec.split.strategy}, validation {spec.split.validation_fraction:g}, "
                      f"test {spec.split.test_fraction:g}"
                      + ("" if spec.split.strategy == "time" else f", seed {spec.split.seed}"), SPEC),
            *([(f"Periods ({data.time_column})", periods_text(metadata[keys.SPLIT_PERIODS]), METADATA)]
              if metadata.get(keys.SPLIT_PERIODS) else []),
            ("Model inputs", ", ".join(data.model_features), SPEC),
            ("Sensitive attributes (not inputs unless stated)",
             ", ".join(f"{n}{' (input)' if a.use_as_feature else ''}" for n, a in data.sensitive_attributes.items()), SPEC),
            *[(f"{label} (screening)", detail, METADATA)
              for label, detail in screening_rows(metadata.get(keys.SCREENING), sensitive_inputs(data))],
            ("Candidates compared (validation " + str(metadata.get(keys.PRIMARY_METRIC)) + ")",
             metadata.get(keys.CANDIDATES_COMPARED), METADATA),
            ("Hyperparameters", metadata.get(keys.HYPERPARAMETERS), METADATA),
            ("Seed", metadata.get(keys.SEED), METADATA),
            ("Spec SHA-256", metadata.get(keys.SPEC_SHA256), METADATA),
            ("Git commit", f"{metadata.get(keys.GIT_COMMIT)}{' (uncommitted changes: ' + _fmt(metadata.get(keys.GIT_CHANGED_FILES)) + ')' if metadata.get(keys.GIT_DIRTY) else ''}", METADATA),
            ("Source SHA-256 (keel's code)", source_text(metadata), METADATA),
            ("Dependency lock SHA-256", metadata.get(keys.LOCK_SHA256), METADATA),
            ("Key packages", metadata.get(keys.PACKAGES), METADATA),
            ("Python / platform", f"{metadata.get(keys.PYTHON_VERSION)} / {metadata.get(keys.PLATFORM)}", METADATA),
            ("Model SHA-256 / size", f"{metadata.get(keys.MODEL_SHA256)} / {metadata.get(keys.MODEL_BYTES)} bytes", METADATA),
            ("Training run", f"{metadata.get(keys.RUN_NAME)} ({metadata.get(keys.RUN_ID)})", METADATA),
        ]),
        _section("3. Validation and testing", "Metrics on the validation split (selection) and the held-out test "
                 "split; the gates of the spec and their outcome.",
                 ([("Decision threshold", f"{evaluation['threshold']:.4f} (rule {evaluation.get('threshold_rule')})",
                    EVALUATION)] if evaluation.get("threshold") is not None else [])
                 + metric_rows(metadata, reports.get("performance"))
                 + [("Evaluation decision", evaluation.get("decision", "not evaluated"),
                     f"{EVALUATION} {evaluation.get('run_name', '')}".strip())]),
        {"title": "Gate table", "text": "", "rows": [], "gates": [
            (g["gate"], g.get("value"), "pass" if g["passed"] else "FAIL") for g in evaluation.get("gates", [])]},
        _section("Gate history", "Which gates each evaluation of this version applied, oldest first; a pass that "
                 "came only after gates were loosened or removed is marked LOOSENED.",
                 [(f"{h['time']} {h['run_name'] or ''}".strip(),
                   f"{h['decision']}: {h['gates']}" + (f" (changes: {h['changes']})" if h["changes"] != "-" else ""),
                   AUDIT) for h in gate_history(records, version)]
                 or [("evaluations", "none recorded", AUDIT)]),
    ]
    sections += released_evaluation_sections(records, version, evaluation)
    fairness_rows = []
    if fairness:
        if fairness.get("favourable_decision"):  # evaluations before favourable outcomes were explicit lack it
            fairness_rows += [("favourable decision (whose rates are compared)", fairness["favourable_decision"],
                               EVALUATION),
                              ("orientation of the rates", fairness["orientation"], EVALUATION),
                              ("small-group rule", fairness["rule"]["text"], EVALUATION)]
        fairness_rows += [(f"worst {m}", fairness.get(m), EVALUATION) for m in
                          ("demographic_parity_ratio", "demographic_parity_difference", "equalized_odds_difference")]
        for name, attribute in fairness["attributes"].items():
            fairness_rows.append((f"{name}: parity ratio / equalized-odds difference",
                                  f"{_fmt(attribute['demographic_parity_ratio'])} / {_fmt(attribute['equalized_odds_difference'])}"
                                  + (f"; too small to judge: {', '.join(attribute['too_small'])}" if attribute["too_small"] else ""),
                                  EVALUATION))
    if robustness:
        fairness_rows += [(f"robustness: {robustness['metric']} drop, {k}", v, EVALUATION)
                          for k, v in robustness["all_features"].items()]
        fairness_rows.append(("robustness: hostile inputs answered", robustness["hostile_inputs"]["passed"], EVALUATION))
    sections.append(_section("4. Fairness and robustness findings",
                             "" if fairness_rows else "No evaluation run is recorded for this version.", fairness_rows))
    sections += mitigation_sections(metadata, reports)
    rule = spec.deployment.approval
    sections.append(_section("5. Risk controls", "What was applied to this version, from the registry's "
                             "evaluation and deployment records; the spec only where nothing was applied.",
                             risk_control_rows(spec, metadata, version, records) + [
        ("Rollbacks of this version", "; ".join(f"at {r['time']} to " + ", ".join(f"v{a['version']} {a['weight']:.0%}" for a in r['details']['routing']['arms'])
                                                 for r in rollbacks) or "none", AUDIT),
        ("Routing stages recorded that served this version", len(served), AUDIT),
    ]))
    sections.append(_section("6. Human oversight", oversight_text(spec),
                             oversight_rows(spec, version, evaluation, records, rule.auto_approve)
                             + referral_rows(spec, version, records)))
    monitoring, source = monitoring_spec if monitoring_spec is not None else (spec.monitoring, "the training spec")
    sections.append(_section("7. Post-market monitoring plan",
                             f"The `monitoring` section of {source}, every setting.",
                             settings_rows(monitoring, "monitoring", SPEC)))
    sections.append({"title": "8. Change log", "text": "Every audit record of this version or its training run, "
                     "and every routing change that gave it traffic.", "rows": [],
                     "changes": [(r["seq"], r["time"], r["event"], r["actor"], _change(r))
                                 for r in records if r.get("version") == version or r in served
                                 or (r.get("run_id") and r.get("run_id") == metadata.get(keys.RUN_ID))]})
    return sections


def released_on(records: List[dict], version: int) -> Optional[dict]:
    """The audit trail's `evaluated` record of the evaluation that `version`'s latest deployment to
    serve it relied on: the version's last evaluation recorded before that deployment's outcome (a
    deployment checks the version's latest evaluation). None if no deployment left it serving."""
    outcomes = [r for r in records if r.get("event") == DEPLOYMENT_OUTCOME and r.get("version") == version
                and (r.get("details") or {}).get("serving") == version]
    if not outcomes:
        return None
    return next((r for r in reversed(records) if r.get("event") == EVALUATED and r.get("version") == version
                 and r["seq"] < outcomes[-1]["seq"]), None)


def released_evaluation_sections(records: List[dict], version: int, evaluation: dict) -> List[dict]:
    """When the version was deployed on an evaluation other than its latest (re-evaluated since, and
    perhaps failed or rejected), the evidence it was released on, from the audit trail: sections 3 and 4
    show the latest evaluation only."""
    record = released_on(records, version)
    if record is None or record.get("run_id") == evaluation.get("run_id"):
        return []
    released = record.get("details") or {}
    latest = f"{evaluation.get('run_name') or evaluation.get('run_id') or '-'} ({evaluation.get('decision', '-')})"
    rows = [("Evaluation run", f"{released.get('run_name') or record.get('run_id')} ({record.get('run_id')}), "
             f"recorded at {record['time']}", f"{AUDIT} record {record['seq']}"),
            ("Decision", released.get("decision"), AUDIT)]
    if released.get("threshold") is not None:
        rows.append(("Decision threshold", f"{released['threshold']:.4f} (rule {released.get('threshold_rule')})",
                     AUDIT))
    section = _section("3a. Evaluation the deployment relied on",
                       f"The version was last deployed on this evaluation; it has been evaluated since (latest: "
                       f"{latest}), and sections 3 and 4 show that latest evaluation.", rows)
    section["gates"] = [(g["gate"], g.get("value"), "pass" if g["passed"] else "FAIL")
                        for g in released.get("gates", [])]
    return [section]


def oversight_text(spec) -> str:
    governance = spec.governance
    if governance.roles is None:
        return ("Who trained, validated and approved this version, from the audit trail. The spec declares no "
                "governance.roles: no role checks or maker-checker applied, and names given with --by were not verified.")
    roles = "; ".join(f"{role}: {', '.join(names)}" for role, names in governance.roles.items())
    expiry = (f"approvals expire after {governance.approval_valid_days} day(s)" if governance.approval_valid_days
              else "approvals do not expire")
    return (f"Who trained, validated and approved this version, from the audit trail. Roles ({roles}); maker-checker: "
            f"{governance.required_approvals} distinct approver(s), neither the trainer nor the evaluator, each "
            f"approval bound to one evaluation run and its gate results; {expiry}.")


def referral_rows(spec, version: int, records: List[dict]) -> List[tuple]:
    """Decisions a person takes: the refer band, and the referrals of this version decided so far (the audit
    trail's review_decided records), with how many went against the model's own decision."""
    from keel.lifecycle.review import REVIEW_DECIDED

    band = spec.decisions.refer_band
    if band is None:
        return [("Referral to a person", "none: decisions.refer_band is not set, every decision is the model's", SPEC)]
    decided = [r for r in records if r.get("version") == version and r.get("event") == REVIEW_DECIDED]
    overridden = sum(bool((r.get("details") or {}).get("overrides_model")) for r in decided)
    return [("Referral to a person", f"scores in [{band[0]:g}, {band[1]:g}) are referred to a person, who decides each "
             "with a recorded reason (`run.py review`)", SPEC),
            ("Referrals decided", f"{len(decided)}, of which {overridden} against the model's own decision"
             if decided else "none yet", AUDIT)]


def oversight_rows(spec, version: int, evaluation: dict, records: List[dict], auto_approve: bool) -> List[tuple]:
    """Trained by, validated by, each approval (counted or why not), refusals and break-glass actions,
    each with its identity's source (authenticated by a ZenML server, an OS account, or a name as given)."""
    from keel.governance.timeline import oversight

    found = oversight(records, version)
    rows = [(f"{label} (audit, {source})", f"{actor} at {time}: {what}", AUDIT)
            for key, label in (("trained", "trained by"), ("validated", "validated by"))
            for time, actor, source, what in found[key]]
    status = _approval_status(spec, version, evaluation, records)
    counted = {(a.get("actor"), a.get("at")) for a in status.counted} if status else set()
    for approval in [r for r in records if r.get("version") == version and r.get("event") == "approved"]:
        from keel.governance.timeline import describe_oversight, identity_source

        verdict = ""
        if status is not None:
            key = (approval["actor"], approval["details"].get("at"))
            why = next((w for a, w in status.void if (a.get("actor"), a.get("at")) == key), None)
            verdict = " — counts" if key in counted else f" — does not count: {why}"
        rows.append((f"approval (audit record {approval['seq']}, {identity_source(approval)})",
                     f"{approval['time']} {describe_oversight(approval)}{verdict}", AUDIT))
    if not found["approved"]:
        rows.append(("approvals", "none recorded" + (" (the spec auto-approves)" if auto_approve else ""), AUDIT))
    if status is not None:
        rows.append(("approved for production now", f"{'yes' if status.approved else 'NO'}: {status.summary()}", AUDIT))
    rows += [(f"BREAK-GLASS (audit, {source})", f"{time}: {what}", AUDIT) for time, _, source, what in found["break_glass"]]
    rows += [(f"refused (audit, {source})", f"{time}: {what}", AUDIT) for time, _, source, what in found["refused"]]
    return rows


def _approval_status(spec, version: int, evaluation: dict, records: List[dict]):
    """With roles: which approvals count against the version's latest evaluation (the trail and the
    version's metadata only)."""
    if spec.governance.roles is None:
        return None
    from keel.clock import utc_now
    from keel.governance.roles import approval_status, trail_approvals, trail_makers

    makers = trail_makers(records, version, evaluation.get("run_id"))
    return approval_status(version, evaluation or None, trail_approvals(records, version),
                           makers["trained"] + makers["evaluated"], spec.governance.required_approvals,
                           spec.governance.approval_valid_days, utc_now(), roles=spec.governance.roles)


def mitigation_sections(metadata: dict, reports: dict) -> List[dict]:
    """The fairness mitigation this version ships (its metadata) and the evaluation run's mitigation
    analysis (`reports["mitigation"]`), each with every gate metric before and after."""
    from keel.evaluation.mitigation import describe_mitigation

    sections = []
    for title, facts, evidence in (("4a. Fairness mitigation of this version", metadata.get(keys.MITIGATION), METADATA),
                                   ("4b. Fairness mitigation analysis", reports.get("mitigation"), EVALUATION)):
        if facts:
            text, rows = describe_mitigation(facts)
            sections.append(_section(title, text, [(item, value, evidence) for item, value in rows]))
    return sections


NOT_DEPLOYED = "not deployed"


def risk_control_rows(spec, metadata: dict, version: int, records: List[dict]) -> List[tuple]:
    """The gates, approval, rollout and health checks as applied to the version (its `evaluation` and
    `deployment` metadata), not as the training run's spec declared them: the version may have been
    evaluated or deployed under another spec, or never. What serves now comes from the audit trail's
    `records`: the deployment metadata's `serving` is what its rollout left, history once anything
    rolled back or replaced it."""
    evaluation, deployment = metadata.get(keys.EVALUATION) or {}, metadata.get(keys.DEPLOYMENT) or {}
    if evaluation.get("gates"):
        gates = ("; ".join(f"{g['gate']}: {'pass' if g['passed'] else 'FAIL'}" for g in evaluation["gates"])
                 + f" -> {evaluation.get('decision')}", f"{EVALUATION} {evaluation.get('run_name', '')}".strip())
    else:
        gates = ("not evaluated; the training spec declares: "
                 + ("; ".join(g.describe() for g in spec.evaluation.gates) or "none"), SPEC)
    rows = [("Gates applied", *gates)]
    if not deployment:
        return rows + [("Approval before production", NOT_DEPLOYED, METADATA), ("Rollout", NOT_DEPLOYED, METADATA),
                       ("Health checks (automatic rollback on breach)", NOT_DEPLOYED, METADATA)]
    approval = deployment.get("approval") or metadata.get(keys.APPROVAL)
    if isinstance(approval, dict):
        approval = f"approved by {approval.get('by')} at {approval.get('at')}: {approval.get('reason')}"
    stages = deployment.get("stages") or []
    rows.append(("Approval before production", approval or (
        "awaiting approval" if deployment.get("outcome") == "awaiting approval" else "none recorded"), METADATA))
    rows.append(("Rollout", f"{deployment.get('strategy')}"
                 + (f" {', '.join(str(s.get('step')) for s in stages)}" if stages else "")
                 + f": {deployment.get('outcome')}" + _serving_text(deployment, version, records),
                 METADATA))
    rows.append(("Health checks (automatic rollback on breach)",
                 "; ".join(f"stage {s.get('stage')} {s.get('step')}: "
                           + ("healthy" if s.get("healthy") else "BREACH: " + "; ".join(s.get("breaches") or []))
                           for s in stages) or "no rollout stage ran", METADATA))
    return rows


def _serving_text(deployment: dict, version: int, records: List[dict]) -> str:
    """Which version the deployment left serving and since when (its outcome's audit record), and
    "now serving" only for what the trail's latest routing serves."""
    serving = deployment.get("serving")
    if serving is None:
        return ""
    # The metadata holds the version's last recorded outcome, so its time is the last such record's.
    outcomes = [r for r in records if r.get("event") == DEPLOYMENT_OUTCOME and r.get("version") == version]
    text = f", served v{serving}" + (f" from {outcomes[-1]['time']}" if outcomes else "")
    latest = served_at(records, datetime.max.replace(tzinfo=timezone.utc))
    if latest is None:
        return text + " (no routing recorded in the audit trail to say what serves now)"
    split = describe_split(latest["arms"], latest["shadow"])
    if any(a["version"] == serving and a["weight"] > 0 for a in latest["arms"]):
        return text + f"; now serving v{serving}: {split} since {latest['since']}"
    return text + f"; no longer: since {latest['since']} the audit trail routes {split} (record {latest['seq']})"


def _change(record: dict) -> str:
    details = record.get("details") or {}
    if details.get("routing"):
        return "routing " + ", ".join(f"v{a['version']} {a['weight']:.0%}" for a in details["routing"]["arms"])
    shown = ("decision", "stage", "by", "reason", "outcome", "passed", "model_sha256")
    return _fmt({k: details[k] for k in shown if k in details})


def documentation_markdown(model: str, version: int, sections: List[dict], audit_head: Optional[str]) -> str:
    lines = [f"# Technical documentation: {model} v{version}", "",
             "Structured after Annex IV of the EU AI Act. Generated by `run.py docs` from recorded evidence; "
             f"audit trail head hash {audit_head or '-'}.", ""]
    for section in sections:
        lines += [f"## {section['title']}", ""]
        if section["text"]:
            lines += [section["text"], ""]
        if section["rows"]:
            lines += ["| item | value | evidence |", "|---|---|---|"]
            lines += [f"| {k} | {_fmt(v).replace('|', '/')} | {e} |" for k, v, e in section["rows"]]
            lines.append("")
        if section.get("gates") is not None:
            lines += ["| gate | value | result |", "|---|---|---|"]
            lines += [f"| {g} | {_fmt(v)} | {r} |" for g, v, r in section["gates"]] or ["| (not evaluated) | | |"]
            lines.append("")
        if section.get("changes") is not None:
            lines += ["| seq | time (UTC) | event | actor | details |", "|---|---|---|---|---|"]
            lines += [f"| {s} | {t} | {e} | {a} | {d.replace('|', '/')} |" for s, t, e, a, d in section["changes"]]
            lines.append("")
    return "\n".join(lines)


def documentation_html(model: str, version: int, sections: List[dict], audit_head: Optional[str]) -> str:
    parts = [html.paragraph("Structured after Annex IV of the EU AI Act; generated from recorded evidence. "
                            f"Audit trail head hash {audit_head or '-'}.")]
    for section in sections:
        parts.append(html.heading(section["title"]))
        if section["text"]:
            parts.append(html.paragraph(section["text"]))
        if section["rows"]:
            parts.append(html.table(["item", "value", "evidence"], [(k, _fmt(v), e) for k, v, e in section["rows"]]))
        if section.get("gates") is not None:
            parts.append(html.table(["gate", "value", "result"],
                                    [(g, v, html.verdict(r == "pass", r)) for g, v, r in section["gates"]]))
        if section.get("changes") is not None:
            parts.append(html.table(["seq", "time (UTC)", "event", "actor", "details"], section["changes"]))
    return html.page(f"Technical documentation: {model} v{version}", *parts)
