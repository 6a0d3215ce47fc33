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
                                               "reordered or inserted record (exit 1); an interrupted "
                                               "registration (a killed train, not tampering) exits 3")
    verify.add_argument("--expect-head", default=None, metavar="HASH",
                        help="a head hash kept from an earlier verify: fail (exit 1) unless it is still in the "
                             "chain, which detects a rewrite of the log's tail or of the whole log")
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
    start.add_argument("--batch", metavar="ID", help="a batch id printed by `run.py score`")
    lineage.add_argument("--row", default=None, metavar="ROW",
                         help="one record of a batch request (a number), or one row of a --batch (its id)")
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


def _audit(run):
    """An audit handler given the model: `--model` (else the spec's problem.name), checked first, since it
    becomes a folder under the audit root (`--model ../../x` must not read another folder): exit 2."""
    from functools import wraps

    @wraps(run)
    def handler(args: argparse.Namespace, spec) -> int:
        from keel.governance.audit import InvalidModelName, check_model_name

        try:
            model = check_model_name(args.model or spec.problem.name)
        except InvalidModelName as error:
            return fail(f"audit --model: {error}", 2)
        return run(args, model, spec)

    return handler


@_audit
def _audit_verify(args: argparse.Namespace, model: str, spec) -> int:
    from keel.cli.audit_trail import verify
    from keel.deployment.deploy import prediction_log_url

    if args.expect_head is not None and not _is_hash(args.expect_head):
        return fail("audit verify --expect-head: give a head hash as printed by `audit verify` (64 hex digits)", 2)
    # The spec's prediction log holds this model's referrals: people's decisions are checked against the trail.
    return verify(model, args.expect_head, prediction_log_url(spec) if model == spec.problem.name else None)


def _is_hash(text: str) -> bool:
    text = text.strip().lower()
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


@_audit
def _audit_log(args: argparse.Namespace, model: str, spec) -> int:
    from keel.cli.audit_trail import show_log

    return show_log(model, args.event)


@_audit
def _who_served(args: argparse.Namespace, model: str, spec) -> int:
    from keel.cli.audit_trail import who_served

    return who_served(model, args.at)


def _lineage(args: argparse.Namespace, spec) -> int:
    from keel.cli.lineage import lineage

    if args.prediction is not None and not args.prediction.strip():
        return fail("lineage: --prediction must not be empty", 2)
    if args.batch is not None:
        return lineage(spec, None, None, batch=args.batch, row_id=args.row)
    row = None
    if args.row is not None:
        try:
            row = int(args.row)
        except ValueError:
            return fail(f"lineage: --row of a --prediction is a record number; found {args.row!r}", 2)
    return lineage(spec, args.prediction, args.model_version, row)


def _reproduce(args: argparse.Namespace, spec) -> int:
    from keel.cli.reproduce import reproduce

    return reproduce(spec, args.model_version)


def _data_versions(args: argparse.Namespace, spec) -> int:
    from keel.cli.data_versions import data_versions

    return data_versions(spec)


def _docs(args: argparse.Namespace, spec) -> int:
    from keel.cli.technical_docs import write_docs

    return write_docs(spec, args.model_version, args.config)


def _explain(args: argparse.Namespace, spec) -> int:
    from keel.cli.explain import explain

    return explain(spec, args.prediction, args.row)
