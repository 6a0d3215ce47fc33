"""Noise must not decide, and a comparison says what it compared: latency measured interleaved with the
champion until the p95's interval is tight, with the ratio of the p95s; McNemar's test with its direction."""

import html
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from keel.evaluation.comparison import compare, comparison_html, comparison_text, mcnemar
from keel.evaluation.latency import (NO_CHAMPION, STOPPED_AT_CAP, STOPPED_AT_TIME, STOPPED_TIGHT, evaluate_latency,
                                     latency_html, measure_interleaved, percentile_interval, relative_width,
                                     stopping_reason)
from keel.spec.evaluation import ComparisonSpec, LatencySpec
from keel.training.fit import predict_scores

RATIO_GATE = 1.5  # challenger p95 / champion p95: a sensible bar for "no slower than the champion"


# --- the stopping rule, as a pure function ---------------------------------------------------------

def test_percentile_interval_brackets_the_percentile_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    few, many = rng.exponential(5.0, 200), rng.exponential(5.0, 20_000)
    for samples in (few, many):
        low, high = percentile_interval(samples, 95, 0.95)
        assert low <= np.percentile(samples, 95) <= high
    assert relative_width(many, 95, 0.95) < relative_width(few, 95, 0.95) / 3


def test_percentile_interval_covers_the_true_percentile_about_as_often_as_stated():
    rng = np.random.default_rng(1)
    true_p95 = -np.log(0.05)  # of Exp(1)
    covered = [low <= true_p95 <= high for low, high in
               (percentile_interval(rng.exponential(1.0, 400), 95, 0.90) for _ in range(400))]
    assert 0.85 <= np.mean(covered) <= 0.97


def test_measuring_stops_when_every_p95_interval_is_tight_and_not_before():
    spec = LatencySpec(p95_relative_width=0.1, max_rounds=10)
    rng = np.random.default_rng(2)
    steady = list(5.0 + rng.normal(0, 0.05, 400))  # p95 interval a few percent of the p95
    spiky = list(rng.exponential(5.0, 400) ** 2)  # heavy tail: the p95 interval stays wide
    assert relative_width(steady, 95, spec.interval_confidence) <= 0.1 < relative_width(spiky, 95, 0.95)
    assert stopping_reason({"challenger": steady}, 1, spec) == STOPPED_TIGHT
    assert stopping_reason({"challenger": steady, "champion": steady}, 1, spec) == STOPPED_TIGHT
    # one wide model keeps both measuring, until the cap
    assert stopping_reason({"challenger": steady, "champion": spiky}, 1, spec) is None
    assert stopping_reason({"challenger": spiky}, 9, spec) is None
    assert stopping_reason({"challenger": spiky}, 10, spec) == STOPPED_AT_CAP


def test_the_time_budget_ends_a_wide_measurement_after_the_round_that_spent_it():
    spec = LatencySpec(p95_relative_width=0.1, max_rounds=10, max_seconds=2.0)
    spiky = list(np.random.default_rng(4).exponential(5.0, 400) ** 2)
    assert stopping_reason({"challenger": spiky}, 3, spec, seconds_spent=1.9) is None
    assert stopping_reason({"challenger": spiky}, 3, spec, seconds_spent=2.0) == STOPPED_AT_TIME
    assert stopping_reason({"challenger": spiky}, 10, spec, seconds_spent=2.0) == STOPPED_AT_CAP  # the cap says more


def test_a_slow_model_is_measured_for_one_whole_round_then_stops_at_the_budget():
    import time

    calls = []

    def slow(frame):  # alternately fast and slow: the p95 interval never tightens
        calls.append(1)
        time.sleep(0.004 if len(calls) % 7 == 0 else 0.0005)

    rows = [pd.DataFrame({"x": [i]}) for i in range(30)]
    spec = LatencySpec(single_row_calls=30, p95_relative_width=0.001, max_rounds=1000, max_seconds=0.05)
    samples, rounds, reason = measure_interleaved({"challenger": slow}, rows, spec)
    assert reason == STOPPED_AT_TIME and 1 <= rounds < 1000
    assert len(samples["challenger"]) == 30 * rounds  # whole rounds only


def test_a_wider_target_stops_sooner():
    rng = np.random.default_rng(3)
    samples = list(rng.exponential(5.0, 400))
    width = relative_width(samples, 95, 0.95)
    assert stopping_reason({"m": samples}, 1, LatencySpec(p95_relative_width=min(1.0, width * 1.01))) == STOPPED_TIGHT
    assert stopping_reason({"m": samples}, 1, LatencySpec(p95_relative_width=width * 0.99)) is None


# --- measuring a real fitted pipeline --------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline_and_rows():
    from keel.data.generator import generate_credit_applications
    from keel.data.schema import validate_frame
    from keel.data.split import split_frame
    from keel.features.preprocessing import fit_preprocessor
    from keel.spec import load_spec
    from keel.training.fit import fit_baseline
    from tests.conftest import ROOT

    spec = load_spec(ROOT / "configs" / "credit_risk.yaml", ["data.source.rows=2000"])
    frame, _ = validate_frame(generate_credit_applications(spec.data.source), spec.data)
    train, validation, test = split_frame(frame, spec.split, spec.data.target.column, spec.data.time_column)
    fitted = fit_baseline(fit_preprocessor(train, spec.data), train, validation, spec.data, spec.training)
    return fitted.pipeline, test


