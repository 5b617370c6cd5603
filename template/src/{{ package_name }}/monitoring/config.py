"""``configs/monitoring.yaml``, validated: windows, references, thresholds, promotion margin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..serving.settings import default_log_url

DEFAULT_CONFIG = Path("configs/monitoring.yaml")
#: Evidently drift methods that are distances: a column drifts when its score >= threshold.
DistanceMethod = Literal["jensenshannon", "wasserstein", "psi", "hellinger", "kl_div"]


class ConfigError(ValueError):
    """The monitoring configuration is missing or invalid; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowConfig(_Strict):
    hours: float = Field(default=24.0, gt=0)
    max_rows: int = Field(default=100_000, ge=1)


class ReferenceConfig(_Strict):
    data_dir: Path = Path("data")
    months: list[str] = Field(default=["2024-01"], min_length=1)
    max_rows: int = Field(default=50_000, ge=100)
    seed: int = 42

    @field_validator("months")
    @classmethod
    def _months(cls, months: list[str]) -> list[str]:
        for month in months:
            year, _, number = month.partition("-")
            if not (year.isdigit() and number.isdigit() and 1 <= int(number) <= 12):
                raise ValueError(f"expected months as YYYY-MM, got {month!r}")
        return months


class DriftConfig(_Strict):
    share: float = Field(default=0.5, gt=0, le=1)
    categorical_method: DistanceMethod = "jensenshannon"
    categorical_threshold: float = Field(default=0.15, gt=0)
    numerical_method: DistanceMethod = "wasserstein"
    numerical_threshold: float = Field(default=0.1, gt=0)
    prediction_method: DistanceMethod = "wasserstein"
    prediction_threshold: float = Field(default=0.1, gt=0)
    sample_rows: int = Field(default=50_000, ge=1_000)


class ChecksConfig(_Strict):
    min_rows: int = Field(default=100, ge=1)
    max_missing_share: float = Field(default=0.05, ge=0, le=1)
    min_labelled: int = Field(default=50, ge=1)
    max_rmse: float = Field(default=10.0, gt=0)


class PromotionConfig(_Strict):
    margin: float = Field(default=0.02, ge=0, lt=1)
    window_hours: float = Field(default=168.0, gt=0)
    min_labelled: int = Field(default=200, ge=1)


class MonitoringConfig(_Strict):
    """Everything monitoring, batch scoring and promotion read."""

    prediction_log_url: str | None = None
    reports_dir: Path = Path("reports")
    window: WindowConfig = Field(default_factory=WindowConfig)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    checks: ChecksConfig = Field(default_factory=ChecksConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)

    def log_url(self) -> str:
        """The prediction log: this file, else ``SERVING_PREDICTION_LOG_URL``, else SQLite."""
        return (
            self.prediction_log_url
            or os.environ.get("SERVING_PREDICTION_LOG_URL")
            or default_log_url()
        )


def load_config(path: str | Path | None = DEFAULT_CONFIG) -> MonitoringConfig:
    """Read and validate ``path`` (None: the defaults)."""
    if path is None:
        return MonitoringConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
        return MonitoringConfig.model_validate(tree)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: invalid monitoring configuration: {where}") from None
