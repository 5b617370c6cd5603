"""Drift of recent traffic against the reference, with Evidently.

Distances between samples are never 0: a 100-row window differs from any reference by chance,
and more so the more categories a feature has. So each threshold is calibrated on the
reference itself: ``calibration_rounds`` samples of the window's size drawn from it show how far
chance alone goes, and a column drifts only beyond both the configured threshold and the order
statistic of those chance distances that an undrifted window passes with a small, known
probability (split conformal). The probabilities are chosen so that each check (data drift,
prediction drift) flags at most ``false_alarm_rate`` of undrifted windows.

One function decides (``measure``, numpy-level, used by levels 3 and 4 alike); the Evidently
report computes the same distances with the same thresholds, for people to read.

Prediction drift is measured on what a model outputs: a regression's predictions, a binary
classifier's probability of the positive class, a multiclass classifier's probability of each
class (a shift shows in the probabilities before it moves the predicted class shares, which
are stored as metrics besides).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
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
    (the largest score of the prediction columns, drifted when any of them drifts).

    ``limits`` gives every column's threshold (features and prediction columns)."""

    scores: dict[str, float]
    thresholds: dict[str, float]
    drifted: dict[str, bool]
    share: float
    dataset_drift: bool
    prediction_score: float
    prediction_drift: bool
    prediction_scores: dict[str, float] = field(default_factory=dict)
    prediction_thresholds: dict[str, float] = field(default_factory=dict)
    required_share: float = 0.5  # the share of drifted features the data drifts at
    #: Per check (``data``, ``prediction``): the largest share of undrifted windows it flags.
    false_alarm_bounds: dict[str, float] = field(default_factory=dict)

    @property
    def limits(self) -> dict[str, float]:
        return self.thresholds | self.prediction_thresholds


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
        floor = config.feature_thresholds.get(column, config.categorical_threshold)
        return config.categorical_method, floor, ColumnType.Categorical
    floor = config.feature_thresholds.get(column, config.numerical_threshold)
    return config.numerical_method, floor, ColumnType.Numerical


def drift_sample(frame: pd.DataFrame, rows: int, problem: Problem = PROBLEM) -> pd.DataFrame:
    """At most ``rows`` rows of ``frame`` (drift features and predictions), seeded.

    Distances between distributions need a sample, not every row, while Evidently's time and
    memory grow with the rows it is given.
    """
    columns = [*problem.features, *prediction_columns(problem)]
    if len(frame) > rows:
        frame = frame.sample(rows, random_state=SAMPLE_SEED)
    return frame[columns]


def _clean(values: pd.Series) -> pd.Series:
    """The values a distance is computed on: finite, not missing (as Evidently's report)."""
    kept = values.dropna()
    if pd.api.types.is_numeric_dtype(kept.dtype):
        kept = kept[np.isfinite(kept.to_numpy(dtype="float64"))]
    return kept.reset_index(drop=True)


def distance(reference: pd.Series, current: pd.Series, method: str, kind: ColumnType) -> float:
    """Evidently's ``method`` distance of ``current`` from ``reference`` (the report's value)."""
    reference, current = _clean(reference), _clean(current)
    if reference.empty or current.empty:
        return float("nan")
    test = get_stattest(reference, current, kind, method)
    return float(test(reference, current, kind, None).drift_score)


