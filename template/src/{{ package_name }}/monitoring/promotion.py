"""The promotion flow: champion and challenger on the same labelled data; the challenger
becomes champion only when its predictions are sane (finite, few outside the target's range)
and its RMSE beats the champion's by the margin.

The data is a selection of a labelled source (``--source/--start/--end`` or
``promotion.data``), else the labelled traffic of the prediction log (predictions joined with
their ground truth) of the last ``promotion.window_hours``.

The decision and its numbers are recorded in MLflow (a ``promotion`` run, and tags on the
challenger's model version). A running service picks up a new champion when it restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from prefect import flow
from sklearn.pipeline import Pipeline

from ..datasets import load
from ..model import evaluate
from ..predict import predict_with_count
from ..problem import PROBLEM
from ..serving.store import make_engine
from ..training.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    get_version_by_alias,
    load_model_by_alias,
    set_alias,
)
from ..training.tracking import configure_tracking
from .config import DEFAULT_CONFIG, MonitoringConfig, Selection, load_config
from .data import FEATURES, TARGET, labelled, read_window

#: Where the champion before the last promotion stays reachable (for a rollback).
PREVIOUS_CHAMPION = "previous-champion"
#: Version tag: the champion a version replaced (the chain a rollback walks back).
PREVIOUS_TAG = "promotion.previous_champion"


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger was promoted, why, and the numbers behind it."""

    promoted: bool
    reason: str
    champion_version: int | None
    challenger_version: int | None
    champion_rmse: float | None = None
    challenger_rmse: float | None = None
    rows: int = 0
    data: str = ""
    margin: float = 0.0


def decide(champion_rmse: float, challenger_rmse: float, margin: float) -> tuple[bool, str]:
    """Promote only if the challenger's RMSE is at least ``margin`` (relative) below."""
    needed = champion_rmse * (1.0 - margin)
    numbers = f"challenger RMSE {challenger_rmse:.3f} vs champion {champion_rmse:.3f}"
    if challenger_rmse <= needed:
        return True, f"{numbers}: better by more than the {margin:.1%} margin"
    return False, f"{numbers}: needs <= {needed:.3f} ({margin:.1%} margin)"


def recent_labelled(
    config: MonitoringConfig, data: Selection | None = None
) -> tuple[pd.DataFrame, str]:
    """Labelled rows both models are scored on, and where they came from."""
    data = data or config.promotion.data
    if data is not None:
        location = data.location(config.data_source())
        window = data.window()
        frame, _ = load(location, window)
        return frame, f"{location} {window}"
    since = datetime.now(UTC) - timedelta(hours=config.promotion.window_hours)
    window_rows = labelled(read_window(make_engine(config.log_url()), since))
    frame = window_rows[[*FEATURES, TARGET]].reset_index(drop=True)
    hours = config.promotion.window_hours
    return frame, f"labelled predictions of the last {hours:g} h"


def sanity(model: Pipeline, data: pd.DataFrame, max_clipped_share: float) -> str | None:
    """Why ``model``'s predictions on ``data`` are not sane, or None: every one finite, at
    most ``max_clipped_share`` of them outside the target's range."""
    predicted, clipped = predict_with_count(model, data, source="promotion data")
    if not np.isfinite(predicted).all():
        return "the challenger predicts non-finite values"
    share = clipped / max(len(data), 1)
    if share > max_clipped_share:
        low, high = (f"{bound:g}" for bound in PROBLEM.target_range)
        return (
            f"{clipped} challenger predictions ({share:.1%}) outside the target's range "
            f"{low}..{high} (promotion.max_clipped_share: {max_clipped_share:.1%})"
        )
    return None


def drop_alias(alias: str, version: int, name: str = MODEL_NAME) -> None:
    """Remove ``alias`` if it still points at ``version``."""
    if get_version_by_alias(alias, name) == version:
        MlflowClient().delete_registered_model_alias(name, alias)


