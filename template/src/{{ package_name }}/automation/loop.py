"""The closed loop, step by step: monitor -> decide -> train a challenger -> gate -> promote.

Plain functions (the Prefect flows in ``flows`` wrap them), each recording what it decided.
A training run or a gate that fails leaves the champion, and so the service, untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING
from uuid import uuid4

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sqlalchemy import Engine

from .. import datasets
from ..model import sanity_problems, scores
from ..monitoring.config import MonitoringConfig
from ..monitoring.config import load_config as load_monitoring_config
from ..monitoring.data import labelled_event_times, read_labelled, read_window, with_predictions
from ..monitoring.promotion import compare
from ..problem import PROBLEM, DataValidationError
from ..quality import Rejects, rejects_path, target_rejects
from ..serving.predictor import make_predictor
from ..training.config import Selection, TrainingConfig, load_config
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
LATENCY_WARMUP = 20
#: Columns of the rows a challenger trains on (event time first, when the contract has one).
TRAINING_COLUMNS = [
    *([PROBLEM.event_time] if PROBLEM.event_time else []),
    *PROBLEM.features,
    PROBLEM.target.name,
]


class RetrainingDataError(DataValidationError):
    """The loop's data (retraining window, monitoring reference) is unusable; says why."""


class NoTrafficError(RetrainingDataError):
    """No served predictions in the monitored window: an outcome to record, not a crash."""


@dataclass(frozen=True)
class LoopPaths:
    """Where the loop keeps its history: decisions, monitoring results, reports, training data."""

    decisions: Path
    monitoring: Path
    reports: Path
    snapshots: Path  # training rows of challengers that added labelled traffic

    @classmethod
    def under(cls, state: Path, reports: Path) -> LoopPaths:
        return cls(
            state / "decisions.jsonl", state / "monitoring.jsonl", reports, state / "training"
        )

    @classmethod
    def default(cls) -> LoopPaths:
        """``.mlops/automation/`` for the history, ``reports/monitoring/`` for the HTML."""
        return cls.under(state_dir() / "automation", Path("reports") / "monitoring")


