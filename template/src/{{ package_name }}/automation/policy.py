"""The retraining policy: ``configs/retraining.yaml``, validated, immutable.

Read with the project's one YAML loader (``training.config.load_yaml``). Thresholds are relative
(shares, ratios) or in the target's unit; feature names are the contract's; metrics are the
task's (``model.METRICS``, each with its direction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from ..problem import PROBLEM, Problem
from ..training.config import (
    ConfigError,
    MetricChoice,
    Selection,
    StrictModel,
    format_errors,
    load_yaml,
)
from . import DEFAULT_POLICY

__all__ = ["DEFAULT_POLICY", "ConfigError", "RetrainingPolicy", "load_policy", "parse_policy"]


#: Drift thresholds of earlier versions of this file, and their place in ``monitoring.yaml``.
MOVED_TO_MONITORING = {
    "categorical_threshold": "drift.categorical_threshold",
    "numeric_threshold": "drift.numerical_threshold",
    "feature_thresholds": "drift.feature_thresholds",
}


class Triggers(MetricChoice):
    """When a retraining is due."""

    #: Retrain when this share of the features drifted; null: level 3's verdict (``drift.share``
    #: of the monitoring configuration). Which feature drifted is always level 3's verdict.
    drift_share: float | None = Field(default=None, gt=0.0, le=1.0)
    #: The metric whose decay triggers (null: the task's primary one, rmse or log_loss): level 3's
    #: metric alert on the champion's labelled traffic (its own validation score plus the slack
    #: the labelled rows allow, at ``checks.false_alarm_rate`` of monitoring.yaml).
    #: ``degradation``: a fixed relative worsening against the validation score instead.
    degradation: float | None = Field(default=None, gt=0.0)
    min_labelled_rows: int = Field(default=100, ge=1)
    cooldown_days: float = Field(default=20.0, ge=0.0)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rmse_degradation" in data:
            raise ValueError("rmse_degradation is now degradation (of triggers.metric)")
        for old in sorted(set(data) & set(MOVED_TO_MONITORING) if isinstance(data, dict) else ()):
            raise ValueError(
                f"{old} moved to the drift section of configs/monitoring.yaml "
                f"({MOVED_TO_MONITORING[old]}): levels 3 and 4 share one drift verdict"
            )
        return data


class Training(StrictModel):
    """What the challenger is trained on: the latest rows of the configured source.

    The window ends where the gate's rows start (the labelled traffic of the monitored window,
    by the event times its callers sent, else where that window starts), which the challenger
    must not have seen, or earlier where the source's rows end; it spans ``window_days`` of the
    source's latest rows before that (null: all of them). It follows the data, never the wall
    clock. ``data`` sets the source (default: ``data.source`` of the training config) or fixes
    start and end (an end inside the gate's rows is refused).
    """

    config: Path = Path("configs/training.yaml")
    data: Selection = Field(default_factory=Selection)
    window_days: float | None = Field(default=None, gt=0.0)
    #: Add the labelled traffic served before the monitored window (prediction log + truth).
    include_labelled_traffic: bool = False
    overrides: list[str] = Field(default_factory=list)


class Gate(MetricChoice):
    """What the challenger must pass to become champion: sane predictions (a regressor's within
    ``bounds``; a classifier's several classes and true probabilities), latency near the champion's,
    and ``metric`` (null: the task's primary one) better than the champion's beyond chance: the
    ``confidence`` paired bootstrap interval of its improvement on the gate's rows wholly above
    ``margin`` (relative to the champion's score, in the metric's direction)."""

    margin: float = Field(default=0.02, ge=0.0, lt=1.0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_rows: int = Field(default=30, ge=1)  # labelled rows of the monitored window needed
    max_rows: int = Field(default=20_000, ge=1)
    #: Raw predictions outside this range (target's unit) fail; None: derived from the target.
    prediction_range: tuple[float, float] | None = None
    #: The derived range: the target's range widened by this share of its scale on each side.
    prediction_slack: float = Field(default=0.5, ge=0.0)
    #: The challenger's p95 latency may be at most this multiple of the champion's (both
    #: measured in the same run, after a warm-up, so a busy machine slows both alike).
    max_latency_ratio: float = Field(default=2.0, gt=0.0)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "latency_budget_ms" in data:
            raise ValueError(
                "latency_budget_ms is now max_latency_ratio (the challenger's p95 latency over "
                "the champion's, measured in the same run)"
            )
        return data

    @field_validator("prediction_range")
    @classmethod
    def _ordered(cls, bounds: tuple[float, float] | None) -> tuple[float, float] | None:
        if bounds is not None and bounds[0] >= bounds[1]:
            raise ValueError(f"prediction_range must be [low, high] with low < high, got {bounds}")
        return bounds

    def bounds(self, problem: Problem = PROBLEM) -> tuple[float, float]:
        """The sanity range of raw predictions (an unbounded side of the target stays open)."""
        if self.prediction_range is not None:
            return self.prediction_range
        low, high = problem.target_range
        slack = self.prediction_slack * problem.target_scale
        return (
            low - slack if math.isfinite(low) else -math.inf,
            high + slack if math.isfinite(high) else math.inf,
        )


class Monitoring(StrictModel):
    """How the loop measures: level 3's monitoring check against the champion's training data."""

    config: Path = Path("configs/monitoring.yaml")
    max_reference_rows: int = Field(default=20_000, ge=1)


class Schedules(StrictModel):
    """Cron schedules of the Prefect deployments, and the work pool whose workers run them."""

    timezone: str = "UTC"
    monitoring: str = "0 * * * *"
    retraining: str = "30 6 * * *"
    work_pool: str | None = Field(default=None, min_length=1)

    @field_validator("monitoring", "retraining")
    @classmethod
    def _cron(cls, cron: str) -> str:
        if len(cron.split()) != 5:
            raise ValueError(f"expected a 5-field cron expression, got {cron!r}")
        return cron


class RetrainingPolicy(StrictModel):
    """Everything the closed loop decides by."""

    triggers: Triggers = Field(default_factory=Triggers)
    training: Training = Field(default_factory=Training)
    gate: Gate = Field(default_factory=Gate)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    schedules: Schedules = Field(default_factory=Schedules)


def parse_policy(tree: dict[str, Any], source: str = "policy") -> RetrainingPolicy:
    """Validate a policy given as a mapping."""
    try:
        return RetrainingPolicy.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, "retraining policy")) from None


def load_policy(
    path: str | Path = DEFAULT_POLICY, overrides: Iterable[str] = ()
) -> RetrainingPolicy:
    """Read and validate the policy file (``overrides`` as ``--set`` KEY=VALUE strings)."""
    return load_yaml(RetrainingPolicy, path, overrides, "retraining policy")
