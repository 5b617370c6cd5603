"""The prediction log and ground-truth tables, built from the contract, and their writer.

``predictions`` holds one row per served prediction: when, its request id, the caller's key,
variant and model version, the contract's features with their types (categories that are
text stay text), its event time and identifier when the caller gave them, the prediction,
whether it was held to the target's range (``clipped``) and the latency; for a classifier the
prediction is the class ``Problem.decide`` picks and one ``probability_<class>`` column per class
follows it. ``ground_truth`` holds the actual target value (or class) by request id. Any
SQLAlchemy URL works: SQLite by default, PostgreSQL (``postgresql+psycopg://...``) when the
service is scaled out. A log made for
another contract is refused at start-up with the columns that differ.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
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
    inspect,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    StatementError,
)
from sqlalchemy.types import TypeEngine

from ..predict import probability_column
from ..problem import PROBLEM, DataValidationError, Problem
from ..problem import Column as ContractColumn
from .schemas import class_lookup, extra_columns

log = logging.getLogger(__name__)
metadata = MetaData()

#: The log's own columns; the contract's columns go between them.
HEAD = ("ts", "request_id", "caller_key", "variant", "model_version")
TAIL = ("prediction", "clipped", "latency_ms")
ID_LENGTH = 220  # a caller's id (200) plus "/<row index>" of a batch


class LogSchemaError(RuntimeError):
    """An existing prediction log was made for another contract; the message says how."""


def sql_type(column: ContractColumn) -> TypeEngine[Any]:
    """The SQL type of a contract column (text categories stay text)."""
    types: dict[str, TypeEngine[Any]] = {
        "integer": Integer(),
        "number": Float(),
        "string": String(),
        "boolean": Boolean(),
        "datetime": DateTime(timezone=True),
    }
    return types[column.kind]


def _probability_columns(problem: Problem) -> list[str]:
    return [probability_column(label) for label in problem.classes]


def _logged(problem: Problem) -> list[ContractColumn]:
    """The contract's columns the log keeps: features, then event time and identifier."""
    columns = [*problem.feature_columns, *extra_columns(problem)]
    own = {"id", *HEAD, *TAIL, *_probability_columns(problem)}
    clashes = sorted({c.name for c in columns} & own)
    if clashes:
        raise LogSchemaError(
            f"contract.py: column(s) {clashes} clash with the prediction log's own; rename them"
        )
    return columns


def _target_type(problem: Problem) -> TypeEngine[Any]:
    """A value of the target: a number, or a classifier's class (integer or text)."""
    return sql_type(problem.target) if problem.is_classifier else Float()


@dataclass(frozen=True)
class LogTables:
    """The prediction log's tables for one problem, and the columns an entry fills in order."""

    problem: Problem
    metadata: MetaData
    predictions: Table
    ground_truth: Table

    @property
    def columns(self) -> tuple[str, ...]:
        """The ``predictions`` columns a served prediction fills, in the order entries give them."""
        return tuple(c.name for c in self.predictions.columns if c.name != "id")

    @property
    def target(self) -> str:
        return self.problem.target.name


def log_tables(problem: Problem, into: MetaData | None = None) -> LogTables:
    """The ``predictions`` and ``ground_truth`` tables of ``problem`` (in a new ``MetaData``
    unless ``into`` is given)."""
    into = MetaData() if into is None else into
    logged = Table(
        "predictions",
        into,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ts", DateTime(timezone=True), nullable=False, index=True),
        Column("request_id", String(ID_LENGTH), nullable=False, unique=True),
        Column("caller_key", String(200)),
        Column("variant", String(20), nullable=False),
        Column("model_version", Integer, nullable=False),
        *(Column(c.name, sql_type(c)) for c in _logged(problem)),
        Column("prediction", _target_type(problem), nullable=False),
        *(Column(name, Float, nullable=False) for name in _probability_columns(problem)),
        Column("clipped", Boolean, nullable=False),
        Column("latency_ms", Float, nullable=False),
    )
    truth = Table(
        "ground_truth",
        into,
        Column("request_id", String(ID_LENGTH), primary_key=True),
        Column(problem.target.name, _target_type(problem), nullable=False),
        Column("ts", DateTime(timezone=True), nullable=False),
    )
    return LogTables(problem, into, logged, truth)


