"""The scikit-learn pipelines of each model family, built from the contract's feature roles.

The task picks the estimator: a regressor for regression, a classifier for binary and
multiclass targets. The estimator is the pipeline's ``model`` step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
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
from sklearn.utils.validation import check_is_fitted, validate_data

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


#: A linear model's numbers are held to these quantiles of the training data.
CLIP_QUANTILES = (0.001, 0.999)


class QuantileClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Hold each number to the ``lower`` and ``upper`` quantiles it had in training.

    A rare extreme value the contract lets through (a 250,000-mile trip) would otherwise pull a
    linear model's slope towards itself in training, and its prediction off the scale in use.
    Missing values stay missing.
    """

    def __init__(self, lower: float = CLIP_QUANTILES[0], upper: float = CLIP_QUANTILES[1]):
        self.lower = lower
        self.upper = upper

    def fit(self, X: Any, y: Any = None) -> QuantileClipper:
        values = validate_data(self, X, dtype="float64", ensure_all_finite="allow-nan")
        if not 0 <= self.lower < self.upper <= 1:
            raise ValueError(
                f"quantiles must satisfy 0 <= lower < upper <= 1, got {self.lower}, {self.upper}"
            )
        self.low_ = np.nanquantile(values, self.lower, axis=0)
        self.high_ = np.nanquantile(values, self.upper, axis=0)
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self)
        values = validate_data(self, X, dtype="float64", ensure_all_finite="allow-nan", reset=False)
        return np.clip(values, self.low_, self.high_)


def _one_hot(problem: Problem) -> ColumnTransformer:
    """Linear models: one-hot categories (unseen ones ignored); numbers imputed, held to their
    training quantiles (``QuantileClipper``) and scaled."""
    numbers = make_pipeline(SimpleImputer(strategy="median"), QuantileClipper(), StandardScaler())
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
