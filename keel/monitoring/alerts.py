"""The alerter: the log by default (nothing leaves the machine), or a JSON POST to the spec's webhook.
A webhook that fails is reported in the outcome; it never fails the monitoring run. An alert saying what
the last delivered one said is held back for `monitoring.alerter.repeat_after_hours` (`monitor --watch`
checks every few minutes: the same drift would page someone each time)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

from keel.files import write_atomically
from keel.monitoring.policy import retraining_triggers
from keel.monitoring.records import DriftStatus, RetrainingDecision
from keel.spec.monitoring import AlerterSpec

LOGGER = logging.getLogger("keel.monitoring")


def alert_message(model: str, version: Optional[int], status: DriftStatus,
                  decision: RetrainingDecision) -> Optional[dict]:
    """The alert for this run, or None when there is nothing to say (no drift, no retraining)."""
    verdict = status.get("verdict", {})
    production = status.get("production") or {}
    # Fairness that could not be judged alerts too: a silent "insufficient" would read as fair.
    unfair = production.get("verdict") in ("breach", "insufficient")
    if not verdict.get("alarm") and not decision.get("fired") and not unfair:
        return None
    message = {"model": model, "model_version": version, "window": status.get("window"),
               "drift": verdict.get("kinds", []), "summary": verdict.get("summary"),
               "drifted_features": status.get("features", {}).get("drifted", []),
               "retraining_triggers": retraining_triggers(decision) if "fired" in decision else [],
               "alert_only_triggers": [t for t in decision.get("fired", []) if t not in retraining_triggers(decision)],
               "retrain": decision.get("retrain"), "suppressed_by": decision.get("suppressed_by")}
    if unfair:
        message["fairness"] = {"verdict": production["verdict"], "breaches": production.get("breaches", []),
                               "not_judged": production.get("not_judged", [])}
    return message


def send_alert(message: Optional[dict], spec: AlerterSpec) -> dict:
    """Deliver `message`; returns where it went and whether it arrived."""
    if message is None:
        return {"sent": False, "channel": spec.kind, "reason": "nothing to report"}
    if spec.kind == "log":
        LOGGER.warning("keel monitoring alert: %s", json.dumps(message, default=str))
        return {"sent": True, "channel": "log"}
    request = urllib.request.Request(spec.url, data=json.dumps(message, default=str).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=spec.timeout_seconds) as response:
            return {"sent": 200 <= response.status < 300, "channel": "webhook", "status": response.status}
    except (urllib.error.URLError, OSError, ValueError) as error:
        LOGGER.warning("keel monitoring alert could not be delivered to the webhook: %s", error)
        return {"sent": False, "channel": "webhook", "error": f"{type(error).__name__}: {error}"}


# What an alert says, without the counts that grow with every request: the same problem is the same alert.
SAID = ("model", "model_version", "drift", "drifted_features", "retraining_triggers", "alert_only_triggers", "retrain",
        "suppressed_by")


def what_it_says(message: dict) -> str:
    said = {key: message.get(key) for key in SAID}
    said["fairness"] = (message.get("fairness") or {}).get("verdict")
    return json.dumps(said, sort_keys=True, default=str)


def deliver_alert(message: Optional[dict], spec: AlerterSpec, last_alert: Path, now: datetime) -> dict:
    """`send_alert`, unless the last alert delivered (recorded in `last_alert`) said the same less than
    `spec.repeat_after_hours` ago; a delivered alert is recorded there. A record that does not read is
    treated as none (the alert is sent: a missed page is worse than a repeated one)."""
    if message is None:
        return send_alert(None, spec)
    said = what_it_says(message)
    try:
        last = json.loads(last_alert.read_text())
        held = last["said"] == said and now - datetime.fromisoformat(last["sent_at"]) < timedelta(
            hours=spec.repeat_after_hours)
    except (OSError, ValueError, KeyError, TypeError):
        held = False
    if held:
        return {"sent": False, "channel": spec.kind,
                "reason": f"the same as the alert delivered at {last['sent_at']} (sent again "
                          f"{spec.repeat_after_hours:g} h after it: monitoring.alerter.repeat_after_hours)"}
    outcome = send_alert(message, spec)
    if outcome["sent"]:
        last_alert.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(last_alert, json.dumps({"said": said, "sent_at": now.isoformat()}))
    return outcome
