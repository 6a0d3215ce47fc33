"""A failed step prints keel's one message, not ZenML's ~30 lines of traceback before it: ZenML's error
records go to a log file under .keel/logs/ whose path the command prints (its progress and warnings stay
on the terminal); `--verbose` shows them on the terminal as ZenML prints them."""

import os
import re
import sys

import pytest

from tests.conftest import ROOT, new_zenml_store
from tests.support.forked_commands import run_command

pytestmark = pytest.mark.integration

BAD_DATA = ["train", "--set", "data.source={kind: csv, path: bad.csv}", "--set", "monitoring.simulation=null"]


def _train_on_bad_data(tmp_path, *flags):
    (tmp_path / "bad.csv").write_text("income,region\n1,north\n")
    env = {**os.environ, "ZENML_CONFIG_PATH": new_zenml_store(tmp_path / "zenml"),  # a fresh store: every step runs
           "ZENML_LOGGING_VERBOSITY": "INFO", "ZENML_LOGGING_COLORS_DISABLED": "true"}
    return run_command([sys.executable, str(ROOT / "run.py"), *BAD_DATA, *flags], cwd=tmp_path, env=env,
                       timeout=600)


def test_a_failed_step_prints_keels_message_and_the_path_of_zenmls_log(tmp_path):
    done = _train_on_bad_data(tmp_path)
    assert done.returncode == 1
    terminal = done.stdout + done.stderr
    assert "Traceback" not in terminal and "Failed to run step" not in terminal
    assert "keel: the pipeline failed at step validate_step of run training_pipeline-" in done.stderr
    assert done.stderr.count("the column is missing; the columns found are 'income', 'region'") == 1
    # ZenML's progress and warnings are still shown
    assert "Step `ingest_step` has started." in done.stdout and "Step `validate_step` has started." in done.stdout
    assert "Skipping step split_step due to failure in upstream step(s): validate_step" in done.stdout

    pointer = re.search(r"keel: ZenML's log of this failure \(2 error record\(s\), with the traceback\): "
                        r"(\S+\.log) \(--verbose prints it here\)", done.stderr)
    assert pointer, done.stderr[-2000:]
    assert done.stderr.rstrip().endswith(pointer.group(0))  # after keel's message
    log = (tmp_path / pointer.group(1)).read_text()
    assert pointer.group(1).startswith(".keel/logs/") and "-train-" in pointer.group(1)
    assert "Traceback (most recent call last)" in log and "DataValidationError: data validation failed" in log
    assert log.index("Step `ingest_step` has started.") < log.index("Traceback")  # what came before, for context
    assert "Skipping step split_step" in log


def test_verbose_shows_zenmls_traceback_on_the_terminal(tmp_path):
    done = _train_on_bad_data(tmp_path, "--verbose")
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stdout and "Failed to run step `validate_step`" in done.stdout
    assert "keel: the pipeline failed at step validate_step" in done.stderr
    assert "ZenML's log of this failure" not in done.stderr and not (tmp_path / ".keel" / "logs").exists()
