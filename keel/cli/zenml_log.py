"""ZenML's error records off the terminal: a failed step makes ZenML log the step's message and ~30
lines of traceback before keel prints its own one message. For a command, ZenML's records pass through
here: everything but errors reaches ZenML's console as before (progress, warnings); errors go to a log
file under .keel/logs/ (with the records before them, for context) and to ZenML's other handlers (its
stored step logs); the command then says where the file is. `--verbose` leaves ZenML's logging alone.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, TextIO

from keel.clock import utc_now

LOG_FOLDER = Path(".keel") / "logs"  # beside .keel/deployments: where the command runs
CONTEXT_RECORDS = 500  # records kept before the first error, written above it in the file
CONSOLE_HANDLER = "ZenMLConsoleHandler"  # zenml.logger's terminal handler (by name: no ZenML import here)


class ZenmlErrorLog(logging.Handler):
    """Handler of the `zenml` logger (which then no longer propagates): passes each record on to the
    root logger's handlers, holding errors back from ZenML's console, and writes the file."""

    def __init__(self, command: str, folder: Path = LOG_FOLDER):
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.planned = folder / f"{utc_now():%Y%m%dT%H%M%SZ}-{command or 'main'}-{os.getpid()}.log"
        self.path: Optional[Path] = None  # `planned`, once an error was written there
        self.held = 0  # error records kept off the terminal
        self._recent: deque = deque(maxlen=CONTEXT_RECORDS)
        self._file: Optional[TextIO] = None
        self._unwritable = False

    def emit(self, record: logging.LogRecord) -> None:
        hold = record.levelno >= logging.ERROR and self._writable()
        for handler in logging.root.handlers:
            if hold and type(handler).__name__ == CONSOLE_HANDLER:
                continue
            if record.levelno >= handler.level:
                handler.handle(record)
        line = self.format(record)
        if hold:
            self.held += 1
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
        else:
            self._recent.append(line)

    def _writable(self) -> bool:
        """Open the file at the first error, writing the records kept so far; a folder that cannot be
        written leaves errors on the terminal (nothing is lost)."""
        if self._file is not None or self._unwritable:
            return self._file is not None
        try:
            self.planned.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.planned, "a", encoding="utf-8")
        except OSError:
            self._unwritable = True
            return False
        self.path = self.planned
        self._file.writelines(line + "\n" for line in self._recent)
        self._recent.clear()
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()

    def pointer(self) -> Optional[str]:
        """What the command says when errors were held back: where they are."""
        if not self.held:
            return None
        return (f"keel: ZenML's log of this failure ({self.held} error record(s), with the traceback): "
                f"{self.path} (--verbose prints it here)")


@contextmanager
def zenml_errors_to_file(command: str, verbose: bool = False) -> Iterator[Optional[ZenmlErrorLog]]:
    """For one command: ZenML's error records to a file rather than the terminal (None with `verbose`)."""
    if verbose:
        yield None
        return
    zenml_logger = logging.getLogger("zenml")
    errors = ZenmlErrorLog(command)
    propagated = zenml_logger.propagate
    zenml_logger.addHandler(errors)
    zenml_logger.propagate = False
    try:
        yield errors
    finally:
        zenml_logger.removeHandler(errors)
        zenml_logger.propagate = propagated
        errors.close()
