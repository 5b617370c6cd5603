"""The batch scoring flow: a location (file, folder, glob) or a time window, scored by the champion.

Parquet files are streamed: read ``chunk_rows`` rows at a time from their row groups, validated
like training data, scored, and appended to the output file, so memory stays flat whatever
their size. CSV files and time windows are read whole (convert a large CSV to parquet first).
Predictions are held to the target's range; how many were is reported. A classifier's rows get
the predicted class and one ``probability_<class>`` column per declared class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow
from sklearn.pipeline import Pipeline

from ..datasets import ARROW_THREADS, Window, read_file, resolve
from ..predict import class_probabilities, predicted_column, probability_column
from ..problem import PROBLEM, DataValidationError, Problem
from ..quality import REJECTED_COLUMN, Rejects, in_window, mark, rejects_path, screen
from ..training.registry import CHAMPION, load_model_by_alias
from ..training.tracking import configure_tracking

PREDICTED = predicted_column(PROBLEM)
#: Rows scored at a time: about 10 MB of input per chunk for a few dozen columns.
DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class ScoringResult:
    output: Path
    rows: int
    model_version: int
    clipped: int = 0
    #: The rows set aside (no prediction, their reason in ``rejected_because``).
    rejects: Rejects = field(default_factory=Rejects)


@dataclass(frozen=True)
class Chunk:
    """Rows to score (indexed by their position in their file) and the file they came from."""

    frame: pd.DataFrame
    source: str


def default_output(location: str, reports_dir: Path = Path("reports")) -> Path:
    """``reports/batch/<name>-predictions.parquet``, named after a file or folder."""
    name = Path(location.rstrip("/")).stem
    if not name or any(char in name for char in "*?["):
        name = "batch"
    return reports_dir / "batch" / f"{name}-predictions.parquet"


def _parquet_file(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise DataValidationError(f"{path}: cannot read parquet file ({exc})") from exc


def _stream(path: str, chunk_rows: int) -> Iterator[Chunk]:
    file = _parquet_file(path)
    first = 0
    with file:
        for batch in file.iter_batches(batch_size=chunk_rows, use_threads=ARROW_THREADS):
            frame = batch.to_pandas(use_threads=ARROW_THREADS)
            yield Chunk(frame.set_axis(pd.RangeIndex(first, first + len(frame))), path)
            first += len(frame)


def _whole(path: str, chunk_rows: int, window: Window | None = None) -> Iterator[Chunk]:
    frame, _ = read_file(path)
    frame = in_window(PROBLEM.normalize(frame), window)
    for start in range(0, len(frame), chunk_rows):
        yield Chunk(frame.iloc[start : start + chunk_rows], path)


def iter_chunks(
    location: str, window: Window | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
    """The rows of ``location`` (in ``window``), at most ``chunk_rows`` at a time.

    The location is resolved (a missing one refused) now; rows are read as they are consumed.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if window is not None and (window.start is not None or window.end is not None):
        return (chunk for path in resolve(location) for chunk in _whole(path, chunk_rows, window))
    files = resolve(location)
    for path in files:
        if path.lower().endswith(".parquet") and "://" not in path:
            _parquet_file(path).close()  # refuse an unreadable file before any model loads
    return (
        chunk
        for path in files
        for chunk in (_stream if path.lower().endswith(".parquet") else _whole)(path, chunk_rows)
    )


def predictions(
    model: Pipeline, valid: pd.DataFrame, problem: Problem = PROBLEM
) -> tuple[dict[str, pa.Array], int]:
    """The prediction columns of validated rows, and how many were held to the target's range:
    ``predicted_<target>`` (a value, or a class and then ``probability_<class>`` per class)."""
    features = problem.feature_frame(valid)
    if features.empty:  # every row of a chunk set aside: the columns, with no value
        return _no_predictions(problem), 0
    if not problem.is_classifier:
        predicted, clipped = problem.clip(model.predict(features))
        return {predicted_column(problem): pa.array(predicted, pa.float64())}, clipped
    probabilities = class_probabilities(model, features, problem)
    labels = problem.decide(probabilities).tolist()
    columns = {predicted_column(problem): pa.array(labels, type=_class_type(problem))}
    for index, label in enumerate(problem.classes):
        columns[probability_column(label)] = pa.array(probabilities[:, index], pa.float64())
    return columns, 0


def _no_predictions(problem: Problem) -> dict[str, pa.Array]:
    if not problem.is_classifier:
        return {predicted_column(problem): pa.array([], pa.float64())}
    columns = {predicted_column(problem): pa.array([], _class_type(problem))}
    for label in problem.classes:
        columns[probability_column(label)] = pa.array([], pa.float64())
    return columns


