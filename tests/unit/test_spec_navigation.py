"""Finding one's way in the spec: unknown keys answered with the keys allowed at that level (nearest first),
kinds in plain words, empty column names refused, and a reference of every key generated from the models
and kept in sync with docs/spec-reference.md."""

import re
import subprocess
import sys
import typing

import pytest
import yaml

from keel.spec import SpecError, load_spec, validate_spec
from keel.spec.data import FileSource, NumericFeature, SplitSpec
from keel.spec.evaluation import Gate
from keel.spec.models import Spec
from keel.spec.monitoring import LabelsSpec
from tests.conftest import ROOT


def _raw():
    """A spec of greenhouse sensor data, nothing like the credit default."""
    return {"problem": {"name": "greenhouse", "objective": "o", "business_metric": "b",
                        "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
            "data": {"source": {"kind": "csv", "path": "greenhouse.csv", "sep": ";"},
                     "target": {"column": "blight", "positive": "yes", "negative": "no"},
                     "id_column": "tray", "time_column": "read_at",
                     "features": {"humidity": {"type": "numeric", "min": 0, "max": 100},
                                  "crop": {"type": "categorical", "categories": ["basil", "tomato"]}}},
            "split": {"seed": 4},
            "evaluation": {"gates": [{"metric": "roc_auc", "min": 0.6}]}}


def _problems(raw, overrides=(), tmp_path=None):
    with pytest.raises(SpecError) as raised:
        if overrides:
            path = tmp_path / "greenhouse.yaml"
            path.write_text(yaml.safe_dump(raw))
            load_spec(path, overrides)
        else:
            validate_spec(raw, "greenhouse.yaml")
    return str(raised.value)


def _line(message, key):
    lines = [line for line in message.splitlines() if line.startswith(f"  - {key}:")]
    assert len(lines) == 1, message
    return lines[0]


def _allowed(line):
    return [key.strip() for key in re.search(r"keys allowed (?:in [^:]+|at the top level): ([^)]*)\)", line)
            .group(1).split(",")]


def test_an_unknown_key_lists_the_keys_allowed_there_nearest_first(tmp_path):
    raw = _raw()
    raw["split"]["sed"] = 3
    line = _line(_problems(raw), "split.sed")
    assert "did you mean 'seed'?" in line and "found 3" in line
    allowed = _allowed(line)
    assert allowed[0] == "seed" and sorted(allowed) == sorted(SplitSpec.model_fields)
    # The same through --set, and at the top level.
    line = _line(_problems(_raw(), ["split.sed=3"], tmp_path), "split.sed")
    assert "did you mean 'seed'?" in line
    raw = _raw()
    raw["evalution"] = {}
    line = _line(_problems(raw), "evalution")
    assert "did you mean 'evaluation'?" in line and sorted(_allowed(line)) == sorted(Spec.model_fields)


def test_unknown_keys_inside_kinds_lists_and_mappings_list_that_kind_s_keys():
    raw = _raw()
    raw["data"]["source"]["pth"] = "greenhouse.csv"
    raw["data"]["features"]["humidity"]["nulable"] = True
    raw["evaluation"]["gates"][0]["maximum"] = 1
    message = _problems(raw)
    source = _line(message, "data.source.pth")
    assert "did you mean 'path'?" in source and sorted(_allowed(source)) == sorted(FileSource.model_fields)
    feature = _line(message, "data.features.humidity.nulable")
    assert "did you mean 'nullable'?" in feature and sorted(_allowed(feature)) == sorted(NumericFeature.model_fields)
    gate = _line(message, "evaluation.gates[0].maximum")
    assert _allowed(gate)[0] == "max" and sorted(_allowed(gate)) == sorted(Gate.model_fields)


def test_no_suggestion_when_nothing_is_close():
    raw = _raw()
    raw["split"]["qqqq"] = 1
    line = _line(_problems(raw), "split.qqqq")
    assert "did you mean" not in line and sorted(_allowed(line)) == sorted(SplitSpec.model_fields)


def test_kinds_in_plain_words():
    raw = _raw()
    raw["data"]["source"]["kind"] = "excel"
    assert "  - data.source: 'kind' must be one of csv, parquet, sql, generator; found 'excel'" in _problems(raw)
    raw["data"]["source"]["kind"] = "cvs"
    assert "did you mean 'csv'?" in _line(_problems(raw), "data.source")
    raw["data"]["source"] = {"path": "greenhouse.csv"}
    line = _line(_problems(raw), "data.source")
    assert "expected a 'kind' key" in line and "csv, parquet, sql, generator" in line
    raw = _raw()
    raw["data"]["features"]["humidity"] = {"typ": "numeric"}
    line = _line(_problems(raw), "data.features.humidity")
    assert "'type'" in line and "numeric, integer, categorical" in line and "'typ' looks like a misspelling" in line
    raw = _raw()
    raw["split"]["strategy"] = "randon"
    line = _line(_problems(raw), "split.strategy")
    assert "expected one of random, time" in line and "did you mean 'random'?" in line


EMPTY_NAMES = {
    "target column": (lambda r: r["data"]["target"].update(column=""), "data.target"),
    "id column": (lambda r: r["data"].update(id_column=""), "data.id_column"),
    "time column of spaces": (lambda r: r["data"].update(time_column="  "), "data.time_column"),
    "feature name": (lambda r: r["data"]["features"].update({"": {"type": "numeric"}}), "data.features"),
    "sensitive attribute": (lambda r: r["data"].update(sensitive_attributes={" ": {"categories": ["a"]}}),
                            "data.sensitive_attributes"),
    "empty category": (lambda r: r["data"]["features"]["crop"].update(categories=["basil", ""]),
                       "data.features.crop.categories"),
}


@pytest.mark.parametrize("case", sorted(EMPTY_NAMES))
def test_an_empty_column_name_is_an_error_at_its_key(case):
    mutate, key = EMPTY_NAMES[case]
    raw = _raw()
    mutate(raw)
    line = _line(_problems(raw), key)
    assert "empty" in line


def test_an_empty_labels_column_name_is_refused():
    for key in ("id_column", "label_column", "time_column"):
        with pytest.raises(ValueError, match=f"the {key} name is empty"):
            LabelsSpec(**{key: " "})


# --- the reference -------------------------------------------------------------------------------


def _tables(text):
    """{section title: [rows]} of the Markdown reference."""
    tables, title = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:]
            tables[title] = []
        elif title and line.startswith("| `"):
            tables[title].append(line)
    return tables


