"""The batch scoring flow: a location (file, folder, glob) or a time window, scored by the champion.

Parquet files are streamed: read ``chunk_rows`` rows at a time from their row groups, validated
like training data, scored, and appended to the output file, so memory stays flat whatever
their size. CSV files and time windows are read whole (convert a large CSV to parquet first).
Predictions are held to the target's range; how many were is reported. A classifier's rows get
the predicted class and one ``probability_<class>`` column per declared class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow
from sklearn.pipeline import Pipeline

from ..datasets import ARROW_THREADS, Window, load, read_file, resolve
from ..predict import class_probabilities, predicted_column, probability_column
from ..problem import PROBLEM, DataValidationError, Problem
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


@dataclass(frozen=True)
class Chunk:
    """Rows to score and the file (or window) they came from, for error messages."""

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
    with file:
        for batch in file.iter_batches(batch_size=chunk_rows, use_threads=ARROW_THREADS):
            yield Chunk(batch.to_pandas(use_threads=ARROW_THREADS), path)


def _whole(path: str, chunk_rows: int) -> Iterator[Chunk]:
    frame, _ = read_file(path)
    for start in range(0, len(frame), chunk_rows):
        yield Chunk(frame.iloc[start : start + chunk_rows].reset_index(drop=True), path)


def iter_chunks(
    location: str, window: Window | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[Chunk]:
    """The rows of ``location`` (in ``window``), at most ``chunk_rows`` at a time.

    The location is resolved (a missing one refused) now; rows are read as they are consumed.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if window is not None and (window.start is not None or window.end is not None):
        frame, _ = load(location, window, labelled=False)
        name = f"{location} {window}"
        return iter(
            [
                Chunk(frame.iloc[i : i + chunk_rows].reset_index(drop=True), name)
                for i in range(0, len(frame), chunk_rows)
            ]
        )
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
    if not problem.is_classifier:
        predicted, clipped = problem.clip(model.predict(features))
        return {predicted_column(problem): pa.array(predicted, pa.float64())}, clipped
    probabilities = class_probabilities(model, features, problem)
    labels = problem.decide(probabilities).tolist()
    columns = {predicted_column(problem): pa.array(labels, type=_class_type(problem))}
    for index, label in enumerate(problem.classes):
        columns[probability_column(label)] = pa.array(probabilities[:, index], pa.float64())
    return columns, 0


def _class_type(problem: Problem) -> pa.DataType:
    return pa.int64() if problem.target.kind == "integer" else pa.string()


def score_chunk(
    chunk: Chunk,
    model: Pipeline,
    version: int,
    scored_at: datetime,
    problem: Problem = PROBLEM,
) -> tuple[pa.Table, int]:
    """The chunk, validated, with its predictions, the model version and alias, and the
    scoring time; and how many predictions were held to the target's range."""
    valid = problem.validate(chunk.frame, chunk.source)
    columns, clipped = predictions(model, valid, problem)
    rows = len(valid)
    table = pa.Table.from_pandas(valid, preserve_index=False)
    for name, values in columns.items():
        table = table.append_column(name, values)
    table = (
        table.append_column("model_version", pa.repeat(pa.scalar(version, pa.int64()), rows))
        .append_column("model_alias", pa.repeat(pa.scalar(CHAMPION, pa.string()), rows))
        .append_column(
            "scored_at", pa.repeat(pa.scalar(scored_at, pa.timestamp("us", tz="UTC")), rows)
        )
    )
    return table, clipped


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
) -> tuple[int, int]:
    """Score ``chunks`` one by one, appending to ``output`` (replaced once complete).

    Returns the rows scored and how many predictions were held to the target's range.
    """
    scored_at = datetime.now(UTC)
    partial = output.with_name(f".{output.name}.partial")
    rows = clipped = 0
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks:
            table, held = score_chunk(chunk, model, version, scored_at, problem)
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema)
            writer.write_table(_conform(table, writer.schema, chunk.source))
            rows, clipped = rows + table.num_rows, clipped + held
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    if writer is None:
        raise DataValidationError("nothing to score: no rows")
    writer.close()
    partial.replace(output)
    return rows, clipped


@flow(name="batch scoring", log_prints=False)
def batch_scoring_flow(
    location: str,
    output: Path | None = None,
    window: Window | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ScoringResult:
    """Score every row of ``location`` (in ``window``) with the champion; write the rows with
    ``predicted_<target>`` (a classifier's: and its class probabilities), the model version and
    the scoring time."""
    chunks = iter_chunks(location, window, chunk_rows)  # bad input fails before the model loads
    configure_tracking()
    model, version = load_model_by_alias(CHAMPION)
    output = output or default_output(location)
    output.parent.mkdir(parents=True, exist_ok=True)
    rows, clipped = score_to_parquet(chunks, output, model, version)
    where = location if window is None else f"{location} {window}"
    held = f" ({clipped} held to the target's range)" if clipped else ""
    print(f"scored {rows} rows of {where} with champion v{version}{held} -> {output}")
    return ScoringResult(output, rows, version, clipped)
