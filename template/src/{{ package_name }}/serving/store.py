"""The prediction log and ground truth tables, and a writer that never blocks a prediction.

Any SQLAlchemy URL works: SQLite by default, PostgreSQL (``postgresql+psycopg://...``) when the
service is scaled out. Feature columns follow ``contract.FEATURES``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..contract import CATEGORICAL_FEATURES, FEATURES, TARGET

log = logging.getLogger(__name__)
metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True),
    Column("request_id", String(220), nullable=False, unique=True),
    Column("caller_key", String(200)),
    Column("variant", String(20), nullable=False),
    Column("model_version", Integer, nullable=False),
    *(Column(f, Integer if f in CATEGORICAL_FEATURES else Float) for f in FEATURES),
    Column("prediction", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
)

ground_truth = Table(
    "ground_truth",
    metadata,
    Column("request_id", String(220), primary_key=True),
    Column(TARGET, Float, nullable=False),
    Column("ts", DateTime(timezone=True), nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with its tables created (SQLite: folder too, WAL for readers)."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    metadata.create_all(engine)
    return engine


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """One served prediction."""

    ts: datetime
    request_id: str
    caller_key: str | None
    variant: str
    model_version: int
    features: tuple[float, ...]
    prediction: float
    latency_ms: float

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": self.ts,
            "request_id": self.request_id,
            "caller_key": self.caller_key,
            "variant": self.variant,
            "model_version": self.model_version,
            "prediction": self.prediction,
            "latency_ms": self.latency_ms,
        }
        out.update(zip(FEATURES, self.features, strict=True))
        return out


class PredictionLog:
    """Queue predictions in memory; one background thread writes them in batches.

    ``record`` only appends to a queue, so a slow or failing database never slows or breaks a
    prediction; a failed batch is retried with back-off, then dropped with an error logged.
    """

    def __init__(self, engine: Engine, flush_interval: float = 0.5, batch_size: int = 5_000):
        self.engine = engine
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.errors = 0
        self.retries = 5
        self._queue: queue.Queue[LoggedPrediction | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def record(self, item: LoggedPrediction) -> None:
        """Queue one prediction (never blocks)."""
        self._queue.put_nowait(item)

    def record_many(self, items: Iterable[LoggedPrediction]) -> None:
        for item in items:
            self._queue.put_nowait(item)

    def pending(self) -> int:
        return self._queue.qsize()

    def flush(self) -> None:
        """Wait until every queued prediction is written (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        """Write what is queued and stop the writer thread."""
        self._queue.put(None)
        self._thread.join()

    def _take_batch(self) -> tuple[list[LoggedPrediction], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch, stop = [first], False
        while len(batch) < self.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take_batch()
            if batch:
                self._write(batch)
            for _ in range(len(batch) + (1 if stop else 0)):
                self._queue.task_done()
            if not stop:
                time.sleep(self.flush_interval)  # let a batch build up between writes

    def _write(self, batch: Sequence[LoggedPrediction]) -> None:
        rows = [item.row() for item in batch]
        for attempt in range(self.retries):
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(predictions), rows)
                return
            except Exception:  # the database is down or locked: keep the rows and retry
                self.errors += 1
                log.exception("prediction log write failed (attempt %d)", attempt + 1)
                time.sleep(min(2.0**attempt * 0.1, 5.0))
        log.error("dropped %d predictions after repeated write failures", len(rows))


def upsert_ground_truth(engine: Engine, items: Sequence[tuple[str, float]]) -> int:
    """Attach actual durations by request id (later values replace earlier ones)."""
    if not items:
        return 0
    now = datetime.now(UTC)
    rows = [{"request_id": rid, TARGET: float(value), "ts": now} for rid, value in items]
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if dialect in ("sqlite", "postgresql"):
            stmt = (sqlite_insert if dialect == "sqlite" else pg_insert)(ground_truth)
            update = {TARGET: stmt.excluded[TARGET], "ts": stmt.excluded.ts}
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["request_id"], set_=update), rows
            )
        else:
            ids = [row["request_id"] for row in rows]
            conn.execute(ground_truth.delete().where(ground_truth.c.request_id.in_(ids)))
            conn.execute(insert(ground_truth), rows)
    return len(rows)
