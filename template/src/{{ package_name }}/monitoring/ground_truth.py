"""Attach actual durations to logged predictions, by request id, from a file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from ..contract import DROPOFF, PICKUP, TARGET, DataValidationError, read_trips
from ..serving.store import upsert_ground_truth

REQUEST_ID = "request_id"


def truth_from_frame(frame: pd.DataFrame, source: str = "data") -> list[tuple[str, float]]:
    """(request id, duration) pairs from ``request_id`` + ``duration`` columns, or from
    ``request_id`` + pickup/drop-off times (the TLC way of knowing a duration)."""
    if REQUEST_ID not in frame.columns:
        raise DataValidationError(f"{source}: missing column {REQUEST_ID!r}")
    if TARGET in frame.columns:
        duration = pd.to_numeric(frame[TARGET], errors="coerce")
    elif {PICKUP, DROPOFF} <= set(frame.columns):
        delta = pd.to_datetime(frame[DROPOFF]) - pd.to_datetime(frame[PICKUP])
        duration = delta.dt.total_seconds() / 60
    else:
        raise DataValidationError(f"{source}: needs {TARGET!r} or {PICKUP!r} and {DROPOFF!r}")
    bad = duration.isna() | (duration < 0)
    if bad.any():
        raise DataValidationError(f"{source}: {int(bad.sum())} missing or negative duration(s)")
    return list(zip(frame[REQUEST_ID].astype(str), duration.astype(float), strict=True))


def attach_from_file(engine: Engine, path: str | Path) -> int:
    """Attach the durations in a parquet or csv file; return how many were attached."""
    frame = read_trips(path)
    return upsert_ground_truth(engine, truth_from_frame(frame, source=str(path)))
