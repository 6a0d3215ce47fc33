"""One home for metric names: keel.spec.metrics lists each metric once, with its range and direction;
the spec's name tuples and Literals are derived from it, so a metric added there is accepted (and
ranged) everywhere, and nowhere else can list names that drift from it."""

import ast
import typing

import pytest
from pydantic import ValidationError

from keel.spec.evaluation import FAIRNESS_METRICS, GATE_METRICS, VALUE_METRICS, Gate
from keel.spec.metrics import (FAIRNESS_METRIC_RANGES, METRIC_RANGES, SCORE_METRIC_RANGES, VALUE_METRIC_RANGES,
                               improvement)
from keel.spec.problem import METRICS, Metric, SuccessCriterion
from keel.spec.training import TrainingSpec
from tests.conftest import ROOT


def test_the_spec_names_are_the_registry_names():
    assert typing.get_args(Metric) == METRICS == tuple(SCORE_METRIC_RANGES)
    assert GATE_METRICS == tuple(METRIC_RANGES)
    assert FAIRNESS_METRICS == tuple(FAIRNESS_METRIC_RANGES) and VALUE_METRICS == tuple(VALUE_METRIC_RANGES)
    for group in (SCORE_METRIC_RANGES, FAIRNESS_METRIC_RANGES, VALUE_METRIC_RANGES):
        assert all(METRIC_RANGES[name] is info for name, info in group.items())


def test_pydantic_accepts_registered_names_and_rejects_others():
    assert TrainingSpec(primary_metric="log_loss").primary_metric == "log_loss"
    assert SuccessCriterion(metric="brier", max=0.2).describe() == "brier <= 0.2"
    assert Gate(metric="p95_latency_ratio", max=2.0).metric == "p95_latency_ratio"
    with pytest.raises(ValidationError, match="roc_auc"):
        TrainingSpec(primary_metric="demographic_parity_ratio")  # a gate metric, not a score of the model
    with pytest.raises(ValidationError):
        Gate(metric="auc", min=0.7)


def test_lower_is_better_metrics_improve_downwards():
    assert improvement("log_loss", 0.5, 0.4) == pytest.approx(0.1)
    assert improvement("roc_auc", 0.5, 0.4) == pytest.approx(-0.1)


def _listed_names(path):
    """Tuples, lists, sets and Literal[...] (its subscript is a tuple) of two or more metric names
    written out in a module."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        elements = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
        names = [e.value for e in elements if isinstance(e, ast.Constant) and e.value in METRIC_RANGES]
        if len(names) >= 2:
            yield node.lineno, names


def test_no_module_of_the_spec_writes_out_its_own_list_of_metric_names(tmp_path):
    listed = {f"{path.name}:{line}": names for path in (ROOT / "keel" / "spec").glob("*.py")
              if path.name != "metrics.py" for line, names in _listed_names(path)}
    assert listed == {}
    drifting = tmp_path / "drifting.py"
    drifting.write_text('METRICS = ("roc_auc", "f1")\nMetric = Literal["roc_auc", "f1"]\n', encoding="utf-8")
    assert list(_listed_names(drifting)) == [(1, ["roc_auc", "f1"]), (2, ["roc_auc", "f1"])]
