"""The retraining decision: monitoring result + policy + history -> retrain or not, and why.

Pure functions, no I/O: every number the decision used is returned with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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


def _drift_trigger(result: MonitoringResult, triggers: Triggers) -> str | None:
    if result.drift_share < triggers.drift_share:
        return None
    limits = triggers.thresholds()
    detail = ", ".join(
        f"{name} {result.feature_drift[name]:.3f} > {limits[name]:g}"
        for name in result.drifted_features
    )
    return (
        f"data drift: {len(result.drifted_features)}/{len(limits)} "
        f"features drifted (share {result.drift_share:.2f} >= {triggers.drift_share:.2f}; {detail})"
    )


def _rmse_trigger(result: MonitoringResult, triggers: Triggers) -> str | None:
    if result.rmse is None or not result.validation_rmse:
        return None
    change = result.rmse / result.validation_rmse - 1.0
    if change <= triggers.rmse_degradation:
        return None
    return (
        f"performance: RMSE {result.rmse:.3f} is {change:+.0%} against validation "
        f"{result.validation_rmse:.3f} (limit {triggers.rmse_degradation:+.0%})"
    )


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
    if result.rmse is not None:
        numbers["rmse"] = result.rmse
    if result.validation_rmse is not None:
        numbers["validation_rmse"] = result.validation_rmse
    fired = tuple(
        reason
        for reason in (_drift_trigger(result, triggers), _rmse_trigger(result, triggers))
        if reason
    )
    if not fired:
        rmse = "no labelled traffic" if result.rmse is None else f"RMSE {result.rmse:.3f}"
        return Decision(
            SKIP,
            f"no trigger: drift share {result.drift_share:.2f} < {triggers.drift_share:.2f} "
            f"and {rmse} within {triggers.rmse_degradation:.0%} of validation",
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
    champion_rmse: float,
    challenger_rmse: float,
    gate: Gate,
    *,
    finite: bool,
    low: float,
    high: float,
    p95_latency_ms: float,
) -> GateResult:
    """The validation gate: sanity checks first, then better than the champion by the margin."""
    needed = champion_rmse * (1.0 - gate.margin)
    numbers = {
        "gate.champion_rmse": champion_rmse,
        "gate.challenger_rmse": challenger_rmse,
        "gate.required_rmse": needed,
        "gate.margin": gate.margin,
        "gate.prediction_min": low,
        "gate.prediction_max": high,
        "gate.p95_latency_ms": p95_latency_ms,
    }
    lowest, highest = gate.bounds()
    if not finite:
        return GateResult(False, "sanity: the challenger predicts NaN or infinity", numbers)
    if low < lowest or high > highest:
        unit = f" {PROBLEM.target.unit}" if PROBLEM.target.unit else ""
        return GateResult(
            False,
            f"sanity: predictions span [{low:.4g}, {high:.4g}]{unit}, "
            f"outside [{lowest:.4g}, {highest:.4g}]",
            numbers,
        )
    if p95_latency_ms > gate.latency_budget_ms:
        return GateResult(
            False,
            f"sanity: p95 latency {p95_latency_ms:.2f} ms > budget {gate.latency_budget_ms:g} ms",
            numbers,
        )
    if challenger_rmse > needed:
        return GateResult(
            False,
            f"not better: challenger RMSE {challenger_rmse:.3f} vs champion {champion_rmse:.3f} "
            f"(needs <= {needed:.3f}, margin {gate.margin:.0%})",
            numbers,
        )
    return GateResult(
        True,
        f"better: challenger RMSE {challenger_rmse:.3f} <= {needed:.3f} "
        f"(champion {champion_rmse:.3f}, margin {gate.margin:.0%})",
        numbers,
    )
