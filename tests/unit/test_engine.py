"""The engine section of stack files, and the dask engine's pure parts (no cluster): the hash split
and samples do not depend on partitioning, failures of partitions merge as one batch's would."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.data.schema import CheckFailure, validate_frame
from keel.engine.dask_data import (PartitionVerdict, _batch_failures, _merge_failures, assign_parts,
                                   unit_hash, validate_partition)
from keel.engine.spec import DaskEngine, LocalEngine, engine_from_dict
from keel.stacks import StackFileError, load_stack_file
from keel.stacks.extras import missing_extras
from keel.stacks.load import STACKS_DIR

BASE = """
name: mine
components:
  orchestrator: {name: o, flavor: local}
  artifact_store: {name: a, flavor: local, configuration: {path: /tmp/x}}
"""


def _stack(tmp_path: Path, engine: str):
    path = tmp_path / "stack.yaml"
    path.write_text(BASE + engine)
    return load_stack_file(path, environ={})


def test_a_stack_without_an_engine_is_local_and_the_dask_stacks_name_theirs(tmp_path):
    assert isinstance(_stack(tmp_path, "").engine, LocalEngine)
    local = load_stack_file(STACKS_DIR / "dask-local.yaml", environ={}).engine
    assert (local.kind, local.local_cluster.workers, local.local_cluster.memory_limit) == ("dask", 2, "4GiB")
    remote = load_stack_file(STACKS_DIR / "dask-kubernetes.yaml", environ={}).engine
    assert remote.scheduler_address.startswith("tcp://") and remote.local_cluster is None
    workers = load_stack_file(STACKS_DIR / "dask-local.yaml", environ={"KEEL_DASK_WORKERS": "3"}).engine
    assert workers.local_cluster.workers == 3


@pytest.mark.parametrize("engine, expected", [
    ("engine: {kind: dask}", "exactly one of scheduler_address"),
    ("engine: {kind: dask, scheduler_address: 'tcp://s:8786', local_cluster: {workers: 2}}", "exactly one of"),
    ("engine: {kind: dask, scheduler_address: 's:8786'}", "engine.scheduler_address: expected string should match"),
    ("engine: {kind: dask, local_cluster: {memory_limit: lots}}", "memory_limit"),
    ("engine: {kind: spark}", "engine"),
    ("engine: {kind: dask, local_cluster: {wokers: 2}}", "wokers"),
])
def test_a_wrong_engine_is_one_message_naming_the_key(tmp_path, engine, expected):
    with pytest.raises(StackFileError) as error:
        _stack(tmp_path, engine)
    assert expected in str(error.value) and "stack.yaml" in str(error.value)


def test_the_dask_engine_needs_the_dask_extra(tmp_path):
    stack = _stack(tmp_path, "engine: {kind: dask, scheduler_address: 'tcp://s:8786'}")
    assert missing_extras(stack, installed=lambda module: module != "distributed") == [
        ("engine", "dask", "dask", ["distributed"])]
    assert missing_extras(_stack(tmp_path, ""), installed=lambda module: False) == []


def test_an_engine_travels_as_a_plain_dict():
    engine = DaskEngine(kind="dask", scheduler_address="tcp://127.0.0.1:8786")
    assert engine_from_dict(engine.model_dump(mode="json")) == engine
    assert isinstance(engine_from_dict(None), LocalEngine) and isinstance(engine_from_dict({}), LocalEngine)


def _frame(rows=3000, text_ids=False):
    rng = np.random.default_rng(3)
    ids = [f"app-{i}" for i in range(rows)] if text_ids else np.arange(10_000, 10_000 + rows)
    return pd.DataFrame({"id": ids, "x": rng.normal(size=rows), "y": rng.integers(0, 2, rows)})


class _Data:  # the only fields the hash split reads
    def __init__(self, id_column):
        self.id_column = id_column


@pytest.mark.parametrize("text_ids", [False, True])
def test_the_hash_split_does_not_depend_on_partitioning(text_ids):
    from keel.spec.data import SplitSpec

    frame, split, data = _frame(text_ids=text_ids), SplitSpec(seed=5), _Data("id")
    whole = assign_parts(frame, data, split)
    for pieces in (2, 7, 50):
        parts = np.concatenate([assign_parts(piece, data, split) for piece in np.array_split(frame, pieces)])
        assert (parts == whole).all()
    shares = np.bincount(whole, minlength=3) / len(frame)
    assert np.allclose(shares, [0.6, 0.2, 0.2], atol=0.03)
    other_seed = assign_parts(frame, data, SplitSpec(seed=6))
    assert (other_seed != whole).mean() > 0.3  # the seed matters, for numbers as for text


def test_without_an_id_column_the_rows_themselves_are_hashed():
    frame = _frame()
    u = unit_hash(frame, _Data(None), seed=1)
    again = np.concatenate([unit_hash(piece, _Data(None), seed=1) for piece in np.array_split(frame, 9)])
    assert (u == again).all() and 0 <= u.min() and u.max() < 1
    # the sample's hash (another salt) is independent of the split's: no part is sampled unevenly
    sample = unit_hash(frame, _Data(None), seed=1, salt=7919) < 0.3
    assert abs(sample[u < 0.6].mean() - 0.3) < 0.05


def test_partition_failures_merge_into_the_batch_report(default_spec):
    data = default_spec.data
    from keel.data.sources import load_frame

    frame = load_frame(data.model_copy(update={"source": data.source.model_copy(update={"rows": 600})}))
    broken = frame.astype({"sex": "object"})
    broken.loc[[5, 250, 251, 590], "income"] = -1.0
    broken.loc[[10, 400], "sex"] = "robot"
    _, whole = validate_frame(broken, data)
    verdicts = []
    for piece in np.array_split(broken, 4):
        _, failures = validate_partition(piece, data)
        verdicts.append(PartitionVerdict(len(piece), failures, {0: 1, 1: 1}, None, None, None))
    merged = _merge_failures(verdicts)
    key = lambda f: (f.column, f.check, f.failing_rows, tuple(f.examples))
    assert sorted(map(key, merged)) == sorted(map(key, whole.failures))


def test_whole_batch_checks_are_answered_on_the_whole_batch(default_spec):
    data = default_spec.data
    one_class = [PartitionVerdict(10, [], {0: 10}, None, None, None), PartitionVerdict(5, [], {0: 5}, None, None, None)]
    both = [PartitionVerdict(10, [], {0: 10}, None, None, None), PartitionVerdict(5, [], {1: 5}, None, None, None)]
    assert _batch_failures(both, data, None) == []  # each partition holds one class: the batch holds both
    (failure,) = _batch_failures(one_class, data, None)
    assert failure.column == data.target.column and failure.failing_rows == 15
    ids = pd.Series([1, 2, 3, 2, 9, 9], dtype="uint64")
    (duplicates,) = _batch_failures(both, data, ids)
    assert (duplicates.check, duplicates.failing_rows) == ("duplicate ids", 4)
    empty = _batch_failures([PartitionVerdict(0, [], {}, None, None, None)], data, None)
    assert [f.check for f in empty] == ["the batch has no rows"]


def test_a_dask_reproduction_is_identical_on_the_same_layout_and_within_tolerance_on_another():
    from keel.engine.reproduction import METRIC_TOLERANCE, compare_reproduction

    layout = {"layout": {"workers": 2, "threads_per_worker": 1, "partitions": 8}}
    other = {"layout": {"workers": 3, "threads_per_worker": 1, "partitions": 8}}
    metrics = {"roc_auc": 0.80, "pr_auc": 0.50}
    assert compare_reproduction(layout, "a" * 64, metrics, layout, "a" * 64, metrics) == []
    # The same layout must give the same model: close metrics do not excuse another hash.
    [problem] = compare_reproduction(layout, "a" * 64, metrics, layout, "b" * 64, metrics)
    assert "same layout" in problem and "bbbbbbbbbbbb" in problem
    close = {"roc_auc": 0.80 + METRIC_TOLERANCE["roc_auc"] / 2, "pr_auc": 0.50 - METRIC_TOLERANCE["pr_auc"] / 2}
    assert compare_reproduction(layout, "a" * 64, metrics, other, "b" * 64, close) == []
    far = {"roc_auc": 0.80 - 2 * METRIC_TOLERANCE["roc_auc"], "pr_auc": 0.50}
    [problem] = compare_reproduction(layout, "a" * 64, metrics, other, "b" * 64, far)
    assert problem.startswith("roc_auc 0.7600 differs from the recorded 0.8000")


def test_a_dask_versions_evaluation_states_the_seeded_sample_of_its_test_split():
    from keel.engine.dask_run import evaluation_sample

    assert evaluation_sample(None, 7) is None and evaluation_sample({}, 7) is None  # a local version
    record = {"rows": {"train": 3_000_000, "validation": 1_000_000, "test": 1_000_000},
              "sample_rows": {"train": 200_113, "validation": 199_870, "test": 200_041}, "search_sample_rows": 200_000}
    sample = evaluation_sample(record, 7)
    assert (sample["rows"], sample["of_rows"], sample["seed"], sample["whole_split"]) == (200_041, 1_000_000, 7, False)
    assert "seeded hash sample" in sample["how"]
    small = {**record, "rows": {**record["rows"], "test": 1_500}, "sample_rows": {**record["sample_rows"], "test": 1_500}}
    assert evaluation_sample(small, 7)["whole_split"] and evaluation_sample(small, 7)["how"] == "every row of the test split"
