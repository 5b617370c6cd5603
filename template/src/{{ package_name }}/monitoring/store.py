"""Monitoring results as rows (run, time, metric, variant, value) that a dashboard can chart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pandas as pd
from sqlalchemy import Column, DateTime, Engine, Float, Integer, String, Table, insert, select

from ..serving.store import metadata

monitoring_metrics = Table(
    "monitoring_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("metric", String(100), nullable=False),
    Column("variant", String(20)),
    Column("value", Float, nullable=False),
)


def write_metrics(
    engine: Engine,
    run_id: str,
    window: tuple[datetime, datetime],
    values: Mapping[tuple[str, str | None], float],
) -> int:
    """Store ``{(metric, variant or None): value}`` of one monitoring run."""
    metadata.create_all(engine, tables=[monitoring_metrics])
    start, end = window
    rows = [
        {
            "run_id": run_id,
            "ts": end,
            "window_start": start,
            "window_end": end,
            "metric": metric,
            "variant": variant,
            "value": float(value),
        }
        for (metric, variant), value in values.items()
    ]
    with engine.begin() as conn:
        conn.execute(insert(monitoring_metrics), rows)
    return len(rows)


def read_metrics(engine: Engine, run_id: str | None = None) -> pd.DataFrame:
    """Stored metrics (of one run, or all), oldest first."""
    query = select(monitoring_metrics).order_by(monitoring_metrics.c.id)
    if run_id is not None:
        query = query.where(monitoring_metrics.c.run_id == run_id)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all())
