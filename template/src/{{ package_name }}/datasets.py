"""Where data comes from: paths, folders or globs of parquet/CSV files, local or object storage.

Configs name data as a *location* (``data/example/*.parquet``, ``data/tlc/``,
``s3://bucket/prefix/*.parquet``) and select rows with a time *window* over the contract's
event-time column. Every load says where its rows came from (``Lineage``), and whether they were
generated: files written by this project's generators carry a marker in their metadata.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .problem import PROBLEM, DataValidationError, Problem
from .quality import Rejects, rejects_path, screen

SUFFIXES = (".parquet", ".csv")
#: Parquet metadata key that marks a file as generated (the value says by what).
GENERATED_KEY = b"generated_by"
#: Parquet is decoded on the calling thread. With Arrow's thread pool, a command that exits
#: right after a read aborts now and then ("terminate called without an active exception",
#: apache/arrow#34314): 7 of 750 runs aborted, none of 1,200 without it; reads are ~5% slower.
ARROW_THREADS = False


@dataclass(frozen=True)
class Window:
    """Rows whose event time is in ``[start, end)``; an open side has no bound.

    ``days`` makes the window relative to the data: the ``days`` days up to the end of the day
    of the latest event time before ``end`` (no ``end``: the latest of all), so the same
    configuration selects the latest rows of any dataset, whatever its dates.
    """

    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    days: float | None = None

    @classmethod
    def parse(
        cls, start: str | datetime | None, end: str | datetime | None, days: float | None = None
    ) -> Window:
        window = cls(
            None if start is None else pd.Timestamp(start),
            None if end is None else pd.Timestamp(end),
            days,
        )
        if window.start is not None and window.end is not None and window.start >= window.end:
            raise ValueError(f"window start {start} must be before its end {end}")
        if days is not None and (days <= 0 or window.start is not None):
            raise ValueError(
                f"days counts back from the end: give a start or days, not both "
                f"(and days > 0), got start={start}, days={days}"
            )
        return window

    @property
    def relative(self) -> bool:
        """True while the window's start depends on the data (``days`` not yet anchored)."""
        return self.days is not None

    def anchored(self, times: pd.Series) -> Window:
        """This window with fixed dates: ``days`` counted back from the end of the day of the
        latest of ``times`` before ``end`` (``end`` itself when that is earlier)."""
        if self.days is None:
            return self
        before = times if self.end is None else times[times < self.end]
        if before.dropna().empty:
            raise DataValidationError(f"no rows {self}")
        end = pd.Timestamp(before.max()).floor("D") + pd.Timedelta(days=1)
        if self.end is not None:
            end = min(end, self.end)
        return Window(end - pd.Timedelta(days=self.days), end)

    def __str__(self) -> str:
        def show(t: pd.Timestamp) -> str:
            return t.isoformat(sep=" ").removesuffix(" 00:00:00")

        if self.days is not None:
            latest = (
                "the latest event time"
                if self.end is None
                else f"the latest before {show(self.end)}"
            )
            return f"the {self.days:g} days up to {latest}"
        if self.start is not None and self.end is not None:
            return f"[{show(self.start)}, {show(self.end)})"
        if self.start is not None:
            return f"from {show(self.start)}"
        return "all rows" if self.end is None else f"before {show(self.end)}"

    def select(self, frame: pd.DataFrame, column: str | None) -> pd.DataFrame:
        if self.start is None and self.end is None and self.days is None:
            return frame
        if column is None:
            raise DataValidationError("a time window needs an event_time column in the contract")
        window = self.anchored(frame[column])
        times = frame[column]
        keep = pd.Series(True, index=frame.index)
        if window.start is not None:
            keep &= times >= window.start
        if window.end is not None:
            keep &= times < window.end
        return frame[keep]


@dataclass(frozen=True)
class FileRecord:
    """One file read: where, how many rows, its SHA-256, and what generated it (if anything)."""

    path: str
    rows: int
    sha256: str
    generated_by: str | None = None


@dataclass(frozen=True)
class Lineage:
    """What a loaded frame was made of, for run records and messages."""

    location: str
    window: str
    files: tuple[FileRecord, ...] = field(default=())
    rows: int = 0
    #: The window the rows were selected by, with fixed dates (a relative one anchored).
    selected: Window = field(default=Window())
    #: The rows set aside (``quality.Rejects``); ``rows`` counts the rows kept.
    rejects: Rejects = field(default_factory=Rejects)

    @property
    def generated(self) -> bool:
        return any(f.generated_by for f in self.files)

    @property
    def kind(self) -> str:
        return "generated" if self.generated else "file"

    def as_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "window": self.window,
            "kind": self.kind,
            "rows": self.rows,
            "files": [vars(f) for f in self.files],
            **self.rejects.as_dict(),
        }


