"""`monitor` on the dask engine, for real: a `distributed.LocalCluster` of 2 worker processes over TCP
on 127.0.0.1. The served prediction log's time ranges are profiled on the workers and merged here;
the window (its rows, hours added, traffic split), the profile's counts and the drift verdict equal
the local engine's on the same log and batch traffic, with missing values and an unseen category."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from keel.engine.spec import DaskEngine
from keel.monitoring.batch_traffic import BatchProfiler
from keel.monitoring.monitor import assess_window, monitoring_folder, update_window
from keel.monitoring.profiles import column_summary, profile_frame
from keel.serving.prediction_log import PredictionLog
from keel.spec import load_spec
from tests.conftest import ROOT
from tests.support.dask_cluster import local_cluster

pytestmark = pytest.mark.integration
UTC = timezone.utc
DAY = datetime(2026, 5, 4, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine():
    from keel.engine.cluster import disconnect

    with local_cluster() as cluster:
        engine = DaskEngine(kind="dask", scheduler_address=cluster.scheduler_address, connect_timeout_seconds=10)
        yield engine
        disconnect(engine)


def _spec(folder):
    return load_spec(ROOT / "configs" / "credit_risk.yaml", [
        f"deployment.folder={folder}", "deployment.allow_folder_outside_project=true", "monitoring.window=day"])


def _applications(spec, rows, seed):
    from keel.data.generator import generate_credit_applications
    from keel.spec.data import GeneratorSource

    frame = generate_credit_applications(GeneratorSource(kind="generator", rows=rows, seed=seed))
    rng = np.random.default_rng(seed)
    frame = frame[spec.data.model_features].copy()
    frame.insert(0, spec.data.id_column, [f"S{seed}-{i:05d}" for i in range(rows)])
    frame["score"] = rng.random(rows)
    frame["decision"] = (frame["score"] >= 0.5).astype(int)
    return frame.reset_index(drop=True)


def _served(spec, rows):
    """Served traffic unlike the training data: income shifted, a region the reference never saw,
    employment type missing on a tenth of the rows."""
    frame = _applications(spec, rows, seed=11)
    frame["income"] = frame["income"] * 1.8
    frame[["region", "employment_type"]] = frame[["region", "employment_type"]].astype(object)
    frame.loc[frame.index % 7 == 0, "region"] = "atlantis"
    frame.loc[frame.index % 10 == 0, "employment_type"] = None
    return frame


def _serve(url, spec, frame):
    """The log as the service writes it: one row every 90 s from 06:00, over about ten hours."""
    features = spec.data.model_features
    PredictionLog(url).append(
        {"request_id": f"r{i}", "row": 0, "entity_id": row[spec.data.id_column],
         "time": DAY + timedelta(hours=6, seconds=90 * i), "model_name": "m", "model_version": 1,
         "arm": "champion", "shadow": False, "inputs": {k: (None if pd.isna(row[k]) else row[k]) for k in features},
         "score": float(row["score"]), "decision": int(row["decision"]), "latency_ms": 1.0}
        for i, row in enumerate(frame.to_dict(orient="records")))


def _publish_batch(spec, frame):
    """Batch traffic scored at 17:30: the same on both engines (profiled while scored)."""
    profiler = BatchProfiler(monitoring_folder(spec), "batch-1", 1, spec.data.model_features, spec.data.id_column,
                             {"input_fingerprint": "sha256:b", "model_version": 1, "spec": "s"},
                             clock=lambda: DAY + timedelta(hours=17, minutes=30))
    profiler(frame)
    profiler.publish()


@pytest.fixture(scope="module")
def passes(engine, tmp_path_factory):
    """One monitoring pass per engine over the same log and batch, each with its own window store."""
    from distributed import get_task_stream

    from keel.engine.cluster import connect

    root = tmp_path_factory.mktemp("dask-monitoring")
    local_spec, dask_spec = _spec(root / "local"), _spec(root / "dask")
    url = f"sqlite:///{root / 'predictions.db'}"
    _serve(url, local_spec, _served(local_spec, 400))
    batch = _applications(local_spec, 150, seed=5)
    for spec in (local_spec, dask_spec):
        monitoring_folder(spec).mkdir(parents=True, exist_ok=True)
        _publish_batch(spec, batch)
    local = update_window(local_spec, 1, log_url=url, traffic="both")
    with get_task_stream(client=connect(engine)) as stream:
        on_dask = update_window(dask_spec, 1, log_url=url, traffic="both", engine=engine.model_dump(mode="json"))
    tasks = [task for task in stream.data if str(task.get("key", "")).startswith("profile_log_range")]
    return local, on_dask, tasks, local_spec, (dask_spec, url)


def test_the_log_is_profiled_on_the_workers_one_task_per_time_range(passes):
    _, _, tasks, _, _ = passes
    assert len(tasks) == 4  # 2 workers: the 10 hours of the log cut into 4 ranges at whole hours


def test_local_and_dask_monitoring_give_the_same_window_and_profile_counts(passes):
    (local_profile, local_facts), (dask_profile, dask_facts), _, spec, _ = passes
    assert local_facts == dask_facts
    assert (local_facts["rows"], local_facts["online_rows"], local_facts["batch_rows"]) == (550, 400, 150)
    assert sum(local_facts["added"].values()) == 400 and len(local_facts["added"]) >= 10  # per hour
    for name in [*spec.data.model_features, "score", "decision"]:
        mine, theirs = column_summary(local_profile, name), column_summary(dask_profile, name)
        assert [mine[k] for k in ("count", "nulls", "kind", "frequencies")] == \
               [theirs[k] for k in ("count", "nulls", "kind", "frequencies")], name
        if mine["mean"] is not None:
            assert theirs["mean"] == pytest.approx(mine["mean"], rel=1e-9), name
    assert column_summary(dask_profile, "employment_type")["nulls"] == 40


def test_local_and_dask_monitoring_give_the_same_drift_verdict(passes):
    (local_profile, local_facts), (dask_profile, dask_facts), _, spec, _ = passes
    reference_rows = _applications(spec, 2000, seed=3)
    reference_data = profile_frame(reference_rows[spec.data.model_features])
    reference_predictions = profile_frame(reference_rows[["score", "decision"]])
    reference = {"decision_rate": 0.5, "label_rate": 0.2, "label_rows": 2000, "threshold": 0.5,
                 "metrics": {"roc_auc": 0.8, "pr_auc": 0.4}}
    no_labels = pd.DataFrame({"label": pd.Series([], dtype=int), "score": pd.Series([], dtype=float)})
    statuses = [assess_window(profile, facts, reference_data, reference_predictions, reference, no_labels,
                              {"new_labelled_rows": 0}, spec)
                for profile, facts in ((local_profile, local_facts), (dask_profile, dask_facts))]
    local, on_dask = statuses
    assert local["verdict"] == on_dask["verdict"] and local["verdict"]["alarm"]
    assert local["features"]["drifted"] == on_dask["features"]["drifted"] and "income" in local["features"]["drifted"]
    assert on_dask["features"]["unseen_categories"] == local["features"]["unseen_categories"] == {"region": ["atlantis"]}
    for name in local["features"]["features"]:
        assert on_dask["features"]["features"][name]["drifted"] == local["features"]["features"][name]["drifted"]


def test_a_second_pass_on_dask_adds_only_the_new_predictions(passes, engine):
    _, _, _, spec, (dask_spec, url) = passes
    later = _served(spec, 12).assign(**{spec.data.id_column: [f"late-{i}" for i in range(12)]})
    features = spec.data.model_features
    PredictionLog(url).append(
        {"request_id": f"late{i}", "row": 0, "entity_id": row[spec.data.id_column],
         "time": DAY + timedelta(hours=22, minutes=i), "model_name": "m", "model_version": 1, "arm": "champion",
         "shadow": False, "inputs": {k: (None if pd.isna(row[k]) else row[k]) for k in features},
         "score": float(row["score"]), "decision": int(row["decision"]), "latency_ms": 1.0}
        for i, row in enumerate(later.to_dict(orient="records")))
    _, facts = update_window(dask_spec, 1, log_url=url, traffic="online", engine=engine.model_dump(mode="json"))
    assert facts["added"] == {"v1 2026-05-04T22": 12}
    assert facts["online_rows"] == 412


def _stack_file(folder, name, engine: dict, artifacts: str):
    import yaml

    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "components": {
            "orchestrator": {"name": f"{name}-orchestrator", "flavor": "local"},
            "artifact_store": {"name": f"{name}-artifacts", "flavor": "local", "configuration": {"path": artifacts}}},
        "engine": engine}))
    return path


def test_run_py_monitor_on_a_dask_stack_profiles_on_the_workers_and_judges_as_local(engine, tmp_path, capsys):
    """The command end to end: a version trained, evaluated and deployed on the local stack, drifted
    traffic through the real service, then `monitor` with a dask stack active: the window's rows, the
    drifted features and the decision are what the local engine finds on this traffic
    (tests/integration/test_monitoring_command.py), the log's ranges ran on the workers; a dask stack
    whose scheduler does not answer is one message and exit 1, with no monitoring run."""
    import json

    from distributed import get_task_stream
    from zenml.client import Client

    from keel.cli.main import main
    from keel.deployment.deploy import deployment_folder
    from keel.deployment.server import post_json, service_url, stop_service
    from keel.engine.cluster import connect
    from keel.monitoring.simulation import send_traffic
    from keel.stacks.apply import apply_stack_file
    from tests.support.servers import free_port

    settings = [
        "problem.name=dask_monitor_model", "data.source.rows=3000", "training.candidate.trials=1",
        "training.candidate.params.n_estimators=40", "evaluation.latency.single_row_calls=20",
        "evaluation.explainability.sample_size=50", "evaluation.comparison.bootstrap_samples=200",
        "evaluation.comparison.margin=0.5", "evaluation.gates[roc_auc].min=0.5",
        "evaluation.gates[expected_calibration_error].max=0.2", "evaluation.gates[p95_latency_ms].max=1000",
        "evaluation.gates[p95_latency_ratio].max=1000", "evaluation.gates[value_uplift_vs_baseline].min=-1000000",
        "deployment.strategy=all-at-once", "deployment.hold_seconds=0", "deployment.probe_requests=40",
        f"deployment.port={free_port()}", f"deployment.folder={tmp_path / 'deployments'}",
        "deployment.allow_folder_outside_project=true",
        "monitoring.simulation.rows=800", "monitoring.simulation.covariate_shift=2.5",
        "monitoring.simulation.shifted_features=[income, savings_balance]", "monitoring.simulation.concept_shift=0.0",
    ]
    args = [arg for setting in settings for arg in ("--set", setting)]
    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", settings)
    artifacts = str(Client().active_stack.artifact_store.path)  # the references stay readable on the dask stack
    try:
        for command in ("train", "evaluate", "deploy"):
            assert main([command, *args]) == 0
        _, traffic = send_traffic(spec, service_url("127.0.0.1", spec.deployment.port), post_json)
        assert traffic["answered"] == 800
        apply_stack_file(_stack_file(tmp_path, "dask-monitor", engine.model_dump(mode="json"), artifacts))
        with get_task_stream(client=connect(engine)) as stream:
            assert main(["monitor", "--no-retrain", *args]) == 0
        ranges = [t for t in stream.data if str(t.get("key", "")).startswith("profile_log_range")]
        assert len(ranges) >= 1  # the traffic was sent within seconds: one hour, so one range or two
        status = json.loads((monitoring_folder(spec) / "status.json").read_text())
        assert status["window"]["rows"] == 800 and status["window"]["online_rows"] == 800
        assert status["features"]["drifted"] == ["income", "savings_balance"]
        assert status["decision"]["fired"] and "drift" in status["decision"]["fired"]
        capsys.readouterr()

        port = free_port()  # nothing listens on it
        nowhere = {"kind": "dask", "scheduler_address": f"tcp://127.0.0.1:{port}", "connect_timeout_seconds": 2}
        apply_stack_file(_stack_file(tmp_path, "dask-nowhere", nowhere, artifacts))
        runs = len(Client().list_pipeline_runs(size=100).items)
        assert main(["monitor", "--no-retrain", *args]) == 1
        assert f"no Dask scheduler answers at tcp://127.0.0.1:{port}" in capsys.readouterr().err
        assert len(Client().list_pipeline_runs(size=100).items) == runs
    finally:
        stop_service(deployment_folder(spec))
        Client().activate_stack("default")


def test_partitioned_parquet_profiled_on_the_workers_merges_to_the_whole_profile(engine, tmp_path):
    """More partitions than are merged at a time: the merged profile still counts every row, its nulls
    and categories, as keel's in-process profile of all the rows does."""
    from keel.engine.cluster import connect
    from keel.engine.dask_monitoring import MERGE_EVERY, profile_parquet

    spec = _spec(tmp_path / "unused")
    rows = _served(spec, 900)[["income", "region", "employment_type", "score", "decision"]]
    folder = tmp_path / "predictions"
    for i, start in enumerate(range(0, len(rows), 90)):
        (folder / f"day={i % 3}").mkdir(parents=True, exist_ok=True)
        rows.iloc[start:start + 90].to_parquet(folder / f"day={i % 3}" / f"part-{i:03d}.parquet", index=False,
                                              row_group_size=30)
    merged, seen, partitions = profile_parquet(connect(engine), folder)
    assert partitions == 30 > MERGE_EVERY and seen == 900
    whole = profile_frame(rows)
    for name in rows.columns:
        mine, theirs = column_summary(whole, name), column_summary(merged, name)
        assert [mine[k] for k in ("count", "nulls", "frequencies")] == [theirs[k] for k in ("count", "nulls", "frequencies")]


