"""Batch scoring as a governed lifecycle step (`run.py score`, the main job's portfolio): which version
scores (the production one unless named; never an interrupted registration or a version that did not
pass evaluation), the batch id, whether the same input was scored already, the batch record, and one
batch row read back for lineage. The scoring itself is keel.batch's; the pipeline is
pipelines/batch_inference.py.

The audit trail is the index of completed batches: a batch's record is the `batch_scored` event's
details, written last (after the outputs and the monitoring rows were published), so a batch either
has a record and all its outputs, or no record; re-run detection and `lineage --batch` read it from
the verified trail.
"""

# No `from __future__ import annotations`: TypedDict reads NotRequired from the evaluated annotations.
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NotRequired, Optional, TypedDict

from keel.clock import utc_now
from keel.spec.models import Spec

if TYPE_CHECKING:
    import pandas as pd

SCORE_FAILED = 1
BAD_ARGUMENT = 2
OVER_REJECT_LIMIT = 3  # like a failed blocking gate: the batch ran, its data was not good enough
OUTPUT_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".csv": "csv"}
KILL_ENV = "KEEL_TEST_KILL_BATCH_AFTER_ROWS"  # tests only: SIGKILL the scoring process once it read this many rows
PROGRESS_SECONDS = 10.0  # a long batch says how far it got this often


class BatchKey(TypedDict):
    """What makes two batches the same work: the same input, scored by the same version under the same spec."""

    input_fingerprint: str
    model_version: int
    spec_sha256: str


class BatchRecord(TypedDict):
    """One completed batch, as the audit trail (`batch_scored`), the run's metadata and the batch_record
    artifact hold it. The outputs are referenced by path and SHA-256, never copied."""

    batch_id: str
    model: str
    model_version: int
    input_fingerprint: str
    source: str  # what was read, credentials redacted
    spec_sha256: str
    rows_read: int
    scored: int
    rejected: int
    reject_fraction: float
    max_reject_fraction: float
    over_reject_limit: bool
    output_uri: str
    output_fingerprint: str
    rejects_uri: str
    rejects_fingerprint: str
    output_format: str
    chunk_rows: int
    seconds: float
    actor: str
    started_at: str
    finished_at: str
    run_id: Optional[str]
    run_name: Optional[str]
    rescored_from: Optional[str]  # --new-batch: the earlier batch of the same input, version and spec
    monitoring_replaced: NotRequired[List[str]]  # unrecorded earlier runs' monitoring rows this batch replaced
    engine: NotRequired[str]  # the dask engine: the cluster that scored it (its output is a folder of parts)
    partitions: NotRequired[int]  # the dask engine: input partitions, one output part each
    # A mitigated version's scored rows that got the base model's answer, by why (present when any did)
    rows_without_mitigation: NotRequired[Dict[str, int]]
    mitigation_attribute: NotRequired[str]  # with rows_without_mitigation: the attribute the version adjusts by


class BatchRefused(ValueError):
    """The batch cannot run as asked; nothing was read or written. `code`: 1, or 2 for a bad argument."""

    def __init__(self, message: str, code: int = SCORE_FAILED):
        super().__init__(message)
        self.code = code


# --- before anything runs --------------------------------------------------------------------------


def resolve_batch_version(model: str, version: Optional[int]) -> int:
    """`version`, else the production version. LookupError when there is none or no such version,
    InterruptedRegistration (a LookupError) for a version whose registration never completed."""
    from keel.registry import production_version, resolve_version

    if version is None:
        version = production_version(model)
        if version is None:
            raise LookupError(f"'{model}' has no production version to score with: deploy one (python run.py "
                              "deploy), or name a version that passed evaluation with --model-version N")
    return resolve_version(model, version)


def deployable_threshold(version: int, evaluation: Optional[dict], spec: Optional[Spec] = None) -> float:
    """The decision threshold of a version whose latest evaluation is deployable (under `spec`'s gates,
    when given: what the service decides with); LookupError naming why not otherwise: batch decisions
    are as governed as online ones."""
    from keel.deployment.deploy import NotDeployable, check_deployable

    try:
        check_deployable(version, evaluation, spec)
    except NotDeployable as error:
        raise LookupError(f"v{version} cannot score: {error}") from None
    if evaluation.get("threshold") is None:
        raise LookupError(f"v{version}'s evaluation recorded no decision threshold; evaluate it again: "
                          f"python run.py evaluate --model-version {version}")
    return float(evaluation["threshold"])


