"""The promotion flow: champion and challenger on the same labelled data; the challenger
becomes champion only when its predictions are sane (``model.sanity_problems``: finite values,
or a classifier predicting more than one class with probabilities that are probabilities; a
regressor with few predictions outside the target's range) and it beats the champion on the
configured metric (the task's primary one: rmse, log_loss), in its direction, by the margin.

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
import pandas as pd
from mlflow import MlflowClient
from prefect import flow
from sklearn.pipeline import Pipeline

from ..datasets import load
from ..model import METRICS, evaluate, is_better, required, sanity_problems
from ..predict import predict_with_count
from ..problem import PROBLEM, Problem
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
from .data import FEATURES, TARGET, read_labelled

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
    metric: str = ""
    champion_score: float | None = None
    challenger_score: float | None = None
    rows: int = 0
    data: str = ""
    margin: float = 0.0


def decide(metric: str, champion: float, challenger: float, margin: float) -> tuple[bool, str]:
    """Promote only if the challenger's ``metric`` beats the champion's by ``margin``
    (relative, in the metric's direction)."""
    needed = required(metric, champion, margin)
    numbers = f"challenger {metric} {challenger:.4g} vs champion {champion:.4g}"
    if is_better(metric, challenger, champion, margin):
        return True, f"{numbers}: better by at least the {margin:.1%} margin"
    sign = ">=" if METRICS[metric].greater_is_better else "<="
    return False, f"{numbers}: needs {sign} {needed:.4g} ({margin:.1%} margin)"


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
    window_rows = read_labelled(make_engine(config.log_url()), since, columns=(*FEATURES, TARGET))
    frame = window_rows.reset_index(drop=True)
    if PROBLEM.is_classifier:  # the log's labels as the declared classes' type
        frame[TARGET] = PROBLEM.class_labels(frame[TARGET])[0].to_numpy()
    hours = config.promotion.window_hours
    return frame, f"labelled predictions of the last {hours:g} h"


def sanity(
    model: Pipeline, data: pd.DataFrame, max_clipped_share: float, problem: Problem = PROBLEM
) -> str | None:
    """Why ``model``'s predictions on ``data`` are not sane, or None: ``sanity_problems``
    (finite; a classifier's several classes and true probabilities), and for a regressor at
    most ``max_clipped_share`` of them outside the target's range."""
    problems = sanity_problems(model, data, problem)
    if problems:
        return f"the challenger fails the sanity check: {'; '.join(problems)}"
    if problem.is_classifier:
        return None
    _, clipped = predict_with_count(model, data, problem, source="promotion data")
    share = clipped / max(len(data), 1)
    if share > max_clipped_share:
        low, high = (f"{bound:g}" for bound in problem.target_range)
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
            (f"champion_{decision.metric}", decision.champion_score),
            (f"challenger_{decision.metric}", decision.challenger_score),
            ("rows", float(decision.rows)),
        )
        if value is not None
    }
    fields = {"champion_score", "challenger_score", "rows"}
    with mlflow.start_run(run_name="promotion") as run:
        mlflow.set_tags({"decision": "promoted" if decision.promoted else "refused"})
        mlflow.log_params({k: v for k, v in asdict(decision).items() if k not in fields})
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
    metric = config.promotion.metric_name()
    champion, champion_version = load_model_by_alias(CHAMPION)
    challenger_version = get_version_by_alias(CHALLENGER)
    if challenger_version is None:
        reason = (
            "no challenger in the registry, nothing to promote: `make train` registers one "
            "(every version after the first is a challenger)"
        )
        return PromotionDecision(
            False, reason, champion_version, None, metric=metric, margin=margin
        )
    challenger, _ = load_model_by_alias(CHALLENGER)
    frame, source = recent_labelled(config, data)
    refused = PromotionDecision(
        False,
        "",
        champion_version,
        challenger_version,
        metric=metric,
        rows=len(frame),
        data=source,
        margin=margin,
    )
    if len(frame) < config.promotion.min_labelled:
        reason = f"{len(frame)} labelled rows in {source} (< {config.promotion.min_labelled})"
        return replace(refused, reason=reason)
    insane = sanity(challenger, frame, config.promotion.max_clipped_share)
    if insane is not None:
        return replace(refused, reason=insane)
    champion_score = evaluate(champion, frame)[metric]
    challenger_score = evaluate(challenger, frame)[metric]
    promoted, reason = decide(metric, champion_score, challenger_score, margin)
    if promoted:
        promote(challenger_version)
    return replace(
        refused,
        promoted=promoted,
        reason=reason,
        champion_score=champion_score,
        challenger_score=challenger_score,
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
    if decision.challenger_version is None:
        print(f"not promoted: {decision.reason}")
    else:
        verdict = "PROMOTED" if decision.promoted else "not promoted"
        print(f"challenger v{decision.challenger_version}: {verdict}. {decision.reason}")
    print(f"decision recorded in MLflow run {run_id}")
    return decision
