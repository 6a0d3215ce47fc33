"""Write the foreign-data cases in this folder: small tables shaped unlike keel's credit generator, each
with the spec a user would write for it. Seeded: running it again writes the same bytes.

    python tests/data/make_cases.py

The cases are committed; tests read them and never run this script. scikit-learn's bundled breast
cancer table is the eighth case, written by the test itself from the copy scikit-learn ships.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
ROWS = 700


def _logistic(x):
    return 1 / (1 + np.exp(-x))


def _common(name: str, objective: str) -> dict:
    """What every case's spec shares: small and fast, gates that a sound model passes."""
    return {
        "problem": {"name": name, "objective": objective, "intended_users": "keel's foreign-data tests",
                    "business_metric": "none declared", "success_criteria": [{"metric": "roc_auc", "min": 0.6}]},
        "split": {"strategy": "random", "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 3},
        "training": {"seed": 3, "threads": 1, "candidate": {"kind": "lightgbm", "params": {"n_estimators": 40},
                                                            "trials": 1}},
        "evaluation": {"performance": {"interval_samples": 50}, "latency": {"single_row_calls": 20},
                       "explainability": {"sample_size": 50, "local_examples": 1},
                       "comparison": {"bootstrap_samples": 200},
                       "gates": [{"metric": "roc_auc", "min": 0.6}]},
        "deployment": {"strategy": "all-at-once", "hold_seconds": 0, "probe_requests": 20,
                       "approval": {"required": True, "auto_approve": True}},
        "monitoring": {"drift": {"min_window_rows": 50, "min_labelled_rows": 50}},
    }


def adult_headerless(rng) -> tuple:
    """UCI-adult-like: no header line, ", " between fields, `?` for missing, a text target `>50K`
    whose positive class is the favourable one."""
    age = rng.integers(17, 80, ROWS)
    education = rng.integers(3, 17, ROWS)
    hours = rng.integers(10, 80, ROWS)
    sex = rng.choice(["Female", "Male"], ROWS, p=[0.35, 0.65])
    workclass = rng.choice(["Private", "Self-emp", "State-gov", "?"], ROWS, p=[0.6, 0.15, 0.15, 0.1])
    signal = 0.05 * (age - 40) + 0.35 * (education - 10) + 0.04 * (hours - 40) + np.where(sex == "Male", 0.6, 0)
    income = np.where(rng.random(ROWS) < _logistic(signal - 1.3), ">50K", "<=50K")
    lines = [", ".join(map(str, row)) for row in zip(age, workclass, education, sex, hours, income)]
    names = ["age", "workclass", "education_num", "sex", "hours_per_week", "income"]
    spec = _common("adult_headerless", "Estimate whether a person's income exceeds 50K a year.")
    spec["data"] = {
        "source": {"kind": "csv", "path": "data.csv", "header": False, "names": names, "sep": ",",
                   "skipinitialspace": True, "na_values": ["?"]},
        "target": {"column": "income", "positive": ">50K", "negative": "<=50K", "positive_label": "income above 50K",
                   "favourable": "positive"},
        "features": {"age": {"type": "integer", "min": 16, "max": 100},
                     "workclass": {"type": "categorical", "categories": ["Private", "Self-emp", "State-gov"],
                                   "nullable": True},
                     "education_num": {"type": "integer", "min": 1, "max": 20},
                     "hours_per_week": {"type": "integer", "min": 1, "max": 100}},
        "sensitive_attributes": {"sex": {"categories": ["Female", "Male"]}},
        "min_group_size": 20}
    return "\n".join(lines) + "\n", spec


def semicolon_bom_decimal_comma(rng) -> tuple:
    """A European export: `;` between fields, decimal commas, a byte-order mark, an integer target."""
    ids = np.arange(1, ROWS + 1)
    age = rng.integers(20, 90, ROWS)
    bmi = rng.normal(27, 4, ROWS).round(1)
    glucose = rng.normal(6.0, 1.5, ROWS).round(2)
    smoker = rng.choice(["ja", "nein"], ROWS, p=[0.3, 0.7])
    readmitted = (rng.random(ROWS) < _logistic(0.04 * (age - 55) + 0.5 * (glucose - 6) + (smoker == "ja") - 1)).astype(int)
    frame = pd.DataFrame({"patient_id": ids, "age": age, "bmi": bmi, "glucose": glucose, "smoker": smoker,
                          "readmitted": readmitted})
    text = "\ufeff" + frame.to_csv(sep=";", decimal=",", index=False)
    spec = _common("readmission_semicolon", "Estimate the risk of readmission within 30 days.")
    spec["data"] = {
        "source": {"kind": "csv", "path": "data.csv", "sep": ";", "decimal": ",", "encoding": "utf-8-sig"},
        "id_column": "patient_id",
        "target": {"column": "readmitted", "positive": 1, "negative": 0, "positive_label": "readmitted"},
        "features": {"age": {"type": "integer", "min": 0, "max": 120}, "bmi": {"type": "numeric", "min": 10, "max": 60},
                     "glucose": {"type": "numeric", "min": 0, "max": 30},
                     "smoker": {"type": "categorical", "categories": ["ja", "nein"]}}}
    return text, spec


def hiring_biased(rng) -> tuple:
    """A text target (`hired` / `not hired`) whose positive class is favourable, and a model that learns
    a bias against women: its parity gate must fail."""
    years = rng.integers(0, 25, ROWS)
    test_score = rng.normal(60, 15, ROWS).round(1).clip(0, 100)
    gender = rng.choice(["f", "m"], ROWS)
    degree = rng.choice(["none", "bachelor", "master"], ROWS, p=[0.3, 0.5, 0.2])
    signal = 0.08 * (years - 8) + 0.04 * (test_score - 60) + np.where(gender == "m", 1.6, -0.4) - 1.6
    outcome = np.where(rng.random(ROWS) < _logistic(signal), "hired", "not hired")
    frame = pd.DataFrame({"applicant": [f"A{i:05d}" for i in range(ROWS)], "years_experience": years,
                          "test_score": test_score, "degree": degree, "gender": gender, "outcome": outcome})
    spec = _common("hiring_biased", "Rank applicants for interview.")
    spec["data"] = {
        "source": {"kind": "csv", "path": "data.csv"}, "id_column": "applicant",
        "target": {"column": "outcome", "positive": "hired", "negative": "not hired", "positive_label": "hired",
                   "favourable": "positive"},
        "features": {"years_experience": {"type": "integer", "min": 0, "max": 60},
                     "test_score": {"type": "numeric", "min": 0, "max": 100},
                     "degree": {"type": "categorical", "categories": ["none", "bachelor", "master"]},
                     "gender": {"type": "categorical", "categories": ["f", "m"]}},
        # The historical decisions were biased and the model is allowed to see gender: the gate must catch it.
        "sensitive_attributes": {"gender": {"categories": ["f", "m"], "use_as_feature": True}},
        "min_group_size": 20}
    spec["evaluation"]["gates"].append({"metric": "demographic_parity_ratio", "attribute": "gender", "min": 0.8})
    return frame.to_csv(index=False), spec


def fraud_integer_target(rng) -> tuple:
    """An integer target (1 = fraud) whose negative class is favourable (not flagged)."""
    amount = rng.lognormal(4, 1, ROWS).round(2)
    hour = rng.integers(0, 24, ROWS)
    category = rng.choice(["grocery", "travel", "online", "fuel"], ROWS)
    region = rng.choice(["north", "south", "east", "west"], ROWS)
    signal = 0.6 * (np.log(amount) - 4) + np.where((hour < 5), 1.2, 0) + np.where(category == "online", 0.8, 0) - 1.8
    fraud = (rng.random(ROWS) < _logistic(signal)).astype(int)
    frame = pd.DataFrame({"txn": np.arange(ROWS), "amount": amount, "hour": hour, "category": category,
                          "region": region, "is_fraud": fraud})
    spec = _common("fraud_integer", "Flag card transactions for review.")
    spec["data"] = {
        "source": {"kind": "csv", "path": "data.csv"}, "id_column": "txn",
        "target": {"column": "is_fraud", "positive": 1, "negative": 0, "positive_label": "fraud",
                   "favourable": "negative"},
        "features": {"amount": {"type": "numeric", "min": 0}, "hour": {"type": "integer", "min": 0, "max": 23},
                     "category": {"type": "categorical", "categories": ["grocery", "travel", "online", "fuel"]}},
        "sensitive_attributes": {"region": {"categories": ["north", "south", "east", "west"]}},
        "min_group_size": 20}
    return frame.to_csv(index=False), spec


def tiny_group(rng) -> tuple:
    """A sensitive group of 8 rows, all with one outcome: reported, never judged, never a crash."""
    groups = rng.choice(["a", "b", "c"], ROWS).astype(object)
    groups[:8] = "tiny"
    x1, x2 = rng.normal(0, 1, ROWS), rng.normal(0, 1, ROWS)
    denied = np.where(rng.random(ROWS) < _logistic(1.2 * x1 - 0.8 * x2 - 0.5), "denied", "approved")
    denied[:8] = "approved"
    frame = pd.DataFrame({"claim": np.arange(ROWS), "x1": x1.round(3), "x2": x2.round(3), "group": groups,
                          "decision": denied})
    spec = _common("claims_tiny_group", "Estimate which insurance claims are denied.")
    spec["data"] = {
        "source": {"kind": "csv", "path": "data.csv"}, "id_column": "claim",
        "target": {"column": "decision", "positive": "denied", "negative": "approved", "positive_label": "denied",
                   "favourable": "negative"},
        "features": {"x1": {"type": "numeric"}, "x2": {"type": "numeric"}},
        "sensitive_attributes": {"group": {"categories": ["a", "b", "c", "tiny"]}},
        "min_group_size": 20}
    spec["evaluation"]["gates"].append({"metric": "demographic_parity_ratio", "attribute": "group", "min": 0.5})
    return frame.to_csv(index=False), spec


def missing_and_constant(rng) -> tuple:
    """A column that is always missing, constant columns and a partly missing category."""
    s1 = rng.normal(0, 1, ROWS).round(3)
    s4 = rng.normal(5, 2, ROWS).round(3)
    mode = rng.choice(["idle", "run", ""], ROWS, p=[0.45, 0.45, 0.1])
    failure = (rng.random(ROWS) < _logistic(1.5 * s1 + 0.3 * (s4 - 5) - 1)).astype(int)
    frame = pd.DataFrame({"unit": np.arange(ROWS), "s1": s1, "s2": np.nan, "s3": 5.0, "site": "plant-1",
                          "mode": mode, "s4": s4, "failure": failure})
    frame.loc[rng.random(ROWS) < 0.2, "s4"] = np.nan
    spec = _common("sensors_missing_constant", "Estimate machine failure within a week.")
    spec["data"] = {
        "source": {"kind": "csv", "path": "data.csv"}, "id_column": "unit",
        "target": {"column": "failure", "positive": 1, "negative": 0, "positive_label": "failure"},
        "features": {"s1": {"type": "numeric"}, "s2": {"type": "numeric", "nullable": True},
                     "s3": {"type": "numeric"}, "site": {"type": "categorical", "categories": ["plant-1"]},
                     "mode": {"type": "categorical", "categories": ["idle", "run"], "nullable": True},
                     "s4": {"type": "numeric", "nullable": True}}}
    return frame.to_csv(index=False), spec


def wide_table(rng) -> tuple:
    """220 numeric features, the signal in a few of them."""
    features = {f"f{i:03d}": rng.normal(0, 1, ROWS).round(3) for i in range(220)}
    signal = features["f000"] + 0.8 * features["f001"] - 0.6 * features["f017"] + 0.5 * features["f150"]
    frame = pd.DataFrame({"row": np.arange(ROWS), **features,
                          "label": (rng.random(ROWS) < _logistic(signal)).astype(int)})
    spec = _common("wide_table", "Classify rows of a wide table.")
    spec["data"] = {"source": {"kind": "csv", "path": "data.csv"}, "id_column": "row",
                    "target": {"column": "label", "positive": 1, "negative": 0, "positive_label": "one"},
                    "features": {name: {"type": "numeric"} for name in features}}
    return frame.to_csv(index=False), spec


CASES = {"adult_headerless": adult_headerless, "semicolon_bom_decimal_comma": semicolon_bom_decimal_comma,
         "hiring_biased": hiring_biased, "fraud_integer_target": fraud_integer_target, "tiny_group": tiny_group,
         "missing_and_constant": missing_and_constant, "wide_table": wide_table}


def main() -> None:
    for seed, (name, make) in enumerate(CASES.items()):
        text, spec = make(np.random.default_rng(seed))
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        (folder / "data.csv").write_text(text, encoding="utf-8", newline="")
        about = "".join(f"# {line.strip()}\n" for line in make.__doc__.strip().splitlines())
        (folder / "spec.yaml").write_text(about + yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


if __name__ == "__main__":
    main()
