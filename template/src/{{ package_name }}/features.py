"""The scikit-learn pipelines of each model family, built from the contract's feature roles."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from .problem import PROBLEM, Problem

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


def _one_hot(problem: Problem) -> ColumnTransformer:
    """Linear models: one-hot categories (unseen ones ignored), imputed and scaled numbers."""
    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    return ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), problem.categorical),
            ("numbers", numbers, problem.numeric),
        ]
    )


def _ordinal(problem: Problem) -> ColumnTransformer:
    """Trees: ordinal category codes (unseen and missing -> -1), numbers as they are.

    max_categories keeps codes below the gradient booster's 255-bin limit; the trees handle
    missing numbers themselves.
    """
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=-1,
        encoded_missing_value=-1,
        max_categories=255,
    )
    return ColumnTransformer(
        [("categories", encoder, problem.categorical), ("numbers", "passthrough", problem.numeric)]
    )


def build_pipeline(
    family: str = "linear", params: dict[str, Any] | None = None, problem: Problem = PROBLEM
) -> Pipeline:
    """Return an unfitted pipeline for ``family``; ``params`` override the regressor defaults."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}, expected one of {list(FAMILIES)}")
    kwargs = {**_DEFAULT_PARAMS[family], **(params or {})}
    if family == "linear":
        return Pipeline([("preprocess", _one_hot(problem)), ("regressor", Ridge(**kwargs))])
    if family == "random_forest":
        regressor: Any = RandomForestRegressor(**kwargs)
    else:
        categorical = np.arange(len(problem.categorical))
        regressor = HistGradientBoostingRegressor(categorical_features=categorical, **kwargs)
    return Pipeline([("preprocess", _ordinal(problem)), ("regressor", regressor)])
