"""Recent traffic from the prediction log, and the reference it is compared with.

The columns are the contract's: its features, the served prediction (a classifier's: the
predicted class, then one ``probability_<class>`` column per declared class), whether it was
held to the target's range (``clipped``) and the target once ground truth has arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline
from sqlalchemy import ColumnElement, Engine, FromClause, Select, select

from ..datasets import load
from ..predict import predict, predict_proba_frame, predicted_column, probability_column
from ..problem import PROBLEM, Problem
from ..serving.store import ground_truth, predictions
from .config import ReferenceConfig

PREDICTION = "prediction"
CLIPPED = "clipped"
TARGET = PROBLEM.target.name
FEATURES = tuple(PROBLEM.features)


def probability_columns(problem: Problem = PROBLEM) -> tuple[str, ...]:
    """A classifier's probability columns, in the contract's class order (none for regression)."""
    return tuple(probability_column(label) for label in problem.classes)


PROBABILITIES = probability_columns()
WINDOW_COLUMNS = (
    "ts",
    "request_id",
    "variant",
    "model_version",
    *FEATURES,
    PREDICTION,
    *PROBABILITIES,
    CLIPPED,
    TARGET,
)
#: What the monitoring check reads: no timestamps to parse and no request ids to copy, which
#: cost more than the rest of a large window.
CHECK_COLUMNS = ("variant", "model_version", *FEATURES, PREDICTION, *PROBABILITIES, CLIPPED, TARGET)


def _selected(name: str) -> ColumnElement[Any]:
    return ground_truth.c[TARGET] if name == TARGET else predictions.c[name]


def read_window(
    engine: Engine,
    since: datetime,
    until: datetime | None = None,
    max_rows: int | None = None,
    columns: Sequence[str] = WINDOW_COLUMNS,
) -> pd.DataFrame:
    """Logged predictions from ``since`` (to ``until``), newest first, with ground truth if any.

    ``columns`` (a subset of ``WINDOW_COLUMNS``) are read; ground truth is joined only when
    the target is one of them.
    """
    _check_columns(columns)
    source: FromClause = predictions
    if TARGET in columns:
        source = predictions.outerjoin(
            ground_truth, predictions.c.request_id == ground_truth.c.request_id
        )
    return _frame(engine, _window_query(source, columns, since, until, max_rows), columns)


def read_labelled(
    engine: Engine,
    since: datetime,
    until: datetime | None = None,
    max_rows: int | None = None,
    columns: Sequence[str] = WINDOW_COLUMNS,
) -> pd.DataFrame:
    """The logged predictions from ``since`` (to ``until``) whose ground truth has arrived,
    newest first, at most ``max_rows``: ``labelled(read_window(...))`` selected in SQL (an
    inner join on the request id), so a large log with few labels is not read whole."""
    _check_columns(columns)
    source = predictions.join(ground_truth, predictions.c.request_id == ground_truth.c.request_id)
    return _frame(engine, _window_query(source, columns, since, until, max_rows), columns)


def _check_columns(columns: Sequence[str]) -> None:
    unknown = [name for name in columns if name not in WINDOW_COLUMNS]
    if unknown:
        raise ValueError(f"unknown window column(s) {unknown}, expected {list(WINDOW_COLUMNS)}")


def _window_query(
    source: FromClause,
    columns: Sequence[str],
    since: datetime,
    until: datetime | None,
    max_rows: int | None,
) -> Select[Any]:
    """``columns`` of ``source`` served in ``[since, until)``, newest first (the ``ts`` index
    bounds the scan), at most ``max_rows``."""
    query = (
        select(*(_selected(name) for name in columns))
        .select_from(source)
        .where(predictions.c.ts >= since)
        .order_by(predictions.c.ts.desc())
    )
    if until is not None:
        query = query.where(predictions.c.ts < until)
    if max_rows is not None:
        query = query.limit(max_rows)
    return query


def _frame(engine: Engine, query: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    """The rows of ``query`` with the window's column types."""
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(columns))
    numbers = PROBABILITIES if PROBLEM.is_classifier else (TARGET, PREDICTION)
    types = {name: "float64" for name in numbers if name in columns}
    if CLIPPED in columns:
        types[CLIPPED] = "bool"
    return frame.astype(types)


def labelled_event_times(
    engine: Engine, since: datetime, until: datetime, problem: Problem = PROBLEM
) -> pd.Series:
    """The event times callers sent with the predictions served in ``[since, until)`` whose
    ground truth has arrived (none when the contract has no event time)."""
    if problem.event_time is None or problem.event_time not in predictions.c:
        return pd.Series(dtype="datetime64[ns]")
    column = predictions.c[problem.event_time]
    query = (
        select(column)
        .select_from(
            predictions.join(ground_truth, predictions.c.request_id == ground_truth.c.request_id)
        )
        .where(predictions.c.ts >= since, predictions.c.ts < until, column.is_not(None))
    )
    with engine.connect() as conn:
        values = [row[0] for row in conn.execute(query)]
    return pd.Series(pd.to_datetime(values, utc=True).tz_localize(None))


def labelled(window: pd.DataFrame, problem: Problem = PROBLEM) -> pd.DataFrame:
    """The rows whose ground truth has arrived."""
    return window[window[problem.target.name].notna()]


def load_reference(reference: ReferenceConfig, default_source: str) -> pd.DataFrame:
    """The reference rows (validated, labelled), a seeded sample of at most ``max_rows``."""
    frame, _ = load(reference.location(default_source), reference.window())
    if len(frame) > reference.max_rows:
        frame = frame.sample(reference.max_rows, random_state=reference.seed)
    return frame.reset_index(drop=True)


def with_predictions(
    frame: pd.DataFrame, model: Pipeline, problem: Problem = PROBLEM
) -> pd.DataFrame:
    """``frame``'s features, the model's predictions for them (a classifier's: the class and
    its probabilities, as the log holds them) and the target when ``frame`` has it: a
    reference for drift, and for the score of chance."""
    out = problem.feature_frame(frame).reset_index(drop=True)
    if problem.is_classifier:
        scored = predict_proba_frame(model, out, problem, source="reference")
        out = pd.concat(
            [out, scored.rename(columns={predicted_column(problem): PREDICTION})], axis=1
        )
    else:
        out = out.assign(**{PREDICTION: predict(model, out, problem, source="reference")})
    target = problem.target.name
    if target in frame.columns:
        out[target] = frame[target].to_numpy()
    return out
