"""Drift of recent traffic against the training reference, with Evidently."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

with warnings.catch_warnings():  # Evidently's own imports warn about deprecated internals
    warnings.simplefilter("ignore", DeprecationWarning)
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

from ..contract import CATEGORICAL_FEATURES, FEATURES, NUMERICAL_FEATURES
from .config import DriftConfig
from .data import PREDICTION


@dataclass(frozen=True)
class DriftResult:
    """Per-feature scores and verdicts, the drifted share, and prediction drift."""

    scores: dict[str, float]
    drifted: dict[str, bool]
    share: float
    dataset_drift: bool
    prediction_score: float
    prediction_drift: bool


def _definition() -> DataDefinition:
    return DataDefinition(
        categorical_columns=list(CATEGORICAL_FEATURES),
        numerical_columns=[*NUMERICAL_FEATURES, PREDICTION],
    )


#: Seed of the rows sampled for the drift tests, so a re-run gives the same scores.
SAMPLE_SEED = 0


def drift_sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame`` (drift features and predictions), seeded.

    Distances between distributions need a sample, not every row: at the default 50,000 rows
    (the size of the reference) their sampling error is far below the thresholds, while
    Evidently's time and memory grow with the rows it is given.
    """
    columns = [*FEATURES, PREDICTION]
    if len(frame) > rows:
        frame = frame.sample(rows, random_state=SAMPLE_SEED)
    return frame[columns]


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> Any:
    """Run the Evidently report (data drift per feature and of the predictions) on samples of
    at most ``config.sample_rows`` rows of each side."""
    report = Report(
        [
            DataDriftPreset(
                columns=list(FEATURES),
                drift_share=config.share,
                cat_method=config.categorical_method,
                cat_threshold=config.categorical_threshold,
                num_method=config.numerical_method,
                num_threshold=config.numerical_threshold,
            ),
            ValueDrift(
                column=PREDICTION,
                method=config.prediction_method,
                threshold=config.prediction_threshold,
            ),
        ]
    )
    return report.run(
        current_data=Dataset.from_pandas(
            drift_sample(current, config.sample_rows), data_definition=_definition()
        ),
        reference_data=Dataset.from_pandas(
            drift_sample(reference, config.sample_rows), data_definition=_definition()
        ),
    )


def summarize(snapshot: Any, config: DriftConfig) -> DriftResult:
    """Read the scores out of an Evidently snapshot and apply the thresholds."""
    scores: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        column = metric["config"].get("column")
        if metric["config"].get("type", "").endswith(":ValueDrift") and column is not None:
            scores[column] = float(metric["value"])
    thresholds = dict.fromkeys(CATEGORICAL_FEATURES, config.categorical_threshold)
    thresholds.update(dict.fromkeys(NUMERICAL_FEATURES, config.numerical_threshold))
    drifted = {name: scores[name] >= thresholds[name] for name in FEATURES}
    share = sum(drifted.values()) / len(FEATURES)
    prediction_score = scores[PREDICTION]
    return DriftResult(
        scores={name: scores[name] for name in FEATURES},
        drifted=drifted,
        share=share,
        dataset_drift=share >= config.share,
        prediction_score=prediction_score,
        prediction_drift=prediction_score >= config.prediction_threshold,
    )


def save_html(snapshot: Any, path: Path) -> Path:
    """Write the report as a self-contained HTML page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path