def version_threshold(spec: Spec, version: int) -> float:
    from keel.registry import evaluation_outcome, registered_metadata

    registered_metadata(spec.problem.name, version)  # InterruptedRegistration, LookupError
    return deployable_threshold(version, evaluation_outcome(spec.problem.name, version), spec)


def output_format(output: Path, given: Optional[str], default: str) -> str:
    """`--format`, else the output's suffix (.parquet or .csv), else the spec's `batch.output_format`;
    BatchRefused (2) when --format and the suffix disagree."""
    implied = OUTPUT_SUFFIXES.get(Path(output).suffix.lower())
    if given is not None and implied is not None and given != implied:
        raise BatchRefused(f"--output {output} is a .{Path(output).suffix.lstrip('.')} file but --format is {given}: "
                           "make them agree", BAD_ARGUMENT)
    return given or implied or default


def rejects_path(output: Path, fmt: str) -> Path:
    """Beside the output: `<name>.rejects.<format>`."""
    output = Path(output)
    stem = output.stem if output.suffix.lower() in OUTPUT_SUFFIXES else output.name
    return output.with_name(f"{stem}.rejects.{fmt}")


def new_batch_id(now: Optional[datetime] = None) -> str:
    """Unique and sortable by when the batch started: `batch-20261202T143000Z-1a2b3c`."""
    from keel.batch.scoring import BATCH_ID_PREFIX

    return f"{BATCH_ID_PREFIX}{(now or utc_now()):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def file_fingerprint(path: Path) -> str:
    """"sha256:<hex>" of a file's bytes, as keel.batch fingerprints the outputs it writes."""
    from keel.batch.inputs import fingerprint_input
    from keel.spec.data import FileSource

    return fingerprint_input(FileSource(kind="parquet", path=Path(path)))


def output_intact(record: BatchRecord) -> bool:
    """Whether a batch's output is still there and the one it wrote (the SHA-256 its record keeps)."""
    path = Path(record["output_uri"])
    return path.exists() and file_fingerprint(path) == record["output_fingerprint"]


def check_outputs(output: Path, rejects: Path, batches: List[BatchRecord], published: Dict[str, str],
                  partitioned: bool = False) -> None:
    """keel replaces only a file it wrote: an existing output (or rejects) file must be a recorded
    output of this model's batches (or one a killed batch published before its record: `published`,
    path -> fingerprint) with the fingerprint recorded for it, i.e. unchanged since. BatchRefused otherwise.
    `partitioned` (the dask engine): the output is a folder of parts, the rejects one file."""
    if Path(output).resolve() == Path(rejects).resolve():
        raise BatchRefused(f"{output}: the output and the rejects file would be the same file", BAD_ARGUMENT)
    for path in (Path(output), Path(rejects)):
        folder_expected = partitioned and path == Path(output)
        if path.is_dir() and not folder_expected:
            raise BatchRefused(f"{path} is a directory; --output names the file to write")
        if folder_expected and path.exists() and not path.is_dir():
            raise BatchRefused(f"{path} is a file; on the dask engine --output names the folder of Parquet parts "
                               "to write (choose another --output, or move that file away)")
        if not path.exists():
            continue
        where = str(path.resolve())
        recorded = {b["output_uri"]: b["output_fingerprint"] for b in batches}
        recorded.update({b["rejects_uri"]: b["rejects_fingerprint"] for b in batches})
        recorded.update(published)
        if where not in recorded:
            raise BatchRefused(f"{path} exists and no batch of this model wrote it: keel never replaces a file "
                               "it did not write; choose another --output, or move that file away")
        if file_fingerprint(path) != recorded[where]:
            raise BatchRefused(f"{path} was written by a batch of this model but changed since (its SHA-256 is not "
                               "the recorded one): keel does not replace it; choose another --output, or move it away")