def storage_options(location: str) -> dict[str, Any]:
    """fsspec options: S3 uses MLflow's artifact settings (endpoint, AWS_* credentials)."""
    if location.startswith("s3://") and os.environ.get("MLFLOW_S3_ENDPOINT_URL"):
        return {"client_kwargs": {"endpoint_url": os.environ["MLFLOW_S3_ENDPOINT_URL"]}}
    return {}


def _filesystem(location: str) -> tuple[Any, str]:
    import fsspec  # local paths need no fsspec import on the hot path of predict

    try:
        found: tuple[Any, str] = fsspec.core.url_to_fs(location, **storage_options(location))
        return found
    except ImportError as exc:  # e.g. s3:// without s3fs
        raise DataValidationError(f"{location}: cannot open ({exc})") from None


def resolve(location: str | Path) -> list[str]:
    """The files a location names: a file, a folder (its parquet/CSV files) or a glob."""
    text = str(location)
    if "://" not in text:
        path = Path(text)
        if path.is_file():
            files = [str(path)]
        elif path.is_dir():
            files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        else:
            files = sorted(glob.glob(text, recursive=True)) if _is_glob(text) else []
    else:
        fs, root = _filesystem(text)
        if _is_glob(root):
            found = fs.glob(root)
        elif fs.isdir(root):
            found = [p for p in fs.ls(root, detail=False) if Path(p).suffix.lower() in SUFFIXES]
        else:
            found = [root] if fs.exists(root) else []
        files = sorted(fs.unstrip_protocol(p) for p in found)
    files = [f for f in files if Path(f).suffix.lower() in SUFFIXES]
    if not files:
        raise DataValidationError(f"{text}: no parquet or csv file found{_hint(text)}")
    return files


def _is_glob(text: str) -> bool:
    return any(char in text for char in "*?[")


def _hint(location: str) -> str:
    """What to do about a missing location under data/: it depends on the contract in use."""
    if not location.startswith("data"):
        return ""
    example: str | None = None
    with contextlib.suppress(ImportError):  # the example's generator, deleted with the example
        from .synthetic import EXAMPLE as example
    if PROBLEM.name == example:
        return "; `make data` writes the example's data"
    return "; put your files there, or point the configs (level 1: --data) at them"


def _open(path: str) -> Any:
    if "://" in path:
        fs, root = _filesystem(path)
        return fs.open(root, "rb")
    return open(path, "rb")


def read_file(path: str | Path) -> tuple[pd.DataFrame, FileRecord]:
    """Read one parquet or CSV file; an unreadable file is an error naming it."""
    text = str(path)
    suffix = Path(text).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataValidationError(f"{text}: unsupported file type {suffix!r}, expected {SUFFIXES}")
    if "://" not in text and not Path(text).is_file():
        raise DataValidationError(f"{text}: file not found{_hint(text)}")
    import pyarrow.parquet as pq

    try:
        with _open(text) as handle:
            payload = handle.read()
        digest = hashlib.sha256(payload).hexdigest()
        generated_by = None
        if suffix == ".parquet":
            table = pq.read_table(io.BytesIO(payload), use_threads=ARROW_THREADS)
            metadata = table.schema.metadata or {}
            marker = metadata.get(GENERATED_KEY)
            generated_by = marker.decode() if marker else None
            frame = table.to_pandas(use_threads=ARROW_THREADS)
        else:
            frame = pd.read_csv(io.BytesIO(payload))
    except DataValidationError:
        raise
    except Exception as exc:  # parquet, csv and decoding errors all mean the same here
        raise DataValidationError(f"{text}: cannot read {suffix[1:]} file ({exc})") from None
    return frame, FileRecord(text, len(frame), digest, generated_by)


