"""Diagnostic figures of a model on its validation rows (no display needed).

Regression: predicted against actual values, residuals and errors by bucket; axes are named after
the contract's target and its unit, errors broken down by the first numeric feature (or, without
one, by the predicted value). Classification: a confusion matrix and a calibration (reliability)
plot: of the positive class for a binary task, of each class against the rest for multiclass.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from ..problem import PROBLEM, Problem

Floats = npt.NDArray[np.float64]
BUCKETS = 5
#: Probability bins of the calibration plot.
BINS = 10
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


def confusion_table(
    truth: npt.ArrayLike, predicted: npt.ArrayLike, problem: Problem = PROBLEM
) -> pd.DataFrame:
    """Rows per actual (index) and predicted (columns) class, in the contract's class order."""
    classes = list(problem.classes)
    table = pd.crosstab(
        pd.Categorical(np.asarray(truth), categories=classes),
        pd.Categorical(np.asarray(predicted), categories=classes),
        dropna=False,
    )
    table.index = pd.Index([str(c) for c in classes], name=f"actual {problem.target.name}")
    table.columns = pd.Index([str(c) for c in classes], name=f"predicted {problem.target.name}")
    return table


def confusion_figure(table: pd.DataFrame) -> Figure:
    """Heat map of :func:`confusion_table`: counts, coloured by their share of the actual class."""
    counts = table.to_numpy()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.6 * len(table)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if shares[row, column] > 0.5 else "black"
        ax.text(column, row, str(count), ha="center", va="center", color=colour)
    ticks = np.arange(len(table))
    ax.set_xticks(ticks, list(table.columns), rotation=30)
    ax.set_yticks(ticks, list(table.index))
    ax.set(xlabel=table.columns.name, ylabel=table.index.name)
    ax.set_title("Confusion matrix")
    fig.colorbar(image, ax=ax, label="share of the actual class")
    fig.tight_layout()
    return fig


def calibration_table(
    truth: npt.ArrayLike,
    probabilities: Floats,
    problem: Problem = PROBLEM,
    bins: int = BINS,
) -> pd.DataFrame:
    """Mean predicted probability against the observed share, per probability bin and class.

    Binary: the positive class only; multiclass: each class against the rest. Empty bins are
    left out; ``rows`` counts the rows in each bin.
    """
    truth = np.asarray(truth)
    if problem.task == "binary":
        shown = [problem.classes.index(problem.positive_class)]
    else:
        shown = list(range(len(problem.classes)))
    parts = []
    for column in shown:
        label = problem.classes[column]
        predicted = probabilities[:, column]
        frame = pd.DataFrame(
            {
                "bin": np.clip((predicted * bins).astype(int), 0, bins - 1),
                "predicted": predicted,
                "observed": (truth == label).astype("float64"),
            }
        )
        table = frame.groupby("bin").agg(
            predicted=("predicted", "mean"), observed=("observed", "mean"), rows=("bin", "size")
        )
        parts.append(table.reset_index().assign(**{"class": str(label)}))
    return pd.concat(parts, ignore_index=True)[["class", "bin", "predicted", "observed", "rows"]]


def calibration_figure(table: pd.DataFrame, problem: Problem = PROBLEM) -> Figure:
    """Reliability curves of :func:`calibration_table` beside the perfectly calibrated diagonal."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="black", linewidth=1, linestyle="--", label="calibrated")
    for label, curve in table.groupby("class", sort=False):
        ax.plot(curve["predicted"], curve["observed"], marker="o", label=str(label))
    target = problem.target.name
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="predicted probability",
        ylabel="observed share of the class",
    )
    which = problem.positive_class if problem.task == "binary" else "each class against the rest"
    ax.set_title(f"Calibration: {which}")
    ax.legend(title=target, loc="lower right")
    return fig
