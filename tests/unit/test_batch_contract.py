"""The batch contract (keel.batch.contract) judges rows as the online payload contract does
(keel.serving.payload.parse_records): the same rows accepted and rejected, for the same fields, in
the service's words; and where a table differs from a JSON request, it says so."""

import math

import numpy as np
import pandas as pd
import pytest

from keel.batch.contract import MissingColumnsError, check_chunk
from keel.serving.payload import PayloadError, parse_records, record_model
from keel.spec.data import DataSpec

# Shaped unlike the credit data: text labels, categories with spaces, a nullable category, bounds
# that are not whole numbers, an integer feature, a sensitive attribute kept out of the model.
DATA = DataSpec.model_validate({
    "source": {"kind": "csv", "path": "unused.csv"},
    "target": {"column": "outcome", "positive": "bad", "negative": "good", "favourable": "negative"},
    "id_column": "customer",
    "features": {
        "amount": {"type": "numeric", "min": 0.5, "max": 1000.5},
        "ratio": {"type": "numeric", "nullable": True},
        "visits": {"type": "integer", "min": 1, "max": 12},
        "segment": {"type": "categorical", "categories": ["Small firm", "large firm", "N/A-like"]},
        "channel": {"type": "categorical", "categories": ["web", "branch"], "nullable": True},
        "gender": {"type": "categorical", "categories": ["f", "m", "x"]},
    },
    "sensitive_attributes": {"gender": {"categories": ["f", "m", "x"]}},
})
FEATURES = ["amount", "ratio", "visits", "segment", "channel"]
GOOD = {"customer": "c-1", "amount": 10.0, "ratio": 0.25, "visits": 3, "segment": "Small firm", "channel": "web"}

# (changes to GOOD) for rows the two contracts must judge alike.
CASES = [
    {},
    {"ratio": None},                       # nullable number missing
    {"channel": None},                     # nullable category missing
    {"amount": 0.5}, {"amount": 1000.5},   # on the bounds
    {"visits": 12.0},                      # a whole float is a whole number
    {"customer": None},                    # no id
    {"customer": 17},                      # an integer id
    {"amount": 0.49},                      # below
    {"amount": 2000},                      # above
    {"amount": None},                      # missing, not nullable
    {"amount": "10"},                      # text for a number
    {"amount": True},                      # a boolean is not a number
    {"amount": math.inf}, {"ratio": -math.inf},
    {"visits": 2.5},                       # not whole
    {"visits": 0.5},                       # not whole and below: the whole-number problem, as online
    {"visits": 13},
    {"segment": "small firm"},             # case matters
    {"segment": " Small firm"},            # spaces matter
    {"segment": None},
    {"channel": "phone"},
    {"customer": "x" * 129},               # too long an id
    {"amount": -1, "segment": "tiny"},     # two problems
    {"amount": "abc", "visits": 40, "channel": "mail"},
]


def _online(row: dict):
    """The service's verdict: None (accepted) or {field: problem}."""
    model = record_model(DATA)
    body = {k: v for k, v in row.items() if k != "customer"}
    if row.get("customer") is not None:
        body["entity_id"] = row["customer"]
    try:
        parse_records(body, model)
    except PayloadError as error:
        return {e["field"].replace("entity_id", "customer"): e["problem"] for e in error.errors}
    return None


def _batch_verdicts(rows):
    frame = pd.DataFrame(rows, dtype=object)
    good, rejects = check_chunk(frame, DATA, first_row=100)
    verdicts = {}
    for record in rejects.to_dict(orient="records"):
        fields = record["field"].split(", ")
        if len(fields) == 1:
            verdicts[record["row"] - 100] = {fields[0]: record["problem"]}
        else:
            verdicts[record["row"] - 100] = dict(part.split(": ", 1) for part in record["problem"].split("; "))
    return good, rejects, verdicts


def test_the_same_rows_are_accepted_and_rejected_in_the_same_words_as_online():
    rows = [{**GOOD, **case} for case in CASES]
    good, rejects, verdicts = _batch_verdicts(rows)
    for position, row in enumerate(rows):
        assert verdicts.get(position) == _online(row), (position, CASES[position])
    assert list(good.index) == [100 + p for p in range(len(rows)) if _online(rows[p]) is None]
    assert len(rejects) == sum(_online(row) is not None for row in rows)
    several = rejects[rejects["row"] == 100 + CASES.index({"amount": -1, "segment": "tiny"})].iloc[0]
    assert several["field"] == "amount, segment"
    assert several["found"] == "amount=-1; segment=tiny"


def test_typed_columns_are_judged_as_the_same_values_sent_as_json():
    """A Parquet-like frame (float64 with NaN, int64, text) gives the verdicts of the object frame."""
    rows = [{**GOOD, **case} for case in CASES if all(
        not isinstance(v, (str, bool)) and v is not None for k, v in case.items() if k in ("amount", "visits"))]
    typed = pd.DataFrame(rows).astype({"amount": "float64", "visits": "float64", "ratio": "float64"})
    _, _, expected = _batch_verdicts(rows)
    good, rejects = check_chunk(typed, DATA, 0)
    assert set(rejects["row"]) == set(expected) and len(expected) >= 4
    assert dict(zip(rejects["row"], rejects["problem"])) == {
        row: "; ".join(f"{k}: {v}" for k, v in problems.items()) if len(problems) > 1 else next(iter(problems.values()))
        for row, problems in expected.items()}
    assert good["amount"].dtype == np.float64 and good["segment"].map(type).eq(str).all()


