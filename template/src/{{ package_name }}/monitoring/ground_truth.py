"""Attach ground truth (the target's actual values) to logged predictions, by request id.

Values outside the target's declared range (a classifier's labels that are not declared
classes) are refused, and ids the log never served are reported, not attached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from ..datasets import read_file
from ..problem import PROBLEM, DataValidationError, Problem
from ..serving.store import Attachment, attach_ground_truth

REQUEST_ID = "request_id"


def describe(result: Attachment) -> str:
    """One line: how many values were attached, and the unknown ids (a sample)."""
    text = f"attached {result.attached} value(s) of {PROBLEM.target.name}"
    if result.unknown:
        text += f"; {result.unknown} unknown request id(s), e.g. {result.unknown_ids}"
    return text


def _derived(frame: pd.DataFrame, source: str, problem: Problem) -> pd.Series:
    """The target computed by ``contract.derive_target`` from the columns it reads."""
    target = problem.target.name
    if problem.derive_target is None:
        raise DataValidationError(f"{source}: needs columns {REQUEST_ID!r} and {target!r}")
    frame = problem.normalize(frame)
    for column in problem.columns:
        if column.kind == "datetime" and column.name in frame.columns:
            frame = frame.assign(
                **{column.name: pd.to_datetime(frame[column.name], errors="coerce")}
            )
    try:
        return problem.derive_target(frame)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataValidationError(
            f"{source}: needs column {target!r} (or the columns to derive it from: {exc})"
        ) from None


def _classes(
    frame: pd.DataFrame, raw: pd.Series, source: str, problem: Problem
) -> list[tuple[str, Any]]:
    """(request id, class) pairs; a label that is not a declared class is refused."""
    labels, known = problem.class_labels(raw)
    if not known.all():
        first = int((~known).to_numpy().argmax())
        unknown = sorted({repr(v) for v in raw[~known].tolist()})
        raise DataValidationError(
            f"{source}: {int((~known).sum())} value(s) of {problem.target.name} missing or not "
            f"a declared class {list(problem.classes)}: {', '.join(unknown[:5])} (first at "
            f"request id {frame[REQUEST_ID].tolist()[first]!r})"
        )
    ids = frame[REQUEST_ID].astype(str)
    return list(zip(ids, labels.tolist(), strict=True))


def truth_from_frame(
    frame: pd.DataFrame, source: str = "data", problem: Problem = PROBLEM
) -> list[tuple[str, Any]]:
    """(request id, target value) pairs, each value within the target's range (a classifier's:
    a declared class)."""
    if REQUEST_ID not in frame.columns:
        raise DataValidationError(f"{source}: missing column {REQUEST_ID!r}")
    target = problem.target
    raw = frame[target.name] if target.name in frame.columns else _derived(frame, source, problem)
    if problem.is_classifier:
        return _classes(frame, raw, source, problem)
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    low, high = problem.target_range
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


def truth_from_file(path: str | Path) -> list[tuple[str, Any]]:
    """The (request id, value) pairs of a parquet or csv file, checked."""
    frame, _ = read_file(path)
    return truth_from_frame(frame, source=str(path))


def attach_from_file(engine: Engine, path: str | Path) -> Attachment:
    """Attach the values in a parquet or csv file (``request_id`` and the target); ids the
    log does not hold are counted and sampled, not attached."""
    return attach_ground_truth(engine, truth_from_file(path))
