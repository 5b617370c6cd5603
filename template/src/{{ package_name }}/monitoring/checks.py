"""Checks that need no Evidently: missing values, the task's metrics per variant, class shares
and predictions held to the target's range.

Metrics come from the one registry (``model.METRICS``), scored on the logged predictions (a
classifier's logged probabilities) against the ground truth that has arrived.

How much a metric moves by chance on n labelled rows is measured by a seeded bootstrap over those
rows (``resampled``): the metric alert holds a served version to its own validation score plus
that slack (``metric_alert``), and the promotion gate reads the interval of the paired
difference of two models on the same rows from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..model import METRICS, Scores, metric_names
from ..problem import PROBLEM, Problem
from .config import UNIT_METRICS
from .data import CLIPPED, PREDICTION, labelled, probability_columns

#: Per variant: the task's metrics by name, and the labelled rows they were scored on.
VariantMetrics = dict[str, tuple[dict[str, float], int]]
Floats = npt.NDArray[np.float64]
#: Bootstrap resamples behind every bound (metric alerts, the promotion interval), drawn from
#: this seed: the same rows give the same verdict.
BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 0
#: Row draws per chunk of resamples (rounds x rows): memory stays flat on large windows.
DRAWS_PER_CHUNK = 2_000_000


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


def per_row_values(metric: str, scores: Scores) -> tuple[Floats, Callable[[Floats], Floats]] | None:
    """``metric`` as a function of the mean of one value per row: the squared error and its
    root (rmse), the absolute error (mae), the log loss of the true class, whether the class was
    right (accuracy). None for a metric that is not (r2, the AUCs, macro F1)."""
    if metric in ("rmse", "mae"):
        error = np.asarray(scores.truth, dtype="float64") - np.asarray(scores.predicted, "float64")
        return (error**2, np.sqrt) if metric == "rmse" else (np.abs(error), np.asarray)
    if metric == "accuracy":
        return np.asarray(scores.truth == scores.predicted, dtype="float64"), np.asarray
    if metric == "log_loss":
        column = pd.Index(scores.classes).get_indexer(pd.Index(scores.truth))
        if (column < 0).any():
            raise ValueError("log loss of a row whose class is not declared")
        tiny = np.finfo("float64").eps  # as scikit-learn clips
        chosen = scores.proba[np.arange(len(column)), column]
        return -np.log(np.clip(chosen, tiny, 1 - tiny)), np.asarray
    return None


def subset(scores: Scores, rows: npt.NDArray[np.int64]) -> Scores:
    """``scores`` of the given row positions (repeats allowed)."""
    probabilities = None if scores.probabilities is None else scores.probabilities[rows]
    return replace(
        scores,
        truth=scores.truth[rows],
        predicted=scores.predicted[rows],
        probabilities=probabilities,
    )


def resampled(
    metric: str, *scores: Scores, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED
) -> Floats:
    """``metric`` of each of ``scores`` (models scored on the same rows) on ``rounds`` bootstrap
    resamples of the rows, shape (models, rounds). Paired: in each round every model is scored
    on the same resample, so differences between rows of the result are exact per round."""
    count = len(scores[0].truth)
    generator = np.random.default_rng(seed)
    per_row = [per_row_values(metric, found) for found in scores]
    out = np.empty((len(scores), rounds))
    step = max(1, DRAWS_PER_CHUNK // max(count, 1))
    for start in range(0, rounds, step):
        picks = generator.integers(0, count, size=(min(step, rounds - start), count))
        for which, found in enumerate(scores):
            out[which, start : start + len(picks)] = _on_resamples(
                metric, found, per_row[which], picks
            )
    return out


def _on_resamples(
    metric: str,
    scores: Scores,
    per_row: tuple[Floats, Callable[[Floats], Floats]] | None,
    picks: npt.NDArray[np.int64],
) -> Floats:
    if per_row is not None:
        values, of_mean = per_row
        return np.asarray(of_mean(values[picks].mean(axis=1)), dtype="float64")
    function = METRICS[metric].function
    return np.array([function(subset(scores, rows)) for rows in picks], dtype="float64")


@dataclass(frozen=True)
class Validation:
    """What a model version's MLflow run logged of its validation: the task's metrics by name,
    and on how many rows (None: not logged)."""

    metrics: Mapping[str, float]
    rows: int | None = None


def slack(
    metric: str, scores: Scores, false_alarm_rate: float, validation_rows: int | None = None
) -> float:
    """How much worse than its validation score a model's ``metric`` on these labelled rows may
    be by chance alone, exceeded at most at ``false_alarm_rate``: the bootstrap's deviation in
    the metric's worse direction at that one-sided quantile, widened by sqrt(1 + n/n_validation)
    for the validation score's own noise when its row count is known."""
    score = METRICS[metric].function(scores)
    values = resampled(metric, scores)[0]
    if METRICS[metric].greater_is_better:
        deviation = score - float(np.nanquantile(values, false_alarm_rate))
    else:
        deviation = float(np.nanquantile(values, 1 - false_alarm_rate)) - score
    rows = len(scores.truth)
    widen = math.sqrt(1 + rows / validation_rows) if validation_rows else 1.0
    return max(deviation, 0.0) * widen