# --- completed batches (from the audit trail) ----------------------------------------------------------


def completed_batches(records: List[dict]) -> List[BatchRecord]:
    """The batch records in the audit records (`batch_scored` events), oldest first."""
    from keel.governance.events import BATCH_SCORED

    return [record["details"] for record in records if record.get("event") == BATCH_SCORED]


def batch_key(input_fingerprint: str, model_version: int, spec_sha256: str) -> BatchKey:
    return {"input_fingerprint": input_fingerprint, "model_version": int(model_version), "spec_sha256": spec_sha256}


def earlier_batch(batches: List[BatchRecord], key: BatchKey) -> Optional[BatchRecord]:
    """The latest completed batch of the same input, version and spec, if any."""
    same = [b for b in batches if batch_key(b["input_fingerprint"], b["model_version"], b["spec_sha256"]) == key]
    return same[-1] if same else None


def find_batch(batches: List[BatchRecord], batch_id: str) -> BatchRecord:
    for batch in batches:
        if batch["batch_id"] == batch_id:
            return batch
    known = ", ".join(b["batch_id"] for b in batches[-3:]) or "none yet"
    raise LookupError(f"no completed batch {batch_id!r} in the audit trail (latest: {known})")


def recorded_batches(model: str) -> List[BatchRecord]:
    """The model's completed batches, from the audit trail once its hash chain verifies (TamperedTrail,
    a LookupError's sibling AuditError, otherwise: nothing is decided on an edited trail)."""
    from keel.governance.audit import verified_trail

    return completed_batches(verified_trail(model, "batch records drawn from it")[0])


# --- scoring (inside the pipeline's score step) ------------------------------------------------------


class ScoreOutcome(TypedDict):
    """What the score step did: scored (`result`, with times) or skipped for an earlier batch."""

    key: BatchKey
    skipped_for: Optional[BatchRecord]
    result: Optional[dict]  # keel.batch.scoring.BatchResult
    started_at: Optional[str]
    finished_at: Optional[str]
    rescored_from: Optional[str]
    monitoring_replaced: List[str]


def describe_input(spec: Spec, source) -> str:
    """What a batch read, as training data sources are described (a database URL's password hidden)."""
    from keel.data.sources import describe_source
    from keel.stacks.redaction import redact_url_credentials

    return redact_url_credentials(describe_source(spec.data.model_copy(update={"source": source})))


def scores_partitioned(engine: Optional[dict], source) -> bool:
    """Whether a batch runs on the dask engine: the stack's engine is dask and the input is Parquet (a
    file, folder or glob of parts). CSV and SQL inputs are read in chunks by the local engine on any stack."""
    from keel.engine.spec import DaskEngine, engine_from_dict
    from keel.spec.data import FileSource

    return (isinstance(engine_from_dict(engine), DaskEngine) and isinstance(source, FileSource)
            and source.kind == "parquet")


