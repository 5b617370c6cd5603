"""Predictors: a fitted pipeline, and a shortcut for the one-hot + linear family.

A ``linear`` pipeline (``features.build_pipeline``) predicts a sum: the intercept, one weight
per category of each categorical feature (one-hot; unseen categories add nothing) and, per
numeric feature, a slope times the imputed value, held to its training quantiles and scaled.
:class:`LinearPredictor` reads those numbers from the fitted pipeline once and adds them up per
row, without a DataFrame. A linear
classifier (logistic regression) is one such sum per class (one for binary), turned into class
probabilities by the logistic or softmax function: :class:`LinearClassifier`. A shortcut is
used only if it gives the pipeline's predictions (a classifier's probabilities) on rows drawn
from the contract (plus unseen categories and missing values) when the model is loaded; any
other model, or a disagreement, is served by :class:`PipelinePredictor`. Regression
predictions are raw: the service holds them to the target's range.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..features import QuantileClipper
from ..predict import class_probabilities
from ..problem import PROBLEM, Problem, is_missing
from ..sampledata import sample_frame

log = logging.getLogger(__name__)
#: One row of features in ``PROBLEM.features`` order (None: a missing value).
Row = tuple[Any, ...]
#: Per categorical feature: its index in a row, weight per category, weight of a missing value.
CategoryTerm = tuple[int, dict[Any, float], float]
#: Per numeric feature: its index in a row, value for a missing one, the bounds it is held to,
#: mean, scale and slope.
NumberTerm = tuple[int, float, float, float, float, float, float]
CHECK_ROWS = 200
RELATIVE_TOLERANCE = 1e-9


#: A classifier's probabilities of one row, in the contract's class order.
Probabilities = tuple[float, ...]


class Predictor(Protocol):
    """Turns rows of features into predictions: raw values, or a classifier's probabilities."""

    fast_path: bool

    def predict_rows(self, rows: Sequence[Row]) -> list[Any]:
        """A regressor's raw values; a classifier's classes, by the contract's rule (``decide``)."""
        ...

    def predict_proba_rows(self, rows: Sequence[Row]) -> list[Probabilities]:
        """A classifier's class probabilities (TypeError for a regressor)."""
        ...


def _no_classes() -> TypeError:
    return TypeError("a regression model has no class probabilities")


class PipelinePredictor:
    """Any fitted pipeline, on rows validated and typed by the contract (a DataFrame a call)."""

    fast_path = False

    def __init__(self, pipeline: Pipeline, problem: Problem = PROBLEM) -> None:
        self.pipeline = pipeline
        self.problem = problem

    def _features(self, rows: Sequence[Row]) -> pd.DataFrame:
        frame = pd.DataFrame(list(rows), columns=self.problem.features)
        return self.problem.feature_frame(self.problem.validate(frame, "request"))

    def predict_rows(self, rows: Sequence[Row]) -> list[Any]:
        if self.problem.is_classifier:
            return decided(self.problem, self.predict_proba_rows(rows))
        return [float(v) for v in self.pipeline.predict(self._features(rows))]

    def predict_proba_rows(self, rows: Sequence[Row]) -> list[Probabilities]:
        if not self.problem.is_classifier:
            raise _no_classes()
        found = class_probabilities(self.pipeline, self._features(rows), self.problem)
        return [tuple(row) for row in found.tolist()]


class LinearPredictor:
    """A one-hot + linear pipeline, evaluated from lookup tables."""

    fast_path = True

    def __init__(
        self, intercept: float, categories: list[CategoryTerm], numbers: list[NumberTerm]
    ) -> None:
        self.intercept = intercept
        self.categories = categories
        self.numbers = numbers

    def predict_one(self, row: Row) -> float:
        # in the order scikit-learn's sparse product adds them: categories, numbers, intercept
        total = 0.0
        for index, weights, missing in self.categories:
            value = row[index]
            total += missing if is_missing(value) else weights.get(value, 0.0)
        for index, fill, low, high, mean, scale, slope in self.numbers:
            value = row[index]
            value = fill if is_missing(value) else value
            value = low if value < low else high if value > high else value
            total += (value - mean) / scale * slope
        return total + self.intercept

    def predict_rows(self, rows: Sequence[Row]) -> list[Any]:
        return [self.predict_one(row) for row in rows]

    def predict_proba_rows(self, rows: Sequence[Row]) -> list[Probabilities]:
        raise _no_classes()


def _logistic(score: float) -> float:
    """1 / (1 + e^-score), without overflow for large negative scores."""
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    small = math.exp(score)
    return small / (1.0 + small)