def load(
    location: str | Path,
    window: Window | None = None,
    *,
    labelled: bool = True,
    problem: Problem = PROBLEM,
    max_rejected_share: float | None = None,
) -> tuple[pd.DataFrame, Lineage]:
    """Read, validate (and label) every file of ``location`` within ``window``.

    Rows that break the contract are set aside (``quality.screen``): counted in the lineage,
    written to a rejects file, and refused only past ``max_rejected_share`` (default: the
    contract's ``MAX_REJECTED_SHARE``). A file that is not the contract's table is refused whole.
    """
    window = window or Window()
    files = [read_file(path) for path in resolve(location)]
    if window.relative:  # anchored to the latest event time of the rows that pass the checks
        window = _anchored(window, files, labelled, problem, str(location))
    frames, rejects = [], []
    for raw, record in files:
        kept, found = screen(raw, record.path, labelled=labelled, problem=problem, window=window)
        frames.append(kept)
        rejects.append(found)
    bounded = window.start is not None or window.end is not None
    settled = Rejects.total(rejects).settle(
        f"{location}{f' {window}' if bounded else ''}",
        rejects_path(str(location), str(window) if bounded else ""),
        max_rejected_share,
    )
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frame.empty:
        raise DataValidationError(f"{location}: no rows in window {window}")
    records = tuple(record for _, record in files)
    lineage = Lineage(str(location), str(window), records, len(frame), window, settled)
    return frame, lineage


def _anchored(
    window: Window,
    files: list[tuple[pd.DataFrame, FileRecord]],
    labelled: bool,
    problem: Problem,
    location: str,
) -> Window:
    """``window`` anchored to the latest event time of the files' rows that pass the checks
    (a bad row's absurd date never moves it)."""
    bounds = Window(window.start, window.end)
    kept = [
        screen(raw, record.path, labelled=labelled, problem=problem, window=bounds)[0]
        for raw, record in files
    ]
    frame = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
    if frame.empty:
        raise DataValidationError(f"{location}: no rows in window {window}")
    return anchor(window, frame, problem)


def anchor(window: Window, frame: pd.DataFrame, problem: Problem = PROBLEM) -> Window:
    """``window`` with its ``days`` anchored to the latest event time of ``frame``."""
    if problem.event_time is None:
        raise DataValidationError("a time window needs an event_time column in the contract")
    return window.anchored(frame[problem.event_time])


def split(
    frame: pd.DataFrame,
    validation_fraction: float,
    seed: int = 42,
    problem: Problem = PROBLEM,
    *,
    stratify: bool | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the latest ``validation_fraction`` of rows by event time (else a seeded sample).

    Without an event time the sample is stratified by class when ``stratify`` (by default for
    classifiers), so that both sides keep the class shares.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    n_validation = max(1, round(len(frame) * validation_fraction))
    if len(frame) - n_validation < 1:
        raise DataValidationError(f"{len(frame)} row(s) are too few to split for validation")
    if problem.event_time is not None:
        order = np.argsort(frame[problem.event_time].to_numpy(), kind="stable")
        held_out = order[len(frame) - n_validation :]
    elif problem.is_classifier if stratify is None else stratify:
        held_out = _stratified(frame[problem.target.name], n_validation, seed)
    else:
        held_out = _sample(len(frame), n_validation, seed)
    validation = np.zeros(len(frame), dtype=bool)
    validation[held_out] = True
    return (
        frame[~validation].reset_index(drop=True),
        frame[validation].reset_index(drop=True),
    )


def _sample(n_rows: int, n_validation: int, seed: int) -> np.ndarray:
    """Positions of ``n_validation`` of ``n_rows`` rows drawn at random (seeded)."""
    return np.random.default_rng(seed).permutation(n_rows)[n_rows - n_validation :]


def _stratified(labels: pd.Series, n_validation: int, seed: int) -> np.ndarray:
    """Positions of ``n_validation`` rows drawn with each label's share (seeded)."""
    from sklearn.model_selection import train_test_split

    counts = labels.value_counts(dropna=False)
    n_classes = len(counts)
    rows = np.arange(len(labels))
    if counts.min() < 2 or not n_classes <= n_validation <= len(labels) - n_classes:
        return _sample(len(labels), n_validation, seed)  # too few rows of a class to stratify
    held_out: np.ndarray = train_test_split(
        rows, test_size=n_validation, stratify=labels.to_numpy(), random_state=seed
    )[1]
    return held_out


def write_generated(frame: pd.DataFrame, path: str | Path, generated_by: str) -> Path:
    """Write generated rows as parquet, marked as generated, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), GENERATED_KEY: generated_by.encode()}
    )
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial)
    partial.replace(path)
    return path
