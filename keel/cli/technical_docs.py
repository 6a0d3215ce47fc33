"""`run.py docs --model-version N`: technical documentation (Annex IV) as Markdown and HTML files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from keel.cli.console import fail, say


def write_docs(spec, version: Optional[int], config: Optional[Path] = None) -> int:
    from keel.lifecycle.documentation import write_documentation

    written = write_documentation(spec, version, config)
    if written.error is not None:
        return fail(written.error, written.exit_code)
    say(f"keel: using {written.origin}")
    say(f"technical documentation of {spec.problem.name} v{written.version} (Annex IV structure, {written.sections} "
        f"sections, {written.records} audit records):")
    for path in written.paths:
        say(f"  {path}")
    return 0