class LinearClassifier:
    """A one-hot + logistic regression pipeline: one linear score per class (binary: one).

    ``positions[j]`` is where the model's ``j``-th class stands in the contract's order.
    """

    fast_path = True

    def __init__(self, scores: list[LinearPredictor], positions: list[int], problem: Problem):
        self.scores = scores
        self.positions = positions
        self.problem = problem

    def probabilities(self, row: Row) -> Probabilities:
        """The row's class probabilities, in the contract's class order."""
        if len(self.scores) == 1:  # binary: the score is the log-odds of the model's 2nd class
            second = _logistic(self.scores[0].predict_one(row))
            found = [1.0 - second, second]
        else:  # multinomial: softmax of the scores
            raw = [score.predict_one(row) for score in self.scores]
            top = max(raw)
            exps = [math.exp(value - top) for value in raw]
            total = sum(exps)
            found = [value / total for value in exps]
        ordered = [0.0] * len(self.problem.classes)  # a class never seen in training: 0
        for position, probability in zip(self.positions, found, strict=True):
            ordered[position] = probability
        return tuple(ordered)

    def predict_proba_rows(self, rows: Sequence[Row]) -> list[Probabilities]:
        return [self.probabilities(row) for row in rows]

    def predict_rows(self, rows: Sequence[Row]) -> list[Any]:
        return decided(self.problem, self.predict_proba_rows(rows))


def decided(problem: Problem, probabilities: Sequence[Probabilities]) -> list[Any]:
    """The classes ``problem`` decides (``Problem.decide``) from rows of probabilities, as Python
    values."""
    classes: list[Any] = problem.decide(np.asarray(probabilities, dtype="float64")).tolist()
    return classes


def _plain_one_hot(encoder: object) -> bool:
    return (
        isinstance(encoder, OneHotEncoder)
        and encoder.drop is None
        and encoder.handle_unknown == "ignore"
        and encoder.min_frequency is None
        and encoder.max_categories is None
    )


def _category_terms(
    encoder: OneHotEncoder, indexes: list[int], coef: np.ndarray, offset: int
) -> tuple[list[CategoryTerm], int]:
    terms = []
    for index, categories in zip(indexes, encoder.categories_, strict=True):
        weights, missing = {}, 0.0
        for i, category in enumerate(categories.tolist()):  # numpy scalars -> Python values
            if is_missing(category):
                missing = float(coef[offset + i])
            else:
                weights[category] = float(coef[offset + i])
        terms.append((index, weights, missing))
        offset += len(categories)
    return terms, offset


@dataclass
class NumberSteps:
    """What a numeric transformer does, in order: fill missing values, hold values to bounds
    (a ``QuantileClipper``), scale."""

    fill: np.ndarray | None = None
    clipper: QuantileClipper | None = None
    scaler: StandardScaler | None = None


def _number_steps(transformer: object) -> NumberSteps | None:
    """The steps of a numeric transformer, in that order (None: another layout)."""
    steps = (
        list(transformer.named_steps.values())
        if isinstance(transformer, Pipeline)
        else [transformer]
    )
    found = NumberSteps()
    for step in steps:
        later = found.clipper is not None or found.scaler is not None
        if isinstance(step, SimpleImputer) and found.fill is None and not later:
            if step.add_indicator or not is_missing(step.missing_values):
                return None
            found.fill = np.asarray(step.statistics_, dtype="float64")
        elif type(step) is QuantileClipper and found.clipper is None and found.scaler is None:
            found.clipper = step
        elif isinstance(step, StandardScaler) and found.scaler is None:
            found.scaler = step
        elif step != "passthrough":
            return None
    return found


def _number_terms(
    transformer: object, indexes: list[int], coef: np.ndarray, offset: int
) -> tuple[list[NumberTerm], int] | None:
    found = _number_steps(transformer)
    if found is None:
        return None
    n = len(indexes)
    scaler, clipper = found.scaler, found.clipper
    means = scaler.mean_ if scaler is not None and scaler.with_mean else np.zeros(n)
    scales = scaler.scale_ if scaler is not None and scaler.with_std else np.ones(n)
    fills = found.fill if found.fill is not None else np.full(n, np.nan)
    lows = clipper.low_ if clipper is not None else np.full(n, -np.inf)
    highs = clipper.high_ if clipper is not None else np.full(n, np.inf)
    if len(fills) != n:  # the imputer dropped a column that was empty in training
        return None
    terms = [
        (
            index,
            float(fills[i]),
            float(lows[i]),
            float(highs[i]),
            float(means[i]),
            float(scales[i]),
            float(coef[offset + i]),
        )
        for i, index in enumerate(indexes)
    ]
    return terms, offset + n