def test_the_reference_has_every_key_of_every_section_with_its_type_and_default():
    from keel.spec.reference import sections, spec_reference

    text = spec_reference()
    tables = _tables(text)
    for path, model, tag in sections():
        title = (f"`{path}`" if path else "The top level") + (f" — {tag}" if tag else "")
        rows = {row.split("`")[1]: row for row in tables[title]}
        assert list(rows) == list(model.model_fields), title
        for name, field in model.model_fields.items():
            cells = [cell.strip() for cell in rows[name].strip("|").split(" | ")]
            if field.is_required():
                assert cells[2] == "required", (title, name)
            else:
                default = field.get_default(call_default_factory=True)
                if isinstance(default, (bool, int, float, str)) or default is None:
                    assert yaml.safe_load(cells[2].strip("`")) == default, (title, name, cells[2])
            if typing.get_origin(field.annotation) is typing.Literal:
                assert all(f"`{value}`" in cells[1] for value in typing.get_args(field.annotation))
            if field.description:
                assert cells[3] == " ".join(field.description.split()).replace("|", "\\|")
    # Kinds get a table each, named by their tag; lists and mappings are marked in the path.
    assert "`data.source` — kind: csv | parquet" in tables and "`data.source` — kind: generator" in tables
    assert "`evaluation.gates[]`" in tables and "`data.features.<name>` — type: categorical" in tables


def test_docs_spec_reference_is_the_generated_reference():
    from keel.spec.reference import spec_reference

    on_disk = (ROOT / "docs" / "spec-reference.md").read_text(encoding="utf-8")
    assert on_disk == spec_reference(), ("docs/spec-reference.md is out of date: run "
                                         "`python run.py spec reference > docs/spec-reference.md`")


def _cli(*args):
    code = ("import sys, keel; from keel.cli.main import main; rc = main(sys.argv[1:]); "
            "heavy = [m for m in ('zenml', 'pandas', 'lightgbm') if m in sys.modules]; "
            "assert not heavy, heavy; sys.exit(rc)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)


def test_run_py_spec_reference_prints_it_without_heavy_imports():
    done = _cli("spec", "reference")
    assert done.returncode == 0, done.stderr
    from keel.spec.reference import spec_reference

    assert done.stdout == spec_reference()
    helped = _cli("--help")
    assert helped.returncode == 0
    assert re.search(r"^\s+init\s+write a starting spec", helped.stdout, re.M), helped.stdout
    assert re.search(r"^\s+spec\s+about the spec", helped.stdout, re.M), helped.stdout
    init_help = _cli("init", "--help")
    assert init_help.returncode == 0 and "--target" in init_help.stdout
