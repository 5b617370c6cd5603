"""Retention of the prediction log: predictions served before the kept days are deleted, with
their ground truth.

Deleted in chunks of the oldest rows (one short transaction each, along the ``ts`` index), so a
running service's writer waits at most one chunk. SQLite reuses the freed pages; the file
itself shrinks only with ``VACUUM``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, select

from ..serving.store import TABLES, LogTables
from .config import MonitoringConfig

CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class Pruned:
    """What a prune deleted: rows served before ``cutoff``, and their ground truth."""

    cutoff: datetime
    predictions: int
    ground_truth: int

    def describe(self) -> str:
        return (
            f"deleted {self.predictions} prediction(s) served before {self.cutoff:%Y-%m-%d %H:%M} "
            f"UTC and {self.ground_truth} ground-truth value(s) of them"
        )


def cutoff(now: datetime, keep_days: float) -> datetime:
    """The oldest serving time kept when ``keep_days`` are kept at ``now``."""
    return now - timedelta(days=keep_days)


def prune_expired(engine: Engine, config: MonitoringConfig, now: datetime) -> Pruned | None:
    """Apply ``config.retention`` at ``now``: what was deleted, None when everything is kept."""
    days = config.retention.days
    return None if days is None else prune(engine, cutoff(now, days))


def prune(
    engine: Engine, before: datetime, tables: LogTables = TABLES, chunk_rows: int = CHUNK_ROWS
) -> Pruned:
    """Delete the predictions served before ``before`` and their ground truth, oldest first,
    about ``chunk_rows`` at a time; whatever was served from ``before`` on is kept."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    deleted_predictions = deleted_truth = 0
    while True:
        with engine.begin() as conn:
            bound = _chunk_bound(conn, before, tables, chunk_rows)
            if bound is None:
                return Pruned(before, deleted_predictions, deleted_truth)
            truth, logged = _delete_through(conn, bound, tables)
        deleted_predictions += logged
        deleted_truth += truth


def _chunk_bound(
    conn: Connection, before: datetime, tables: LogTables, chunk_rows: int
) -> tuple[datetime, bool] | None:
    """The next chunk: delete up to and including this serving time (True), or all before
    ``before`` (False: fewer than ``chunk_rows`` are left); None when nothing is left."""
    ts = tables.predictions.c.ts
    older = select(ts).where(ts < before)
    last = conn.execute(older.order_by(ts).offset(chunk_rows - 1).limit(1)).scalar()
    if last is not None:
        return last, True
    return None if conn.execute(older.limit(1)).first() is None else (before, False)


def _delete_through(
    conn: Connection, bound: tuple[datetime, bool], tables: LogTables
) -> tuple[int, int]:
    """Delete the ground truth, then the predictions, of the chunk ending at ``bound``."""
    logged, truth = tables.predictions, tables.ground_truth
    limit, inclusive = bound
    served = logged.c.ts <= limit if inclusive else logged.c.ts < limit
    chunk_ids = select(logged.c.request_id).where(served)
    truth_deleted = conn.execute(delete(truth).where(truth.c.request_id.in_(chunk_ids))).rowcount
    logged_deleted = conn.execute(delete(logged).where(served)).rowcount
    return truth_deleted, logged_deleted
