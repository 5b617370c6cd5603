"""Attach ground truth (the target's actual values) to logged predictions, by request id.

Values outside the target's declared range are refused, and ids the log never served are
reported, not attached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from ..datasets import read_file
from ..problem import PROBLEM, DataValidationError
from ..serving.store import predictions, upsert_ground_truth

REQUEST_ID = "request_id"
#: Unknown ids listed in a result (all of them are counted).
UNKNOWN_SAMPLE = 10
#: Ids looked up per query (below every database's parameter limit).
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class TruthResult:
    """How many values were attached, and the ids the log does not know."""

    attached: int
    unknown: int = 0
    unknown_sample: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"attached {self.attached} value(s) of {PROBLEM.target.name}"
        if self.unknown:
            text += f"; {self.unknown} unknown request id(s), e.g. {self.unknown_sample}"
        return text


def _derived(frame: pd.DataFrame, source: str) -> pd.Series:
    """The target computed by ``contract.derive_target`` from the columns it reads."""
    target = PROBLEM.target.name
    if PROBLEM.derive_target is None:
        raise DataValidationError(f"{source}: needs columns {REQUEST_ID!r} and {target!r}")
    frame = PROBLEM.normalize(frame)
    for column in PROBLEM.columns:
        if column.kind == "datetime" and column.name in frame.columns:
            frame = frame.assign(**{column.name: pd.to_datetime(frame[column.name], errors="coerce")})
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
            f"range {low:g}..{high:g}{unit}, first {raw.iloc[first]!r} "
            f"(request id {frame[REQUEST_ID].iloc[first]!r})"
        )
    ids = frame[REQUEST_ID].astype(str)
    return list(zip(ids, values.tolist(), strict=True))


def known_request_ids(engine: Engine, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that the prediction log holds."""
    wanted = list(dict.fromkeys(ids))
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), LOOKUP_BATCH):
            batch = wanted[start : start + LOOKUP_BATCH]
            query = select(predictions.c.request_id).where(predictions.c.request_id.in_(batch))
            found.update(conn.execute(query).scalars())
    return found


def attach(engine: Engine, items: Sequence[tuple[str, float]]) -> TruthResult:
    """Attach the values of ids the log knows; count (and sample) the others."""
    known = known_request_ids(engine, (rid for rid, _ in items))
    unknown = [rid for rid, _ in items if rid not in known]
    attached = upsert_ground_truth(engine, [item for item in items if item[0] in known])
    return TruthResult(attached, len(unknown), unknown[:UNKNOWN_SAMPLE])


def truth_from_file(path: str | Path) -> list[tuple[str, float]]:
    """The (request id, value) pairs of a parquet or csv file, checked."""
    frame, _ = read_file(path)
    return truth_from_frame(frame, source=str(path))


def attach_from_file(engine: Engine, path: str | Path) -> TruthResult:
    """Attach the values in a parquet or csv file (``request_id`` and the target)."""
    return attach(engine, truth_from_file(path))
