"""The promotion flow: champion and challenger on the same labelled data; the challenger
becomes champion only when its predictions are sane (``model.sanity_problems``: finite values,
or a classifier predicting more than one class with probabilities that are probabilities; a
regressor with few predictions outside the target's range) and it beats the champion on the
configured metric (the task's primary one: rmse, log_loss), in its direction, by more than the
margin and than chance: the paired bootstrap interval of its improvement over the same rows
(``compare``) must lie wholly above the margin.

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
from ..model import METRICS, Scores, sanity_problems, scores
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
from .checks import resampled
from .config import DEFAULT_CONFIG, MonitoringConfig, Selection, load_config
from .data import FEATURES, TARGET, read_labelled

#: Where the champion before the last promotion stays reachable (for a rollback).
PREVIOUS_CHAMPION = "previous-champion"
#: Version tag: the champion a version replaced (the chain a rollback walks back).
PREVIOUS_TAG = "promotion.previous_champion"


@dataclass(frozen=True)
class Comparison:
    """Challenger against champion on the same labelled rows: their scores and the
    ``confidence`` bootstrap interval [low, high] of the challenger's improvement (its score's
    difference from the champion's, in the metric's direction: positive is better)."""

    metric: str
    champion: float
    challenger: float
    low: float
    high: float
    rows: int
    confidence: float

    @property
    def improvement(self) -> float:
        difference = self.challenger - self.champion
        return difference if METRICS[self.metric].greater_is_better else -difference

    def interval(self) -> str:
        return (
            f"improvement {self.improvement:.3g}, {self.confidence:.0%} interval "
            f"[{self.low:.3g}, {self.high:.3g}] over {self.rows} rows"
        )

    def numbers(self, prefix: str = "") -> dict[str, float]:
        """The comparison as metrics (``prefix`` before each name)."""
        return {
            f"{prefix}champion_{self.metric}": self.champion,
            f"{prefix}challenger_{self.metric}": self.challenger,
            f"{prefix}improvement": self.improvement,
            f"{prefix}improvement_low": self.low,
            f"{prefix}improvement_high": self.high,
        }


def compare(metric: str, champion: Scores, challenger: Scores, confidence: float) -> Comparison:
    """Both models' ``metric`` on the same rows and the interval of the challenger's improvement:
    a seeded bootstrap over the rows, both scored on the same resample in each round (paired),
    whose ``confidence`` central share of improvements is the interval (a resample that leaves
    a metric undefined, such as an AUC of one class, counts as no improvement)."""
    function = METRICS[metric].function
    before, after = resampled(metric, champion, challenger)
    sign = 1.0 if METRICS[metric].greater_is_better else -1.0
    improvements = np.nan_to_num(sign * (after - before), nan=0.0)
    tail = (1 - confidence) / 2
    low, high = np.quantile(improvements, [tail, 1 - tail])
    return Comparison(
        metric,
        function(champion),
        function(challenger),
        float(low) + 0.0,  # never -0
        float(high) + 0.0,
        len(champion.truth),
        confidence,
    )


def needed(comparison: Comparison, margin: float) -> float:
    """The improvement the whole interval must exceed: ``margin`` of the champion's score."""
    return abs(comparison.champion) * margin


def decide(comparison: Comparison, margin: float) -> tuple[bool, str]:
    """Promote only if the whole interval of the challenger's improvement lies above the
    ``margin`` (relative to the champion's score): better than the champion beyond chance."""
    numbers = (
        f"challenger {comparison.metric} {comparison.challenger:.4g} vs champion "
        f"{comparison.champion:.4g}: {comparison.interval()}"
    )
    bar = needed(comparison, margin)
    if comparison.low > bar:
        return True, f"{numbers}, wholly above the {margin:.1%} margin ({bar:.3g})"
    return False, (
        f"{numbers} reaches the {margin:.1%} margin ({bar:.3g}): "
        f"not better beyond chance on these rows"
    )


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
    comparison: Comparison | None = None


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
    """Log the decision as an MLflow run (the comparison's scores and interval as metrics) and
    tag the challenger's version; return the run id."""
    compared = decision.comparison
    metrics = {"rows": float(decision.rows), **(compared.numbers() if compared else {})}
    fields = {"champion_score", "challenger_score", "rows", "comparison"}
    verdict = "promoted" if decision.promoted else "refused"
    with mlflow.start_run(run_name="promotion") as run:
        mlflow.set_tags({"decision": verdict})
        mlflow.log_params({k: v for k, v in asdict(decision).items() if k not in fields})
        if compared is not None:
            mlflow.log_param("confidence", compared.confidence)
        mlflow.log_metrics(metrics)
    if decision.challenger_version is not None:
        client = MlflowClient()
        version = str(decision.challenger_version)
        client.set_model_version_tag(MODEL_NAME, version, "promotion.decision", verdict)
        client.set_model_version_tag(MODEL_NAME, version, "promotion.reason", decision.reason)
        if compared is not None:
            interval = f"[{compared.low:.6g}, {compared.high:.6g}]"
            client.set_model_version_tag(MODEL_NAME, version, "promotion.interval", interval)
    return str(run.info.run_id)


def evaluate_promotion(
    config: MonitoringConfig, data: Selection | None = None
) -> PromotionDecision:
    """Compare challenger and champion; promote if the challenger is sane and its improvement's
    interval lies above the margin."""
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
    confidence = config.promotion.confidence
    compared = compare(metric, scores(champion, frame), scores(challenger, frame), confidence)
    promoted, reason = decide(compared, margin)
    if promoted:
        promote(challenger_version)
    return replace(
        refused,
        promoted=promoted,
        reason=reason,
        champion_score=compared.champion,
        challenger_score=compared.challenger,
        comparison=compared,
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
