"""The training pipeline as a Prefect flow: load -> features -> tune -> train -> evaluate ->
log -> register -> alias.

Each task is a plain function underneath (``task.fn``), testable without a Prefect server.
MLflow calls name their run explicitly, so tasks may run in any thread. Entry points call
``environment.set_offline_defaults()`` before importing this module.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
import numpy as np
import numpy.typing as npt
import pandas as pd
import skops.io
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas
from mlflow.models import infer_signature
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from .. import datasets
from ..datasets import Lineage
from ..features import build_pipeline
from ..model import evaluate, scores
from ..problem import PROBLEM, Problem
from ..quality import Rejects
from ..trainability import TrainingRefused, baseline, check_metrics, check_rows
from . import environment, plots, registry, tracking
from .config import DataConfig, TrainingConfig
from .search import best_trial, sample_trials

MODEL_ARTIFACT = "model"
# Packages the logged model needs to load; explicit, so MLflow does not spend seconds inferring.
MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy")

Targets = npt.NDArray[Any]  # values (regression) or class labels


@dataclass(frozen=True)
class TrainingData:
    """Validated, labelled training and validation rows, and where each came from."""

    train: pd.DataFrame = field(repr=False)
    validation: pd.DataFrame = field(repr=False)
    train_lineage: Lineage
    #: None when the validation rows were split off the training rows.
    validation_lineage: Lineage | None
    validation_fraction: float

    @property
    def kind(self) -> str:
        """``generated`` if any file was written by a generator, else ``file``."""
        lineages = [self.train_lineage, self.validation_lineage]
        return "generated" if any(x is not None and x.generated for x in lineages) else "file"

    @property
    def sha256(self) -> str:
        """One digest of every file read, in order (equal data, equal digest)."""
        files = self.train_lineage.files + (
            self.validation_lineage.files if self.validation_lineage else ()
        )
        return hashlib.sha256("".join(f.sha256 for f in files).encode()).hexdigest()

    def validation_window(self) -> str:
        if self.validation_lineage is None:
            return f"latest {self.validation_fraction:g} of train"
        return self.validation_lineage.window

    def as_dict(self) -> dict[str, Any]:
        """The lineage logged as ``data/lineage.json``."""
        validation: dict[str, Any] = (
            self.validation_lineage.as_dict()
            if self.validation_lineage is not None
            else {"split_from": "train", "validation_fraction": self.validation_fraction}
        )
        return {
            "kind": self.kind,
            "sha256": self.sha256,
            "train": {**self.train_lineage.as_dict(), "rows": len(self.train)},
            "validation": {**validation, "rows": len(self.validation)},
        }

    def as_params(self) -> dict[str, str | int]:
        """Run params: where the data is, which rows, how many (files are in the artifact)."""
        validation_source = (
            self.validation_lineage.location if self.validation_lineage else "(split)"
        )
        return {
            "data.kind": self.kind,
            "data.source": self.train_lineage.location,
            "data.train.window": self.train_lineage.window,
            "data.validation.source": validation_source,
            "data.validation.window": self.validation_window(),
            "data.train_rows": len(self.train),
            "data.validation_rows": len(self.validation),
            "data.files": len(self.train_lineage.files)
            + len(self.validation_lineage.files if self.validation_lineage else ()),
            "data.sha256": self.sha256,
        }

    def rejects(self) -> dict[str, Rejects]:
        """The rows set aside by side (``train``; ``validation`` when read on its own)."""
        sides = {"train": self.train_lineage.rejects}
        if self.validation_lineage is not None:
            sides["validation"] = self.validation_lineage.rejects
        return sides

    def rejects_metrics(self) -> dict[str, float]:
        """Rows read and set aside per side, and per check (``data.train.rejected.<check>``)."""
        metrics: dict[str, float] = {}
        for side, rejects in self.rejects().items():
            metrics[f"data.{side}.rows_read"] = float(rejects.rows)
            metrics[f"data.{side}.rows_rejected"] = float(rejects.rejected)
            for check, count in rejects.by_check().items():
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", check).strip("_")
                metrics[f"data.{side}.rejected.{name}"] = float(count)
        return metrics

    def summary_lines(self) -> list[str]:
        """What was set aside, for the command's output."""
        return [
            line
            for side, rejects in self.rejects().items()
            for line in rejects.summary_lines(f"{side} data")
        ]

    def tags(self) -> dict[str, str]:
        """Run tags, searchable in the MLflow UI (``tags.data.kind = 'generated'``)."""
        return {
            "data.kind": self.kind,
            "data.source": self.train_lineage.location,
            "data.sha256": self.sha256,
        }