def event_time(moment: datetime) -> datetime:
    """``moment`` as the data's event times are: naive, in UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def retraining_window(
    policy: RetrainingPolicy, result: MonitoringResult, gate_start: datetime | None = None
) -> Selection:
    """The source rows a challenger trains on: the ``window_days`` (null: all the days) of the
    source's latest rows before the gate's rows start (``gate_start``: their earliest event
    time; by default where the monitored period starts).

    The window follows the data, not the wall clock: a source whose rows end long before the
    monitored period trains on its own latest days. ``training.data`` in the policy may name
    the source and fix either end; an end after the gate's rows start is refused, naming the
    overlap (the challenger would be scored on rows it trained on). A contract without an
    event time has no windows: the challenger trains on the whole source.
    """
    chosen = policy.training.data
    if PROBLEM.event_time is None:
        return Selection(source=chosen.source)
    gate_from = event_time(gate_start or result.period_start)
    if chosen.end is not None and event_time(chosen.end) > gate_from:
        raise RetrainingDataError(
            f"training.data.end {chosen.end} overlaps the gate's rows (event times from "
            f"{gate_from}): the challenger would be scored on rows it trained on; end the "
            f"training window at {gate_from} or earlier, or leave training.data.end out"
        )
    end = event_time(chosen.end) if chosen.end is not None else gate_from
    if chosen.start is not None:
        if chosen.start >= end:
            raise RetrainingDataError(f"retraining window [{chosen.start}, {end}) is empty")
        return Selection(source=chosen.source, start=chosen.start, end=end)
    return Selection(source=chosen.source, end=end, days=chosen.days or policy.training.window_days)


def gate_rows_start(engine: Engine, result: MonitoringResult) -> datetime | None:
    """The earliest event time the callers sent with the gate's rows (the labelled traffic of
    the monitored window); None when the contract or the callers gave none."""
    if PROBLEM.event_time is None:
        return None
    times = labelled_event_times(engine, result.window_start, result.window_end)
    return None if times.empty else event_time(times.min().to_pydatetime())


def challenger_config(
    policy: RetrainingPolicy,
    result: MonitoringResult,
    snapshot: Path | None = None,
    gate_start: datetime | None = None,
) -> TrainingConfig:
    """The training config of a challenger: the retraining window (or ``snapshot``, a file of
    training rows), validated on its latest rows."""
    base = load_config(policy.training.config, policy.training.overrides)
    if snapshot is not None:
        source, train = str(snapshot), Selection()
    else:
        window = retraining_window(policy, result, gate_start)
        source = window.location(base.data.source)
        train = Selection(start=window.start, end=window.end, days=window.days)
    data = {**base.data.model_dump(), "source": source, "train": train.model_dump()}
    return TrainingConfig.model_validate(
        {**base.model_dump(), "data": {**data, "validation": None}}
    )


def labelled_traffic(
    engine: Engine, since: datetime | None, until: datetime, max_rows: int | None = None
) -> pd.DataFrame:
    """Served rows with their ground truth, as training rows (served time as event time).

    The ground truth is as the log holds it, unchecked: the training run that reads these
    rows sets aside (counts, and writes to its rejects file) a target the contract now finds
    implausible, as it does for any file.
    """
    window = read_labelled(engine, since or datetime.min.replace(tzinfo=UTC), until, max_rows)
    target = window[PROBLEM.target.name]
    rows = PROBLEM.feature_frame(window).assign(**{PROBLEM.target.name: target.to_numpy()})
    if PROBLEM.event_time is not None:  # as the caller sent it, else when it was served
        served = pd.to_datetime(window["ts"], utc=True).dt.tz_localize(None)
        if PROBLEM.event_time in window:
            sent = pd.to_datetime(window[PROBLEM.event_time], utc=True).dt.tz_localize(None)
            served = sent.fillna(served)
        rows.insert(0, PROBLEM.event_time, served.to_numpy())
    return rows.reset_index(drop=True)


def training_snapshot(
    policy: RetrainingPolicy,
    engine: Engine,
    result: MonitoringResult,
    folder: Path,
    gate_start: datetime | None = None,
) -> Path:
    """The retraining window plus the labelled traffic served before the monitored window,
    written to one parquet file the challenger's training run reads (and logs).

    The traffic's rows go in as logged: the training run screens them as it screens any data
    (``quality.screen``), so a row whose logged features or ground truth break the contract
    is set aside, counted in the run's lineage and metrics and written to its rejects file,
    never dropped unseen.
    """
    base = load_config(policy.training.config, policy.training.overrides)
    window = retraining_window(policy, result, gate_start)
    source, lineage = datasets.load(window.location(base.data.source), window.window())
    days = policy.training.window_days
    since = result.window_start - timedelta(days=days) if days else None
    traffic = labelled_traffic(engine, since, result.window_start)
    parts = [source[TRAINING_COLUMNS]]
    if not traffic.empty:
        parts.append(traffic[TRAINING_COLUMNS])
    rows = pd.concat(parts, ignore_index=True)
    log.info("challenger data: %d rows from %s, %d served", len(source), lineage, len(traffic))
    path = folder / f"challenger-{result.period}-{uuid4().hex[:8]}.parquet"
    if lineage.generated:  # keep the marker: generated rows stay visibly generated
        marker = next(f.generated_by for f in lineage.files if f.generated_by)
        return datasets.write_generated(rows, path, str(marker))
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(path, index=False)
    return path


def default_trainer(config: TrainingConfig) -> TrainingResult:
    """The level-2 training flow: tracked and registered, with no alias until the gate says."""
    from ..training.flow import training_flow

    return training_flow(config, assign_aliases=False)


def reference(policy: RetrainingPolicy, champion: Lineage, model: Pipeline) -> pd.DataFrame:
    """The champion's training rows with its predictions: what its traffic is compared with."""
    if champion.training is None:
        raise RetrainingDataError(
            f"the MLflow run of version {champion.version} does not say what it trained on "
            f"({promotion.CONFIG_ARTIFACT} is missing)"
        )
    data = TrainingConfig.model_validate(champion.training).data
    frame, _ = datasets.load(data.train.location(data.source), data.train.window())
    if len(frame) > policy.monitoring.max_reference_rows:
        frame = frame.sample(policy.monitoring.max_reference_rows, random_state=data.seed)
    return with_predictions(frame.reset_index(drop=True), model)


