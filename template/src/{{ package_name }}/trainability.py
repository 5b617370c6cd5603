"""Refuse a training run whose model could not be trusted, before it is saved or registered.

A run is refused (``TrainingRefused``, one line naming the cause) when its training or
validation rows are fewer than a minimum, when a class the contract declares is absent from
its training rows (the model would give it probability 0 in every answer), or when a metric is
undefined (NaN) on its validation rows (a single-class validation window, for example). A
regressor no better than predicting the training rows' mean is not refused, but reported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .outcomes import MIN_TRAIN_ROWS, MIN_VALIDATION_ROWS
from .problem import PROBLEM, DataValidationError, Problem


class TrainingRefused(DataValidationError):
    """Training would give a model that cannot be trusted; nothing is saved or registered."""


@dataclass(frozen=True)
class Baseline:
    """A regressor's validation RMSE against predicting the training rows' mean."""

    rmse: float
    baseline_rmse: float

    @property
    def beaten(self) -> bool:
        return self.rmse < self.baseline_rmse

    def warning(self) -> str | None:
        """One line when the model is no better than the mean, else None."""
        if self.beaten:
            return None
        return (
            f"validation rmse {self.rmse:.4g} is no better than predicting the training mean "
            f"(rmse {self.baseline_rmse:.4g}): the model has learned nothing useful"
        )


def check_rows(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    min_train: int = MIN_TRAIN_ROWS,
    min_validation: int = MIN_VALIDATION_ROWS,
    problem: Problem = PROBLEM,
) -> None:
    """Refuse too few training or validation rows, or training rows missing a declared class."""
    for what, frame, minimum, key in [
        ("training", train, min_train, "train"),
        ("validation", validation, min_validation, "validation"),
    ]:
        if len(frame) < minimum:
            raise TrainingRefused(
                f"{len(frame)} {what} row(s), fewer than the minimum {minimum} "
                f"(minimum_rows.{key}): widen the data's window or lower the minimum"
            )
    absent = missing_classes(train, problem)
    if absent:
        raise TrainingRefused(
            f"the training rows hold no row of the declared class(es) {absent} of "
            f"{problem.target.name!r}: the model could never predict them; widen the training "
            "window (or remove the class from contract.py)"
        )


def missing_classes(train: pd.DataFrame, problem: Problem = PROBLEM) -> list[Any]:
    """The declared classes absent from ``train``'s labelled target (none for a regressor)."""
    if not problem.is_classifier:
        return []
    seen = set(problem.class_labels(train[problem.target.name])[0].tolist())
    return [label for label in problem.classes if label not in seen]


def check_metrics(
    metrics: Mapping[str, float], validation: pd.DataFrame, problem: Problem = PROBLEM
) -> None:
    """Refuse validation metrics that are undefined (NaN or infinite), naming them and why."""
    undefined = [name for name, value in metrics.items() if not math.isfinite(value)]
    if not undefined:
        return
    why = ""
    if problem.is_classifier:
        present = sorted(map(str, pd.unique(validation[problem.target.name])))
        why = f"; the validation rows hold the class(es) {present} only"
    raise TrainingRefused(
        f"{', '.join(undefined)} undefined on the {len(validation)} validation row(s){why}: "
        "choose a validation window that holds every class"
    )


def baseline(
    train: pd.DataFrame, validation: pd.DataFrame, rmse: float, problem: Problem = PROBLEM
) -> Baseline | None:
    """A regressor's ``rmse`` beside the RMSE of predicting ``train``'s mean (None: classifier)."""
    if problem.is_classifier:
        return None
    name = problem.target.name
    mean = float(train[name].astype("float64").mean())
    truth = validation[name].to_numpy(dtype="float64")
    return Baseline(rmse, float(np.sqrt(np.mean((truth - mean) ** 2))))
