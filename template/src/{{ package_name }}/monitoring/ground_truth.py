"""Attach ground truth (the target's actual values) to logged predictions, by request id.

Values outside the target's declared range are refused, and ids the log never served are
reported, not attached.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from ..datasets import read_file
from ..problem import PROBLEM, DataValidationError
from ..serving.store import Attachment, attach_ground_truth

REQUEST_ID = "request_id"


def describe(result: Attachment) -> str:
    """One line: how many values were attached, and the unknown ids (a sample)."""
    text = f"attached {result.attached} value(s) of {PROBLEM.target.name}"
    if result.unknown:
        text += f"; {result.unknown} unknown request id(s), e.g. {result.unknown_ids}"
    return text


def _derived(frame: pd.DataFrame, source: str) -> pd.Series:
    """The target computed by ``contract.derive_target`` from the columns it reads."""
    target = PROBLEM.target.name
    if PROBLEM.derive_target is None:
        raise DataValidationError(f"{source}: needs columns {REQUEST_ID!r} and {target!r}")
    frame = PROBLEM.normalize(frame)
    for column in PROBLEM.columns:
        if column.kind == "datetime" and column.name in frame.columns:
            frame = frame.assign(
                **{column.name: pd.to_datetime(frame[column.name], errors="coerce")}
            )
    try:
        return PROBLEM.derive_target(frame)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataValidationError(
            f"{source}: needs column {target!r} (or the columns to derive it from: {exc})"
        ) from None


def truth_from_frame(frame: pd.DataFrame, source: str = "data") -> list[tuple[str, float]]:
    """(request id, target value) pairs, each value within the target's range."""
    if REQUEST_ID not in frame.columns:
        raise DataValidationError(f"{source}: missing column {REQUEST_ID!r}")
    target = PROBLEM.target
    raw = frame[target.name] if target.name in frame.columns else _derived(frame, source)
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    low, high = PROBLEM.target_range
    bad = ~values.between(low, high)
    if bad.any():
        first = int(bad.to_numpy().argmax())
        unit = f" {target.unit}" if target.unit else ""
        raise DataValidationError(
            f"{source}: {int(bad.sum())} value(s) of {target.name} missing or outside its "
            f"range {low:g}..{high:g}{unit}, first {raw.tolist()[first]!r} "
            f"(request id {frame[REQUEST_ID].tolist()[first]!r})"
        )
    ids = frame[REQUEST_ID].astype(str)
    return list(zip(ids, values.tolist(), strict=True))


def truth_from_file(path: str | Path) -> list[tuple[str, float]]:
    """The (request id, value) pairs of a parquet or csv file, checked."""
    frame, _ = read_file(path)
    return truth_from_frame(frame, source=str(path))


def attach_from_file(engine: Engine, path: str | Path) -> Attachment:
    """Attach the values in a parquet or csv file (``request_id`` and the target); ids the
    log does not hold are counted and sampled, not attached."""
    return attach_ground_truth(engine, truth_from_file(path))
