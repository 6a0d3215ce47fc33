"""Commands of the governance area: audit, lineage, reproduce, data versions, docs, explain.
Each handler imports its work lazily, so `--help` stays instant."""

from __future__ import annotations

import argparse

from keel.cli.console import fail
from keel.cli.options import spec_options


def register(commands) -> None:
    audit = commands.add_parser("audit", help="the tamper-evident audit trail: verify, log, who-served")
    spec_options(audit)
    actions = audit.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check the hash chain; names the first edited, deleted, "
                                               "reordered or inserted record (exit 1)")
    log = actions.add_parser("log", help="the timeline of lifecycle events")
    log.add_argument("--event", default=None, help="only this event, e.g. approved, deployment_step")
    served = actions.add_parser("who-served", help="the version (and arm split) serving at a moment")
    served.add_argument("--at", required=True, metavar="TIMESTAMP", help="ISO 8601, e.g. 2026-11-26T17:05:00Z (UTC if no zone)")
    for action, handler in ((verify, _audit_verify), (log, _audit_log), (served, _who_served)):
        spec_options(action)
        action.add_argument("--model", default=None, help="model name (default: the spec's problem.name)")
        action.set_defaults(handler=handler)

    lineage = commands.add_parser("lineage", help="prediction -> model version -> training run -> data -> spec -> git commit")
    spec_options(lineage)
    start = lineage.add_mutually_exclusive_group(required=True)
    start.add_argument("--prediction", metavar="ID", help="a request id from the prediction log")
    start.add_argument("--model-version", type=int, metavar="N")
    lineage.add_argument("--row", type=int, default=None, metavar="N", help="one record of a batch request")
    lineage.set_defaults(handler=_lineage)

    reproduce = commands.add_parser("reproduce", help="rebuild a model version and prove it identical (exit 1 if not)")
    spec_options(reproduce)
    reproduce.add_argument("--model-version", type=int, default=None, metavar="N", help="default: the latest")
    reproduce.set_defaults(handler=_reproduce)

    data = commands.add_parser("data", help="data versions")
    spec_options(data)
    data_actions = data.add_subparsers(dest="data_action", metavar="ACTION", required=True)
    versions = data_actions.add_parser("versions", help="each training run's data (content-addressed Parquet), "
                                                        "its fingerprint and the model versions trained on it")
    spec_options(versions)
    versions.set_defaults(handler=_data_versions)

    docs = commands.add_parser("docs", help="technical documentation after EU AI Act Annex IV (Markdown and HTML)")
    spec_options(docs)
    docs.add_argument("--model-version", type=int, default=None, metavar="N", help="default: the latest")
    docs.set_defaults(handler=_docs)

    explain = commands.add_parser("explain", help="the SHAP explanation of a logged prediction (high-stakes models)")
    spec_options(explain)
    explain.add_argument("--prediction", required=True, metavar="ID", help="a request id from the prediction log")
    explain.add_argument("--row", type=int, default=None, metavar="N", help="which record of a batch request")
    explain.set_defaults(handler=_explain)


def _model(args: argparse.Namespace, spec) -> str:
    return args.model or spec.problem.name


def _audit_verify(args: argparse.Namespace, spec) -> int:
    from keel.cli.audit_trail import verify

    return verify(_model(args, spec))


def _audit_log(args: argparse.Namespace, spec) -> int:
    from keel.cli.audit_trail import show_log

    return show_log(_model(args, spec), args.event)


def _who_served(args: argparse.Namespace, spec) -> int:
    from keel.cli.audit_trail import who_served

    return who_served(_model(args, spec), args.at)


def _lineage(args: argparse.Namespace, spec) -> int:
    from keel.cli.lineage import lineage

    if args.prediction is not None and not args.prediction.strip():
        return fail("lineage: --prediction must not be empty", 2)
    return lineage(spec, args.prediction, args.model_version, args.row)


def _reproduce(args: argparse.Namespace, spec) -> int:
    from keel.cli.reproduce import reproduce

    return reproduce(spec, args.model_version)


def _data_versions(args: argparse.Namespace, spec) -> int:
    from keel.cli.data_versions import data_versions

    return data_versions(spec)


def _docs(args: argparse.Namespace, spec) -> int:
    from keel.cli.technical_docs import write_docs

    return write_docs(spec, args.model_version)


def _explain(args: argparse.Namespace, spec) -> int:
    from keel.cli.explain import explain

    return explain(spec, args.prediction, args.row)