QUICK = LatencySpec(single_row_calls=200, max_rounds=2, p95_relative_width=0.2, batch_size=100, batch_calls=2)


def test_without_a_champion_the_ratio_is_absent_and_said_to_be(pipeline_and_rows):
    model, test = pipeline_and_rows
    report = evaluate_latency(lambda f: predict_scores(model, f), test, model, QUICK)
    assert report["champion"] is None and report["p95_latency_ratio"] is None
    assert report["p95_latency_ratio_interval"] is None and report["ratio_note"] == NO_CHAMPION
    assert 1 <= report["rounds"] <= QUICK.max_rounds
    assert report["single_row_calls"] == QUICK.single_row_calls * report["rounds"]
    for name in ("p50_latency_ms", "p95_latency_ms", "p99_latency_ms"):
        low, high = report["intervals"][name]
        assert 0 < low <= report[name] <= high
    page = latency_html(report)
    assert NO_CHAMPION in page and "p95_latency_ms" in page


def _burn_cpu(processes: int):
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]


def test_the_same_model_gets_the_same_ratio_verdict_twice_while_the_machine_is_busy(pipeline_and_rows):
    """Identical models measured interleaved pass a ratio gate every time, however slow the busy machine
    makes each call; a model that does three times the work fails it (the ratio can fail)."""
    model, test = pipeline_and_rows
    twin = pickle.loads(pickle.dumps(model))

    def challenger(frame):
        return predict_scores(model, frame)

    def champion(frame):
        return predict_scores(twin, frame)

    def three_times_the_work(frame):
        for _ in range(3):
            predict_scores(model, frame)

    burners = _burn_cpu(2)  # with this test's own process, more than this machine's cores (CI has 2)
    try:
        reports = [evaluate_latency(challenger, test, model, QUICK, champion, "twin") for _ in range(2)]
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    slower = evaluate_latency(three_times_the_work, test, model, QUICK, champion, "twin")
    verdicts = [report["p95_latency_ratio"] <= RATIO_GATE for report in reports]
    assert verdicts == [True, True], [(r["p95_latency_ratio"], r["p95_latency_ratio_interval"]) for r in reports]
    for report in reports:
        low, high = report["p95_latency_ratio_interval"]
        assert low <= report["p95_latency_ratio"] <= high
        assert report["champion"]["name"] == "twin" and "interleaved" in report["measured"]
    assert slower["p95_latency_ratio"] > RATIO_GATE, slower["p95_latency_ratio_interval"]
    assert "p95 ratio (challenger / champion)" in latency_html(slower)


# --- McNemar with its direction --------------------------------------------------------------------

def _decisions(challenger_only_right: int, champion_only_right: int, both_right: int = 200):
    """Labels and both models' decisions with the stated discordant counts."""
    y = np.ones(both_right + challenger_only_right + champion_only_right, dtype=int)
    champion = np.concatenate([np.ones(both_right), np.zeros(challenger_only_right), np.ones(champion_only_right)])
    challenger = np.concatenate([np.ones(both_right), np.ones(challenger_only_right), np.zeros(champion_only_right)])
    return y, champion.astype(bool), challenger.astype(bool)


@pytest.mark.parametrize("challenger_only, champion_only, better", [
    (40, 10, "challenger"), (10, 40, "champion"), (20, 20, None), (12, 8, None)])
def test_mcnemar_names_the_discordant_counts_and_the_better_model(challenger_only, champion_only, better):
    y, champion, challenger = _decisions(challenger_only, champion_only)
    result = mcnemar(y, champion, challenger, confidence=0.95)
    assert result["only_challenger_correct"] == challenger_only
    assert result["only_champion_correct"] == champion_only
    assert result["better_decisions"] == better
    assert (result["p_value"] < 0.05) == (better is not None)
    assert f"on {challenger_only} rows, the reverse on {champion_only}" in result["summary"]
    assert (f"the {better}'s decisions are better" if better else "neither") in result["summary"]


def test_the_comparison_report_its_html_and_its_text_show_the_direction():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    noise = rng.random(3000)
    weak, strong = (0.3 * y + noise) / 1.3, (0.9 * y + noise) / 1.9
    report = {"champion": "v1 (production)", "champion_threshold": 0.5,
              **compare(y, weak, strong, 0.5, 0.5, "roc_auc", ComparisonSpec(bootstrap_samples=200))}
    decisions = report["mcnemar"]
    champion_right, challenger_right = (weak >= 0.5) == y, (strong >= 0.5) == y
    assert decisions["only_challenger_correct"] == int((challenger_right & ~champion_right).sum())
    assert decisions["only_champion_correct"] == int((champion_right & ~challenger_right).sum())
    assert decisions["better_decisions"] == "challenger"
    page, text = html.unescape(comparison_html(report)), comparison_text(report)
    for shown in (page, text):
        assert str(decisions["only_challenger_correct"]) in shown and str(decisions["only_champion_correct"]) in shown
        assert "the challenger's decisions are better" in shown
    assert "challenger right, champion wrong" in page
    assert "no champion" in comparison_text({"champion": None})