class _ProfilesInFlight:
    """Scheduler plugin: the most row-group profiling tasks the scheduler held at once (submitted and
    not yet released by the client: waiting, running, or finished and unread)."""

    name = "profiles-in-flight"

    def __init__(self):
        self.now, self.most = set(), 0

    def transition(self, key, start, finish, *args, **kwargs):
        if not str(key).startswith("_profile_piece"):
            return
        if finish in ("released", "forgotten", "erred"):
            self.now.discard(key)
        else:
            self.now.add(key)
        self.most = max(self.most, len(self.now))


def test_partitioned_parquet_keeps_at_most_two_tasks_per_worker_in_flight(engine, tmp_path):
    """Finished profiles (hundreds of KiB each) wait on the workers until read: with 40 row groups
    and 2 workers, the cluster holds about 4 profiling tasks at once (not 40), and the profile still
    counts every row."""
    from distributed.diagnostics.plugin import SchedulerPlugin

    from keel.engine.cluster import connect
    from keel.engine.dask_monitoring import IN_FLIGHT_PER_WORKER, profile_parquet

    spec = _spec(tmp_path / "unused")
    rows = _served(spec, 400)[["income", "region", "score"]]
    folder = tmp_path / "predictions"
    folder.mkdir()
    rows.to_parquet(folder / "part-0.parquet", index=False, row_group_size=10)
    client = connect(engine)
    plugin = type("InFlight", (_ProfilesInFlight, SchedulerPlugin), {})()
    client.register_plugin(plugin)
    try:
        merged, seen, partitions = profile_parquet(client, folder)
        most = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins[plugin.name].most)
    finally:
        client.unregister_scheduler_plugin(plugin.name)
    assert (partitions, seen) == (40, 400)
    assert column_summary(merged, "income")["count"] == 400
    # the scheduler may take in the next task just before the release of the one read (2 streams)
    assert 2 <= most <= IN_FLIGHT_PER_WORKER * 2 + 1 == 5


def test_workers_keel_starts_read_parquet_with_the_system_allocator():
    """Arrow's default mimalloc pool made a worker's memory grow with every row group it read; the
    local cluster keel starts gives its workers the system allocator (read at process start)."""
    from keel.engine.cluster import connect, disconnect
    from keel.engine.spec import LocalCluster

    engine = DaskEngine(kind="dask", local_cluster=LocalCluster(workers=1, memory_limit="1GiB"))
    try:
        pools = connect(engine).run(lambda: __import__("pyarrow").default_memory_pool().backend_name)
    finally:
        disconnect(engine)
    assert list(pools.values()) == ["system"]
