"""helper-50: two evaluations of one version at once each judged its gates against the version's previous
evaluation before the other recorded its own, so `--set evaluation.blocking=false` run beside a rejecting
evaluation staged the version with no LOOSENED flag. Evaluations of one version now run one at a time."""

import threading
import time

from keel.lifecycle import evaluation
from keel.lifecycle.evaluation import EvaluationResult
from keel.locks import file_lock


def test_an_evaluation_waits_for_another_of_the_same_version_and_says_who_when_it_gives_up(
        tmp_path, monkeypatch, default_spec):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("keel.registry.resolve_version", lambda name, version: version)
    started = []
    monkeypatch.setattr(evaluation, "_evaluate_locked",
                        lambda spec, version, no_cache: started.append((version, time.monotonic()))
                        or EvaluationResult(version, blocking=True))
    name = default_spec.problem.name
    with file_lock(f"{name}.v3.evaluation", "the first evaluation"):
        waiting = threading.Thread(target=evaluation.evaluate_version, args=(default_spec, 3))
        waiting.start()
        assert evaluation.evaluate_version(default_spec, 4).exit_code == 0  # another version: not held back
        time.sleep(0.5)
        assert started == [(4, started[0][1])]  # v3 still waits for the first evaluation
        released = time.monotonic()
    waiting.join(timeout=10)
    assert [v for v, _ in started] == [4, 3] and started[1][1] >= released
    monkeypatch.setattr(evaluation, "EVALUATION_WAIT_SECONDS", 0.2)
    with file_lock(f"{name}.v3.evaluation", "the first evaluation"):
        busy = evaluation.evaluate_version(default_spec, 3)
    assert busy.exit_code != 0 and "evaluating credit_risk v3 is locked by pid" in busy.error
