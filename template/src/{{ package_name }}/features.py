"""Feature preparation and the scikit-learn pipelines of each model family."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from .contract import CATEGORICAL_FEATURES, FEATURES, NUMERICAL_FEATURES, DataValidationError

FAMILIES = ("linear", "random_forest", "hist_gradient_boosting")

_DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "linear": {"alpha": 1.0},
    "random_forest": {
        "n_estimators": 50,
        "max_depth": 15,
        "min_samples_leaf": 5,
        "n_jobs": -1,
        "random_state": 42,
    },
    "hist_gradient_boosting": {"max_iter": 100, "learning_rate": 0.1, "random_state": 42},
}


def prepare_features(df: pd.DataFrame) -> pd.DataFrame:
    """Select ``FEATURES`` with zones as int64 and distance as float64."""
    missing = [column for column in FEATURES if column not in df.columns]
    if missing:
        raise DataValidationError(f"missing feature column(s) {missing}")
    out = pd.DataFrame(index=df.index)
    for column in FEATURES:
        values = pd.to_numeric(df[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            first = df[column][bad].iloc[0]
            raise DataValidationError(
                f"feature column {column!r} has {int(bad.sum())} missing or non-numeric "
                f"value(s), first {first!r}"
            )
        out[column] = values.astype("int64" if column in CATEGORICAL_FEATURES else "float64")
    return out


def _one_hot() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("zones", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL_FEATURES),
            ("distance", StandardScaler(), NUMERICAL_FEATURES),
        ]
    )


def _ordinal() -> ColumnTransformer:
    # Dense one-hot of ~530 zone columns would not fit in memory for a real month; trees split
    # on ordinal codes instead. Unseen zones become -1 (treated as missing by the booster), and
    # max_categories keeps codes below the booster's 255-bin limit.
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, max_categories=255
    )
    return ColumnTransformer(
        [
            ("zones", encoder, CATEGORICAL_FEATURES),
            ("distance", "passthrough", NUMERICAL_FEATURES),
        ]
    )


def build_pipeline(family: str = "linear", params: dict[str, Any] | None = None) -> Pipeline:
    """Return an unfitted pipeline for ``family``; ``params`` override the regressor defaults."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}, expected one of {list(FAMILIES)}")
    kwargs = {**_DEFAULT_PARAMS[family], **(params or {})}
    if family == "linear":
        return Pipeline([("preprocess", _one_hot()), ("regressor", Ridge(**kwargs))])
    if family == "random_forest":
        regressor: Any = RandomForestRegressor(**kwargs)
    else:
        categorical = np.arange(len(CATEGORICAL_FEATURES))
        regressor = HistGradientBoostingRegressor(categorical_features=categorical, **kwargs)
    return Pipeline([("preprocess", _ordinal()), ("regressor", regressor)])
