"""The feature pipeline: fit on the training split only, then shared by every model and by serving."""

from __future__ import annotations

from typing import Dict, FrozenSet

import pandas as pd

from keel.spec.data import CategoricalFeature, DataSpec

UNTRAINED_CATEGORY = "a category the version scoring it was not trained with (the spec added it later)"


def build_preprocessor(data: DataSpec):
    """Median-impute (with missing indicators) and scale numbers; one-hot categories.

    Unknown categories at prediction time encode as all zeros instead of failing.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = data.model_features
    categorical = [n for n in features if isinstance(data.features[n], CategoricalFeature)]
    numeric = [n for n in features if n not in categorical]
    numeric_steps = make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                keep_empty_features=True), StandardScaler())
    encoder = OneHotEncoder(categories=[data.features[n].categories for n in categorical],
                            handle_unknown="ignore", sparse_output=False, dtype="float64")
    return ColumnTransformer(
        [("numeric", numeric_steps, numeric), ("categorical", encoder, categorical)],
        remainder="drop", verbose_feature_names_out=False,
    )


def fit_preprocessor(train: pd.DataFrame, data: DataSpec):
    """Fit the feature pipeline on training rows only: no statistics leak from validation or test."""
    return build_preprocessor(data).fit(train[data.model_features])


def fitted_categories(model) -> Dict[str, FrozenSet[str]]:
    """The categories each categorical feature was one-hot encoded with when `model` (a keel pipeline, or
    a mitigated one: its `features` step) was fitted; {} for a model without that step."""
    features = getattr(model, "named_steps", {}).get("features")
    known: Dict[str, FrozenSet[str]] = {}
    for _, transformer, columns in getattr(features, "transformers_", []):
        for column, categories in zip(columns, getattr(transformer, "categories_", [])):
            known[column] = frozenset(str(c) for c in categories)
    return known


def categories_unknown_to(model, data: DataSpec) -> Dict[str, FrozenSet[str]]:
    """The spec's categories that `model` was not fitted with, per feature that has some. A version trained
    under an earlier spec would score them as no category at all (all zeros), so they are refused for it."""
    known = fitted_categories(model)
    unknown = {name: frozenset(feature.categories) - known[name] for name, feature in data.features.items()
               if isinstance(feature, CategoricalFeature) and name in known}
    return {name: values for name, values in unknown.items() if values}
