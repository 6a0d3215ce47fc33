"""`run.py init --data FILE --target COLUMN`: a starting spec from differently shaped files (written here,
unlike keel's credit data) that loads, validates on the command line and accepts the very file it was
written from; what only a person can decide is left to confirm."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from keel.data.schema import validate_frame
from keel.data.sources import load_frame
from keel.spec import load_spec
from tests.conftest import ROOT


def _run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def _clinic(path, rows=240):
    """Hospital visits: `;` separated, decimal commas, a byte-order mark, a text target, an id, dates,
    missing values (empty and `?`), free text."""
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({
        "visit_id": [f"V{i:05d}" for i in range(rows)],
        "visit_date": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
        "age": rng.integers(18, 90, rows),
        "weight_kg": rng.normal(75, 12, rows).round(1),
        "ward": rng.choice(["cardio", "onco", "neuro"], rows),
        "sex": rng.choice(["F", "M"], rows),
        "notes": [f"seen by doctor {i}" for i in range(rows)],
        "readmitted": rng.choice(["yes", "no"], rows, p=[0.3, 0.7]),
    })
    frame.loc[::7, "weight_kg"] = np.nan
    frame.loc[::11, "ward"] = np.nan
    frame.loc[5::13, "ward"] = "?"  # another spelling of "not recorded"
    frame.to_csv(path, sep=";", decimal=",", index=False, encoding="utf-8-sig")
    return frame


def _turbines(path, rows=200):
    """Wind-turbine faults: no header line, `, ` separators, `?` for a missing reading, a 0/1 target."""
    rng = np.random.default_rng(5)
    lines = []
    for i in range(rows):
        speed = "?" if i % 9 == 0 else f"{rng.uniform(2, 25):.2f}"
        lines.append(f"{rng.integers(0, 40)}, {speed}, {rng.choice(['north', 'ridge', 'coast'])}, "
                     f"{int(rng.random() < 0.2)}")
    path.write_text("\n".join(lines) + "\n")


def _shipments(path, rows=150):
    """Parquet: booleans, a 1/2 target, an integer id without an id-like name kept as a feature."""
    rng = np.random.default_rng(2)
    pd.DataFrame({"parcel": [f"P-{i}" for i in range(rows)],
                  "fragile": rng.random(rows) < 0.3,
                  "distance_km": rng.gamma(2.0, 200.0, rows),
                  "stops": rng.integers(0, 6, rows),
                  "status": rng.choice([1, 2], rows, p=[0.75, 0.25])}).to_parquet(path, index=False)


def _validates_its_own_file(spec_path):
    spec = load_spec(spec_path)
    _, report = validate_frame(load_frame(spec.data), spec.data)
    assert report.passed, report.summary()
    return spec


def test_init_writes_a_spec_that_validates_and_accepts_its_file(tmp_path):
    frame = _clinic(tmp_path / "clinic visits.csv")
    out = tmp_path / "specs" / "clinic.yaml"
    done = _run("init", "--data", tmp_path / "clinic visits.csv", "--target", "readmitted", "--out", out)
    assert done.returncode == 0, done.stderr
    assert _run("validate", "--config", out).returncode == 0
    spec = _validates_its_own_file(out)

    source = spec.data.source
    assert (source.kind, source.sep, source.decimal, source.na_values) == ("csv", ";", ",", ["?"])
    assert spec.problem.name == "clinic_visits"
    assert spec.data.id_column == "visit_id" and spec.data.time_column == "visit_date"
    features = spec.data.features
    assert set(features) == {"age", "weight_kg", "ward", "sex"}  # the free text is left out, and says so
    assert "notes" in out.read_text() and "notes" in done.stdout
    assert features["age"].type == "integer" and not features["age"].nullable
    assert (features["age"].min, features["age"].max) == (frame["age"].min(), frame["age"].max())
    assert features["weight_kg"].type == "numeric" and features["weight_kg"].nullable
    assert features["weight_kg"].min == frame["weight_kg"].min() and features["weight_kg"].max == frame["weight_kg"].max()
    assert features["ward"].categories == ["cardio", "neuro", "onco"] and features["ward"].nullable
    target = spec.data.target
    assert (target.column, target.positive, target.negative) == ("readmitted", "yes", "no")  # the rarer one
    # The success criterion is also a gate: without one, evaluate would promote any version.
    criteria = [(c.metric, c.min) for c in spec.problem.success_criteria]
    assert [(g.metric, g.min) for g in spec.evaluation.gates] == criteria


def test_init_leaves_sensitive_attributes_and_favourable_to_confirm(tmp_path):
    from keel.data.infer import infer_spec

    _clinic(tmp_path / "clinic.csv")
    inferred = infer_spec(tmp_path / "clinic.csv", "readmitted")
    raw = yaml.safe_load(inferred.spec_text)
    assert "sensitive_attributes" not in raw["data"] and "favourable" not in raw["data"]["target"]
    assert set(inferred.sensitive) == {"age", "sex"}
    text = inferred.spec_text
    assert "#   sex: {categories: [F, M]}" in text and "favourable" in text and "CONFIRM" in text
    # Uncommenting the candidates without `favourable` is refused with the explanation, with it it loads.
    confirmed = text.replace("  # sensitive_attributes:", "  sensitive_attributes:").replace(
        "  #   sex:", "    sex:")
    path = tmp_path / "confirmed.yaml"
    path.write_text(confirmed)
    with pytest.raises(Exception, match="target.favourable is required"):
        load_spec(path)
    raw = yaml.safe_load(confirmed)
    raw["data"]["target"]["favourable"] = "negative"
    path.write_text(yaml.safe_dump(raw))
    assert list(load_spec(path).data.sensitive_attributes) == ["sex"]


def test_init_suggests_a_persons_age_not_a_cards_and_keeps_a_repeating_id_out_of_the_features(tmp_path):
    """helper-47/48: `card_age_days` was offered as a sensitive attribute (the substring "age"); a
    `patient_id` whose duplicate rows repeat it became a model feature, with no word."""
    from keel.data.infer import infer_spec

    rng = np.random.default_rng(4)
    rows = pd.DataFrame({"patient_id": np.arange(1000, 1300), "card_age_days": rng.integers(0, 900, 300),
                         "customer_age_years": rng.integers(18, 90, 300), "card_age_sex": rng.choice(["F", "M"], 300),
                         "amount": rng.gamma(2.0, 50.0, 300), "fraud": rng.choice(["yes", "no"], 300)})
    rows = pd.concat([rows, rows.head(20)], ignore_index=True)  # 20 duplicated rows
    rows.to_csv(tmp_path / "cards.csv", index=False)
    inferred = infer_spec(tmp_path / "cards.csv", "fraud")
    assert set(inferred.sensitive) == {"customer_age_years", "card_age_sex"}
    assert "patient_id" not in yaml.safe_load(inferred.spec_text)["data"]["features"]
    assert "20 value(s) repeat" in inferred.left_out["patient_id"]
    assert any("'patient_id' is named like an id" in warning for warning in inferred.warnings)


def test_init_detects_a_header_less_file_with_spaces_and_markers(tmp_path):
    from keel.data.infer import infer_spec

    _turbines(tmp_path / "turbines.data")
    inferred = infer_spec(tmp_path / "turbines.data", "column_4")
    assert inferred.reading == {"header": False, "names": ["column_1", "column_2", "column_3", "column_4"],
                                "na_values": ["?"], "skipinitialspace": True}
    out = tmp_path / "turbines.yaml"
    out.write_text(inferred.spec_text)
    spec = _validates_its_own_file(out)
    assert spec.data.features["column_2"].type == "numeric" and spec.data.features["column_2"].nullable
    assert spec.data.features["column_3"].categories == ["coast", "north", "ridge"]  # no leading spaces
    assert (spec.data.target.positive, spec.data.target.negative) == (1, 0)
    # Named columns given as reading options, as on the command line.
    named = infer_spec(tmp_path / "turbines.data", "fault",
                       {"header": False, "names": ["age_months", "wind", "site", "fault"]})
    assert {"age_months", "wind", "site"} == set(yaml.safe_load(named.spec_text)["data"]["features"])


def test_init_on_parquet_with_booleans_and_a_one_two_target(tmp_path):
    _shipments(tmp_path / "shipments.parquet")
    out = tmp_path / "shipments.yaml"
    done = _run("init", "--data", tmp_path / "shipments.parquet", "--target", "status", "--out", out)
    assert done.returncode == 0, done.stderr
    assert _run("validate", "--config", out).returncode == 0
    spec = _validates_its_own_file(out)
    assert spec.data.source.kind == "parquet" and spec.data.id_column == "parcel"
    assert spec.data.features["fragile"].categories == ["False", "True"]
    assert spec.data.features["stops"].type == "integer" and spec.data.features["distance_km"].type == "numeric"
    assert (spec.data.target.positive, spec.data.target.negative) == (2, 1)  # the rarer outcome, to confirm


def test_init_writes_awkward_names_and_values_so_that_yaml_reads_them_back(tmp_path):
    """`yes`/`no` are booleans in YAML, `007` a number, `a: b` a mapping, a quoted newline ends a line."""
    path = tmp_path / "survey.csv"
    answers = ["yes", "no", "007", "a: b", "multi\nline", "#hash"] * 5
    pd.DataFrame({"answer's kind: free": answers, "score": range(30),
                  "passed": [1, 0] * 15}).to_csv(path, index=False)
    out = tmp_path / "survey.yaml"
    out.write_text(infer_spec_text(path, "passed"))
    spec = _validates_its_own_file(out)
    assert sorted(spec.data.features["answer's kind: free"].categories) == sorted(set(answers))
    line = next(line for line in out.read_text().splitlines() if "kind: free" in line)
    assert "multi\\nline" in line and line.rstrip().endswith("}")  # one line per feature, for editing by hand


def infer_spec_text(path, target):
    from keel.data.infer import infer_spec

    return infer_spec(path, target).spec_text


def test_init_refuses_what_it_cannot_use_with_a_clear_message(tmp_path):
    _clinic(tmp_path / "clinic.csv")
    missing = _run("init", "--data", tmp_path / "absent.csv", "--target", "y", "--out", tmp_path / "a.yaml")
    assert missing.returncode == 2 and "absent.csv: no such data file" in missing.stderr
    no_target = _run("init", "--data", tmp_path / "clinic.csv", "--target", "Readmitted", "--out", tmp_path / "b.yaml")
    assert no_target.returncode == 2
    assert "'visit_id'" in no_target.stderr and "did you mean 'readmitted'" in no_target.stderr
    three = tmp_path / "three.csv"
    three.write_text("x,grade\n1,a\n2,b\n3,c\n4,a\n")
    many = _run("init", "--data", three, "--target", "grade", "--out", tmp_path / "c.yaml")
    assert many.returncode == 2 and "3 distinct value(s)" in many.stderr and "two classes" in many.stderr
    bad_option = _run("init", "--data", tmp_path / "clinic.csv", "--target", "readmitted", "--read", "sep=;;",
                      "--out", tmp_path / "d.yaml")
    assert bad_option.returncode == 2 and "one character" in bad_option.stderr
    unknown_option = _run("init", "--data", tmp_path / "clinic.csv", "--target", "readmitted", "--read", "delimiter=;",
                          "--out", tmp_path / "e.yaml")
    assert unknown_option.returncode == 2 and "not a reading option" in unknown_option.stderr
    kept = tmp_path / "kept.yaml"
    kept.write_text("mine")
    refused = _run("init", "--data", tmp_path / "clinic.csv", "--target", "readmitted", "--out", kept)
    assert refused.returncode == 2 and "exists" in refused.stderr and kept.read_text() == "mine"
    for absent in ("a.yaml", "b.yaml", "c.yaml", "d.yaml", "e.yaml"):
        assert not (tmp_path / absent).exists()
    from keel.data.infer import InitError, infer_spec

    with pytest.raises(InitError, match="no such data file"):
        infer_spec(tmp_path / "nothing.csv", "y")


def test_init_writes_the_time_format_it_can_tell_and_leaves_out_dates_it_cannot(tmp_path):
    """Day-first dates with a day above 12: the format is written and the spec reads its own file. With
    no day above 12 they read day-first or month-first alike: left out, with both formats named."""
    from keel.data.infer import infer_spec

    rng = np.random.default_rng(5)
    times = pd.date_range("2023-01-01", periods=120, freq="D")
    frame = pd.DataFrame({"member": [f"M{i}" for i in range(120)], "visits": rng.integers(0, 9, 120),
                          "signup": times.strftime("%d/%m/%Y %H:%M"),
                          "churned": rng.choice(["yes", "no"], 120)})
    frame.to_csv(tmp_path / "clear.csv", index=False)
    clear = infer_spec(tmp_path / "clear.csv", "churned")
    assert (clear.time_column, clear.time_format) == ("signup", "%d/%m/%Y %H:%M")
    (tmp_path / "clear.yaml").write_text(clear.spec_text)
    spec = _validates_its_own_file(tmp_path / "clear.yaml")
    assert load_frame(spec.data)["signup"].tolist() == list(times)
    frame.assign(signup=times[:12].repeat(10).strftime("%d/%m/%Y")).to_csv(tmp_path / "unclear.csv", index=False)
    unclear = infer_spec(tmp_path / "unclear.csv", "churned")
    assert unclear.time_column is None and "'%d/%m/%Y' or as '%m/%d/%Y'" in unclear.left_out["signup"]


def test_init_names_the_values_that_keep_a_date_column_from_being_the_time_column(tmp_path):
    """helper-61: one unreadable date among 120 left the column out as "text with 119 distinct values (not a
    category)"; it is left out naming the values that do not read as dates, and no time column is chosen."""
    from keel.data.infer import infer_spec

    rng = np.random.default_rng(6)
    signup = pd.date_range("2023-01-01", periods=120, freq="D").strftime("%Y-%m-%d").tolist()
    signup[7], signup[50] = "unknown", "2023-02-30"
    pd.DataFrame({"member": [f"M{i}" for i in range(120)], "visits": rng.integers(0, 9, 120), "signup": signup,
                  "churned": rng.choice(["yes", "no"], 120)}).to_csv(tmp_path / "claims.csv", index=False)
    inferred = infer_spec(tmp_path / "claims.csv", "churned")
    assert inferred.time_column is None and "signup" not in inferred.features
    assert inferred.left_out["signup"] == ("dates, but 2 value(s) do not read as one ('unknown', '2023-02-30'): "
                                           "correct or remove those rows to use it as the time column")