def score_input(*, spec: Spec, model: Any, threshold: float, model_version: int, batch_id: str, location: str,
                query: Optional[str], input_fingerprint: str, output: str, fmt: str, new_batch: bool,
                engine: Optional[dict] = None, say: Callable[[str], None] = print,
                validation: Optional["pd.DataFrame"] = None) -> ScoreOutcome:
    """Skip the batch when the same input was scored by the same version under the same spec (unless
    `new_batch`, or that batch's output is gone or no longer the one it wrote: then it is scored again);
    else score it (keel.batch.scoring.score_batch; on the dask engine a Parquet input
    partition by partition, keel.engine.dask_scoring) with its rows profiled for monitoring as they are
    scored, and publish the monitoring rows once the outputs are published. `validation`: the version's
    validation split, whose first rows a linear model's principal reasons are measured from (without it,
    such a model gives none)."""
    from keel.batch.inputs import batch_source
    from keel.batch.scoring import score_batch
    from keel.monitoring.batch_traffic import BatchProfiler, published_batches, unrecorded_same_input
    from keel.monitoring.monitor import monitoring_folder
    from keel.spec import spec_hash

    key = batch_key(input_fingerprint, model_version, spec_hash(spec))
    batches = recorded_batches(spec.problem.name)
    earlier = earlier_batch(batches, key)
    if earlier is not None and not new_batch and not output_intact(earlier):
        say(f"keel: batch {earlier['batch_id']} scored this input, but its output {earlier['output_uri']} is gone or "
            "was replaced since (not the SHA-256 recorded): scoring it again")
    elif earlier is not None and not new_batch:
        return {"key": key, "skipped_for": earlier, "result": None, "started_at": None, "finished_at": None,
                "rescored_from": None, "monitoring_replaced": []}
    folder = monitoring_folder(spec)
    output_path = Path(output)
    rejects = rejects_path(output_path, fmt)
    remove_leftovers(folder, output_path, rejects)
    source = batch_source(location, spec.data, query)
    partitioned = scores_partitioned(engine, source)
    check_outputs(output_path, rejects, batches, published_outputs(published_batches(folder)), partitioned)
    from keel.monitoring.production_fairness import attributes_sent_with_requests

    sent = attributes_sent_with_requests(spec.data, spec.monitoring.fairness)  # logged for fairness, not modelled
    profiler = BatchProfiler(folder, batch_id, model_version, spec.data.model_features, spec.data.id_column, key,
                             attributes=sent)
    started = utc_now()
    # A spec that declares reasons or a refer band gets them in the output (reasons, refer, model_decision).
    declared = spec.decisions if spec.decisions.refer_band or spec.decisions.reasons else None
    background = None
    if declared is not None:
        from keel.governance.explanations import background_rows

        _mark_proxies(model, spec.problem.name, model_version)
        if validation is not None:
            background = background_rows(validation, spec.data.model_features,
                                         spec.governance.explanation_background_rows)
    try:
        if partitioned:
            result = _score_on_dask(engine, profiler, source=source, spec=spec, model=model, threshold=threshold,
                                    model_version=model_version, batch_id=batch_id, decisions=declared,
                                    background=background,
                                    input_fingerprint=input_fingerprint, output=output_path, rejects=rejects, say=say)
        else:
            result = score_batch(source=source, data=spec.data, model=model, threshold=threshold,
                                 model_version=model_version, batch_id=batch_id, input_fingerprint=input_fingerprint,
                                 output=output_path, rejects=rejects, output_format=fmt,
                                 chunk_rows=spec.batch.chunk_rows, on_chunk=profiler, progress=progress_reporter(say),
                                 decisions=declared, logged_attributes=sent, background=background)
    except BaseException:
        profiler.abandon()
        raise
    replaced = unrecorded_same_input(folder, key, [b["batch_id"] for b in batches])
    profiler.publish(replaced, outputs={result["output_uri"]: result["output_fingerprint"],
                                        result["rejects_uri"]: result["rejects_fingerprint"]})
    if declared is not None and declared.refer_band is not None:  # a person decides these rows: queue them
        from keel.deployment.deploy import prediction_log_url
        from keel.serving.reviews import queue_batch_referrals

        queue_batch_referrals(prediction_log_url(spec), result["output_uri"], fmt, batch_id, model_version,
                              spec.data.id_column, utc_now(), superseded=replaced)
    return {"key": key, "skipped_for": None, "result": dict(result), "started_at": started.isoformat(),
            "finished_at": utc_now().isoformat(), "rescored_from": earlier["batch_id"] if earlier else None,
            "monitoring_replaced": replaced}


