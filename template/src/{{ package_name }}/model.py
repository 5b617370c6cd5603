"""Train, evaluate and persist a model of the declared problem; the metrics of each task.

``METRICS`` is the one registry of metrics: each says which tasks it fits, whether greater is
better and whether it scores probabilities. Gates compare a model with another through
``is_better`` (the metric's direction and a relative margin), and refuse a model that fails
``sanity_problems``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import is_classifier
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.pipeline import Pipeline

from .features import build_pipeline
from .outcomes import ModelFileError as ModelFileError  # raised here; callers catch it from here
from .predict import predict, predict_classes
from .problem import PROBLEM, DataValidationError, Problem

#: Probabilities may miss 0, 1 or a row sum of 1 by this much (float rounding).
PROBABILITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Scores:
    """What a metric scores: true targets, predictions and (classifiers) class probabilities."""

    truth: npt.NDArray[Any]
    predicted: npt.NDArray[Any]
    probabilities: npt.NDArray[np.float64] | None = None
    classes: tuple[Any, ...] = ()
    positive: Any = None

    @property
    def proba(self) -> npt.NDArray[np.float64]:
        if self.probabilities is None:
            raise ValueError("this metric needs class probabilities")
        return self.probabilities

    @property
    def is_positive(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.truth == self.positive, dtype=bool)

    @property
    def positive_proba(self) -> npt.NDArray[np.float64]:
        return self.proba[:, self.classes.index(self.positive)]


@dataclass(frozen=True)
class Metric:
    """A metric: its function, its direction, whether it needs probabilities, its tasks."""

    function: Callable[[Scores], float]
    greater_is_better: bool
    needs_probabilities: bool
    tasks: tuple[str, ...]


def _log_loss(scores: Scores) -> float:
    # scikit-learn reads probability columns in sorted class order
    order = sorted(range(len(scores.classes)), key=lambda i: scores.classes[i])
    labels = [scores.classes[i] for i in order]
    return float(log_loss(scores.truth, scores.proba[:, order], labels=labels))


def _ranking(score: Callable[..., Any]) -> Callable[[Scores], float]:
    """ROC or PR AUC of the positive class; NaN when the rows hold one class only."""

    def metric(scores: Scores) -> float:
        positives = scores.is_positive
        if positives.all() or not positives.any():
            return float("nan")
        return float(score(positives, scores.positive_proba))

    return metric


def _macro_f1(scores: Scores) -> float:
    labels = list(scores.classes)
    return float(
        f1_score(scores.truth, scores.predicted, labels=labels, average="macro", zero_division=0)
    )


CLASSIFICATION: tuple[str, ...] = ("binary", "multiclass")
METRICS: dict[str, Metric] = {
    "rmse": Metric(
        lambda s: float(root_mean_squared_error(s.truth, s.predicted)),
        False,
        False,
        ("regression",),
    ),
    "mae": Metric(
        lambda s: float(mean_absolute_error(s.truth, s.predicted)), False, False, ("regression",)
    ),
    "r2": Metric(lambda s: float(r2_score(s.truth, s.predicted)), True, False, ("regression",)),
    "log_loss": Metric(_log_loss, False, True, CLASSIFICATION),
    "roc_auc": Metric(_ranking(roc_auc_score), True, True, ("binary",)),
    "pr_auc": Metric(_ranking(average_precision_score), True, True, ("binary",)),
    "macro_f1": Metric(_macro_f1, True, False, ("multiclass",)),
    "accuracy": Metric(
        lambda s: float(accuracy_score(s.truth, s.predicted)), True, False, CLASSIFICATION
    ),
}
#: The metric each task optimises and gates on unless configured otherwise.
PRIMARY_METRIC: dict[str, str] = {
    "regression": "rmse",
    "binary": "log_loss",
    "multiclass": "log_loss",
}


def metric_names(problem: Problem = PROBLEM) -> list[str]:
    """The metrics of ``problem``'s task, in registry order."""
    return [name for name, metric in METRICS.items() if problem.task in metric.tasks]


def primary_metric(problem: Problem = PROBLEM) -> str:
    """The default metric to optimise and gate on: rmse, or log_loss for classifiers."""
    return PRIMARY_METRIC[problem.task]


def check_metric(name: str, problem: Problem = PROBLEM) -> str:
    """``name`` if it is a metric of ``problem``'s task, else a ValueError listing them."""
    if name not in metric_names(problem):
        raise ValueError(
            f"metric {name!r} does not fit the {problem.task} task, use one of "
            f"{metric_names(problem)}"
        )
    return name


def required(metric: str, champion: float, margin: float = 0.0) -> float:
    """The score a challenger needs to beat ``champion`` by the relative ``margin``."""
    step = abs(champion) * margin
    return champion + step if METRICS[metric].greater_is_better else champion - step


