"""The scikit-learn pipelines of each model family, built from the contract's feature roles.

The task picks the estimator: a regressor for regression, a classifier for binary and
multiclass targets. The estimator is the pipeline's ``model`` step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from .problem import PROBLEM, Problem

FAMILIES = ("linear", "random_forest", "hist_gradient_boosting")

#: The estimator of each family, for regression and for classification.
ESTIMATORS: dict[str, tuple[type[Any], type[Any]]] = {
    "linear": (Ridge, LogisticRegression),
    "random_forest": (RandomForestRegressor, RandomForestClassifier),
    "hist_gradient_boosting": (HistGradientBoostingRegressor, HistGradientBoostingClassifier),
}
_TREES = {
    "n_estimators": 50,
    "max_depth": 15,
    "min_samples_leaf": 5,
    "n_jobs": -1,
    "random_state": 42,
}
_BOOSTING = {"max_iter": 100, "learning_rate": 0.1, "random_state": 42}
_DEFAULT_PARAMS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # LogisticRegression (lbfgs) is multinomial for three or more classes.
    "linear": ({"alpha": 1.0}, {"C": 1.0, "max_iter": 2000}),
    "random_forest": (_TREES, _TREES),
    "hist_gradient_boosting": (_BOOSTING, _BOOSTING),
}


def default_params(family: str, problem: Problem = PROBLEM) -> dict[str, Any]:
    """The parameters ``family`` starts from for ``problem``'s task."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}, expected one of {list(FAMILIES)}")
    return dict(_DEFAULT_PARAMS[family][problem.is_classifier])


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
    """An unfitted pipeline for ``family`` and the task; ``params`` override its defaults."""
    kwargs = {**default_params(family, problem), **(params or {})}
    estimator_type = ESTIMATORS[family][problem.is_classifier]
    if family == "linear":
        return Pipeline([("preprocess", _one_hot(problem)), ("model", estimator_type(**kwargs))])
    if family == "hist_gradient_boosting":
        kwargs = {"categorical_features": np.arange(len(problem.categorical)), **kwargs}
    return Pipeline([("preprocess", _ordinal(problem)), ("model", estimator_type(**kwargs))])
