"""The batch scoring flow: a file (or a month of data/) scored by the champion.

Parquet input is streamed: read ``chunk_rows`` trips at a time from its row groups, scored, and
appended to the output file, so memory stays flat whatever the file's size. CSV files are read
whole (convert a large one to parquet first).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..training import environment

environment.set_offline_defaults()

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from prefect import flow  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from ..contract import DataValidationError, month_file, read_trips  # noqa: E402
from ..predict import predict  # noqa: E402
from ..training.config import parse_month  # noqa: E402
from ..training.registry import CHAMPION, load_model_by_alias  # noqa: E402
from ..training.tracking import configure_tracking  # noqa: E402

PREDICTED = "predicted_duration"
#: Trips scored at a time: about 10 MB of input per chunk for the TLC columns.
DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class ScoringResult:
    output: Path
    rows: int
    model_version: int


def resolve_input(source: str, data_dir: Path = Path("data")) -> Path:
    """``source`` is a parquet/csv path or a month ``YYYY-MM`` of ``data_dir``."""
    try:
        year, month = parse_month(source)
    except ValueError:
        return Path(source)
    return month_file(data_dir, year, month)


def default_output(source: Path, reports_dir: Path = Path("reports")) -> Path:
    return reports_dir / "batch" / f"{source.stem}-predictions.parquet"


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise DataValidationError(f"{path}: cannot read parquet file ({exc})") from exc
    if file.metadata.num_rows == 0:
        raise DataValidationError(f"{path}: file has no rows")
    return file


def _stream(file: pq.ParquetFile, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    with file:
        yield from file.iter_batches(batch_size=chunk_rows)


def iter_trips(path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
    """The trips of ``path``, at most ``chunk_rows`` at a time (parquet streamed by row group).

    The file is opened (and an unusable one refused) now, its rows are read as they are consumed.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if path.is_file() and path.suffix.lower() == ".parquet":
        return _stream(_open_parquet(path), chunk_rows)
    table = pa.Table.from_pandas(read_trips(path), preserve_index=False)
    return iter(table.to_batches(max_chunksize=chunk_rows))


def score_batch(
    trips: pa.RecordBatch, model: Pipeline, version: int, scored_at: datetime
) -> pa.Table:
    """``trips`` with the prediction, the model version and alias, and the scoring time."""
    rows = trips.num_rows
    predicted = predict(model, trips.to_pandas())
    return (
        pa.Table.from_batches([trips])
        .append_column(PREDICTED, pa.array(predicted, pa.float64()))
        .append_column("model_version", pa.repeat(pa.scalar(version, pa.int64()), rows))
        .append_column("model_alias", pa.repeat(pa.scalar(CHAMPION, pa.string()), rows))
        .append_column(
            "scored_at", pa.repeat(pa.scalar(scored_at, pa.timestamp("us", tz="UTC")), rows)
        )
    )


def score_to_parquet(
    batches: Iterable[pa.RecordBatch], output: Path, model: Pipeline, version: int
) -> int:
    """Score ``batches`` one by one, appending to ``output`` (replaced once complete); rows."""
    scored_at = datetime.now(UTC)
    partial = output.with_name(f".{output.name}.partial")
    rows, writer = 0, None
    try:
        for trips in batches:
            table = score_batch(trips, model, version, scored_at)
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    if writer is None:
        raise DataValidationError("nothing to score: no rows")
    writer.close()
    partial.replace(output)
    return rows


@flow(name="batch scoring", log_prints=False)
def batch_scoring_flow(
    source: str,
    output: Path | None = None,
    data_dir: Path = Path("data"),
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ScoringResult:
    """Score every trip of ``source`` with the champion; write trips + predictions + version.

    Parquet input is read ``chunk_rows`` trips at a time, so memory does not grow with its size.
    """
    path = resolve_input(source, data_dir)
    batches = iter_trips(path, chunk_rows)  # a bad input fails here, before the model loads
    configure_tracking()
    model, version = load_model_by_alias(CHAMPION)
    output = output or default_output(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = score_to_parquet(batches, output, model, version)
    print(f"scored {rows} trips of {path} with champion v{version} -> {output}")
    return ScoringResult(output, rows, version)
