"""Pure parts of the serving layer: payload contract, routing, prediction log."""

import json
from collections import Counter

import pytest

from keel.serving.payload import PayloadError, parse_records, record_model
from keel.clock import utc_now
from keel.serving.prediction_log import PredictionLog
from keel.serving.routing import Arm, RoutingTable


@pytest.fixture
def record_type(default_spec):
    return record_model(default_spec.data)


@pytest.fixture
def good(default_spec):
    from keel.data.generator import generate_credit_applications

    frame = generate_credit_applications(default_spec.data.source.model_copy(update={"rows": 5}))
    return json.loads(frame[default_spec.data.model_features].to_json(orient="records"))


def test_a_record_and_a_batch_parse(record_type, good):
    assert len(parse_records(good[0], record_type)) == 1
    assert len(parse_records({"records": good}, record_type)) == 5
    assert len(parse_records(good, record_type)) == 5


@pytest.mark.parametrize("mutate,field,status", [
    (lambda r: r.pop("income"), "income", 422),
    (lambda r: r.update(income="12000"), "income", 422),
    (lambda r: r.update(income=float("nan")), "income", 422),
    (lambda r: r.update(income=float("inf")), "income", 422),
    (lambda r: r.update(region="mars"), "region", 422),
    (lambda r: r.update(hacker=1), "hacker", 422),
    (lambda r: r.update(loan_term_months=12.5), "loan_term_months", 422),
    (lambda r: r.update(debt_to_income=99.0), "debt_to_income", 422),
    (lambda r: r.update(region=None), "region", 422),
])
def test_bad_fields_are_named(record_type, good, mutate, field, status):
    record = dict(good[0])
    mutate(record)
    with pytest.raises(PayloadError) as raised:
        parse_records(record, record_type)
    assert raised.value.status == status
    assert [e["field"] for e in raised.value.errors] == [field]


def test_nullable_fields_may_be_null_or_absent(record_type, good):
    record = dict(good[0], savings_balance=None)
    record.pop("employment_years")
    assert parse_records(record, record_type)[0].employment_years is None


def test_batch_errors_carry_the_row_and_limits_apply(record_type, good):
    rows = [dict(r) for r in good]
    rows[3]["region"] = "mars"
    with pytest.raises(PayloadError) as raised:
        parse_records({"records": rows}, record_type)
    assert raised.value.errors[0]["field"] == "records[3].region"
    with pytest.raises(PayloadError) as raised:
        parse_records([], record_type)
    assert raised.value.status == 422
    with pytest.raises(PayloadError) as raised:
        parse_records(good * 3, record_type, max_rows=10)
    assert raised.value.status == 413
    with pytest.raises(PayloadError):
        parse_records([1, "x"], record_type)


def test_routing_is_deterministic_and_close_to_the_weights():
    table = RoutingTable([Arm("champion", 1, 0.75), Arm("challenger", 2, 0.25)], strategy="canary")
    arms = [table.arm_for(f"applicant-{i}").name for i in range(20_000)]
    share = Counter(arms)["challenger"] / len(arms)
    assert abs(share - 0.25) < 0.015
    assert all(table.arm_for(f"applicant-{i}").name == arms[i] for i in range(0, 20_000, 97))
    # Growing the canary only moves champion entities to the challenger, never back.
    bigger = RoutingTable([Arm("champion", 1, 0.5), Arm("challenger", 2, 0.5)], strategy="canary")
    moved_back = [i for i, arm in enumerate(arms) if arm == "challenger"
                  and bigger.arm_for(f"applicant-{i}").name == "champion"]
    assert not moved_back
    assert RoutingTable.from_dict(table.to_dict()) == table


def test_weights_must_add_up():
    with pytest.raises(ValueError, match="add up to 1"):
        RoutingTable([Arm("champion", 1, 0.7), Arm("challenger", 2, 0.2)])


def test_prediction_log_round_trip_survives_a_new_connection(tmp_path):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    log = PredictionLog(url)
    row = {"request_id": "r1", "row": 0, "entity_id": "e1", "time": utc_now(), "model_name": "m",
           "model_version": 3, "arm": "champion", "shadow": False, "inputs": {"income": 1.0},
           "score": 0.2, "decision": 0, "latency_ms": 1.5}
    assert log.append([row, dict(row, row=1, shadow=True, arm="shadow")]) == 2
    log.engine.dispose()
    again = PredictionLog(url)
    assert again.count() == 2
    served = again.read(include_shadow=False)
    assert len(served) == 1 and served[0]["inputs"] == {"income": 1.0} and served[0]["model_version"] == 3
    with pytest.raises(Exception):
        again.append([row])  # the same request id and row twice: refused, nothing overwritten
    assert again.count() == 2


def test_error_bodies_are_strict_json_even_for_nan(record_type, good):
    record = dict(good[0], income=float("nan"), debt_to_income=float("inf"))
    with pytest.raises(PayloadError) as raised:
        parse_records(record, record_type)
    json.dumps(raised.value.errors, allow_nan=False)  # what a strict JSON response encoder does


