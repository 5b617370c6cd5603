"""Checks that need no Evidently: missing values, the task's metrics per variant, class shares
and predictions held to the target's range.

Metrics come from the one registry (``model.METRICS``), scored on the logged predictions (a
classifier's logged probabilities) against the ground truth that has arrived.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import METRICS, Scores, metric_names
from ..problem import PROBLEM, Problem
from .data import CLIPPED, PREDICTION, labelled, probability_columns

#: Per variant: the task's metrics by name, and the labelled rows they were scored on.
VariantMetrics = dict[str, tuple[dict[str, float], int]]


def missing_shares(window: pd.DataFrame, problem: Problem = PROBLEM) -> dict[str, float]:
    """Share of missing values per feature (0 for an empty window)."""
    if window.empty:
        return dict.fromkeys(problem.features, 0.0)
    return {name: float(window[name].isna().mean()) for name in problem.features}


def logged_scores(rows: pd.DataFrame, problem: Problem = PROBLEM) -> Scores:
    """Labelled log rows as :class:`~model.Scores`: truth, served prediction, probabilities.

    A classifier's rows whose truth or prediction is not a declared class are left out.
    """
    target = problem.target.name
    if not problem.is_classifier:
        truth = rows[target].to_numpy(dtype="float64")
        return Scores(truth, rows[PREDICTION].to_numpy(dtype="float64"))
    labels, known = problem.class_labels(rows[target])
    predicted, served = problem.class_labels(rows[PREDICTION])
    keep = (known & served).to_numpy()
    probabilities = rows[list(probability_columns(problem))].to_numpy(dtype="float64")
    return Scores(
        labels.to_numpy()[keep],
        predicted.to_numpy()[keep],
        probabilities[keep],
        problem.classes,
        problem.positive_class,
    )


def scored(scores: Scores, problem: Problem = PROBLEM) -> dict[str, float]:
    """The task's metrics of ``scores``, in registry order."""
    return {name: METRICS[name].function(scores) for name in metric_names(problem)}


def metrics_by_variant(
    window: pd.DataFrame, min_labelled: int, problem: Problem = PROBLEM
) -> VariantMetrics:
    """The task's metrics and labelled row count per variant with >= ``min_labelled`` rows."""
    out: VariantMetrics = {}
    for variant, rows in labelled(window, problem).groupby("variant"):
        found = logged_scores(rows, problem)
        if len(found.truth) >= min_labelled:
            out[str(variant)] = (scored(found, problem), len(found.truth))
    return out


def short_of_labels(
    window: pd.DataFrame, min_labelled: int, hours: float, problem: Problem = PROBLEM
) -> list[str]:
    """Per variant with fewer than ``min_labelled`` labelled rows while ground truth arrives:
    that it has no metrics, and the window (``hours`` long now) or the share of the traffic that
    would reach ``min_labelled`` at this window's rate of labelled rows."""
    found = labelled(window, problem)
    if found.empty:
        return []
    counts = found.groupby("variant").size()
    notes = []
    for variant, served in window.groupby("variant").size().items():
        count = int(counts.get(variant, 0))
        if count >= min_labelled:
            continue
        share = served / len(window)
        needed_hours = hours * min_labelled / (len(found) * share)
        needed_share = min_labelled / len(found)
        by_share = (
            f"a {variant} share of {needed_share:.0%} of the traffic"
            if needed_share <= 1
            else f"more labelled traffic than all {len(found)} labelled rows of the window"
        )
        notes.append(
            f"{variant}: {count} labelled rows < checks.min_labelled {min_labelled}, no metrics "
            f"for it; at its {share:.0%} of the traffic that needs a window of "
            f"{needed_hours / 24:.1f} days (window.hours {needed_hours:.0f}), or {by_share}"
        )
    return notes


def chance_score(metric: str, truth: pd.Series, problem: Problem = PROBLEM) -> float | None:
    """``metric`` of a model that knows no feature: it predicts the mean of ``truth``, or its
    class shares (and the most common class). None without truth."""
    if not problem.is_classifier:
        values = pd.to_numeric(truth, errors="coerce").dropna().to_numpy(dtype="float64")
        if len(values) == 0:
            return None
        return METRICS[metric].function(Scores(values, np.full(len(values), values.mean())))
    labels, known = problem.class_labels(truth)
    labels = labels[known]
    if labels.empty:
        return None
    shares = labels.value_counts(normalize=True).reindex(list(problem.classes), fill_value=0.0)
    common = shares.idxmax()
    scores = Scores(
        labels.to_numpy(),
        np.full(len(labels), common, dtype=labels.to_numpy().dtype),
        np.tile(shares.to_numpy(dtype="float64"), (len(labels), 1)),
        problem.classes,
        problem.positive_class,
    )
    return METRICS[metric].function(scores)


def class_shares(window: pd.DataFrame, problem: Problem = PROBLEM) -> dict[str, dict[str, float]]:
    """A classifier's predicted class shares per variant, every declared class (none for a
    regression)."""
    if not problem.is_classifier or window.empty:
        return {}
    out = {}
    for variant, rows in window.groupby("variant"):
        predicted, known = problem.class_labels(rows[PREDICTION])
        shares = predicted[known].value_counts(normalize=True)
        out[str(variant)] = {str(c): float(shares.get(c, 0.0)) for c in problem.classes}
    return out


def clipped_by_variant(window: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """Share and count of predictions held to the target's range, per variant."""
    if CLIPPED not in window.columns:
        return {}
    return {
        str(variant): (float(rows[CLIPPED].mean()), int(rows[CLIPPED].sum()))
        for variant, rows in window.groupby("variant")
    }
