"""YAML 1.1 reads an unquoted yes/no, on/off, true/false (any case) as a boolean. A target class or a category
written so is refused with the key and the quoting to use, not taken for the class 1/0 (which passed
`validate` and then failed `check` with "target not 1 or 0 (e.g. 'no', 'yes')")."""

import pandas as pd
import pytest

from keel.spec import SpecError, load_spec

SPEC = """
problem:
  name: fraud
  objective: flag fraudulent claims
  business_metric: losses avoided
  success_criteria: [{metric: roc_auc, min: 0.6}]
data:
  source: {kind: csv, path: claims.csv}
  target: {column: fraud, positive: POSITIVE, negative: NEGATIVE, favourable: negative}
  features:
    amount: {type: numeric, min: 0}
    channel: {type: categorical, categories: CHANNELS}
  sensitive_attributes:
    sex: {categories: SEXES}
"""


def _write(tmp_path, positive="'yes'", negative="'no'", channels="[web, phone]", sexes="[f, m]"):
    path = tmp_path / "fraud.yaml"
    path.write_text(SPEC.replace("POSITIVE", positive).replace("NEGATIVE", negative)
                    .replace("CHANNELS", channels).replace("SEXES", sexes))
    return path


@pytest.mark.parametrize("positive, negative", [("yes", "no"), ("Yes", "No"), ("ON", "off"), ("true", "False")])
def test_an_unquoted_yaml_boolean_as_a_target_class_is_a_spec_error_naming_the_key_and_the_quoting(
        tmp_path, positive, negative):
    path = _write(tmp_path, positive, negative)
    with pytest.raises(SpecError) as error:
        load_spec(path)
    lines = str(error.value).splitlines()
    assert str(path) in lines[0] and "2 problem(s)" in lines[0]
    line = next(line for line in lines if "data.target.positive:" in line)
    assert "YAML read an unquoted yes, on or true (any case) as the boolean true" in line
    assert "positive: 'yes'" in line and "found true" in line
    line = next(line for line in lines if "data.target.negative:" in line)
    assert "as the boolean false" in line and "negative: 'no'" in line


def test_a_set_override_is_read_as_yaml_and_refused_alike(tmp_path):
    with pytest.raises(SpecError, match=r"data\.target\.positive: .*YAML read an unquoted yes"):
        load_spec(_write(tmp_path), ["data.target.positive=yes"])
    assert load_spec(_write(tmp_path), ["data.target.positive='yes'"]).data.target.positive == "yes"


def test_quoted_classes_stay_text_and_the_data_they_name_validates(tmp_path):
    from keel.data.schema import encode_target, validate_frame

    spec = load_spec(_write(tmp_path))
    assert (spec.data.target.positive, spec.data.target.negative) == ("yes", "no")
    assert (load_spec(_write(tmp_path, "1", "0")).data.target.positive, spec.data.target.negative) == (1, "no")
    frame = pd.DataFrame({"amount": [10.0, 20.0, 30.0, 40.0], "channel": ["web", "phone"] * 2,
                          "sex": ["f", "m"] * 2, "fraud": ["yes", "no", "no", "yes"]})
    _, report = validate_frame(frame, spec.data)
    assert report.passed, report.summary()
    assert encode_target(frame["fraud"], spec.data.target).tolist() == [1, 0, 0, 1]


@pytest.mark.parametrize("where, key", [("channels", "data.features.channel.categories"),
                                        ("sexes", "data.sensitive_attributes.sex.categories")])
def test_categories_read_as_booleans_are_refused_with_the_quoting_to_use(tmp_path, where, key):
    """Categories are text (a request's true/false is matched to 'True'/'False' only where the spec says so):
    they were refused already, as "input should be a valid string"; now the message says why and what to write."""
    with pytest.raises(SpecError) as error:
        load_spec(_write(tmp_path, **{where: "[yes, no]"}))
    line = next(line for line in str(error.value).splitlines() if f"{key}:" in line)
    assert "YAML read an unquoted yes, on or true (any case) as the boolean true" in line
    assert "['no', 'yes']" in line and "found [true, false]" in line
    assert load_spec(_write(tmp_path, **{where: "['yes', 'no']"}))