def _class_type(problem: Problem) -> pa.DataType:
    return pa.int64() if problem.target.kind == "integer" else pa.string()


def score_chunk(
    chunk: Chunk,
    model: Pipeline,
    version: int,
    scored_at: datetime,
    problem: Problem = PROBLEM,
) -> tuple[pa.Table, int, Rejects]:
    """Every row of the chunk with its prediction (none for a row that breaks the contract:
    its reason in ``rejected_because``), the model version and alias, and the scoring time;
    how many predictions were held to the target's range; and the rows set aside."""
    frame = problem.normalize(chunk.frame)
    kept, rejects = screen(frame, chunk.source, problem=problem, first_row=None)
    columns, clipped = predictions(model, kept, problem)
    rows = len(frame)
    place = frame.index.get_indexer(kept.index)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for name, values in columns.items():
        table = table.append_column(name, _in_place(values, place, rows))
    reasons = mark(frame, rejects, chunk.source)
    table = (
        table.append_column(REJECTED_COLUMN, pa.array(reasons, pa.string(), from_pandas=True))
        .append_column("model_version", pa.repeat(pa.scalar(version, pa.int64()), rows))
        .append_column("model_alias", pa.repeat(pa.scalar(CHAMPION, pa.string()), rows))
        .append_column(
            "scored_at", pa.repeat(pa.scalar(scored_at, pa.timestamp("us", tz="UTC")), rows)
        )
    )
    return table, clipped, rejects


def _in_place(values: pa.Array, place: npt.NDArray[np.intp], rows: int) -> pa.Array:
    """``values`` of the kept rows at their ``place`` among ``rows``; null elsewhere."""
    found: list[Any] = [None] * rows
    for position, value in zip(place.tolist(), values.to_pylist(), strict=True):
        found[position] = value
    return pa.array(found, values.type)


def _conform(table: pa.Table, schema: pa.Schema, source: str) -> pa.Table:
    """``table`` in the output's schema (the first chunk's): files must share their columns."""
    if table.schema.equals(schema):
        return table
    try:
        return table.select(schema.names).cast(schema)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataValidationError(
            f"{source}: its columns differ from the first file's ({exc}); score it on its own"
        ) from None


def score_to_parquet(
    chunks: Iterable[Chunk],
    output: Path,
    model: Pipeline,
    version: int,
    problem: Problem = PROBLEM,
    max_rejected_share: float | None = None,
) -> tuple[int, int, Rejects]:
    """Score ``chunks`` one by one, appending to ``output`` (replaced once complete).

    Returns the rows written, how many predictions were held to the target's range, and the
    rows set aside; past ``max_rejected_share`` set aside, no output is left (an error says).
    """
    scored_at = datetime.now(UTC)
    partial = output.with_name(f".{output.name}.partial")
    rows = clipped = 0
    rejects: list[Rejects] = []
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks:
            table, held, found = score_chunk(chunk, model, version, scored_at, problem)
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(_conform(table, writer.schema, chunk.source))
            rows, clipped = rows + table.num_rows, clipped + held
            rejects.append(found)
        if writer is None:
            raise DataValidationError("nothing to score: no rows")
        writer.close()
        settled = Rejects.total(rejects).settle(
            str(output), rejects_path(str(output), "inputs"), max_rejected_share
        )
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    return rows, clipped, settled


@flow(name="batch scoring", log_prints=False)
def batch_scoring_flow(
    location: str,
    output: Path | None = None,
    window: Window | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_rejected_share: float | None = None,
) -> ScoringResult:
    """Score every row of ``location`` (in ``window``) with the champion; write the rows with
    ``predicted_<target>`` (a classifier's: and its class probabilities), the model version and
    the scoring time."""
    chunks = iter_chunks(location, window, chunk_rows)  # bad input fails before the model loads
    configure_tracking()
    model, version = load_model_by_alias(CHAMPION)
    output = output or default_output(location)
    output.parent.mkdir(parents=True, exist_ok=True)
    rows, clipped, rejects = score_to_parquet(
        chunks, output, model, version, max_rejected_share=max_rejected_share
    )
    where = location if window is None else f"{location} {window}"
    notes = [f"{clipped} held to the target's range"] if clipped else []
    notes += [f"{rejects.rejected} set aside, no prediction"] if rejects.rejected else []
    note = f" ({'; '.join(notes)})" if notes else ""
    print(f"scored {rows} rows of {where} with champion v{version}{note} -> {output}")
    for line in rejects.summary_lines(where):
        print(line)
    return ScoringResult(output, rows, version, clipped, rejects)
