"""Test isolation: ZenML state lives in a temporary folder, and nothing phones home.

Set at import time, before any test module imports ZenML.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_ZENML_HOME = tempfile.mkdtemp(prefix="keel-tests-zenml-")
os.environ["ZENML_CONFIG_PATH"] = os.path.join(_ZENML_HOME, "config")
os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
os.environ["ZENML_LOGGING_VERBOSITY"] = "WARN"
os.environ["WHYLOGS_NO_ANALYTICS"] = "True"
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
os.environ["BENTOML_HOME"] = os.path.join(_ZENML_HOME, "bentoml")
os.environ.pop("ZENML_STORE_URL", None)
os.environ["KEEL_LAST_SPEC"] = os.path.join(_ZENML_HOME, "last_spec")  # commands record the spec they used

import keel  # noqa: E402,F401


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_ZENML_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_last_spec(tmp_path_factory, monkeypatch):
    """Each test (and the commands it starts) records the spec it used apart: a command without --config
    takes the last spec used, which must not be another test's."""
    monkeypatch.setenv("KEEL_LAST_SPEC", str(tmp_path_factory.mktemp("last-spec") / "last_spec"))


@pytest.fixture(scope="session")
def zenml_home() -> Path:
    return Path(_ZENML_HOME)


@pytest.fixture
def default_spec():
    from keel.spec import load_spec

    return load_spec(ROOT / "configs" / "credit_risk.yaml")


@pytest.fixture
def small_spec():
    """The default spec on 2,000 generated rows with a short search: quick to train."""
    from keel.spec import load_spec

    return load_spec(ROOT / "configs" / "credit_risk.yaml",
                     ["data.source.rows=2000", "training.candidate.trials=2",
                      "training.candidate.params.n_estimators=40"])