def is_better(metric: str, challenger: float, champion: float, margin: float = 0.0) -> bool:
    """Whether ``challenger`` reaches :func:`required` (in ``metric``'s direction); NaN never."""
    needed = required(metric, champion, margin)
    if METRICS[metric].greater_is_better:
        return bool(challenger >= needed)
    return bool(challenger <= needed)


def _target(df: pd.DataFrame, problem: Problem) -> npt.NDArray[Any]:
    name = problem.target.name
    if name not in df.columns:
        raise DataValidationError(f"missing target column {name!r}; label the data first")
    if problem.is_classifier:
        return problem.class_labels(df[name])[0].to_numpy()
    return df[name].to_numpy(dtype="float64")


def train(
    df: pd.DataFrame,
    family: str = "linear",
    params: dict[str, Any] | None = None,
    problem: Problem = PROBLEM,
) -> Pipeline:
    """Fit a ``family`` pipeline on validated, labelled rows."""
    model = build_pipeline(family, params, problem)
    target = _target(df, problem)
    if problem.is_classifier and len(pd.unique(target)) < 2:
        raise DataValidationError(
            f"training data has one {problem.target.name} class only ({target[0]!r}); "
            "a classifier needs at least two"
        )
    model.fit(problem.feature_frame(df), target)
    return model


def scores(model: Pipeline, df: pd.DataFrame, problem: Problem = PROBLEM) -> Scores:
    """``model``'s predictions (and class probabilities) on labelled ``df``, with the truth."""
    truth = _target(df, problem)
    if not problem.is_classifier:
        return Scores(truth, predict(model, df, problem))
    predicted, probabilities = predict_classes(model, df, problem)
    return Scores(truth, predicted, probabilities, problem.classes, problem.positive_class)


def evaluate(model: Pipeline, df: pd.DataFrame, problem: Problem = PROBLEM) -> dict[str, float]:
    """The task's metrics of ``model`` on ``df``: rmse, mae (target's unit), r2 on clipped
    predictions; log_loss, roc_auc, pr_auc, accuracy (binary); log_loss, macro_f1, accuracy
    (multiclass). A ranking metric is NaN when ``df`` holds one class only."""
    found = scores(model, df, problem)
    return {name: METRICS[name].function(found) for name in metric_names(problem)}


def sanity_problems(model: Pipeline, df: pd.DataFrame, problem: Problem = PROBLEM) -> list[str]:
    """What disqualifies ``model`` on the rows of ``df`` (features suffice); empty when sane.

    Regression: predictions must be finite. Classification: the model predicts more than one
    class, and its probabilities are probabilities (finite, in [0, 1], rows summing to 1).
    """
    if not problem.is_classifier:
        values = np.asarray(predict(model, df, problem), dtype="float64")
        bad = int(np.count_nonzero(~np.isfinite(values)))
        return [f"{bad} prediction(s) are NaN or infinite"] if bad else []
    if not hasattr(model, "predict_proba"):
        return [f"the model gives no class probabilities ({type(model).__name__})"]
    predicted, probabilities = predict_classes(model, df, problem)
    found = []
    distinct = pd.unique(predicted)
    if len(predicted) > 1 and len(distinct) < 2:
        found.append(f"predicts one class only ({distinct[0]!r}) for {len(predicted)} rows")
    if not np.isfinite(probabilities).all():
        found.append("class probabilities are NaN or infinite")
    elif (
        (probabilities < -PROBABILITY_TOLERANCE) | (probabilities > 1 + PROBABILITY_TOLERANCE)
    ).any():
        found.append("class probabilities outside [0, 1]")
    else:
        sums = probabilities.sum(axis=1)
        off = int(np.count_nonzero(np.abs(sums - 1) > PROBABILITY_TOLERANCE))
        if off:
            found.append(f"class probabilities of {off} row(s) do not sum to 1")
    return found


def save_model(model: Pipeline, path: str | Path) -> Path:
    """Write ``model`` with joblib, creating parent folders, and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def load_model(path: str | Path, problem: Problem = PROBLEM) -> Pipeline:
    """Load a pipeline written by :func:`save_model` that fits ``problem``'s task."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; train a model first (make train)")
    try:
        model = joblib.load(path)
    except Exception as exc:  # unpickling errors come in many types
        raise ModelFileError(f"{path}: cannot load model ({exc})") from exc
    if not isinstance(model, Pipeline):
        raise ModelFileError(
            f"{path}: expected a scikit-learn Pipeline, got {type(model).__name__}"
        )
    if is_classifier(model) != problem.is_classifier:
        kind = "classifier" if is_classifier(model) else "regressor"
        raise ModelFileError(
            f"{path}: holds a {kind}, but contract.py declares a {problem.task} task; "
            "train a model for it (make train)"
        )
    return model
