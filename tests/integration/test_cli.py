"""The CLI as a user runs it: a separate process, its own ZenML store, real output."""

import os
import sys

import pytest

from tests.conftest import ROOT, new_zenml_store
from tests.support.forked_commands import run_command

pytestmark = pytest.mark.integration


def _cli(tmp_path, *args):
    env = {**os.environ, "ZENML_CONFIG_PATH": new_zenml_store(tmp_path / "zenml")}
    return run_command([sys.executable, str(ROOT / "run.py"), *args], cwd=tmp_path, env=env, timeout=600)


def test_train_then_query_runs(tmp_path):
    done = _cli(tmp_path, "train", "--set", "data.source.rows=1500", "--set", "training.candidate.trials=2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model version:  credit_risk v1" in done.stdout
    assert "roc_auc" in done.stdout and "python run.py dashboard" in done.stdout

    listed = _cli(tmp_path, "runs", "--where", "roc_auc>0.5")
    assert listed.returncode == 0 and "v1" in listed.stdout
    none = _cli(tmp_path, "runs", "--where", "roc_auc>0.9999")
    assert "no training runs" in none.stdout
    bad = _cli(tmp_path, "runs", "--where", "roc_auc>>1")
    assert bad.returncode == 2 and "expected FIELD OP VALUE" in bad.stderr
    misspelt = _cli(tmp_path, "runs", "--where", "rocauc>0.5")
    assert misspelt.returncode == 2 and "no run of 'credit_risk' records 'rocauc'" in misspelt.stderr
    assert "roc_auc" in misspelt.stderr.split("the fields are:")[1]


def test_a_csv_spec_trains_without_code_change(tmp_path):
    """The German-credit example spec, on a synthetic file with the same columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "risk": rng.integers(0, 2, n), "sex": rng.choice(["female", "male"], n),
        "job": rng.integers(0, 4, n), "housing": rng.choice(["free", "own", "rent"], n),
        "saving_accounts": rng.choice(["little", "moderate", "quite rich", "rich", "not_known"], n),
        "checking_account": rng.choice(["little", "moderate", "rich", "not_known"], n),
        "credit_amount": rng.integers(250, 18000, n), "duration": rng.integers(4, 72, n),
        "purpose": rng.choice(["business", "car", "education", "radio/TV"], n),
        "age": rng.integers(19, 75, n),
    })
    frame.loc[frame["duration"] > 40, "risk"] = 0  # some signal
    frame.to_csv(tmp_path / "german.csv", index=False)
    done = _cli(tmp_path, "train", "--config", str(ROOT / "configs/examples/german_credit.yaml"),
                "--set", "data.source.path=german.csv")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model version:  german_credit v1" in done.stdout


def test_bad_data_exits_non_zero_with_the_report(tmp_path):
    (tmp_path / "bad.csv").write_text("income,region\n1,north\n")
    done = _cli(tmp_path, "train", "--set", "data.source={kind: csv, path: bad.csv}", "--set", "monitoring.simulation=null")
    assert done.returncode == 1
    assert "failed at step validate_step" in done.stderr
    assert "the column is missing" in done.stderr


def test_check_passes_fails_on_a_blocking_gate_and_on_bad_data(tmp_path):
    ok = _cli(tmp_path, "check", "--set", "evaluation.gates[p95_latency_ms].max=1000")  # the default 5,000-row sample
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "all gates pass" in ok.stdout and "zenml" not in ok.stderr.lower()
    strict = _cli(tmp_path, "check", "--sample", "3000", "--set", "evaluation.gates[roc_auc].min=0.999")
    assert strict.returncode == 3 and "roc_auc >= 0.999" in strict.stdout and "FAIL" in strict.stdout
    (tmp_path / "bad.csv").write_text("income,region\n1,north\n")
    bad = _cli(tmp_path, "check", "--set", "data.source={kind: csv, path: bad.csv}", "--set", "monitoring.simulation=null")
    assert bad.returncode == 1 and "the column is missing" in bad.stderr
