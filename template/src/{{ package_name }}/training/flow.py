"""The training pipeline as a Prefect flow: load -> validate -> features -> tune -> train ->
evaluate -> log -> register -> alias.

Each task is a plain function underneath (``task.fn``), testable without a Prefect server.
MLflow calls name their run explicitly, so tasks may run in any thread.
"""

from __future__ import annotations

import hashlib
import subprocess
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from . import environment

environment.set_offline_defaults()

import mlflow  # noqa: E402  (after the offline defaults)
import mlflow.sklearn  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
import pandas as pd  # noqa: E402
import skops.io  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.data.pandas_dataset import from_pandas  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402
from sklearn.metrics import root_mean_squared_error  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from ..contract import TARGET, add_target, month_file, read_trips, validate_trips  # noqa: E402
from ..features import build_pipeline, prepare_features  # noqa: E402
from ..model import evaluate  # noqa: E402
from ..synthetic import write_month  # noqa: E402
from . import plots, registry, tracking  # noqa: E402
from .config import TrainingConfig, parse_month  # noqa: E402
from .search import sample_trials  # noqa: E402

MODEL_ARTIFACT = "model"
DATASET_NAME = "yellow_tripdata"
# Packages the logged model needs to load; explicit, so MLflow does not spend seconds inferring.
MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy")

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MonthFile:
    """One month of raw trips and the file it came from."""

    month: str
    path: Path
    sha256: str
    frame: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class RawData:
    """Raw months as read from disk."""

    train: list[MonthFile]
    validation: MonthFile


@dataclass(frozen=True)
class DatasetInfo:
    """What a run trained on, logged with it: enough to find and check the exact data."""

    name: str
    train_months: list[str]
    validation_month: str
    train_rows: int
    validation_rows: int
    sha256: str
    files: list[str]

    def as_params(self) -> dict[str, str | int]:
        return {
            "data.name": self.name,
            "data.train_months": ",".join(self.train_months),
            "data.validation_month": self.validation_month,
            "data.train_rows": self.train_rows,
            "data.validation_rows": self.validation_rows,
            "data.sha256": self.sha256,
        }


@dataclass(frozen=True)
class TrainingData:
    """Validated, labelled training and validation trips."""

    train: pd.DataFrame = field(repr=False)
    validation: pd.DataFrame = field(repr=False)
    info: DatasetInfo


@dataclass(frozen=True)
class Features:
    """Model inputs and targets: a fit/tune split of the training months, and validation."""

    x_train: pd.DataFrame = field(repr=False)
    y_train: Floats = field(repr=False)
    x_fit: pd.DataFrame = field(repr=False)
    y_fit: Floats = field(repr=False)
    x_tune: pd.DataFrame = field(repr=False)
    y_tune: Floats = field(repr=False)
    x_validation: pd.DataFrame = field(repr=False)
    y_validation: Floats = field(repr=False)