def _linear_sum(
    pre: ColumnTransformer, coef: np.ndarray, intercept: float, problem: Problem
) -> LinearPredictor | None:
    """The lookup tables of ``intercept + coef . pre(row)``, or None for other layouts."""
    position = {name: index for index, name in enumerate(problem.features)}
    categories: list[CategoryTerm] = []
    numbers: list[NumberTerm] = []
    offset = 0
    for name, transformer, columns in pre.transformers_:
        if len(columns) == 0 or (name == "remainder" and transformer == "drop"):
            continue
        if any(column not in position for column in columns):
            return None
        indexes = [position[column] for column in columns]
        if _plain_one_hot(transformer):
            terms, offset = _category_terms(transformer, indexes, coef, offset)
            categories += terms
        else:
            found = _number_terms(transformer, indexes, coef, offset)
            if found is None:
                return None
            more, offset = found
            numbers += more
    if offset != coef.size:
        return None
    return LinearPredictor(intercept, categories, numbers)


def _linear_classifier(
    pre: ColumnTransformer, model: LogisticRegression, problem: Problem
) -> LinearClassifier | None:
    coef = np.asarray(model.coef_, dtype="float64")
    intercepts = np.asarray(model.intercept_, dtype="float64")
    labels = [_python(label) for label in np.asarray(model.classes_).tolist()]
    binary = len(labels) == 2
    if len(coef) != (1 if binary else len(labels)) or any(
        label not in problem.classes for label in labels
    ):
        return None
    scores = [
        _linear_sum(pre, row, float(b), problem) for row, b in zip(coef, intercepts, strict=True)
    ]
    complete = [score for score in scores if score is not None]
    if len(complete) != len(scores):
        return None
    positions = [problem.classes.index(label) for label in labels]
    return LinearClassifier(complete, positions, problem)


def linear_predictor(
    pipeline: Pipeline, problem: Problem = PROBLEM
) -> LinearPredictor | LinearClassifier | None:
    """The lookup-table form of a one-hot + linear ``pipeline``, or None for other layouts."""
    steps = list(pipeline.named_steps.values())
    if len(steps) != 2 or not isinstance(steps[0], ColumnTransformer):
        return None
    pre, model = steps
    if problem.is_classifier:
        if type(model) is not LogisticRegression:
            return None
        return _linear_classifier(pre, model, problem)
    if type(model) not in (Ridge, LinearRegression) or np.ndim(model.coef_) != 1:
        return None
    coef = np.asarray(model.coef_, dtype="float64")
    return _linear_sum(pre, coef, float(model.intercept_), problem)


def check_rows(problem: Problem = PROBLEM, n_rows: int = CHECK_ROWS) -> list[Row]:
    """Rows drawn from the contract, plus unseen categories, missing values where allowed and
    numbers at their declared bounds."""
    frame = problem.feature_frame(sample_frame(n_rows, seed=7, problem=problem))
    rows: list[Row] = [tuple(row) for row in frame.astype(object).itertuples(index=False)]
    first = list(rows[0])
    for index, column in enumerate(problem.feature_columns):
        if column.role == "categorical" and column.categories is None:
            unseen: Any = "unseen category" if column.kind == "string" else column.maximum
            if unseen is not None:
                rows.append((*first[:index], unseen, *first[index + 1 :]))
        if column.nullable:
            rows.append((*first[:index], None, *first[index + 1 :]))
        if column.role == "numeric":  # beyond the training quantiles a number is clipped
            for bound in (column.minimum, column.maximum):
                if bound is not None and math.isfinite(bound):
                    rows.append((*first[:index], bound, *first[index + 1 :]))
    return [tuple(_python(value) for value in row) for row in rows]


def _python(value: Any) -> Any:
    """A value as a request delivers it: Python scalars, None for missing."""
    if is_missing(value):
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def agrees(fast: Predictor, slow: Predictor, rows: Sequence[Row], problem: Problem) -> bool:
    """Whether ``fast`` gives ``slow``'s predictions (a classifier's probabilities) on ``rows``,
    to rounding."""
    answer = fast.predict_proba_rows if problem.is_classifier else fast.predict_rows
    try:
        ours = np.asarray(answer(rows), dtype="float64")
    except (TypeError, ValueError, KeyError):
        return False
    if problem.is_classifier:
        theirs = np.asarray(slow.predict_proba_rows(rows), dtype="float64")
        tolerance = RELATIVE_TOLERANCE  # probabilities: 0..1
    else:
        theirs = np.asarray(slow.predict_rows(rows), dtype="float64")
        tolerance = RELATIVE_TOLERANCE * problem.target_scale
    return ours.shape == theirs.shape and bool(
        np.allclose(ours, theirs, rtol=RELATIVE_TOLERANCE, atol=tolerance)
    )


def make_predictor(pipeline: Pipeline, problem: Problem = PROBLEM) -> Predictor:
    """The fastest predictor that gives ``pipeline``'s predictions."""
    slow = PipelinePredictor(pipeline, problem)
    fast = linear_predictor(pipeline, problem)
    if fast is None:
        return slow
    if not agrees(fast, slow, check_rows(problem), problem):
        log.warning("the linear shortcut disagrees with the pipeline; serving the pipeline")
        return slow
    return fast
