"""Real files: the reading options of pandas.read_csv in the spec (data source and labels file), Parquet as
a file, a directory of partitions or a glob, and messages that show what was found when columns are missing.

The files are written here and shaped unlike keel's credit generator: machine sensor readings with a
semicolon separator, decimal commas and a preamble; a census extract with no header line and `, `
separators (the UCI adult layout); partitioned Parquet of shipments."""

import numpy as np
import pandas as pd
import pytest

from keel.data.schema import validate_frame
from keel.data.sources import DataSourceError, describe_source, load_frame, source_stamp
from keel.monitoring.labels import LabelsError, read_labels
from keel.spec import SpecError, validate_spec
from keel.spec.monitoring import LabelsSpec


def _spec(source, features, target, **data):
    raw = {"problem": {"name": "files", "objective": "o", "business_metric": "b",
                       "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
           "data": {"source": source, "target": target, "features": features, **data}}
    return validate_spec(raw, "files.yaml")


# --- CSV reading options -------------------------------------------------------------------------

SENSORS = """\
Plant 7 export, generated 2025-03-02
units: temperature in degrees C, vibration in mm/s
machine;temperature;vibration;line;status
# night shift
M-001;71,5;3,25;A;ok
M-002;?;4,5;B;fault
M-003;68,25;?;A;ok
# the next machine's sensor was recalibrated
M-004;80,0;7,75;C;fault
M-005;69,5;2,5;B;ok
"""

SENSOR_FEATURES = {"temperature": {"type": "numeric", "min": -40, "max": 200, "nullable": True},
                   "vibration": {"type": "numeric", "min": 0, "max": 50, "nullable": True},
                   "line": {"type": "categorical", "categories": ["A", "B", "C"]}}
SENSOR_TARGET = {"column": "status", "positive": "fault", "negative": "ok"}


def test_a_semicolon_file_with_decimal_commas_a_preamble_comments_and_markers_is_read(tmp_path):
    path = tmp_path / "sensors.csv"
    path.write_text(SENSORS)
    spec = _spec({"kind": "csv", "path": str(path), "sep": ";", "decimal": ",", "skiprows": 2, "comment": "#",
                  "na_values": ["?"]}, SENSOR_FEATURES, SENSOR_TARGET, id_column="machine")
    frame = load_frame(spec.data)
    assert list(frame.columns) == ["machine", "temperature", "vibration", "line", "status"]
    assert frame["machine"].tolist() == ["M-001", "M-002", "M-003", "M-004", "M-005"]
    assert frame["temperature"].tolist()[0] == 71.5 and frame["temperature"].tolist()[2:] == [68.25, 80.0, 69.5]
    assert frame["temperature"].isna().tolist() == [False, True, False, False, False]
    assert frame["vibration"].isna().sum() == 1 and frame["vibration"].max() == 7.75
    assert frame["status"].tolist() == ["ok", "fault", "ok", "fault", "ok"]
    validated, report = validate_frame(frame, spec.data)
    assert report.passed, report.summary()
    assert validated["status"].tolist() == [0, 1, 0, 1, 0]


CENSUS = ("39, State-gov, Bachelors, Male, <=50K\n"
          "50, Self-emp-not-inc, Bachelors, Male, <=50K\n"
          "38, Private, HS-grad, Female, >50K\n"
          "53, ?, 11th, Male, >50K\n"
          "28, Private, Bachelors, Female, <=50K\n")
CENSUS_NAMES = ["age", "workclass", "education", "sex", "income"]
CENSUS_FEATURES = {"age": {"type": "integer", "min": 17, "max": 99},
                   "workclass": {"type": "categorical", "categories": ["State-gov", "Self-emp-not-inc", "Private"],
                                 "nullable": True},
                   "education": {"type": "categorical", "categories": ["Bachelors", "HS-grad", "11th"]},
                   "sex": {"type": "categorical", "categories": ["Female", "Male"]}}
CENSUS_TARGET = {"column": "income", "positive": ">50K", "negative": "<=50K"}


def test_a_header_less_file_with_initial_spaces_reads_with_names_and_skipinitialspace(tmp_path):
    path = tmp_path / "adult.data"
    path.write_text(CENSUS)
    spec = _spec({"kind": "csv", "path": str(path), "header": False, "names": CENSUS_NAMES,
                  "skipinitialspace": True, "na_values": ["?"]}, CENSUS_FEATURES, CENSUS_TARGET)
    frame = load_frame(spec.data)
    assert len(frame) == 5 and list(frame.columns) == CENSUS_NAMES  # the first line is data, not a header
    assert frame["sex"].tolist() == ["Male", "Male", "Female", "Male", "Female"]
    assert pd.isna(frame["workclass"].iloc[3])
    validated, report = validate_frame(frame, spec.data)
    assert report.passed, report.summary()
    assert validated["income"].tolist() == [0, 0, 1, 1, 0]


def test_names_that_do_not_match_the_fields_are_an_error_not_shifted_columns(tmp_path):
    """pandas takes surplus fields as the index (every column shifts) or fills missing names with NaN."""
    path = tmp_path / "adult.data"
    path.write_text(CENSUS)
    for names in (CENSUS_NAMES[1:], CENSUS_NAMES + ["capital_gain"]):
        features = {k: v for k, v in CENSUS_FEATURES.items() if k in names}
        spec = _spec({"kind": "csv", "path": str(path), "header": False, "names": names,
                      "skipinitialspace": True}, features, CENSUS_TARGET)
        with pytest.raises(DataSourceError) as raised:
            load_frame(spec.data)
        message = str(raised.value)
        assert str(path) in message and f"`names` gives {len(names)} column(s)" in message and "5 field(s)" in message


def test_lines_with_more_fields_than_columns_are_an_error_not_an_index(tmp_path):
    """pandas would take the first field of each line as the row index and shift every column by one."""
    path = tmp_path / "census.csv"
    path.write_text(",".join(CENSUS_NAMES) + "\n1,39,State-gov,Bachelors,Male,<=50K\n2,50,Private,HS-grad,Male,<=50K\n")
    spec = _spec({"kind": "csv", "path": str(path)}, CENSUS_FEATURES, CENSUS_TARGET)
    with pytest.raises(DataSourceError, match="more fields than there are columns"):
        load_frame(spec.data)


def test_a_file_that_is_not_csv_gets_a_one_line_message(tmp_path):
    """The reader's own text ends in a newline; a step's error shows only its last line (it was ')')."""
    path = tmp_path / "census.csv"
    path.write_bytes(bytes(range(256)) * 20)
    spec = _spec({"kind": "csv", "path": str(path)}, CENSUS_FEATURES, CENSUS_TARGET)
    with pytest.raises(DataSourceError) as raised:
        load_frame(spec.data)
    message = str(raised.value)
    assert message.startswith(f"{path}: cannot be read as csv") and "\n" not in message and message.endswith(")")


def test_a_header_less_file_read_with_a_header_is_detected_and_the_fix_suggested(tmp_path):
    path = tmp_path / "adult.data"
    path.write_text(CENSUS)
    spec = _spec({"kind": "csv", "path": str(path)}, CENSUS_FEATURES, CENSUS_TARGET)
    _, report = validate_frame(load_frame(spec.data), spec.data)
    summary = report.summary()
    assert not report.passed
    assert "'39'" in summary and "' State-gov'" in summary, summary  # the columns found, quoted
    assert "header: false" in summary and "names" in summary, summary


def test_missing_columns_show_the_columns_found_and_spaces_are_visible(tmp_path):
    path = tmp_path / "census.csv"
    path.write_text("age, workclass, education, sex, income\n" + CENSUS)
    spec = _spec({"kind": "csv", "path": str(path)}, CENSUS_FEATURES, CENSUS_TARGET)
    _, report = validate_frame(load_frame(spec.data), spec.data)
    summary = report.summary()
    assert "' workclass'" in summary and "' income'" in summary, summary
    assert "skipinitialspace: true" in summary, summary  # the names are there with a leading space


def test_examples_in_validation_messages_are_quoted(tmp_path):
    path = tmp_path / "census.csv"
    path.write_text(",".join(CENSUS_NAMES) + "\n" + CENSUS)  # the header is fine, the values keep their space
    spec = _spec({"kind": "csv", "path": str(path)}, CENSUS_FEATURES, CENSUS_TARGET)
    _, report = validate_frame(load_frame(spec.data), spec.data)
    summary = report.summary()
    assert "' Male'" in summary and "' Female'" in summary, summary
    assert "allowed: 'State-gov', 'Self-emp-not-inc', 'Private'" in summary, summary


def test_encodings_latin1_and_a_byte_order_mark(tmp_path):
    text = "région;ventes;résultat\nZürich;12,5;oui\nGenève;3,0;non\nZürich;7,25;non\n"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.encode("latin-1"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(text.encode("utf-8-sig"))
    features = {"région": {"type": "categorical", "categories": ["Genève", "Zürich"]},
                "ventes": {"type": "numeric", "min": 0}}
    target = {"column": "résultat", "positive": "oui", "negative": "non"}
    frames = []
    for path, encoding in ((latin, "latin-1"), (bom, "utf-8-sig"), (bom, "utf-8")):
        spec = _spec({"kind": "csv", "path": str(path), "sep": ";", "decimal": ",", "encoding": encoding},
                     features, target)
        frame = load_frame(spec.data)
        _, report = validate_frame(frame, spec.data)
        assert report.passed, (encoding, report.summary())
        frames.append(frame)
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])
    with pytest.raises(DataSourceError, match="latin.csv.*encoding"):
        load_frame(_spec({"kind": "csv", "path": str(latin), "sep": ";"}, features, target).data)


