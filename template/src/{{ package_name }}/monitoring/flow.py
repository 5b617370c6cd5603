"""The monitoring flow: recent traffic vs the reference -> report, metrics, alerts.

Each task is a plain function underneath (``task.fn``), testable without a Prefect server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sklearn.pipeline import Pipeline
from sqlalchemy import Engine

from ..problem import PROBLEM, Problem
from ..serving.store import make_engine
from ..training.registry import CHAMPION, MODEL_NAME, load_model_by_alias
from ..training.tracking import configure_tracking
from .checks import (
    MetricAlert,
    Validation,
    VariantMetrics,
    class_shares,
    clipped_by_variant,
    metric_alerts,
    metric_unit,
    metrics_by_variant,
    missing_shares,
    short_of_labels,
)
from .config import DEFAULT_CONFIG, MonitoringConfig, load_config
from .data import CHECK_COLUMNS, PREDICTION, load_reference, read_window, with_predictions
from .drift import DriftResult, drift_report, measure, save_html
from .store import write_metrics

Metrics = dict[tuple[str, str | None], float]
PerVariant = dict[str, tuple[float, int]]


@dataclass(frozen=True)
class MonitoringResult:
    """What one monitoring run found: ``metrics`` per variant (the task's, by name, and the
    labelled rows they were scored on), ``metric`` the one alerted on and, per variant and
    version that served it, what that metric was held to (``metric_checks``)."""

    run_id: str
    rows: int
    drift: DriftResult | None
    metrics: VariantMetrics
    alerts: list[str] = field(default_factory=list)
    report: Path | None = None
    clipped: PerVariant = field(default_factory=dict)
    metric: str = ""
    metric_checks: list[MetricAlert] = field(default_factory=list)
    shares: dict[str, dict[str, float]] = field(default_factory=dict)

    def score(self, variant: str) -> float | None:
        """The alerted metric of ``variant`` (None without enough labelled rows)."""
        found = self.metrics.get(variant)
        return None if found is None else found[0][self.metric]

    @property
    def drift_detected(self) -> bool:
        return self.drift is not None and (self.drift.dataset_drift or self.drift.prediction_drift)


@task(name="load reference", cache_policy=NO_CACHE)
def reference_task(config: MonitoringConfig, model: Pipeline) -> pd.DataFrame:
    """The reference rows with the champion's predictions."""
    reference = config.reference_selection()
    return with_predictions(load_reference(reference, config.data_source()), model)


@task(name="read window", cache_policy=NO_CACHE)
def window_task(log_url: str, since: datetime, until: datetime, max_rows: int) -> pd.DataFrame:
    """Logged predictions of the window (the columns the check needs), with ground truth."""
    return read_window(make_engine(log_url), since, until, max_rows, CHECK_COLUMNS)


def validation_of(version: int, name: str = MODEL_NAME) -> Validation:
    """The validation metrics ``version``'s MLflow run logged, and on how many rows."""
    client = MlflowClient()
    try:
        run_id = client.get_model_version(name, str(version)).run_id
        data = client.get_run(run_id).data if run_id else None
    except MlflowException:  # a version of another registry: nothing to compare with
        data = None
    if data is None:
        return Validation({})
    rows = data.params.get("data.validation_rows")
    return Validation(dict(data.metrics), int(rows) if rows and rows.isdigit() else None)


def served_validations(window: pd.DataFrame) -> dict[int, Validation]:
    """:func:`validation_of` each model version that served ``window``."""
    return {version: validation_of(version) for version in served_by(window)}


def _alerts(
    config: MonitoringConfig,
    sizes: tuple[int, int],
    drift: DriftResult | None,
    missing: dict[str, float],
    clipped: PerVariant,
) -> list[str]:
    alerts = []
    window, reference = sizes
    if drift is None:
        alerts.append(
            f"no drift verdict: {window} predictions in the window and {reference} reference "
            f"rows (drift.min_rows: {config.drift.min_rows} on each side)"
        )
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
        f"{count} predictions of {variant} ({share:.1%}) held to the target's range "
        f"(> {config.checks.max_clipped_share:.1%})"
        for variant, (share, count) in clipped.items()
        if share > config.checks.max_clipped_share
    ]
    return alerts


def _metrics(
    rows: int,
    drift: DriftResult | None,
    missing: dict[str, float],
    metrics: VariantMetrics,
    clipped: PerVariant,
    shares: dict[str, dict[str, float]],
) -> Metrics:
    values: Metrics = {("rows", None): rows}
    values.update({(f"missing_share.{name}", None): share for name, share in missing.items()})
    if drift is not None:
        values[("drift_share", None)] = drift.share
        values[("dataset_drift", None)] = float(drift.dataset_drift)
        values[("prediction_drift_score", None)] = drift.prediction_score
        values[("prediction_drift", None)] = float(drift.prediction_drift)
        bounds = drift.false_alarm_bounds.items()
        values.update({(f"false_alarm_bound.{check}", None): b for check, b in bounds})
        values.update({(f"drift_score.{name}", None): s for name, s in drift.scores.items()})
        if len(drift.prediction_scores) > 1:
            outputs = drift.prediction_scores.items()
            values.update({(f"prediction_drift_score.{n}", None): s for n, s in outputs})
    for variant, (scores, count) in metrics.items():
        values.update({(name, variant): value for name, value in scores.items()})
        values[("labelled_rows", variant)] = count
    for variant, by_class in shares.items():
        values.update({(f"predicted_share.{c}", variant): s for c, s in by_class.items()})
    for variant, (share, count) in clipped.items():
        values[("clipped_share", variant)] = share
        values[("clipped_rows", variant)] = count
    return values