def chance_distances(
    reference: pd.Series, rows: int, method: str, kind: ColumnType, rounds: int
) -> npt.NDArray[np.float64]:
    """Distances between ``rows`` reference values and the rest, over ``rounds`` seeded random
    splits: how far a sample of that size drifts by chance alone (none without rounds)."""
    values = _clean(reference)
    size = min(rows, len(values) // 2)
    if rounds == 0 or size < 1:
        return np.empty(0)
    rng = np.random.default_rng(SAMPLE_SEED)
    test = get_stattest(values, values, kind, method)
    found = np.empty(rounds)
    for round_ in range(rounds):
        order = rng.permutation(len(values))
        sample, rest = values.iloc[order[:size]], values.iloc[order[size:]]
        found[round_] = float(test(rest, sample, kind, None).drift_score)
    return found


def conformal_limit(distances: npt.NDArray[np.float64], level: float) -> tuple[float, float]:
    """The order statistic of ``distances`` that a new distance of the same kind exceeds with
    probability at most ``level`` (exchangeable samples: split conformal), and that probability:
    ``level`` itself with enough rounds, else ``1 / (rounds + 1)`` at their largest."""
    rounds = len(distances)
    if rounds == 0:
        return 0.0, 1.0
    rank = min(math.ceil((rounds + 1) * (1 - level)), rounds)
    return float(np.sort(distances)[rank - 1]), (rounds + 1 - rank) / (rounds + 1)


def needed_features(config: DriftConfig, problem: Problem = PROBLEM) -> int:
    """How many features must drift for the data to drift (``config.share`` of them)."""
    return max(1, math.ceil(config.share * len(problem.features) - 1e-9))


def column_levels(config: DriftConfig, problem: Problem = PROBLEM) -> dict[str, float]:
    """Per column, the chance of a false alarm its threshold allows, so that each check holds
    ``config.false_alarm_rate`` per window of undrifted traffic: a feature ``rate * k / n``
    (data drift needs k of n features: at most ``n * level / k`` by Markov's inequality), a
    prediction column ``rate / m`` (prediction drift is any of m: the union bound)."""
    features, outputs = problem.features, prediction_columns(problem)
    feature_level = config.false_alarm_rate * needed_features(config, problem) / len(features)
    output_level = config.false_alarm_rate / len(outputs)
    return dict.fromkeys(features, feature_level) | dict.fromkeys(outputs, output_level)


@dataclass(frozen=True)
class Calibration:
    """Per column the threshold of a window of ``rows`` rows, and per check the largest share
    of undrifted windows it flags (``data`` drift, ``prediction`` drift)."""

    thresholds: dict[str, float]
    false_alarm_bounds: dict[str, float]


def calibrate(
    reference: pd.DataFrame, rows: int, config: DriftConfig, problem: Problem = PROBLEM
) -> Calibration:
    """Per column: the configured threshold, raised to what chance reaches at ``rows`` rows
    no more often than the column's level (``column_levels``)."""
    limits, chances = {}, {}
    for column, level in column_levels(config, problem).items():
        method, floor, kind = _method(config, column, problem)
        found = chance_distances(reference[column], rows, method, kind, config.calibration_rounds)
        limit, chances[column] = conformal_limit(found, level)
        limits[column] = max(floor, limit)
    features, outputs = problem.features, prediction_columns(problem)
    bounds = {
        "data": min(1.0, sum(chances[n] for n in features) / needed_features(config, problem)),
        "prediction": min(1.0, sum(chances[n] for n in outputs)),
    }
    return Calibration(limits, bounds)


def thresholds(
    reference: pd.DataFrame, rows: int, config: DriftConfig, problem: Problem = PROBLEM
) -> dict[str, float]:
    """Per column: the configured threshold, raised to the distance chance reaches at ``rows``."""
    return calibrate(reference, rows, config, problem).thresholds


def measure(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    problem: Problem = PROBLEM,
    calibration: Calibration | None = None,
) -> DriftResult:
    """The drift verdict of ``current`` against ``reference``: each column's distance against
    its calibrated threshold, on the samples the report shows (``drift_sample``).

    Levels 3 and 4 both decide with this one function; the Evidently report (``drift_report``)
    computes the same distances with the same thresholds, for people to read. ``calibration``:
    one made for windows of this size and reference (default: made here)."""
    reference = drift_sample(reference, config.sample_rows, problem)
    current = drift_sample(current, config.sample_rows, problem)
    calibration = calibration or calibrate(reference, len(current), config, problem)
    limits = calibration.thresholds
    scores = {}
    for column in limits:
        method, _, kind = _method(config, column, problem)
        scores[column] = distance(reference[column], current[column], method, kind)
    drifted = {name: bool(scores[name] >= limits[name]) for name in limits}
    return _result(scores, limits, drifted, config, problem, calibration.false_alarm_bounds)


def _result(
    scores: dict[str, float],
    limits: dict[str, float],
    drifted: dict[str, bool],
    config: DriftConfig,
    problem: Problem,
    bounds: dict[str, float] | None = None,
) -> DriftResult:
    features, outputs = problem.features, prediction_columns(problem)
    share = sum(drifted[name] for name in features) / len(features)
    return DriftResult(
        scores={name: scores[name] for name in features},
        thresholds={name: limits[name] for name in features},
        drifted={name: drifted[name] for name in features},
        share=share,
        dataset_drift=share >= config.share,
        prediction_score=max(scores[name] for name in outputs),
        prediction_drift=any(drifted[name] for name in outputs),
        prediction_scores={name: scores[name] for name in outputs},
        prediction_thresholds={name: limits[name] for name in outputs},
        required_share=config.share,
        false_alarm_bounds=bounds or {},
    )


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    problem: Problem = PROBLEM,
    limits: dict[str, float] | None = None,
) -> Any:
    """Run the Evidently report (drift per feature and of the predictions) on samples of at
    most ``config.sample_rows`` rows of each side, with size-calibrated thresholds (``limits``:
    those of a ``measure`` of the same sides, else calibrated anew)."""
    reference = drift_sample(reference, config.sample_rows, problem)
    current = drift_sample(current, config.sample_rows, problem)
    limits = limits or thresholds(reference, len(current), config, problem)
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
    return _result(scores, limits, verdicts, config, problem)


def save_html(snapshot: Any, path: Path) -> Path:
    """Write the report as a self-contained HTML page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path
