"""Training configuration: ``configs/training.yaml``, validated, overridable with ``--set``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..datasets import Window
from ..features import FAMILIES
from ..model import check_metric, primary_metric
from ..outcomes import MIN_TRAIN_ROWS, MIN_VALIDATION_ROWS
from ..problem import PROBLEM, Problem
from .search import space_problems

M = TypeVar("M", bound=BaseModel)

DEFAULT_CONFIG = Path("configs/training.yaml")
DEFAULT_SOURCE = "data/example"


class ConfigError(ValueError):
    """A configuration is missing, malformed or invalid; the message says where."""


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricChoice(StrictModel):
    """A section that names one of the task's metrics (model.METRICS); null: its primary one."""

    metric: str | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, name: str | None) -> str | None:
        return None if name is None else check_metric(name, PROBLEM)

    def metric_name(self, problem: Problem = PROBLEM) -> str:
        """The metric this section compares or watches, for problem."""
        return check_metric(self.metric or primary_metric(problem), problem)


class Selection(StrictModel):
    """Rows of a data ``source`` whose event time is in ``[start, end)`` (open sides: no bound),
    or, with ``days``, the ``days`` days up to the data's latest event time (before ``end``).

    ``source`` is a file, a folder or a glob of parquet/CSV files, local or ``s3://``; left out,
    it is ``data.source`` of the training configuration. Dates pin a window; ``days`` follows
    the data, so the same configuration fits any dataset whatever its dates.
    """

    source: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    days: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Selection:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        if self.start is not None and self.days is not None:
            raise ValueError(
                "days counts back from end or the data's latest event time: "
                "give start or days, not both"
            )
        return self

    def window(self) -> Window:
        return Window.parse(self.start, self.end, self.days)

    def location(self, default: str) -> str:
        return self.source or default

    def pinned(self, window: Window) -> Selection:
        """This selection with the dates ``window`` (as anchored by a load) fixed."""
        return self.model_copy(update={"start": window.start, "end": window.end, "days": None})


class DataConfig(StrictModel):
    """Where the training data is, and which of its rows train and validate the model."""

    source: str = DEFAULT_SOURCE
    train: Selection = Field(default_factory=Selection)
    #: Held-out rows; left out, the latest ``validation_fraction`` of ``train`` by event time.
    validation: Selection | None = None
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    seed: int = 42
    #: Fail when more than this share of the rows read break the contract (the others are set
    #: aside, counted and recorded); null: ``MAX_REJECTED_SHARE`` of contract.py (else 0.1).
    max_rejected_share: float | None = Field(default=None, ge=0.0, le=1.0)

    def training_selection(
        self, validation_start: datetime | None, shares_files: bool = False
    ) -> Selection:
        """``train``, ending where the validation rows start when it has no end of its own and
        reads the same source (or ``shares_files`` with it): a model is never validated on rows
        it trained on."""
        same_source = self.validation is not None and self.validation.location(
            self.source
        ) == self.train.location(self.source)
        overlapping = same_source or shares_files
        if self.train.end is None and overlapping and validation_start is not None:
            return self.train.model_copy(update={"end": validation_start})
        return self.train


class ModelConfig(StrictModel):
    """The model family (see ``features.FAMILIES``)."""

    family: str = "linear"

    @field_validator("family")
    @classmethod
    def _check_family(cls, family: str) -> str:
        if family not in FAMILIES:
            raise ValueError(f"unknown model family {family!r}, expected one of {list(FAMILIES)}")
        return family


class SearchConfig(StrictModel):
    """Hyperparameter search: ``budget`` trials sampled from ``space`` (or the family default),
    the best by ``metric`` on the tuning rows."""

    budget: int = Field(default=8, ge=1, le=500)
    seed: int = 42
    tuning_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    #: What the trials are compared on (a metric of the task); None: the task's primary metric.
    metric: str | None = None
    space: dict[str, list[Any]] = Field(default_factory=dict)

    def objective(self, problem: Problem = PROBLEM) -> str:
        """The metric the search optimises for ``problem`` (ValueError if it does not fit)."""
        return check_metric(self.metric or primary_metric(problem), problem)

    @field_validator("space")
    @classmethod
    def _check_space(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [name for name, values in space.items() if not values]
        if empty:
            raise ValueError(f"search space parameter(s) {empty} have no candidate values")
        return space


class MinimumRows(StrictModel):
    """Below these counts of training or validation rows a run is refused (nothing registered)."""

    train: int = Field(default=MIN_TRAIN_ROWS, ge=1)
    validation: int = Field(default=MIN_VALIDATION_ROWS, ge=1)


class TrainingConfig(StrictModel):
    """Everything one training run needs."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    minimum_rows: MinimumRows = Field(default_factory=MinimumRows)

    def check(self, problem: Problem = PROBLEM, source: str = "configuration") -> TrainingConfig:
        """This configuration if it fits ``problem``'s task (its search metric and space);
        else a ConfigError naming each field that does not."""
        errors = []
        try:
            self.search.objective(problem)
        except ValueError as exc:
            errors.append(f"search.metric: {exc}")
        errors += [
            f"search.space: {found}"
            for found in space_problems(self.model.family, self.search.space, problem)
        ]
        if errors:
            lines = [f"{source}: invalid training configuration for {problem.name!r}", *errors]
            raise ConfigError("\n  ".join(lines))
        return self


def _set_dotted(tree: dict[str, Any], assignment: str) -> None:
    """Apply ``"search.budget=5"`` to a nested dict; the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects KEY=VALUE like search.budget=5, got {assignment!r}")
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section")
        node = child
    node[leaf] = yaml.safe_load(raw) if raw.strip() else None


def format_errors(error: ValidationError, source: str, what: str = "training configuration") -> str:
    """One line per invalid field, named by its dotted path (other configs reuse this)."""
    lines = [f"{source}: invalid {what}"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def read_yaml(path: str | Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The mapping in ``path`` (None: empty) with ``--set`` overrides applied."""
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: configuration file not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        tree = loaded
    for assignment in overrides:
        _set_dotted(tree, assignment)
    return tree


def load_yaml(
    model: type[M],
    path: str | Path | None,
    overrides: Iterable[str] = (),
    what: str = "configuration",
) -> M:
    """Read ``path`` (None: the model's defaults), apply overrides and validate strictly.

    The one loader of every YAML config (training, monitoring, retraining policy).
    """
    source = "defaults" if path is None else str(path)
    try:
        return model.model_validate(read_yaml(path, overrides))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, what)) from None


def load_config(
    path: str | Path | None = DEFAULT_CONFIG, overrides: Iterable[str] = ()
) -> TrainingConfig:
    """The training configuration at ``path`` (None: built-in defaults) with ``overrides``,
    checked against the contract's task."""
    config = load_yaml(TrainingConfig, path, overrides, "training configuration")
    return config.check(PROBLEM, "defaults" if path is None else str(path))
