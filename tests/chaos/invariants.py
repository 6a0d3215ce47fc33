"""What must hold after any kill (issue 15): each function looks at one project and returns Checks.

- no usable incomplete version: a version whose registration did not complete is not staged, not
  routed, and `evaluate`, `deploy`, `lineage` refuse it (and `runs` marks it) saying "interrupted";
- the audit trail verifies: `audit verify` exits 0, or reports an interrupted registration as such
  (a distinct outcome, never "TAMPERED") when there is one;
- one view of serving: the registry's production version, the deployment folder's routing, the trail's
  `who-served` now, and what the live service answers all name the same version, and `who-served`
  names the version of every answer logged since the kill (checked after the controller timeout);
- `service.pid` names the live server;
- after the next command, no ZenML run of a dead process is left "running".

Incomplete is judged two ways, and either counts: keel's own completion mark (keel.registration), and
independently of it, provenance the issue found missing (run id, lock hash, packages, model hash) or no
`training_run_registered` record in the trail.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional, Set

from tests.chaos.project import MODEL, Project

PROVENANCE = ("run_id", "lock_sha256", "packages", "model_sha256", "data_fingerprint")
SERVING_STAGES = ("staging", "production")
PROBE_REQUESTS = 30
ROUTING_LAG = timedelta(seconds=1)  # the service re-reads routing.json on its next request after a change


@dataclass
class Check:
    name: str
    held: bool
    detail: str = ""


# --- reading the project (in this process, on the project's store) -----------------------------

def registry(project: Project) -> List[dict]:
    """[{number, stage, metadata}] of every version, oldest first."""
    with project.inside():
        from zenml.client import Client

        client = Client()
        try:
            client.get_model(MODEL)
        except KeyError:
            return []
        versions = client.list_model_versions(model=MODEL, size=1000, sort_by="asc:number", hydrate=True).items
        return [{"number": int(v.number), "stage": v.stage, "metadata": dict(v.run_metadata or {})}
                for v in versions]


def trail(project: Project) -> List[dict]:
    """The audit records, in sequence order, as files (the chain's own check is `audit verify`'s)."""
    folder = project.audit_folder()
    if folder is None:
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except ValueError:
            records.append({"event": "(unreadable)", "file": path.name})
    return records


def incomplete_versions(versions: List[dict], records: List[dict]) -> Dict[int, str]:
    """{version: why it counts as incomplete}."""
    registered = {r.get("version") for r in records if r.get("event") == "training_run_registered"}
    try:
        from keel.registration import registration_complete
    except ImportError:  # before keel marked registrations complete
        registration_complete = None
    found = {}
    for version in versions:
        number, metadata = version["number"], version["metadata"]
        reasons = []
        if registration_complete is not None and not registration_complete(metadata):
            reasons.append("no completion mark")
        missing = [key for key in PROVENANCE if metadata.get(key) in (None, "", {}, [])]
        if missing:
            reasons.append(f"{len(metadata)} metadata keys, missing {', '.join(missing)}")
        if number not in registered:
            reasons.append("no training_run_registered record")
        if reasons:
            found[number] = "; ".join(reasons)
    return found


def routed_versions(table: Optional[dict]) -> Set[int]:
    """Versions that answer under a routing table (weight above 0; a shadow never answers)."""
    return {int(arm["version"]) for arm in (table or {}).get("arms", []) if arm.get("weight", 0) > 0}


def who_served(records: List[dict], at: datetime) -> Optional[dict]:
    from keel.governance.timeline import served_at

    return served_at([r for r in records if "seq" in r], at)


# --- the invariants -------------------------------------------------------------------------------

def no_usable_incomplete_version(project: Project, refused: Optional[Set[int]] = None) -> List[Check]:
    """`refused`: versions whose refusal by the commands was already seen in this project (the
    commands are asked once per version; stage and routing every time). Updated here."""
    refused = set() if refused is None else refused
    versions, records = registry(project), trail(project)
    incomplete = incomplete_versions(versions, records)
    if not incomplete:
        return [Check("no incomplete version", True, f"{len(versions)} version(s), all complete")]
    checks = []
    routing = _routing_file(project)
    listed = project.cli("runs")
    for number, why in incomplete.items():
        label = f"v{number} ({why})"
        stage = next(v["stage"] for v in versions if v["number"] == number)
        checks.append(Check(f"incomplete v{number} not staged", stage not in SERVING_STAGES, f"{label}: stage {stage}"))
        checks.append(Check(f"incomplete v{number} not routed", number not in routed_versions(routing)
                            and number != ((routing or {}).get("shadow") or {}).get("version"),
                            f"routing.json: {routing}"))
        rows = [line for line in listed.output.splitlines() if _names_version(line, number)]
        checks.append(Check(f"runs marks incomplete v{number}", all("interrupted" in line.lower() for line in rows),
                            f"exit {listed.returncode}; lines naming v{number}: {rows or 'none'}"))
        if number in refused:
            continue
        answers = []
        for command in (["lineage", "--model-version", str(number)], ["evaluate", "--model-version", str(number)],
                        ["deploy", "--model-version", str(number)]):
            ran = project.cli(*command)
            answers.append(ran.returncode not in (0, None) and "interrupted" in ran.output.lower())
            checks.append(Check(f"{command[0]} refuses incomplete v{number} as interrupted", answers[-1],
                                f"exit {ran.returncode}: {ran.tail(6)}"))
        if all(answers):
            refused.add(number)
    return checks


def _names_version(line: str, number: int) -> bool:
    return re.search(rf"\bv{number}\b", line) is not None


def trail_verifies(project: Project) -> List[Check]:
    incomplete = incomplete_versions(registry(project), trail(project))
    ran = project.cli("audit", "verify")
    text = ran.output.lower()
    if ran.returncode == 0:
        return [Check("audit verify", True, "exit 0")]
    interrupted = "interrupted" in text and "tampered" not in text
    if interrupted and incomplete:
        return [Check("audit verify", True, f"exit {ran.returncode}, interrupted registration of "
                                            f"{', '.join(f'v{n}' for n in incomplete)} (not tampering)")]
    why = "interrupted without an incomplete version" if interrupted else "a failure that reads as tampering"
    return [Check("audit verify", False, f"exit {ran.returncode}, {why}: {ran.tail(8)}")]


def one_view_of_serving(project: Project, since: datetime) -> List[Check]:
    """Registry, routing, who-served and the live service agree; who-served explains every answer
    logged since `since`. Call it after the spec's controller timeout has passed since the kill."""
    from keel.deployment.server import service_url

    versions = registry(project)
    production = [v["number"] for v in versions if v["stage"] == "production"]
    expected = set(production)
    url = service_url("127.0.0.1", project.port)
    answered = _probe(project, url) if _answers(url) else None  # first: a caller's request, as in production
    routing = _routing_file(project)
    records = trail(project)
    now = datetime.now(timezone.utc)
    served = who_served(records, now)
    views = {"registry production": expected,
             "routing.json": routed_versions(routing) if routing is not None else set(),
             "who-served now": routed_versions(served)}
    if answered is not None:
        views["live answers"] = answered
    shown = "; ".join(f"{name}: {_versions(found)}" for name, found in views.items())
    checks = [Check(f"{name} = registry production", found == expected, shown)
              for name, found in views.items() if name != "registry production"]
    if answered is None and routing is None and not records:
        checks = [Check("nothing serves, nothing recorded", not expected, shown)]
    checks.append(_every_answer_explained(project, records, since))
    checks.append(_pid_file_names_server(project, url))
    return checks


