"""Predict with a trained pipeline: inputs checked by the contract, outputs held to its range.

A regressor predicts one value per record in the target's unit, held to its plausible range. A
classifier predicts one of the declared classes per record, and the probability of each class
(columns ``probability_<class>`` in the contract's class order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.pipeline import Pipeline

from .problem import PROBLEM, Problem

Records = pd.DataFrame | Sequence[Mapping[str, Any]]


def _features(records: Records, problem: Problem, source: str) -> pd.DataFrame | None:
    """The validated features of ``records`` in model order; None when there are none."""
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if len(frame) == 0:
        return None
    return problem.feature_frame(problem.validate(frame, source))


def predict_with_count(
    model: Pipeline,
    records: Records,
    problem: Problem = PROBLEM,
    source: str = "input",
) -> tuple[npt.NDArray[Any], int]:
    """Predictions (one per record) within the target's range, and how many were clipped.

    Inputs are validated as training data is (extra columns are ignored); ``source`` names
    them in errors. A classifier's predictions are classes, none clipped.
    """
    if problem.is_classifier:
        return predict_classes(model, records, problem, source)[0], 0
    features = _features(records, problem, source)
    if features is None:
        return np.empty(0, dtype="float64"), 0
    return problem.clip(model.predict(features))


def predict(
    model: Pipeline,
    records: Records,
    problem: Problem = PROBLEM,
    source: str = "input",
) -> npt.NDArray[Any]:
    """One prediction per record: a value held to the target's range, or a class."""
    return predict_with_count(model, records, problem, source)[0]


def class_probabilities(
    model: Pipeline, features: pd.DataFrame, problem: Problem = PROBLEM
) -> npt.NDArray[np.float64]:
    """One row per record, one column per declared class (in the contract's order).

    A class the model never saw in training gets probability 0.
    """
    raw = np.asarray(model.predict_proba(features), dtype="float64")
    position = {label: index for index, label in enumerate(np.asarray(model.classes_).tolist())}
    ordered = np.zeros((len(features), len(problem.classes)))
    for column, label in enumerate(problem.classes):
        if label in position:
            ordered[:, column] = raw[:, position[label]]
    return ordered


def predict_classes(
    model: Pipeline,
    records: Records,
    problem: Problem = PROBLEM,
    source: str = "input",
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64]]:
    """A classifier's predicted classes (``Problem.decide``) and its class probabilities."""
    if not problem.is_classifier:
        raise ValueError(f"{problem.name} is a regression problem: it has no classes")
    classes = np.asarray(problem.classes)
    features = _features(records, problem, source)
    if features is None:
        return classes[:0], np.empty((0, len(classes)))
    probabilities = class_probabilities(model, features, problem)
    return problem.decide(probabilities), probabilities


def probability_column(label: Any) -> str:
    """The column (and response field) holding the probability of class ``label``."""
    return f"probability_{label}"


def predicted_column(problem: Problem = PROBLEM) -> str:
    """The column holding the prediction: ``predicted_<target>``."""
    return f"predicted_{problem.target.name}"


def predict_proba_frame(
    model: Pipeline,
    records: Records,
    problem: Problem = PROBLEM,
    source: str = "input",
) -> pd.DataFrame:
    """A classifier's predictions: the predicted class, then one probability per class."""
    labels, probabilities = predict_classes(model, records, problem, source)
    frame = pd.DataFrame(
        probabilities, columns=[probability_column(label) for label in problem.classes]
    )
    frame.insert(0, predicted_column(problem), labels)
    return frame
