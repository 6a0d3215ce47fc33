"""Commands for finding one's way in the spec: `spec reference` (every key: type, default, meaning) and
`init` (a starting spec written from a data file). Neither needs a problem spec; `spec reference` imports
nothing heavy, `init` reads the file with pandas."""

from __future__ import annotations

import argparse
from pathlib import Path

from keel.cli.console import fail, say


def register(commands) -> None:
    spec = commands.add_parser("spec", help="about the spec itself: `spec reference` prints every key")
    actions = spec.add_subparsers(dest="spec_command", metavar="ACTION", required=True)
    reference = actions.add_parser("reference", help="every spec key with its type, default and meaning "
                                                      "(Markdown; docs/spec-reference.md holds it)")
    reference.set_defaults(handler=_reference, needs_spec=False)

    init = commands.add_parser("init", help="write a starting spec from a data file (types, categories, ranges, "
                                            "id column, the target's classes; sensitive attributes to confirm)")
    init.add_argument("--data", required=True, type=Path, metavar="FILE",
                      help="a CSV file, or Parquet (a file, a directory of partitions, a glob)")
    init.add_argument("--target", required=True, metavar="COLUMN", help="the column to predict (two classes)")
    init.add_argument("--out", type=Path, default=None, metavar="PATH",
                      help="where to write the spec (default: <data file name>.yaml in the current directory)")
    init.add_argument("--read", dest="reading", action="append", default=[], metavar="KEY=VALUE",
                      help="a reading option of data.source, as in the spec, e.g. --read sep=';' "
                           "--read 'na_values=[?]' --read header=false (repeatable; the others are detected)")
    init.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    init.set_defaults(handler=_init, needs_spec=False)


def _reference(args: argparse.Namespace, spec) -> int:
    from keel.spec.reference import spec_reference

    print(spec_reference(), end="", flush=True)
    return 0


def _reading_options(texts) -> dict:
    from keel.spec.load import SpecError, parse_override

    options = {}
    for text in texts:
        try:
            path, value = parse_override(text, "--read", "KEY=VALUE, e.g. sep=';'")
        except SpecError as error:
            raise ValueError(str(error)) from None
        options[".".join(path)] = value
    return options


def _init(args: argparse.Namespace, spec) -> int:
    from keel.spec.reading import CSV_OPTIONS

    try:
        given = _reading_options(args.reading)
    except ValueError as error:
        return fail(f"init: {error}", 2)
    unknown = [key for key in given if key not in CSV_OPTIONS]
    if unknown:
        return fail(f"init: --read {unknown[0]}: not a reading option; the options are {', '.join(CSV_OPTIONS)}", 2)
    out = args.out or Path(f"{args.data.name.split('.')[0] or 'spec'}.yaml")
    if out.exists() and not args.force:
        return fail(f"init: {out} exists; choose another --out, or --force to overwrite it", 2)

    from keel.data.infer import InitError, infer_spec
    from keel.data.sources import DataSourceError
    from keel.spec import SpecError, load_spec

    try:
        inferred = infer_spec(args.data, args.target, given)
    except InitError as error:
        return fail(f"init: {error}", 2)
    except DataSourceError as error:
        return fail(f"init: {error}", 1)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(inferred.spec_text, encoding="utf-8")
    except OSError as error:
        return fail(f"init: cannot write {out} ({error})", 1)
    try:
        load_spec(out)
    except SpecError as error:  # a defect of init itself: say so rather than leave a spec that does not load
        return fail(f"init: the written spec does not validate (please report this):\n{error}", 1)
    say(f"{out}: a starting spec for {args.data} ({len(inferred.features)} feature(s)"
        + (f", id column {inferred.id_column!r}" if inferred.id_column else "")
        + (f", time column {inferred.time_column!r}" if inferred.time_column else "") + ")")
    if inferred.reading:
        say(f"  reading options detected: {', '.join(f'{k}={v!r}' for k, v in inferred.reading.items())}")
    for column, why in inferred.left_out.items():
        say(f"  left out {column!r}: {why}")
    for warning in inferred.warnings:
        say(f"  warning: {warning}")
    say("  to confirm in the file: the target's positive class, the sensitive attributes"
        + (f" (candidates: {', '.join(inferred.sensitive)})" if inferred.sensitive else "")
        + " and data.target.favourable")
    say(f"next: python run.py validate --config {out}   then   python run.py train --config {out}")
    return 0