def run_monitoring(
    policy: RetrainingPolicy,
    engine: Engine,
    paths: LoopPaths,
    now: datetime,
    *,
    start: datetime | None = None,
    period: tuple[datetime, datetime] | None = None,
    label: str | None = None,
    report: bool = True,
    config: MonitoringConfig | None = None,
) -> MonitoringResult:
    """Run level 3's monitoring check on the champion's traffic served since ``start``.

    ``period`` is the event time that traffic covers (default: when it was served); a
    retraining triggered by this result trains on the source's rows before it. ``config``:
    the monitoring configuration (default: the policy's).
    """
    # Prefect and Evidently: only when monitoring
    from ..monitoring.flow import check_window, served_by, validation_of

    version = get_version_by_alias(CHAMPION)
    if version is None:
        raise ModelNotFoundError("no champion in the registry: run `make train` first")
    config = config or load_monitoring_config(policy.monitoring.config)
    start = start or now - timedelta(hours=config.window.hours)
    traffic = read_window(engine, start, now, config.window.max_rows)
    if traffic.empty:
        raise NoTrafficError(
            f"no served predictions between {start:%Y-%m-%d %H:%M} and {now:%Y-%m-%d %H:%M}"
        )
    champion = promotion.lineage(version)
    period = period or (start, now)
    label = label or f"{period[0]:%Y-%m-%d}"
    html = paths.reports / f"drift-{label}-v{version}.html" if report else None
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
        period=label,
        measured_at=now,
        window=(start, now),
        covers=period,
        champion_version=version,
        validation=validation_of(version),
        checks=config.checks,
    )
    served = {str(version): rows for version, rows in served_by(traffic).items()}
    result = replace(result, extra={**result.extra, "alerts": check.alerts, "served_by": served})
    append_result(paths.monitoring, result)
    return result


def record_no_traffic(
    paths: LoopPaths, now: datetime, error: NoTrafficError, *, mlflow: bool = True
) -> DecisionRecord:
    """Record a monitoring run that found no traffic (the champion is unchanged)."""
    version = get_version_by_alias(CHAMPION)
    record = DecisionRecord(
        ts=now,
        kind="monitoring",
        action="monitor",
        outcome=audit.NO_TRAFFIC,
        reason=str(error),
        champion_before=version,
        champion_after=version,
    )
    return audit.record(paths.decisions, record, mlflow)


def measure_latencies_ms(
    champion: Pipeline, challenger: Pipeline, rows: pd.DataFrame
) -> tuple[float, float]:
    """p95 milliseconds of single-row predictions through the serving predictor, of the
    champion and the challenger, measured in turns on the same rows after a warm-up: whatever
    else the machine does slows both alike."""
    predictors = (make_predictor(champion), make_predictor(challenger))
    frame = PROBLEM.feature_frame(rows.head(LATENCY_SAMPLES))
    samples = list(frame.itertuples(index=False, name=None))
    for predictor in predictors:  # warm-up: first calls pay for caches and lazy imports
        for row in samples[:LATENCY_WARMUP]:
            predictor.predict_rows([row])
    timings: tuple[list[float], list[float]] = ([], [])
    for index, row in enumerate(samples):
        order = (0, 1) if index % 2 == 0 else (1, 0)  # neither always goes first
        for which in order:
            started = perf_counter()
            predictors[which].predict_rows([row])
            timings[which].append((perf_counter() - started) * 1000)
    return float(np.percentile(timings[0], 95)), float(np.percentile(timings[1], 95))