def _sales(path, missing_amount: str, rows=300):
    """Sales by region: "NA" is North America beside EU and APAC; `amount` has missing values spelt
    `missing_amount`."""
    rng = np.random.default_rng(4)
    amount = rng.gamma(2.0, 50.0, rows).round(2).astype(str)
    amount[::17] = missing_amount
    pd.DataFrame({"region": rng.choice(["EU", "NA", "APAC"], rows), "amount": amount,
                  "won": rng.choice(["yes", "no"], rows)}).to_csv(path, index=False)


def test_init_names_a_text_column_whose_na_may_be_a_category_and_keeps_it_when_told(tmp_path):
    """pandas reads "NA" as missing by default; only a person knows the region's NA is a place."""
    from keel.data.infer import infer_spec

    path = tmp_path / "sales.csv"
    _sales(path, missing_amount="")
    inferred = infer_spec(path, "won")
    assert len(inferred.warnings) == 1, inferred.warnings
    warning = inferred.warnings[0]
    assert "'region'" in warning and "'NA' (" in warning and "keep_default_na: false" in warning
    assert "nullable: true" in next(line for line in inferred.spec_text.splitlines() if "region:" in line)

    out = tmp_path / "sales.yaml"
    result = _run("init", "--data", path, "--target", "won", "--out", out, "--read", "keep_default_na=false")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout, result.stdout
    spec = _validates_its_own_file(out)
    assert spec.data.source.keep_default_na is False
    assert sorted(spec.data.features["region"].categories) == ["APAC", "EU", "NA"]
    assert not spec.data.features["region"].nullable
    assert spec.data.features["amount"].type == "numeric" and spec.data.features["amount"].nullable


