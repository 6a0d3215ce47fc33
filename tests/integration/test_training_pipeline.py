"""The training pipeline on a real (isolated, temporary) ZenML store."""

import pandas as pd
import pytest
from zenml import pipeline, step

from keel.data.generator import generate_credit_applications
from keel.provenance import collect_provenance
from keel.spec import load_spec, spec_hash
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

PROVENANCE_KEYS = {"git_commit", "git_dirty", "data_fingerprint", "spec_sha256", "hyperparameters",
                   "seed", "python_version", "packages", "lock_sha256", "validation_metrics",
                   "test_metrics", "model_sha256", "run_id", "data_source", "trials"}


def _run(spec, no_cache=False):
    from keel.lifecycle.pipeline_runs import run_pipeline
    from keel.data.sources import source_stamp
    from pipelines.training import training_pipeline

    return run_pipeline(training_pipeline, no_cache=no_cache, spec=spec, spec_hash=spec_hash(spec),
                        source_stamp=source_stamp(spec.data), provenance=collect_provenance())


def _versions(name):
    from keel.registry import list_model_versions

    return list_model_versions(name)


def test_training_registers_a_version_with_full_provenance(small_spec):
    outcome = _run(small_spec)
    assert outcome.error is None
    number = outcome.run.steps["register_model_step"].output.load()
    record = {v["number"]: v for v in _versions("credit_risk")}[number]["metadata"]
    assert PROVENANCE_KEYS - {"trials"} <= set(record)
    assert record["spec_sha256"] == spec_hash(small_spec)
    assert record["seed"] == small_spec.training.seed
    assert record["packages"]["zenml"] == "0.98.0"
    assert record["rows"] == {"train": 1200, "validation": 400, "test": 400}
    assert 0.6 < record["test_metrics"]["roc_auc"] <= 1

    # Every search trial is on record as step metadata.
    search = outcome.run.steps["search_candidate_step"]
    assert len(search.run_metadata["trials"]) == small_spec.training.candidate.trials

    # DataFrames are stored as Parquet, not CSV.
    test_artifact = outcome.run.steps["split_step"].outputs["test"][0]
    from zenml.io import fileio
    assert any(name.endswith(".parquet.gzip") for name in fileio.listdir(test_artifact.uri))

    # The model artifact is one scikit-learn Pipeline: features then model.
    model = outcome.run.steps["select_model_step"].outputs["model"][0].load()
    assert [name for name, _ in model.steps] == ["features", "model"]


def test_same_spec_same_seed_identical_metrics_and_model_hash(small_spec):
    first, second = _run(small_spec, no_cache=True), _run(small_spec, no_cache=True)
    numbers = [o.run.steps["register_model_step"].output.load() for o in (first, second)]
    records = {v["number"]: v["metadata"] for v in _versions("credit_risk")}
    a, b = records[numbers[0]], records[numbers[1]]
    assert numbers[0] != numbers[1]
    assert a["model_sha256"] == b["model_sha256"]
    assert a["test_metrics"] == b["test_metrics"] and a["validation_metrics"] == b["validation_metrics"]
    assert a["data_fingerprint"] == b["data_fingerprint"]


def test_cached_rerun_still_registers(small_spec):
    _run(small_spec)
    before = len(_versions("credit_risk"))
    outcome = _run(small_spec)
    assert str(outcome.run.steps["fit_features_step"].status) == "cached"
    assert str(outcome.run.steps["register_model_step"].status) == "completed"
    assert len(_versions("credit_risk")) == before + 1


@step
def linked_rows_step(test: pd.DataFrame) -> int:
    return len(test)


LINKED: list = []  # what the pipeline below was given, as it was defined


@pipeline
def reads_a_linked_split(version: int, split: str) -> None:
    from keel.registry import version_artifacts

    LINKED.append(version_artifacts("credit_risk", version, [split])[split])
    linked_rows_step(test=LINKED[-1])


