"""Diagnostic figures of a model on its validation rows (no display needed).

Axes are named after the contract's target and its unit; errors are broken down by the first
numeric feature (or, without one, by the predicted value).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from ..problem import PROBLEM, Problem

Floats = npt.NDArray[np.float64]
BUCKETS = 5
_MAX_POINTS = 5_000


def _sample(n: int, seed: int = 0) -> npt.NDArray[np.int64]:
    if n <= _MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, _MAX_POINTS, replace=False))


def _label(problem: Problem) -> str:
    """``name (unit)`` axis label of the target."""
    target = problem.target
    return f"{target.name} ({target.unit})" if target.unit else target.name


def predicted_vs_actual(truth: Floats, predicted: Floats, problem: Problem = PROBLEM) -> Figure:
    """Scatter of predicted against actual values, with the diagonal of perfect predictions."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    keep = _sample(truth.size)
    ax.scatter(truth[keep], predicted[keep], s=4, alpha=0.3)
    low = float(min(truth.min(), predicted.min()))
    high = float(max(truth.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="black", linewidth=1)
    label = _label(problem)
    ax.set(xlabel=f"actual {label}", ylabel=f"predicted {label}")
    ax.set_title("Predicted vs actual")
    return fig


def residuals(truth: Floats, predicted: Floats, problem: Problem = PROBLEM) -> Figure:
    """Histogram of residuals (actual - predicted) in the target's unit."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(truth - predicted, bins=60)
    ax.axvline(0, color="black", linewidth=1)
    ax.set(xlabel=f"residual: actual - predicted {_label(problem)}", ylabel="rows")
    ax.set_title("Residuals")
    return fig


def bucket_column(problem: Problem = PROBLEM) -> str | None:
    """The feature errors are broken down by: the first numeric one (None: by prediction)."""
    return problem.numeric[0] if problem.numeric else None


def error_by_bucket(
    features: pd.DataFrame,
    truth: Floats,
    predicted: Floats,
    problem: Problem = PROBLEM,
    buckets: int = BUCKETS,
) -> pd.DataFrame:
    """Rows, MAE and mean residual per quantile bucket of :func:`bucket_column`.

    The table is indexed by bucket (low to high) and named after what was bucketed.
    """
    column = bucket_column(problem)
    values = (
        pd.to_numeric(features[column]).to_numpy(dtype="float64")
        if column is not None
        else predicted
    )
    bucket = pd.qcut(pd.Series(values), buckets, duplicates="drop")
    frame = pd.DataFrame(
        {"bucket": bucket, "abs_error": np.abs(truth - predicted), "residual": truth - predicted}
    )
    table = frame.groupby("bucket", observed=True).agg(
        rows=("abs_error", "size"), mae=("abs_error", "mean"), bias=("residual", "mean")
    )
    table.index = table.index.astype(str)
    table.index.name = column or f"predicted {problem.target.name}"
    return table


def error_by_bucket_figure(table: pd.DataFrame, problem: Problem = PROBLEM) -> Figure:
    """Bar chart of MAE per bucket (the table from :func:`error_by_bucket`)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.bar(table.index, table["mae"])
    ax.tick_params(axis="x", labelrotation=30)
    ax.set(xlabel=f"{table.index.name} (quantile buckets)", ylabel=f"MAE {_label(problem)}")
    ax.set_title(f"Error by {table.index.name}")
    fig.tight_layout()
    return fig
