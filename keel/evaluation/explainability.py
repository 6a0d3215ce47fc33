"""Explainability with SHAP: global importance, importance per sensitive group, local explanations.

Contributions are computed on the model's encoded inputs and summed back to the spec's features
(one-hot columns and missing-value indicators belong to the feature they encode)."""

from __future__ import annotations

import time
import warnings
from typing import Dict, List

import numpy as np
import pandas as pd

from keel.reports import html, svg
from keel.spec.data import DataSpec
from keel.spec.evaluation import ExplainabilitySpec
from keel.training.fit import predict_scores


def original_feature(encoded: str, features: List[str]) -> str:
    name = encoded.removeprefix("missingindicator_")
    matches = [f for f in features if name == f or name.startswith(f + "_")]
    return max(matches, key=len) if matches else name


def shap_contributions(model, rows: pd.DataFrame, data: DataSpec, background: pd.DataFrame | None = None) -> pd.DataFrame:
    """SHAP values (log-odds) per row and spec feature, for a `Pipeline(features -> model)`."""
    import shap

    encoder, estimator = model.named_steps["features"], model.named_steps["model"]
    x = encoder.transform(rows[data.model_features])
    if hasattr(estimator, "booster_") or type(estimator).__name__.startswith(("LGBM", "XGB", "RandomForest")):
        with warnings.catch_warnings():  # SHAP notes its LightGBM output format changed; handled below
            warnings.simplefilter("ignore", UserWarning)
            values = shap.TreeExplainer(estimator).shap_values(x)
    else:
        reference = encoder.transform((background if background is not None else rows)[data.model_features])
        values = shap.LinearExplainer(estimator, reference).shap_values(x)
    if isinstance(values, list):  # older SHAP: one array per class
        values = values[-1]
    values = np.asarray(values)
    if values.ndim == 3:
        values = values[..., -1]
    encoded = pd.DataFrame(values, columns=encoder.get_feature_names_out(), index=rows.index)
    owners = [original_feature(c, data.model_features) for c in encoded.columns]
    return encoded.T.groupby(owners, sort=False).sum().T[data.model_features]


def evaluate_explainability(model, frame: pd.DataFrame, groups: pd.DataFrame, data: DataSpec,
                            spec: ExplainabilitySpec, background: pd.DataFrame | None = None) -> dict:
    sample = frame.sample(min(spec.sample_size, len(frame)), random_state=spec.seed)
    started = time.perf_counter()
    contributions = shap_contributions(model, sample, data, background)
    seconds = time.perf_counter() - started
    importance = contributions.abs().mean().sort_values(ascending=False)
    by_group: Dict[str, Dict[str, Dict[str, float]]] = {}
    for attribute in groups.columns:
        labels = groups.loc[sample.index, attribute]
        means = contributions.abs().groupby(labels).mean()
        by_group[attribute] = {str(g): {f: round(float(v), 5) for f, v in row[importance.index[:8]].items()}
                               for g, row in means.iterrows()}
    scores = predict_scores(model, sample)
    local = []
    for position in range(min(spec.local_examples, len(sample))):
        row = contributions.iloc[position]
        top = row.abs().sort_values(ascending=False).index[:5]
        local.append({"row_id": str(sample.index[position]) if data.id_column is None
                      else str(sample.iloc[position][data.id_column]),
                      "score": round(float(scores[position]), 4),
                      "top_contributions": {f: round(float(row[f]), 4) for f in top}})
    return {"sample_size": int(len(sample)), "seconds": round(seconds, 3),
            "rows_per_second": round(len(sample) / seconds, 1) if seconds > 0 else None,
            "global_importance": {f: round(float(v), 5) for f, v in importance.items()},
            "top_features": list(importance.index[:5]), "by_group": by_group, "local": local}


def explainability_html(report: dict) -> str:
    importance = report["global_importance"]
    sections = [html.paragraph(f"SHAP values on {report['sample_size']} test rows (log-odds of the positive "
                               f"class; {report['rows_per_second']} rows/s)."),
                svg.bar_chart(list(importance), list(importance.values()), "Mean |SHAP| per feature")]
    for attribute, groups in report["by_group"].items():
        features = list(next(iter(groups.values()))) if groups else []
        sections.append(html.heading(f"Mean |SHAP| by {attribute}"))
        sections.append(html.table(["group", *features], [(g, *v.values()) for g, v in groups.items()]))
    sections.append(html.heading("Local explanations"))
    for item in report["local"]:
        sections.append(html.paragraph(f"row {item['row_id']}: score {item['score']}"))
        sections.append(svg.bar_chart(list(item["top_contributions"]), list(item["top_contributions"].values())))
    return html.page("Explainability (SHAP)", *sections)
