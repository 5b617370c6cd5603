"""Service settings, read once from the environment (``SERVING_*``) with working defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".mlops")


def default_log_url(state_dir: Path = DEFAULT_STATE_DIR) -> str:
    """SQLite file under the project's git-ignored state folder."""
    return f"sqlite:///{state_dir / 'predictions.db'}"


class ServingSettings(BaseSettings):
    """Everything the service can be told; each field is an environment variable.

    ``SERVING_CHALLENGER_SHARE=0.2`` sends a fifth of the callers to the challenger, for example.
    """

    model_config = SettingsConfigDict(
        env_prefix="SERVING_", extra="forbid", frozen=True, populate_by_name=True
    )

    challenger_share: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Share of caller keys routed to the challenger when one is registered.",
    )
    max_batch_size: int = Field(
        default=1_000, ge=1, le=100_000, description="Most rows accepted in one batch request."
    )
    prediction_log_url: str = Field(
        default_factory=default_log_url,
        description="SQLAlchemy URL of the prediction log, e.g. postgresql+psycopg://u:p@db/app.",
    )
    tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI"),
        description="MLflow tracking URI (default: the project's SQLite store under .mlops/).",
    )
    load_challenger: bool = Field(
        default=True, description="Load the `challenger` alias too (A/B testing)."
    )
    log_flush_interval: float = Field(
        default=0.5, gt=0.0, le=60.0, description="Seconds between prediction-log writes."
    )
    dead_letter_path: Path = Field(
        default=DEFAULT_STATE_DIR / "prediction-log-set-aside.jsonl",
        description="Where prediction-log rows the database refuses are kept (JSON lines).",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1_024,
        description="Largest request body accepted, in bytes (413 above it).",
    )
    load_retry_interval: float = Field(
        default=10.0,
        ge=0.0,
        description="Seconds between attempts to load the models while none is loaded (0: off).",
    )