#: The tables of ``problem.PROBLEM`` (in ``metadata``, which the monitoring tables join).
TABLES = log_tables(PROBLEM, metadata)
predictions, ground_truth = TABLES.predictions, TABLES.ground_truth
TARGET = TABLES.target
#: The ``predictions`` columns a served prediction fills, in the order entries give them.
LOGGED_COLUMNS = TABLES.columns


def _python_type(kind: TypeEngine[Any]) -> type | None:
    try:
        found: type = kind.python_type
    except NotImplementedError:
        return None
    return found


def check_schema(engine: Engine, tables: Sequence[Table] = (predictions, ground_truth)) -> None:
    """Refuse a log whose tables differ from the contract's (names or kinds of columns)."""
    inspector = inspect(engine)
    for table in tables:
        if not inspector.has_table(table.name):
            continue
        found = {c["name"]: _python_type(c["type"]) for c in inspector.get_columns(table.name)}
        wanted = {c.name: _python_type(c.type) for c in table.columns}
        missing = sorted(set(wanted) - set(found))
        unexpected = sorted(set(found) - set(wanted))
        retyped = sorted(
            f"{name} ({was.__name__} -> {kind.__name__})"
            for name, kind in wanted.items()
            if kind is not None and (was := found.get(name)) is not None and was is not kind
        )
        if missing or unexpected or retyped:
            differences = "; ".join(
                f"{what} {names}"
                for what, names in (
                    ("missing", missing),
                    ("not in the contract", unexpected),
                    ("other type", retyped),
                )
                if names
            )
            raise LogSchemaError(
                f"prediction log {engine.url.render_as_string(hide_password=True)}: table "
                f"{table.name!r} was made for another contract ({differences}); point "
                "SERVING_PREDICTION_LOG_URL at a new database, or rename the old table to keep it"
            )


def make_engine(url: str, tables: LogTables = TABLES) -> Engine:
    """An engine for ``url`` with its tables created and checked against the contract.

    SQLite: the folder is created and the log is in WAL mode, so that readers never block the
    writer. Raises :class:`LogSchemaError` when the log was made for another contract.
    """
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

    check_schema(engine, (tables.predictions, tables.ground_truth))
    _create_tables(engine, tables)
    if engine.dialect.name == "sqlite":
        _refresh_statistics(engine)
    return engine


def _create_tables(engine: Engine, tables: LogTables, attempts: int = 3) -> None:
    """Create the missing tables, and the indexes the readers need that an existing log lacks
    (one made by an earlier version); another replica creating them at the same time is fine."""
    for attempt in range(attempts):
        try:
            tables.metadata.create_all(engine)
            for table in (tables.predictions, tables.ground_truth):
                for index in table.indexes:
                    index.create(engine, checkfirst=True)
            return
        except (IntegrityError, ProgrammingError):  # PostgreSQL: created meanwhile by another
            if attempt == attempts - 1:
                raise


