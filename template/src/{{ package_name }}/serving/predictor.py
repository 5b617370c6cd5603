"""Predictors: a fitted pipeline, plus an exact shortcut for one-hot + linear pipelines.

For the default ``linear`` family (``features.build_pipeline``) a prediction is
``intercept + w[pickup zone] + w[drop-off zone] + w_distance * (distance - mean) / scale``.
:class:`LinearPredictor` reads those numbers from the fitted pipeline once, at load time, and
evaluates the sum in the order scikit-learn's sparse product uses, so it returns the same
floats without building a DataFrame per request. Any other pipeline goes through
:class:`PipelinePredictor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..contract import CATEGORICAL_FEATURES, FEATURES, NUMERICAL_FEATURES
from ..predict import predict

#: One row of features in ``contract.FEATURES`` order.
Row = tuple[float, ...]


class Predictor(Protocol):
    """Turns rows of features into predicted durations."""

    fast_path: bool

    def predict_rows(self, rows: Sequence[Row]) -> list[float]: ...


class PipelinePredictor:
    """Any fitted pipeline, through the level-1 ``predict`` (a DataFrame per call)."""

    fast_path = False

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def predict_rows(self, rows: Sequence[Row]) -> list[float]:
        frame = pd.DataFrame(list(rows), columns=FEATURES)
        return [float(value) for value in predict(self.pipeline, frame)]


class LinearPredictor:
    """One-hot zones + scaled distance + linear regressor, evaluated from lookup tables."""

    fast_path = True

    def __init__(
        self,
        intercept: float,
        zone_weights: list[dict[int, float]],
        numeric: list[tuple[float, float, float]],
    ) -> None:
        self.intercept = intercept
        self.zone_weights = zone_weights  # per categorical feature: category -> weight
        self.numeric = numeric  # per numerical feature: (mean, scale, weight)

    def predict_one(self, row: Row) -> float:
        total = 0.0
        n_cat = len(self.zone_weights)
        for weights, value in zip(self.zone_weights, row[:n_cat], strict=True):
            total += weights.get(int(value), 0.0)  # unseen categories add nothing
        for (mean, scale, weight), value in zip(self.numeric, row[n_cat:], strict=True):
            total += (value - mean) / scale * weight
        return total + self.intercept

    def predict_rows(self, rows: Sequence[Row]) -> list[float]:
        return [self.predict_one(row) for row in rows]


def _plain_one_hot(encoder: object) -> bool:
    return (
        isinstance(encoder, OneHotEncoder)
        and encoder.drop is None
        and encoder.handle_unknown == "ignore"
        and encoder.min_frequency is None
        and encoder.max_categories is None
    )


def linear_predictor(pipeline: Pipeline) -> LinearPredictor | None:
    """The lookup-table form of ``pipeline``, or None when it is not the plain linear family."""
    steps = list(pipeline.named_steps.values())
    if len(steps) != 2 or not isinstance(steps[0], ColumnTransformer):
        return None
    pre, regressor = steps
    if type(regressor) not in (Ridge, LinearRegression) or np.ndim(regressor.coef_) != 1:
        return None
    fitted = [(n, t, c) for n, t, c in pre.transformers_ if n != "remainder" or t != "drop"]
    if len(fitted) != 2:
        return None
    (_, encoder, cat_cols), (_, scaler, num_cols) = fitted
    if list(cat_cols) != CATEGORICAL_FEATURES or list(num_cols) != NUMERICAL_FEATURES:
        return None
    if not _plain_one_hot(encoder) or not isinstance(scaler, StandardScaler):
        return None
    if not (scaler.with_mean and scaler.with_std):
        return None
    coef = np.asarray(regressor.coef_, dtype="float64")
    zone_weights, offset = [], 0
    for categories in encoder.categories_:
        zone_weights.append({int(c): float(coef[offset + i]) for i, c in enumerate(categories)})
        offset += len(categories)
    numeric = [
        (float(m), float(s), float(coef[offset + i]))
        for i, (m, s) in enumerate(zip(scaler.mean_, scaler.scale_, strict=True))
    ]
    if offset + len(numeric) != coef.size:
        return None
    return LinearPredictor(float(regressor.intercept_), zone_weights, numeric)


def make_predictor(pipeline: Pipeline) -> Predictor:
    """The fastest exact predictor for ``pipeline``."""
    fast = linear_predictor(pipeline)
    return fast if fast is not None else PipelinePredictor(pipeline)
