"""Predict with a trained pipeline: inputs checked by the contract, outputs held to its range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.pipeline import Pipeline

from .problem import PROBLEM, Problem


def predict_with_count(
    model: Pipeline,
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    problem: Problem = PROBLEM,
    source: str = "input",
) -> tuple[npt.NDArray[np.float64], int]:
    """Predictions (one per record) within the target's range, and how many were clipped.

    Inputs are validated as training data is (extra columns are ignored); ``source`` names
    them in errors.
    """
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if len(frame) == 0:
        return np.empty(0, dtype="float64"), 0
    valid = problem.validate(frame, source)
    return problem.clip(model.predict(problem.feature_frame(valid)))


def predict(
    model: Pipeline,
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    problem: Problem = PROBLEM,
    source: str = "input",
) -> npt.NDArray[np.float64]:
    """Predictions in the target's unit, one per record, held to its plausible range."""
    return predict_with_count(model, records, problem, source)[0]
