"""ZenML lists the installed packages for each pipeline run in a new process (`uv pip freeze`, else pip);
a keel process lists them once, and a failed listing is tried again."""

import subprocess

import pytest

from keel.lifecycle import pipeline_runs


@pytest.fixture
def environment(monkeypatch):
    """ZenML's Environment with its own listing restored after the test, and the processes it starts
    counted."""
    from zenml.environment import Environment

    original = getattr(Environment.get_python_packages, "__wrapped__", Environment.get_python_packages)
    monkeypatch.setattr(Environment, "get_python_packages", staticmethod(original))
    started = []
    check_output = subprocess.check_output

    def counted(command, *args, **kwargs):
        started.append(command)
        return check_output(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "check_output", counted)
    return Environment, started


def test_a_process_lists_its_packages_once_whatever_the_number_of_runs(environment):
    Environment, started = environment
    pipeline_runs._installed_packages_listed_once()
    pipeline_runs._installed_packages_listed_once()  # a second run of the process: not wrapped again
    first = Environment.get_python_packages()
    listing = len(started)  # uv's freeze; pip's after it where uv is missing
    assert Environment.get_python_packages() == first
    assert listing >= 1 and len(started) == listing
    assert any(line.lower().startswith("zenml==") for line in first)


def test_a_failed_listing_is_not_remembered(environment, monkeypatch):
    Environment, _ = environment
    pipeline_runs._installed_packages_listed_once()
    working = subprocess.check_output

    def missing(command, *args, **kwargs):
        raise FileNotFoundError(command[0])

    monkeypatch.setattr(subprocess, "check_output", missing)
    with pytest.raises(RuntimeError, match="installed Python packages"):
        Environment.get_python_packages()
    monkeypatch.setattr(subprocess, "check_output", working)
    assert any(line.lower().startswith("zenml==") for line in Environment.get_python_packages())