def test_a_versions_artifacts_reach_a_pipelines_steps_as_those_artifact_versions(small_spec):
    """Looked up once as the pipeline is defined: the step's input is the version's linked artifact
    itself (ZenML would otherwise look the version and the artifact up again as each step starts), and
    an artifact the version does not have is refused before any run starts."""
    from zenml.models import ArtifactVersionResponse

    from keel.lifecycle.pipeline_runs import run_pipeline

    version = _run(small_spec).run.steps["register_model_step"].output.load()
    LINKED.clear()
    outcome = run_pipeline(reads_a_linked_split, version=version, split="test")
    assert outcome.error is None, outcome.error
    linked, = LINKED
    assert isinstance(linked, ArtifactVersionResponse) and linked.id is not None
    consumed = outcome.run.steps["linked_rows_step"]
    assert consumed.inputs["test"][0].id == linked.id and consumed.output.load() == 400
    missing = run_pipeline(reads_a_linked_split, version=version, split="no_such_split")
    assert missing.run is None and f"credit_risk v{version} has no artifact 'no_such_split' linked" in missing.error


def _csv_spec(path, name="bad_data"):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        f"problem.name={name}", "data.source={kind: csv, path: '%s'}" % path, "monitoring.simulation=null",
        "training.candidate.trials=1", "training.candidate.params.n_estimators=20"])


def _good_rows(n=600):
    from keel.spec.data import GeneratorSource

    return generate_credit_applications(GeneratorSource(kind="generator", rows=n, seed=1))


def _write(frame, path):
    frame.to_csv(path, index=False)
    return path


def _bad_files(tmp_path):
    frame = _good_rows()
    cases = {}
    cases["missing column"] = _write(frame.drop(columns=["income"]), tmp_path / "missing.csv")
    wrong = frame.astype({"num_dependents": object})
    wrong.loc[3, "num_dependents"] = "three"
    cases["wrong dtype"] = _write(wrong, tmp_path / "dtype.csv")
    out = frame.copy()
    out.loc[4, "debt_to_income"] = 50.0
    cases["out of range"] = _write(out, tmp_path / "range.csv")
    unknown = frame.astype({"region": str})
    unknown.loc[5, "region"] = "atlantis"
    cases["unknown category"] = _write(unknown, tmp_path / "category.csv")
    null = frame.copy()
    null["income"] = None  # declared not nullable
    cases["all-null column"] = _write(null, tmp_path / "null.csv")
    duplicate = frame.copy()
    duplicate.loc[6, "application_id"] = duplicate.loc[7, "application_id"]
    cases["duplicate ids"] = _write(duplicate, tmp_path / "duplicate.csv")
    (tmp_path / "empty.csv").write_text("")
    cases["empty file"] = tmp_path / "empty.csv"
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 20)
    cases["not a CSV"] = tmp_path / "binary.csv"
    return cases


EXPECTED = {"missing column": "the column is missing", "wrong dtype": "wrong type",
            "out of range": "above the maximum", "unknown category": "unknown category",
            "all-null column": "not allowed", "duplicate ids": "duplicate ids",
            "empty file": "empty", "not a CSV": "cannot be read as csv"}


def test_bad_data_fails_at_validation_and_leaves_no_model_version(tmp_path):
    from zenml.client import Client

    good = _write(_good_rows(), tmp_path / "good.csv")
    assert _run(_csv_spec(good, "csv_ok")).error is None  # the same spec trains on clean data

    for case, path in _bad_files(tmp_path).items():
        outcome = _run(_csv_spec(path))
        assert outcome.error is not None, case
        assert EXPECTED[case] in str(outcome.error), (case, str(outcome.error))
        failed = [n for n, s in outcome.run.steps.items() if str(s.status) == "failed"]
        assert failed in (["validate_step"], ["ingest_step"]), (case, failed)
        assert outcome.failed_step == failed[0]
        register = outcome.run.steps.get("register_model_step")
        assert register is None or str(register.status) == "skipped"
    assert _versions("bad_data") == []
    # The failing batch's report is stored as an artifact for the record.
    report = Client().get_artifact_version("validation_report")
    assert report.load()["passed"] is False