def runs_settled(project: Project) -> List[Check]:
    """After a command ran to its end: no pipeline run of a dead process still shows as running."""
    with project.inside():
        from zenml.client import Client

        runs = Client().list_pipeline_runs(size=200, hydrate=True).items
        # with its tags (keel tags a run with its process) and its unfinished steps: what to look at
        stuck = [f"{r.name} ({r.status}; tags {[t.name for t in r.tags]}; unfinished steps "
                 f"{[name for name, step in r.steps.items() if not step.status.is_finished]})"
                 for r in runs if not r.status.is_finished]
    return [Check("no run left running", not stuck, f"{len(stuck)} of {len(runs)} runs: {', '.join(stuck)}"
                  if stuck else f"{len(runs)} runs, none running")]


# --- helpers ---------------------------------------------------------------------------------------

def _routing_file(project: Project) -> Optional[dict]:
    path = project.deployment_folder() / "routing.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _versions(found: Set[int]) -> str:
    return ", ".join(f"v{v}" for v in sorted(found)) or "none"


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


def _probe(project: Project, url: str) -> Set[int]:
    """Versions that answer PROBE_REQUESTS predictions for new entity ids (prefixed like the rollout's
    probes, so monitoring leaves them out)."""
    from keel.data.generator import generate_credit_applications
    from keel.deployment.server import post_json

    spec = project.spec()
    rows = generate_credit_applications(spec.data.source.model_copy(update={"rows": PROBE_REQUESTS}))
    tag = uuid.uuid4().hex[:8]
    seen = set()
    for index, record in enumerate(json.loads(rows[spec.data.model_features].to_json(orient="records"))):
        status, answer = post_json(f"{url}/predict", {**record, "entity_id": f"probe-chaos-{tag}-{index}"})
        if status == 200:
            seen.update(int(p["model_version"]) for p in answer["predictions"])
        elif status == 503 and any(str(e.get("problem", "")).startswith("no production version")
                                   for e in answer.get("errors", [])):
            pass  # the service says no version is production (a first rollout interrupted): the view "none"
        else:
            seen.add(-status)  # an error answer is a view of its own: shown as v-<status>
    return seen


