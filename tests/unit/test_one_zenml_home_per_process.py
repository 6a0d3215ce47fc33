"""tests/conftest.py runs once per test process, under the name pytest gives it and the one tests import."""

from pathlib import Path


def test_tests_use_the_zenml_home_pytest_removes_at_the_end(zenml_home):
    from tests import conftest

    # zenml_home is pytest's conftest's own (the one whose pytest_sessionfinish removes it); the stores
    # tests make through tests.conftest's new_zenml_store are copied from a template inside it.
    assert Path(conftest._ZENML_HOME) == zenml_home
    assert conftest._TEMPLATE_STORE.is_relative_to(zenml_home)
