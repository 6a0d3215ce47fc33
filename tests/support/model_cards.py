"""A model card written from the fewest reports it reads, for tests of one of its sections."""

from keel.evaluation.model_card import card_sections, model_card_markdown

LATENCY = ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms", "batch_rows_per_second", "model_size_mb")


def card_of(spec, decision: dict, fairness: dict, performance=None) -> str:
    """The card of model `lending` v1 under `spec`: `decision` and `fairness` as given, `performance`
    (default: no metrics), every other dimension a plain pass."""
    reports = {"decision": decision, "fairness": fairness, "comparison": None,
               "threshold": {"threshold": 0.5, "rule": "fixed"},
               "performance": performance or {"metrics": {}, "confidence": 0.95, "intervals": {}},
               "calibration": {"brier": 0.2, "expected_calibration_error": 0.01, "method": "none"},
               "robustness": {"metric": "roc_auc", "all_features": {}, "hostile_inputs": {"passed": True},
                              "worst_slice_per_feature": {}},
               "explainability": {"global_importance": {}},
               "latency": dict.fromkeys(LATENCY, 1.0)}
    return model_card_markdown("lending", 1, card_sections(spec, "lending", 1, {}, reports))
