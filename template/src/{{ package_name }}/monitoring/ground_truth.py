"""Attach ground truth (the target's actual values) to logged predictions, by request id.

Values missing or outside the target's declared range (a classifier's labels that are not
declared classes) are set aside like any bad row (``quality``), and ids the log never served
are reported, not attached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from ..datasets import read_file
from ..problem import PROBLEM, DataValidationError, Problem
from ..quality import Rejects, rejects_path, target_rejects
from ..serving.store import Attachment, attach_ground_truth

REQUEST_ID = "request_id"


def describe(result: Attachment) -> str:
    """One line: how many values were attached, and the unknown ids (a sample)."""
    text = f"attached {result.attached} value(s) of {PROBLEM.target.name}"
    if result.unknown:
        text += f"; {result.unknown} unknown request id(s), e.g. {result.unknown_ids}"
    if result.repeated:
        text += f"; {result.repeated} value(s) replaced by a later one for the same request id"
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


def truth_from_frame(
    frame: pd.DataFrame, source: str = "data", problem: Problem = PROBLEM
) -> tuple[list[tuple[str, Any]], Rejects]:
    """(request id, target value) pairs, each value within the target's range (a classifier's:
    a declared class); the others are set aside (``quality.Rejects``)."""
    if REQUEST_ID not in frame.columns:
        raise DataValidationError(f"{source}: missing column {REQUEST_ID!r}")
    if frame.empty:
        raise DataValidationError(f"{source}: no rows")
    name = problem.target.name
    if name not in frame.columns:
        frame = frame.assign(**{name: _derived(frame, source, problem)})
    frame = frame.reset_index(drop=True)
    kept, rejects = target_rejects(frame, source, problem)
    ids = kept[REQUEST_ID].astype(str)
    return list(zip(ids, kept[name].tolist(), strict=True)), rejects


def truth_from_file(
    path: str | Path, max_rejected_share: float | None = None
) -> tuple[list[tuple[str, Any]], Rejects]:
    """The (request id, value) pairs of a parquet or csv file, checked; bad values are set
    aside (written to a rejects file), refused past ``max_rejected_share``."""
    frame, _ = read_file(path)
    pairs, rejects = truth_from_frame(frame, source=str(path))
    return pairs, rejects.settle(str(path), rejects_path(str(path), "truth"), max_rejected_share)


def attach_from_file(
    engine: Engine, path: str | Path, max_rejected_share: float | None = None
) -> tuple[Attachment, Rejects]:
    """Attach the values in a parquet or csv file (``request_id`` and the target); ids the
    log does not hold are counted and sampled, not attached; bad values are set aside."""
    pairs, rejects = truth_from_file(path, max_rejected_share)
    return attach_ground_truth(engine, pairs), rejects
