"""keel's command line. `python run.py --help` lists the commands; see README.md."""

import sys

import keel  # noqa: F401  (switches telemetry off before anything else is imported)
from keel.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
