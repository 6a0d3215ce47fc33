"""A seeded generator of credit applications: keel's embedded default data.

The rows are synthetic but shaped like a lender's book: 19 features (numeric, categorical, some
missing), a default rate near 15%, two sensitive attributes (`sex`, `age_band`) and three knobs:

- `historical_bias` adds to the recorded default log-odds of women and of applicants under 26,
  as biased past decisions would; 0 means the labels depend on the features only.
- `covariate_shift` moves the named `shifted_features` by that many standard deviations (or by
  that factor in log space for money amounts); P(default | features) stays the same.
- `concept_shift` (0..1) blends the true risk function towards a different one; the features keep
  their distribution, only the relationship changes.

Same parameters, same rows: everything is drawn from one `numpy.random.Generator(seed)`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from keel.spec.data import SHIFTABLE, GeneratorSource

TARGET = "default"
ID_COLUMN = "application_id"
TIME_COLUMN = "application_date"

CATEGORIES = {
    "sex": ["female", "male"],
    "age_band": ["18-25", "26-35", "36-50", "51-65", "66+"],
    "employment_type": ["salaried", "self_employed", "unemployed", "retired", "student"],
    "home_ownership": ["rent", "mortgage", "own", "other"],
    "loan_purpose": ["car", "home_improvement", "debt_consolidation", "education", "business",
                     "medical", "other"],
    "region": ["north", "south", "east", "west", "central"],
    "has_cosigner": ["no", "yes"],
}
_MONEY = {"income", "loan_amount", "savings_balance"}
_AGE_EDGES = [18, 26, 36, 51, 66, 200]


def _categorical(rng: np.random.Generator, name: str, probabilities, n: int) -> pd.Categorical:
    codes = rng.choice(len(CATEGORIES[name]), size=n, p=probabilities)
    return pd.Categorical.from_codes(codes, categories=CATEGORIES[name])


def _standardise(values: np.ndarray) -> np.ndarray:
    return (values - np.nanmean(values)) / (np.nanstd(values) + 1e-12)


def _risk_logit(f: dict, concept_shift: float) -> np.ndarray:
    """Log-odds of default from the features: the 'true' risk function, optionally drifted."""
    purpose_effect = np.array([0.0, -0.2, 0.35, 0.25, 0.45, 0.3, 0.1])[f["loan_purpose"].codes]
    employment_effect = np.array([0.0, 0.25, 0.9, 0.1, 0.5])[f["employment_type"].codes]
    dti = f["debt_to_income"]
    utilization = np.nan_to_num(f["credit_utilization"], nan=0.35)
    usual = (
        -3.3
        + 0.2 * _standardise(dti) + 2.0 * (dti > 0.45)
        + 1.8 * (utilization > 0.7) + 0.9 * (utilization < 0.05)
        + 0.75 * np.minimum(f["num_late_payments_2y"], 2)
        + 0.7 * f["previous_defaults"] * (f["has_cosigner"].codes == 0)
        - 0.55 * _standardise(np.log(f["income"]))
        - 0.3 * _standardise(f["credit_history_years"])
        + 0.35 * (f["loan_term_months"] >= 48)
        + 1.4 * (f["employment_type"].codes == 1) * (f["loan_amount"] > 20_000)
        + 0.3 * _standardise(np.log(f["loan_amount"]))
        + purpose_effect
        + employment_effect
    )
    if concept_shift == 0:
        return usual
    # A changed world: income stops protecting, long terms and many credit lines start to hurt.
    changed = (
        -2.7
        + 0.2 * _standardise(f["debt_to_income"])
        + 1.1 * _standardise(f["num_credit_lines"])
        + 0.9 * (f["loan_term_months"] >= 36)
        + 0.6 * _standardise(np.log(f["income"]))
        - 0.5 * np.nan_to_num(_standardise(f["credit_utilization"]))
        + 0.35 * f["num_late_payments_2y"]
    )
    return (1 - concept_shift) * usual + concept_shift * changed


def generate_credit_applications(source: GeneratorSource) -> pd.DataFrame:
    """Return `source.rows` credit applications, one row each, ordered by application date."""
    unknown = sorted(set(source.shifted_features) - set(SHIFTABLE)) if source.covariate_shift else []
    if unknown:
        raise ValueError(f"cannot shift {unknown}; shiftable features: {list(SHIFTABLE)}")
    rng = np.random.default_rng(source.seed)
    n = source.rows

    sex = _categorical(rng, "sex", [0.42, 0.58], n)
    age = np.clip(np.round(rng.gamma(5.0, 5.0, n) + 16), 18, 90)
    employment_type = pd.Categorical.from_codes(
        np.where(age >= 66, 3, np.where(age < 23, rng.choice([0, 4], n, p=[0.5, 0.5]),
                 rng.choice([0, 1, 2], n, p=[0.76, 0.16, 0.08]))),
        categories=CATEGORIES["employment_type"],
    )
    income = np.round(np.exp(rng.normal(10.65, 0.5, n) + 0.006 * (np.minimum(age, 60) - 40)
                             - 0.7 * (employment_type.codes == 2) - 0.5 * (employment_type.codes == 4)),
                      -1)
    employment_years = np.where(employment_type.codes == 2, 0.0,
                                np.round(np.minimum(rng.gamma(2.0, 3.0, n), age - 17), 1))
    credit_history_years = np.round(np.clip((age - 18) * rng.uniform(0.3, 1.0, n), 0, 70), 1)
    features = {
        "income": income,
        "employment_years": employment_years,
        "employment_type": employment_type,
        "home_ownership": _categorical(rng, "home_ownership", [0.38, 0.34, 0.24, 0.04], n),
        "loan_purpose": _categorical(rng, "loan_purpose", [0.24, 0.14, 0.27, 0.08, 0.08, 0.05, 0.14], n),
        "loan_amount": np.round(np.clip(np.exp(rng.normal(9.3, 0.7, n)) * (income / 42000) ** 0.5,
                                        500, 250_000), -1),
        "loan_term_months": rng.choice([12, 24, 36, 48, 60], n, p=[0.15, 0.25, 0.3, 0.15, 0.15]),
        "debt_to_income": np.round(np.clip(rng.beta(2.2, 6.0, n) * 1.2, 0, 1.2), 3),
        "credit_history_years": credit_history_years,
        "num_credit_lines": rng.poisson(3.5, n),
        "num_late_payments_2y": rng.poisson(0.45, n),
        "credit_utilization": np.round(rng.beta(2.0, 3.5, n), 3),
        "savings_balance": np.round(np.exp(rng.normal(8.0, 1.4, n)) * (income / 42000), -1),
        # No effect on true risk, but differs by sex: a proxy through which biased labels can leak.
        "num_dependents": rng.poisson(np.where(sex.codes == 0, 2.2, 0.4)),
        "region": _categorical(rng, "region", [0.2, 0.22, 0.18, 0.2, 0.2], n),
        "has_cosigner": _categorical(rng, "has_cosigner", [0.88, 0.12], n),
        "previous_defaults": rng.poisson(0.12, n),
        "months_at_address": rng.integers(1, 241, n),
    }

    if source.covariate_shift:
        for name in source.shifted_features:
            values = features[name].astype(float)
            if name in _MONEY:
                values = values * np.exp(0.35 * source.covariate_shift)
            else:
                values = values + source.covariate_shift * np.nanstd(values)
            features[name] = values if name not in ("num_late_payments_2y",) else np.round(values).astype(int)
        features["debt_to_income"] = np.clip(features["debt_to_income"], 0, 1.2)
        features["credit_utilization"] = np.clip(features["credit_utilization"], 0, 1)

    # The lender prices by the risk it knows (the unshifted one), so a concept shift leaves every
    # input, the rate included, as it was.
    priced = _risk_logit(features, 0.0)
    logit = _risk_logit(features, source.concept_shift) if source.concept_shift else priced
    features["interest_rate"] = np.round(np.clip(6.0 + 2.2 * (priced + 3.3) + rng.normal(0, 1.5, n),
                                                 2.0, 29.9), 2)

    age_band = pd.Categorical.from_codes(np.digitize(age, _AGE_EDGES[1:-1]), CATEGORIES["age_band"])
    recorded_logit = logit + source.historical_bias * (
        (sex.codes == 0) * 1.0 + (age_band.codes == 0) * 0.5
    )
    default = (rng.random(n) < 1.0 / (1.0 + np.exp(-recorded_logit))).astype(np.int64)

    for name in ("employment_years", "credit_utilization", "savings_balance"):
        values = features[name].astype(float)
        values[rng.random(n) < source.missing_rate] = np.nan
        features[name] = values

    start = np.datetime64(source.start_date, "s")
    offsets = np.sort(rng.integers(0, 730 * 86_400, n))
    frame = pd.DataFrame(
        {ID_COLUMN: np.arange(1, n + 1, dtype=np.int64) + 10_000_000 * (source.seed % 1000),
         TIME_COLUMN: start + offsets.astype("timedelta64[s]"),
         "sex": sex, "age_band": age_band, **features, TARGET: default}
    )
    return frame