@dataclass(frozen=True)
class TrainingResult:
    """Outcome of a successful training run."""

    run_id: str
    model_version: int
    alias: str | None  # None when the caller asked for no alias
    metrics: dict[str, float]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit() -> str | None:
    """Commit of the working tree, with ``-dirty`` if it has changes; None outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def _read_month(config: TrainingConfig, month: str) -> MonthFile:
    data = config.data
    year, number = parse_month(month)
    path = month_file(data.dir, year, number)
    if not path.exists():
        write_month(data.dir, year, number, data.synthetic_rows, seed=data.seed)
        print(f"{path} not found: generated {data.synthetic_rows} synthetic trips")
    return MonthFile(month, path, file_sha256(path), read_trips(path))


@task(name="load data", cache_policy=NO_CACHE)
def load_data(config: TrainingConfig) -> RawData:
    """Read the train and validation months, generating synthetic ones that are missing."""
    train = [_read_month(config, month) for month in config.data.train_months]
    return RawData(train, _read_month(config, config.data.validation_month))


@task(name="validate data", cache_policy=NO_CACHE)
def validate_data(raw: RawData) -> TrainingData:
    """Check every month against the data contract and label it with the target."""

    def clean(month: MonthFile) -> pd.DataFrame:
        source = str(month.path)
        return add_target(validate_trips(month.frame, source=source), source=source)

    train = pd.concat([clean(month) for month in raw.train], ignore_index=True)
    validation = clean(raw.validation)
    files = [*raw.train, raw.validation]
    combined = hashlib.sha256("".join(month.sha256 for month in files).encode()).hexdigest()
    info = DatasetInfo(
        name=DATASET_NAME,
        train_months=[month.month for month in raw.train],
        validation_month=raw.validation.month,
        train_rows=len(train),
        validation_rows=len(validation),
        sha256=combined,
        files=[f"{month.path.name} sha256={month.sha256}" for month in files],
    )
    return TrainingData(train, validation, info)


@task(name="prepare features", cache_policy=NO_CACHE)
def make_features(data: TrainingData, tuning_fraction: float, seed: int) -> Features:
    """Select the model inputs; hold out a tuning split of the training months."""
    x_train = prepare_features(data.train)
    y_train = data.train[TARGET].to_numpy(dtype="float64")
    x_fit, x_tune, y_fit, y_tune = train_test_split(
        x_train, y_train, test_size=tuning_fraction, random_state=seed
    )
    return Features(
        x_train=x_train,
        y_train=y_train,
        x_fit=x_fit,
        y_fit=y_fit,
        x_tune=x_tune,
        y_tune=y_tune,
        x_validation=prepare_features(data.validation),
        y_validation=data.validation[TARGET].to_numpy(dtype="float64"),
    )


@task(name="tune hyperparameters", cache_policy=NO_CACHE)
def tune(features: Features, config: TrainingConfig, run_id: str) -> dict[str, Any]:
    """Try ``search.budget`` parameter sets, each a nested MLflow run; return the best set."""
    search, family = config.search, config.model.family
    trials = sample_trials(family, search.budget, search.seed, search.space or None)
    scores: list[float] = []
    with mlflow.start_run(run_id=run_id):
        for number, params in enumerate(trials):
            with mlflow.start_run(run_name=f"trial-{number:03d}", nested=True):
                model = build_pipeline(family, params).fit(features.x_fit, features.y_fit)
                rmse = float(
                    root_mean_squared_error(features.y_tune, model.predict(features.x_tune))
                )
                mlflow.log_params({"family": family, **params})
                mlflow.log_metric("tune_rmse", rmse)
                scores.append(rmse)
        best = int(np.argmin(scores))
        mlflow.log_metrics({"tune_rmse": scores[best], "trials": float(len(trials))})
    return trials[best]


@task(name="train best model", cache_policy=NO_CACHE)
def train_best(features: Features, family: str, params: dict[str, Any]) -> Pipeline:
    """Fit the best parameter set on all training months."""
    return build_pipeline(family, params).fit(features.x_train, features.y_train)


@task(name="evaluate on the held-out month", cache_policy=NO_CACHE)
def evaluate_model(model: Pipeline, data: TrainingData) -> dict[str, float]:
    """RMSE, MAE and R2 on the validation month."""
    return evaluate(model, data.validation)


def _pip_requirements() -> list[str]:
    return [f"{name}=={installed_version(name)}" for name in MODEL_REQUIREMENTS]


def _log_model(model: Pipeline, features: Features) -> None:
    example = features.x_validation.head(5)
    signature = infer_signature(example, model.predict(example))
    # skops refuses to load types it does not know; these are the ones this pipeline uses,
    # trusted because this run just built them.
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    with warnings.catch_warnings():
        environment.mute_known_noise()
        mlflow.sklearn.log_model(
            model,
            name=MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            pip_requirements=_pip_requirements(),
            skops_trusted_types=trusted,
        )


def _log_plots(model: Pipeline, features: Features) -> None:
    predicted = np.asarray(model.predict(features.x_validation), dtype="float64")
    truth = features.y_validation
    table = plots.error_by_distance(features.x_validation, truth, predicted)
    mlflow.log_figure(plots.predicted_vs_actual(truth, predicted), "plots/predicted_vs_actual.png")
    mlflow.log_figure(plots.residuals(truth, predicted), "plots/residuals.png")
    mlflow.log_figure(plots.error_by_distance_figure(table), "plots/error_by_distance.png")
    mlflow.log_table(table.reset_index(), "plots/error_by_distance.json")


@task(name="log run", cache_policy=NO_CACHE)
def log_run(
    run_id: str,
    config: TrainingConfig,
    data: TrainingData,
    features: Features,
    params: dict[str, Any],
    model: Pipeline,
    metrics: dict[str, float],
) -> None:
    """Log params, metrics, the dataset, plots and the model (signature, input example)."""
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params({"family": config.model.family, **params, **data.info.as_params()})
        mlflow.log_params(
            {"search.budget": config.search.budget, "search.seed": config.search.seed}
        )
        mlflow.log_metrics(metrics)
        mlflow.log_text("\n".join(data.info.files) + "\n", "data/files.txt")
        mlflow.log_dict(config.model_dump(mode="json"), "config/training.json")
        for context, frame, months in [
            ("training", data.train, data.info.train_months),
            ("validation", data.validation, [data.info.validation_month]),
        ]:
            name = f"{DATASET_NAME}_{'_'.join(months)}"
            dataset = from_pandas(frame, name=name, targets=TARGET)
            mlflow.log_input(dataset, context=context)
        _log_plots(model, features)
        _log_model(model, features)


@task(name="register model", cache_policy=NO_CACHE)
def register(run_id: str) -> int:
    """Register the run's model as a new version; return the version number."""
    return registry.register_model(run_id, MODEL_ARTIFACT)


@task(name="assign alias", cache_policy=NO_CACHE)
def assign_alias(version: int) -> str:
    """``champion`` for the first version, ``challenger`` for later ones."""
    return registry.assign_initial_alias(version)


def _start_run(config: TrainingConfig, info: DatasetInfo) -> str:
    """Open the parent MLflow run of this training and return its id."""
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    assert experiment is not None, "configure_tracking() creates the experiment"
    tags = {"family": config.model.family, "data.sha256": info.sha256}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if flow_run.id:
        tags["prefect.flow_run_id"] = str(flow_run.id)
    run = MlflowClient().create_run(
        experiment.experiment_id, run_name=f"train-{config.model.family}", tags=tags
    )
    return str(run.info.run_id)


@flow(name="training", log_prints=False)
def training_flow(config: TrainingConfig, assign_aliases: bool = True) -> TrainingResult:
    """Train, track and register a model as ``config`` says.

    With ``assign_aliases=False`` the new version gets no alias, so nothing can serve it
    before a caller's own gate decides (level 4's retraining does that).
    """
    tracking.configure_tracking()
    raw = load_data(config)
    data = validate_data(raw)  # bad data stops here: nothing is logged or registered
    run_id = _start_run(config, data.info)
    client = MlflowClient()
    try:
        features = make_features(data, config.search.tuning_fraction, config.search.seed)
        params = tune(features, config, run_id)
        model = train_best(features, config.model.family, params)
        metrics = evaluate_model(model, data)
        log_run(run_id, config, data, features, params, model, metrics)
        version = register(run_id)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    # Last: a failed run never moves an alias.
    alias = assign_alias(version) if assign_aliases else None
    return TrainingResult(run_id, version, alias, metrics)
