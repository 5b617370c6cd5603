"""The closed loop, step by step: monitor -> decide -> train a challenger -> gate -> promote.

Plain functions (the Prefect flows in ``flows`` wrap them), each recording what it decided.
A training run or a gate that fails leaves the champion, and so the service, untouched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING
from uuid import uuid4

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sqlalchemy import Engine

from ..features import prepare_features
from ..model import evaluate
from ..monitoring.config import ReferenceConfig
from ..monitoring.config import load_config as load_monitoring_config
from ..monitoring.data import labelled, load_reference, read_window, with_predictions
from ..serving.predictor import make_predictor
from ..training.config import TrainingConfig, load_config, parse_month
from ..training.environment import state_dir
from ..training.registry import CHAMPION, ModelNotFoundError, get_version_by_alias
from . import audit, promotion
from .audit import DecisionRecord
from .decision import RETRAIN, SKIP, GateResult, decide, judge
from .policy import Gate, RetrainingPolicy
from .promotion import Lineage
from .signals import MonitoringResult, append_result, latest_result, summarize

if TYPE_CHECKING:  # importing the flows pulls in Prefect: only when training or monitoring
    from ..training.flow import TrainingResult

log = logging.getLogger(__name__)
Trainer = Callable[[TrainingConfig], "TrainingResult"]
LATENCY_SAMPLES = 200


@dataclass(frozen=True)
class LoopPaths:
    """Where the loop keeps its history: decision log, monitoring results, reports."""

    decisions: Path
    monitoring: Path
    reports: Path

    @classmethod
    def under(cls, state: Path, reports: Path) -> LoopPaths:
        return cls(state / "decisions.jsonl", state / "monitoring.jsonl", reports)

    @classmethod
    def default(cls) -> LoopPaths:
        """``.mlops/automation/`` for the history, ``reports/monitoring/`` for the HTML."""
        return cls.under(state_dir() / "automation", Path("reports") / "monitoring")


def period_of(moment: datetime) -> str:
    """``YYYY-MM`` of ``moment``."""
    return f"{moment.year:04d}-{moment.month:02d}"


def shift_month(period: str, months: int) -> str:
    """``shift_month("2024-01", -1) == "2023-12"``."""
    year, month = parse_month(period)
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def challenger_config(policy: RetrainingPolicy, period: str) -> TrainingConfig:
    """The training config of a challenger: the months before ``period``, validated on it."""
    window = policy.training.window_months
    months = [shift_month(period, -back) for back in range(window, 0, -1)]
    return load_config(
        policy.training.config,
        [
            *policy.training.overrides,
            f"data.train_months={json.dumps(months)}",
            f'data.validation_month="{period}"',
        ],
    )


def default_trainer(config: TrainingConfig) -> TrainingResult:
    """The level-2 training flow: tracked and registered, with no alias until the gate says."""
    from ..training.flow import training_flow

    return training_flow(config, assign_aliases=False)


def reference(policy: RetrainingPolicy, champion: Lineage, model: Pipeline) -> pd.DataFrame:
    """The champion's training months with its predictions: what its traffic is compared with."""
    if not champion.train_months:
        raise ValueError("the champion's MLflow run does not say which months it trained on")
    data = load_config(policy.training.config).data
    months = ReferenceConfig(
        data_dir=data.dir,
        months=champion.train_months,
        max_rows=policy.monitoring.max_reference_rows,
        seed=data.seed,
    )
    return with_predictions(load_reference(months), model)


def run_monitoring(
    policy: RetrainingPolicy,
    engine: Engine,
    paths: LoopPaths,
    now: datetime,
    *,
    start: datetime | None = None,
    period: str | None = None,
    report: bool = True,
) -> MonitoringResult:
    """Run level 3's monitoring check on the champion's recent traffic; append the result."""
    from ..monitoring.flow import check_window  # Prefect and Evidently: only when monitoring

    version = get_version_by_alias(CHAMPION)
    if version is None:
        raise ModelNotFoundError("no champion in the registry: run `make train` first")
    config = load_monitoring_config(policy.monitoring.config)
    start = start or now - timedelta(hours=config.window.hours)
    traffic = read_window(engine, start, now, config.window.max_rows)
    if traffic.empty:
        raise ValueError("the monitoring window holds no served predictions")
    champion = promotion.lineage(version)
    period = period or period_of(now)
    html = paths.reports / f"drift-{period}-v{version}.html" if report else None
    check = check_window(
        config,
        engine,
        reference(policy, champion, promotion.load_version(version)),
        traffic,
        uuid4().hex,
        (start, now),
        html,
    )
    result = summarize(
        check,
        traffic,
        policy.triggers,
        period=period,
        measured_at=now,
        window=(start, now),
        champion_version=version,
        validation_rmse=champion.validation_rmse,
    )
    append_result(paths.monitoring, result)
    return result


def measure_latency_ms(model: Pipeline, rows: pd.DataFrame) -> float:
    """p95 milliseconds of single-trip predictions through the serving predictor."""
    predictor = make_predictor(model)
    frame = prepare_features(rows.head(LATENCY_SAMPLES))
    samples = [tuple(float(value) for value in row) for row in frame.itertuples(index=False)]
    timings = []
    for row in samples:
        start = perf_counter()
        predictor.predict_rows([row])
        timings.append((perf_counter() - start) * 1000)
    return float(np.percentile(timings, 95))


