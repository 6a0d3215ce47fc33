"""The feature pipeline: fit on the training split only, then shared by every model and by serving."""

from __future__ import annotations

import pandas as pd

from keel.spec.data import CategoricalFeature, DataSpec


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