def _score_on_dask(engine: dict, profiler, *, source, spec: Spec, model: Any, threshold: float, model_version: int,
                   batch_id: str, input_fingerprint: str, output: Path, rejects: Path, say: Callable[[str], None],
                   decisions=None, background=None) -> dict:
    """keel.engine.dask_scoring's batch, its merged per-partition profiles handed to the batch's
    monitoring profiler (its rows' ids and scores were written by the workers into its staging folder),
    so that the batch is published to the windows exactly as a local one."""
    from keel.engine.cluster import connect, layout
    from keel.engine.dask_scoring import score_partitioned
    from keel.engine.spec import engine_from_dict
    from keel.monitoring.batch_traffic import PREDICTIONS

    dask_engine = engine_from_dict(engine)
    client = connect(dask_engine)
    batch = score_partitioned(client, source=source, data=spec.data, model=model, threshold=threshold,
                              model_version=model_version, batch_id=batch_id, input_fingerprint=input_fingerprint,
                              output=output, rejects=rejects, chunk_rows=spec.batch.chunk_rows,
                              predictions_folder=profiler.staging / PREDICTIONS, features=spec.data.model_features,
                              logged_attributes=profiler.attributes, decisions=decisions, background=background,
                              progress=progress_reporter(say))
    profiler.add_profiled(batch.profiles, batch.monitored_rows, batch.first, batch.last)  # the workers profiled
    described = layout(client, dask_engine, batch.partitions)
    return {**batch.result, "engine": f"{dask_engine.describe()}: {described['workers']} worker(s)",
            "partitions": batch.partitions}


def remove_leftovers(monitoring_folder: Path, *destinations: Path) -> List[str]:
    """The hidden partial files a killed batch left beside these destinations (its process is gone:
    its monitoring rows' partial folder names it); never a running batch's. Returns the batch ids."""
    from keel.batch.scoring import partial_path
    from keel.monitoring.batch_traffic import BATCHES, remove_abandoned

    import shutil

    killed = remove_abandoned(Path(monitoring_folder) / BATCHES)
    for batch_id in killed:
        for destination in destinations:
            partial = partial_path(Path(destination), batch_id)
            if partial.is_dir():  # the dask engine's parts folder
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)
    return killed


def published_outputs(markers: List[dict]) -> Dict[str, str]:
    """Output paths -> fingerprints of batches whose outputs were published (their monitoring rows too),
    recorded or not: a batch killed between its publication and its record wrote them."""
    found: Dict[str, str] = {}
    for marker in markers:
        found.update(marker.get("outputs") or {})
    return found


def _mark_proxies(model: Any, name: str, version: int) -> None:
    """The batch step's model comes from its artifact, not keel.registry.load_version_model: mark the
    features its screening flagged as proxies the same way, so they are never a principal reason."""
    from keel import registration as keys
    from keel.registry import get_model_version_metadata
    from keel.serving.reasons import PROXIES_ATTRIBUTE, mark_proxies

    if not hasattr(model, PROXIES_ATTRIBUTE):  # keel.registry.load_version_model marks the models it loads
        mark_proxies(model, get_model_version_metadata(name, version).get(keys.SCREENING))


def progress_reporter(say: Callable[[str], None], every: float = PROGRESS_SECONDS) -> Callable[[int, int], None]:
    """score_batch's `progress`: says how far a long batch got, at most every `every` seconds (and
    kills the process at the test hook's row count)."""
    import time

    kill_after = int(os.environ.get(KILL_ENV) or 0)
    last = [time.monotonic()]

    def report(rows_read: int, rejected: int) -> None:
        if kill_after and rows_read >= kill_after:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)  # as an operator's kill -9 would land, mid-batch
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            say(f"keel: {rows_read:,} rows read, {rejected:,} rejected so far ...")

    return report


# --- the record (the pipeline's last step) -----------------------------------------------------------------


def build_record(outcome: ScoreOutcome, *, model: str, source: str, max_reject_fraction: float, actor: str,
                 run_id: Optional[str], run_name: Optional[str]) -> BatchRecord:
    result = outcome["result"]
    fraction = result["rejected"] / result["rows_read"] if result["rows_read"] else 0.0
    record: BatchRecord = {
        "batch_id": result["batch_id"], "model": model, "model_version": int(result["model_version"]),
        "input_fingerprint": result["input_fingerprint"], "source": source,
        "spec_sha256": outcome["key"]["spec_sha256"], "rows_read": int(result["rows_read"]),
        "scored": int(result["scored"]), "rejected": int(result["rejected"]), "reject_fraction": fraction,
        "max_reject_fraction": float(max_reject_fraction), "over_reject_limit": fraction > max_reject_fraction,
        "output_uri": result["output_uri"], "output_fingerprint": result["output_fingerprint"],
        "rejects_uri": result["rejects_uri"], "rejects_fingerprint": result["rejects_fingerprint"],
        "output_format": result["output_format"], "chunk_rows": int(result["chunk_rows"]),
        "seconds": float(result["seconds"]), "actor": actor, "started_at": outcome["started_at"],
        "finished_at": outcome["finished_at"], "run_id": run_id, "run_name": run_name,
        "rescored_from": outcome["rescored_from"]}
    if outcome["monitoring_replaced"]:
        record["monitoring_replaced"] = list(outcome["monitoring_replaced"])
    if result.get("partitions") is not None:
        record["engine"], record["partitions"] = str(result["engine"]), int(result["partitions"])
    if any(result["rows_without_mitigation"].values()):
        record["rows_without_mitigation"] = {why: int(n) for why, n in result["rows_without_mitigation"].items()}
        record["mitigation_attribute"] = str(result["mitigation_attribute"])
    return record


