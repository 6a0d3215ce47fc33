"""The training run's work on the dask engine, as plain functions the pipeline's dask steps call:
prepare (read, validate, fingerprint, split, sample) and refit (the chosen model on the whole
training split, metrics on whole splits). The data stays where it is: each step reads the source
lazily again (the fingerprint of the first step names the content every later step works on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import pandas as pd

from keel.data.schema import ValidationReport
from keel.engine.cluster import connect, layout
from keel.engine.dask_data import (PARTS, count_rows, read_partitions, seeded_sample, split_partitions,
                                   validate_and_fingerprint, validated_partitions)
from keel.engine.spec import DaskEngine
from keel.spec.data import DataSpec, SplitSpec
from keel.spec.training import TrainingSpec


@dataclass
class Prepared:
    report: ValidationReport
    fingerprint: Optional[str]
    samples: Dict[str, pd.DataFrame]  # train / validation / test, each at most search_sample_rows
    record: dict  # what the model version records under `engine`


def prepare(data: DataSpec, split: SplitSpec, engine: DaskEngine) -> Prepared:
    client = connect(engine)
    raw = read_partitions(data, engine)
    checked = validate_and_fingerprint(client, raw, data)
    record = {"layout": dict(layout(client, engine, checked.partitions))}
    if not checked.report.passed:
        return Prepared(checked.report, None, {}, record)
    parts = split_partitions(client, validated_partitions(raw, data), data, split)
    rows = dict(zip(PARTS, count_rows(client, parts)))
    samples = {name: seeded_sample(client, part, data, split.seed, engine.search_sample_rows, rows[name])
               for name, part in zip(PARTS, parts)}
    record.update({
        "rows": rows,
        "sample_rows": {name: len(frame) for name, frame in samples.items()},
        "search_sample_rows": engine.search_sample_rows,
        "split": "seeded hash of the id column" if data.id_column and split.strategy != "time"
                 else ("time cut points" if split.strategy == "time" else "seeded hash of each row"),
        "note": ("the search, the baseline, readiness and the evaluation's test split use the seeded "
                 "samples; the chosen LightGBM model is refit on the whole training split and its "
                 "registered validation and test metrics are computed on the whole splits"),
    })
    return Prepared(checked.report, checked.fingerprint, samples, record)


def refit(model, selection: dict, data: DataSpec, split: SplitSpec, training: TrainingSpec,
          engine: DaskEngine, record: dict):
    """(model, selection, record): the chosen LightGBM refit on the whole training split (a chosen
    baseline stays as fit on the sample), with whole-split validation and test metrics."""
    from keel.engine.dask_training import refit_lightgbm, whole_split_metrics

    client = connect(engine)
    raw = read_partitions(data, engine)
    train, validation, test = split_partitions(client, validated_partitions(raw, data), data, split)
    refit_done = selection["chosen"] == "lightgbm"
    if refit_done:
        model = refit_lightgbm(client, model, selection["params"], train, data, training)
    validation_metrics = whole_split_metrics(client, model, validation, data)
    test_metrics = whole_split_metrics(client, model, test, data)
    chosen = {**selection, "search_validation_metrics": selection["validation_metrics"],
              "validation_metrics": validation_metrics}
    record = {**record, "layout": dict(layout(client, engine, raw.npartitions)),
              "refit_on_whole_train": refit_done, "test_metrics": test_metrics}
    return model, chosen, record


def evaluation_sample(engine_record: Optional[dict], seed: int) -> Optional[dict]:
    """What the evaluation of a version trained on the dask engine computes its metrics on (None for a
    local version, evaluated on its whole test split): the version's test artifact is the seeded
    sample `prepare` drew, since a test split larger than memory cannot be one pandas frame. The
    registered test metrics themselves were computed by partition on the whole split (`refit`)."""
    if not engine_record or "sample_rows" not in engine_record:
        return None
    sample, whole = int(engine_record["sample_rows"]["test"]), int(engine_record["rows"]["test"])
    return {"split": "test", "rows": sample, "of_rows": whole, "whole_split": sample >= whole,
            "seed": int(seed), "bound": int(engine_record.get("search_sample_rows") or sample),
            "how": ("every row of the test split" if sample >= whole else
                    "a seeded hash sample of the test split's rows (keel.engine.dask_data.seeded_sample: each "
                    "row kept when its hash under the split seed is below bound/rows), in row order"),
            "registered_test_metrics": "computed by partition on the whole test split"}
