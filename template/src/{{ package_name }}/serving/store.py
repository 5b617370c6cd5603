"""The prediction log and ground truth tables, and a writer that never blocks a prediction.

Any SQLAlchemy URL works: SQLite by default, PostgreSQL (``postgresql+psycopg://...``) when the
service is scaled out. Feature columns follow ``contract.FEATURES``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice, repeat
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
INDEX = {name: index for index, name in enumerate(LOGGED_COLUMNS)}

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


RowIter = Iterator[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class LoggedBatch:
    """The predictions one batch request served: what they share once, the rest per row.

    Give tuples, not lists: tuples of numbers and strings drop out of the garbage collector's
    view, so a backlog of queued batches does not lengthen its full collections.
    """

    ts: datetime
    request_ids: Sequence[str]
    caller_key: str | None
    variant: str
    model_version: int
    features: Sequence[tuple[float, ...]]  # one tuple per row, in ``contract.FEATURES`` order
    predictions: Sequence[float]
    latency_ms: float

    def values(self, shared: Callable[[int, Any], Any] = lambda _index, value: value) -> RowIter:
        """The rows in ``LOGGED_COLUMNS`` order, ``shared`` applied once to each shared value.

        The tuples are made by ``zip`` in C: no Python code runs per row.
        """
        n = len(self.request_ids)
        if not n:
            return iter(())
        columns = zip(*self.features, strict=True)  # per feature, a tuple of every row's value
        return zip(
            repeat(shared(INDEX["ts"], self.ts), n),
            self.request_ids,
            repeat(shared(INDEX["caller_key"], self.caller_key), n),
            repeat(shared(INDEX["variant"], self.variant), n),
            repeat(shared(INDEX["model_version"], self.model_version), n),
            *columns,
            self.predictions,
            repeat(shared(INDEX["latency_ms"], self.latency_ms), n),
            strict=True,
        )


#: What the writer queue holds: one prediction, one batch request's, or any number of them.
Entry = LoggedPrediction | LoggedBatch | tuple[LoggedPrediction, ...]
#: ``LOGGED_COLUMNS`` indexes that differ between the rows of a ``LoggedBatch``.
PER_ROW = frozenset(INDEX[name] for name in ("request_id", *FEATURES, "prediction"))

ROWS_PER_STATEMENT = 50  # rows per multi-row INSERT (500 parameters; old SQLite takes 999)
CHUNK_ROWS = 1_000  # rows per executemany call (a few milliseconds of writing)
YIELD_SECONDS = 0.000_2  # the writer's pause between chunks, for the event loop


def _size(entry: Entry) -> int:
    if isinstance(entry, LoggedPrediction):
        return 1
    if isinstance(entry, LoggedBatch):
        return len(entry.request_ids)
    return len(entry)


class _Insert:
    """The prediction log INSERT for one dialect, compiled once, and its parameters.

    Request ids already logged are skipped (SQLite, PostgreSQL). With a positional driver
    (SQLite) the rows go to ``executemany`` as plain tuples with the column types' bind
    processors applied (SQLite: datetimes to text), a batch request's shared values once: a
    fraction of SQLAlchemy's per-row parameter handling, which would compete with the event
    loop for the GIL. Other drivers (psycopg) get SQLAlchemy's named parameters.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.statement = _statement(dialect)
        compiled = self.statement.compile(dialect=dialect, column_keys=list(LOGGED_COLUMNS))
        self.direct = _positional(compiled, list(LOGGED_COLUMNS))
        self.sql = str(compiled)
        self.sql_many: str | None = None  # ROWS_PER_STATEMENT rows in one statement
        if self.direct:
            many = _statement(dialect, [dict.fromkeys(LOGGED_COLUMNS)] * ROWS_PER_STATEMENT)
            compiled = many.compile(dialect=dialect)
            names = [f"{c}_m{i}" for i in range(ROWS_PER_STATEMENT) for c in LOGGED_COLUMNS]
            self.sql_many = str(compiled) if _positional(compiled, names) else None
        self.processors: dict[int, Callable[[Any], Any]] = {}
        for index, name in enumerate(LOGGED_COLUMNS):
            processor = predictions.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[index] = processor
        self.per_row = sorted(PER_ROW.intersection(self.processors))

    def _shared(self, index: int, value: Any) -> Any:
        processor = self.processors.get(index)
        return value if processor is None else processor(value)

    def _bound(self, row: tuple[Any, ...], indexes: Iterable[int]) -> tuple[Any, ...]:
        values = list(row)
        for index in indexes:
            values[index] = self.processors[index](values[index])
        return tuple(values)

    def rows(self, entries: Iterable[Entry]) -> list[tuple[Any, ...]]:
        """The parameters of ``entries``, bound for the driver."""
        out: list[tuple[Any, ...]] = []
        for entry in entries:
            if isinstance(entry, LoggedBatch):
                if self.per_row:
                    out.extend(self._bound(row, self.per_row) for row in entry.values(self._shared))
                else:
                    out.extend(entry.values(self._shared))
            else:
                singles = (entry,) if isinstance(entry, LoggedPrediction) else entry
                out.extend(self._bound(item.values(), self.processors) for item in singles)
        return out

    def execute(self, engine: Engine, entries: Sequence[Entry]) -> tuple[int, int]:
        """Insert ``entries`` in one transaction; return (rows given, rows new)."""
        with engine.begin() as conn:
            if not self.direct:
                rows = [row for entry in entries for row in _plain_rows(entry)]
                named = [dict(zip(LOGGED_COLUMNS, row, strict=True)) for row in rows]
                count = conn.execute(self.statement, named).rowcount
                return len(rows), count if count >= 0 else len(rows)
            rows = self.rows(entries)
            new = 0
            for start, end, sql, params in self._chunks(len(rows), rows):
                if start:
                    time.sleep(YIELD_SECONDS)
                count = conn.exec_driver_sql(sql, params).rowcount
                new += count if count >= 0 else end - start
        return len(rows), new

    def _chunks(
        self, n: int, rows: list[tuple[Any, ...]]
    ) -> Iterator[tuple[int, int, str, list[tuple[Any, ...]]]]:
        """``executemany`` calls of at most ``CHUNK_ROWS`` rows: (from, to, SQL, parameters).

        Whole groups of ``ROWS_PER_STATEMENT`` rows go as one multi-row INSERT each (a third
        less work per row than a statement per row), the rest a statement per row. Between
        calls the writer sleeps a moment: a driver releases the GIL while it steps a statement
        and takes it straight back, so one long ``executemany`` could starve the event loop of
        the GIL for its whole duration (a convoy); the pause gives the loop its turn.
        """
        per = ROWS_PER_STATEMENT
        whole = n // per * per if self.sql_many else 0
        for start in range(0, whole, CHUNK_ROWS):
            end = min(start + CHUNK_ROWS, whole)
            part = iter(rows[start:end])
            params = [tuple(chain.from_iterable(islice(part, per))) for _ in range(start, end, per)]
            yield start, end, str(self.sql_many), params
        for start in range(whole, n, CHUNK_ROWS):
            end = min(start + CHUNK_ROWS, n)
            yield start, end, self.sql, rows[start:end]


