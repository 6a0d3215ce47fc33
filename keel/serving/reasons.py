"""Principal reasons of a decision: the features that pushed the score toward it the most.

A declined applicant is owed the principal reasons (US ECOA / Regulation B adverse-action notices;
the EU AI Act's transparency duties). They come from the model's own additive contributions, in
log-odds: LightGBM's `pred_contrib` (exact TreeSHAP values), or a logistic regression's linear terms
measured from the mean encoded row of the version's background rows, as `/explain` and `run.py explain`
measure them (keel.governance.explanations.explain_additively).
A feature's contribution is the sum over the columns it was encoded into (value and missing
indicator; one column per category). A sensitive attribute or a flagged proxy is never a reason.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, TypedDict

import numpy as np

from keel.serving.fast_path import RowScorer


class Reason(TypedDict):
    feature: str
    statement: str
    contribution: float  # log-odds pushed toward the decision


def reason_text(number: int, reason: Reason) -> str:
    """One principal reason for a person: "1. Debt-to-income ratio too high (debt_to_income, +0.4120 log-odds
    towards the unfavourable decision)". The sign is towards the decision the reasons explain, not towards the
    positive class as a SHAP table's is: for a favourable positive class the two are opposite."""
    return (f"{number}. {reason['statement']} ({reason['feature']}, {reason['contribution']:+.4f} log-odds "
            "towards the unfavourable decision)")


def encoded_owners(scorer: RowScorer) -> List[str]:
    """The feature each encoded column comes from, in the encoder's column order."""
    numeric = scorer.numeric
    blocks = {
        "numeric": list(numeric.columns) + [numeric.columns[i] for i in numeric.indicator_of],
        "categorical": [column for column, categories in zip(scorer.categorical.columns, scorer.categorical.categories)
                        for _ in categories],
    }
    return [owner for name in scorer.order for owner in blocks[name]]


def _tree_shap(booster, matrix: np.ndarray) -> np.ndarray:
    """LightGBM's exact TreeSHAP: rows x (encoded columns + the bias, last)."""
    # One thread, as the fast path predicts: OpenMP's team for a few rows costs tens of ms on busy cores.
    return np.asarray(booster.predict(matrix, pred_contrib=True, num_threads=1))