def test_init_warns_when_a_marker_of_missing_numbers_is_also_a_category(tmp_path):
    """With pandas' spellings not read as missing, `amount`'s "NA" is found as its marker of missing; as
    na_values applies to every column, the region "NA" is read as missing too: said, not silent."""
    from keel.data.infer import infer_spec

    path = tmp_path / "sales.csv"
    _sales(path, missing_amount="NA")
    inferred = infer_spec(path, "won", {"keep_default_na": False})
    assert inferred.reading["na_values"] == ["NA"]
    assert len(inferred.warnings) == 1 and "'region'" in inferred.warnings[0], inferred.warnings
    assert "na_values" in inferred.warnings[0]


def test_init_detects_numbers_grouped_by_thousands_and_reads_them_as_numbers(tmp_path):
    """An export where amounts are written "12,345.67" (quoted, as `,` is also the separator): without
    `thousands` the column is text of many values and would be left out; a postcode with a space stays text."""
    rng = np.random.default_rng(6)
    rows = 200
    amounts = rng.gamma(2.0, 20000.0, rows).round(2)
    path = tmp_path / "loans.csv"
    pd.DataFrame({"amount": [f"{a:,.2f}" for a in amounts],
                  "postcode": rng.choice(["75 001", "13 002", "69 003"], rows),
                  "repaid": rng.choice(["yes", "no"], rows)}).to_csv(path, index=False)
    out = tmp_path / "loans.yaml"
    result = _run("init", "--data", path, "--target", "repaid", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "thousands=','" in result.stdout
    spec = _validates_its_own_file(out)
    amount = spec.data.features["amount"]
    assert amount.type == "numeric" and amount.min == amounts.min() and amount.max == amounts.max()
    assert spec.data.features["postcode"].categories == ["13 002", "69 003", "75 001"]


def test_distinct_dates_are_the_time_column_not_the_id_in_csv_and_parquet(tmp_path):
    """One row a day: the dates are all distinct, as an id's values are. A Parquet timestamp column and
    ISO 8601 text in Parquet are times too; other text dates in Parquet cannot be given a format."""
    from keel.data.infer import infer_spec

    rng = np.random.default_rng(9)
    rows = 200
    days = pd.date_range("2024-01-01", periods=rows, freq="D")
    frame = pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "sales": rng.gamma(2.0, 10.0, rows),
                          "busy": rng.choice(["yes", "no"], rows)})
    frame.to_csv(tmp_path / "shop.csv", index=False)
    inferred = infer_spec(tmp_path / "shop.csv", "busy")
    assert (inferred.time_column, inferred.id_column) == ("day", None)

    stamped = frame.assign(day=days, noted=days.strftime("%Y-%m-%d"), local=days.strftime("%d/%m/%Y"))
    stamped.to_parquet(tmp_path / "shop.parquet", index=False)
    inferred = infer_spec(tmp_path / "shop.parquet", "busy")
    assert (inferred.time_column, inferred.id_column) == ("day", None)
    assert "time column" in inferred.left_out["noted"] and "ISO 8601" in inferred.left_out["local"]
    out = tmp_path / "shop.yaml"
    out.write_text(inferred.spec_text)
    assert _validates_its_own_file(out).data.time_column == "day"