def test_kubernetes_manifests_probe_bentoml_health_endpoints():
    from keel.deployment.kubernetes import serving_manifests

    deployment, service, autoscaler = serving_manifests("credit_risk", 3, "keel-credit-risk:v3")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "keel-credit-risk:v3"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_the_service_module_loads_none_of_the_scorers_libraries():
    """BentoML's supervisor imports serving/service.py only to read its settings: the scorer and its
    libraries (pandas, SQLAlchemy, LightGBM) load in the workers, when KeelService starts."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    heavy = ("keel.serving.scorer", "pandas", "sqlalchemy", "lightgbm", "sklearn")
    done = subprocess.run([sys.executable, "-c", "import sys, serving.service; "
                           f"print(sorted(m for m in {heavy!r} if m in sys.modules))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_json_booleans_are_accepted_for_a_feature_whose_categories_spell_a_boolean():
    """A True/False column read from a file becomes the categories "True"/"False" (or "true"/"false"); a
    client sends JSON true/false. Only those features take booleans, as the category spelt in the spec;
    a boolean is never taken as a number or another category."""
    from keel.spec import validate_spec

    raw = {"problem": {"name": "claims", "objective": "o", "business_metric": "b",
                       "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
           "data": {"source": {"kind": "csv", "path": "x.csv"},
                    "target": {"column": "denied", "positive": "yes", "negative": "no"},
                    "features": {"fragile": {"type": "categorical", "categories": ["False", "True"]},
                                 "insured": {"type": "categorical", "categories": ["true", "false"], "nullable": True},
                                 "carrier": {"type": "categorical", "categories": ["rail", "road"]},
                                 "stops": {"type": "integer", "min": 0}}}}
    record_type = record_model(validate_spec(raw, "claims.yaml").data)
    [parsed] = parse_records({"fragile": True, "insured": False, "carrier": "rail", "stops": 2}, record_type)
    assert parsed.fragile == "True" and parsed.insured == "false"
    [parsed] = parse_records({"fragile": "False", "insured": None, "carrier": "road", "stops": 0}, record_type)
    assert parsed.fragile == "False" and parsed.insured is None
    for field, value in (("carrier", True), ("stops", True), ("fragile", 1), ("fragile", "yes")):
        record = {"fragile": "True", "carrier": "rail", "stops": 1, field: value}
        with pytest.raises(PayloadError) as raised:
            parse_records(record, record_type)
        assert raised.value.status == 422 and raised.value.errors[0]["field"] == field, raised.value.errors


def test_json_integers_are_accepted_for_integer_coded_categories_as_batch_reads_them():
    """helper-60: a merchant category code declared categorical ("5411", as read from the CSV) got 422 for
    JSON 5411 online while batch scoring took the CSV's 5411. Only the exact decimal spelling is taken."""
    from keel.spec import validate_spec

    raw = {"problem": {"name": "cards", "objective": "o", "business_metric": "b",
                       "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
           "data": {"source": {"kind": "csv", "path": "x.csv"},
                    "target": {"column": "fraud", "positive": "yes", "negative": "no"},
                    "features": {"mcc": {"type": "categorical", "categories": ["5411", "5812", "007", "-1"]},
                                 "channel": {"type": "categorical", "categories": ["web", "pos"]}}}}
    record_type = record_model(validate_spec(raw, "cards.yaml").data)
    for sent, taken in ((5411, "5411"), ("5812", "5812"), (-1, "-1"), ("007", "007")):
        [parsed] = parse_records({"mcc": sent, "channel": "web"}, record_type)
        assert parsed.mcc == taken
    for field, value in (("mcc", 7), ("mcc", 5411.0), ("mcc", True), ("mcc", 9999), ("channel", 1)):
        with pytest.raises(PayloadError) as raised:
            parse_records({"mcc": "5411", "channel": "web", field: value}, record_type)
        assert raised.value.status == 422 and raised.value.errors[0]["field"] == field, raised.value.errors


def test_a_feature_of_many_categories_is_named_briefly_in_errors_and_fully_in_the_schema():
    """500 stores: an unknown one (or a null where the feature is not nullable) gets a short answer, not
    the 7 KB of every store's name; the request schema still lists them all."""
    from keel.spec import validate_spec

    stores = [f"shop_{i:03d}" for i in range(500)]
    data = validate_spec({"problem": {"name": "baskets", "objective": "o", "business_metric": "b",
                                      "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
                          "data": {"source": {"kind": "csv", "path": "x.csv"},
                                   "target": {"column": "returned", "positive": "yes", "negative": "no"},
                                   "features": {"shop": {"type": "categorical", "categories": stores},
                                                "items": {"type": "integer", "min": 1}}}}, "b.yaml").data
    record_type = record_model(data)
    assert parse_records({"shop": "shop_499", "items": 2}, record_type)[0].shop == "shop_499"
    for shop, expected in (("shop_999", "one of the spec's categories: 'shop_000', 'shop_001', "),
                           ("shop_999", ", ... (500 in all)"), (7, "valid string"),
                           (None, "a value is required: this feature is not nullable")):
        with pytest.raises(PayloadError) as raised:
            parse_records({"shop": shop, "items": 2}, record_type)
        [error] = raised.value.errors
        assert error["field"] == "shop" and expected in error["problem"] and len(error["problem"]) < 300, error
    assert record_type.model_json_schema()["properties"]["shop"]["enum"] == stores
