"""Monitoring results the retraining decision reads: drift per feature and RMSE on labelled traffic.

A result is measured on a window of served, labelled predictions (the level-3 prediction log
joined with its ground truth) against the champion's training months, with Evidently, and
appended to ``.mlops/automation/monitoring.jsonl``; the retraining check reads the latest one.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from ..contract import CATEGORICAL_FEATURES, FEATURES, NUMERICAL_FEATURES, TARGET
from ..serving.router import CHAMPION_VARIANT
from ..serving.store import ground_truth, predictions
from .policy import Triggers


@dataclass(frozen=True)
class MonitoringResult:
    """What monitoring saw in one window of traffic."""

    period: str  # YYYY-MM of the window: the month a retraining validates on
    measured_at: datetime
    window_start: datetime
    window_end: datetime
    champion_version: int
    rows: int
    labelled_rows: int
    feature_drift: dict[str, float]  # Evidently score per feature
    drifted_features: list[str]
    drift_share: float
    rmse: float | None  # champion RMSE on the labelled rows (None without labels)
    validation_rmse: float | None  # the champion's RMSE on its own validation month
    report: str | None = None  # HTML report, when one was written
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        for name in ("measured_at", "window_start", "window_end"):
            data[name] = data[name].isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> MonitoringResult:
        data = json.loads(line)
        for name in ("measured_at", "window_start", "window_end"):
            data[name] = datetime.fromisoformat(data[name])
        return cls(**data)


def read_labelled_window(engine: Engine, start: datetime, end: datetime) -> pd.DataFrame:
    """Served predictions in ``[start, end)`` with their actual duration where it has arrived."""
    query = (
        select(
            predictions.c.ts,
            predictions.c.variant,
            predictions.c.model_version,
            *(predictions.c[name] for name in FEATURES),
            predictions.c.prediction,
            ground_truth.c[TARGET],
        )
        .select_from(
            predictions.outerjoin(
                ground_truth, predictions.c.request_id == ground_truth.c.request_id
            )
        )
        .where(predictions.c.ts >= start, predictions.c.ts < end)
    )
    with engine.connect() as conn:
        frame = pd.DataFrame([dict(row) for row in conn.execute(query).mappings()])
    if frame.empty:
        return pd.DataFrame(
            columns=["ts", "variant", "model_version", *FEATURES, "prediction", TARGET]
        )
    frame.columns = [str(name) for name in frame.columns]  # plain str: scikit-learn checks names
    return frame


def drift_scores(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """Evidently drift score per feature (Jensen-Shannon for zones, Wasserstein for distance)."""
    with warnings.catch_warnings():  # Evidently's dependencies warn on import; not our news
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift

    definition = DataDefinition(
        categorical_columns=CATEGORICAL_FEATURES, numerical_columns=NUMERICAL_FEATURES
    )
    report = Report([ValueDrift(column=name) for name in FEATURES])
    snapshot = report.run(
        current_data=Dataset.from_pandas(current[FEATURES], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[FEATURES], data_definition=definition),
    )
    values = [float(metric["value"]) for metric in snapshot.dict()["metrics"]]
    return dict(zip(FEATURES, values, strict=True))


def write_drift_report(reference: pd.DataFrame, current: pd.DataFrame, path: Path) -> Path:
    """Evidently's data drift HTML report, for a person to open."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        categorical_columns=CATEGORICAL_FEATURES, numerical_columns=NUMERICAL_FEATURES
    )
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current[FEATURES], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[FEATURES], data_definition=definition),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path


def champion_rmse(window: pd.DataFrame, version: int) -> tuple[float | None, int]:
    """RMSE of the champion's labelled predictions in ``window``, and how many there were."""
    mine = window[(window["variant"] == CHAMPION_VARIANT) & (window["model_version"] == version)]
    labelled = mine.dropna(subset=[TARGET])
    if labelled.empty:
        return None, 0
    errors = labelled[TARGET].to_numpy(float) - labelled["prediction"].to_numpy(float)
    return float(np.sqrt(np.mean(errors**2))), len(labelled)


def measure(
    reference: pd.DataFrame,
    traffic: pd.DataFrame,
    triggers: Triggers,
    *,
    period: str,
    measured_at: datetime,
    window: tuple[datetime, datetime],
    champion_version: int,
    validation_rmse: float | None,
    report_path: Path | None = None,
) -> MonitoringResult:
    """Compare ``traffic`` (served in ``window``) with the champion's training ``reference``."""
    if traffic.empty:
        raise ValueError("the monitoring window holds no served predictions")
    scores = drift_scores(reference, traffic)
    limits = triggers.feature_thresholds
    drifted = [name for name, limit in limits.items() if scores.get(name, 0.0) > limit]
    rmse, labelled = champion_rmse(traffic, champion_version)
    report = None
    if report_path is not None:
        report = str(write_drift_report(reference, traffic, report_path))
    return MonitoringResult(
        period=period,
        measured_at=measured_at,
        window_start=window[0],
        window_end=window[1],
        champion_version=champion_version,
        rows=len(traffic),
        labelled_rows=labelled,
        feature_drift={name: round(value, 4) for name, value in scores.items()},
        drifted_features=drifted,
        drift_share=len(drifted) / len(triggers.feature_thresholds),
        rmse=rmse,
        validation_rmse=validation_rmse,
        report=report,
    )


def append_result(path: Path, result: MonitoringResult) -> None:
    """Append ``result`` to the JSONL history of monitoring results."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(result.to_json() + "\n")


def latest_result(path: Path) -> MonitoringResult | None:
    """The most recent monitoring result, or None before the first one."""
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return MonitoringResult.from_json(lines[-1]) if lines else None
