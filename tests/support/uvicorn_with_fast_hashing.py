"""`python -m uvicorn ...` for the tests' ZenML servers, with bcrypt at its lowest cost (4 rounds, not 12).

The server hashes and checks passwords and API keys with bcrypt: every login checks the key twice
(the current and a dummy previous one), ~0.5 s of CPU at 12 rounds, ~2 ms at 4. The remote-stack
tests log in with every command (~17 logins, 8-10 s of the server's CPU). The same checks run and can
fail the same way; only the work factor of the hashes differs. Run as a file (not `-m`), so its path
keeps "uvicorn" on the command line, as keel's own dashboard process has it."""

import os
import sys

# As under `python -m`: the working directory first on the path, not this file's folder (whose
# kubernetes/ would shadow the kubernetes package).
sys.path[0] = os.getcwd()

from passlib.handlers.bcrypt import bcrypt  # noqa: E402

bcrypt.default_rounds = bcrypt.min_rounds

if __name__ == "__main__":
    from uvicorn.main import main  # noqa: E402

    sys.exit(main())
