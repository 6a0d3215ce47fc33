"""The repro's shape on a real, isolated ZenML store: v1 split with seed 7 is the champion, v2 split with
seed 12 is the challenger; much of v2's test split is v1's training data. The comparison leaves those
rows out (found through v1's linked `train` split, by id and by hash) and counts them right."""

import html

import numpy as np
import pytest

from keel.artifacts import Artifact
from keel.spec import load_spec
from tests.conftest import ROOT
from tests.support.training_runs import train_in_process

pytestmark = pytest.mark.integration

NAME = "overlap_model"
FAST = ["data.source.rows=2500", "training.candidate.trials=2", "training.candidate.params.n_estimators=30",
        "evaluation.comparison.bootstrap_samples=200", f"problem.name={NAME}"]


def _spec(*extra):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [*FAST, *extra])


def test_the_champion_is_compared_only_on_test_rows_it_did_not_train_on():
    from zenml.client import Client

    from keel.evaluation.champion_rows import _parquet_path, champion_training_rows
    from keel.evaluation.comparison import trained_on
    from keel.registry import find_champion, version_artifacts
    from steps.evaluation.champion_challenger import champion_challenger_step

    first = train_in_process(_spec("split.seed=7"))
    Client().get_model_version(NAME, first).set_stage("production", force=True)
    challenger_spec = _spec("split.seed=12")
    second = train_in_process(challenger_spec)

    mine = version_artifacts(NAME, second, [Artifact.MODEL, Artifact.VALIDATION, Artifact.TEST])
    champion_train = version_artifacts(NAME, first, [Artifact.TRAIN])[Artifact.TRAIN]
    assert _parquet_path(champion_train) is not None  # read by columns and batches, not loaded whole
    test = mine[Artifact.TEST].load()
    id_column = challenger_spec.data.id_column
    overlap = int(test[id_column].isin(champion_train.load()[id_column]).sum())
    assert 0 < overlap < len(test)  # the repro's shape: part of the challenger's test split is v1's training data

    comparison, champion_scores, page = champion_challenger_step.entrypoint(
        scoring_model=mine[Artifact.MODEL].load(), decision_threshold={"threshold": 0.5},
        validation=mine[Artifact.VALIDATION].load(), test=test, spec=challenger_spec, model_version=second)
    assert comparison["champion"] == f"v{first} (production)"
    assert comparison["overlap_checked"] and id_column in comparison["matched_by"]
    assert (comparison["test_rows"], comparison["rows_left_out"], comparison["rows_compared"]) == (
        len(test), overlap, len(test) - overlap)
    assert len(champion_scores) == len(test) and np.isfinite(comparison["ci_low"])
    assert f"compared on {len(test) - overlap} of {len(test)} test rows: {overlap} were the champion's" in \
        html.unescape(str(page))

    # Without an id column the same rows are found by a hash of their features and target.
    no_id = challenger_spec.data.model_copy(update={"id_column": None})
    champion = find_champion(NAME, second)
    hashed = champion_training_rows(NAME, champion, no_id)
    assert hashed["key"]["by"] == "hash"
    assert int(trained_on(test, hashed).sum()) == overlap

    # A champion whose training split cannot be found: said, not guessed.
    missing = champion_training_rows(NAME, {**champion, "number": 99}, challenger_spec.data)
    assert "keys" not in missing and "v99 of overlap_model is not in the registry" in missing["why"]
