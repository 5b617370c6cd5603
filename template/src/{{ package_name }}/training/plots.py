"""Diagnostic figures of a model on its validation month (no display needed)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from ..contract import DISTANCE

Floats = npt.NDArray[np.float64]
DISTANCE_BUCKETS: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, np.inf)
_MAX_POINTS = 5_000


def _sample(n: int, seed: int = 0) -> npt.NDArray[np.int64]:
    if n <= _MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, _MAX_POINTS, replace=False))


def predicted_vs_actual(truth: Floats, predicted: Floats) -> Figure:
    """Scatter of predicted against actual minutes, with the diagonal of perfect predictions."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    keep = _sample(truth.size)
    ax.scatter(truth[keep], predicted[keep], s=4, alpha=0.3)
    top = float(max(truth.max(), predicted.max()))
    ax.plot([0, top], [0, top], color="black", linewidth=1)
    ax.set(xlabel="actual duration (min)", ylabel="predicted duration (min)")
    ax.set_title("Predicted vs actual")
    return fig


def residuals(truth: Floats, predicted: Floats) -> Figure:
    """Histogram of residuals (actual - predicted) in minutes."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(truth - predicted, bins=60)
    ax.axvline(0, color="black", linewidth=1)
    ax.set(xlabel="residual: actual - predicted (min)", ylabel="trips")
    ax.set_title("Residuals")
    return fig


def error_by_distance(features: pd.DataFrame, truth: Floats, predicted: Floats) -> pd.DataFrame:
    """Trips, MAE and mean residual per trip-distance bucket."""
    bucket = pd.cut(features[DISTANCE], DISTANCE_BUCKETS, right=False)
    frame = pd.DataFrame(
        {
            "bucket": bucket.astype(str),
            "abs_error": np.abs(truth - predicted),
            "residual": truth - predicted,
        }
    )
    table = frame.groupby("bucket", sort=False, observed=True).agg(
        trips=("abs_error", "size"), mae=("abs_error", "mean"), bias=("residual", "mean")
    )
    order = [str(interval) for interval in bucket.cat.categories if str(interval) in table.index]
    return table.loc[order]


def error_by_distance_figure(table: pd.DataFrame) -> Figure:
    """Bar chart of MAE per distance bucket (the table from :func:`error_by_distance`)."""
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.bar(table.index.astype(str), table["mae"])
    ax.set(xlabel="trip distance (miles)", ylabel="MAE (min)")
    ax.set_title("Error by distance")
    return fig
