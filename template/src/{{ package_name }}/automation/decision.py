"""The retraining decision: monitoring result + policy + history -> retrain or not, and why.

Pure functions, no I/O: every number the decision used is returned with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..model import METRICS
from ..monitoring.promotion import Comparison, needed
from ..monitoring.promotion import decide as better_beyond_chance
from ..problem import PROBLEM
from .policy import Gate, Triggers
from .signals import MonitoringResult

RETRAIN = "retrain"
SKIP = "skip"


@dataclass(frozen=True)
class Decision:
    """Whether to retrain, the reason in words and the numbers behind it."""

    action: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    triggers: tuple[str, ...] = ()

    @property
    def retrain(self) -> bool:
        return self.action == RETRAIN


def _drift_trigger(result: MonitoringResult) -> str | None:
    """Level 3's drift verdict per feature, at the share the policy retrains at."""
    if result.drift_share < result.required_share:
        return None
    limits = result.drift_thresholds
    detail = ", ".join(
        f"{name} {result.feature_drift[name]:.3f} >= {limits[name]:.3g}"
        if name in limits
        else f"{name} {result.feature_drift[name]:.3f}"
        for name in result.drifted_features
    )
    return (
        f"data drift: {len(result.drifted_features)}/{len(result.feature_drift)} features "
        f"drifted (share {result.drift_share:.2f} >= {result.required_share:.2f}; {detail})"
    )


def worsening(metric: str, score: float, baseline: float) -> float:
    """How much worse ``score`` is than ``baseline``, relative, in ``metric``'s direction
    (positive: worse; higher RMSE or log loss, lower AUC)."""
    change = (score - baseline) / abs(baseline)
    return -change if METRICS[metric].greater_is_better else change


def _metric_trigger(result: MonitoringResult, triggers: Triggers) -> str | None:
    """Level 3's metric alert on the champion's labelled traffic, or, when the policy sets
    ``degradation``, a relative worsening against the validation score beyond it."""
    if triggers.degradation is None:
        return None if result.metric_alert is None else f"performance: {result.metric_alert}"
    if result.score is None or not result.validation_score:
        return None
    worse = worsening(result.metric, result.score, result.validation_score)
    if not worse > triggers.degradation:  # NaN (one class only) never triggers
        return None
    return (
        f"performance: {result.metric} {result.score:.3f} is {worse:.0%} worse than validation "
        f"{result.validation_score:.3f} (limit {triggers.degradation:.0%})"
    )


def _within(result: MonitoringResult, triggers: Triggers) -> str:
    """Why the metric did not trigger, in words."""
    if result.score is None:
        return "no labelled traffic"
    score = f"{result.metric} {result.score:.3f}"
    if triggers.degradation is not None:
        return f"{score} within {triggers.degradation:.0%} of validation"
    if result.metric_limit is None:
        return f"{score} (no validation score to hold it to)"
    return f"{score} within the alert's limit {result.metric_limit:.3f}"


def decide(
    result: MonitoringResult,
    triggers: Triggers,
    last_retraining: datetime | None,
    now: datetime,
) -> Decision:
    """Retrain when drift or performance decay says so, with enough labels, after the cool-down."""
    numbers: dict[str, float] = {
        "drift_share": result.drift_share,
        "labelled_rows": float(result.labelled_rows),
        **{f"drift.{name}": value for name, value in result.feature_drift.items()},
    }
    if result.score is not None:
        numbers[result.metric] = result.score
    if result.validation_score is not None:
        numbers[f"validation_{result.metric}"] = result.validation_score
    if result.metric_limit is not None:
        numbers[f"limit_{result.metric}"] = result.metric_limit
    fired = tuple(
        reason for reason in (_drift_trigger(result), _metric_trigger(result, triggers)) if reason
    )
    if not fired:
        return Decision(
            SKIP,
            f"no trigger: drift share {result.drift_share:.2f} < {result.required_share:.2f} "
            f"and {_within(result, triggers)}",
            numbers,
        )
    if result.labelled_rows < triggers.min_labelled_rows:
        return Decision(
            SKIP,
            f"not enough labels: {result.labelled_rows} labelled rows < "
            f"{triggers.min_labelled_rows} ({'; '.join(fired)})",
            numbers,
            fired,
        )
    if last_retraining is not None:
        days = (now - last_retraining).total_seconds() / 86_400
        numbers["days_since_retraining"] = days
        if days < triggers.cooldown_days:
            return Decision(
                SKIP,
                f"cool-down: last retraining {days:.1f} days ago < {triggers.cooldown_days:g} "
                f"({'; '.join(fired)})",
                numbers,
                fired,
            )
    return Decision(RETRAIN, "; ".join(fired), numbers, fired)


@dataclass(frozen=True)
class GateResult:
    """Whether the challenger may replace the champion, and why."""

    passed: bool
    reason: str
    numbers: dict[str, float]


def judge(
    comparison: Comparison,
    gate: Gate,
    *,
    latency_ms: tuple[float, float],
    problems: Sequence[str] = (),
    span: tuple[float, float] | None = None,
) -> GateResult:
    """The validation gate: sanity checks first, then better than the champion beyond chance:
    the interval of the challenger's improvement (``comparison``, paired on the gate's rows)
    wholly above ``gate.margin`` of the champion's score (level 3's promotion rule).

    ``latency_ms``: the p95 of the champion's and the challenger's single-row predictions,
    measured in the same run; ``problems``: what ``model.sanity_problems`` found in the
    challenger; ``span``: the lowest and highest of a regressor's raw predictions, held to
    ``gate.bounds()``.
    """
    numbers = {
        **comparison.numbers("gate."),
        "gate.required_improvement": needed(comparison, gate.margin),
        "gate.margin": gate.margin,
        "gate.confidence": comparison.confidence,
        "gate.champion_p95_latency_ms": latency_ms[0],
        "gate.p95_latency_ms": latency_ms[1],
    }
    if problems:
        return GateResult(False, f"sanity: {'; '.join(problems)}", numbers)
    if span is not None:
        low, high = span
        numbers |= {"gate.prediction_min": low, "gate.prediction_max": high}
        lowest, highest = gate.bounds()
        if low < lowest or high > highest:
            unit = f" {PROBLEM.target.unit}" if PROBLEM.target.unit else ""
            return GateResult(
                False,
                f"sanity: predictions span [{low:.4g}, {high:.4g}]{unit}, "
                f"outside [{lowest:.4g}, {highest:.4g}]",
                numbers,
            )
    champion_ms, challenger_ms = latency_ms
    if challenger_ms > gate.max_latency_ratio * champion_ms:
        return GateResult(
            False,
            f"sanity: p95 latency {challenger_ms:.2f} ms > {gate.max_latency_ratio:g} x the "
            f"champion's {champion_ms:.2f} ms, measured in the same run",
            numbers,
        )
    passed, reason = better_beyond_chance(comparison, gate.margin)
    return GateResult(passed, f"{'better' if passed else 'not better'}: {reason}", numbers)