def metric_unit(metric: str, problem: Problem = PROBLEM) -> str:
    """`` <unit>`` for a metric in the target's unit (rmse, mae) when it declares one, else ''."""
    unit = problem.target.unit if metric in UNIT_METRICS else None
    return f" {unit}" if unit else ""


@dataclass(frozen=True)
class MetricAlert:
    """A served version's alerted metric on its labelled rows, held to its own validation score
    plus the slack its labelled rows allow, or to a configured limit (then ``validation`` and
    ``slack`` are None). ``limit`` None: nothing to hold it to."""

    variant: str
    version: int | None
    metric: str
    score: float
    rows: int
    limit: float | None
    validation: float | None = None
    slack: float | None = None
    false_alarm_rate: float = 0.05

    @property
    def fired(self) -> bool:
        """Worse than the limit, in the metric's direction (NaN, one class only, never)."""
        if self.limit is None:
            return False
        if METRICS[self.metric].greater_is_better:
            return bool(self.score < self.limit)
        return bool(self.score > self.limit)

    def message(self, unit: str = "") -> str:
        """The alert in words: what was compared, with what slack, on how many rows."""
        who = self.variant if self.version is None else f"{self.variant} v{self.version}"
        head = f"{self.metric} of {who} {self.score:.4g}{unit}"
        if self.limit is None:
            return (
                f"{head} on {self.rows} labelled rows: no validation {self.metric} in the "
                f"version's MLflow run and no checks.limit, not checked"
            )
        greater = METRICS[self.metric].greater_is_better
        sign = ("<" if greater else ">") if self.fired else (">=" if greater else "<=")
        compared = f"{head} {sign} {self.limit:.4g}{unit}"
        if self.validation is None or self.slack is None:
            return f"{compared} (checks.limit; {self.rows} labelled rows)"
        plus = "-" if greater else "+"
        return (
            f"{compared} (its validation {self.validation:.4g} {plus} slack {self.slack:.3g}: "
            f"the one-sided {1 - self.false_alarm_rate:.0%} bound of {self.rows} labelled rows)"
        )


def metric_alert(
    variant: str,
    version: int | None,
    scores: Scores,
    metric: str,
    *,
    limit: float | None,
    false_alarm_rate: float,
    validation: Validation | None,
) -> MetricAlert:
    """``metric`` of ``scores`` held to ``limit`` when one is set, else to ``validation``'s
    score (the served version's own) plus :func:`slack`; no limit without either."""
    score = METRICS[metric].function(scores)
    found = MetricAlert(variant, version, metric, score, len(scores.truth), limit)
    expected = None if validation is None else validation.metrics.get(metric)
    if limit is not None or expected is None or not math.isfinite(expected):
        return found
    allowed = slack(metric, scores, false_alarm_rate, validation.rows if validation else None)
    edge = expected - allowed if METRICS[metric].greater_is_better else expected + allowed
    return replace(
        found, limit=edge, validation=expected, slack=allowed, false_alarm_rate=false_alarm_rate
    )


def metric_alerts(
    window: pd.DataFrame,
    metric: str,
    *,
    min_labelled: int,
    limit: float | None,
    false_alarm_rate: float,
    validations: Mapping[int, Validation],
    problem: Problem = PROBLEM,
) -> list[MetricAlert]:
    """:func:`metric_alert` per variant and model version that served it, each with at least
    ``min_labelled`` labelled rows: every version is held to its own validation score."""
    found = labelled(window, problem)
    if "model_version" not in found.columns:
        found = found.assign(model_version=np.nan)
    out = []
    for (variant, _), rows in found.groupby(["variant", "model_version"], dropna=False):
        scores = logged_scores(rows, problem)
        if len(scores.truth) < min_labelled:
            continue
        version = rows["model_version"].iloc[0]
        number = None if pd.isna(version) else int(version)
        validation = None if number is None else validations.get(number)
        out.append(
            metric_alert(
                str(variant),
                number,
                scores,
                metric,
                limit=limit,
                false_alarm_rate=false_alarm_rate,
                validation=validation,
            )
        )
    return out
