"""The model registry: versions of the project's model and the aliases that point at them.

The first version ever registered becomes ``champion``; later ones become ``challenger`` until
something promotes them (level 2 compares no metrics: promotion gates do). Aliases only:
MLflow's deprecated stages are not used. Models load as scikit-learn pipelines, so a
classifier's ``predict_proba`` is at hand.

MLflow (seconds to import) is imported by the functions that talk to the registry, so a
command that only needs this module's names and errors does not pay for it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from ..problem import PROBLEM, Problem

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModel
    from sklearn.pipeline import Pipeline

#: Registered model name (``MODEL_NAME`` in the environment overrides the package name).
MODEL_NAME: Final = os.environ.get("MODEL_NAME") or __name__.split(".")[0]
CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"


class ModelNotFoundError(LookupError):
    """The registry has no model version for the requested alias or number."""


def _logged_model(client: MlflowClient, run_id: str, artifact_path: str) -> LoggedModel:
    """The model that run ``run_id`` logged under the name ``artifact_path``."""
    experiment_id = client.get_run(run_id).info.experiment_id
    found = client.search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{artifact_path}'"
    )
    if not found:
        raise ModelNotFoundError(f"run {run_id} logged no model named {artifact_path!r}")
    return found[0]


def register_model(
    run_id: str, artifact_path: str = "model", name: str = MODEL_NAME, description: str = ""
) -> int:
    """Register the model that run ``run_id`` logged as ``artifact_path`` (with
    ``description``); return its version."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    logged = _logged_model(client, run_id, artifact_path)
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name, logged.model_uri, run_id=run_id, model_id=logged.model_id, description=description
    )
    return int(version.version)


def set_alias(alias: str, version: int, name: str = MODEL_NAME) -> None:
    """Point ``alias`` at ``version`` (moving it if it pointed elsewhere)."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, str(version))


def get_version_by_alias(alias: str, name: str = MODEL_NAME) -> int | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise


def assign_initial_alias(version: int, name: str = MODEL_NAME) -> str:
    """Give a new version its alias: ``champion`` if there is none yet, else ``challenger``."""
    alias = CHAMPION if get_version_by_alias(CHAMPION, name) is None else CHALLENGER
    set_alias(alias, version, name)
    return alias


def load_model_version(version: int, name: str = MODEL_NAME) -> Pipeline:
    """Load the scikit-learn pipeline of registered ``version``."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from sklearn.pipeline import Pipeline

    try:
        model = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            raise ModelNotFoundError(
                f"registered model {name!r} has no version {version} at {mlflow.get_tracking_uri()}"
            ) from None
        raise
    if not isinstance(model, Pipeline):
        raise ModelNotFoundError(f"{name} version {version} is not a scikit-learn Pipeline")
    return model


def check_task(model: Pipeline, version: int, problem: Problem = PROBLEM) -> None:
    """Refuse a registered model that does not fit the contract: a regressor for a
    classification task and vice versa, or a classifier of classes the contract does not declare.
    """
    from sklearn.base import is_classifier

    again = "train a model for it (make train)"
    if is_classifier(model) != problem.is_classifier:
        kind = "classifier" if is_classifier(model) else "regressor"
        raise ModelNotFoundError(
            f"version {version} of {MODEL_NAME!r} is a {kind}, but contract.py declares a "
            f"{problem.task} task; {again}"
        )
    if problem.is_classifier:
        learned = model.classes_.tolist()
        if not set(learned) <= set(problem.classes):
            raise ModelNotFoundError(
                f"version {version} of {MODEL_NAME!r} predicts the classes {learned}, but "
                f"contract.py declares {list(problem.classes)}; {again}"
            )


def load_model_by_alias(alias: str, name: str = MODEL_NAME) -> tuple[Pipeline, int]:
    """Load the scikit-learn pipeline ``alias`` points at; return it with its version number."""
    import mlflow

    version = get_version_by_alias(alias, name)
    if version is None:
        raise ModelNotFoundError(
            f"registered model {name!r} has no version with alias {alias!r} "
            f"at {mlflow.get_tracking_uri()}; run `make train` first"
        )
    return load_model_version(version, name), version
