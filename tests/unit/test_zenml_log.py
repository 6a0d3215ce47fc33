"""ZenML's error records off the terminal, without ZenML: a stand-in for its console handler on the root
logger sees progress and warnings but no error; the file holds the errors, their traceback and what came
before; a folder that cannot be written leaves the errors on the terminal."""

import logging
from pathlib import Path

import pytest

from keel.cli.zenml_log import ZenmlErrorLog, zenml_errors_to_file


class ZenMLConsoleHandler(logging.Handler):  # named as zenml.logger's terminal handler
    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        self.seen.append(record.getMessage())


class StoredStepLogs(logging.Handler):  # any other root handler (ZenML's stored step logs)
    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        self.seen.append(record.getMessage())


@pytest.fixture
def root_handlers():
    console, stored = ZenMLConsoleHandler(), StoredStepLogs()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(console)
    root.addHandler(stored)
    yield console, stored
    root.removeHandler(console)
    root.removeHandler(stored)
    root.setLevel(level)


def _failing_step():
    log = logging.getLogger("zenml.orchestrators.local")
    log.info("Step validate_step has started.")
    try:
        raise ValueError("data validation failed")
    except ValueError:
        log.exception("Step validate_step failed.")
    log.warning("Skipping step split_step due to failure in upstream step(s): validate_step")


def test_errors_go_to_the_file_and_everything_else_to_the_terminal(tmp_path, monkeypatch, root_handlers):
    console, stored = root_handlers
    monkeypatch.chdir(tmp_path)
    with zenml_errors_to_file("train") as errors:
        _failing_step()
    assert console.seen == ["Step validate_step has started.",
                            "Skipping step split_step due to failure in upstream step(s): validate_step"]
    assert "Step validate_step failed." in stored.seen  # ZenML's other handlers get every record
    assert errors.held == 1 and errors.path.parent == Path(".keel", "logs") and "-train-" in errors.path.name
    text = (tmp_path / errors.path).read_text()
    assert text.index("Step validate_step has started.") < text.index("Traceback (most recent call last)")
    assert "ValueError: data validation failed" in text and "Skipping step split_step" in text
    assert str(errors.path) in errors.pointer() and "--verbose" in errors.pointer()
    assert logging.getLogger("zenml").propagate and errors not in logging.getLogger("zenml").handlers


def test_no_error_no_file(tmp_path, monkeypatch, root_handlers):
    monkeypatch.chdir(tmp_path)
    with zenml_errors_to_file("runs") as errors:
        logging.getLogger("zenml.client").warning("a warning")
    assert errors.pointer() is None and not (tmp_path / ".keel").exists()
    assert root_handlers[0].seen == ["a warning"]


def test_verbose_and_an_unwritable_folder_leave_errors_on_the_terminal(tmp_path, monkeypatch, root_handlers):
    console, _ = root_handlers
    monkeypatch.chdir(tmp_path)
    with zenml_errors_to_file("train", verbose=True) as errors:
        _failing_step()
    assert errors is None and "Step validate_step failed." in console.seen
    console.seen.clear()
    (tmp_path / "not-a-folder").write_text("")
    errors = ZenmlErrorLog("train", folder=tmp_path / "not-a-folder" / "logs")
    zenml_logger = logging.getLogger("zenml")
    zenml_logger.addHandler(errors)
    zenml_logger.propagate = False
    try:
        _failing_step()
    finally:
        zenml_logger.removeHandler(errors)
        zenml_logger.propagate = True
    assert "Step validate_step failed." in console.seen and errors.pointer() is None
