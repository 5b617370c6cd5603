"""The promotion flow: champion and challenger on the same recent labelled data; the
challenger becomes champion only when its RMSE beats the champion's by the margin.

The decision and its numbers are recorded in MLflow (a ``promotion`` run, and tags on the
challenger's model version). A running service picks up a new champion when it restarts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from ..training import environment

environment.set_offline_defaults()

import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from prefect import flow  # noqa: E402

from ..contract import load_month  # noqa: E402
from ..model import evaluate  # noqa: E402
from ..serving.store import make_engine  # noqa: E402
from ..training.config import parse_month  # noqa: E402
from ..training.registry import (  # noqa: E402
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    get_version_by_alias,
    load_model_by_alias,
    set_alias,
)
from ..training.tracking import configure_tracking  # noqa: E402
from .config import DEFAULT_CONFIG, MonitoringConfig, load_config  # noqa: E402
from .data import labelled, read_window  # noqa: E402

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


def recent_labelled(config: MonitoringConfig, month: str | None) -> tuple[pd.DataFrame, str]:
    """Labelled data both models are scored on: a month of data/, or the labelled log."""
    if month is not None:
        frame = load_month(config.reference.data_dir, *parse_month(month))
        return frame, f"month {month}"
    since = datetime.now(UTC) - timedelta(hours=config.promotion.window_hours)
    window = read_window(make_engine(config.log_url()), since)
    return labelled(window), f"labelled predictions of the last {config.promotion.window_hours:g} h"


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


def evaluate_promotion(config: MonitoringConfig, month: str | None) -> PromotionDecision:
    """Compare challenger and champion; promote if the challenger wins by the margin."""
    margin = config.promotion.margin
    champion, champion_version = load_model_by_alias(CHAMPION)
    challenger_version = get_version_by_alias(CHALLENGER)
    if challenger_version is None:
        reason = "no challenger in the registry: nothing to promote"
        return PromotionDecision(False, reason, champion_version, None, margin=margin)
    challenger, _ = load_model_by_alias(CHALLENGER)
    data, source = recent_labelled(config, month)
    if len(data) < config.promotion.min_labelled:
        reason = f"{len(data)} labelled rows in {source} (< {config.promotion.min_labelled})"
        return PromotionDecision(
            False,
            reason,
            champion_version,
            challenger_version,
            rows=len(data),
            data=source,
            margin=margin,
        )
    champion_rmse = evaluate(champion, data)["rmse"]
    challenger_rmse = evaluate(challenger, data)["rmse"]
    promoted, reason = decide(champion_rmse, challenger_rmse, margin)
    if promoted:
        promote(challenger_version)
    return PromotionDecision(
        promoted,
        reason,
        champion_version,
        challenger_version,
        champion_rmse,
        challenger_rmse,
        len(data),
        source,
        margin,
    )


@flow(name="promotion", log_prints=False)
def promotion_flow(
    config_path: str | None = str(DEFAULT_CONFIG), month: str | None = None
) -> PromotionDecision:
    """Gate: promote the challenger only if it beats the champion; record the decision."""
    config = load_config(config_path)
    configure_tracking()
    decision = evaluate_promotion(config, month)
    run_id = record(decision)
    verdict = "PROMOTED" if decision.promoted else "not promoted"
    print(f"challenger v{decision.challenger_version}: {verdict}. {decision.reason}")
    print(f"decision recorded in MLflow run {run_id}")
    return decision