def promote(version: int, name: str = MODEL_NAME) -> int | None:
    """Make ``version`` the champion; return the champion it replaced.

    The replaced champion keeps the alias ``previous-champion`` and is named in a tag of
    ``version``, so a rollback can go back more than one step.
    """
    previous = get_version_by_alias(CHAMPION, name)
    if previous is not None and previous != version:
        MlflowClient().set_model_version_tag(name, str(version), PREVIOUS_TAG, str(previous))
        set_alias(PREVIOUS_CHAMPION, previous, name)
    set_alias(CHAMPION, version, name)  # a live-swapping service follows this alias
    drop_alias(CHALLENGER, version, name)
    return previous


def record(decision: PromotionDecision) -> str:
    """Log the decision as an MLflow run and tag the challenger's version; return the run id."""
    metrics = {
        name: value
        for name, value in (
            ("champion_rmse", decision.champion_rmse),
            ("challenger_rmse", decision.challenger_rmse),
            ("rows", float(decision.rows)),
        )
        if value is not None
    }
    with mlflow.start_run(run_name="promotion") as run:
        mlflow.set_tags({"decision": "promoted" if decision.promoted else "refused"})
        mlflow.log_params({k: v for k, v in asdict(decision).items() if k not in metrics})
        mlflow.log_metrics(metrics)
    if decision.challenger_version is not None:
        client = MlflowClient()
        version = str(decision.challenger_version)
        verdict = "promoted" if decision.promoted else "refused"
        client.set_model_version_tag(MODEL_NAME, version, "promotion.decision", verdict)
        client.set_model_version_tag(MODEL_NAME, version, "promotion.reason", decision.reason)
    return str(run.info.run_id)


def evaluate_promotion(
    config: MonitoringConfig, data: Selection | None = None
) -> PromotionDecision:
    """Compare challenger and champion; promote if the challenger is sane and wins by the
    margin."""
    margin = config.promotion.margin
    champion, champion_version = load_model_by_alias(CHAMPION)
    challenger_version = get_version_by_alias(CHALLENGER)
    if challenger_version is None:
        reason = "no challenger in the registry: nothing to promote"
        return PromotionDecision(False, reason, champion_version, None, margin=margin)
    challenger, _ = load_model_by_alias(CHALLENGER)
    frame, source = recent_labelled(config, data)
    refused = PromotionDecision(
        False, "", champion_version, challenger_version, rows=len(frame), data=source, margin=margin
    )
    if len(frame) < config.promotion.min_labelled:
        reason = f"{len(frame)} labelled rows in {source} (< {config.promotion.min_labelled})"
        return replace(refused, reason=reason)
    insane = sanity(challenger, frame, config.promotion.max_clipped_share)
    if insane is not None:
        return replace(refused, reason=insane)
    champion_rmse = evaluate(champion, frame)["rmse"]
    challenger_rmse = evaluate(challenger, frame)["rmse"]
    promoted, reason = decide(champion_rmse, challenger_rmse, margin)
    if promoted:
        promote(challenger_version)
    return replace(
        refused,
        promoted=promoted,
        reason=reason,
        champion_rmse=champion_rmse,
        challenger_rmse=challenger_rmse,
    )


@flow(name="promotion", log_prints=False)
def promotion_flow(
    config_path: str | Path | None = DEFAULT_CONFIG,
    data: Selection | None = None,
    config: MonitoringConfig | None = None,
) -> PromotionDecision:
    """Gate: promote the challenger only if it beats the champion; record the decision."""
    config = config or load_config(config_path)
    configure_tracking()
    decision = evaluate_promotion(config, data)
    run_id = record(decision)
    verdict = "PROMOTED" if decision.promoted else "not promoted"
    print(f"challenger v{decision.challenger_version}: {verdict}. {decision.reason}")
    print(f"decision recorded in MLflow run {run_id}")
    return decision
