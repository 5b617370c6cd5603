"""Moving aliases for the loop: promote, refuse, roll back; and what a version was trained on.

The alias moves are level 3's (``monitoring.promotion``): ``champion`` is what the service
answers with, ``previous-champion`` the one it replaced, and a tag on each promoted version names
its predecessor, so a rollback can go back more than one step. The loop adds a status tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.pipeline import Pipeline

from ..monitoring import promotion as gated
from ..monitoring.promotion import PREVIOUS_CHAMPION, PREVIOUS_TAG, drop_alias
from ..training.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    ModelNotFoundError,
    get_version_by_alias,
    set_alias,
)

STATUS_TAG: Final = "automation.status"
#: The training configuration a run logs (level 2's flow): what the model was trained on.
CONFIG_ARTIFACT: Final = "config/training.json"


class RollbackError(RuntimeError):
    """There is no earlier champion to go back to."""


@dataclass(frozen=True)
class Lineage:
    """What a model version was trained and validated on (from its MLflow run), and the
    metrics it logged (the task's, by name, on its validation rows)."""

    version: int
    run_id: str
    training: dict[str, Any] | None  # the run's training configuration, when it logged one
    metrics: dict[str, float]


def lineage(version: int, name: str = MODEL_NAME) -> Lineage:
    """The training configuration and validation metrics of ``version``."""
    client = MlflowClient()
    run_id = client.get_model_version(name, str(version)).run_id or ""
    if not run_id:
        return Lineage(version, run_id, None, {})
    metrics = dict(client.get_run(run_id).data.metrics)
    try:
        training = mlflow.artifacts.load_dict(f"runs:/{run_id}/{CONFIG_ARTIFACT}")
    except (MlflowException, OSError):  # a run logged without its configuration
        training = None
    return Lineage(version, run_id, training, metrics)


def load_version(version: int, name: str = MODEL_NAME) -> Pipeline:
    """The scikit-learn pipeline of ``version``."""
    model = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    if not isinstance(model, Pipeline):
        raise ModelNotFoundError(f"{name} version {version} is not a Pipeline")
    return model


def _tag(version: int, key: str, value: str, name: str) -> None:
    MlflowClient().set_model_version_tag(name, str(version), key, value)


def promote(version: int, name: str = MODEL_NAME) -> int | None:
    """Make ``version`` the champion (level 3's alias move); return the champion it replaced."""
    _tag(version, STATUS_TAG, "promoted", name)
    return gated.promote(version, name)


def refuse(version: int, reason: str, name: str = MODEL_NAME) -> None:
    """Keep ``version`` out of service: tag it and drop its ``challenger`` alias."""
    _tag(version, STATUS_TAG, f"refused: {reason}"[:5000], name)
    drop_alias(CHALLENGER, version, name)


def rollback(name: str = MODEL_NAME) -> tuple[int, int]:
    """Point ``champion`` back at ``previous-champion``; return (from, to) versions."""
    current = get_version_by_alias(CHAMPION, name)
    target = get_version_by_alias(PREVIOUS_CHAMPION, name)
    if current is None or target is None:
        raise RollbackError(
            f"nothing to roll back to: {CHAMPION}={current}, {PREVIOUS_CHAMPION}={target}"
        )
    client = MlflowClient()
    _tag(current, STATUS_TAG, f"rolled back to version {target}", name)
    set_alias(CHAMPION, target, name)
    earlier = client.get_model_version(name, str(target)).tags.get(PREVIOUS_TAG)
    if earlier:
        set_alias(PREVIOUS_CHAMPION, int(earlier), name)
    else:
        client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    return current, target