def _statement(dialect: Dialect, values: list[dict[str, None]] | None = None) -> Any:
    """INSERT into ``predictions`` (of ``values``' rows), skipping request ids already logged."""
    if dialect.name in ("sqlite", "postgresql"):
        stmt = (sqlite_insert if dialect.name == "sqlite" else pg_insert)(predictions)
        if values is not None:
            stmt = stmt.values(values)
        return stmt.on_conflict_do_nothing(index_elements=["request_id"])
    return insert(predictions) if values is None else insert(predictions).values(values)


def _positional(compiled: Any, names: list[str]) -> bool:
    """Whether ``compiled`` takes plain positional parameters named ``names``, in order."""
    return bool(
        isinstance(compiled, SQLCompiler) and compiled.positional and compiled.positiontup == names
    )


def _plain_rows(entry: Entry) -> Iterable[tuple[Any, ...]]:
    """``entry``'s rows with Python values (no bind processing)."""
    if isinstance(entry, LoggedBatch):
        return entry.values()
    singles = (entry,) if isinstance(entry, LoggedPrediction) else entry
    return (item.values() for item in singles)


class PredictionLog:
    """Queue predictions in memory; one background thread writes them in batches.

    ``record`` only appends to a queue (one entry per request, however many rows), so a slow or
    failing database never slows or breaks a prediction. While the database is down the rows
    stay queued and the write is retried with back-off until it succeeds. Rows are given up
    only when ``max_pending`` rows are waiting, or at shutdown after ``retries`` attempts; they
    are then counted in ``dropped`` and logged. A request id logged before is kept once and
    counted in ``duplicates``.
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
        self.batch_size = batch_size  # rows per transaction, at least (whole entries)
        self.max_pending = max_pending
        self.errors = 0  # failed write attempts (each retried)
        self.dropped = 0  # rows given up on: buffer full, or database down at shutdown
        self.duplicates = 0  # rows whose request id was already in the log
        self.retries = 5  # attempts per batch once the log is closing
        self._closing = threading.Event()
        self._queue: queue.Queue[Entry | None] = queue.Queue()
        self._pending = 0  # rows queued or being written
        self._lock = threading.Lock()
        self._statement: _Insert | None = None
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def record(self, item: LoggedPrediction | LoggedBatch) -> None:
        """Queue one prediction, or one batch request's (never blocks, O(1))."""
        self._put(item, _size(item))

    def record_many(self, items: Iterable[LoggedPrediction]) -> None:
        """Queue any number of predictions as one entry."""
        entry = tuple(items)
        if entry:
            self._put(entry, len(entry))

    def _put(self, entry: Entry, rows: int) -> None:
        with self._lock:
            self._pending += rows
        self._queue.put_nowait(entry)

    def _done(self, rows: int) -> None:
        with self._lock:
            self._pending -= rows

    def pending(self) -> int:
        """Rows queued or being written."""
        return self._pending

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

    def _take_batch(self) -> tuple[list[Entry], int, bool]:
        """Queued entries up to ``batch_size`` rows, their row count, and whether to stop."""
        first = self._queue.get()
        if first is None:
            return [], 0, True
        batch, rows, stop = [first], _size(first), False
        while rows < self.batch_size:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is None:
                stop = True
                break
            batch.append(entry)
            rows += _size(entry)
        return batch, rows, stop

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, rows, stop = self._take_batch()
            if batch:
                self._write(batch, rows)
                self._done(rows)
            for _ in range(len(batch) + (1 if stop else 0)):
                self._queue.task_done()
            if not stop and rows < self.batch_size:  # behind: write the next one now
                time.sleep(self.flush_interval)  # let a batch build up between writes

    def _write(self, batch: Sequence[Entry], rows: int) -> None:
        attempt = 0
        while True:
            try:
                given, inserted = self._insert(batch)
            except Exception:  # the database is down or locked: keep the rows and retry
                self.errors += 1
                attempt += 1
                log.warning(
                    "prediction log write failed (attempt %d); %d rows kept, %d pending",
                    attempt,
                    rows,
                    self.pending(),
                    exc_info=attempt == 1,
                )
                if self._give_up(attempt):
                    self.dropped += rows
                    log.error("dropped %d predictions: the prediction log is unwritable", rows)
                    return
                self._closing.wait(min(0.1 * 2.0 ** (attempt - 1), 5.0))
                continue
            if inserted < given:
                self.duplicates += given - inserted
                log.warning("%d predictions reused a logged request id", given - inserted)
            return

    def _give_up(self, attempt: int) -> bool:
        if self._closing.is_set():
            return attempt >= self.retries
        return self.pending() >= self.max_pending  # memory is bounded: the oldest rows go

    def _insert(self, batch: Sequence[Entry]) -> tuple[int, int]:
        """Insert ``batch`` in one transaction; return (rows given, rows new)."""
        engine = self.engine  # read once: tests swap it to simulate an outage
        if self._statement is None or self._statement.dialect is not engine.dialect:
            self._statement = _Insert(engine.dialect)
        return self._statement.execute(engine, batch)


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
