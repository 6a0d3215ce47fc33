"""What `run.py evaluate` prints when the evaluation was refused before it began, and when the spec's
refer band does not hold the decision threshold the evaluation chose."""

from keel.cli.evaluate import print_evaluation
from keel.evaluation.gates import PROMOTE, decide
from keel.lifecycle.evaluation import EVALUATION_INCOMPLETE, EvaluationResult
from keel.spec import load_spec
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "credit_risk.yaml"


def test_an_evaluation_refused_before_it_began_is_one_message_not_a_traceback(capsys):
    """Refused before any record (another evaluation held the version for an hour, or another target):
    printing it raised TypeError on the missing record."""
    refused = EvaluationResult(3, error="keel: credit_risk v3 was trained with another target than this spec")
    assert print_evaluation(load_spec(CONFIG), refused) == EVALUATION_INCOMPLETE
    captured = capsys.readouterr()
    assert "was trained with another target" in captured.err
    assert "decision:       none: v3 was not evaluated, and its stage is unchanged" in captured.out


def _evaluated(threshold: float) -> EvaluationResult:
    decision = decide([], {}, None)
    assert decision["decision"] == PROMOTE
    record = {**decision, "threshold": threshold, "stage": "staging", "gate_changes": [],
              "spec_differs_from_training": False}
    return EvaluationResult(3, record=record, decision=decision, run_name="evaluation-1", card_paths=[ROOT, ROOT])


def test_a_refer_band_that_does_not_hold_the_threshold_is_warned_of(capsys):
    """helper-58: a band of [0.45, 0.55) with a max_f1 threshold of 0.3048: every referral was a row the
    model favoured, and the rows between 0.31 and 0.44 were decided without a person."""
    spec = load_spec(CONFIG, ["decisions.refer_band=[0.45, 0.55]"])
    print_evaluation(spec, _evaluated(0.3048))
    assert ("refer band:     WARNING: decisions.refer_band [0.45, 0.55) does not hold v3's decision threshold "
            "0.3048") in capsys.readouterr().out
    print_evaluation(spec, _evaluated(0.5))
    assert "refer band" not in capsys.readouterr().out


def test_shipping_a_mitigation_is_suggested_only_for_a_version_that_fails_and_would_then_pass(capsys):
    """helper-63: a mitigated version that passes every gate was told to ship its mitigation as its own
    version (python run.py mitigate --model-version 3): mitigating it again."""
    from keel.evaluation.gates import REJECT

    spec = load_spec(CONFIG)
    passing = _evaluated(0.3)
    failing_decision = {**passing.decision, "decision": REJECT, "passed": False, "failed": ["roc_auc >= 0.75"]}
    failing = EvaluationResult(3, record={**passing.record, **failing_decision}, decision=failing_decision,
                               run_name="evaluation-1", card_paths=[ROOT, ROOT])
    for result, would_pass, suggested in ((passing, True, False), (failing, True, True), (failing, False, False)):
        result.mitigation = {"method": "threshold_optimizer", "decision": {"passed": would_pass}}
        print_evaluation(spec, result)
        out = capsys.readouterr().out
        assert f"mitigation (threshold_optimizer): gates would {'pass' if would_pass else 'fail'} after" in out
        assert ("python run.py mitigate --model-version 3" in out) is suggested