@dataclass(frozen=True)
class Features:
    """Model inputs and targets: a fit/tune split of the training rows, and validation."""

    x_train: pd.DataFrame = field(repr=False)
    y_train: Targets = field(repr=False)
    x_fit: pd.DataFrame = field(repr=False)
    y_fit: Targets = field(repr=False)
    x_tune: pd.DataFrame = field(repr=False)
    y_tune: Targets = field(repr=False)
    x_validation: pd.DataFrame = field(repr=False)
    y_validation: Targets = field(repr=False)

    def tuning_rows(self, problem: Problem = PROBLEM) -> pd.DataFrame:
        """The tuning rows with their target, as :func:`model.evaluate` takes them."""
        return self.x_tune.assign(**{problem.target.name: self.y_tune})


@dataclass(frozen=True)
class TrainingResult:
    """Outcome of a successful training run."""

    run_id: str
    model_version: int
    alias: str | None  # None when the caller asked for no alias
    metrics: dict[str, float]
    #: What the run should not hide (a regressor no better than the training mean).
    warnings: tuple[str, ...] = ()


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


@task(name="load data", cache_policy=NO_CACHE)
def load_data(data: DataConfig, problem: Problem = PROBLEM) -> TrainingData:
    """Read, validate and label the training and validation windows of ``data.source``.

    Without a validation window the latest rows by event time are held out (without an event
    time: a random share, stratified by class for classifiers). A window given in ``days`` is
    anchored to the data's latest event time; an open-ended training window of the validation
    rows' source ends where they start. Missing files are an error naming them; bad rows stop
    the run here, before anything is logged or registered.
    """
    limit = data.max_rejected_share
    validation_lineage = None
    if data.validation is not None:
        validation, validation_lineage = datasets.load(
            data.validation.location(data.source),
            data.validation.window(),
            problem=problem,
            max_rejected_share=limit,
        )
    start = None if validation_lineage is None else validation_lineage.selected.start
    if validation_lineage is not None and start is None and problem.event_time is not None:
        start = validation[problem.event_time].min()  # an open window starts at its rows
    shared = validation_lineage is not None and bool(
        {f.path for f in validation_lineage.files}
        & set(datasets.resolve(data.train.location(data.source)))
    )
    selection = data.training_selection(
        None if start is None else start.to_pydatetime(), shares_files=shared
    )
    train, train_lineage = datasets.load(
        selection.location(data.source),
        selection.window(),
        problem=problem,
        max_rejected_share=limit,
    )
    if validation_lineage is None:
        train, validation = datasets.split(train, data.validation_fraction, data.seed, problem)
    return TrainingData(
        train, validation, train_lineage, validation_lineage, data.validation_fraction
    )


def pinned(config: TrainingConfig, data: TrainingData) -> TrainingConfig:
    """``config`` with the windows its rows were selected by as dates: what the run logs, so
    that monitoring's reference is the rows the model trained on, whatever the data gains."""
    pinned_data = config.data.model_copy(
        update={
            "train": config.data.train.pinned(data.train_lineage.selected),
            "validation": None
            if config.data.validation is None or data.validation_lineage is None
            else config.data.validation.pinned(data.validation_lineage.selected),
        }
    )
    return config.model_copy(update={"data": pinned_data})


def _targets(frame: pd.DataFrame, problem: Problem) -> Targets:
    """The labelled target column: float values, or class labels for classifiers."""
    column = frame[problem.target.name]
    return column.to_numpy() if problem.is_classifier else column.to_numpy(dtype="float64")


def _stratify(labels: Targets, tuning_fraction: float, problem: Problem) -> Targets | None:
    """Labels to stratify the tuning split by: a classifier's, when every class can be split."""
    if not problem.is_classifier:
        return None
    counts = pd.Series(labels).value_counts()
    held_out = round(len(labels) * tuning_fraction)
    splittable = counts.min() >= 2 and len(counts) <= min(held_out, len(labels) - held_out)
    return labels if splittable else None


@task(name="prepare features", cache_policy=NO_CACHE)
def make_features(
    data: TrainingData, tuning_fraction: float, seed: int, problem: Problem = PROBLEM
) -> Features:
    """Select the model inputs; hold out a tuning split of the training rows (stratified by
    class for classifiers)."""
    x_train = problem.feature_frame(data.train)
    y_train = _targets(data.train, problem)
    x_fit, x_tune, y_fit, y_tune = train_test_split(
        x_train,
        y_train,
        test_size=tuning_fraction,
        random_state=seed,
        stratify=_stratify(y_train, tuning_fraction, problem),
    )
    return Features(
        x_train=x_train,
        y_train=y_train,
        x_fit=x_fit,
        y_fit=y_fit,
        x_tune=x_tune,
        y_tune=y_tune,
        x_validation=problem.feature_frame(data.validation),
        y_validation=_targets(data.validation, problem),
    )


