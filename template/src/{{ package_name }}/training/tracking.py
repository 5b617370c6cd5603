"""Where runs go: a SQLite store and an artifact folder in the project, or a tracking server.

``MLFLOW_TRACKING_URI`` points the same code at a server (``http://mlflow:5000``) and
``MLFLOW_ARTIFACT_LOCATION`` at another artifact store (``s3://bucket/mlflow``).
"""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path
from typing import Final

from .environment import set_offline_defaults, state_dir

_PACKAGE: Final = __name__.split(".")[0]


@cache
def _project_slug() -> str:
    """The distribution name of this package (its ``pyproject.toml`` name)."""
    try:  # named like the package (as generated): found without reading every installed one
        return str(distribution(_PACKAGE).metadata["Name"])
    except PackageNotFoundError:
        pass
    names = packages_distributions().get(_PACKAGE, [])
    return names[0] if names else _PACKAGE.replace("_", "-")


#: MLflow experiment of the training runs (``MLFLOW_EXPERIMENT_NAME`` overrides it).
EXPERIMENT_NAME: Final = os.environ.get("MLFLOW_EXPERIMENT_NAME") or _project_slug()


def configure_tracking(project_dir: Path | None = None) -> str:
    """Set offline defaults, the tracking URI and the experiment; return the tracking URI."""
    set_offline_defaults(project_dir)
    import mlflow

    local = state_dir(project_dir)
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    artifacts = os.environ.get("MLFLOW_ARTIFACT_LOCATION")
    if not uri:  # the embedded default: everything inside the project, git-ignored
        local.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{local / 'mlflow.db'}"
        artifacts = artifacts or (local / "artifacts").as_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT_NAME) is None:
        # A server chooses the artifact store itself unless MLFLOW_ARTIFACT_LOCATION says.
        # The experiment kind opens MLflow's UI on the model-training views, not the GenAI ones.
        kind = {"mlflow.experimentKind": "custom_model_development"}
        mlflow.create_experiment(EXPERIMENT_NAME, artifact_location=artifacts, tags=kind)
    mlflow.set_experiment(EXPERIMENT_NAME)
    return uri
