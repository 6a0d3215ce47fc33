"""Prints the chaos trials' summary at the end of a run that wrote one (tests/chaos/results.py).

Under pytest-xdist the trials run in a worker; this hook runs where the terminal is, so it reads the
file the trials wrote rather than anything in memory."""

import time

from tests.chaos import results

_LOADED = time.time()


def pytest_terminal_summary(terminalreporter):
    if any(path.stat().st_mtime >= _LOADED for path in results.files()):
        terminalreporter.write_sep("-", "chaos")
        terminalreporter.write_line(results.summary(results.read()))
