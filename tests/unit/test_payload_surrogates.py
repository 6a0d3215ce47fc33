"""A lone UTF-16 surrogate (JSON "\\ud800") in a request is a 422 naming the field, never a 500: JSON
allows it, Python keeps it in a string, but no UTF-8 answer or prediction log can hold it. And which
routes want the API key (the scorer decides; the service's KeelGate asks it)."""

import json

import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from keel.deployment.bundle import write_bundle
from keel.serving.payload import LONE_SURROGATE, PayloadError, parse_records, record_model
from keel.serving.routing import Arm, RoutingTable
from keel.serving.scorer import Scorer
from keel.spec import load_spec
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "configs" / "credit_risk.yaml")


@pytest.fixture(scope="module")
def good(spec):
    """A record the contract accepts (values within the spec's ranges and categories)."""
    from keel.lifecycle.deployment import example_record
    from keel.data.generator import generate_credit_applications

    frame = generate_credit_applications(spec.data.source.model_copy(update={"rows": 50}))
    record = example_record(spec, frame)
    record.pop(spec.data.id_column, None)
    return {k: v for k, v in record.items() if k != "entity_id"}


def _refused(spec, raw: str):
    """parse_records of the JSON text `raw`: its PayloadError, checked to be sendable as UTF-8."""
    with pytest.raises(PayloadError) as raised:
        parse_records(json.loads(raw), record_model(spec.data))
    json.dumps(raised.value.errors, ensure_ascii=False).encode("utf-8")  # what JSONResponse does: no error
    return raised.value


def _raw(record: dict, **text) -> str:
    """The record as JSON text with fields whose value is JSON text as given (surrogate escapes kept)."""
    body = json.dumps(record)[:-1]
    return body + "".join(f', "{name}": {value}' for name, value in text.items()) + "}"


def test_a_lone_surrogate_entity_id_is_a_422_naming_it(spec, good):
    for surrogate in (r'"\ud800"', r'"abc\udfff"', r'"\udc00\ud800"'):  # high, low, a pair in the wrong order
        error = _refused(spec, _raw(good, entity_id=surrogate))
        assert error.status == 422
        assert [(e["field"], LONE_SURROGATE in e["problem"]) for e in error.errors] == [("entity_id", True)]
        assert "\\ud" in error.errors[0]["found"] or "\\udc" in error.errors[0]["found"]  # shown escaped


def test_the_id_column_and_a_batch_entity_id_are_checked_too(spec, good):
    assert spec.data.id_column and spec.data.id_column != "entity_id"
    error = _refused(spec, _raw(good, **{spec.data.id_column: r'"\ud800"'}))
    assert error.errors[0]["field"] == spec.data.id_column and LONE_SURROGATE in error.errors[0]["problem"]
    error = _refused(spec, '{"records": [%s], "entity_id": "\\ud800"}' % json.dumps(good))
    assert error.errors[0]["field"].endswith("entity_id") and LONE_SURROGATE in error.errors[0]["problem"]


def test_a_surrogate_elsewhere_is_a_422_that_can_be_sent(spec, good):
    region = _refused(spec, _raw({k: v for k, v in good.items() if k != "region"}, region=r'"\udfff"'))
    assert [e["field"] for e in region.errors] == ["region"] and region.errors[0]["found"] == "\\udfff"
    assert LONE_SURROGATE in region.errors[0]["problem"]
    # In a field name pydantic judges the record as a whole: one error for the record.
    name = _refused(spec, "[" + _raw(good, **{"\\ud800x": "1"}) + "]")
    assert [(e["field"], e["found"]) for e in name.errors] == [("records[0]", "\\ud800x")]
    beside = _refused(spec, '{"records": [], "\\ud800": 1}')
    assert beside.errors[0]["field"] == "\\ud800"


def test_text_with_whole_characters_is_accepted(spec, good):
    for text in (r'"caf\u00e9"', r'"\ud83d\ude00"', '"\u00e9l\u00e8ve-\u4e2d"'):  # escaped, a valid pair, literal
        (record,) = parse_records(json.loads(_raw(good, entity_id=text)), record_model(spec.data))
        assert record.entity_id == json.loads(text)


@pytest.fixture
def scorer(tmp_path, spec, monkeypatch):
    """A Scorer of a bundle whose spec asks for the API key in $KEEL_TEST_GATE_KEY."""
    monkeypatch.setenv("KEEL_TEST_GATE_KEY", "s3cret")
    frame = pd.DataFrame({name: [0, 1] for name in spec.data.model_features})
    model = DummyClassifier(strategy="prior").fit(frame, [0, 1])

    def bundle(protects: bool = True, key_env="KEEL_TEST_GATE_KEY") -> Scorer:
        chosen = spec.model_copy(update={"deployment": spec.deployment.model_copy(
            update={"api_key_protects_docs_and_metrics": protects})})
        write_bundle(tmp_path, chosen, {1: model}, {1: 0.5}, RoutingTable([Arm("champion", 1, 1.0)]), None,
                     api_key_env=key_env)
        return Scorer(tmp_path)

    return bundle


OTHER_ROUTES = ("/metrics", "/", "/docs.json", "/openapi.json", "/schema.json", "/static_content/index.css")


def test_with_a_key_every_route_but_probes_and_scoring_wants_it(scorer):
    gate = scorer()
    for path in ("/livez", "/healthz", "/readyz", "/predict", "/explain"):  # scoring checks the key itself
        assert gate.refusal(path, {}) is None, path
    for path in OTHER_ROUTES:
        refusal = gate.refusal(path, {})
        assert refusal is not None and refusal.status == 401, path
        assert gate.refusal(path, {"x-api-key": "wrong"}).status == 401
        assert gate.refusal(path, {"x-api-key": "s3cret"}) is None
        assert gate.refusal(path, {"authorization": "Bearer s3cret"}) is None


def test_the_spec_may_expose_docs_and_metrics_and_without_a_key_all_is_open(scorer):
    assert all(scorer(protects=False).refusal(path, {}) is None for path in OTHER_ROUTES)
    assert all(scorer(key_env=None).refusal(path, {}) is None for path in OTHER_ROUTES)