def record_batch(outcome: ScoreOutcome, *, spec: Spec, location: str, query: Optional[str],
                 run_id: Optional[str] = None, run_name: Optional[str] = None) -> BatchRecord:
    """The batch's record, appended to the audit trail: the commit point of a batch (a re-run of the
    same input is skipped from here on)."""
    from keel.batch.inputs import batch_source
    from keel.governance.audit import resolve_actor
    from keel.governance.events import record_batch_scored

    record = build_record(outcome, model=spec.problem.name, source=describe_input(spec, batch_source(location, spec.data, query)),
                          max_reject_fraction=spec.batch.max_reject_fraction, actor=resolve_actor(None),
                          run_id=run_id, run_name=run_name)
    record_batch_scored(spec.problem.name, record, run_id)
    return record


def exit_code(record: BatchRecord) -> int:
    return OVER_REJECT_LIMIT if record["over_reject_limit"] else 0


# --- the command's whole run ------------------------------------------------------------------------


@dataclass
class BatchJobResult:
    """What `score_job` came to: the batch record (scored), or the earlier batch it was skipped for,
    or `error` (nothing written). `code`: the exit code."""

    code: int
    record: Optional[BatchRecord] = None
    skipped_for: Optional[BatchRecord] = None
    run_name: Optional[str] = None
    run_id: Optional[str] = None
    error: Optional[str] = None
    version: Optional[int] = None
    notes: list = field(default_factory=list)


def score_job(spec: Spec, location: str, output: str, version: Optional[int] = None, fmt: Optional[str] = None,
              query: Optional[str] = None, new_batch: bool = False) -> BatchJobResult:
    """Check everything that can be checked before reading a row (the version, the input, the output,
    a dask engine's scheduler), then run the batch_inference pipeline on the active stack's engine and
    read its record back."""
    from keel.batch.inputs import batch_source
    from keel.data.sources import DataSourceError
    from keel.governance.audit import AuditError
    from keel.lifecycle.pipeline_runs import failed_step_message, run_pipeline
    from keel.monitoring.batch_traffic import published_batches
    from keel.monitoring.monitor import monitoring_folder
    from keel.engine.cluster import EngineUnavailableError
    from keel.engine.selection import active_engine, check_engine, engine_parameter

    model = spec.problem.name
    try:
        engine = engine_parameter(active_engine())
        version = resolve_batch_version(model, version)
        version_threshold(spec, version)
        chosen = output_format(Path(output), fmt, spec.batch.output_format)
        partitioned = scores_partitioned(engine, batch_source(location, spec.data, query))
        if partitioned and chosen != "parquet":
            raise BatchRefused(f"the dask engine writes the output as a folder of Parquet parts; --format {chosen} "
                               "is for the local engine (a stack without a dask engine)", BAD_ARGUMENT)
        check_outputs(Path(output), rejects_path(Path(output), chosen), recorded_batches(model),
                      published_outputs(published_batches(monitoring_folder(spec))), partitioned)
        if partitioned:
            check_engine(active_engine())
    except BatchRefused as error:
        return BatchJobResult(error.code, error=f"keel: {error}", version=version)
    except (LookupError, DataSourceError, AuditError, EngineUnavailableError) as error:
        return BatchJobResult(SCORE_FAILED, error=f"keel: {error}", version=version)
    from pipelines.batch_inference import batch_inference_pipeline

    outcome = run_pipeline(batch_inference_pipeline, spec=spec, model_version=version, batch_id=new_batch_id(),
                           location=str(location), query=query, output=str(Path(output).resolve()),
                           output_format=chosen, new_batch=new_batch, engine=engine)
    if outcome.error is not None:
        return BatchJobResult(SCORE_FAILED, error=failed_step_message(outcome), version=version,
                              run_name=getattr(outcome.run, "name", None))
    from keel.artifacts import Artifact

    steps = outcome.run.steps
    scored = steps["score_batch_step"].outputs[Artifact.BATCH_RESULT][0].load()
    run_name, run_id = outcome.run.name, str(outcome.run.id)
    if scored["skipped_for"] is not None:
        earlier = scored["skipped_for"]
        return BatchJobResult(exit_code(earlier), skipped_for=earlier, run_name=run_name, run_id=run_id, version=version)
    record = steps["record_batch_step"].outputs[Artifact.BATCH_RECORD][0].load()
    return BatchJobResult(exit_code(record), record=record, run_name=run_name, run_id=run_id, version=version)