def column_contributions(estimator, matrix: np.ndarray, baseline: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """Additive log-odds contributions per encoded column (rows x columns), or None for a model that
    has none (then no reasons are given, and the answer says so). A linear model's are measured from
    `baseline` (an encoded row; default: all zeros)."""
    booster = getattr(estimator, "booster_", None)
    if booster is not None and getattr(estimator, "n_classes_", 2) == 2:
        return _tree_shap(booster, matrix)[:, :-1]  # the last column is the bias
    coefficients = getattr(estimator, "coef_", None)
    if coefficients is not None and np.asarray(coefficients).shape[0] == 1:
        return (matrix - baseline if baseline is not None else matrix) * np.asarray(coefficients)[0]
    return None


# Two halves' contributions must add up to the whole model's to this (float rounding only), on this
# many probe rows (the check and the halves' boosters: ~50 ms a version at load on 200 trees).
HALVES_TOLERANCE = 1e-9
HALVES_PROBE_ROWS = 20


class TreeHalves:
    """A boosted binary model's trees as two boosters of their own, the first half and the second:
    TreeSHAP values add up over trees, so one thread explains each half and the sums are the whole
    model's contributions in about half the time (a declined request alone on a service's loop, while
    the other core is idle). Each half has its own booster because a LightGBM booster keeps the
    iteration range of its current prediction in shared state: two ranges at once on one booster mix."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    @classmethod
    def of(cls, estimator, probe: np.ndarray) -> Optional["TreeHalves"]:
        """The halves of `estimator`'s trees, or None when it has no two to split, no TreeSHAP (linear
        trees) or halves that do not add up to the whole model on `probe`."""
        booster = getattr(estimator, "booster_", None)
        if booster is None or getattr(estimator, "n_classes_", 2) != 2 or not len(probe):
            return None
        import lightgbm

        # The iterations the model predicts with: the best of an early-stopped booster that kept more.
        iterations = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
        if iterations < 2:
            return None
        half = iterations // 2
        try:
            halves = cls(lightgbm.Booster(model_str=booster.model_to_string(num_iteration=half)),
                         lightgbm.Booster(model_str=booster.model_to_string(start_iteration=half,
                                                                            num_iteration=iterations - half)))
            whole = _tree_shap(booster, probe)
            split = _tree_shap(halves.first, probe) + _tree_shap(halves.second, probe)
        except lightgbm.basic.LightGBMError:  # e.g. linear trees, which have no TreeSHAP
            return None
        return halves if np.max(np.abs(split - whole)) <= HALVES_TOLERANCE else None

    def contributions(self, matrix: np.ndarray, beside: Executor) -> np.ndarray:
        """`column_contributions` of the whole model: the second half on `beside`, the first here
        (LightGBM's C call releases the interpreter lock, so both run at once)."""
        later = beside.submit(_tree_shap, self.second, matrix)
        first = _tree_shap(self.first, matrix)
        return (first + later.result())[:, :-1]  # the last column is the bias


def feature_contributions(columns: np.ndarray, owners: Sequence[str], features: Sequence[str]) -> np.ndarray:
    """Column contributions summed per feature: rows x `features`."""
    position = {name: index for index, name in enumerate(features)}
    owner_index = np.array([position[o] for o in owners], dtype=np.int64)
    summed = np.zeros((columns.shape[0], len(features)))
    np.add.at(summed.T, owner_index, columns.T)
    return summed


def principal_reasons(contributions: np.ndarray, features: Sequence[str], toward_positive: bool,
                      statements: Dict[str, str], excluded: Sequence[str], count: int) -> List[Reason]:
    """The `count` features of one row that pushed its score most toward the decision (toward the positive
    class when `toward_positive`), never one of `excluded`; only features that pushed that way."""
    sign = 1.0 if toward_positive else -1.0
    pushes = sign * np.asarray(contributions, dtype=float)
    skip = set(excluded)
    ranked = sorted((i for i, name in enumerate(features) if name not in skip and pushes[i] > 0),
                    key=lambda i: (-pushes[i], features[i]))
    return [{"feature": features[i], "statement": statements.get(features[i], features[i]),
             "contribution": round(float(pushes[i]), 6)} for i in ranked[:count]]


# Set on a model loaded from the registry (keel.registry.load_version_model): the features its training
# data's screening flagged as proxies of a sensitive attribute; pickled with it into a bundle.
PROXIES_ATTRIBUTE = "reason_exclusions_"


def mark_proxies(model, screening: Optional[dict]) -> None:
    """Set PROXIES_ATTRIBUTE on a loaded model from its version's screening record."""
    from keel.data.screening import flagged_proxies

    columns = [str(c) for c in getattr(model, "feature_names_in_", ())]
    try:
        setattr(model, PROXIES_ATTRIBUTE, flagged_proxies(screening, columns))
    except AttributeError:  # a model object that takes no attribute: sensitive attributes are still withheld
        pass


def unfavourable_decision(favourable: Optional[str]) -> Optional[int]:
    """The decision class (1 = the positive class) that is unfavourable to the person, from
    `data.target.favourable`; None when the spec does not say (then no decision is known to be adverse
    and none gets reasons: guessing would name the wrong side for one of two problems)."""
    if favourable is None:
        return None
    return 0 if favourable == "positive" else 1


def top_reasons(contributions: np.ndarray, features: Sequence[str], toward_positive: bool,
                statements: Dict[str, str], excluded: Sequence[str], count: int) -> List[List[Reason]]:
    """`principal_reasons` for every row of a rows x features matrix at once (a batch chunk): the
    ranking is one argsort, only the chosen cells become Python objects."""
    pushes = (1.0 if toward_positive else -1.0) * np.asarray(contributions, dtype=float)
    if not len(pushes):
        return []
    names = np.asarray(features, dtype=object)
    skip = np.isin(names, list(excluded))
    ranked_pushes = np.where(skip[None, :] | ~(pushes > 0), -np.inf, pushes)
    # Ties are broken by the feature name, as principal_reasons does: sort by name first, stably by push.
    by_name = np.argsort(names.astype(str), kind="stable")
    order = by_name[np.argsort(-ranked_pushes[:, by_name], axis=1, kind="stable")][:, :count]
    return [[{"feature": str(names[i]), "statement": statements.get(str(names[i]), str(names[i])),
              "contribution": round(float(pushes[r, i]), 6)} for i in order[r] if np.isfinite(ranked_pushes[r, i])]
            for r in range(len(pushes))]


def side_of(value: Any, typical: Optional[float]) -> Optional[str]:
    """"higher" or "lower" than `typical`; None for a value on it, a missing one or no typical value."""
    if typical is None or not _finite_number(value) or float(value) == typical:
        return None
    return "higher" if float(value) > typical else "lower"


def _finite_number(value: Any) -> bool:
    """Whether `value` is a number a side can be told of (not missing, text or infinite)."""
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


def typical_values(background, features: Sequence[str]) -> Dict[str, float]:
    """The median of each of `features` over a version's background rows (the reference a sided statement
    is chosen against); a feature without a finite median has none."""
    if background is None or not len(background):
        return {}
    medians = {name: float(np.nanmedian(np.asarray(background[name], dtype=float)))
               for name in features if name in background and np.isfinite(background[name].astype(float)).any()}
    return {name: value for name, value in medians.items() if np.isfinite(value)}


class ReasonGiver:
    """Principal reasons of one model version: its encoder (a checked fast path, `RowScorer`), its
    estimator's contributions, and what the spec says (statements, how many, what is never a reason)."""

    def __init__(self, estimator, scorer: RowScorer, features: Sequence[str], toward_positive: bool,
                 statements: Mapping[str, Any], excluded: Sequence[str], count: int,
                 typical: Optional[Dict[str, float]] = None):
        """`statements`: feature -> a text, or a SidedStatement (keel.spec.decisions) chosen by the row's value
        against `typical` (feature -> its median over the version's background rows)."""
        self.estimator, self.scorer = estimator, scorer
        self.owners = encoded_owners(scorer)
        self.features = [f for f in features if f in set(self.owners)]
        self.statements = {name: text for name, text in statements.items() if isinstance(text, str)}
        self.sided = {name: text for name, text in statements.items() if not isinstance(text, str)}
        self.typical = typical or {}
        self.toward_positive, self.excluded, self.count = toward_positive, list(excluded), count
        self.features_step = None  # the pipeline's encoder, for whole frames (`for_frame`)
        self.baseline: Optional[np.ndarray] = None  # a linear model's reference row (`for_pipeline`)
        self.halves: Optional[TreeHalves] = None  # set by `split_trees`

    @classmethod
    def for_pipeline(cls, pipeline, scorer: Optional[RowScorer], data, decisions, excluded: Sequence[str] = (),
                     background=None) -> Optional["ReasonGiver"]:
        """The giver for a fitted keel pipeline under the spec's `data` and `decisions` sections, or None
        when its decisions cannot be explained this way (no unfavourable side declared, no checked
        encoder, a model without additive contributions, a linear model without `background`: the
        version's background rows, its input columns). Never a reason: a sensitive attribute, a proxy
        flagged by the version's screening (the model's PROXIES_ATTRIBUTE) or one of `excluded`."""
        adverse = unfavourable_decision(data.target.favourable)
        estimator = getattr(pipeline, "named_steps", {}).get("model")
        if adverse is None or scorer is None or estimator is None:
            return None
        if column_contributions(estimator, np.zeros((1, len(encoded_owners(scorer))))) is None:
            return None
        never = set(excluded) | set(data.sensitive_attributes) | set(getattr(pipeline, PROXIES_ATTRIBUTE, ()))
        giver = cls(estimator, scorer, data.model_features, adverse == 1, decisions.reasons, sorted(never),
                    decisions.top_reasons, typical_values(background, [n for n in decisions.reasons
                                                                       if not isinstance(decisions.reasons[n], str)]))
        giver.features_step = pipeline.named_steps.get("features")
        if getattr(estimator, "booster_", None) is None:  # linear: from the background's mean row, as /explain
            if background is None or not len(background) or giver.features_step is None:
                return None
            giver.baseline = giver._encoded(background).mean(axis=0)
        return giver

    def split_trees(self, probe_frame) -> bool:
        """Prepare `TreeHalves` of the model, checked on the first rows of `probe_frame` (the model's
        input columns, e.g. the bundle's background rows); whether it could be split."""
        probe = probe_frame.head(HALVES_PROBE_ROWS)
        self.halves = TreeHalves.of(self.estimator, self._encoded(probe)) if self.features_step is not None else None
        return self.halves is not None

    def for_matrix(self, matrix: np.ndarray, beside: Optional[Executor] = None) -> List[List[Reason]]:
        """Reasons of the rows of an encoded matrix; with `beside` (an idle thread) and split trees, each
        explains half of the trees."""
        if beside is not None and self.halves is not None:
            columns = self.halves.contributions(matrix, beside)
        else:
            columns = column_contributions(self.estimator, matrix, self.baseline)
        per_feature = feature_contributions(columns, self.owners, self.features)
        return top_reasons(per_feature, self.features, self.toward_positive, self.statements, self.excluded, self.count)

    def for_records(self, records: Sequence[dict], beside: Optional[Executor] = None) -> List[List[Reason]]:
        if not records:
            return []
        matrix = self.scorer.encode(records)
        return self._sides_worded(self.for_matrix(matrix, beside), lambda row, feature: records[row].get(feature),
                                  matrix)

    def for_frame(self, frame) -> List[List[Reason]]:
        """Reasons for the rows of a frame (a batch chunk), encoded by the pipeline's own feature step
        in one vectorised call: the encoder's layout was checked against it when the giver was built."""
        if not len(frame):
            return []
        matrix = self._encoded(frame)
        return self._sides_worded(self.for_matrix(matrix), lambda row, feature: frame[feature].iat[row], matrix)

    def _sides_worded(self, reasons: List[List[Reason]], value: Callable[[int, str], Any],
                      matrix: np.ndarray) -> List[List[Reason]]:
        """A sided statement chosen for each reason by the row's value (`value(row, feature)`); a value on
        the reference, or missing, is named by its column. A linear model's side is taken against the
        reference its contribution is measured from (the background's mean encoded row), so a statement
        never contradicts the push it explains; a tree model's against the feature's median."""
        for row, given in enumerate(reasons):
            for reason in given:
                feature = reason["feature"]
                sided = self.sided.get(feature)
                if sided is None:
                    continue
                raw = value(row, feature)
                if self.baseline is not None and feature in self.owners:
                    side = self._linear_side(matrix[row], feature) if _finite_number(raw) else None
                else:
                    side = side_of(raw, self.typical.get(feature))
                reason["statement"] = sided.for_side(side) or feature
        return reasons

    def _linear_side(self, encoded_row: np.ndarray, feature: str) -> Optional[str]:
        """The side of the reference the encoded value is on, when its own term pushes toward the decision
        explained; None when the push comes from another of the feature's columns (its missing
        indicator) and either side would misstate it."""
        column = self.owners.index(feature)  # a numeric feature's value column comes before its indicator
        away = encoded_row[column] - self.baseline[column]
        push = away * np.ravel(self.estimator.coef_)[column] * (1 if self.toward_positive else -1)
        return side_of(encoded_row[column], float(self.baseline[column])) if push > 0 else None

    def _encoded(self, frame) -> np.ndarray:
        matrix = self.features_step.transform(frame)
        return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype=np.float64)