def gate_check(
    champion: Pipeline, challenger: Pipeline, data: pd.DataFrame, gate: Gate
) -> GateResult:
    """Score both models on the same labelled rows and apply the validation gate."""
    problems = sanity_problems(challenger, data)
    span = None
    if not PROBLEM.is_classifier and not problems:  # raw predictions, before any clipping
        raw = np.asarray(challenger.predict(PROBLEM.feature_frame(data)), dtype="float64")
        span = (float(raw.min()), float(raw.max()))
    comparison = compare(
        gate.metric_name(), scores(champion, data), scores(challenger, data), gate.confidence
    )
    return judge(
        comparison,
        gate,
        problems=problems,
        span=span,
        latency_ms=measure_latencies_ms(champion, challenger, data),
    )


#: Where the gate's rows come from, as its rejects name it.
GATE_SOURCE = "prediction log"


def gate_data(engine: Engine, result: MonitoringResult, gate: Gate) -> tuple[pd.DataFrame, Rejects]:
    """The labelled traffic of the monitored window: the same recent rows for both models.

    A logged target the contract finds implausible (outside its range, not a declared class)
    is set aside as any bad row is (``quality``): counted, written to a rejects file and
    refused past the contract's share; the rows set aside are returned with the kept ones.
    """
    traffic = read_labelled(engine, result.window_start, result.window_end)
    rows, rejects = target_rejects(traffic.reset_index(drop=True), GATE_SOURCE)
    rejects = rejects.settle(GATE_SOURCE, rejects_path(GATE_SOURCE, f"gate-{result.period}"))
    for line in rejects.summary_lines("the gate's labelled traffic"):
        log.warning(line)
    if len(rows) < gate.min_rows:
        set_aside = f" ({rejects.rejected} set aside)" if rejects.rejected else ""
        raise RetrainingDataError(
            f"{len(rows)} labelled row(s) in the monitored window{set_aside}, the gate needs "
            f"gate.min_rows={gate.min_rows}"
        )
    return rows.head(gate.max_rows).reset_index(drop=True), rejects


def rejects_numbers(side: str, rejects: Rejects) -> dict[str, float]:
    """Rows read and set aside, as a decision's numbers (``<side>.rows_rejected``)."""
    return {f"{side}.rows_read": float(rejects.rows), f"{side}.rows_rejected": rejects.rejected}


def rejects_note(rejects: Rejects) -> str:
    """What the gate set aside, for the decision's reason (nothing when none)."""
    if not rejects.rejected:
        return ""
    return f"; the gate set aside {rejects.counts()} of labelled traffic (rejects: {rejects.path})"


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
    snapshots: Path,
) -> tuple[str, str, dict[str, float], int | None]:
    """Train a challenger and judge it: (outcome, reason, numbers, challenger version)."""
    try:
        gate_start = gate_rows_start(engine, result)
        snapshot = (
            training_snapshot(policy, engine, result, snapshots, gate_start)
            if policy.training.include_labelled_traffic
            else None
        )
        trained = trainer(challenger_config(policy, result, snapshot, gate_start))
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
        data, rejects = gate_data(engine, result, policy.gate)
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
    numbers.update(rejects_numbers("gate", rejects))
    reason = verdict.reason + rejects_note(rejects)
    if not verdict.passed:
        promotion.refuse(version, reason)
        return audit.REFUSED, reason, numbers, version
    promotion.promote(version)
    return audit.PROMOTED, reason, numbers, version


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
    outcome, verdict, numbers, version = retrain_and_gate(
        policy, engine, result, trainer, paths.snapshots
    )
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
