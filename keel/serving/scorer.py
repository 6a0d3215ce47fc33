"""The scoring core behind every HTTP front (BentoML in production, plain FastAPI in benchmarks):
authenticate, bound, parse and validate the payload, route each record to an arm, predict, mirror
to a shadow, log, answer. Framework-free, so it behaves the same on every stack."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import pickle
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import pandas as pd

from keel.clock import utc_now
from keel.features.preprocessing import UNTRAINED_CATEGORY, categories_unknown_to
from keel.monitoring.production_fairness import attributes_sent_with_requests
from keel.serving.fast_path import RowScorer, compile_row_scorer
from keel.serving.group_commit import GroupCommitter, LogUnavailable
from keel.serving.identity import ServiceIdentity
from keel.serving.layout import DEPLOYMENT_FILE, MAX_BODY_BYTES, ROUTING_FILE, gated
from keel.serving.payload import PayloadError, parse_records, record_model
from keel.serving.prediction_log import MAX_REQUEST_ID_LENGTH, DuplicateRequest, PredictionLog, refusal_row
from keel.serving.reasons import ReasonGiver, unfavourable_decision
from keel.serving.reviews import REFER, in_refer_band
from keel.serving.routing import Arm, RoutingTable
from keel.serving.rollout_state import no_route_problem, obey_dead_mans_switch
from keel.spec.data import CategoricalFeature
from keel.spec.models import Spec
from keel.training.fit import predict_scores

logger = logging.getLogger(__name__)

UNAUTHORISED = "missing or wrong API key (X-API-Key or Authorization: Bearer)"


@dataclass
class Answer:
    status: int
    body: dict


def is_json_media_type(media_type: str) -> bool:
    """application/json or a JSON-based type (application/...+json), as FastAPI reads a body as JSON; a
    request without Content-Type is read as JSON too, as FastAPI does."""
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


class RepeatedKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _object_without_repeated_keys(pairs):
    """A JSON object as a dict, refused when a key repeats: Python's json keeps the last value silently,
    so `{"income": 3, "income": 30}` would be scored and logged as 30 whatever the caller meant."""
    record = dict(pairs)
    if len(record) < len(pairs):
        seen: set = set()
        raise RepeatedKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return record


def _error(status: int, problem: str, field: str = "body", found=None) -> Answer:
    return Answer(status, {"errors": [{"field": field, "problem": problem, "found": found}]})


class NoLog:
    """Stands in for the prediction log and its commits when a bundle has none (benchmarks measure
    their cost)."""

    def append(self, rows) -> int:
        return len(rows)

    def append_error(self, row) -> None:
        return None

    def append_refusal(self, row) -> None:
        return None

    def submit(self, rows) -> Future:
        future: Future = Future()
        future.set_result(len(rows))
        return future

    async def commit(self, rows, alone: bool = False) -> int:
        return len(rows)

    def close(self) -> None:
        return None


@dataclass
class Scored:
    """A request scored and answered, but not yet acknowledged: its log rows are still to commit."""

    request_id: str
    rows: List[dict]
    body: dict


@dataclass
class ArmDecisions:
    """The records of a request one arm answered (a failing challenger's go to the champion)."""

    arm: Arm
    indexes: List[int]  # positions in the request
    scores: List[float]
    decisions: List[int]
    referred: List[bool]
    latency_ms: float  # the model call's time, per record


@dataclass
class Decided:
    """A request parsed, routed, scored and decided; its principal reasons still to be given."""

    request_id: str
    entity_ids: list  # as sent (None where the record has none)
    inputs: List[dict]
    entities: List[str]  # routing keys: the entity id, or the request id and position
    now: datetime
    groups: List[ArmDecisions]
    shadow_rows: List[dict]


class Scorer:
    """Loads a deployment folder (see `keel.deployment.bundle`) and answers scoring requests."""

    def __init__(self, folder: Path, observe: Optional[Callable[[int, str, bool, float], None]] = None,
                 observe_commit: Optional[Callable[[int], None]] = None):
        self.folder = Path(folder)
        # Checked on every request (a reload, a new routing table): plain strings, no Path joins.
        self._deployment_path = str(self.folder / DEPLOYMENT_FILE)
        self._routing_path = str(self.folder / ROUTING_FILE)
        self.observe = observe or (lambda version, arm, ok, ms: None)
        self.observe_commit = observe_commit  # each log commit's request count (the group size)
        self._config_stamp: Optional[int] = None
        self._routing: Optional[RoutingTable] = None
        self._routing_stamp: Optional[int] = None
        self._log_url: Optional[str] = None
        self.log, self.commits = NoLog(), NoLog()
        self._in_flight = 0  # requests the event loop is answering (`predict_async`)
        self._reasons_pool: Optional[ThreadPoolExecutor] = None
        self._load()

    def _load(self) -> None:
        """(Re)load the deployment: a new challenger version arrives without a restart."""
        stamp = os.stat(self._deployment_path).st_mtime_ns
        if stamp == self._config_stamp:
            return
        config = json.loads(Path(self._deployment_path).read_text())
        self.spec = Spec.model_validate(config["spec"])
        self.model_name = self.spec.problem.name
        self.models = {int(v): pickle.loads((self.folder / p).read_bytes()) for v, p in config["models"].items()}
        # A mitigated version may decide with a sensitive attribute: a payload field only while such a
        # version is loaded, logged with the inputs, and given to that version alone (`_columns`).
        self.decision_attributes = sorted({a for m in self.models.values() for a in getattr(m, "decision_attributes_", ())})
        # Sensitive attributes sent beside the features for fairness monitoring: logged with the inputs,
        # never read by a model (each version reads its own columns: `_predict`).
        self.logged_attributes = attributes_sent_with_requests(self.spec.data, self.spec.monitoring.fairness)
        self.record_type = record_model(self.spec.data, self.decision_attributes, self.logged_attributes)
        self.refer_band = self.spec.decisions.refer_band
        self.thresholds = {int(v): float(t) for v, t in config["thresholds"].items()}
        # A container overrides where the log lives (the bundle's path is the building machine's).
        url = os.environ.get("KEEL_PREDICTION_LOG_URL") or config["prediction_log_url"]
        if url != self._log_url:  # the same log across reloads: one writer, its queue kept
            self.commits.close()
            self.log.close()
            # No log: only the serving benchmark's baseline.
            self.log = PredictionLog(url, self.refer_band) if url else NoLog()
            # This process alone writes a SQLite log with one worker: its groups commit on the event loop.
            alone_writer = url and self.log.engine.dialect.name == "sqlite" and self.spec.deployment.workers == 1
            self.commits = (GroupCommitter(self.log, on_commit=self.observe_commit, on_loop=bool(alone_writer))
                            if url else self.log)
            self._log_url = url
        self.log.refer_band = self.refer_band  # referrals are written with their predictions, by the log
        self.log.unreferred_prefixes = tuple(self.spec.monitoring.exclude_entity_prefixes)  # rollout probes
        key_env = config.get("api_key_env")
        self.api_key = os.environ.get(key_env) if key_env else None
        if key_env and not self.api_key:
            raise RuntimeError(f"the spec asks for an API key, but ${key_env} is not set")
        self.max_body_bytes = int(config.get("max_body_bytes", MAX_BODY_BYTES))
        background = self.folder / "background.parquet"
        self.background = pd.read_parquet(background) if background.exists() else None
        self._features = self.spec.data.model_features
        self._columns = {v: list(getattr(m, "feature_names_in_", self._features)) for v, m in self.models.items()}
        # A version trained under an earlier spec cannot score the categories added since (`_unknown_refused`).
        self._unknown = {v: u for v, m in self.models.items() if (u := categories_unknown_to(m, self.spec.data))}
        self._numeric = {n for n, f in self.spec.data.features.items() if not isinstance(f, CategoricalFeature)}
        self.fast_paths: Dict[int, RowScorer] = {}
        if self.spec.deployment.fast_path and self.background is not None:
            compiled = {v: compile_row_scorer(m, self.background) for v, m in self.models.items()
                        if not getattr(m, "decision_attributes_", None)}
            self.fast_paths = {v: f for v, f in compiled.items() if f is not None}
        self.reason_givers = self._reason_givers()
        self._config_stamp = stamp

    def _reason_givers(self) -> Dict[int, ReasonGiver]:
        """Per version, what gives an unfavourable decision its principal reasons (a version without
        one answers `reasons: null`, and start-up says why)."""
        from keel.evaluation.mitigation import reasons_model

        givers = {}
        for version, served in self.models.items():
            model = reasons_model(served)  # a threshold_optimizer version: its base model's contributions
            encoder = self.fast_paths.get(version) if model is served else None
            if encoder is None and self.background is not None and not getattr(model, "decision_attributes_", None):
                encoder = compile_row_scorer(model, self.background)  # fast path off: still the checked encoder
            background = self.background[self._features] if self.background is not None else None
            giver = ReasonGiver.for_pipeline(model, encoder, self.spec.data, self.spec.decisions, background=background)
            if giver is None:
                logger.warning("serving: v%s gives no principal reasons (data.target.favourable undeclared, no "
                               "background rows, or a model without additive contributions)",
                               version)
            else:
                # A request alone on the loop has its trees explained in two halves, one beside it.
                giver.split_trees(self.background[list(getattr(model, "feature_names_in_", self._columns[version]))])
                givers[version] = giver
        return givers

    # --- routing ------------------------------------------------------------------------------
    def routing(self) -> Optional[RoutingTable]:
        """The current routing table; re-read when the rollout controller replaces the file. None when
        nothing is routed (a first rollout interrupted before its promotion: no_route answers)."""
        self._load()
        obey_dead_mans_switch(self.folder)  # a silent rollout controller: back to the champion
        try:
            stamp = os.stat(self._routing_path).st_mtime_ns
        except FileNotFoundError:
            self._routing_stamp = None
            return None
        if stamp != self._routing_stamp:
            self._routing = RoutingTable.from_dict(json.loads(Path(self._routing_path).read_text()))
            self._routing_stamp = stamp
        return self._routing

    # --- request handling ---------------------------------------------------------------------
    def identity(self) -> dict:
        """Whose service this is (the body of /readyz): probes check it, so another service on the
        port is never taken for this one."""
        return ServiceIdentity(self.model_name, self.folder).answer()

    def refusal(self, path: str, headers: Mapping[str, str]) -> Optional[Answer]:
        """The 401 for a request to `path` without the API key; None when it may reach the route.
        With an API key, every gated route (/metrics, the index page, the API documents) wants it,
        unless the spec exposes them (deployment.api_key_protects_docs_and_metrics: false)."""
        if not gated(path):
            return None
        self._load()
        if not self.spec.deployment.api_key_protects_docs_and_metrics or self._authorised(headers):
            return None
        return _error(401, UNAUTHORISED)

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        if self.api_key is None:
            return True
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.api_key.encode())

    def declared_too_large(self, headers: Mapping[str, str]) -> Optional[Answer]:
        """413 before reading a body whose Content-Length already says it is over the limit (waiting for
        bytes a client declared but never sends ended in the server's 504 after its timeout); None
        otherwise. An unauthorised caller still gets 401 first, as for a body read whole."""
        try:
            declared = int(headers.get("content-length", ""))
        except ValueError:
            return None
        if declared <= self.max_body_bytes or not self._authorised(headers):
            return None
        return self._too_large(declared)

    def _too_large(self, size: int) -> Answer:
        return _error(413, f"body larger than {self.max_body_bytes} bytes", found=size)

    def _parse(self, body: bytes, headers: Mapping[str, str]):
        if not self._authorised(headers):
            return _error(401, UNAUTHORISED)
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type and not is_json_media_type(media_type):
            return _error(415, "the body must be JSON, sent as Content-Type: application/json",
                          field="Content-Type", found=headers.get("content-type"))
        if len(body) > self.max_body_bytes:
            return self._too_large(len(body))
        if not body.strip():
            return _error(400, "empty body: expected a JSON object or {\"records\": [...]}")
        try:
            payload = json.loads(body, object_pairs_hook=_object_without_repeated_keys)
        except RepeatedKey as repeated:
            return _error(422, "given more than once in one JSON object (which value is meant?)",
                          field=repeated.key)
        except (ValueError, UnicodeDecodeError) as error:
            return _error(400, f"not valid JSON ({error})")
        except RecursionError:  # e.g. 100,000 nested brackets: small enough for the size limit
            return _error(400, "JSON nested too deeply")
        try:
            return parse_records(payload, self.record_type)
        except PayloadError as error:
            return Answer(error.status, {"errors": error.errors})
        except RecursionError:  # nesting that json accepted but validation cannot walk
            return _error(400, "JSON nested too deeply")

    def _frame(self, inputs: List[dict], columns: Optional[List[str]] = None) -> pd.DataFrame:
        """The records as the frame a version reads: its own input columns (default: the model features)."""
        frame = pd.DataFrame(inputs, columns=columns or self._features)
        numeric = [c for c in frame.columns if c in self._numeric]
        frame[numeric] = frame[numeric].astype(float)
        return frame

    def _predict(self, version: int, inputs: List[dict]) -> np.ndarray:
        """The pipeline's scores; through its checked NumPy fast path when it has one."""
        fast = self.fast_paths.get(version)
        if fast is not None:
            return fast.scores(inputs)
        return predict_scores(self.models[version], self._frame(inputs, self._columns[version]))

    def _score(self, version: int, arm: str, inputs: List[dict], request_id: str) -> Tuple[Optional[np.ndarray], float]:
        started = time.perf_counter()
        try:
            scores = self._predict(version, inputs)
            ok = bool(np.all(np.isfinite(scores)))
            error = None if ok else "non-finite score"
        except Exception as exc:  # any model failure is recorded and answered by the fallback
            scores, ok, error = None, False, f"{type(exc).__name__}: {exc}"
        elapsed = (time.perf_counter() - started) * 1000
        self.observe(version, arm, ok, elapsed)
        if not ok:
            self.log.append_error({"request_id": request_id, "time": utc_now(), "model_version": version,
                                   "arm": arm, "error": error[:2000], "latency_ms": elapsed})
            return None, elapsed
        return scores, elapsed

    def predict(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Answer a scoring request once its predictions are committed to the log (blocking)."""
        scored = self.score(body, headers)
        if isinstance(scored, Answer):
            return scored
        future = self.commits.submit(scored.rows)
        return self._acknowledged(scored, future.exception())

    async def predict_async(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """`predict` for an event loop: other requests are served while this one's group commits, and a
        request alone on the loop commits on it (keel.serving.group_commit)."""
        self._in_flight += 1
        try:
            decided = self._decide(body, headers)
            if isinstance(decided, Answer):
                return decided
            if not self._owes_reasons(decided):
                reasons = {}
            elif self._in_flight > 1:
                # Exact TreeSHAP takes about a millisecond a row, in LightGBM's C code, which releases the
                # interpreter lock: on the reasons thread the loop serves the other requests meanwhile.
                reasons = await asyncio.get_running_loop().run_in_executor(
                    self._reasons_thread(), self._principal_reasons, decided)
            else:
                # Alone, they are given on the loop (a hand-over would only add to the wait), and the idle
                # reasons thread explains half of the trees meanwhile: the other core halves the wait.
                reasons = self._principal_reasons(decided, beside=self._reasons_thread())
            scored = self._answered(decided, reasons)
            if self._in_flight == 1:
                # Two turns of the loop: the first reads the sockets (requests already sent are parsed),
                # the second starts their handlers, which count themselves in flight. Then `alone` is true
                # only when no other request is waiting: concurrent requests still share a group.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            await self.commits.commit(scored.rows, alone=self._in_flight == 1)
        except (DuplicateRequest, LogUnavailable) as error:
            return self._acknowledged(scored, error)
        finally:
            self._in_flight -= 1
        return Answer(200, scored.body)

    def _reasons_thread(self) -> ThreadPoolExecutor:
        """One thread per process: beside the event loop's, it keeps the cores busy without contending."""
        if self._reasons_pool is None:
            self._reasons_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keel-reasons")
        return self._reasons_pool

    def _acknowledged(self, scored: Scored, error: Optional[BaseException]) -> Answer:
        if isinstance(error, DuplicateRequest):
            # The log keys predictions by request id, so a retry must not overwrite or double the
            # answer already acknowledged: it is refused, and the caller can look the first one up.
            return _error(409, "this X-Request-ID was already answered; send a new id for a new request",
                          field="X-Request-ID", found=scored.request_id)
        if isinstance(error, LogUnavailable):  # never acknowledged: the caller may retry with the same id
            return _error(503, f"{error}; nothing was acknowledged, retry the request", found=scored.request_id)
        if error is not None:
            raise error
        return Answer(200, scored.body)

    def score(self, body: bytes, headers: Mapping[str, str]) -> Union[Answer, Scored]:
        """Everything a scoring request needs but the commit: its refusal (Answer), or its answer and
        the log rows that must be committed before it is given (Scored)."""
        decided = self._decide(body, headers)
        if isinstance(decided, Answer):
            return decided
        return self._answered(decided, self._principal_reasons(decided))

    def _decide(self, body: bytes, headers: Mapping[str, str]) -> Union[Answer, "Decided"]:
        """Parse, route, score and decide a request; its principal reasons are still to be given. A request
        refused for its records' content (422) is logged as refused: monitoring reports that traffic too."""
        decided = self._route_and_score(body, headers)
        if isinstance(decided, Answer) and decided.status == 422:
            self._record_refusal(headers, decided)
        return decided

    def _record_refusal(self, headers: Mapping[str, str], answer: Answer) -> None:
        """Log a refused request; a log that cannot take it leaves the refusal as answered."""
        request_id = (headers.get("x-request-id") or "")[:MAX_REQUEST_ID_LENGTH] or None
        try:
            self.log.append_refusal(refusal_row(request_id, utc_now(), answer.body.get("errors") or []))
        except Exception as error:  # the caller's answer does not depend on the log
            logger.warning("serving: a refused request could not be logged (%s: %s)", type(error).__name__, error)

    def _route_and_score(self, body: bytes, headers: Mapping[str, str]) -> Union[Answer, "Decided"]:
        parsed = self._parse(body, headers)
        if isinstance(parsed, Answer):
            return parsed
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        if len(request_id) > MAX_REQUEST_ID_LENGTH:  # the log's key column holds no more
            return _error(400, f"at most {MAX_REQUEST_ID_LENGTH} characters", field="X-Request-ID",
                          found=len(request_id))
        if not (request_id.isascii() and request_id.isprintable()):
            # Header bytes arrive as latin-1: 'é' sent as UTF-8 would be logged as 'Ã©', a key no one can look up.
            return _error(400, "printable ASCII characters only (a header's bytes have no agreed encoding)",
                          field="X-Request-ID", found=request_id.encode("latin-1", "replace").decode("utf-8", "replace"))
        table = self.routing()
        if table is None:
            return self.no_route()
        inputs = [record.model_dump(exclude={"entity_id"}) for record in parsed]
        entities = [str(r.entity_id) if r.entity_id is not None else f"{request_id}:{i}" for i, r in enumerate(parsed)]
        by_arm: Dict[Arm, List[int]] = {}
        for index, entity in enumerate(entities):
            by_arm.setdefault(table.arm_for(entity), []).append(index)
        fallback = table.arms[0]
        if self._unknown:
            refused = self._unknown_refused(by_arm, inputs)
            if refused is not None:
                return refused
        decided = Decided(request_id, [r.entity_id for r in parsed], inputs, entities, utc_now(), [], [])
        for arm, indexes in by_arm.items():
            part = [inputs[i] for i in indexes]
            scores, elapsed = self._score(arm.version, arm.name, part, request_id)
            served = arm
            if scores is None and arm != fallback and not self._unknown_to(fallback.version, part):
                # A failing challenger: the champion answers (what it can score).
                scores, elapsed = self._score(fallback.version, fallback.name, part, request_id)
                served = fallback
            if scores is None:
                return _error(503, "the model could not score this request; it has been logged", found=request_id)
            threshold = self.thresholds[served.version]
            decided.groups.append(ArmDecisions(served, indexes, [float(value) for value in scores],
                                               [int(value >= threshold) for value in scores],
                                               [in_refer_band(float(value), self.refer_band) for value in scores],
                                               elapsed / len(indexes)))
        if table.shadow is not None:
            # A record holding a category the shadow's version was not fitted with would be scored as no
            # category at all: no evidence about that version, so it is not mirrored to it.
            known = [i for i, record in enumerate(inputs) if not self._unknown_to(table.shadow.version, [record])]
            scores, elapsed = (self._score(table.shadow.version, "shadow", [inputs[i] for i in known], request_id)
                               if known else (None, 0.0))
            if scores is not None:
                threshold = self.thresholds[table.shadow.version]
                decided.shadow_rows = [
                    self._log_row(request_id, len(parsed) + i, entities[i], decided.now, table.shadow, True, inputs[i],
                                  float(v), int(v >= threshold), elapsed / len(known))
                    for i, v in zip(known, scores)]
        return decided

    def _unknown_refused(self, by_arm: Dict[Arm, List[int]], inputs: List[dict]) -> Optional[Answer]:
        """The 422 for records routed to a version that was not fitted with their category (the spec
        added it after that version was trained); None when every version knows what it is sent."""
        errors = []
        for arm, indexes in by_arm.items():
            for feature, values in self._unknown.get(arm.version, {}).items():
                for index in indexes:
                    if inputs[index].get(feature) in values:
                        errors.append({"field": f"records[{index}].{feature}" if len(inputs) > 1 else feature,
                                       "found": inputs[index][feature],
                                       "problem": f"{UNTRAINED_CATEGORY}: v{arm.version} serves this entity; "
                                                  "the category is served once a version trained with it does"})
        return Answer(422, {"errors": errors}) if errors else None

    def _unknown_to(self, version: int, inputs: List[dict]) -> bool:
        """Whether some record holds a category `version` was not trained with."""
        return any(record.get(feature) in values for feature, values in self._unknown.get(version, {}).items()
                   for record in inputs)

    def _owed_reasons(self, group: ArmDecisions) -> List[int]:
        """The request indexes of the group's unfavourable decisions, and of its referrals: a person may
        decline one, and is then owed its reasons (logged with it, not answered: the answer is `refer`)."""
        adverse = unfavourable_decision(self.spec.data.target.favourable)
        if adverse is None:
            return []
        return [i for i, d, r in zip(group.indexes, group.decisions, group.referred) if d == adverse or r]

    def _owes_reasons(self, decided: "Decided") -> bool:
        return any(self._owed_reasons(group) for group in decided.groups)

    def _principal_reasons(self, decided: "Decided", beside: Optional[ThreadPoolExecutor] = None
                           ) -> Dict[int, Optional[list]]:
        """Request index -> the principal reasons of its unfavourable decision (None: none could be given).
        `beside`: an idle thread that explains half of a boosted model's trees (keel.serving.reasons)."""
        reasons: Dict[int, Optional[list]] = {}
        for group in decided.groups:
            reasons.update(self._reasons(group.arm.version, self._owed_reasons(group), decided.inputs, beside))
        return reasons

    def _answered(self, decided: "Decided", reasons: Dict[int, Optional[list]]) -> Scored:
        results: List[Optional[dict]] = [None] * len(decided.inputs)
        rows = []
        for group in decided.groups:
            served = group.arm
            for position, index in enumerate(group.indexes):
                value, decision = group.scores[position], group.decisions[position]
                results[index] = {"entity_id": decided.entity_ids[index], "score": round(value, 6),
                                  "decision": REFER if group.referred[position] else decision,
                                  "model_version": served.version, "arm": served.name}
                if index in reasons and not group.referred[position]:
                    results[index]["reasons"] = reasons[index]
                rows.append(self._log_row(decided.request_id, index, decided.entities[index], decided.now, served,
                                          False, decided.inputs[index], value, decision, group.latency_ms,
                                          reasons.get(index)))
        return Scored(decided.request_id, rows + decided.shadow_rows,
                      {"request_id": decided.request_id, "predictions": results})

    def _reasons(self, version: int, chosen: List[int], inputs: List[dict],
                 beside: Optional[ThreadPoolExecutor] = None) -> Dict[int, Optional[list]]:
        """The principal reasons of the records at `chosen` (request index -> reasons; None where the
        version gives none). Favourable records are never chosen: they cost nothing."""
        if not chosen:
            return {}
        giver = self.reason_givers.get(version)
        if giver is None:
            return {i: None for i in chosen}
        try:
            return dict(zip(chosen, giver.for_records([inputs[i] for i in chosen], beside)))
        except Exception:  # the decision stands and is answered; `reasons: null` says none could be given
            logger.exception("serving: v%s could not give principal reasons", version)
            return {i: None for i in chosen}

    def _log_row(self, request_id, row, entity, now, arm: Arm, shadow: bool, inputs: dict, score: float,
                 decision: int, latency_ms: float, reasons: Optional[list] = None) -> dict:
        return {"request_id": request_id, "row": row, "entity_id": entity, "time": now,
                "model_name": self.model_name, "model_version": arm.version, "arm": arm.name, "shadow": shadow,
                "inputs": inputs,
                "score": score, "decision": decision, "latency_ms": latency_ms, "reasons": reasons}

    def explain(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """Contributions (log-odds) for one record, from the model that would serve it, with the base
        value they start from: base_value + sum(contributions) = raw_output, the model's log-odds. For a
        version mitigated per group, `mitigation` says how its score came from that model's probability."""
        parsed = self._parse(body, headers)
        if isinstance(parsed, Answer):
            return parsed
        if len(parsed) != 1:
            return _error(422, "explain takes one record", field="records", found=len(parsed))
        from keel.governance.explanations import explain_additively

        record = parsed[0]
        table = self.routing()
        if table is None:
            return self.no_route()
        arm = table.arm_for(str(record.entity_id) if record.entity_id is not None else uuid.uuid4().hex)
        inputs = [record.model_dump(exclude={"entity_id"})]
        model = self.models[arm.version]
        frame = self._frame(inputs, self._columns[arm.version])
        explanation = explain_additively(model, frame, self.spec.data, self.background)
        score = float(self._predict(arm.version, inputs)[0])
        ranked = explanation.contributions.iloc[0].sort_values(key=np.abs, ascending=False)
        # Not rounded: rounded contributions would no longer add up to the raw output.
        answer = {"model_version": arm.version, "arm": arm.name, "score": round(score, 6),
                  "output": "log-odds", "base_value": float(explanation.base_value[0]),
                  "raw_output": float(explanation.raw_output[0]),
                  "contributions": {k: float(v) for k, v in ranked.items()}}
        if getattr(model, "decision_attributes_", None):
            # A mitigated version: the contributions explain its model's log-odds; the score is that
            # model's probability adjusted for the row's group (keel.evaluation.mitigation).
            answer["mitigation"] = {"attribute": model.attribute, "group": str(model.groups(frame)[0]),
                                    "model_probability": round(float(model.model_probability(frame)[0]), 6),
                                    "score": "the decision (0 or 1)" if model.outputs_decisions
                                    else "the probability mapped for the group"}
        return Answer(200, answer)

    def no_route(self) -> Answer:
        """The answer while nothing is routed: 503, saying why (e.g. no production version yet)."""
        return _error(503, no_route_problem(self.folder), field="routing")

    def ready(self) -> bool:
        # Nothing routed is ready too: the service answers (503, saying why) and keeps its identity on
        # /readyz, so the next command recognises it as this project's service.
        table = self.routing()
        return table is None or all(arm.version in self.models for arm in table.arms)
