"""A damaged directory of Parquet files on the dask engine, on a real `distributed.LocalCluster` (2 worker
processes over TCP on 127.0.0.1), judged as the local engine judges it, with the same message: a truncated
file or a file lacking a declared column refuses training and the batch naming the file (nothing is
published); a numeric column stored as text in one file names the file and the column in training, and in
scoring its values that are no number are the same row rejects on both engines."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from keel.data.sources import DataSourceError, load_frame
from keel.engine.spec import DaskEngine
from tests.conftest import ROOT
from tests.support.dask_cluster import engine_record
from tests.support.demo_model import fit_demo_pipeline

pytestmark = pytest.mark.integration
ROWS = 1500


@pytest.fixture(scope="module")
def engine(cluster):
    with engine_record(cluster) as record:
        yield record


@pytest.fixture(scope="module")
def client(engine):
    from keel.engine.cluster import connect

    return connect(DaskEngine.model_validate(engine))


@pytest.fixture(scope="module")
def model():
    return fit_demo_pipeline(rows=1500, n_estimators=10)


@pytest.fixture(scope="module")
def applications():
    from keel.data.generator import generate_credit_applications
    from keel.spec.data import GeneratorSource

    frame = generate_credit_applications(GeneratorSource(kind="generator", rows=ROWS, seed=4))
    frame["region"] = frame["region"].astype(str)
    return frame


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    import os

    before = os.environ.get("KEEL_AUDIT_ROOT")
    os.environ["KEEL_AUDIT_ROOT"] = str(tmp_path_factory.mktemp("audit"))
    yield
    if before is None:
        del os.environ["KEEL_AUDIT_ROOT"]
    else:
        os.environ["KEEL_AUDIT_ROOT"] = before


def _folder(tmp_path: Path, frame: pd.DataFrame, name: str = "applications") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for i, part in enumerate(np.array_split(frame, 3)):
        part.to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=200)
    return folder


def _spec(folder: Path, here: Path, name: str):
    """The demo spec reading `folder` (a spec file of its own: a source's kind cannot be --set)."""
    import yaml

    from keel.spec import load_spec

    raw = yaml.safe_load((ROOT / "configs" / "credit_risk.yaml").read_text())
    raw["data"]["source"] = {"kind": "parquet", "path": str(folder)}
    raw["monitoring"]["simulation"] = None
    path = here / "specs" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return load_spec(path, [f"problem.name={name}", f"deployment.folder={here / ('deployments-' + name)}",
                            "deployment.allow_folder_outside_project=true", "batch.chunk_rows=150"])


def _score(folder: Path, here: Path, name: str, model, engine=None):
    """The batch `folder` scored by one engine, with its own deployment (its own batch records)."""
    from keel.batch.inputs import batch_source, fingerprint_input
    from keel.lifecycle.batch import score_input

    spec, output = _spec(folder, here, name), here / f"{name}.parquet"
    return score_input(spec=spec, model=model, threshold=0.3, model_version=1, batch_id="batch-1",
                       location=str(folder), query=None,
                       input_fingerprint=fingerprint_input(batch_source(str(folder), spec.data)),
                       output=str(output), fmt="parquet", new_batch=False, engine=engine, say=lambda text: None)


def _train_read_error(spec, client) -> str:
    """The message of the local read's error, checked equal to the dask engine's."""
    from keel.engine.dask_data import read_partitions, validate_and_fingerprint

    with pytest.raises(DataSourceError) as local:
        load_frame(spec.data)
    with pytest.raises(DataSourceError) as distributed:
        validate_and_fingerprint(client, read_partitions(spec.data, DaskEngine(
            kind="dask", scheduler_address="tcp://unused:1")), spec.data)
    assert str(distributed.value) == str(local.value)
    return str(local.value)


def _score_error(folder, here, model, engine) -> str:
    """The message of the local batch's error, checked equal to the dask engine's; nothing published."""
    messages = []
    for name, on in (("local", None), ("dask", engine)):
        with pytest.raises(DataSourceError) as error:
            _score(folder, here, name, model, on)
        messages.append(str(error.value))
        assert not [p for p in here.iterdir() if p.name.startswith(name)]
    assert messages[0] == messages[1]
    return messages[0]


def test_a_truncated_file_refuses_training_and_the_batch_on_both_engines(tmp_path, applications, client, model,
                                                                           engine, audit):
    folder = _folder(tmp_path, applications.drop(columns="default"))
    train_folder = _folder(tmp_path, applications, "training")
    for part in (folder / "part-1.parquet", train_folder / "part-1.parquet"):
        part.write_bytes(part.read_bytes()[:-50])
    spec = _spec(train_folder, tmp_path, "truncated")
    assert "part-1.parquet: cannot be read as parquet" in _train_read_error(spec, client)
    here = tmp_path / "out"
    here.mkdir()
    assert "part-1.parquet: cannot be read as parquet" in _score_error(folder, here, model, engine)


def test_a_file_without_a_declared_column_refuses_training_and_the_batch_on_both_engines(
        tmp_path, applications, client, model, engine, audit):
    folder = _folder(tmp_path, applications.drop(columns="default"))
    pd.read_parquet(folder / "part-2.parquet").drop(columns="region").to_parquet(folder / "part-2.parquet")
    here = tmp_path / "out"
    here.mkdir()
    assert "part-2.parquet: has no column 'region'" in _score_error(folder, here, model, engine)
    train_folder = _folder(tmp_path, applications, "training")
    pd.read_parquet(train_folder / "part-0.parquet").drop(columns="default").to_parquet(
        train_folder / "part-0.parquet")
    assert "part-0.parquet: has no column 'default'" in _train_read_error(_spec(train_folder, tmp_path, "m2"), client)


def test_text_in_a_numeric_column_names_file_and_column_in_training_and_gives_the_same_rejects(
        tmp_path, applications, client, model, engine, audit):
    text = applications.copy()
    text["income"] = text["income"].astype(str).astype(object)
    text.loc[[600, 777], "income"] = "unknown"
    train_folder = _folder(tmp_path, applications, "training")
    text.iloc[500:1000].to_parquet(train_folder / "part-1.parquet", index=False, row_group_size=200)
    message = _train_read_error(_spec(train_folder, tmp_path, "text_train"), client)
    assert "part-1.parquet: cannot be read as parquet: column 'income'" in message
    folder = _folder(tmp_path, applications.drop(columns="default"))
    text.iloc[500:1000].drop(columns="default").to_parquet(folder / "part-1.parquet", index=False,
                                                           row_group_size=200)
    local = _score(folder, tmp_path, "local", model)
    distributed = _score(folder, tmp_path, "dask", model, engine)
    local_rejects = pq.read_table(local["result"]["rejects_uri"]).to_pandas()
    dask_rejects = pq.read_table(distributed["result"]["rejects_uri"]).to_pandas()
    pd.testing.assert_frame_equal(local_rejects, dask_rejects)
    unknown = local_rejects[local_rejects["found"] == "unknown"]
    assert unknown["row"].tolist() == [600, 777] and set(unknown["field"]) == {"income"}
    assert local["result"]["rows_read"] == distributed["result"]["rows_read"] == ROWS
