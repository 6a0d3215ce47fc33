import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from keel.spec import SpecError, load_spec, spec_hash
from keel.spec.load import apply_overrides

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "configs" / "credit_risk.yaml"


def _raw():
    return yaml.safe_load(DEFAULT.read_text())


def _write(tmp_path, raw, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw) if not isinstance(raw, str) else raw)
    return path


def test_default_spec_is_valid_and_keeps_sensitive_attributes_out_of_the_model():
    spec = load_spec(DEFAULT)
    assert spec.problem.name == "credit_risk"
    assert len(spec.data.features) >= 15
    assert "sex" not in spec.data.model_features and "age_band" not in spec.data.model_features


def test_example_spec_for_a_csv_is_valid():
    spec = load_spec(ROOT / "configs" / "examples" / "german_credit.yaml",
                     ["data.source.path=/somewhere/german.csv"])
    assert str(spec.data.source.path) == "/somewhere/german.csv"
    assert "age" in spec.data.model_features  # use_as_feature: true


def _break(mutate):
    raw = _raw()
    mutate(raw)
    return raw


BAD_SPECS = {
    "unknown top-level key": (lambda r: r.update(trainig={}), "trainig", "no such key"),
    "unknown nested key": (lambda r: r["split"].update(sead=1), "split.sead", "no such key"),
    "missing required section": (lambda r: r.pop("problem"), "problem", "required"),
    "wrong type": (lambda r: r["data"]["source"].update(rows="many"), "data.source.rows", "'many'"),
    "negative rows": (lambda r: r["data"]["source"].update(rows=-5), "data.source.rows", "greater than 0"),
    "unknown source kind": (lambda r: r["data"]["source"].update(kind="excel"), "data.source", "excel"),
    "unknown metric": (lambda r: r["training"].update(primary_metric="auc"), "training.primary_metric",
                       "'auc'"),
    "fractions leave nothing": (lambda r: r["split"].update(validation_fraction=0.5, test_fraction=0.45),
                                "split", "at least 10%"),
    "min above max": (lambda r: r["data"]["features"]["income"].update(min=10, max=1),
                      "data.features.income", "greater than max"),
    "duplicate categories": (lambda r: r["data"]["features"]["region"].update(categories=["a", "a"]),
                             "data.features.region.categories", "unique"),
    "unknown feature type": (lambda r: r["data"]["features"]["income"].update(type="text"),
                             "data.features.income", "text"),
    "unknown lightgbm parameter": (lambda r: r["training"]["candidate"]["params"].update(leaves=3),
                                   "training.candidate.params", "leaves"),
    "criterion without bound": (lambda r: r["problem"].update(success_criteria=[{"metric": "f1"}]),
                                "problem.success_criteria[0]", "min"),
    "time split without time column": (lambda r: (r["split"].update(strategy="time"),
                                                  r["data"].pop("time_column")), "(top level)", "time_column"),
    "search range inverted": (lambda r: r["training"]["candidate"]["search_space"]["num_leaves"].update(
        low=64, high=8), "training.candidate.search_space.num_leaves", "greater than high"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_names_file_key_and_expectation(tmp_path, case):
    mutate, key, expected_text = BAD_SPECS[case]
    path = _write(tmp_path, _break(mutate))
    with pytest.raises(SpecError) as raised:
        load_spec(path)
    message = str(raised.value)
    assert str(path) in message
    assert f"  - {key}:" in message, message
    assert expected_text in message, message


def test_not_yaml_and_not_a_mapping_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML at line"):
        load_spec(_write(tmp_path, "problem: [unclosed\n"))
    with pytest.raises(SpecError, match="expected a YAML mapping"):
        load_spec(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "absent.yaml")


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    """helper-50: a second `evaluation:` section appended to a spec replaced the first (PyYAML keeps the
    last): the spec validated, its gates were gone, and `evaluate` promoted with "no gates declared"."""
    text = (ROOT / "configs" / "credit_risk.yaml").read_text()
    assert "\nevaluation:" in text
    path = tmp_path / "twice.yaml"
    path.write_text(text + "\nevaluation:\n  blocking: true\n")
    first = text[:text.index("\nevaluation:") + 1].count("\n") + 1
    with pytest.raises(SpecError, match=rf"line {text.count(chr(10)) + 2}, column 1: the key 'evaluation' is given twice "
                                        rf"\(first at line {first}\)"):
        load_spec(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text(text.replace("  top_reasons: 4\n", "  top_reasons: 4\n  top_reasons: 2\n"))
    with pytest.raises(SpecError, match="the key 'top_reasons' is given twice"):
        load_spec(nested)


@pytest.mark.parametrize("override, named", [
    ("split.seed=-1", "split.seed"), ("training.seed=-3", "training.seed"), ("split.seed=4294967296", "split.seed"),
    ("training.candidate.params.n_estimators=-5", "n_estimators -5 must be at least 1"),
    ("training.candidate.params.num_leaves=1", "num_leaves 1 must be at least 2"),
    ("training.candidate.search_space.learning_rate={type: float, low: 0, high: 0.3}",
     "learning_rate 0 must be above 0"),
    ("training.candidate.params.subsample=1.5", "subsample 1.5 must be at most 1"),
])
def test_seeds_and_lightgbm_parameters_out_of_range_are_spec_errors(override, named):
    """helper-50: a negative seed or n_estimators validated, then `check` crashed with a traceback from
    NumPy, scikit-learn or LightGBM and `train` failed at a step (exit 1 instead of a spec error's 2)."""
    with pytest.raises(SpecError, match=re.escape(named)):
        load_spec(ROOT / "configs" / "credit_risk.yaml", [override])


def test_a_list_addressed_by_name_and_an_empty_path_are_said_so():
    """helper-50: `evaluation.gates.roc_auc.min` said "is a value, not a section"; an empty data path validated
    (as ".") and `check` then said ".: is a directory"; `--config ''` read the working directory."""
    with pytest.raises(SpecError, match=re.escape("`evaluation.gates` is a list: address an item by its position, "
                                                  "`evaluation.gates[0]`, or a gate by its metric, "
                                                  "`evaluation.gates[roc_auc]`")):
        load_spec(ROOT / "configs" / "credit_risk.yaml", ["evaluation.gates.roc_auc.min=0.9"])
    with pytest.raises(SpecError, match="data.source.path: the path is empty"):
        load_spec(ROOT / "configs" / "credit_risk.yaml", ['data.source={kind: csv, path: ""}'])
    empty = subprocess.run([sys.executable, str(ROOT / "run.py"), "validate", "--config", ""], capture_output=True,
                           text=True)
    assert empty.returncode == 2 and "argument --config: an empty path" in empty.stderr


def test_the_monitored_metric_is_the_primary_metric_unless_declared(tmp_path):
    """helper-47: a fraud spec selecting by pr_auc was monitored (and retrained) by roc_auc, the credit demo's
    metric, because the monitoring section's metric defaulted to it."""
    raw = yaml.safe_load((ROOT / "configs" / "credit_risk.yaml").read_text())
    del raw["monitoring"]["drift"]["performance"]["metric"], raw["monitoring"]["retraining"]["performance"]["metric"]
    raw["training"]["primary_metric"] = "pr_auc"
    path = tmp_path / "fraud.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_spec(path)
    assert spec.monitoring.drift.performance.metric == spec.monitoring.retraining.performance.metric == "pr_auc"
    declared = load_spec(path, ["monitoring.drift.performance.metric=brier", "monitoring.retraining.performance=null"])
    assert declared.monitoring.drift.performance.metric == "brier" and declared.monitoring.retraining.performance is None
    assert load_spec(ROOT / "configs" / "credit_risk.yaml").monitoring.drift.performance.metric == "roc_auc"


def test_overrides_set_any_key_with_yaml_typed_values():
    spec = load_spec(DEFAULT, ["data.source.rows=123", "split.stratify=false",
                               "training.candidate.params.num_leaves=7"])
    assert spec.data.source.rows == 123 and spec.split.stratify is False
    assert spec.training.candidate.params["num_leaves"] == 7


def test_override_of_unknown_key_is_rejected_and_names_it():
    with pytest.raises(SpecError, match=r"split\.sede: expected no such key"):
        load_spec(DEFAULT, ["split.sede=3"])
    with pytest.raises(SpecError, match="expected KEY.PATH=VALUE"):
        load_spec(DEFAULT, ["split.seed"])
    with pytest.raises(SpecError, match="is a value, not a section"):
        apply_overrides({"a": 1}, ["a.b=2"])


def test_a_name_holding_dots_is_addressed_in_double_quotes():
    """R writes column names with dots (iris' Sepal.Length): a plain path would split them."""
    raw = {"data": {"features": {"Sepal.Length": {"type": "numeric", "min": 0}, "Petal[1]": {"type": "numeric"}}}}
    changed = apply_overrides(raw, ['data.features."Sepal.Length".min=4.3', 'data.features."Petal[1]".max=9'])
    assert changed["data"]["features"]["Sepal.Length"] == {"type": "numeric", "min": 4.3}
    assert changed["data"]["features"]["Petal[1]"] == {"type": "numeric", "max": 9}  # a name, not an index
    assert apply_overrides(raw, ["data.features.Sepal.Length.min=1"])["data"]["features"]["Sepal"] == {
        "Length": {"min": 1}}  # unquoted: a path of sections, named by validation as an unknown feature
    for malformed in ['data."features.min=1', 'data.""=1', 'data."a"b=1', "data..a=1"]:
        with pytest.raises(SpecError, match="expected KEY.PATH=VALUE"):
            apply_overrides(raw, [malformed])


def test_spec_hash_changes_with_content_only():
    assert spec_hash(load_spec(DEFAULT)) == spec_hash(load_spec(DEFAULT))
    assert spec_hash(load_spec(DEFAULT)) != spec_hash(load_spec(DEFAULT, ["split.seed=1"]))


def _run_cli(*args):
    code = ("import sys, keel; from keel.cli.main import main; rc = main(sys.argv[1:]); "
            "assert 'zenml' not in sys.modules and 'lightgbm' not in sys.modules, 'heavy import'; "
            "sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)


def test_cli_rejects_a_bad_spec_with_exit_2_without_importing_zenml(tmp_path):
    path = _write(tmp_path, _break(lambda r: r["split"].update(sead=1)))
    done = _run_cli("train", "--config", str(path))
    assert done.returncode == 2
    assert "split.sead" in done.stderr and str(path) in done.stderr


def test_validating_the_generator_simulation_imports_no_data_library():
    """The default spec's traffic simulation names shifted features: checking them against the
    generator's list must not load the generator (pandas, numpy): `validate` answers at once."""
    code = ("import sys; from keel.spec import load_spec; "
            "spec = load_spec('configs/credit_risk.yaml'); assert spec.monitoring.simulation.shifted_features; "
            "heavy = [m for m in ('pandas', 'numpy', 'keel.data.generator') if m in sys.modules]; "
            "assert not heavy, heavy")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    refused = _run_cli("validate", "--set", "monitoring.simulation.shifted_features=[income, nope]")
    assert refused.returncode == 2 and "the generator cannot shift ['nope']" in refused.stderr


def test_cli_validate_and_help_do_not_import_zenml():
    done = _run_cli("validate")
    assert done.returncode == 0 and "valid spec" in done.stdout
    helped = subprocess.run([sys.executable, "run.py", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert helped.returncode == 0
    for command in ("train", "runs", "validate"):
        assert command in helped.stdout


def test_overrides_reach_into_lists():
    spec = load_spec(DEFAULT, ["evaluation.gates[0].min=0.6"])
    assert spec.evaluation.gates[0].min == 0.6
    with pytest.raises(SpecError, match="has no item 99"):
        load_spec(DEFAULT, ["evaluation.gates[99].min=0.6"])


def test_gate_overrides_by_metric_name_follow_the_gate_not_its_position(tmp_path):
    raw = yaml.safe_load(DEFAULT.read_text())
    raw["evaluation"]["gates"].reverse()  # reordering must not make an override loosen another gate
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(raw))
    for path in (DEFAULT, reordered):
        spec = load_spec(path, ["evaluation.gates[p95_latency_ms].max=1000", "evaluation.gates[roc_auc].min=0.6"])
        bounds = {g.metric: (g.min, g.max) for g in spec.evaluation.gates}
        assert bounds["p95_latency_ms"] == (None, 1000) and bounds["roc_auc"] == (0.6, None)
        assert bounds["expected_calibration_error"] == (None, 0.05)
    with pytest.raises(SpecError, match="no item with metric 'roc_aux'; it has: demographic_parity_ratio"):
        load_spec(DEFAULT, ["evaluation.gates[roc_aux].min=0.6"])


def test_telemetry_is_off_before_zenml_loads_whichever_module_comes_first():
    code = ("import os\nfor k in ('ZENML_ANALYTICS_OPT_IN', 'WHYLOGS_NO_ANALYTICS', 'BENTOML_DO_NOT_TRACK'):\n"
            "    os.environ.pop(k, None)\n"
            "import steps.data.ingest\n"
            "from zenml.config.global_config import GlobalConfiguration\n"
            "assert os.environ['WHYLOGS_NO_ANALYTICS'] == 'True' and os.environ['BENTOML_DO_NOT_TRACK'] == 'True'\n"
            "assert GlobalConfiguration().analytics_opt_in is False\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("folder", ["/srv/keel/deployments", "../deployments", "deployments/../../elsewhere"])
def test_a_deployment_folder_outside_the_project_is_refused_naming_file_key_and_expectation(tmp_path, folder):
    raw = _raw()
    raw["deployment"]["folder"] = folder
    path = _write(tmp_path, raw)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert str(path) in message and "deployment.folder:" in message and repr(folder) in message
    assert "relative to the directory run.py is started in" in message
    assert "deployment.allow_folder_outside_project: true" in message


def test_a_deployment_folder_outside_the_project_is_accepted_when_declared_on_purpose(tmp_path):
    spec = load_spec(DEFAULT, [f"deployment.folder={tmp_path / 'deployments'}",
                               "deployment.allow_folder_outside_project=true"])
    assert spec.deployment.folder == str(tmp_path / "deployments")


@pytest.mark.parametrize("folder", [".keel/deployments", "./deployments", "builds/../deployments", "deployments"])
def test_a_deployment_folder_inside_the_project_needs_no_opt_in(folder):
    assert load_spec(DEFAULT, [f"deployment.folder={folder}"]).deployment.folder == folder


def test_a_recorded_spec_read_back_keeps_its_deployment_folder():
    """A deployment bundle or a training run recorded before the check still loads: the check is on
    the spec its author gives a command, not on a spec read back from a record."""
    from keel.spec import validate_spec
    from keel.spec.models import Spec

    raw = _raw()
    raw["deployment"]["folder"] = "/srv/keel/deployments"
    assert Spec.model_validate(raw).deployment.folder == "/srv/keel/deployments"
    assert validate_spec(raw, "the training run's spec").deployment.folder == "/srv/keel/deployments"
    with pytest.raises(SpecError, match="deployment.folder"):
        validate_spec(raw, "a spec file", declared=True)
