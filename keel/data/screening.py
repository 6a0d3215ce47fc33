"""Leakage and proxy screening before training (the readiness report's last section).

A feature that predicts the target almost perfectly on its own is more often a copy of the outcome
than a discovery; a feature recorded after the outcome cannot be known when deciding; a feature
that tells a sensitive group from the others carries that attribute into a model that was meant
not to see it. Each is measured out of fold (a score never judges the rows it was fitted on) on a
seeded sample, so a verdict reproduces. A measure that cannot be made (one class, a group too small)
is reported as not judged, never as clean.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, TypedDict

import numpy as np
import pandas as pd

from keel.data.groups import sensitive_groups
from keel.spec.data import CategoricalFeature, DataSpec

FOLDS = 3
TOGETHER = "the model's features together"  # a proxy finding that names no single feature
MISSING_GROUP = "(missing)"


class FeatureScreen(TypedDict):
    feature: str
    target_auc: Optional[float]      # out-of-fold AUC of the feature alone for the target (None: not judged)
    recorded_after_outcome: int      # rows whose value was recorded after the outcome was known
    proxy_auc: Dict[str, float]      # sensitive attribute -> best one-group-vs-rest out-of-fold AUC


class Screening(TypedDict):
    rows_screened: int
    leakage_auc: Optional[float]
    proxy_auc: Optional[float]
    features: List[FeatureScreen]
    together: Dict[str, float]       # sensitive attribute -> AUC of all model features together
    leakage_suspects: List[str]      # "feature: why"
    proxies: List[str]               # "feature (or all features together) -> attribute=group: AUC"
    not_judged: List[str]            # what could not be measured, and why
    blocking: bool


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=seed)


def _folds(labels: np.ndarray, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)


def _judgeable(labels: np.ndarray) -> bool:
    """Both classes, each with a row in every fold."""
    counts = np.bincount(labels, minlength=2)
    return len(counts) == 2 and counts.min() >= FOLDS


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half, as roc_auc_score counts them): the
    screening makes hundreds of these on small samples, where scikit-learn's checks cost more than the sum."""
    from scipy.stats import rankdata

    positive = labels == 1
    count = int(positive.sum())
    ranks = rankdata(scores)
    return round(float((ranks[positive].sum() - count * (count + 1) / 2) / (count * (len(labels) - count))), 4)


def _category_rates(values: pd.Series, labels: np.ndarray, classes: int, seed: int) -> np.ndarray:
    """Out-of-fold share of each class per category (rows x classes; missing is a category of its own);
    a category not seen in the fitting folds gets their overall shares."""
    codes = pd.factorize(values.astype("string").fillna(MISSING_GROUP))[0]
    scores = np.zeros((len(labels), classes))
    for fit, held in _folds(labels, seed):
        counts = np.zeros((codes.max() + 1, classes))
        np.add.at(counts, (codes[fit], labels[fit]), 1.0)
        seen = counts.sum(axis=1)
        overall = np.bincount(labels[fit], minlength=classes) / len(fit)
        shares = np.where(seen[:, None] > 0, counts / np.maximum(seen, 1.0)[:, None], overall)
        scores[held] = shares[codes[held]]
    return scores


def _numeric_tree_scores(values: pd.Series, labels: np.ndarray, classes: int, seed: int, min_leaf: int) -> np.ndarray:
    """Out-of-fold class probabilities (rows x classes) of a small tree on the value alone (any monotone
    or banded relation shows); a missing value is a value of its own, below every other."""
    from sklearn.tree import DecisionTreeClassifier

    numbers = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    finite = numbers[np.isfinite(numbers)]
    below = (finite.min() - 1.0) if len(finite) else 0.0
    column = np.where(np.isfinite(numbers), numbers, below).reshape(-1, 1)
    scores = np.zeros((len(labels), classes))
    for fit, held in _folds(labels, seed):
        tree = DecisionTreeClassifier(max_leaf_nodes=16, min_samples_leaf=min_leaf, random_state=seed)
        tree.fit(column[fit], labels[fit])
        scores[np.ix_(held, tree.classes_)] = tree.predict_proba(column[held])
    return scores