@task(name="tune hyperparameters", cache_policy=NO_CACHE)
def tune(
    features: Features, config: TrainingConfig, run_id: str, problem: Problem = PROBLEM
) -> dict[str, Any]:
    """Try ``search.budget`` parameter sets, each a nested MLflow run with the task's metrics on
    the tuning rows; return the set best by ``search.metric`` (in its direction)."""
    search, family = config.search, config.model.family
    objective = search.objective(problem)
    trials = sample_trials(family, search.budget, search.seed, search.space or None, problem)
    tuning_rows = features.tuning_rows(problem)
    found: list[float] = []
    with mlflow.start_run(run_id=run_id):
        for number, params in enumerate(trials):
            with mlflow.start_run(run_name=f"trial-{number:03d}", nested=True):
                model = build_pipeline(family, params, problem)
                model.fit(features.x_fit, features.y_fit)
                metrics = evaluate(model, tuning_rows, problem)
                mlflow.log_params({"family": family, **params})
                mlflow.log_metrics({f"tune_{name}": value for name, value in metrics.items()})
                found.append(metrics[objective])
        best = best_trial(objective, found)
        mlflow.log_metrics({f"tune_{objective}": found[best], "trials": float(len(trials))})
    return trials[best]


@task(name="train best model", cache_policy=NO_CACHE)
def train_best(
    features: Features, family: str, params: dict[str, Any], problem: Problem = PROBLEM
) -> Pipeline:
    """Fit the best parameter set on all training rows."""
    return build_pipeline(family, params, problem).fit(features.x_train, features.y_train)


@task(name="evaluate on the held-out rows", cache_policy=NO_CACHE)
def evaluate_model(
    model: Pipeline, data: TrainingData, problem: Problem = PROBLEM
) -> dict[str, float]:
    """The task's metrics on the validation rows (see ``model.evaluate``)."""
    return evaluate(model, data.validation, problem)


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


def _log_plots(model: Pipeline, data: TrainingData, problem: Problem) -> None:
    """Figures (and their tables) of the model on the validation rows, under ``plots/``."""
    found = scores(model, data.validation, problem)
    if problem.is_classifier:
        assert found.probabilities is not None, "scores() gives classifiers' probabilities"
        confusion = plots.confusion_table(found.truth, found.predicted, problem)
        mlflow.log_figure(plots.confusion_figure(confusion), "plots/confusion_matrix.png")
        mlflow.log_table(confusion.reset_index(), "plots/confusion_matrix.json")
        calibration = plots.calibration_table(found.truth, found.probabilities, problem)
        mlflow.log_figure(plots.calibration_figure(calibration, problem), "plots/calibration.png")
        mlflow.log_table(calibration, "plots/calibration.json")
        return
    truth, predicted = found.truth, np.asarray(found.predicted, dtype="float64")
    mlflow.log_figure(
        plots.predicted_vs_actual(truth, predicted, problem), "plots/predicted_vs_actual.png"
    )
    mlflow.log_figure(plots.residuals(truth, predicted, problem), "plots/residuals.png")
    features = problem.feature_frame(data.validation)
    table = plots.error_by_bucket(features, truth, predicted, problem)
    mlflow.log_figure(plots.error_by_bucket_figure(table, problem), "plots/error_by_bucket.png")
    mlflow.log_table(table.reset_index(), "plots/error_by_bucket.json")


def _log_datasets(data: TrainingData, problem: Problem) -> None:
    """The training and validation rows as MLflow dataset inputs, named by their location."""
    target = problem.target.name
    validation = data.validation_lineage or data.train_lineage
    for context, frame, lineage, window in [
        ("training", data.train, data.train_lineage, data.train_lineage.window),
        ("validation", data.validation, validation, data.validation_window()),
    ]:
        source = lineage.location
        if "://" not in source:  # a local path: absolute, so the run says where it was
            source = str(Path(source).resolve())
        with warnings.catch_warnings():
            environment.mute_known_noise()
            dataset = from_pandas(
                frame, source=source, name=f"{lineage.location} {window}", targets=target
            )
        mlflow.log_input(dataset, context=context)


def _log_rejects(data: TrainingData) -> None:
    """Counts of the rows set aside as metrics; their files under ``data/rejects/``."""
    mlflow.log_metrics(data.rejects_metrics())
    for rejects in data.rejects().values():
        if rejects.path is not None:
            mlflow.log_artifact(str(rejects.path), "data/rejects")


