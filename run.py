"""keel's command line. `python run.py --help` lists the commands; see README.md."""

import gc
import sys

import keel  # noqa: F401  (switches telemetry off before anything else is imported)
from keel.cli.main import COLLECTOR_THRESHOLDS, main

if __name__ == "__main__":
    gc.set_threshold(*COLLECTOR_THRESHOLDS)  # before the command's own imports
    code = main()
    # The interpreter's shutdown runs full garbage collections over the ~300,000 objects ZenML, BentoML
    # and pandas leave behind: 3.6-4 s after every command (after `serve` freed its port, too).
    # Frozen objects are out of the collector's sight; atexit handlers and module teardown still run.
    gc.freeze()
    sys.exit(code)
