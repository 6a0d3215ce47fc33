"""Ctrl+C where no command handles it (helper-50: during ZenML's import, before a pipeline starts) printed
Python's traceback of every frame, 295-520 lines."""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT


def test_ctrl_c_before_a_pipeline_starts_is_one_line_and_exit_130(tmp_path):
    env = {**os.environ, "ZENML_CONFIG_PATH": str(tmp_path / "zenml")}
    command = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "runs"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # past the argument parsing and the spec, inside ZenML's import or its store set-up
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=120)
    assert command.returncode == 130, (out, err)
    assert "Traceback" not in err and "keel: runs interrupted (Ctrl+C)" in err
    assert len(err.strip().splitlines()) <= 3, err