# --- reading options that cannot work together are refused by the spec --------------------------

REFUSED = {
    "header false without names": ({"header": False}, "names"),
    "repeated names": ({"header": False, "names": ["a", "b", "a"]}, "'a'"),
    "an empty name": ({"header": False, "names": ["a", " "]}, "empty"),
    "a two-character separator": ({"sep": "||"}, "one character"),
    "a tab written in single quotes": ({"sep": "\\t"}, "double quotes"),
    "decimal mark equal to the separator": ({"sep": ",", "decimal": ","}, "same character"),
    "comment equal to the separator": ({"sep": ";", "comment": ";"}, "same character"),
    "an unknown encoding": ({"encoding": "utf-9"}, "unknown text encoding"),
    "negative skiprows": ({"skiprows": -1}, "greater than or equal to 0"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_reading_options_that_cannot_work_are_refused_naming_the_key(case):
    options, expected = REFUSED[case]
    with pytest.raises(SpecError) as raised:
        _spec({"kind": "csv", "path": "x.csv", **options}, CENSUS_FEATURES, CENSUS_TARGET)
    message = str(raised.value)
    assert "files.yaml" in message and "  - data.source" in message and expected in message, message
    with pytest.raises(ValueError, match=expected):  # the labels file takes the same options
        LabelsSpec(source={"kind": "csv", "path": "labels.csv", **options})


def test_csv_options_are_refused_for_parquet():
    with pytest.raises(SpecError) as raised:
        _spec({"kind": "parquet", "path": "x.parquet", "sep": ";", "header": False, "names": ["a"]},
              CENSUS_FEATURES, CENSUS_TARGET)
    message = str(raised.value)
    assert "data.source" in message and "`sep`" in message and "`header`" in message and "parquet" in message
    assert _spec({"kind": "parquet", "path": "x.parquet"}, CENSUS_FEATURES, CENSUS_TARGET)  # the plain form


SALES = ("account,region,segment,amount,won\n"
         "a1,EU,None,10.5,yes\n"
         "a2,NA,retail,,no\n"
         "a3,,retail,7.25,yes\n"
         "a4,NA,None,?,no\n"
         "a5,APAC,retail,3.0,yes\n")
SALES_FEATURES = {"region": {"type": "categorical", "categories": ["EU", "NA", "APAC"], "nullable": True},
                  "segment": {"type": "categorical", "categories": ["None", "retail"]},
                  "amount": {"type": "numeric", "min": 0, "nullable": True}}
SALES_TARGET = {"column": "won", "positive": "yes", "negative": "no"}


def test_keep_default_na_false_keeps_na_and_none_as_categories_and_only_empty_cells_and_na_values_missing(tmp_path):
    """A region "NA" (North America) and a segment "None" are categories of this file: pandas reads both
    as missing by default, merged with the truly missing cells."""
    path = tmp_path / "sales.csv"
    path.write_text(SALES)
    source = {"kind": "csv", "path": str(path), "na_values": ["?"]}
    spec = _spec({**source, "keep_default_na": False}, SALES_FEATURES, SALES_TARGET, id_column="account")
    frame = load_frame(spec.data)
    assert frame["region"].fillna("(missing)").tolist() == ["EU", "NA", "(missing)", "NA", "APAC"]
    assert frame["segment"].tolist() == ["None", "retail", "retail", "None", "retail"]
    assert frame["amount"].isna().tolist() == [False, True, False, True, False]  # empty and "?" still missing
    validated, report = validate_frame(frame, spec.data)
    assert report.passed, report.summary()
    assert spec.data.source.given_options() == {"na_values": ["?"], "keep_default_na": False}  # batch inputs too

    default = load_frame(_spec(source, SALES_FEATURES, SALES_TARGET, id_column="account").data)
    assert default["region"].isna().tolist() == [False, True, True, True, False]
    assert default["segment"].isna().tolist() == [True, False, False, True, False]


def test_numbers_with_thousands_marks_are_read_as_numbers_with_thousands(tmp_path):
    """A spreadsheet export: "1,234.50" quoted beside the `,` separator; a European one: 1.234,5 with `;`."""
    features = {"income": {"type": "numeric", "min": 0}, "city": {"type": "categorical", "categories": ["a", "b"]}}
    target = {"column": "y", "positive": "yes", "negative": "no"}
    english = tmp_path / "english.csv"
    english.write_text('income,city,y\n"1,234.50",a,yes\n"12,000",b,no\n950,a,no\n"1,000,000.5",b,yes\n')
    frame = load_frame(_spec({"kind": "csv", "path": str(english), "thousands": ","}, features, target).data)
    assert frame["income"].tolist() == [1234.5, 12000.0, 950.0, 1000000.5]
    european = tmp_path / "european.csv"
    european.write_text("income;city;y\n1.234,50;a;yes\n12.000;b;no\n950;a;no\n")
    frame = load_frame(_spec({"kind": "csv", "path": str(european), "sep": ";", "decimal": ",", "thousands": "."},
                             features, target).data)
    assert frame["income"].tolist() == [1234.5, 12000.0, 950.0]
    validated, report = validate_frame(frame, _spec({"kind": "csv", "path": str(european)}, features, target).data)
    assert report.passed, report.summary()
    with pytest.raises(SpecError, match="`thousands` and `decimal` are the same character"):
        _spec({"kind": "csv", "path": "x.csv", "thousands": "."}, features, target)
    with pytest.raises(SpecError, match="`thousands` must be one character"):
        _spec({"kind": "csv", "path": "x.csv", "thousands": ",,"}, features, target)


def test_a_single_na_value_may_be_written_without_a_list():
    spec = _spec({"kind": "csv", "path": "x.csv", "na_values": "?"}, CENSUS_FEATURES, CENSUS_TARGET)
    assert spec.data.source.na_values == ["?"]


# --- Parquet: a file, a directory of partitions, a glob ------------------------------------------

def _shipments(rows=60):
    rng = np.random.default_rng(3)
    return pd.DataFrame({"shipment": [f"S{i:04d}" for i in range(rows)],
                         "weight_kg": rng.gamma(2.0, 30.0, rows).round(2),
                         "carrier": rng.choice(["rail", "road", "sea"], rows),
                         "late": rng.choice(["yes", "no"], rows),
                         "year": np.repeat([2023, 2024, 2025], rows // 3)})


SHIPMENT_FEATURES = {"weight_kg": {"type": "numeric", "min": 0},
                     "carrier": {"type": "categorical", "categories": ["rail", "road", "sea"]},
                     "year": {"type": "integer", "min": 2000, "max": 2100}}
SHIPMENT_TARGET = {"column": "late", "positive": "yes", "negative": "no"}


def _sorted(frame):
    frame = frame[["shipment", "weight_kg", "carrier", "late", "year"]]
    return frame.sort_values("shipment").reset_index(drop=True).astype({"year": "int64", "carrier": str})


def test_parquet_as_a_file_a_partitioned_directory_and_a_glob_gives_the_same_rows(tmp_path):
    frame = _shipments()
    frame.to_parquet(tmp_path / "one.parquet", index=False)
    frame.to_parquet(tmp_path / "by_year", partition_cols=["year"], index=False)  # year=2023/..., year=2024/...
    (tmp_path / "parts").mkdir()
    for number, start in enumerate(range(0, len(frame), 15)):
        frame.iloc[start:start + 15].to_parquet(tmp_path / "parts" / f"part-{number}.parquet", index=False)
    (tmp_path / "parts" / "README.txt").write_text("not data")
    read = {}
    for name, path in (("file", tmp_path / "one.parquet"), ("directory", tmp_path / "by_year"),
                       ("glob", tmp_path / "parts" / "part-*.parquet")):
        spec = _spec({"kind": "parquet", "path": str(path)}, SHIPMENT_FEATURES, SHIPMENT_TARGET,
                     id_column="shipment")
        loaded = load_frame(spec.data)
        _, report = validate_frame(loaded, spec.data)
        assert report.passed, (name, report.summary())
        read[name] = _sorted(loaded)
    pd.testing.assert_frame_equal(read["directory"], read["file"])
    pd.testing.assert_frame_equal(read["glob"], read["file"])


def test_parquet_glob_and_directory_errors_and_cache_stamps(tmp_path):
    (tmp_path / "parts").mkdir()
    empty = _spec({"kind": "parquet", "path": str(tmp_path / "parts" / "*.parquet")}, SHIPMENT_FEATURES,
                  SHIPMENT_TARGET)
    with pytest.raises(DataSourceError, match="no file matches"):
        load_frame(empty.data)
    with pytest.raises(DataSourceError, match="no parquet file"):
        load_frame(_spec({"kind": "parquet", "path": str(tmp_path / "parts")}, SHIPMENT_FEATURES,
                         SHIPMENT_TARGET).data)
    with pytest.raises(DataSourceError, match="a directory"):
        load_frame(_spec({"kind": "csv", "path": str(tmp_path / "parts")}, SHIPMENT_FEATURES,
                         SHIPMENT_TARGET).data)
    _shipments().to_parquet(tmp_path / "parts" / "part-0.parquet", index=False)
    before = source_stamp(empty.data)
    _shipments(30).to_parquet(tmp_path / "parts" / "part-1.parquet", index=False)
    assert source_stamp(empty.data) != before  # a new partition is new data


def test_the_recorded_source_names_the_reading_options(tmp_path):
    spec = _spec({"kind": "csv", "path": str(tmp_path / "x.csv"), "sep": ";", "na_values": ["?"]},
                 CENSUS_FEATURES, CENSUS_TARGET)
    described = describe_source(spec.data)
    assert described.startswith("csv:") and "sep=';'" in described and "na_values=['?']" in described
    plain = _spec({"kind": "csv", "path": str(tmp_path / "x.csv")}, CENSUS_FEATURES, CENSUS_TARGET)
    assert describe_source(plain.data) == f"csv:{(tmp_path / 'x.csv').resolve()}"  # as recorded before


# --- the labels file -----------------------------------------------------------------------------

def _labels(tmp_path, text, **options):
    path = tmp_path / "labels.csv"
    path.write_bytes(text.encode(options.pop("file_encoding", "utf-8")))
    spec = {key: options.pop(key) for key in ("strip_suffix", "label_map", "id_column", "label_column",
                                              "time_column") if key in options}
    return LabelsSpec(source={"kind": "csv", "path": path, **options}, **spec)


def test_the_labels_file_takes_the_same_options_and_keeps_ids_as_text(tmp_path):
    plain = read_labels(_labels(tmp_path, "entity_id,label,time\n007,>50K,2026-01-06\n"
                                          "NA,<=50K,2026-01-06\n012,,2026-01-07\n"), ">50K", "<=50K")
    messy = read_labels(_labels(tmp_path, "exported by the census office\n"
                                          "# id; outcome; known\n"
                                          "007; >50K; 2026-01-06\n"
                                          "NA; <=50K; 2026-01-06\n"
                                          "012; ?; 2026-01-07\n",
                                sep=";", header=False, names=["entity_id", "label", "time"], skiprows=1,
                                comment="#", skipinitialspace=True, na_values=["?"]), ">50K", "<=50K")
    pd.testing.assert_frame_equal(messy, plain)
    assert plain["entity_id"].tolist() == ["007", "NA", "012"]  # leading zeros kept, NA is an id
    assert plain["label"].tolist()[:2] == [1, 0] and pd.isna(plain["label"].iloc[2])


def test_labels_with_spaces_after_the_separator_and_a_foreign_encoding(tmp_path):
    labels = read_labels(_labels(tmp_path, "entity_id, label, time\nå-1, 1, 2026-01-06\nå-2, ?, 2026-01-06\n",
                                 skipinitialspace=True, encoding="latin-1", file_encoding="latin-1",
                                 na_values=["?"]))
    assert labels["entity_id"].tolist() == ["å-1", "å-2"]
    assert labels["label"].iloc[0] == 1 and pd.isna(labels["label"].iloc[1])
    assert pd.isna(labels["label_value"].iloc[1])  # `?` is declared missing: an empty label, not a value


def test_label_suffixes_are_stripped_only_when_declared(tmp_path):
    text = "entity_id,label,time\na,>50K.,2026-01-06\nb,<=50K.,2026-01-06\nc,>50K,2026-01-06\n"
    as_is = read_labels(_labels(tmp_path, text), ">50K", "<=50K")
    assert as_is["label"].isna().tolist() == [True, True, False]  # no hidden normalisation
    stripped = read_labels(_labels(tmp_path, text, strip_suffix="."), ">50K", "<=50K")
    assert stripped["label"].tolist() == [1, 0, 1]
    assert stripped["label_value"].tolist() == [">50K.", "<=50K.", ">50K"]  # what the file holds, for reports
    mapped = read_labels(_labels(tmp_path, "entity_id,label,time\na,Y,2026-01-06\nb,N,2026-01-06\n",
                                 label_map={"Y": "1", "N": 0}), 1, 0)
    assert mapped["label"].tolist() == [1, 0]


def test_a_header_less_labels_file_read_with_a_header_is_detected(tmp_path):
    spec = _labels(tmp_path, "u-1,1,2026-01-06\nu-2,0,2026-01-07\n")
    with pytest.raises(LabelsError) as raised:
        read_labels(spec)
    message = str(raised.value)
    assert "monitoring.labels.id_column" in message and "'u-1'" in message and "'2026-01-06'" in message
    assert "header: false" in message and "names" in message


# --- the time column ----------------------------------------------------------------------------------

SIGNUPS = "member,visits,signup,churned\nA1,3,13/01/2023 05:00,yes\nA2,1,02/01/2023 07:30,no\nA3,4,,no\n"


def _signup_spec(path, **data):
    return _spec({"kind": "csv", "path": str(path)}, {"visits": {"type": "integer", "min": 0}},
                 {"column": "churned", "positive": "yes", "negative": "no"}, id_column="member",
                 time_column="signup", **data)


def test_a_time_column_is_read_by_its_declared_format_and_never_guessed(tmp_path):
    """13/01/2023 and 02/01/2023: day first, declared. Undeclared, the text is refused in words (it used to
    become missing values, or 2 January read as 1 February when no day was above 12)."""
    path = tmp_path / "signups.csv"
    path.write_text(SIGNUPS)
    frame = load_frame(_signup_spec(path, time_format="%d/%m/%Y %H:%M").data)
    assert frame["signup"].iloc[:2].tolist() == [pd.Timestamp("2023-01-13 05:00"), pd.Timestamp("2023-01-02 07:30")]
    assert pd.isna(frame["signup"].iloc[2])  # an empty cell stays missing
    with pytest.raises(DataSourceError, match=r"column 'signup' \(data.time_column\): 2 value\(s\) are not ISO 8601 "
                                              r"times: '13/01/2023 05:00', '02/01/2023 07:30'.*data.time_format"):
        load_frame(_signup_spec(path).data)
    path.write_text(SIGNUPS.replace("02/01/2023 07:30", "not recorded"))
    with pytest.raises(DataSourceError, match=r"1 value\(s\) are not times of the format '%d/%m/%Y %H:%M' "
                                              r"\(data.time_format\): 'not recorded'"):
        load_frame(_signup_spec(path, time_format="%d/%m/%Y %H:%M").data)
    iso = tmp_path / "iso.csv"
    iso.write_text(SIGNUPS.replace("13/01/2023 05:00", "2023-01-13T05:00:00").replace("02/01/2023 07:30", "2023-01-02"))
    assert load_frame(_signup_spec(iso).data)["signup"].iloc[1] == pd.Timestamp("2023-01-02")
    with pytest.raises(SpecError, match="time_format is declared but time_column is not"):
        _spec({"kind": "csv", "path": str(path)}, {"visits": {"type": "integer"}},
              {"column": "churned", "positive": "yes", "negative": "no"}, time_format="%d/%m/%Y")


def test_text_times_from_parquet_and_sql_are_read_as_the_csv_ones_never_guessed(tmp_path):
    """The same day-first text in a Parquet file and an SQLite table: refused without data.time_format
    (it used to be guessed by the schema's coercion), read day first with it; Parquet timestamps as they are."""
    import sqlite3

    rows = pd.DataFrame({"member": ["A1", "A2"], "visits": [3, 1], "signup": ["13/01/2023 05:00", "02/01/2023 07:30"],
                         "churned": ["yes", "no"]})
    rows.to_parquet(tmp_path / "signups.parquet", index=False)
    with sqlite3.connect(tmp_path / "signups.db") as connection:
        rows.to_sql("signups", connection, index=False)
    day_first = [pd.Timestamp("2023-01-13 05:00"), pd.Timestamp("2023-01-02 07:30")]

    def spec(source, **data):
        return _spec(source, {"visits": {"type": "integer", "min": 0}},
                     {"column": "churned", "positive": "yes", "negative": "no"}, id_column="member",
                     time_column="signup", **data).data

    for source in ({"kind": "parquet", "path": str(tmp_path / "signups.parquet")},
                   {"kind": "sql", "url": f"sqlite:///{tmp_path / 'signups.db'}", "query": "SELECT * FROM signups"}):
        with pytest.raises(DataSourceError, match=r"column 'signup' \(data.time_column\): 2 value\(s\) are not ISO"):
            load_frame(spec(source))
        assert load_frame(spec(source, time_format="%d/%m/%Y %H:%M"))["signup"].tolist() == day_first, source
    rows.assign(signup=day_first).to_parquet(tmp_path / "stamped.parquet", index=False)
    assert load_frame(spec({"kind": "parquet", "path": str(tmp_path / "stamped.parquet")}))["signup"].tolist() \
        == day_first


def test_a_time_column_of_numbers_is_refused_not_read_as_nanoseconds(tmp_path):
    """Unix seconds (1704067200) became 1970-01-01 00:00:01.704: every row in the first two seconds of
    1970, and a time split in file order."""
    path = tmp_path / "signups.csv"
    path.write_text("member,visits,signup,churned\nA1,3,1704067200,yes\nA2,1,1704153600,no\nA3,4,1704240000,no\n")
    with pytest.raises(DataSourceError, match=r"column 'signup' \(data.time_column\): holds numbers \(e.g. "
                                              r"1704067200, .*keel does not guess their unit"):
        load_frame(_signup_spec(path).data)
