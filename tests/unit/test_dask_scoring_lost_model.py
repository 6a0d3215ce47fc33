"""A worker killed mid-batch can take the model scattered to the workers with it: the scheduler then
cancels the partitions still to come ("lost dependencies"), seen by helper-62 on a real cluster (and,
once workers restarted, a batch waiting for ever). Those partitions are scored again against the model
scattered anew, a bounded number of times. A client standing in for the cluster runs each partition in
this process and loses the model on cue; the partitions, files and model are real."""

from concurrent.futures import CancelledError

import numpy as np
import pandas as pd
import pytest

from keel.engine import dask_scoring


class _Future:
    def __init__(self, compute, lost: bool):
        self.compute, self.lost = compute, lost

    def result(self):
        if self.lost:
            raise CancelledError("score_partition-1 cancelled for reason: lost dependencies.")
        return self.compute()

    def release(self):
        pass

    def cancel(self):
        self.lost = True


class _LosingClient:
    """Scatters by handing the model back; loses it (cancelling every partition submitted against it) for
    the first `losses` scatters, at partition `at`."""

    def __init__(self, losses: int, at: int):
        self.losses, self.at, self.scatters = losses, at, 0

    def scatter(self, values, broadcast=False):
        self.scatters += 1
        return list(values)

    def submit(self, function, piece, schema, index, offset, model, job, pure=False):
        lost = self.scatters <= self.losses and index >= self.at
        return _Future(lambda: function(piece, schema, index, offset, model, job), lost)


@pytest.fixture(scope="module")
def scored_input(tmp_path_factory):
    from keel.data.generator import generate_credit_applications
    from keel.spec import load_spec
    from keel.spec.data import GeneratorSource
    from tests.conftest import ROOT
    from tests.support.demo_model import fit_demo_pipeline

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml")
    frame = generate_credit_applications(GeneratorSource(kind="generator", rows=1200, seed=62)).drop(columns="default")
    folder = tmp_path_factory.mktemp("portfolio") / "applications"
    folder.mkdir()
    frame.to_parquet(folder / "part.parquet", index=False, row_group_size=200)  # 6 partitions
    return spec, folder, fit_demo_pipeline(rows=1500, n_estimators=20)


def _score(client, scored_input, tmp_path, name):
    from keel.batch.inputs import batch_source

    spec, folder, model = scored_input
    return dask_scoring.score_partitioned(
        client, source=batch_source(str(folder), spec.data), data=spec.data, model=model, threshold=0.3,
        model_version=1, batch_id=name, input_fingerprint="sha256:x", output=tmp_path / f"{name}.parquet",
        rejects=tmp_path / f"{name}.rejects.parquet", chunk_rows=200)


def test_partitions_cancelled_by_a_lost_model_are_scored_again_with_the_same_result(scored_input, tmp_path):
    whole = _score(_LosingClient(losses=0, at=0), scored_input, tmp_path, "whole")
    client = _LosingClient(losses=2, at=3)
    recovered = _score(client, scored_input, tmp_path, "recovered")
    assert client.scatters == 3 and recovered.result["scored"] == whole.result["scored"] == 1200
    read = lambda batch: pd.read_parquet(batch.result["output_uri"]).drop(columns="batch_id")  # noqa: E731
    pd.testing.assert_frame_equal(read(recovered), read(whole))
    assert np.array_equal(read(recovered)["row"].to_numpy(), np.arange(1200))


def test_a_model_lost_again_and_again_fails_the_batch_in_words_and_publishes_nothing(scored_input, tmp_path):
    from keel.batch.scoring import BatchScoringError

    losses = dask_scoring.LOST_MODEL_RETRIES + 1
    with pytest.raises(BatchScoringError, match=f"the Dask cluster lost the model {losses} times while scoring"):
        _score(_LosingClient(losses=losses, at=0), scored_input, tmp_path, "lost")
    assert not (tmp_path / "lost.parquet").exists() and not (tmp_path / "lost.rejects.parquet").exists()


def test_a_partition_still_running_when_its_batch_failed_leaves_nothing_behind(scored_input, tmp_path):
    """Dask does not stop a running task it cancels: a partition that starts after the batch failed and
    removed its parts folder (seen in CI: an empty hidden folder left beside the output) must not make it
    again."""
    from keel.batch.contract import MissingColumnsError
    from keel.batch.inputs import batch_source

    spec, folder, model = scored_input
    broken = tmp_path / "input"
    broken.mkdir()
    pd.read_parquet(folder / "part.parquet").drop(columns="income").to_parquet(broken / "part.parquet", index=False,
                                                                                row_group_size=200)
    client = _LosingClient(losses=0, at=0)
    submitted = []
    submit = client.submit
    client.submit = lambda *args, **kwargs: submitted.append(submit(*args, **kwargs)) or submitted[-1]
    output = tmp_path / "out"
    with pytest.raises(MissingColumnsError, match="income"):
        dask_scoring.score_partitioned(
            client, source=batch_source(str(broken), spec.data), data=spec.data, model=model, threshold=0.3,
            model_version=1, batch_id="failed", input_fingerprint="sha256:x", output=output / "scores.parquet",
            rejects=output / "rejects.parquet", chunk_rows=200)
    assert len(submitted) == 6
    for late in submitted[1:]:  # cancelled, yet running on their workers: they run to their end now
        with pytest.raises(Exception):
            late.compute()
    assert not output.exists() or list(output.iterdir()) == []