@task(name="log run", cache_policy=NO_CACHE)
def log_run(
    run_id: str,
    config: TrainingConfig,
    data: TrainingData,
    features: Features,
    params: dict[str, Any],
    model: Pipeline,
    metrics: dict[str, float],
    problem: Problem = PROBLEM,
) -> None:
    """Log params, metrics, the data lineage, plots and the model (signature, input example)."""
    search = config.search
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params({"family": config.model.family, **params, **data.as_params()})
        mlflow.log_params(
            {
                "task": problem.task,
                "search.budget": search.budget,
                "search.seed": search.seed,
                "search.metric": search.objective(problem),
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_dict(data.as_dict(), "data/lineage.json")
        _log_rejects(data)
        mlflow.log_dict(pinned(config, data).model_dump(mode="json"), "config/training.json")
        _log_datasets(data, problem)
        _log_plots(model, data, problem)
        _log_model(model, features)


@task(name="check the rows", cache_policy=NO_CACHE)
def check_training_rows(
    data: TrainingData, config: TrainingConfig, problem: Problem = PROBLEM
) -> None:
    """Refuse too few training or validation rows, or training rows missing a declared class."""
    minimum = config.minimum_rows
    check_rows(data.train, data.validation, minimum.train, minimum.validation, problem)


@task(name="check the metrics", cache_policy=NO_CACHE)
def check_validation(
    run_id: str, data: TrainingData, metrics: dict[str, float], problem: Problem = PROBLEM
) -> tuple[str, ...]:
    """Refuse undefined validation metrics (the run is tagged ``refused`` with why); log a
    regressor's baseline (``baseline_rmse``: predicting the training mean) and return the
    warning when the model does not beat it (also the run's tag ``warning.baseline``)."""
    client = MlflowClient()
    try:
        check_metrics(metrics, data.validation, problem)
    except TrainingRefused as exc:
        client.set_tag(run_id, "refused", str(exc)[:5000])
        raise
    found = baseline(data.train, data.validation, metrics.get("rmse", float("nan")), problem)
    if found is None:
        return ()
    client.log_metric(run_id, "baseline_rmse", found.baseline_rmse)
    warning = found.warning()
    if warning is None:
        return ()
    client.set_tag(run_id, "warning.baseline", warning)
    return (warning,)


@task(name="register model", cache_policy=NO_CACHE)
def register(run_id: str, description: str = "") -> int:
    """Register the run's model as a new version; return the version number."""
    return registry.register_model(run_id, MODEL_ARTIFACT, description=description)


def _description(problem: Problem, config: TrainingConfig, metrics: dict[str, float]) -> str:
    """A registered version's description: the problem, the model and its validation score."""
    metric = config.search.objective(problem)
    return (
        f"{problem.name} ({problem.task}): {config.model.family}, "
        f"validation {metric} {metrics[metric]:.4g}"
    )


@task(name="assign alias", cache_policy=NO_CACHE)
def assign_alias(version: int) -> str:
    """``champion`` for the first version, ``challenger`` for later ones."""
    return registry.assign_initial_alias(version)


def _start_run(config: TrainingConfig, data: TrainingData, problem: Problem) -> str:
    """Open the parent MLflow run of this training and return its id."""
    experiment = mlflow.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    assert experiment is not None, "configure_tracking() creates the experiment"
    tags = {"family": config.model.family, "task": problem.task, **data.tags()}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    if flow_run.id:
        tags["prefect.flow_run_id"] = str(flow_run.id)
    run = MlflowClient().create_run(
        experiment.experiment_id, run_name=f"{problem.name}-{config.model.family}", tags=tags
    )
    return str(run.info.run_id)


@flow(name="training", log_prints=False)
def training_flow(
    config: TrainingConfig, assign_aliases: bool = True, problem: Problem | None = None
) -> TrainingResult:
    """Train, track and register a model as ``config`` says, for ``problem`` (None: the
    contract's).

    With ``assign_aliases=False`` the new version gets no alias, so nothing can serve it
    before a caller's own gate decides (level 4's retraining does that).
    """
    problem = problem or PROBLEM
    config.check(problem)
    tracking.configure_tracking()
    # bad data, too few rows or a missing class stop here: nothing is logged or registered
    data = load_data(config.data, problem)
    for line in data.summary_lines():
        print(line)
    check_training_rows(data, config, problem)
    run_id = _start_run(config, data, problem)
    client = MlflowClient()
    try:
        search = config.search
        features = make_features(data, search.tuning_fraction, search.seed, problem)
        params = tune(features, config, run_id, problem)
        model = train_best(features, config.model.family, params, problem)
        metrics = evaluate_model(model, data, problem)
        warnings = check_validation(run_id, data, metrics, problem)
        log_run(run_id, config, data, features, params, model, metrics, problem)
        version = register(run_id, _description(problem, config, metrics))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    # Last: a failed run never moves an alias.
    alias = assign_alias(version) if assign_aliases else None
    return TrainingResult(run_id, version, alias, metrics, warnings)