def test_good_rows_are_converted_as_the_model_reads_them_and_keep_their_input_row_numbers():
    rows = [GOOD, {**GOOD, "amount": -5}, {**GOOD, "ratio": None, "channel": None, "visits": 4}]
    good, rejects = check_chunk(pd.DataFrame(rows, dtype=object), DATA, first_row=10)
    assert list(good.index) == [10, 12]
    assert list(good.columns) == ["customer", *FEATURES]
    assert good["visits"].dtype == np.float64 and good["amount"].dtype == np.float64
    assert np.isnan(good.loc[12, "ratio"]) and good.loc[12, "channel"] is None
    assert rejects.to_dict(orient="records") == [{"row": 11, "id": "c-1", "field": "amount",
                                                  "problem": "Input should be greater than or equal to 0.5",
                                                  "found": "-5"}]


def test_other_columns_are_ignored_and_a_nullable_column_may_be_empty_but_not_absent():
    frame = pd.DataFrame([{**GOOD, "outcome": "bad", "notes": "anything", "ratio": None, "channel": None}])
    good, rejects = check_chunk(frame, DATA, 0)
    assert len(good) == 1 and rejects.empty
    assert np.isnan(good["ratio"].iloc[0]) and good["channel"].iloc[0] is None
    assert "outcome" not in good and "notes" not in good
    # helper-58: a misspelt header (`Ratio`) left the nullable column absent, and every row was scored as if
    # its value were unknown. The column must be there, as the service refuses an unknown field.
    misspelt = pd.DataFrame([GOOD]).rename(columns={"ratio": "Ratio"})
    with pytest.raises(MissingColumnsError, match=r"the input has no column 'ratio' \(a feature the model reads"):
        check_chunk(misspelt, DATA, 0)


def test_an_absent_column_every_row_needs_is_one_error_naming_it():
    frame = pd.DataFrame([GOOD]).drop(columns=["visits", "segment"])
    with pytest.raises(MissingColumnsError) as error:
        check_chunk(frame, DATA, 0)
    assert "'visits', 'segment'" in str(error.value) and "the columns found are" in str(error.value)


def test_differences_from_a_json_request_are_the_documented_ones():
    rows = [{**GOOD, "amount": float("nan")},     # NaN is a missing value in a table: amount is not nullable
            {**GOOD, "ratio": float("nan")},      # ... and ratio is
            {**GOOD, "segment": 1}]               # categories compared as text: 1 is "1", not a category
    good, rejects = check_chunk(pd.DataFrame(rows, dtype=object), DATA, 0)
    assert list(good.index) == [1]
    assert rejects["problem"].tolist() == ["a value is required: this feature is not nullable",
                                           "Input should be 'Small firm', 'large firm' or 'N/A-like'"]
    numbers = pd.DataFrame([{**GOOD, "segment": 7}, {**GOOD, "segment": 3}])
    labelled = DataSpec.model_validate({**DATA.model_dump(), "features": {
        **DATA.model_dump()["features"], "segment": {"type": "categorical", "categories": ["3", "5"]}}})
    good, rejects = check_chunk(numbers, labelled, 0)
    assert list(good.index) == [1] and good["segment"].tolist() == ["3"] and rejects["found"].tolist() == ["7"]


def test_a_decision_attribute_is_checked_only_when_a_version_decides_with_it_and_may_be_missing():
    rows = [{**GOOD, "gender": "m"}, {**GOOD, "gender": "q"}, {**GOOD, "gender": None}]
    good, rejects = check_chunk(pd.DataFrame(rows, dtype=object), DATA, 0)
    assert len(good) == 3 and "gender" not in good
    good, rejects = check_chunk(pd.DataFrame(rows, dtype=object), DATA, 0, decision_attributes=["gender"])
    assert list(good.index) == [0, 2] and good["gender"].tolist() == ["m", None]
    online = record_model(DATA, ["gender"])
    with pytest.raises(PayloadError) as error:
        parse_records({k: v for k, v in rows[1].items() if k != "customer"}, online)
    assert rejects["problem"].tolist() == [error.value.errors[0]["problem"]]
    good, _ = check_chunk(pd.DataFrame([GOOD]), DATA, 0, decision_attributes=["gender"])
    assert good["gender"].tolist() == [None]  # absent altogether: decided as an unjudged group


def test_an_empty_chunk_and_a_chunk_of_rejects_only():
    good, rejects = check_chunk(pd.DataFrame(columns=list(GOOD)), DATA, 0)
    assert good.empty and rejects.empty and list(rejects.columns) == ["row", "id", "field", "problem", "found"]
    good, rejects = check_chunk(pd.DataFrame([{**GOOD, "amount": -1}] * 3, dtype=object), DATA, 5)
    assert good.empty and rejects["row"].tolist() == [5, 6, 7]


def test_a_databases_decimal_numbers_are_numbers():
    from decimal import Decimal

    rows = [{**GOOD, "amount": Decimal("10.25"), "visits": Decimal("3")}, {**GOOD, "visits": Decimal("3.5")}]
    good, rejects = check_chunk(pd.DataFrame(rows, dtype=object), DATA, 0)
    assert good["amount"].tolist() == [10.25] and good["visits"].tolist() == [3.0]
    assert rejects["problem"].tolist() == ["Value error, expected a whole number"]
