"""Monitoring results the retraining decision reads: drift per feature and the watched metric
(``triggers.metric``: the task's primary one unless set) on labelled traffic.

The numbers and the drift verdict are level 3's monitoring check (``monitoring.flow.check_window``:
drift per feature against its size-calibrated threshold, the task's metrics, the
``monitoring_metrics`` table): one drift verdict at both levels. This module adds the retraining
policy's view (the drifted share that triggers, the watched metric) and keeps a result per run in
``.mlops/automation/monitoring.jsonl``, whose
latest entry the retraining check reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..monitoring.checks import (
    MetricAlert,
    Validation,
    logged_scores,
    metric_alert,
    metric_unit,
)
from ..monitoring.config import ChecksConfig
from ..monitoring.data import labelled
from ..problem import PROBLEM, Problem
from ..serving.router import CHAMPION_VARIANT
from .audit import append_line, complete_lines
from .policy import Triggers

if TYPE_CHECKING:  # the flow module pulls in Prefect and Evidently
    from ..monitoring.flow import MonitoringResult as Check


@dataclass(frozen=True)
class MonitoringResult:
    """What monitoring saw in one window of traffic."""

    period: str  # a label of the monitored period (reports, decision records)
    measured_at: datetime
    window_start: datetime  # when the traffic was served ...
    window_end: datetime
    period_start: datetime  # ... and the event time it covers: a retraining's window ends here
    period_end: datetime
    champion_version: int
    rows: int
    labelled_rows: int
    feature_drift: dict[str, float]  # Evidently score per feature
    drifted_features: list[str]
    drift_share: float
    metric: str  # the metric watched (``triggers.metric``)
    score: float | None  # the champion's on the labelled rows (None without labels)
    validation_score: float | None  # the champion's on its own validation data
    report: str | None = None  # HTML report, when one was written
    #: Level 3's metric alert on the champion's labelled rows: the limit ``score`` was held to
    #: (validation score plus slack, or ``checks.limit``), and the alert's words when it fired.
    metric_limit: float | None = None
    metric_alert: str | None = None
    #: Level 3's calibrated threshold per feature, and the drifted share that triggers.
    drift_thresholds: dict[str, float] = field(default_factory=dict)
    required_share: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        for name in TIMES:
            data[name] = data[name].isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> MonitoringResult:
        data = json.loads(line)
        if "rmse" in data:  # written before the metric was configurable
            data |= {"metric": "rmse", "score": data.pop("rmse")}
            data["validation_score"] = data.pop("validation_rmse", None)
        for name in TIMES:
            data[name] = datetime.fromisoformat(data[name])
        return cls(**data)


TIMES = ("measured_at", "window_start", "window_end", "period_start", "period_end")


def champion_alert(
    window: pd.DataFrame,
    version: int,
    metric: str,
    checks: ChecksConfig,
    validation: Validation | None,
    problem: Problem = PROBLEM,
) -> tuple[MetricAlert | None, int]:
    """Level 3's metric alert on the champion's labelled predictions in ``window`` (None without
    any), and how many there were."""
    mine = labelled(window[window["model_version"] == version], problem)
    scores = logged_scores(mine[mine["variant"] == CHAMPION_VARIANT], problem)
    if len(scores.truth) == 0:
        return None, 0
    limit = checks.limit if metric == checks.metric_name(problem) else None
    found = metric_alert(
        CHAMPION_VARIANT,
        version,
        scores,
        metric,
        limit=limit,
        false_alarm_rate=checks.false_alarm_rate,
        validation=validation,
    )
    return found, len(scores.truth)


def summarize(
    check: Check,
    traffic: pd.DataFrame,
    triggers: Triggers,
    *,
    period: str,
    measured_at: datetime,
    window: tuple[datetime, datetime],
    covers: tuple[datetime, datetime],
    champion_version: int,
    validation: Validation | None,
    checks: ChecksConfig,
) -> MonitoringResult:
    """The policy's view of a level-3 ``check`` of ``traffic`` (served in ``window``, with event
    times in ``covers``): the champion's ``triggers.metric`` held to its ``validation`` score
    plus slack, as level 3's ``checks`` hold it."""
    if check.drift is None:
        raise ValueError(f"no drift verdict: {'; '.join(check.alerts)}")
    drift = check.drift
    drifted = [name for name, flag in drift.drifted.items() if flag]
    metric = triggers.metric_name()
    alert, labelled_rows = champion_alert(traffic, champion_version, metric, checks, validation)
    return MonitoringResult(
        period=period,
        measured_at=measured_at,
        window_start=window[0],
        window_end=window[1],
        period_start=covers[0],
        period_end=covers[1],
        champion_version=champion_version,
        rows=check.rows,
        labelled_rows=labelled_rows,
        feature_drift={name: round(value, 4) for name, value in drift.scores.items()},
        drifted_features=drifted,
        drift_share=drift.share,
        drift_thresholds={name: round(value, 4) for name, value in drift.thresholds.items()},
        required_share=triggers.drift_share or drift.required_share,
        metric=metric,
        score=None if alert is None else alert.score,
        validation_score=None if validation is None else validation.metrics.get(metric),
        report=None if check.report is None else str(check.report),
        metric_limit=None if alert is None else alert.limit,
        metric_alert=alert.message(metric_unit(metric)) if alert and alert.fired else None,
        extra={
            "monitoring_run_id": check.run_id,
            "prediction_drift_score": round(drift.prediction_score, 4),
        },
    )


def append_result(path: Path, result: MonitoringResult) -> None:
    """Append ``result`` to the JSONL history of monitoring results (whole, see ``audit``)."""
    append_line(path, result.to_json())


def latest_result(path: Path) -> MonitoringResult | None:
    """The most recent monitoring result, or None before the first one."""
    lines = complete_lines(path)
    return MonitoringResult.from_json(lines[-1]) if lines else None
