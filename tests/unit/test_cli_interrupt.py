"""Ctrl+C where no command handles it (helper-50: during ZenML's import, before a pipeline starts) printed
Python's traceback of every frame, 295-520 lines."""

import os
import signal
import subprocess
import sys

from tests.conftest import ROOT


def test_ctrl_c_before_a_pipeline_starts_is_one_line_and_exit_130(tmp_path):
    env = {**os.environ, "ZENML_CONFIG_PATH": str(tmp_path / "zenml")}
    # `train` takes far longer than the moment between the spec line and its pipeline's start (ZenML's
    # import and store set-up, seconds): the signal lands there, not after the command ended.
    # As from a terminal: pytest-xdist's workers ignore SIGINT, and a child inherits an ignored signal.
    command = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "train"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    said = command.stderr.readline()  # "keel: spec ... (the embedded demo ...)": the spec was chosen
    command.send_signal(signal.SIGINT)
    out, rest = command.communicate(timeout=120)
    err = said + rest
    assert command.returncode == 130, (out, err)
    assert "Traceback" not in err and "keel: train interrupted (Ctrl+C)" in err
    assert len(err.strip().splitlines()) <= 3, err