def gate_check(
    champion: Pipeline, challenger: Pipeline, data: pd.DataFrame, gate: Gate
) -> GateResult:
    """Score both models on the same labelled trips and apply the validation gate."""
    predicted = np.asarray(challenger.predict(prepare_features(data)), dtype="float64")
    finite = bool(np.isfinite(predicted).all())
    low, high = (float(predicted.min()), float(predicted.max())) if finite else (0.0, 0.0)
    return judge(
        evaluate(champion, data)["rmse"],
        evaluate(challenger, data)["rmse"],
        gate,
        finite=finite,
        low=low,
        high=high,
        p95_latency_ms=measure_latency_ms(challenger, data),
    )


def gate_data(engine: Engine, result: MonitoringResult, max_rows: int) -> pd.DataFrame:
    """The labelled traffic of the monitored window: the same recent data for both models."""
    traffic = read_window(engine, result.window_start, result.window_end)
    return labelled(traffic).head(max_rows).reset_index(drop=True)


def _skip(
    now: datetime, result: MonitoringResult | None, reason: str, numbers: dict[str, float]
) -> DecisionRecord:
    version = get_version_by_alias(CHAMPION)
    return DecisionRecord(
        ts=now,
        kind="retraining",
        action=SKIP,
        outcome=audit.SKIPPED,
        reason=reason,
        numbers=numbers,
        period=result.period if result else None,
        champion_before=version,
        champion_after=version,
    )


def retrain_and_gate(
    policy: RetrainingPolicy,
    engine: Engine,
    result: MonitoringResult,
    trainer: Trainer,
) -> tuple[str, str, dict[str, float], int | None]:
    """Train a challenger and judge it: (outcome, reason, numbers, challenger version)."""
    try:
        trained = trainer(challenger_config(policy, result.period))
    except Exception as exc:  # any failure of the run: the champion stays
        log.exception("training the challenger failed")
        return (
            audit.FAILED,
            f"training failed, champion kept: {type(exc).__name__}: {exc}",
            {},
            None,
        )
    version = trained.model_version
    numbers = {f"challenger.validation_{k}": v for k, v in trained.metrics.items()}
    if get_version_by_alias(CHAMPION) is None:  # nothing to compare with
        promotion.promote(version)
        return audit.PROMOTED, "first model: became champion", numbers, version
    try:
        data = gate_data(engine, result, policy.gate.max_rows)
        champion = promotion.load_version(result.champion_version)
        verdict = gate_check(champion, promotion.load_version(version), data, policy.gate)
    except Exception as exc:
        log.exception("the validation gate failed")
        promotion.refuse(version, f"gate error: {exc}")
        return (
            audit.FAILED,
            f"gate error, champion kept: {type(exc).__name__}: {exc}",
            numbers,
            version,
        )
    numbers.update({**verdict.numbers, "gate.rows": float(len(data))})
    if not verdict.passed:
        promotion.refuse(version, verdict.reason)
        return audit.REFUSED, verdict.reason, numbers, version
    promotion.promote(version)
    return audit.PROMOTED, verdict.reason, numbers, version


def run_retraining_check(
    policy: RetrainingPolicy,
    engine: Engine,
    paths: LoopPaths,
    now: datetime,
    trainer: Trainer = default_trainer,
    *,
    mlflow: bool = True,
) -> DecisionRecord:
    """Read the latest monitoring result, decide, retrain and gate if due; record the decision."""
    result = latest_result(paths.monitoring)
    if result is None:
        record = _skip(now, None, "no monitoring result yet: run the monitoring flow first", {})
        return audit.record(paths.decisions, record, mlflow)
    champion = get_version_by_alias(CHAMPION)
    if champion != result.champion_version:
        reason = (
            f"stale monitoring result: it measured version {result.champion_version}, "
            f"the champion is now {champion}; waiting for the next monitoring run"
        )
        return audit.record(paths.decisions, _skip(now, result, reason, {}), mlflow)
    decision = decide(result, policy.triggers, audit.last_retraining(paths.decisions), now)
    if decision.action != RETRAIN:
        record = _skip(now, result, decision.reason, decision.numbers)
        return audit.record(paths.decisions, record, mlflow)
    outcome, verdict, numbers, version = retrain_and_gate(policy, engine, result, trainer)
    record = DecisionRecord(
        ts=now,
        kind="retraining",
        action=RETRAIN,
        outcome=outcome,
        reason=f"{decision.reason} -> {outcome}: {verdict}",
        numbers={**decision.numbers, **numbers},
        period=result.period,
        champion_before=champion,
        champion_after=get_version_by_alias(CHAMPION),
        challenger_version=version,
    )
    return audit.record(paths.decisions, record, mlflow)


def run_rollback(paths: LoopPaths, now: datetime, *, mlflow: bool = True) -> DecisionRecord:
    """Move ``champion`` back to ``previous-champion`` and record it."""
    before, after = promotion.rollback()
    record = DecisionRecord(
        ts=now,
        kind="rollback",
        action="rollback",
        outcome=audit.ROLLED_BACK,
        reason=f"manual rollback: champion {before} -> {after}",
        champion_before=before,
        champion_after=after,
    )
    return audit.record(paths.decisions, record, mlflow)
