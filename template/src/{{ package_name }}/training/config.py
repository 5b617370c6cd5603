"""Training configuration: ``configs/training.yaml``, validated, overridable with ``--set``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..features import FAMILIES

DEFAULT_CONFIG = Path("configs/training.yaml")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ConfigError(ValueError):
    """The training configuration is missing, malformed or invalid; the message says where."""


def parse_month(text: str) -> tuple[int, int]:
    """``"2024-01"`` -> ``(2024, 1)``."""
    match = _MONTH.match(str(text))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"expected a month as YYYY-MM, got {text!r}")
    return int(match.group(1)), int(match.group(2))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Which months to train and validate on, and how to generate missing ones."""

    dir: Path = Path("data")
    train_months: list[str] = Field(default=["2024-01"], min_length=1)
    validation_month: str = "2024-02"
    synthetic_rows: int = Field(default=100_000, ge=100)
    seed: int = 42

    @field_validator("train_months")
    @classmethod
    def _check_train_months(cls, months: list[str]) -> list[str]:
        for month in months:
            parse_month(month)
        if len(set(months)) != len(months):
            raise ValueError(f"train_months has duplicates: {months}")
        return months

    @field_validator("validation_month")
    @classmethod
    def _check_validation_month(cls, month: str) -> str:
        parse_month(month)
        return month

    @model_validator(mode="after")
    def _validation_is_held_out(self) -> DataConfig:
        if self.validation_month in self.train_months:
            raise ValueError(
                f"validation_month {self.validation_month} must not be one of the train_months"
            )
        return self


class ModelConfig(_Strict):
    """The model family (see ``features.FAMILIES``)."""

    family: str = "linear"

    @field_validator("family")
    @classmethod
    def _check_family(cls, family: str) -> str:
        if family not in FAMILIES:
            raise ValueError(f"unknown model family {family!r}, expected one of {list(FAMILIES)}")
        return family


class SearchConfig(_Strict):
    """Hyperparameter search: ``budget`` trials sampled from ``space`` (or the family default)."""

    budget: int = Field(default=8, ge=1, le=500)
    seed: int = 42
    tuning_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    space: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("space")
    @classmethod
    def _check_space(cls, space: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [name for name, values in space.items() if not values]
        if empty:
            raise ValueError(f"search space parameter(s) {empty} have no candidate values")
        return space


class TrainingConfig(_Strict):
    """Everything one training run needs."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)


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


def load_config(
    path: str | Path | None = DEFAULT_CONFIG, overrides: Iterable[str] = ()
) -> TrainingConfig:
    """Read ``path`` (None: built-in defaults), apply ``overrides`` and validate."""
    tree: dict[str, Any] = {}
    source = "defaults" if path is None else str(path)
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
    try:
        return TrainingConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source)) from None
