"""`run.py monitor` and the main job's closed loop, without pipelines: the cron schedule, the spec
checks made before anything runs, what a retraining's outcome is, and the simulated traffic's
failures (API key, dead service) ending with a clear message."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from keel.cli import monitor as monitor_cli
from keel.cli.evaluate import GATES_FAILED
from keel.cli.monitor import monitor
from keel.lifecycle.retraining import SKIPPED, retrain_and_roll_out, retraining_outcome
from keel.lifecycle.schedule import CronInterval, cron_interval, monitoring_schedule
from keel.spec import SpecError, load_spec
from tests.conftest import ROOT
from tests.support.servers import free_port

CONFIG = ROOT / "configs" / "credit_risk.yaml"


def _spec(*settings):
    return load_spec(CONFIG, list(settings))


# --- the schedule --------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds, expression, exact", [
    (60, "* * * * *", True),
    (300, "*/5 * * * *", True),
    (1800, "*/30 * * * *", True),
    (420, "*/6 * * * *", False),  # */7 would run at :56 and again at :00
    (3600, "0 * * * *", True),
    (5400, "0 * * * *", False),
    (7200, "0 */2 * * *", True),
    (4 * 3600, "0 */4 * * *", True),
    (86400, "0 0 * * *", True),
    (7 * 86400, "0 0 * * 1", True),
    (10 * 86400, "0 0 * * 1", False),
])
def test_cron_expression_for_any_interval(seconds, expression, exact):
    interval = cron_interval(seconds)
    assert interval.expression == expression and interval.exact is exact
    assert ("rounded" in interval.describe()) is (not exact)


def test_an_interval_above_an_hour_is_not_a_minute_step():
    # `*/90` in the minute field is not every 90 minutes; cron has no minute 90.
    for seconds in (3600, 5400, 90 * 60, 120 * 60, 300 * 60):
        minute = cron_interval(seconds).expression.split()[0]
        assert not minute.startswith("*/") or int(minute[2:]) < 60


def test_the_schedule_is_a_cron_schedule_zenml_accepts():
    schedule, interval = monitoring_schedule(_spec("monitoring.retraining.check_every_seconds=7200"))
    assert isinstance(interval, CronInterval)
    assert schedule.name == "keel-monitor-credit_risk"
    assert schedule.cron_expression == "0 */2 * * *" == interval.expression
    assert schedule.interval_second is None and schedule.start_time is None


# --- the spec, checked before anything runs -------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("monitoring.retraining.data_overrides=[data.sourc.seed=3]", "no key `data.sourc`"),
    ("monitoring.retraining.data_overrides=['no equals sign']", "KEY.PATH=VALUE"),
    ("monitoring.simulation.shifted_features=[income, incme]", "cannot shift ['incme']"),
])
def test_bad_monitoring_settings_fail_at_load(override, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _spec(override)


def test_main_refuses_a_bad_override_with_exit_2(capsys):
    from keel.cli.main import main

    assert main(["monitor", "--set", "monitoring.retraining.data_overrides=[data.sourc.seed=3]"]) == 2
    assert "data.sourc" in capsys.readouterr().err


def test_monitor_checks_the_retraining_spec_before_anything_runs(tmp_path, capsys):
    # The key exists, the value does not validate: only the whole retraining spec shows it.
    spec = _spec("monitoring.retraining.data_overrides=[data.source.rows=-5]",
                 f"deployment.folder={tmp_path}", "deployment.allow_folder_outside_project=true")
    assert monitor(spec, CONFIG) == 2
    assert "data.source.rows" in capsys.readouterr().err
    assert not (tmp_path / spec.problem.name).exists()  # nothing was judged or recorded


def test_a_bad_retraining_spec_is_recorded_as_failed(tmp_path):
    from keel.monitoring.monitor import monitoring_folder
    from keel.monitoring.policy import read_history

    spec = _spec("monitoring.retraining.data_overrides=[data.source.rows=-5]", f"deployment.folder={tmp_path}",
                 "deployment.allow_folder_outside_project=true")
    decision = {"time": "2026-01-01T00:00:00+00:00", "fired": ["drift"]}
    record = retrain_and_roll_out(spec, decision, champion=1)
    assert record["outcome"] == "failed" and "data.source.rows" in record["error"]
    assert read_history(monitoring_folder(spec))[-1]["outcome"] == "failed"


# --- what a retraining came to ---------------------------------------------------------------------


def test_retraining_outcome_mapping():
    assert retraining_outcome(1, None) == "failed"  # the evaluation run failed: nothing was judged
    assert retraining_outcome(1, False) == "failed"
    assert retraining_outcome(GATES_FAILED, False) == "rejected by evaluation"
    assert retraining_outcome(0, False) == "rejected by evaluation"
    assert retraining_outcome(0, None) == "failed"
    assert retraining_outcome(0, True) == "deploy"
    assert retraining_outcome(0, True, 0, "promoted") == "rolled out"
    assert retraining_outcome(0, True, 1, "rolled back") == "not rolled out (rolled back)"
    assert retraining_outcome(0, True, 1, None) == "not rolled out (deployment failed)"
    assert SKIPPED == "skipped (--no-retrain)"


# --- the closed loop's traffic ---------------------------------------------------------------------


class _Service(BaseHTTPRequestHandler):
    key = "s3cret"

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("X-API-Key") != self.key:
            answer, status = {"error": "missing or wrong API key"}, 401
        else:
            answer, status = {"predictions": [{"model_version": 1, "score": 0.1} for _ in body["records"]]}, 200
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def service():
    server = HTTPServer(("127.0.0.1", 0), _Service)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture()
def loop(monkeypatch, tmp_path):
    """closed_loop with train/evaluate/deploy and the monitoring run replaced (no pipelines)."""
    import keel.cli.deploy
    import keel.lifecycle.deployment
    import keel.lifecycle.evaluation
    import keel.lifecycle.monitoring
    import keel.lifecycle.training
    from keel.lifecycle.deployment import DeploymentResult
    from keel.lifecycle.evaluation import EvaluationResult
    from keel.lifecycle.training import TrainingResult

    monkeypatch.setattr(keel.lifecycle.training, "train_version", lambda spec, no_cache=False: TrainingResult(1))
    monkeypatch.setattr(keel.lifecycle.evaluation, "evaluate_version",
                        lambda spec, version, no_cache=False: EvaluationResult(version))
    monkeypatch.setattr(keel.lifecycle.deployment, "deploy_version", lambda spec, version, strategy=None, by=None:
                        DeploymentResult(version, evidence={"outcome": "promoted"}))
    monkeypatch.setattr(monitor_cli.ConsoleProgress, "trained", lambda self, spec, result: None)
    monkeypatch.setattr(monitor_cli.ConsoleProgress, "evaluated", lambda self, spec, result: None)
    monkeypatch.setattr(monitor_cli.ConsoleProgress, "deployed", lambda self, spec, result: None)
    import keel.lifecycle.main_job
    from keel.lifecycle.batch import BatchJobResult

    portfolio = {"scored": 5, "rows_read": 5, "batch_id": "batch-stub", "output_uri": str(tmp_path / "scores.parquet")}
    monkeypatch.setattr(keel.lifecycle.main_job, "score_portfolio",
                        lambda spec, version, progress: BatchJobResult(0, record=portfolio, version=version))
    from keel.data.generator import generate_credit_applications  # the production version's validation split

    import keel.lifecycle.deployment

    monkeypatch.setattr(keel.lifecycle.deployment, "validation_frame", lambda spec, version=None: generate_credit_applications(
        spec.data.source.model_copy(update={"rows": 5})))
    monitored = []

    def monitor_once(spec, retrain=True, progress=None, mark=lambda what, detail: None, traffic="both"):
        monitored.append(spec)
        mark("monitor", "stub")
        return keel.lifecycle.monitoring.MonitorResult(0, status={"verdict": {"summary": "stub"}})

    monkeypatch.setattr(keel.lifecycle.monitoring, "monitor_once", monitor_once)

    def spec_for(port, *settings):
        return _spec(f"deployment.port={port}", f"deployment.folder={tmp_path}", "monitoring.simulation.rows=200",
                     "deployment.allow_folder_outside_project=true",
                     "deployment.api_key_env=KEEL_TEST_MONITOR_KEY", *settings)

    return spec_for, monitored


def test_the_loop_sends_the_api_key_and_ends_with_a_curl_example(loop, service, monkeypatch, capsys):
    spec_for, monitored = loop
    monkeypatch.setenv("KEEL_TEST_MONITOR_KEY", _Service.key)
    assert monitor_cli.closed_loop(spec_for(service), CONFIG) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any("200 of 200 applications scored" in line for line in out)
    assert out[-1].startswith("try it:") and "curl -s -X POST" in out[-1]
    assert '-H "X-API-Key: $KEEL_TEST_MONITOR_KEY"' in out[-1]  # the name of the variable, never the key
    assert _Service.key not in out[-1]
    assert len(monitored) == 1


def test_the_loop_stops_when_not_every_application_was_answered(loop, service, monkeypatch, capsys):
    spec_for, monitored = loop
    monkeypatch.setenv("KEEL_TEST_MONITOR_KEY", "wrong")
    assert monitor_cli.closed_loop(spec_for(service), CONFIG) == 1
    err = capsys.readouterr().err
    assert "answered 0 of 200" in err and "HTTP 401" in err
    assert monitored == []  # incomplete traffic is not judged


def test_a_dead_service_is_a_clear_message_not_a_traceback(loop, monkeypatch, capsys):
    spec_for, monitored = loop
    monkeypatch.setenv("KEEL_TEST_MONITOR_KEY", _Service.key)
    port = free_port()  # nothing listens there
    assert monitor_cli.closed_loop(spec_for(port), CONFIG) == 1
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port} does not answer" in err and "service.log" in err
    assert "Traceback" not in err and monitored == []
