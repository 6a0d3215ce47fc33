"""Rebuild a model version from its record and prove it identical, or say what differs and why.

Checks first (code, spec, seed, dependency lock, data), then retrains in one process with the same
functions the training pipeline's steps call, then compares metrics and the model's SHA-256. The
data must be the recorded data (same content fingerprint): keel never retrains on other data and
calls it a reproduction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import pandas as pd

from keel import registration as keys
from keel.training.fit import MEMO_MODEL_SHA256

OK, WARN, FAIL = "ok", "warning", "FAILED"


@dataclass
class Check:
    name: str
    status: str
    detail: str


@dataclass
class Reproduction:
    checks: List[Check] = field(default_factory=list)
    differences: List[dict] = field(default_factory=list)  # {what, recorded, reproduced, cause}
    retrained: bool = False
    reproduced: Dict[str, object] = field(default_factory=dict)
    # A dask version retrained on another layout: what "reproduced" means then (None: identical is meant).
    within_tolerance: Optional[str] = None
    # Why this version is not rebuilt at all (a mitigation of a dask version): what to reproduce instead.
    refused: Optional[str] = None
    # The rebuilt model and its (train, validation, test) splits, in process only: a mitigation refits on them.
    model: object = field(default=None, repr=False, compare=False)
    splits: Optional[tuple] = field(default=None, repr=False, compare=False)

    @property
    def identical(self) -> bool:
        return (self.refused is None and self.retrained and not self.differences
                and all(c.status != FAIL for c in self.checks))

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(name, status, detail))


def flat(value, prefix: str = "") -> Dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}: to name exactly which keys of two records differ."""
    if isinstance(value, dict):
        out: Dict[str, object] = {}
        for key, item in value.items():
            out.update(flat(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def changed_keys(recorded: dict, current: dict) -> List[str]:
    a, b = flat(recorded), flat(current)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def check_code(reproduction: Reproduction, recorded: dict, current: dict, diff_names: Callable[[str], Optional[List[str]]]) -> None:
    """Recorded code against the code now. Between two git checkouts: commit and dirty flag, a difference
    is a warning that names files. Where either side is not a git checkout (a container image, a release
    archive): the content hash of keel's source files, the only name that code has."""
    from keel.provenance import is_git_commit

    commit, now = recorded.get(keys.GIT_COMMIT), current.get(keys.GIT_COMMIT)
    if not (is_git_commit(commit) and is_git_commit(now)):
        _check_source(reproduction, recorded, current)
        return
    problems = []
    if recorded.get(keys.GIT_DIRTY):
        problems.append(f"the version was trained from a tree with uncommitted changes "
                        f"({', '.join(recorded.get(keys.GIT_CHANGED_FILES) or []) or 'files not recorded'}); "
                        "that exact code is not in git")
    if commit != now:
        names = diff_names(str(commit))
        problems.append(f"recorded commit {str(commit)[:12]} differs from the checked-out {str(now)[:12]}"
                        + (f"; files changed since: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}"
                           if names else "" if names is not None else " (the recorded commit is not in this clone)"))
    if current.get(keys.GIT_DIRTY):
        changed = ", ".join(current.get(keys.GIT_CHANGED_FILES) or [])
        problems.append(f"the working tree has uncommitted changes: {changed}")
    if problems and _same_source(recorded, current):
        problems.append(f"keel's source files are nevertheless identical by content (SHA-256 "
                        f"{str(recorded.get(keys.SOURCE_SHA256))[:12]})")
    elif not problems and recorded.get(keys.SOURCE_SHA256) and not _same_source(recorded, current):
        # git sees no change, yet the files differ: files git does not track (an untracked package
        # shadowing a module of the same name) made or make the code.
        problems.append(f"git sees no change, but keel's source files differ by content: SHA-256 "
                        f"{str(recorded.get(keys.SOURCE_SHA256))[:12]} over {recorded.get(keys.SOURCE_FILES)} files "
                        f"then, {str(current.get(keys.SOURCE_SHA256))[:12]} over {current.get(keys.SOURCE_FILES)} "
                        "now (files git does not track, such as an untracked package beside a module of its name)")
    reproduction.add("code", WARN if problems else OK,
                     "; ".join(problems) if problems else f"clean checkout of the recorded commit {str(commit)[:12]}")


def _same_source(recorded: dict, current: dict) -> bool:
    was = recorded.get(keys.SOURCE_SHA256)
    return bool(was) and was == current.get(keys.SOURCE_SHA256)


def _where(record: dict) -> str:
    from keel.provenance import is_git_commit

    commit = record.get(keys.GIT_COMMIT)
    return f"git commit {str(commit)[:12]}" if is_git_commit(commit) else str(commit or "git commit not recorded")


def _check_source(reproduction: Reproduction, recorded: dict, current: dict) -> None:
    """Code compared by the content hash of keel's source files (outside a git checkout on either side)."""
    was, now = recorded.get(keys.SOURCE_SHA256), current.get(keys.SOURCE_SHA256)
    sides = f"trained from: {_where(recorded)}; now: {_where(current)}"
    if not was:
        reproduction.add("code", WARN, f"{sides}; the version recorded no source hash, so its code cannot be "
                                       "compared with this one")
    elif was == now:
        reproduction.add("code", OK, f"keel's source files are identical by content: SHA-256 {was[:12]} "
                                     f"({current.get(keys.SOURCE_FILES)} files; {sides})")
    else:
        reproduction.add("code", WARN, f"keel's source files differ: recorded SHA-256 {was[:12]}, now "
                                       f"{str(now)[:12]} ({sides})")


def check_environment(reproduction: Reproduction, recorded: dict, lock_sha256: str, packages: Dict[str, str]) -> None:
    changed = {name: (version, packages.get(name, "not installed"))
               for name, version in (recorded.get(keys.PACKAGES) or {}).items() if packages.get(name) != version}
    if recorded.get(keys.LOCK_SHA256) == lock_sha256 and not changed:
        reproduction.add("dependency lock", OK, f"requirements.lock SHA-256 {lock_sha256[:12]} and package versions match")
        return
    parts = []
    if recorded.get(keys.LOCK_SHA256) != lock_sha256:
        parts.append(f"requirements.lock SHA-256 was {str(recorded.get(keys.LOCK_SHA256))[:12]}, is {lock_sha256[:12]}")
    parts += [f"{name} {was} -> {now}" for name, (was, now) in sorted(changed.items())]
    reproduction.add("dependency lock", WARN, "; ".join(parts))


def check_spec(reproduction: Reproduction, recorded: dict, recorded_spec: Optional[dict], spec, spec_hash: str) -> None:
    if recorded_spec is None:
        reproduction.add("spec", FAIL, "the training run's spec could not be read back")
        return
    if spec_hash == recorded.get(keys.SPEC_SHA256):
        reproduction.add("spec", OK, f"the run's spec re-validates to the recorded SHA-256 {spec_hash[:12]}")
        return
    changed = changed_keys(recorded_spec, spec.model_dump(mode="json"))
    reproduction.add("spec", WARN, f"the run's spec re-validates to SHA-256 {spec_hash[:12]}, recorded "
                                   f"{str(recorded.get(keys.SPEC_SHA256))[:12]} (keel's spec schema changed since: "
                                   f"{', '.join(changed[:10]) or 'defaults only'})")


def check_seed(reproduction: Reproduction, recorded: dict, spec) -> None:
    """Both seeds are records of the same training run (its version metadata and its recorded spec), so
    this checks that the records agree with each other, not that anything was re-derived."""
    seed = spec.training.seed
    reproduction.add("seed records", OK if recorded.get(keys.SEED) == seed else FAIL,
                     f"consistency of the records: the version's metadata and its run's recorded spec both "
                     f"give training seed {seed}" if recorded.get(keys.SEED) == seed
                     else f"the records disagree: the version's metadata gives seed {recorded.get(keys.SEED)}, "
                          f"its training run's recorded spec {seed}")


def _difference_note(trained_rows: Callable[[], Optional[pd.DataFrame]], frame: pd.DataFrame,
                     id_column: Optional[str]) -> str:
    """The sentence naming what differs from the stored data version, or "" where it cannot be read (the
    mismatch stands either way)."""
    from keel.data.fingerprint import rows_difference

    try:
        trained = trained_rows()
    except Exception:  # a data version lost or unreadable: `data versions` reports it
        return ""
    if trained is None:
        return ""
    return f". What differs from the stored training data: {rows_difference(trained, frame, id_column)}"


def check_data(reproduction: Reproduction, recorded: dict, load: Callable[[], pd.DataFrame], spec,
               trained_rows: Callable[[], Optional[pd.DataFrame]] = lambda: None):
    """Read the recorded source, validate, fingerprint. Returns the raw frame only if it is the same data.
    On a mismatch, the rows that differ from `trained_rows()` (the stored data version) are named."""
    from keel.data.fingerprint import fingerprint_frame
    from keel.data.schema import validate_frame
    from keel.data.sources import DataSourceError

    try:
        raw = load()
    except (DataSourceError, OSError) as error:
        reproduction.add("data", FAIL, f"the source {recorded.get(keys.DATA_SOURCE)} is not reachable: {error}")
        return None
    frame, report = validate_frame(raw, spec.data)
    if not report.passed:
        reproduction.add("data", FAIL, f"the source no longer passes validation: {report.summary()}")
        return None
    fingerprint = fingerprint_frame(frame)
    if fingerprint != recorded.get(keys.DATA_FINGERPRINT):
        reproduction.add("data", FAIL, f"fingerprint mismatch: the source {recorded.get(keys.DATA_SOURCE)} now "
                                       f"gives {fingerprint[:16]}... ({len(frame)} rows), the version was trained on "
                                       f"{str(recorded.get(keys.DATA_FINGERPRINT))[:16]}...; not retraining on other "
                                       f"data{_difference_note(trained_rows, frame, spec.data.id_column)}")
        return None
    reproduction.add("data", OK, f"source reachable, same fingerprint {fingerprint[:16]}... ({len(frame)} rows)")
    return raw


def _likely_cause(reproduction: Reproduction) -> str:
    suspects = [f"{c.name}: {c.detail}" for c in reproduction.checks if c.status == WARN]
    return ("; ".join(suspects) if suspects
            else "no recorded input differs: non-determinism in training (threads, library internals)")


COMPARED = (keys.MODEL_FAMILY, keys.HYPERPARAMETERS, keys.ROWS, keys.VALIDATION_METRICS, keys.TEST_METRICS,
            keys.MODEL_SHA256)


def compare(reproduction: Reproduction, recorded: dict, reproduced: dict, facts=COMPARED,
            cause: Optional[str] = None) -> None:
    """Each recorded fact against the rebuilt one; a difference carries its most likely cause (`cause`
    when the caller knows it better than the checks do)."""
    for what in facts:
        was, now = recorded.get(what), reproduced.get(what)
        if what == keys.MODEL_SHA256 and was is not None and was == reproduced.get(MEMO_MODEL_SHA256):
            now = reproduced[what] = was  # recorded by an earlier keel, with the memo: the same model
        if isinstance(was, dict) and isinstance(now, dict):
            for key in sorted(set(was) | set(now)):
                if was.get(key) != now.get(key):
                    reproduction.differences.append({"what": f"{what}.{key}", "recorded": was.get(key),
                                                     "reproduced": now.get(key),
                                                     "cause": cause or _likely_cause(reproduction)})
        elif was != now:
            reproduction.differences.append({"what": what, "recorded": was, "reproduced": now,
                                             "cause": cause or _likely_cause(reproduction)})




def retrain(raw: pd.DataFrame, spec) -> dict:
    """The facts a model version records about its model, rebuilt (`rebuild`)."""
    return rebuild(raw, spec)[0]


def rebuild(raw: pd.DataFrame, spec) -> tuple:
    """The training pipeline's steps in one process, with their artifact boundaries: (the facts a model
    version records about its model, the model, its (train, validation, test) splits).
    (`keel.training.in_process` is the same logic without the boundaries: the same metrics, but a
    pickle of different bytes.)"""
    from keel.data.fingerprint import fingerprint_frame
    from keel.data.schema import validate_frame
    from keel.data.split import split_frame
    from keel.features.preprocessing import fit_preprocessor
    from keel.training.fit import artifact_boundary, fit_and_choose, memo_model_hash, model_hash, predict_scores
    from keel.training.metrics import score

    data, training = spec.data, spec.training
    frame, _ = validate_frame(raw, data)
    train, validation, test = split_frame(frame, spec.split, data.target.column, data.time_column)
    features = artifact_boundary(fit_preprocessor(train, data))
    selected, chosen = fit_and_choose(features, train, validation, data, training)
    model = artifact_boundary(selected.pipeline)
    facts = {keys.MODEL_FAMILY: selected.name, keys.HYPERPARAMETERS: chosen["params"],
             keys.VALIDATION_METRICS: chosen["validation_metrics"],
             keys.TEST_METRICS: score(test[data.target.column], predict_scores(model, test)),
             keys.MODEL_SHA256: model_hash(model), MEMO_MODEL_SHA256: memo_model_hash(model),
             keys.ROWS: {"train": len(train), "validation": len(validation), "test": len(test)},
             keys.DATA_FINGERPRINT: fingerprint_frame(frame)}
    return facts, model, (train, validation, test)


def reproduce_on_dask(reproduction: Reproduction, recorded: dict, spec, engine) -> None:
    """A version trained on the dask engine, retrained there (`engine`: the active stack's). On the
    recorded layout every fact must be identical, the model hash too; on another layout the facts the
    layout does not touch must be identical and the test metrics within keel.engine.reproduction's
    tolerance (LightGBM's distributed model depends on the rows each machine holds)."""
    from keel.data.sources import DataSourceError
    from keel.engine.reproduction import (EXACT_ON_ANOTHER_LAYOUT, METRIC_TOLERANCE, compare_reproduction,
                                          describe_layout, retrain_on_dask, same_layout)
    from keel.engine.spec import DaskEngine

    recorded_engine = recorded.get(keys.ENGINE) or {}
    layout = recorded_engine.get("layout", {})
    if not isinstance(engine, DaskEngine):
        reproduction.add("engine", FAIL, f"the version was trained on the dask engine ({describe_layout(layout)}); "
                                         "reproduce it on a stack whose engine is dask (e.g. --stack dask-local)")
        return
    try:
        retrained = retrain_on_dask(spec, engine, recorded.get(keys.DATA_FINGERPRINT))
    except (DataSourceError, OSError) as error:
        reproduction.add("data", FAIL, f"the source {recorded.get(keys.DATA_SOURCE)} is not reachable: {error}")
        return
    if not retrained.report.passed:
        reproduction.add("data", FAIL, f"the source no longer passes validation: {retrained.report.summary()}")
        return
    if retrained.facts is None:
        reproduction.add("data", FAIL, f"fingerprint mismatch: the source {recorded.get(keys.DATA_SOURCE)} now gives "
                                       f"{str(retrained.fingerprint)[:16]}..., the version was trained on "
                                       f"{str(recorded.get(keys.DATA_FINGERPRINT))[:16]}...; not retraining on other data")
        return
    reproduction.add("data", OK, f"source reachable, same fingerprint {retrained.fingerprint[:16]}... (validated "
                                 "partition by partition on the cluster)")
    facts = retrained.facts
    reproduction.reproduced, reproduction.retrained = facts, True
    now = facts[keys.ENGINE]["layout"]
    if same_layout(layout, now):
        reproduction.add("layout", OK, f"the recorded layout ({describe_layout(now)}): the identical model is expected")
        compare(reproduction, recorded, facts)
        return
    reproduction.add("layout", WARN, f"another layout than recorded (recorded: {describe_layout(layout)}; now: "
                                     f"{describe_layout(now)}): LightGBM's distributed model depends on it, so the "
                                     f"test metrics are compared within {METRIC_TOLERANCE}, not the model hash")
    compare(reproduction, recorded, facts, EXACT_ON_ANOTHER_LAYOUT)
    for problem in compare_reproduction(recorded_engine, str(recorded.get(keys.MODEL_SHA256)),
                                        recorded.get(keys.TEST_METRICS) or {}, facts[keys.ENGINE],
                                        facts[keys.MODEL_SHA256], facts[keys.TEST_METRICS]):
        reproduction.differences.append({"what": keys.TEST_METRICS, "recorded": recorded.get(keys.TEST_METRICS),
                                         "reproduced": facts[keys.TEST_METRICS], "cause": problem})
    reproduction.within_tolerance = (f"on another layout ({describe_layout(now)}; recorded {describe_layout(layout)}): "
                                     f"test metrics within {METRIC_TOLERANCE}, model SHA-256 "
                                     f"{facts[keys.MODEL_SHA256][:12]} (recorded {str(recorded.get(keys.MODEL_SHA256))[:12]})")


def stored_training_rows(model: str, recorded: dict) -> Optional[pd.DataFrame]:
    """The validated rows the version was trained on, from its data version (None without a fingerprint)."""
    from keel.governance.data_versions import data_root, data_version_uri, load_data_version

    fingerprint = recorded.get(keys.DATA_FINGERPRINT)
    return load_data_version(data_version_uri(data_root(model), fingerprint)) if fingerprint else None


def reproduce(recorded: dict, recorded_spec: Optional[dict], *, git_now: dict, diff_names, lock_sha256: str,
              packages: Dict[str, str], load=None, engine=None, base: Optional[tuple] = None,
              trained_rows=None) -> Reproduction:
    """Check, retrain (only on the same data), compare. `load` reads the spec's data source. A version
    trained on the dask engine is retrained on `engine` (the active stack's; see reproduce_on_dask). A
    mitigated version (`mitigated_from`) is its base version reproduced, then its mitigation refitted:
    `base` is (the base's metadata, its run's spec); see reproduce_mitigated."""
    from keel.data.sources import load_frame

    if recorded.get(keys.MITIGATED_FROM) is not None:
        return reproduce_mitigated(recorded, recorded_spec, base, git_now=git_now, diff_names=diff_names,
                                   lock_sha256=lock_sha256, packages=packages, load=load, engine=engine)
    reproduction = Reproduction()
    spec, _ = check_recorded_inputs(reproduction, recorded, recorded_spec, "the training run's", git_now=git_now,
                                    diff_names=diff_names, lock_sha256=lock_sha256, packages=packages)
    if spec is None:
        return reproduction
    check_seed(reproduction, recorded, spec)
    if recorded.get(keys.ENGINE):
        if not any(c.status == FAIL for c in reproduction.checks):
            reproduce_on_dask(reproduction, recorded, spec, engine)
        return reproduction
    raw = check_data(reproduction, recorded, load or (lambda: load_frame(spec.data)), spec,
                     trained_rows or (lambda: stored_training_rows(spec.problem.name, recorded)))
    if raw is None or any(c.status == FAIL for c in reproduction.checks):
        return reproduction
    reproduction.reproduced, reproduction.model, reproduction.splits = rebuild(raw, spec)
    reproduction.retrained = True
    compare(reproduction, recorded, reproduction.reproduced)
    return reproduction


# --- a mitigated version --------------------------------------------------------------------------


def mitigation_refusal(recorded: dict) -> str:
    """Why a mitigation of a dask-trained version is not rebuilt, and what to reproduce instead ("vN is
    " + this): it was fitted on the base's seeded split samples, which no rebuild gives back exactly."""
    source, facts = recorded[keys.MITIGATED_FROM], recorded.get(keys.MITIGATION) or {}
    return (f"a mitigation of v{source}, which was trained on the dask engine: reproduce v{source} "
            f"(python run.py reproduce --model-version {source} on a dask stack); the mitigation is "
            f"{facts.get('method')} ({facts.get('constraint')} on {facts.get('attribute')}), fitted on "
            f"v{source}'s {facts.get('fitted_on')} sample and recorded under `mitigation` of this version "
            f"(model SHA-256 {str(recorded.get(keys.MODEL_SHA256))[:12]}); it is not rebuilt here")


def _merge(into: Reproduction, part: Reproduction, prefix: str) -> None:
    """`part`'s checks and differences into `into`, each named with `prefix` (whose they are)."""
    into.checks += [Check(f"{prefix} {c.name}", c.status, c.detail) for c in part.checks]
    into.differences += [{**d, "what": f"{prefix} {d['what']}"} for d in part.differences]


def mitigation_cause(base: Reproduction, mitigation: Reproduction, source: int, method: str) -> str:
    """Why a refitted mitigation differs: the base's own differences, a mitigation input that changed,
    or (neither) the mitigation's refit itself; never training, which reproduced identical."""
    if base.differences:
        return f"the base v{source} did not reproduce identically (its differences above); the {method} refit on it " \
               "inherits them"
    suspects = [f"{c.name}: {c.detail}" for c in mitigation.checks if c.status == WARN]
    if suspects:
        return "; ".join(suspects)
    return (f"v{source} reproduced identical and no recorded input of the mitigation differs: the {method} refit "
            f"on v{source}'s splits is not deterministic (fairlearn), not training")


def check_recorded_inputs(part: Reproduction, recorded: dict, recorded_spec: Optional[dict], whose: str, *,
                          git_now: dict, diff_names, lock_sha256: str, packages: Dict[str, str]):
    """Code, environment and spec of a run's records, checked into `part`: (the run's validated spec or None,
    whether a recorded spec validates: False only for one that no longer does, said in `part`)."""
    from keel.spec import SpecError, spec_hash, validate_spec

    check_code(part, recorded, git_now, diff_names)
    check_environment(part, recorded, lock_sha256, packages)
    try:
        spec = validate_spec(recorded_spec, f"{whose} spec") if recorded_spec is not None else None
    except SpecError as error:
        part.add("spec", FAIL, f"{whose} recorded spec no longer validates: {error}")
        return None, False
    check_spec(part, recorded, recorded_spec, spec, spec_hash(spec) if spec else "")
    return spec, True


def check_mitigation_inputs(recorded: dict, recorded_spec: Optional[dict], base_recorded: dict, *, git_now: dict,
                            diff_names, lock_sha256: str, packages: Dict[str, str]):
    """The mitigation run's own records (code, lock, spec, data): (their checks, its spec or None)."""
    part = Reproduction()
    spec, valid = check_recorded_inputs(part, recorded, recorded_spec, "the mitigation run's", git_now=git_now,
                                        diff_names=diff_names, lock_sha256=lock_sha256, packages=packages)
    if not valid:
        return part, None
    same = recorded.get(keys.DATA_FINGERPRINT) == base_recorded.get(keys.DATA_FINGERPRINT)
    part.add("data", OK if same else FAIL,
             f"the base's splits ({str(base_recorded.get(keys.DATA_FINGERPRINT))[:16]}...)" if same else
             f"the version records data {str(recorded.get(keys.DATA_FINGERPRINT))[:16]}..., its base "
             f"{str(base_recorded.get(keys.DATA_FINGERPRINT))[:16]}...: not the base's splits")
    return part, spec


def refit_mitigation(base: Reproduction, spec, method: str) -> dict:
    """The mitigation refitted on the rebuilt base model and splits across the mitigation pipeline's
    artifact boundaries: the facts its version records about its model (as registration computes them)."""
    from keel.evaluation.mitigation import fit_mitigation, mitigated_model_facts
    from keel.training.fit import artifact_boundary

    train, validation, test = (artifact_boundary(frame) for frame in base.splits)
    mitigated, _ = fit_mitigation(artifact_boundary(base.model), train, validation, spec)
    mitigated = artifact_boundary(mitigated)
    return mitigated_model_facts(mitigated, method, base.reproduced, train, validation, test, spec)


def reproduce_mitigated(recorded: dict, recorded_spec: Optional[dict], base: Optional[tuple],
                        **context) -> Reproduction:
    """A mitigated version rebuilt as it was made: its base version reproduced (checks and facts named
    "vM ..."), then the mitigation refitted on the rebuilt base model and splits with the mitigation
    run's spec, compared with this version's recorded facts and hash. A difference names its own cause
    (mitigation_cause). A base trained on the dask engine: refused (mitigation_refusal)."""
    from keel.evaluation.mitigation import MitigationNotApplicable

    source = recorded[keys.MITIGATED_FROM]
    method = (recorded.get(keys.MITIGATION) or {}).get("method", "mitigation")
    reproduction = Reproduction()
    base_recorded, base_spec = base if base is not None else (None, None)
    if not base_recorded:
        reproduction.add(f"v{source}", FAIL, f"the version was mitigated from v{source}, whose record could not "
                                             "be read: nothing to rebuild it from")
        return reproduction
    if base_recorded.get(keys.ENGINE):
        reproduction.refused = mitigation_refusal(recorded)
        return reproduction
    rebuilt = reproduce(base_recorded, base_spec, **context)
    _merge(reproduction, rebuilt, f"v{source}")
    inputs, spec = check_mitigation_inputs(recorded, recorded_spec, base_recorded, git_now=context["git_now"],
                                           diff_names=context["diff_names"], lock_sha256=context["lock_sha256"],
                                           packages=context["packages"])
    _merge(reproduction, inputs, "mitigation")
    if spec is None or not rebuilt.retrained or any(c.status == FAIL for c in reproduction.checks):
        return reproduction
    try:
        reproduction.reproduced = refit_mitigation(rebuilt, spec, method)
    except MitigationNotApplicable as error:
        reproduction.add("mitigation", FAIL, f"the {method} could not be refitted on the rebuilt v{source}: {error}")
        return reproduction
    reproduction.retrained = True
    compare(reproduction, recorded, reproduction.reproduced, cause=mitigation_cause(rebuilt, inputs, source, method))
    return reproduction
