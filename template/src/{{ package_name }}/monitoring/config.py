"""``configs/monitoring.yaml``, validated: windows, the reference, drift, checks, promotion.

Thresholds are in the target's unit, shares of its scale (``PROBLEM.target_scale``: the
width of its declared range) or in a metric of the task's (``model.METRICS``: rmse for a
regression, log_loss for a classifier unless configured), so they fit any problem. Data is
named by ``Selection``s (a data source and a time window over the contract's event time); a
source left out is the training data's (``data.source`` of ``configs/training.yaml``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..problem import PROBLEM
from ..serving.settings import default_log_url
from ..training.config import DEFAULT_CONFIG as TRAINING_CONFIG
from ..training.config import (
    ConfigError,
    MetricChoice,
    Selection,
    StrictModel,
    TrainingConfig,
    load_yaml,
)
from ..training.config import load_config as load_training_config

__all__ = ["DEFAULT_CONFIG", "ConfigError", "MonitoringConfig", "Selection", "load_config"]

DEFAULT_CONFIG = Path("configs/monitoring.yaml")
#: Error metrics in the target's unit: their default limit is a share of the target's scale.
UNIT_METRICS = ("rmse", "mae")
#: Keys of earlier versions of this file and what replaced them.
RENAMED = {
    "max_rmse": "limit (with metric: rmse)",
    "max_rmse_share": "false_alarm_rate (each version is held to its own validation score)",
    "limit_share": "false_alarm_rate (each version is held to its own validation score)",
}
#: Evidently drift methods that are distances: a column drifts when its score >= threshold.
DistanceMethod = Literal["jensenshannon", "wasserstein", "psi", "hellinger", "kl_div"]


class WindowConfig(StrictModel):
    """Recent traffic: the predictions of the last ``hours``, the newest ``max_rows`` of them."""

    hours: float = Field(default=24.0, gt=0)
    max_rows: int = Field(default=100_000, ge=1)


class ReferenceConfig(Selection):
    """What recent traffic is compared with: rows of a source in a window, sampled."""

    max_rows: int = Field(default=50_000, ge=1)
    seed: int = 42


class DriftConfig(StrictModel):
    """Evidently drift distances and when to trust them.

    A column drifts when its distance reaches its threshold. Small samples differ by chance:
    each threshold is raised to the distance that random samples of the window's size drawn
    from the reference itself (``calibration_rounds`` of them) pass no more often than each
    check's ``false_alarm_rate`` per window of undrifted traffic allows (0 rounds: thresholds as
    set, no stated rate). ``feature_thresholds``: a feature's own threshold, instead of its
    kind's.
    """

    min_rows: int = Field(default=100, ge=10)
    share: float = Field(default=0.5, gt=0, le=1)
    categorical_method: DistanceMethod = "jensenshannon"
    categorical_threshold: float = Field(default=0.1, gt=0)
    numerical_method: DistanceMethod = "wasserstein"
    numerical_threshold: float = Field(default=0.1, gt=0)
    feature_thresholds: dict[str, float] = Field(default_factory=dict)
    prediction_method: DistanceMethod = "wasserstein"
    prediction_threshold: float = Field(default=0.1, gt=0)
    false_alarm_rate: float = Field(default=0.05, gt=0, lt=1)
    calibration_rounds: int = Field(default=200, ge=0, le=2000)
    sample_rows: int = Field(default=50_000, ge=100)

    @field_validator("feature_thresholds")
    @classmethod
    def _known_features(cls, limits: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(limits) - set(PROBLEM.features))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}, expected some of {PROBLEM.features}")
        bad = {name: value for name, value in limits.items() if value <= 0}
        if bad:
            raise ValueError(f"thresholds must be positive, got {bad}")
        return limits


class ChecksConfig(MetricChoice):
    """Alerts on missing values, a metric per variant and predictions held to the target's range.

    ``metric`` (default: the task's primary metric) alerts when, on a served version's labelled
    rows, it is worse (in its direction) than that version's own validation score (from its
    MLflow run) by more than chance allows: the one-sided bootstrap bound over those rows at
    ``false_alarm_rate``, widened for the validation rows' own noise. ``limit``: a fixed value
    instead, in the metric's unit.
    """

    max_missing_share: float = Field(default=0.05, ge=0, le=1)
    min_labelled: int = Field(default=30, ge=1)
    limit: float | None = None
    false_alarm_rate: float = Field(default=0.05, gt=0, lt=0.5)
    max_clipped_share: float = Field(default=0.05, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old in sorted(set(data) & set(RENAMED)):
                raise ValueError(f"{old} is now {RENAMED[old]}")
        return data


class PromotionConfig(MetricChoice):
    """The gate: on the same labelled rows, the ``confidence`` bootstrap interval of the
    challenger's improvement on ``metric`` (default: the task's primary metric, in its
    direction) must lie wholly above the relative ``margin`` of the champion's score."""

    margin: float = Field(default=0.02, ge=0, lt=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    #: Labelled data both models are scored on; null: labelled traffic of the prediction log.
    data: Selection | None = None
    window_hours: float = Field(default=168.0, gt=0)
    min_labelled: int = Field(default=100, ge=1)
    #: Sanity (regression): refuse a challenger with more predictions outside the target's range.
    max_clipped_share: float = Field(default=0.05, ge=0, le=1)


class RetentionConfig(StrictModel):
    """How long the prediction log keeps predictions (and their ground truth): ``days`` back
    from now, by serving time; None keeps everything."""

    days: float | None = Field(default=None, gt=0)


class MonitoringConfig(StrictModel):
    """Everything monitoring, batch scoring and promotion read."""

    prediction_log_url: str | None = None
    reports_dir: Path = Path("reports")
    #: Where the training data's source and window come from (null: the built-in defaults).
    training_config: Path | None = TRAINING_CONFIG
    window: WindowConfig = Field(default_factory=WindowConfig)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @model_validator(mode="after")
    def _retention_covers_the_windows(self) -> MonitoringConfig:
        """Retention must keep what monitoring and promotion read."""
        days = self.retention.days
        hours = {"window.hours": self.window.hours}
        if self.promotion.data is None:
            hours["promotion.window_hours"] = self.promotion.window_hours
        if days is not None:
            short = [f"{name} {value:g}" for name, value in hours.items() if value > days * 24]
            if short:
                raise ValueError(
                    f"retention.days {days:g} keeps {days * 24:g} h of the log, less than "
                    f"{' and '.join(short)} read"
                )
        return self

    def log_url(self) -> str:
        """The prediction log: this file, else ``SERVING_PREDICTION_LOG_URL``, else SQLite."""
        return (
            self.prediction_log_url
            or os.environ.get("SERVING_PREDICTION_LOG_URL")
            or default_log_url()
        )

    def training(self) -> TrainingConfig:
        """The training configuration this monitoring follows."""
        return load_training_config(self.training_config)

    def data_source(self) -> str:
        """Where data is when a selection names no source: the training data's source."""
        return self.training().data.source

    def reference_selection(self) -> ReferenceConfig:
        """The reference with its gaps filled: source and (when no side is set) window of the
        training rows."""
        data = self.training().data
        reference = self.reference
        filled: dict[str, object] = {"source": reference.source or data.train.location(data.source)}
        if reference.start is None and reference.end is None:
            filled |= {"start": data.train.start, "end": data.train.end, "days": data.train.days}
        return reference.model_copy(update=filled)


def load_config(
    path: str | Path | None = DEFAULT_CONFIG, overrides: tuple[str, ...] = ()
) -> MonitoringConfig:
    """Read and validate ``path`` (None: the defaults), with ``--set`` style overrides."""
    return load_yaml(MonitoringConfig, path, overrides, "monitoring configuration")
