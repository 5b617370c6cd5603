"""The data-quality policy, in one place, for every command that reads files.

Rows that break the contract (a check of ``contract.py``, or for labelled data a target that is
missing or outside its plausible range) are set aside with their reason: the source, the row,
the column, the check and the value. They are counted per check, summarised in the command's
output, recorded with the run's lineage and written to a rejects file under ``reports/rejects/``.
A command fails only when the rejected share of the rows it read passes the limit:
``MAX_REJECTED_SHARE`` in ``contract.py`` (10% if left out), overridden per run by a command's
``--max-rejected-share`` (level 2+: also the configs' ``data.max_rejected_share``).

A file that cannot be read as the contract's table at all (a required column missing, no rows)
is still refused whole, with one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pandera.errors import SchemaErrors

from . import contract
from .problem import PROBLEM, DataValidationError, Problem, describe_failures, plain

if TYPE_CHECKING:
    from .datasets import Window

#: The share of rows a command may set aside before it fails (contract.py may set it).
MAX_REJECTED_SHARE = float(getattr(contract, "MAX_REJECTED_SHARE", 0.10))
#: Where rejects files go (ignored by git).
REJECTS_DIR = Path("reports/rejects")
#: The columns of a rejects table and file.
REJECT_COLUMNS = ("source", "row", "column", "check", "value")
#: Failures pandera reports beside a more telling one for the same value (kept only alone).
_ECHOES = ("dtype(", "coerce_dtype(")
#: Passes of validation: a value that blocked a check (a string in a numeric column) hides
#: that check's failures until its row is set aside.
_PASSES = 3


class RejectedShareError(DataValidationError):
    """More rows broke the contract than the configured share allows."""


def check_share(value: float) -> float:
    """A rejected-share limit: a number in [0, 1]."""
    if isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"the rejected-share limit is a number in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Rejects:
    """The rows set aside from ``rows`` read: one table line per failing (row, column)."""

    rows: int = 0
    table: pd.DataFrame = field(default_factory=lambda: _table([]), repr=False)
    #: The rejects file, once written.
    path: Path | None = None

    @property
    def rejected(self) -> int:
        """Rows set aside (a row failing several checks counts once)."""
        return len(self.table[["source", "row"]].drop_duplicates())

    @property
    def kept(self) -> int:
        return self.rows - self.rejected

    @property
    def share(self) -> float:
        return self.rejected / self.rows if self.rows else 0.0

    def by_check(self) -> dict[str, int]:
        """Rows set aside per ``column check``, most frequent first."""
        labels = self.table["column"].astype(str) + " " + self.table["check"].astype(str)
        return {str(k): int(v) for k, v in labels.value_counts().items()}

    def by_source(self) -> dict[str, int]:
        """Rows set aside per file, most first."""
        rows = self.table[["source", "row"]].drop_duplicates()
        return {str(k): int(v) for k, v in rows["source"].value_counts().items()}

    def reasons(self) -> pd.Series:
        """One text per rejected row (its failures joined), indexed by ``(source, row)``."""
        text = self.table["column"].astype(str) + " " + self.table["check"].astype(str)
        text += " (" + self.table["value"].astype(str) + ")"
        grouped = text.groupby([self.table["source"], self.table["row"]], sort=False)
        return grouped.agg("; ".join)

    def __add__(self, other: Rejects) -> Rejects:
        return Rejects(
            self.rows + other.rows,
            pd.concat([self.table, other.table], ignore_index=True),
            self.path or other.path,
        )

    @classmethod
    def total(cls, parts: Iterable[Rejects]) -> Rejects:
        found = cls()
        for part in parts:
            found += part
        return found

    def counts(self) -> str:
        """``12 of 1000 rows (1.2%)``: what was set aside."""
        return f"{self.rejected} of {self.rows} rows ({self.share:.1%})"

    def summary_lines(self, what: str) -> list[str]:
        """A few lines for a command's output: the counts, the top checks, the file."""
        if not self.rejected:
            return []
        lines = [f"{what}: set aside {self.counts()} that break the contract"]
        checks = list(self.by_check().items())
        lines += [f"  {count:>7} {label}" for label, count in checks[:5]]
        if len(checks) > 5:
            lines.append(f"  ({len(checks) - 5} more check(s))")
        if self.path is not None:
            lines.append(f"  rejects: {self.path}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """For lineage records (models/model.json, data/lineage.json)."""
        return {
            "rows_read": self.rows,
            "rows_kept": self.kept,
            "rows_rejected": self.rejected,
            "rejected_by_check": self.by_check(),
            "rejects_file": None if self.path is None else str(self.path),
        }

    def write(self, path: Path) -> Rejects:
        """Write the table to ``path`` (CSV) and return these rejects with their file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(path, index=False)
        return replace(self, path=path)

    def settle(self, what: str, path: Path | None, limit: float | None = None) -> Rejects:
        """Write the rejects (if any) to ``path``; refuse them past ``limit`` (default:
        ``MAX_REJECTED_SHARE``) with one line giving the counts."""
        settled = self.write(path) if self.rejected and path is not None else self
        limit = MAX_REJECTED_SHARE if limit is None else limit
        if settled.share > limit:
            checks = ", ".join(f"{label}: {n}" for label, n in list(self.by_check().items())[:5])
            sources = self.by_source()
            files = ", ".join(f"{name}: {n}" for name, n in list(sources.items())[:3])
            origin = f"; from {files}" if list(sources) != [what] else ""
            where = f"; rejects in {settled.path}" if settled.path else ""
            raise RejectedShareError(
                f"{what}: {settled.counts()} break the contract, more than the limit "
                f"{limit:.0%} ({checks}){origin}{where}"
            )
        return settled


def _table(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=list(REJECT_COLUMNS)).astype(
        {"source": "string", "row": "int64", "column": "string", "check": "string"}
    )


def check_label(check: str) -> str:
    """A pandera check's name as messages show it."""
    return "not_null" if check == "not_nullable" else check


def _row_failures(errors: SchemaErrors, source: str) -> pd.DataFrame:
    """Failures of single rows, one per (row, column), the most telling check first."""
    cases = errors.failure_cases
    cases = cases[cases["index"].notna()]
    echo = cases["check"].astype(str).str.startswith(_ECHOES)
    ordered = pd.concat([cases[~echo], cases[echo]])
    ordered = ordered.drop_duplicates(subset=["index", "column"])
    records = [
        {
            "source": source,
            "row": int(case["index"]),
            "column": str(case["column"]),
            "check": check_label(str(case["check"])),
            "value": _text(case["failure_case"]),
        }
        for case in ordered.to_dict("records")
    ]
    return _table(records)


def _text(value: Any) -> str:
    value = plain(value)
    return "null" if value is None else str(value)


def _validate(
    frame: pd.DataFrame, source: str, labelled: bool, problem: Problem
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows that pass the contract's checks (with contract dtypes), and the failures of
    the others. Failures of no single row (a missing column) are refused whole."""
    schema = problem.input_schema(labelled)
    failures: list[pd.DataFrame] = []
    while True:
        try:
            valid = schema.validate(frame, lazy=True)
            break
        except SchemaErrors as errors:
            found = _row_failures(errors, source)
            if found.empty or len(failures) == _PASSES:
                raise DataValidationError(describe_failures(errors, source)) from None
            failures.append(found)
            frame = frame.drop(index=found["row"].unique().tolist())
    return valid, pd.concat([_table([]), *failures], ignore_index=True)


def target_rejects(
    frame: pd.DataFrame, source: str, problem: Problem = PROBLEM
) -> tuple[pd.DataFrame, Rejects]:
    """The rows of ``frame`` with a plausible target (as the contract's type), and the others
    set aside: a missing target, one outside its range, a label that is not a class."""
    labelled, keep, check = problem.plausible_target(frame, source)
    name = problem.target.name
    raw = (frame[name] if name in frame.columns else labelled[name])[~keep]
    records = [
        {
            "source": source,
            "row": row,
            "column": name,
            "check": "not_null" if pd.isna(value) else check,
            "value": _text(value),
        }
        for row, value in zip(raw.index.tolist(), raw.tolist(), strict=True)
    ]
    return labelled[keep], Rejects(len(frame), _table(records))


def in_window(
    frame: pd.DataFrame, window: Window | None, problem: Problem = PROBLEM
) -> pd.DataFrame:
    """The rows in ``window``, by their event time read leniently: a row whose event time
    cannot be read stays (the checks then set it aside, in every window)."""
    if window is None or (window.start is None and window.end is None):
        return frame
    column = problem.event_time
    if column is None or column not in frame.columns:
        return window.select(frame, column)  # its error names what is missing
    times = pd.to_datetime(frame[column], errors="coerce")
    inside = pd.Series(True, index=frame.index)
    if window.start is not None:
        inside &= times >= window.start
    if window.end is not None:
        inside &= times < window.end
    return frame[inside | times.isna()]


def screen(
    frame: pd.DataFrame,
    source: str,
    *,
    labelled: bool = False,
    problem: Problem = PROBLEM,
    window: Window | None = None,
    first_row: int | None = 0,
) -> tuple[pd.DataFrame, Rejects]:
    """Split ``frame`` into the rows that meet the contract and the rows set aside.

    The kept rows have contract dtypes (labelled data: a plausible target, derived if the
    data lacks it) and keep their index: a row's position in ``frame`` plus ``first_row``
    (None: ``frame``'s own index), which is also its ``row`` in the rejects. ``window`` selects
    rows by event time first.
    """
    if frame.empty:
        raise DataValidationError(f"{source}: no rows")
    frame = problem.normalize(frame)
    problem.refuse_booleans(frame, source)  # a column of booleans is not the contract's table
    if first_row is not None:  # else the frame's index holds the rows' positions already
        frame = frame.set_axis(pd.RangeIndex(first_row, first_row + len(frame)))
    frame = in_window(frame, window, problem)
    if frame.empty:
        return frame, Rejects()
    kept, failures = _validate(frame, source, labelled, problem)
    if labelled and len(kept):
        kept, implausible = target_rejects(kept, source, problem)
        failures = pd.concat([failures, implausible.table], ignore_index=True)
    failures = failures.sort_values("row", kind="stable", ignore_index=True)
    return kept, Rejects(len(frame), failures)


def rejects_path(source: str, tag: str = "") -> Path:
    """``reports/rejects/<file or folder name>[-<tag>].csv`` for a location."""
    name = Path(source.rstrip("/")).stem
    if not name or any(char in name for char in "*?["):
        name = "data"
    parts = [re.sub(r"[^A-Za-z0-9_.-]+", "_", part).strip("_") for part in (name, tag)]
    return REJECTS_DIR / f"{'-'.join(part for part in parts if part)}.csv"


def mark(frame: pd.DataFrame, rejects: Rejects, source: str) -> pd.Series:
    """The reason each row of ``frame`` (indexed by row) was set aside; null if kept."""
    reasons = rejects.reasons()
    found = reasons.xs(source, level="source") if len(reasons) else pd.Series(dtype="string")
    return found.reindex(frame.index).astype("string").rename(REJECTED_COLUMN)


#: The column that gives, in ``predict`` and ``score`` outputs, why a row got no prediction.
REJECTED_COLUMN = "rejected_because"
