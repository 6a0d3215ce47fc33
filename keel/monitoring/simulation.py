"""Simulated production for the main job: applications from the generator's drift knobs sent to the
running service in batches, and their outcomes delivered afterwards as a labels file."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Callable, List, Tuple

import pandas as pd

from keel.spec.data import GeneratorSource
from keel.spec.models import Spec

ENTITY_PREFIX = "applicant-"


def simulated_world(spec: Spec) -> GeneratorSource:
    """The generator with the simulation's drift knobs (the world production has moved to)."""
    simulation = spec.monitoring.simulation
    if not isinstance(spec.data.source, GeneratorSource):
        raise ValueError("the simulated production traffic needs data.source.kind: generator")
    return spec.data.source.model_copy(update={
        "rows": simulation.rows, "seed": simulation.seed, "covariate_shift": simulation.covariate_shift,
        "shifted_features": list(simulation.shifted_features), "concept_shift": simulation.concept_shift})


def retraining_overrides(spec: Spec) -> List[str]:
    """`--set` overrides that make the retraining data come from the simulated world (other rows)."""
    world = simulated_world(spec)
    features = ", ".join(world.shifted_features)
    return [f"data.source.seed={world.seed + 1}", f"data.source.covariate_shift={world.covariate_shift}",
            f"data.source.shifted_features=[{features}]", f"data.source.concept_shift={world.concept_shift}"]


def _records(frame: pd.DataFrame, features: List[str]) -> List[dict]:
    records = []
    for row in frame[features + ["application_id"]].to_dict(orient="records"):
        record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        record["entity_id"] = f"{ENTITY_PREFIX}{record.pop('application_id')}"
        records.append(record)
    return records


def send_traffic(spec: Spec, url: str, post: Callable[[str, dict], Tuple[int, dict]]) -> Tuple[pd.DataFrame, dict]:
    """Score the simulated applications through POST /predict; returns them and what was answered
    (with the first refusal, so that a caller can say why not everything was)."""
    from keel.data.generator import generate_credit_applications

    frame = generate_credit_applications(simulated_world(spec))
    records = _records(frame, spec.data.model_features)
    size = spec.monitoring.simulation.batch_size
    answered, failed, versions, first_error = 0, 0, {}, None
    for start in range(0, len(records), size):
        status, body = post(f"{url}/predict", {"records": records[start:start + size]})
        if status != 200:
            failed += len(records[start:start + size])
            first_error = first_error or {"status": status, "body": body}
            continue
        for prediction in body["predictions"]:
            answered += 1
            versions[prediction["model_version"]] = versions.get(prediction["model_version"], 0) + 1
    return frame, {"sent": len(records), "answered": answered, "failed": failed, "served_by": versions,
                   "first_error": first_error}


def write_labels(frame: pd.DataFrame, target: str, path: Path, known_at: datetime) -> Path:
    """The outcomes of the scored applications, known at `known_at` (after the predictions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"entity_id": ENTITY_PREFIX + frame["application_id"].astype(str), "label": frame[target],
                  "time": known_at.isoformat()}).to_csv(path, index=False)
    return path