def _class_scores(values: pd.Series, labels: np.ndarray, classes: int, categorical: bool, seed: int) -> np.ndarray:
    if categorical:
        return _category_rates(values, labels, classes, seed)
    return _numeric_tree_scores(values, labels, classes, seed, min_leaf=max(5, len(labels) // 200))


def single_feature_auc(values: pd.Series, labels: np.ndarray, categorical: bool, seed: int = 0) -> Optional[float]:
    """Out-of-fold AUC of one feature alone for binary `labels` (None: not judgeable)."""
    labels = np.asarray(labels, dtype=np.int64)
    if not _judgeable(labels) or values.notna().sum() == 0:
        return None
    return _auc(labels, _class_scores(values, labels, 2, categorical, seed)[:, 1])


def _group_labels(groups: pd.Series, judged: List[str]) -> np.ndarray:
    """Each row's class: the index of its judged group, or len(judged) for the rest."""
    position = {group: index for index, group in enumerate(judged)}
    return np.array([position.get(g, len(judged)) for g in groups], dtype=np.int64)


def group_aucs(values: pd.Series, groups: pd.Series, judged: List[str], categorical: bool, seed: int = 0) -> Dict[str, float]:
    """Out-of-fold AUC, per judged group against the rest, of one feature alone predicting the group
    (one model over all groups: the rest, groups too small to judge included, is a class of its own)."""
    labels = _group_labels(groups, judged)
    if values.notna().sum() == 0:
        return {}
    classes = len(judged) + 1
    scores = _class_scores(values, labels, classes, categorical, seed)
    return {group: _auc((labels == index).astype(np.int64), scores[:, index]) for index, group in enumerate(judged)
            if 0 < int((labels == index).sum()) < len(labels)}


def _together_aucs(frame: pd.DataFrame, data: DataSpec, features: List[str], groups: pd.Series,
                   judged: List[str], seed: int) -> Dict[str, float]:
    """Out-of-fold AUC, per judged group against the rest, of one gradient-boosted model on all
    `features` together that predicts the group (groups too small to judge count as "the rest")."""
    from lightgbm import LGBMClassifier

    columns, categorical = [], []
    for name in features:
        if isinstance(data.features[name], CategoricalFeature):
            codes = pd.Categorical(frame[name].astype("string"), categories=data.features[name].categories).codes
            columns.append(np.where(codes < 0, np.nan, codes).astype(float))
            categorical.append(len(columns) - 1)
        else:
            columns.append(pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy())
    matrix = np.column_stack(columns)
    labels = _group_labels(groups, judged)
    classes = np.unique(labels)
    scores = np.zeros((len(labels), len(classes)))
    for fit, held in _folds(labels, seed):
        # One thread: OpenMP's spinning threads slow to a crawl on a machine busy with other work.
        model = LGBMClassifier(n_estimators=50, num_leaves=15, n_jobs=1, random_state=seed, verbose=-1)
        model.fit(matrix[fit], labels[fit], categorical_feature=categorical or "auto")
        scores[held] = model.predict_proba(matrix[held])
    position = {label: index for index, label in enumerate(classes)}
    return {group: _auc((labels == index).astype(np.int64), scores[:, position[index]])
            for index, group in enumerate(judged)}


def _judged_groups(groups: pd.Series, data: DataSpec) -> List[str]:
    """Groups large enough to tell from the rest: at least min_group_size rows in and out of the group."""
    sizes = groups[groups != MISSING_GROUP].value_counts()
    return sorted(g for g, n in sizes.items() if n >= data.min_group_size and len(groups) - n >= data.min_group_size)


def _recorded_after(frame: pd.DataFrame, data: DataSpec, feature: str) -> int:
    column = data.screening.recorded_at.get(feature)
    if not column:
        return 0
    recorded = pd.to_datetime(frame[column], errors="coerce")
    outcome = pd.to_datetime(frame[data.screening.outcome_time_column], errors="coerce")
    return int((recorded > outcome).sum())  # NaT compares False: an unknown time is no evidence


def screen_features(frame: pd.DataFrame, data: DataSpec, target: pd.Series) -> Screening:
    """Leakage suspects and proxies among the model's features, under the thresholds of `data.screening`.

    `frame` holds the validated rows, `target` their classes as 0/1."""
    from sklearn import config_context

    # Hundreds of small fits on arrays built here: scikit-learn's per-call argument checks are most of the cost.
    with config_context(skip_parameter_validation=True, assume_finite=True):
        return _screen(frame, data, target)


def _screen(frame: pd.DataFrame, data: DataSpec, target: pd.Series) -> Screening:
    spec = data.screening
    features = data.model_features
    # Recording times are compared on every row: one late value is enough to be a suspect.
    late = {name: _recorded_after(frame, data, name) for name in features}
    sample = _sample(frame.assign(__target=np.asarray(target)), spec.max_rows, spec.seed)
    labels = sample["__target"].to_numpy(dtype=np.int64)
    groups = sensitive_groups(sample, data) if data.sensitive_attributes else pd.DataFrame(index=sample.index)
    screens: List[FeatureScreen] = []
    not_judged: List[str] = []
    if spec.leakage_auc is not None and not _judgeable(labels):
        not_judged.append("leakage: the target needs both classes with at least "
                          f"{FOLDS} rows each in the sample")
    judged = {name: _judged_groups(groups[name], data) for name in groups.columns} if spec.proxy_auc else {}
    for name, found in judged.items():
        if not found:
            not_judged.append(f"proxies of {name}: no group has {data.min_group_size} rows in and out of it")
    for name in features:
        categorical = isinstance(data.features[name], CategoricalFeature)
        target_auc = (single_feature_auc(sample[name], labels, categorical, spec.seed)
                      if spec.leakage_auc is not None else None)
        proxy = {}
        for attribute, found in judged.items():
            if attribute == name:  # the attribute itself, used as a feature by declaration
                continue
            aucs = group_aucs(sample[name], groups[attribute], found, categorical, spec.seed)
            if aucs:
                proxy[attribute] = max(aucs.values())
        screens.append({"feature": name, "target_auc": target_auc, "recorded_after_outcome": late[name],
                        "proxy_auc": proxy})
    together = {}
    for attribute, found in judged.items():
        others = [f for f in features if f != attribute]
        if not others or not found:
            continue
        together[attribute] = max(_together_aucs(sample, data, others, groups[attribute], found, spec.seed).values())
    return _verdicts(len(sample), screens, together, not_judged, data)


def _verdicts(rows: int, screens: List[FeatureScreen], together: Dict[str, float], not_judged: List[str],
              data: DataSpec) -> Screening:
    spec = data.screening
    suspects, proxies = [], []
    for screen in screens:
        name = screen["feature"]
        if spec.leakage_auc is not None and screen["target_auc"] is not None and screen["target_auc"] >= spec.leakage_auc:
            suspects.append(f"{name}: alone it predicts the target with AUC {screen['target_auc']:.3f} "
                            f"(threshold {spec.leakage_auc:g})")
        if screen["recorded_after_outcome"]:
            suspects.append(f"{name}: recorded after the outcome in {screen['recorded_after_outcome']} row(s) "
                            f"({spec.recorded_at[name]} > {spec.outcome_time_column})")
        for attribute, auc in screen["proxy_auc"].items():
            if spec.proxy_auc is not None and auc >= spec.proxy_auc:
                proxies.append(f"{name} -> {attribute}: alone it tells a group from the rest with AUC {auc:.3f} "
                               f"(threshold {spec.proxy_auc:g})")
    for attribute, auc in together.items():
        if spec.proxy_auc is not None and auc >= spec.proxy_auc:
            proxies.append(f"{TOGETHER} -> {attribute}: AUC {auc:.3f} (threshold {spec.proxy_auc:g})")
    return {"rows_screened": rows, "leakage_auc": spec.leakage_auc, "proxy_auc": spec.proxy_auc,
            "features": screens, "together": together, "leakage_suspects": suspects, "proxies": proxies,
            "not_judged": not_judged, "blocking": spec.blocking}


def screening_record(screening: Screening) -> dict:
    """What a model version records of its data's screening: the thresholds and findings (the per-feature
    table stays in the readiness report, an artifact of the training run)."""
    return {key: screening[key] for key in ("rows_screened", "leakage_auc", "proxy_auc", "leakage_suspects",
                                            "proxies", "not_judged", "blocking")}


def _proxies_named(screening: Optional[dict]) -> List[str]:
    """The features a screening record (`screening_record`) names as proxies on their own, once each in its
    order; "the model's features together" names no single feature."""
    proxies = (screening or {}).get("proxies") or []
    return list(dict.fromkeys(p.split(" -> ", 1)[0] for p in proxies if " -> " in p and not p.startswith(TOGETHER)))


def flagged_proxies(screening: Optional[dict], features: Sequence[str]) -> List[str]:
    """Of `features`, those a version's screening record names as proxies on their own. Principal reasons
    never name them (keel.serving.reasons)."""
    named = set(_proxies_named(screening))
    return [name for name in features if name in named]


def sensitive_inputs(data) -> List[str]:
    """The sensitive attributes the spec makes model inputs (`use_as_feature`): never a person's reason."""
    return [name for name, attribute in data.sensitive_attributes.items() if attribute.use_as_feature]


def screening_rows(record: Optional[dict], sensitive_used: Sequence[str] = ()) -> List[tuple]:
    """(finding, detail) rows for the model card and the Annex IV document; `sensitive_used`: the sensitive
    attributes the model takes as inputs (`sensitive_inputs`), which reasons never name either."""
    used = [(name, "a sensitive attribute the model takes as an input") for name in sensitive_used]
    if not record:
        return [("Leakage and proxy screening", "not recorded for this version"), *_withheld_rows(used)]
    thresholds = (f"{record['rows_screened']} rows, out-of-fold AUC; leakage at {record['leakage_auc']}, proxies at "
                  f"{record['proxy_auc']}; {'blocking' if record['blocking'] else 'reported, not blocking'}")
    rows = [("Screening", thresholds)]
    rows += [("Leakage suspect", item) for item in record["leakage_suspects"]]
    rows += [("Proxy", item) for item in record["proxies"]] + [("Not screened", item) for item in record["not_judged"]]
    if not record["leakage_suspects"] and not record["proxies"]:
        rows.append(("Findings", "no leakage suspect or proxy found"))
    proxies = [(name, "flagged as a proxy and used by the model") for name in _proxies_named(record)]
    return rows + _withheld_rows(used + proxies)


def _withheld_rows(withheld: List[tuple]) -> List[tuple]:
    """A person's reasons leave out these inputs' part in their decision: said, so that no reader takes the
    reasons given for the whole of it."""
    return [("Reasons withheld", f"{name}: {why}; the principal reasons given to people never name it, so its "
             "part in their decision is not in them (/explain and run.py explain show it)") for name, why in withheld]


def screening_findings(screening: Screening) -> List[str]:
    """What screening found: the leakage suspects, then the proxies."""
    return screening["leakage_suspects"] + screening["proxies"]


def screening_blocks(screening: Screening) -> Optional[str]:
    """The message that stops training when the spec makes screening blocking and something was found."""
    found = screening_findings(screening)
    if not screening["blocking"] or not found:
        return None
    return ("data screening found " + "; ".join(found) + ". data.screening.blocking is true, so training stops: "
            "drop or fix these features, or raise the thresholds with a reason")
