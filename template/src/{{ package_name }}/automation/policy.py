"""The retraining policy: ``configs/retraining.yaml``, validated, immutable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..contract import FEATURES
from ..training.config import format_errors

DEFAULT_POLICY = Path("configs/retraining.yaml")


class PolicyError(ValueError):
    """The retraining policy is missing, malformed or invalid; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Triggers(_Strict):
    """When a retraining is due."""

    drift_share: float = Field(default=0.5, gt=0.0, le=1.0)
    feature_thresholds: dict[str, float] = Field(
        default_factory=lambda: dict.fromkeys(FEATURES, 0.15)
    )
    rmse_degradation: float = Field(default=0.15, gt=0.0)
    min_labelled_rows: int = Field(default=1_000, ge=1)
    cooldown_days: float = Field(default=20.0, ge=0.0)

    @field_validator("feature_thresholds")
    @classmethod
    def _known_features(cls, thresholds: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(thresholds) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}, expected some of {FEATURES}")
        if not thresholds:
            raise ValueError("give a drift threshold for at least one feature")
        bad = {name: value for name, value in thresholds.items() if value <= 0}
        if bad:
            raise ValueError(f"thresholds must be positive, got {bad}")
        return thresholds


class Training(_Strict):
    """What the challenger is trained on."""

    config: Path = Path("configs/training.yaml")
    window_months: int = Field(default=1, ge=1, le=36)
    overrides: list[str] = Field(default_factory=list)


class Gate(_Strict):
    """What the challenger must pass to become champion."""

    margin: float = Field(default=0.02, ge=0.0, lt=1.0)
    max_rows: int = Field(default=20_000, ge=100)
    prediction_range: tuple[float, float] = (-5.0, 240.0)
    latency_budget_ms: float = Field(default=25.0, gt=0.0)

    @field_validator("prediction_range")
    @classmethod
    def _ordered(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        if bounds[0] >= bounds[1]:
            raise ValueError(f"prediction_range must be [low, high] with low < high, got {bounds}")
        return bounds


class Monitoring(_Strict):
    """How the loop measures: level 3's monitoring check against the champion's training data."""

    config: Path = Path("configs/monitoring.yaml")
    max_reference_rows: int = Field(default=20_000, ge=100)


class Schedules(_Strict):
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


class RetrainingPolicy(_Strict):
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
        raise PolicyError(format_errors(exc, source, "retraining policy")) from None


def load_policy(path: str | Path = DEFAULT_POLICY) -> RetrainingPolicy:
    """Read and validate the policy file."""
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: retraining policy not found")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(tree, dict):
        raise PolicyError(f"{path}: expected a mapping at the top level")
    return parse_policy(tree, str(path))
