"""Reading recent traffic from the prediction log and the training reference from data/."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from sklearn.pipeline import Pipeline
from sqlalchemy import Engine, FromClause, select

from ..contract import FEATURES, TARGET, load_month
from ..features import prepare_features
from ..predict import predict
from ..serving.store import ground_truth, predictions
from ..training.config import parse_month
from .config import ReferenceConfig

PREDICTION = "prediction"
WINDOW_COLUMNS = ["ts", "request_id", "variant", "model_version", *FEATURES, PREDICTION, TARGET]
#: What the monitoring check reads: no timestamps to parse and no request ids to copy, which
#: cost more than the rest of a large window.
CHECK_COLUMNS = ["variant", *FEATURES, PREDICTION, TARGET]


def read_window(
    engine: Engine,
    since: datetime,
    until: datetime | None = None,
    max_rows: int | None = None,
    columns: Sequence[str] = WINDOW_COLUMNS,
) -> pd.DataFrame:
    """Logged predictions from ``since`` (to ``until``), newest first, with ground truth if any.

    ``columns`` (a subset of ``WINDOW_COLUMNS``) are read; ground truth is joined only when
    ``TARGET`` is one of them.
    """
    unknown = [name for name in columns if name not in WINDOW_COLUMNS]
    if unknown:
        raise ValueError(f"unknown window column(s) {unknown}, expected {WINDOW_COLUMNS}")
    selected = [ground_truth.c[TARGET] if n == TARGET else predictions.c[n] for n in columns]
    source: FromClause = predictions
    if TARGET in columns:
        source = predictions.outerjoin(
            ground_truth, predictions.c.request_id == ground_truth.c.request_id
        )
    query = (
        select(*selected)
        .select_from(source)
        .where(predictions.c.ts >= since)
        .order_by(predictions.c.ts.desc())
    )
    if until is not None:
        query = query.where(predictions.c.ts < until)
    if max_rows is not None:
        query = query.limit(max_rows)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(columns))
    floats = {name: "float64" for name in (TARGET, PREDICTION) if name in columns}
    return frame.astype(floats)


def labelled(window: pd.DataFrame) -> pd.DataFrame:
    """The rows whose actual duration has arrived."""
    return window[window[TARGET].notna()]


def load_reference(config: ReferenceConfig) -> pd.DataFrame:
    """The training months, validated, labelled and sampled to at most ``max_rows``."""
    months = [load_month(config.data_dir, *parse_month(month)) for month in config.months]
    frame = pd.concat(months, ignore_index=True)
    if len(frame) > config.max_rows:
        frame = frame.sample(config.max_rows, random_state=config.seed)
    return frame.reset_index(drop=True)


def with_predictions(frame: pd.DataFrame, model: Pipeline) -> pd.DataFrame:
    """``frame``'s features and the model's predictions for them (a reference for drift)."""
    out = prepare_features(frame)
    out[PREDICTION] = predict(model, out)
    return out
