"""Train, evaluate and persist a model of the declared problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.pipeline import Pipeline

from .features import build_pipeline
from .predict import predict
from .problem import PROBLEM, DataValidationError, Problem


class ModelFileError(Exception):
    """A model file is missing or does not hold a fitted pipeline."""


def _target(df: pd.DataFrame, problem: Problem) -> npt.NDArray[np.float64]:
    name = problem.target.name
    if name not in df.columns:
        raise DataValidationError(f"missing target column {name!r}; label the data first")
    return df[name].to_numpy(dtype="float64")


def train(
    df: pd.DataFrame,
    family: str = "linear",
    params: dict[str, Any] | None = None,
    problem: Problem = PROBLEM,
) -> Pipeline:
    """Fit a ``family`` pipeline on validated, labelled rows."""
    model = build_pipeline(family, params, problem)
    model.fit(problem.feature_frame(df), _target(df, problem))
    return model


def evaluate(model: Pipeline, df: pd.DataFrame, problem: Problem = PROBLEM) -> dict[str, float]:
    """rmse and mae (in the target's unit) and r2 of ``model``'s predictions on ``df``."""
    truth = _target(df, problem)
    predicted = predict(model, df, problem)
    return {
        "rmse": float(root_mean_squared_error(truth, predicted)),
        "mae": float(mean_absolute_error(truth, predicted)),
        "r2": float(r2_score(truth, predicted)),
    }


def save_model(model: Pipeline, path: str | Path) -> Path:
    """Write ``model`` with joblib, creating parent folders, and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def load_model(path: str | Path) -> Pipeline:
    """Load a pipeline written by :func:`save_model`."""
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
    return model
