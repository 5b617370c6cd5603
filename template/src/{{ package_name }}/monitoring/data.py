"""Reading recent traffic from the prediction log and the training reference from data/."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sklearn.pipeline import Pipeline
from sqlalchemy import Engine, select

from ..contract import FEATURES, TARGET, load_month
from ..features import prepare_features
from ..predict import predict
from ..serving.store import ground_truth, predictions
from ..training.config import parse_month
from .config import ReferenceConfig

PREDICTION = "prediction"
WINDOW_COLUMNS = ["ts", "request_id", "variant", "model_version", *FEATURES, PREDICTION, TARGET]


def read_window(
    engine: Engine, since: datetime, until: datetime | None = None, max_rows: int | None = None
) -> pd.DataFrame:
    """Logged predictions from ``since`` (to ``until``), newest first, with ground truth if any."""
    query = (
        select(
            predictions.c.ts,
            predictions.c.request_id,
            predictions.c.variant,
            predictions.c.model_version,
            *(predictions.c[name] for name in FEATURES),
            predictions.c.prediction,
            ground_truth.c[TARGET],
        )
        .select_from(
            predictions.outerjoin(
                ground_truth, predictions.c.request_id == ground_truth.c.request_id
            )
        )
        .where(predictions.c.ts >= since)
        .order_by(predictions.c.ts.desc())
    )
    if until is not None:
        query = query.where(predictions.c.ts < until)
    if max_rows is not None:
        query = query.limit(max_rows)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=WINDOW_COLUMNS)
    return frame.astype({TARGET: "float64", PREDICTION: "float64"})


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
