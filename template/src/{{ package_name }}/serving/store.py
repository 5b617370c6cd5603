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
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

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

#: The ``predictions`` columns a served prediction fills, in ``LoggedPrediction.values`` order.
LOGGED_COLUMNS = (
    "ts",
    "request_id",
    "caller_key",
    "variant",
    "model_version",
    *FEATURES,
    "prediction",
    "latency_ms",
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

    def values(self) -> tuple[Any, ...]:
        """The row in ``LOGGED_COLUMNS`` order."""
        return (
            self.ts,
            self.request_id,
            self.caller_key,
            self.variant,
            self.model_version,
            *self.features,
            self.prediction,
            self.latency_ms,
        )

    def row(self) -> dict[str, Any]:
        return dict(zip(LOGGED_COLUMNS, self.values(), strict=True))


def _bound(rows: list[tuple[Any, ...]], dialect: Dialect) -> list[tuple[Any, ...]]:
    """``rows`` with each column's bind processor applied (SQLite: datetimes to text)."""
    processors = []
    for index, name in enumerate(LOGGED_COLUMNS):
        processor = predictions.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors.append((index, processor))
    if not processors:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for index, processor in processors:
            values[index] = processor(values[index])
        out.append(tuple(values))
    return out


class PredictionLog:
    """Queue predictions in memory; one background thread writes them in batches.

    ``record`` only appends to a queue, so a slow or failing database never slows or breaks a
    prediction. While the database is down the rows stay queued and the write is retried with
    back-off until it succeeds. Rows are given up only when ``max_pending`` rows are waiting,
    or at shutdown after ``retries`` attempts; they are then counted in ``dropped`` and logged.
    A request id logged before is kept once and counted in ``duplicates``.
    """

    def __init__(
        self,
        engine: Engine,
        flush_interval: float = 0.5,
        batch_size: int = 5_000,
        max_pending: int = 1_000_000,
    ):
        self.engine = engine
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.errors = 0  # failed write attempts (each retried)
        self.dropped = 0  # rows given up on: buffer full, or database down at shutdown
        self.duplicates = 0  # rows whose request id was already in the log
        self.retries = 5  # attempts per batch once the log is closing
        self._closing = threading.Event()
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
        """Write what is queued and stop the writer thread (gives up on a database still down)."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join()
        if self.dropped:
            log.error("prediction log closed; %d predictions were dropped", self.dropped)

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
            if not stop and len(batch) < self.batch_size:  # behind: write the next one now
                time.sleep(self.flush_interval)  # let a batch build up between writes

    def _write(self, batch: Sequence[LoggedPrediction]) -> None:
        rows = [item.values() for item in batch]
        attempt = 0
        while True:
            try:
                inserted = self._insert(rows)
            except Exception:  # the database is down or locked: keep the rows and retry
                self.errors += 1
                attempt += 1
                log.warning(
                    "prediction log write failed (attempt %d); %d rows kept, %d queued",
                    attempt,
                    len(rows),
                    self.pending(),
                    exc_info=attempt == 1,
                )
                if self._give_up(attempt):
                    self.dropped += len(rows)
                    log.error("dropped %d predictions: the prediction log is unwritable", len(rows))
                    return
                self._closing.wait(min(0.1 * 2.0 ** (attempt - 1), 5.0))
                continue
            if inserted < len(rows):
                self.duplicates += len(rows) - inserted
                log.warning("%d predictions reused a logged request id", len(rows) - inserted)
            return

    def _give_up(self, attempt: int) -> bool:
        if self._closing.is_set():
            return attempt >= self.retries
        return self.pending() >= self.max_pending  # memory is bounded: the oldest rows go

    def _insert(self, rows: list[tuple[Any, ...]]) -> int:
        """Insert ``rows`` (``LOGGED_COLUMNS`` order), skipping request ids already logged;
        return how many were new.

        With a positional driver (SQLite) the statement is compiled once per batch and the
        tuples go straight to ``executemany``: half the CPU of SQLAlchemy's per-row parameter
        handling, which otherwise competes with the event loop for the GIL.
        """
        dialect = self.engine.dialect
        if dialect.name in ("sqlite", "postgresql"):
            stmt = (sqlite_insert if dialect.name == "sqlite" else pg_insert)(predictions)
            statement: Any = stmt.on_conflict_do_nothing(index_elements=["request_id"])
        else:
            statement = insert(predictions)
        compiled = statement.compile(dialect=dialect, column_keys=list(LOGGED_COLUMNS))
        direct = (
            isinstance(compiled, SQLCompiler)
            and compiled.positional
            and compiled.positiontup == list(LOGGED_COLUMNS)
        )
        with self.engine.begin() as conn:
            if direct:
                result = conn.exec_driver_sql(str(compiled), _bound(rows, dialect))
            else:
                named = [dict(zip(LOGGED_COLUMNS, row, strict=True)) for row in rows]
                result = conn.execute(statement, named)
            count = result.rowcount
        return count if count >= 0 else len(rows)


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
