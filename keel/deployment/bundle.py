"""A deployment folder: everything a serving process needs, and nothing it must fetch.

    deployment.json   spec, model files per version, thresholds, prediction-log URL, API-key env name
    models/vN.pkl     the features+model pipeline of each version in play
    routing.json      the current routing table (replaced atomically by the rollout controller)
    background.parquet  a few validation rows, the reference for SHAP on linear models
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Dict, Optional

import pandas as pd

from keel.files import write_atomically
from keel.serving.routing import RoutingTable
from keel.serving.layout import DEPLOYMENT_FILE, MAX_BODY_BYTES, ROUTING_FILE
from keel.spec.models import Spec


def write_routing(folder: Path, table: RoutingTable) -> None:
    write_atomically(Path(folder) / ROUTING_FILE, json.dumps(table.to_dict(), indent=2).encode())


def write_bundle(folder: Path, spec: Spec, models: Dict[int, object], thresholds: Dict[int, float],
                 routing: RoutingTable, prediction_log_url: Optional[str], background: Optional[pd.DataFrame] = None,
                 api_key_env: Optional[str] = None, max_body_bytes: int = MAX_BODY_BYTES) -> Path:
    folder = Path(folder)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    paths = {}
    for version, model in models.items():
        paths[str(version)] = f"models/v{version}.pkl"
        write_atomically(folder / paths[str(version)], pickle.dumps(model, protocol=5))
    if background is not None:
        background.head(spec.governance.explanation_background_rows).to_parquet(folder / "background.parquet")
    config = {"spec": spec.model_dump(mode="json"), "models": paths,
              "thresholds": {str(v): t for v, t in thresholds.items()},
              "prediction_log_url": prediction_log_url, "api_key_env": api_key_env,
              "max_body_bytes": max_body_bytes}
    write_atomically(folder / DEPLOYMENT_FILE, json.dumps(config, indent=2).encode())
    write_routing(folder, routing)
    return folder