def _refresh_statistics(engine: Engine) -> None:
    """SQLite: sample the tables' sizes (``ANALYZE``, bounded to a few hundred rows per index,
    milliseconds at any size), so that the planner drives a join from the smaller side: a few
    labels among millions of predictions are found through the request-id index, not by
    scanning the window. PostgreSQL keeps its statistics itself."""
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit=400")
            conn.exec_driver_sql("ANALYZE")
    except OperationalError as exc:  # busy or read-only: plans without fresh statistics
        log.warning("prediction log: statistics not refreshed (%s)", _reason(exc))


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """One served prediction. ``claim``: the caller's request id, released once written."""

    ts: datetime
    request_id: str
    caller_key: str | None
    variant: str
    model_version: int
    features: tuple[Any, ...]  # in ``PROBLEM.features`` order
    prediction: Any  # a value, or a classifier's class
    latency_ms: float
    clipped: bool = False
    extras: tuple[Any, ...] = ()  # event time and identifier, as ``schemas.extra_columns``
    claim: str | None = None
    probabilities: tuple[float, ...] = ()  # a classifier's, in the contract's class order

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The row in ``LOGGED_COLUMNS`` order."""
        yield (
            self.ts,
            self.request_id,
            self.caller_key,
            self.variant,
            self.model_version,
            *self.features,
            *(self.extras or repeat(None, N_EXTRAS)),
            self.prediction,
            *self.probabilities,
            self.clipped,
            self.latency_ms,
        )


@dataclass(frozen=True, slots=True)
class LoggedBatch:
    """The predictions of one batch request: what they share once, the rest per row.

    Give tuples, not lists: tuples of numbers and strings drop out of the garbage collector's
    view, so a backlog of queued batches does not lengthen its full collections.
    """

    ts: datetime
    request_ids: Sequence[str]
    caller_key: str | None
    variant: str
    model_version: int
    features: Sequence[tuple[Any, ...]]  # one tuple per row, in ``PROBLEM.features`` order
    predictions: Sequence[Any]
    latency_ms: float
    clipped: Sequence[bool] = ()
    extras: Sequence[tuple[Any, ...]] = ()
    claim: str | None = None
    probabilities: Sequence[tuple[float, ...]] = ()  # a classifier's, one tuple per row

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """The rows in ``LOGGED_COLUMNS`` order."""
        n = len(self.request_ids)
        clipped = self.clipped or repeat(False, n)
        extras = self.extras or repeat((None,) * N_EXTRAS, n)
        probabilities = self.probabilities or repeat((), n)
        shared = (self.ts, self.caller_key, self.variant, self.model_version)
        ts, key, variant, version = shared
        for rid, row, more, value, odds, held in zip(
            self.request_ids,
            self.features,
            extras,
            self.predictions,
            probabilities,
            clipped,
            strict=False,
        ):
            yield (ts, rid, key, variant, version, *row, *more, value, *odds, held, self.latency_ms)


N_EXTRAS = len(extra_columns(PROBLEM))
#: What the writer queue holds: one prediction, one batch request's, or any number of them.
Entry = LoggedPrediction | LoggedBatch | tuple[LoggedPrediction, ...]
Row = tuple[Any, ...]
#: Errors where the database refused the rows themselves: retrying the same rows cannot help.
REFUSALS = (IntegrityError, DataError, ProgrammingError, NotSupportedError)


def _size(entry: Entry) -> int:
    if isinstance(entry, LoggedPrediction):
        return 1
    if isinstance(entry, LoggedBatch):
        return len(entry.request_ids)
    return len(entry)


def _singles(entry: Entry) -> Iterable[LoggedPrediction | LoggedBatch]:
    return entry if isinstance(entry, tuple) else (entry,)


def refused(exc: Exception) -> bool:
    """Whether the database (or the driver) refused the rows, rather than being unreachable."""
    if isinstance(exc, DBAPIError):
        return isinstance(exc, REFUSALS) and not exc.connection_invalidated
    return isinstance(exc, StatementError | TypeError | ValueError)  # a value it cannot bind


def _reason(exc: Exception) -> str:
    origin = getattr(exc, "orig", None) or exc
    return f"{type(origin).__name__}: {str(origin).splitlines()[0] if str(origin) else ''}"


class PredictionLog:
    """Queue predictions in memory; one background thread writes them in batches.

    ``record`` only appends to a queue (one entry per request, however many rows), so a slow or
    failing database never slows or breaks a prediction. While the database is unreachable the
    rows stay queued and the write is retried with back-off. Rows the database refuses (a
    constraint, a value it cannot store) are not retried: found by halving the batch, they are
    set aside at once (``dead_letter`` file, JSON lines, or ``set_aside`` in memory), counted
    in ``rejected`` (a metric) and logged as errors. Rows given up on (``max_pending``
    reached, or the database still down at shutdown) are set aside the same way, counted in
    ``dropped``. Nothing leaves the queue unaccounted for.
    """

    def __init__(
        self,
        engine: Engine,
        flush_interval: float = 0.5,
        batch_size: int = 5_000,
        max_pending: int = 1_000_000,
        dead_letter: Path | None = None,
        tables: LogTables = TABLES,
    ):
        self.engine = engine
        self.tables = tables
        self.flush_interval = flush_interval
        self.batch_size = batch_size  # rows per transaction, at least (whole entries)
        self.max_pending = max_pending
        self.dead_letter = dead_letter
        self.set_aside: deque[dict[str, Any]] = deque(maxlen=10_000)  # without a dead letter
        self.errors = 0  # failed write attempts (each retried)
        self.rejected = 0  # rows the database refused, set aside
        self.dropped = 0  # rows given up on (buffer full, or database down at shutdown)
        self.retries = 5  # attempts per batch once the log is closing
        self.healthy = True  # the last write reached the database
        self._closing = threading.Event()
        self._queue: queue.Queue[Entry | None] = queue.Queue()
        self._pending = 0  # rows queued or being written
        self._claimed: set[str] = set()  # callers' request ids queued, not written yet
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    # -- the request side ----------------------------------------------------------------
    def claim(self, request_id: str) -> bool:
        """Reserve a caller's request id; False if this process already has it queued."""
        with self._lock:
            if request_id in self._claimed:
                return False
            self._claimed.add(request_id)
            return True

    def release(self, request_id: str) -> None:
        """Give back a claimed id that was not served after all."""
        with self._lock:
            self._claimed.discard(request_id)

    def logged(self, request_id: str) -> bool:
        """Whether the log holds ``request_id`` or a batch row of it (``<id>/<i>``).

        Unknown while the database is unreachable (then False: the insert will tell).
        """
        if not self.healthy:
            return False
        rid = self.tables.predictions.c.request_id
        query = (
            select(rid)
            .where(or_(rid == request_id, (rid > f"{request_id}/") & (rid < f"{request_id}0")))
            .limit(1)
        )
        try:
            with self.engine.connect() as conn:
                return conn.execute(query).first() is not None
        except Exception:
            log.warning("cannot check request id %r in the prediction log", request_id)
            return False

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

    def pending(self) -> int:
        """Rows queued or being written."""
        return self._pending

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued prediction is written or set aside, at most ``timeout`` s.

        Returns whether the queue is empty (False: the database is still unreachable).
        """
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Write what is queued and stop the writer (rows still unwritable are set aside)."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout)
        if self.dropped or self.rejected:
            log.error(
                "prediction log closed; %d rows refused and %d unwritable were set aside%s",
                self.rejected,
                self.dropped,
                f" in {self.dead_letter}" if self.dead_letter else "",
            )

    # -- the writer thread ---------------------------------------------------------------
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
                self._write(
                    [row for entry in batch for item in _singles(entry) for row in item.rows()]
                )
                self._done(batch, rows)
            for _ in range(len(batch) + (1 if stop else 0)):
                self._queue.task_done()
            if not stop and rows < self.batch_size:  # behind: write the next one now
                self._closing.wait(self.flush_interval)  # let a batch build up between writes

    def _done(self, batch: Sequence[Entry], rows: int) -> None:
        with self._lock:
            self._pending -= rows
            for entry in batch:
                for item in _singles(entry):
                    if item.claim is not None:
                        self._claimed.discard(item.claim)

    def _write(self, rows: list[Row]) -> None:
        """Insert ``rows``; retry while the database is unreachable, set aside what it refuses."""
        todo = [rows]
        attempt = 0
        while todo:
            part = todo.pop()
            try:
                self._insert(part)
            except Exception as exc:
                if refused(exc):  # halve until the refused rows are found; keep the rest
                    if len(part) == 1:
                        self.rejected += 1
                        self._set_aside(part, "refused", _reason(exc))
                    else:
                        todo += [part[len(part) // 2 :], part[: len(part) // 2]]
                    continue
                todo.append(part)
                attempt += 1
                if self._outage(exc, attempt, sum(map(len, todo))):
                    given_up = [row for rest in todo for row in rest]
                    self.dropped += len(given_up)
                    self._set_aside(given_up, "unwritable", _reason(exc))
                    return
                continue
            self.healthy, attempt = True, 0

    def _outage(self, exc: Exception, attempt: int, rows: int) -> bool:
        """Count a failed attempt and wait before the next; True to give up on the rows."""
        self.errors += 1
        self.healthy = False
        log.warning(
            "prediction log unreachable (attempt %d, %s); %d rows kept, %d pending",
            attempt,
            _reason(exc),
            rows,
            self.pending(),
        )
        if self._closing.is_set():
            give_up = attempt >= self.retries
        else:
            give_up = self.pending() >= self.max_pending  # memory is bounded: the oldest go
        if not give_up:
            self._closing.wait(min(0.1 * 2.0 ** (attempt - 1), 5.0))
        return give_up

    def _insert(self, rows: Sequence[Row]) -> None:
        engine = self.engine  # read once: tests swap it to simulate an outage
        columns = self.tables.columns
        with engine.begin() as conn:
            conn.execute(
                insert(self.tables.predictions),
                [dict(zip(columns, r, strict=True)) for r in rows],
            )

    def _set_aside(self, rows: Sequence[Row], kind: str, reason: str) -> None:
        """Keep rows the log could not write: in the dead-letter file, else in memory."""
        log.error("prediction log: %d row(s) set aside (%s): %s", len(rows), kind, reason)
        columns = self.tables.columns
        records = [{"reason": reason, "row": dict(zip(columns, row, strict=False))} for row in rows]
        if self.dead_letter is None:
            self.set_aside.extend(records)
        else:
            try:
                self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
                with self.dead_letter.open("a") as out:
                    out.writelines(json.dumps(r, default=str) + "\n" for r in records)
            except OSError:
                log.exception("cannot write %s; keeping the rows in memory", self.dead_letter)
                self.set_aside.extend(records)


@dataclass(frozen=True)
class Attachment:
    """What attaching ground truth did: values attached, and the ids the log does not hold."""

    attached: int
    unknown: int
    unknown_ids: list[str] = field(default_factory=list)  # a sample
    #: Values whose request id came again later in the same call: the last one is kept.
    repeated: int = 0


def _known(engine: Engine, ids: Sequence[str], tables: LogTables, chunk: int = 500) -> set[str]:
    found: set[str] = set()
    column = tables.predictions.c.request_id
    with engine.connect() as conn:
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            found.update(conn.execute(select(column).where(column.in_(part))).scalars())
    return found


def truth_values(items: Sequence[tuple[str, Any]], problem: Problem) -> dict[str, Any]:
    """Actual values by request id: finite numbers, or declared classes (integer classes also
    by their text). A value that is neither is a DataValidationError naming it."""
    if not problem.is_classifier:
        missing = [rid for rid, value in items if not math.isfinite(value)]
        if missing:
            raise DataValidationError(
                f"ground truth: {len(missing)} value(s) of {problem.target.name} are missing or "
                f"not finite, e.g. for request id(s) {missing[:5]}"
            )
        return {rid: float(value) for rid, value in items}
    lookup = class_lookup(problem)
    unknown = sorted({repr(v) for _, v in items if isinstance(v, bool) or v not in lookup})
    if unknown:
        raise DataValidationError(
            f"ground truth: unknown {problem.target.name} {', '.join(unknown[:5])}; the "
            f"declared classes are {list(problem.classes)}"
        )
    return {rid: lookup[value] for rid, value in items}


def attach_ground_truth(
    engine: Engine,
    items: Sequence[tuple[str, Any]],
    sample: int = 20,
    tables: LogTables = TABLES,
) -> Attachment:
    """Attach actual target values (a classifier's classes) by request id; a later value
    replaces an earlier one (also within ``items``: counted as ``repeated``).

    Only ids the prediction log holds are attached; the others are counted and sampled.
    """
    values = truth_values(items, tables.problem)
    known = _known(engine, list(values), tables)
    unknown = [rid for rid in values if rid not in known]
    target = tables.target
    rows = [{"request_id": rid, target: values[rid], "ts": datetime.now(UTC)} for rid in known]
    if rows:
        _upsert(engine, rows, tables)
    return Attachment(len(rows), len(unknown), unknown[:sample], repeated=len(items) - len(values))


def _upsert(engine: Engine, rows: list[dict[str, Any]], tables: LogTables) -> None:
    dialect = engine.dialect.name
    truth, target = tables.ground_truth, tables.target
    with engine.begin() as conn:
        if dialect in ("sqlite", "postgresql"):
            stmt = (sqlite_insert if dialect == "sqlite" else pg_insert)(truth)
            update = {target: stmt.excluded[target], "ts": stmt.excluded.ts}
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["request_id"], set_=update), rows
            )
        else:
            ids = [row["request_id"] for row in rows]
            conn.execute(truth.delete().where(truth.c.request_id.in_(ids)))
            conn.execute(insert(truth), rows)


def upsert_ground_truth(
    engine: Engine, items: Sequence[tuple[str, Any]], tables: LogTables = TABLES
) -> int:
    """Attach actual target values by request id; return how many (unknown ids are skipped)."""
    return attach_ground_truth(engine, items, tables=tables).attached
