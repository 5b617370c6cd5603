"""The monitoring flow: recent traffic vs the training reference -> report, metrics, alerts.

Each task is a plain function underneath (``task.fn``), testable without a Prefect server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from ..training import environment

environment.set_offline_defaults()

import pandas as pd  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sqlalchemy import Engine  # noqa: E402

from ..serving.store import make_engine  # noqa: E402
from ..training.registry import CHAMPION, load_model_by_alias  # noqa: E402
from ..training.tracking import configure_tracking  # noqa: E402
from .checks import missing_shares, rmse_by_variant  # noqa: E402
from .config import DEFAULT_CONFIG, MonitoringConfig, load_config  # noqa: E402
from .data import (  # noqa: E402
    CHECK_COLUMNS,
    PREDICTION,
    load_reference,
    read_window,
    with_predictions,
)
from .drift import DriftResult, drift_report, save_html, summarize  # noqa: E402
from .store import write_metrics  # noqa: E402

Metrics = dict[tuple[str, str | None], float]


@dataclass(frozen=True)
class MonitoringResult:
    """What one monitoring run found."""

    run_id: str
    rows: int
    drift: DriftResult | None
    rmse: dict[str, tuple[float, int]]
    alerts: list[str] = field(default_factory=list)
    report: Path | None = None

    @property
    def drift_detected(self) -> bool:
        return self.drift is not None and (self.drift.dataset_drift or self.drift.prediction_drift)


@task(name="load reference", cache_policy=NO_CACHE)
def reference_task(config: MonitoringConfig, model: Pipeline) -> pd.DataFrame:
    """The training months with the champion's predictions."""
    return with_predictions(load_reference(config.reference), model)


@task(name="read window", cache_policy=NO_CACHE)
def window_task(log_url: str, since: datetime, until: datetime, max_rows: int) -> pd.DataFrame:
    """Logged predictions of the window (the columns the check needs), with ground truth."""
    return read_window(make_engine(log_url), since, until, max_rows, CHECK_COLUMNS)


def _alerts(
    config: MonitoringConfig,
    rows: int,
    drift: DriftResult | None,
    missing: dict[str, float],
    rmse: dict[str, tuple[float, int]],
) -> list[str]:
    alerts = []
    if drift is None:
        alerts.append(f"only {rows} predictions in the window (< {config.checks.min_rows})")
    else:
        if drift.dataset_drift:
            names = [name for name, flag in drift.drifted.items() if flag]
            alerts.append(f"data drift: {drift.share:.0%} of the features drifted ({names})")
        if drift.prediction_drift:
            alerts.append(f"prediction drift: score {drift.prediction_score:.3f}")
    alerts += [
        f"missing values: {name} {share:.1%}"
        for name, share in missing.items()
        if share > config.checks.max_missing_share
    ]
    alerts += [
        f"RMSE of {variant} {value:.2f} min > {config.checks.max_rmse:g}"
        for variant, (value, _) in rmse.items()
        if value > config.checks.max_rmse
    ]
    return alerts


def _metrics(
    rows: int,
    drift: DriftResult | None,
    missing: dict[str, float],
    rmse: dict[str, tuple[float, int]],
) -> Metrics:
    values: Metrics = {("rows", None): rows}
    values.update({(f"missing_share.{name}", None): share for name, share in missing.items()})
    if drift is not None:
        values[("drift_share", None)] = drift.share
        values[("dataset_drift", None)] = float(drift.dataset_drift)
        values[("prediction_drift_score", None)] = drift.prediction_score
        values[("prediction_drift", None)] = float(drift.prediction_drift)
        values.update({(f"drift_score.{name}", None): s for name, s in drift.scores.items()})
    for variant, (value, count) in rmse.items():
        values[("rmse", variant)] = value
        values[("labelled_rows", variant)] = count
    return values


def check_window(
    config: MonitoringConfig,
    engine: Engine,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    run_id: str,
    span: tuple[datetime, datetime],
    report: Path | None = None,
) -> MonitoringResult:
    """Drift, missing values and RMSE of ``window``; stores the metrics in ``engine`` and
    writes the HTML ``report`` (if given) when the window is large enough for a drift verdict."""
    missing = missing_shares(window)
    rmse = rmse_by_variant(window, config.checks.min_labelled)
    drift, written = None, None
    if len(window) >= config.checks.min_rows:
        snapshot = drift_report(reference, window.dropna(subset=[PREDICTION]), config.drift)
        drift = summarize(snapshot, config.drift)
        if report is not None:
            written = save_html(snapshot, report)
    write_metrics(engine, run_id, span, _metrics(len(window), drift, missing, rmse))
    alerts = _alerts(config, len(window), drift, missing, rmse)
    return MonitoringResult(run_id, len(window), drift, rmse, alerts, written)


@task(name="check window", cache_policy=NO_CACHE)
def check_task(
    config: MonitoringConfig,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    run_id: str,
    span: tuple[datetime, datetime],
) -> MonitoringResult:
    """Drift, missing values and RMSE; writes the HTML report and stores the metrics."""
    stamp = span[1].strftime("%Y%m%dT%H%M%S")
    report = config.reports_dir / f"monitoring-{stamp}-{run_id[:8]}.html"
    engine = make_engine(config.log_url())
    return check_window(config, engine, reference, window, run_id, span, report)


@flow(name="monitoring", log_prints=False)
def monitoring_flow(
    config_path: Path | None = DEFAULT_CONFIG,
    until: datetime | None = None,
    config: MonitoringConfig | None = None,
) -> MonitoringResult:
    """Compare the last ``window.hours`` of traffic with the training reference."""
    config = config or load_config(config_path)
    configure_tracking()
    model, version = load_model_by_alias(CHAMPION)
    until = until or datetime.now(UTC)
    span = (until - timedelta(hours=config.window.hours), until)
    reference = reference_task(config, model)
    window = window_task(config.log_url(), span[0], span[1], config.window.max_rows)
    result = check_task(config, reference, window, uuid4().hex, span)
    verdict = "DRIFT" if result.drift_detected else "no drift"
    print(f"monitoring: {result.rows} predictions, champion v{version}: {verdict}")
    for alert in result.alerts:
        print(f"  alert: {alert}")
    if result.report is not None:
        print(f"  report: {result.report}")
    return result