def alert_metrics(checked: list[MetricAlert]) -> Metrics:
    """Each checked version's score and what it was held to, as rows a dashboard can chart:
    ``alert_score.v<N>``, ``alert_limit.v<N>``, ``alert_fired.v<N>`` and, when the limit came
    from the version's validation score, ``alert_validation.v<N>`` and ``alert_slack.v<N>``."""
    values: Metrics = {}
    for found in checked:
        if found.limit is None:
            continue
        suffix = "" if found.version is None else f".v{found.version}"
        parts = {
            "score": found.score,
            "limit": found.limit,
            "fired": float(found.fired),
            "validation": found.validation,
            "slack": found.slack,
        }
        values.update(
            {
                (f"alert_{name}{suffix}", found.variant): v
                for name, v in parts.items()
                if v is not None
            }
        )
    return values


def check_window(
    config: MonitoringConfig,
    engine: Engine,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    run_id: str,
    span: tuple[datetime, datetime],
    report: Path | None = None,
    problem: Problem = PROBLEM,
    validations: dict[int, Validation] | None = None,
) -> MonitoringResult:
    """Drift, missing values, the task's metrics, class shares and clipped predictions of
    ``window``; stores the metrics in ``engine`` and writes the HTML ``report`` (if given)
    when both sides have ``drift.min_rows`` rows.

    The alerted metric of each version that served the window is held to that version's own
    validation score (``validations``; default: from the registry) plus the slack its labelled
    rows allow, or to ``checks.limit`` (see ``ChecksConfig``)."""
    missing = missing_shares(window, problem)
    metrics = metrics_by_variant(window, config.checks.min_labelled, problem)
    clipped = clipped_by_variant(window)
    shares = class_shares(window, problem)
    current = window.dropna(subset=[PREDICTION])
    drift, written = None, None
    if min(len(current), len(reference)) >= config.drift.min_rows:
        drift = measure(reference, current, config.drift, problem)
        if report is not None:  # the same distances and thresholds, for people to read
            snapshot = drift_report(reference, current, config.drift, problem, drift.limits)
            written = save_html(snapshot, report)
    metric = config.checks.metric_name(problem)
    checked = metric_alerts(
        window,
        metric,
        min_labelled=config.checks.min_labelled,
        limit=config.checks.limit,
        false_alarm_rate=config.checks.false_alarm_rate,
        validations=served_validations(window) if validations is None else validations,
        problem=problem,
    )
    values = _metrics(len(window), drift, missing, metrics, clipped, shares)
    values.update(alert_metrics(checked))
    write_metrics(engine, run_id, span, values)
    sizes = (len(current), len(reference))
    alerts = _alerts(config, sizes, drift, missing, clipped)
    unit = metric_unit(metric, problem)
    alerts += [found.message(unit) for found in checked if found.fired or found.limit is None]
    hours = (span[1] - span[0]).total_seconds() / 3600
    alerts += short_of_labels(window, config.checks.min_labelled, hours, problem)
    return MonitoringResult(
        run_id, len(window), drift, metrics, alerts, written, clipped, metric, checked, shares
    )


@task(name="check window", cache_policy=NO_CACHE)
def check_task(
    config: MonitoringConfig,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    run_id: str,
    span: tuple[datetime, datetime],
) -> MonitoringResult:
    """Drift, missing values and the task's metrics; writes the HTML report and stores the
    metrics."""
    stamp = span[1].strftime("%Y%m%dT%H%M%S")
    report = config.reports_dir / f"monitoring-{stamp}-{run_id[:8]}.html"
    engine = make_engine(config.log_url())
    return check_window(config, engine, reference, window, run_id, span, report)


def served_by(window: pd.DataFrame) -> dict[int, int]:
    """How many predictions of ``window`` each model version served, by version."""
    if "model_version" not in window.columns:
        return {}
    counts = window["model_version"].dropna().astype("int64").value_counts().sort_index()
    return dict(zip(counts.index.tolist(), counts.tolist(), strict=True))


def versions_text(served: dict[int, int]) -> str:
    """``v1 (120), v2 (30)``: the versions that served a window, with their predictions."""
    return ", ".join(f"v{version} ({rows})" for version, rows in served.items()) or "no model"


def alert_lines(alerts: list[str], report: Path | str | None) -> list[str]:
    """The alerts and the report of a check, one indented line each (level 4 prints them too)."""
    lines = [f"  alert: {alert}" for alert in alerts]
    return lines + ([f"  report: {report}"] if report is not None else [])


@flow(name="monitoring", log_prints=False)
def monitoring_flow(
    config_path: Path | None = DEFAULT_CONFIG,
    until: datetime | None = None,
    config: MonitoringConfig | None = None,
) -> MonitoringResult:
    """Compare the last ``window.hours`` of traffic with the reference."""
    config = config or load_config(config_path)
    configure_tracking()
    model, version = load_model_by_alias(CHAMPION)
    until = until or datetime.now(UTC)
    span = (until - timedelta(hours=config.window.hours), until)
    reference = reference_task(config, model)
    window = window_task(config.log_url(), span[0], span[1], config.window.max_rows)
    result = check_task(config, reference, window, uuid4().hex, span)
    verdict = "DRIFT" if result.drift_detected else "no drift"
    served = versions_text(served_by(window))
    print(
        f"monitoring: {result.rows} predictions served by {served} (champion v{version}): {verdict}"
    )
    for line in alert_lines(result.alerts, result.report):
        print(line)
    return result
