"""Seeded random hyperparameter search; every trial is kept for the record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List

from keel.spec.metrics import improvement
from keel.spec.training import FloatRange, LightGBMSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    number: int
    params: Dict[str, Any]
    validation_score: float
    fit_seconds: float


def sample_parameters(spec: LightGBMSpec, seed: int) -> List[Dict[str, Any]]:
    """`spec.trials` parameter sets drawn from the search space; the same seed draws the same sets.
    Without a search space there is one set (the declared params), and the log says why."""
    if not spec.search_space:
        if (note := single_trial_note(spec)) is not None:
            logger.warning(note)
        return [{}]
    from scipy import stats
    from sklearn.model_selection import ParameterSampler

    distributions = {}
    for name, dimension in sorted(spec.search_space.items()):
        if isinstance(dimension, FloatRange):
            distributions[name] = (stats.loguniform(dimension.low, dimension.high) if dimension.log
                                   else stats.uniform(dimension.low, dimension.high - dimension.low))
        else:
            distributions[name] = stats.randint(dimension.low, dimension.high + 1)
    sampled = ParameterSampler(distributions, n_iter=spec.trials, random_state=seed)
    return [{k: (round(float(v), 6) if isinstance(v, float) else int(v)) for k, v in s.items()}
            for s in sampled]


def single_trial_note(spec: LightGBMSpec) -> str | None:
    """Why fewer trials run than `spec.trials` asks (None when they all run). Like scikit-learn's
    ParameterSampler on a space smaller than n_iter, the search runs what there is and says so: a
    trial more with the same parameters and seed would fit the same model again."""
    if spec.search_space or spec.trials <= 1:
        return None
    return (f"1 trial: no search space declared (training.candidate.search_space), trials: {spec.trials} "
            "has nothing to vary")


def run_search(parameter_sets: List[Dict[str, Any]],
               evaluate: Callable[[Dict[str, Any]], tuple[float, Any]],
               metric: str) -> tuple[List[Trial], Any]:
    """Evaluate each parameter set (its validation `metric`, the model); return all trials and the best
    fitted model, best in the metric's direction (first wins ties)."""
    import time

    trials, best_model, best_score = [], None, None
    for number, params in enumerate(parameter_sets):
        started = time.perf_counter()
        validation_score, model = evaluate(params)
        trials.append(Trial(number, params, validation_score, round(time.perf_counter() - started, 3)))
        if best_score is None or improvement(metric, best_score, validation_score) > 0:
            best_score, best_model = validation_score, model
    return trials, best_model