def _every_answer_explained(project: Project, records: List[dict], since: datetime) -> Check:
    """Each prediction logged since `since` was answered by a version who-served names for its time
    (or up to ROUTING_LAG before: the service switches on the request after the file changed)."""
    folder = project.deployment_folder()
    if not (folder / "predictions.db").exists():
        return Check("who-served explains every answer", True, "no prediction log")
    from keel.serving.prediction_log import PredictionLog

    rows = PredictionLog(f"sqlite:///{folder / 'predictions.db'}").read(since=since)
    unexplained = []
    for row in rows:
        at = row["time"] if row["time"].tzinfo else row["time"].replace(tzinfo=timezone.utc)
        allowed = set()
        for moment in (at, at - ROUTING_LAG):
            served = who_served(records, moment)
            allowed |= routed_versions(served) | ({served["shadow"]["version"]} if served and served.get("shadow") else set())
        if int(row["model_version"]) not in allowed:
            unexplained.append(f"{row['request_id']} at {at.isoformat()} by v{row['model_version']} "
                               f"(who-served: {_versions(allowed)})")
    return Check("who-served explains every answer", not unexplained,
                 f"{len(rows)} answers since the kill" + (f"; {len(unexplained)} not: {unexplained[:3]}" if unexplained else ""))


def _pid_file_names_server(project: Project, url: str) -> Check:
    import psutil

    path = project.deployment_folder() / "service.pid"
    up = _answers(url)
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return Check("service.pid names the live server", not up, f"service answering: {up}; no service.pid")
    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    holder = _port_holder(project.port)
    tree = {pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))} if alive else set()
    ok = (alive and holder in tree) if up else not alive
    return Check("service.pid names the live server", ok,
                 f"service answering: {up}; service.pid {pid} alive: {alive}; port held by pid {holder}")


def _port_holder(port: int) -> Optional[int]:
    import psutil

    for connection in psutil.net_connections(kind="tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
            return connection.pid
    return None


def wait_for_controller_timeout(project: Project, killed_at_wall: float) -> float:
    """Sleep until the spec's controller timeout (and a second) has passed since the kill; seconds slept."""
    remaining = killed_at_wall + project.spec().deployment.controller_timeout_seconds + 1.0 - time.time()
    if remaining > 0:
        time.sleep(remaining)
    return max(remaining, 0.0)
