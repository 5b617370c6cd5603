"""Drift of recent traffic against the reference, with Evidently.

Distances between samples are never 0: a 100-row window differs from any reference by chance,
and more so the more categories a feature has. So each threshold is calibrated on the
reference itself: samples of the window's size drawn from it show how far chance alone goes,
and a feature drifts only beyond both that and the configured threshold.

Prediction drift is measured on what a model outputs: a regression's predictions, a binary
classifier's probability of the positive class, a multiclass classifier's probability of each
class (a shift shows in the probabilities before it moves the predicted class shares, which
are stored as metrics besides).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

with warnings.catch_warnings():  # Evidently's own imports warn about deprecated internals
    warnings.simplefilter("ignore", DeprecationWarning)
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

from ..predict import probability_column
from ..problem import PROBLEM, Problem
from .config import DriftConfig
from .data import PREDICTION, probability_columns

#: Seed of the rows sampled for the drift tests and calibration, so a re-run gives the same.
SAMPLE_SEED = 0


@dataclass(frozen=True)
class DriftResult:
    """Per-feature scores, thresholds and verdicts, the drifted share, and prediction drift
    (the largest score of the prediction columns, drifted when any of them drifts)."""

    scores: dict[str, float]
    thresholds: dict[str, float]
    drifted: dict[str, bool]
    share: float
    dataset_drift: bool
    prediction_score: float
    prediction_drift: bool
    prediction_scores: dict[str, float] = field(default_factory=dict)


def prediction_columns(problem: Problem = PROBLEM) -> tuple[str, ...]:
    """The columns prediction drift is measured on: ``prediction`` (regression), the positive
    class's probability (binary) or every class's probability (multiclass)."""
    if problem.positive_class is not None:
        return (probability_column(problem.positive_class),)
    if problem.is_classifier:
        return probability_columns(problem)
    return (PREDICTION,)


def _definition(problem: Problem) -> DataDefinition:
    return DataDefinition(
        categorical_columns=list(problem.categorical),
        numerical_columns=[*problem.numeric, *prediction_columns(problem)],
    )


def _method(
    config: DriftConfig, column: str, problem: Problem = PROBLEM
) -> tuple[str, float, ColumnType]:
    """The configured distance, threshold and Evidently column type of ``column``."""
    if column in prediction_columns(problem):
        return config.prediction_method, config.prediction_threshold, ColumnType.Numerical
    if column in problem.categorical:
        return config.categorical_method, config.categorical_threshold, ColumnType.Categorical
    return config.numerical_method, config.numerical_threshold, ColumnType.Numerical


def drift_sample(frame: pd.DataFrame, rows: int, problem: Problem = PROBLEM) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame`` (drift features and predictions), seeded.

    Distances between distributions need a sample, not every row, while Evidently's time and
    memory grow with the rows it is given.
    """
    columns = [*problem.features, *prediction_columns(problem)]
    if len(frame) > rows:
        frame = frame.sample(rows, random_state=SAMPLE_SEED)
    return frame[columns]


def chance_distance(
    reference: pd.Series, rows: int, method: str, kind: ColumnType, rounds: int
) -> float:
    """The largest distance between ``rows`` reference values and the rest, over ``rounds``
    random splits: how far a sample of that size drifts by chance alone (0 without rounds)."""
    values = reference.dropna().reset_index(drop=True)
    size = min(rows, len(values) // 2)
    if rounds == 0 or size < 1:
        return 0.0
    rng = np.random.default_rng(SAMPLE_SEED)
    test = get_stattest(values, values, kind, method)
    found = 0.0
    for _ in range(rounds):
        order = rng.permutation(len(values))
        sample, rest = values.iloc[order[:size]], values.iloc[order[size:]]
        found = max(found, float(test(rest, sample, kind, None).drift_score))
    return found


def thresholds(
    reference: pd.DataFrame, rows: int, config: DriftConfig, problem: Problem = PROBLEM
) -> dict[str, float]:
    """Per column: the configured threshold, raised to the distance chance reaches at ``rows``."""
    out = {}
    for column in [*problem.features, *prediction_columns(problem)]:
        method, threshold, kind = _method(config, column, problem)
        chance = chance_distance(reference[column], rows, method, kind, config.calibration_rounds)
        out[column] = max(threshold, chance)
    return out


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    problem: Problem = PROBLEM,
) -> Any:
    """Run the Evidently report (drift per feature and of the predictions) on samples of at
    most ``config.sample_rows`` rows of each side, with size-calibrated thresholds."""
    reference = drift_sample(reference, config.sample_rows, problem)
    current = drift_sample(current, config.sample_rows, problem)
    limits = thresholds(reference, len(current), config, problem)
    features = list(problem.features)
    report = Report(
        [
            DataDriftPreset(
                columns=features,
                drift_share=config.share,
                cat_method=config.categorical_method,
                num_method=config.numerical_method,
                per_column_threshold={name: limits[name] for name in features},
            ),
            *(
                ValueDrift(column=name, method=config.prediction_method, threshold=limits[name])
                for name in prediction_columns(problem)
            ),
        ],
        include_tests=True,
    )
    definition = _definition(problem)
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def summarize(snapshot: Any, config: DriftConfig, problem: Problem = PROBLEM) -> DriftResult:
    """Read each column's score, threshold and Evidently's verdict out of a snapshot."""
    tree = snapshot.dict()
    scores: dict[str, float] = {}
    limits: dict[str, float] = {}
    for metric in tree["metrics"]:
        settings = metric["config"]
        if settings.get("type", "").endswith(":ValueDrift"):
            scores[settings["column"]] = float(metric["value"])
            limits[settings["column"]] = float(settings["threshold"])
    verdicts: dict[str, bool] = {}
    for test in tree["tests"]:
        params = test["metric_config"]["params"]
        if params.get("type", "").endswith(":ValueDrift"):
            verdicts[params["column"]] = (
                str(getattr(test["status"], "value", test["status"])) == "FAIL"
            )
    features = problem.features
    drifted = {name: verdicts[name] for name in features}
    share = sum(drifted.values()) / len(features)
    outputs = {name: scores[name] for name in prediction_columns(problem)}
    return DriftResult(
        scores={name: scores[name] for name in features},
        thresholds={name: limits[name] for name in features},
        drifted=drifted,
        share=share,
        dataset_drift=share >= config.share,
        prediction_score=max(outputs.values()),
        prediction_drift=any(verdicts[name] for name in outputs),
        prediction_scores=outputs,
    )


def save_html(snapshot: Any, path: Path) -> Path:
    """Write the report as a self-contained HTML page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path