# --- one batch row, for lineage ----------------------------------------------------------------------------


def batch_rows(record: BatchRecord, row_id: str, id_column: Optional[str]) -> List[dict]:
    """The output rows of `row_id` (the spec's id column's value as text; without an id column, the
    input row number; a row whose id is empty, by its input row number too), read back from the batch's
    output file in chunks, after checking the file is the one the record names (its SHA-256).
    LookupError when the file is gone or changed, or no row matches."""
    path = Path(record["output_uri"])
    if not path.exists():
        raise LookupError(f"batch {record['batch_id']}'s output {path} is gone (the record keeps its SHA-256 "
                          f"{record['output_fingerprint']})")
    if file_fingerprint(path) != record["output_fingerprint"]:
        raise LookupError(f"batch {record['batch_id']}'s output {path} changed since it was written (its SHA-256 is "
                          "not the recorded one): its rows are no evidence")
    column = id_column or "row"
    by_number = id_column is not None and str(row_id).isdigit()  # a row scored with an empty id
    found = []
    for chunk in _output_chunks(path, record["output_format"], column):
        matches = chunk[column].astype(str) == str(row_id)
        if by_number:
            no_id = chunk[column].isna() | (chunk[column].astype(str) == "")
            matches |= no_id & (chunk["row"] == int(row_id))
        found += chunk[matches].to_dict(orient="records")
    if not found:
        what = f"{id_column} {row_id!r}" if id_column else f"input row {row_id}"
        raise LookupError(f"batch {record['batch_id']} scored no row with {what}"
                          + _rejected_because(record, row_id, id_column))
    return found


def _rejected_because(record: BatchRecord, row_id: str, id_column: Optional[str]) -> str:
    """Why the batch rejected that row, from its rejects file (which the record names by SHA-256)."""
    path = Path(record["rejects_uri"])
    if not path.exists() or file_fingerprint(path) != record["rejects_fingerprint"]:
        return f" (its rejects file {path} is gone or changed)"
    key = "id" if id_column else "row"
    reasons = [f"{r['field']}: {r['problem']} (found {r['found']})"
               for chunk in _output_chunks(path, record["output_format"], key)
               for r in chunk[chunk[key].astype(str) == str(row_id)].to_dict(orient="records")]
    return f": it was rejected, {'; '.join(reasons)}" if reasons else f" (nor rejected one: {path})"


def _output_chunks(path: Path, fmt: str, id_column: str, rows: int = 200_000):
    import pandas as pd

    if fmt == "csv":
        yield from pd.read_csv(path, dtype={id_column: str}, keep_default_na=False, chunksize=rows)
        return
    import pyarrow.parquet as pq

    from keel.data.sources import parquet_files

    for part in parquet_files(Path(path)):  # a file, or the dask engine's folder of parts in input order
        for batch in pq.ParquetFile(part).iter_batches(batch_size=rows):
            yield batch.to_pandas()
