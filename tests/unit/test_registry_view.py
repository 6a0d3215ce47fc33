"""The model-registry page: versions newest first with stage, metrics, gate outcomes, approvals and
deployments; an interrupted registration is shown as one; user-written text (approval reasons) is
escaped; no script anywhere."""

from datetime import datetime

from keel.reports.registry_view import registry_html, version_row


def _version(number, stage, passed=None, approval=None, deployment=None):
    metadata = {"model_family": "lightgbm", "primary_metric": "roc_auc",
                "keel_registration": {"started_at": "2026-11-26T10:00", "run_id": f"run-{number}",
                                      "completed_at": "2026-11-26T10:01"},
                "validation_metrics": {"roc_auc": 0.8 + number / 100}, "test_metrics": {"roc_auc": 0.79 + number / 100}}
    if passed is not None:
        metadata["evaluation"] = {
            "decision": "promote to staging" if passed else "reject", "passed": passed,
            "failed": [] if passed else ["roc_auc >= 0.9"],
            "gates": [{"gate": "roc_auc >= 0.9" if not passed else "roc_auc >= 0.75", "value": 0.81,
                       "passed": passed},
                      {"gate": "demographic_parity_ratio (sex) in [0.8, 1.25]", "value": 0.93, "passed": True}]}
    if approval:
        metadata["approval"] = approval
    if deployment:
        metadata["deployment"] = deployment
    return {"number": number, "stage": stage, "created": datetime(2026, 11, 26, 10, number), "metadata": metadata}


VERSIONS = [
    _version(1, "archived", passed=True, approval={"by": "ana", "reason": "ticket RISK-1", "at": "2026-11-26T10:05"},
             deployment={"outcome": "promoted", "strategy": "all-at-once"}),
    _version(2, "production", passed=True,
             approval={"by": "bo", "reason": "<script>alert(1)</script> & more", "at": "2026-11-26T11:00"},
             deployment={"outcome": "promoted", "strategy": "canary"}),
    _version(3, None, passed=False),
    _version(4, "staging", passed=True),
    _version(5, None),
]


def test_a_row_reads_the_recorded_metadata():
    row = version_row(VERSIONS[1])
    assert (row["number"], row["stage"], row["family"], row["decision"], row["passed"]) == \
        (2, "production", "lightgbm", "promote to staging", True)
    assert (row["approved_by"], row["deployment"], row["strategy"]) == ("bo", "promoted", "canary")
    assert round(row["validation"], 4) == 0.82 and round(row["test"], 4) == 0.81
    assert row["interrupted"] is False
    blank = version_row({"number": 9, "stage": None, "created": None, "metadata": {}})
    assert (blank["evaluated"], blank["passed"], blank["approved_by"], blank["validation"]) == (False, None, None, None)
    # Registered before keel marked registrations: complete when its run id (written last) is there.
    older = {"model_family": "lightgbm", "run_id": "abc"}
    assert version_row({"number": 8, "stage": None, "created": None, "metadata": older})["interrupted"] is False


def test_the_page_lists_versions_newest_first_with_stages_gates_and_approvals():
    page = registry_html("credit_risk", VERSIONS)
    assert "Model registry: credit_risk" in page
    positions = [page.index(f"<tr><td>v{n}</td>") for n in (5, 4, 3, 2, 1)]
    assert positions == sorted(positions)
    assert "<td>production</td><td>v2</td>" in page and "<td>staging</td><td>v4</td>" in page
    assert "failed: roc_auc &gt;= 0.9" in page and "all 2 passed" in page and "not evaluated" in page
    assert "ana: ticket RISK-1" in page and "promoted (canary)" in page
    assert page.count("<h2>v") == 4  # gate details of every evaluated version (at most 5)
    assert "v3: gates (reject)" in page


def test_user_text_is_escaped_and_the_page_has_no_script():
    page = registry_html("credit_risk", VERSIONS)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "<script" not in page.lower()


def test_a_model_without_versions_says_how_to_make_one():
    page = registry_html("credit_risk", [])
    assert "No version is registered yet" in page and "<table" not in page


def test_an_interrupted_registration_is_shown_as_one_not_as_a_version():
    killed = {"number": 6, "stage": None, "created": datetime(2026, 11, 26, 10, 6),
              "metadata": {"model_family": "lightgbm", "primary_metric": "roc_auc",
                           "validation_metrics": {"roc_auc": 0.99}, "test_metrics": {"roc_auc": 0.98},
                           "keel_registration": {"started_at": "2026-11-26T10:06:00+00:00", "run_id": "r6"}}}
    assert version_row(killed)["interrupted"] is True
    page = registry_html("credit_risk", VERSIONS + [killed])
    row = page[page.index("<tr><td>v6</td>"):page.index("<tr><td>v5</td>")]
    assert ">interrupted</span>" in row
    assert "registration interrupted (started 2026-11-26T10:06:00+00:00, never completed)" in row
    assert "0.99" not in row and "0.98" not in row  # its metrics are not offered as a version's
    assert "<td>interrupted registrations (nothing uses them)</td><td>v6</td>" in page
    assert "interrupted registrations" not in registry_html("credit_risk", VERSIONS)
