"""What the package knows of the problem, read from ``contract.py``: columns, roles, target.

Nothing outside ``contract.py`` names a column of the problem; everything asks ``PROBLEM``.
Validation lives here, in one place, for training, prediction, serving, scoring and monitoring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from . import contract

Role = Literal["categorical", "numeric", "event_time", "identifier", "target", "other"]
Kind = Literal["integer", "number", "string", "datetime", "boolean"]
ROLES: tuple[Role, ...] = ("categorical", "numeric", "event_time", "identifier", "target", "other")
Task = Literal["regression", "binary", "multiclass"]
TASKS: tuple[Task, ...] = ("regression", "binary", "multiclass")


class DataValidationError(ValueError):
    """Data breaks the contract; the message names the source, the column and a bad value."""


class ContractError(TypeError):
    """``contract.py`` itself is inconsistent; the message says what to fix."""


@dataclass(frozen=True)
class Column:
    """One declared column, as the rest of the package needs it."""

    name: str
    role: Role
    kind: Kind
    nullable: bool
    required: bool
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Any, ...] | None = None
    aliases: tuple[str, ...] = ()
    unit: str | None = None
    description: str | None = None
    positive: Any = None
    threshold: float | None = None

    @property
    def python_type(self) -> type:
        """The type a request field of this column has."""
        types: dict[str, type] = {
            "integer": int,
            "number": float,
            "string": str,
            "boolean": bool,
            "datetime": pd.Timestamp,
        }
        return types[self.kind]


def _kind(dtype: Any, name: str) -> Kind:
    text = str(dtype).lower()
    if "datetime" in text or "timestamp" in text:
        return "datetime"
    if "bool" in text:
        return "boolean"
    if "int" in text:
        return "integer"
    if "float" in text:
        return "number"
    if "str" in text or "object" in text or "category" in text:
        return "string"
    raise ContractError(f"contract.py: column {name!r} has unsupported dtype {dtype}")


def _bounds(column: pa.Column) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for check in column.checks:
        stats = check.statistics or {}
        if "min_value" in stats:
            found["minimum"] = float(stats["min_value"])
        if "max_value" in stats:
            found["maximum"] = float(stats["max_value"])
        if "allowed_values" in stats:
            found["categories"] = tuple(stats["allowed_values"])
    return found


def _column(name: str, column: pa.Column) -> Column:
    meta = dict(column.metadata or {})
    role = meta.get("role", "other")
    if role not in ROLES:
        raise ContractError(f"contract.py: column {name!r} has unknown role {role!r}, use {ROLES}")
    return Column(
        name=name,
        role=role,
        kind=_kind(column.dtype, name),
        nullable=bool(column.nullable),
        required=bool(column.required),
        aliases=tuple(meta.get("aliases", ())),
        unit=meta.get("unit"),
        description=column.description,
        positive=meta.get("positive"),
        threshold=meta.get("threshold"),
        **_bounds(column),
    )


@dataclass(frozen=True)
class Problem:
    """The declared problem: its columns by role, its target and how to validate data."""

    name: str
    task: str
    columns: tuple[Column, ...]
    schema: pa.DataFrameSchema
    derive_target: Callable[[pd.DataFrame], pd.Series] | None = None

    def __post_init__(self) -> None:
        targets = [c for c in self.columns if c.role == "target"]
        if len(targets) != 1:
            raise ContractError("contract.py: declare exactly one column with role 'target'")
        if not self.features:
            raise ContractError("contract.py: declare at least one categorical or numeric column")
        if sum(c.role == "event_time" for c in self.columns) > 1:
            raise ContractError("contract.py: declare at most one column with role 'event_time'")
        if self.task not in TASKS:
            raise ContractError(f"contract.py: TASK must be one of {TASKS}, got {self.task!r}")
        if self.is_classifier:
            self._check_classes()
        elif self.target.positive is not None:
            raise ContractError("contract.py: a positive class is declared for binary tasks only")
        self._check_threshold()

    def _check_classes(self) -> None:
        """A classifier's target declares its classes (``isin``); binary also its positive one."""
        target = self.target
        if target.kind not in ("string", "integer"):
            raise ContractError(
                f"contract.py: the {self.task} target {target.name!r} must hold strings or "
                f"integers, not {target.kind}"
            )
        classes = target.categories or ()
        if len(set(classes)) != len(classes):
            raise ContractError(f"contract.py: target {target.name!r} repeats a class")
        needed = 2 if self.task == "binary" else 3
        if len(classes) < needed or (self.task == "binary" and len(classes) != 2):
            hint = "exactly two" if self.task == "binary" else "three or more (two: binary)"
            raise ContractError(
                f"contract.py: a {self.task} target declares {hint} classes with "
                f"isin=[...] on {target.name!r}, found {list(classes)}"
            )
        if self.task == "binary" and target.positive not in classes:
            raise ContractError(
                f"contract.py: a binary target names its positive class in metadata "
                f'("positive": one of {list(classes)}), got {target.positive!r}'
            )
        if self.task == "multiclass" and target.positive is not None:
            raise ContractError("contract.py: a positive class is declared for binary tasks only")

    def _check_threshold(self) -> None:
        """A binary target may set the probability from which the positive class is predicted."""
        threshold = self.target.threshold
        if threshold is None:
            return
        if self.task != "binary":
            raise ContractError("contract.py: a threshold is declared for binary tasks only")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ContractError(f"contract.py: the threshold is a number, got {threshold!r}")
        if not 0 < threshold < 1:
            raise ContractError(
                f"contract.py: the threshold is a probability between 0 and 1 (both excluded), "
                f"got {threshold}"
            )

    # -- the columns by role -------------------------------------------------------------
    def by_role(self, role: Role) -> list[Column]:
        return [c for c in self.columns if c.role == role]

    @property
    def categorical(self) -> list[str]:
        return [c.name for c in self.by_role("categorical")]

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.by_role("numeric")]

    @property
    def features(self) -> list[str]:
        """Model inputs, categorical first (the order every pipeline and request uses)."""
        return self.categorical + self.numeric

    @property
    def feature_columns(self) -> list[Column]:
        return [self.column(name) for name in self.features]

    @property
    def target(self) -> Column:
        return self.by_role("target")[0]

    @property
    def event_time(self) -> str | None:
        found = self.by_role("event_time")
        return found[0].name if found else None

    @property
    def identifier(self) -> str | None:
        found = self.by_role("identifier")
        return found[0].name if found else None

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    @property
    def classes(self) -> tuple[Any, ...]:
        """A classifier's classes in declared order (probability columns follow it); else ()."""
        return tuple(self.target.categories or ()) if self.is_classifier else ()

    @property
    def positive_class(self) -> Any:
        """The binary task's positive class (ROC and PR AUC score it); None otherwise."""
        return self.target.positive if self.task == "binary" else None

    @property
    def decision_threshold(self) -> float | None:
        """The positive class's probability from which a binary task predicts it (declared in
        the target's metadata, 0.5 by default); None for other tasks."""
        if self.task != "binary":
            return None
        return 0.5 if self.target.threshold is None else float(self.target.threshold)

    def decide(self, probabilities: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        """The predicted class of each row of class probabilities (in the contract's order):
        binary, the positive class from the decision threshold on; else the most probable."""
        classes = np.asarray(self.classes)
        threshold = self.decision_threshold
        if threshold is None:
            decided: npt.NDArray[Any] = classes[probabilities.argmax(axis=1)]
        else:
            positive = self.classes.index(self.positive_class)
            chosen = probabilities[:, positive] >= threshold
            decided = np.where(chosen, classes[positive], classes[1 - positive])
        return decided

    @property
    def target_range(self) -> tuple[float, float]:
        """The target's plausible range (infinite where the contract sets no bound)."""
        target = self.target
        low = -math.inf if target.minimum is None else target.minimum
        high = math.inf if target.maximum is None else target.maximum
        return low, high

    @property
    def target_scale(self) -> float:
        """A typical size of the target, for thresholds relative to it (range width, or 1)."""
        low, high = self.target_range
        return high - low if math.isfinite(high - low) and high > low else 1.0

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{name!r} is not a column of the contract")

    # -- reading and checking data -------------------------------------------------------
    def normalize(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rename columns spelled by one of their declared aliases to the declared name, and
        give each missing value one representation (``one_missing_value``)."""
        renames: dict[str, str] = {}
        for column in self.columns:
            if column.name in frame.columns:
                continue
            alias = next((a for a in column.aliases if a in frame.columns), None)
            if alias is not None:
                renames[alias] = column.name
        return self.one_missing_value(frame.rename(columns=renames) if renames else frame)

    def one_missing_value(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Every missing value of a declared column (None, NaN, pd.NA, NaT) as NaN.

        Files, requests and the service's rows say "missing" in different ways, and the
        encoders tell them apart (a one-hot encoder learns NaN as a category of its own and
        takes None for an unseen one): one value, whatever arrived, gives one answer. After
        validation a missing value is NaN (NaT for times, pd.NA in a nullable integer column).
        """
        changed: dict[str, pd.Series] = {}
        for column in self.columns:
            if column.name not in frame.columns:
                continue
            values = frame[column.name]
            if isinstance(values.dtype, np.dtype) and values.dtype != object:
                continue  # numpy numbers and times hold NaN or NaT only
            missing = values.isna().to_numpy()
            if missing.any():
                array = values.to_numpy(dtype=object, copy=True)
                array[missing] = np.nan
                changed[column.name] = pd.Series(array, index=values.index, dtype=object)
        return frame.assign(**changed) if changed else frame

    def refuse_booleans(self, frame: pd.DataFrame, source: str = "data") -> None:
        """A boolean is not a number: pandera would coerce True to 1, so a column declared as
        integers or numbers that holds booleans is refused, named."""
        for column in self.columns:
            if column.kind not in ("integer", "number") or column.name not in frame.columns:
                continue
            values = frame[column.name]
            if pd.api.types.is_bool_dtype(values.dtype):
                booleans = values.notna()
            elif values.dtype == object:
                booleans = values.map(lambda value: isinstance(value, bool | np.bool_))
            else:
                continue
            if booleans.any():
                first = values[booleans].iloc[0]
                raise DataValidationError(
                    f"{source}: column {column.name!r} holds booleans where contract.py declares "
                    f"{column.kind}s: {int(booleans.sum())} value(s), first {bool(first)!r}"
                )

    def input_schema(self, labelled: bool) -> pa.DataFrameSchema:
        """The contract without the target's range. Required: the features, and for labelled
        data the event time; identifiers and columns without a role only when present."""
        needed = ("categorical", "numeric", *(("event_time",) if labelled else ()))
        updates: dict[str, dict[str, Any]] = {}
        for column in self.columns:
            if column.role == "target":  # label() checks it, leaving out implausible rows
                updates[column.name] = {"checks": [], "required": False, "nullable": True}
                if self.is_classifier:
                    updates[column.name]["dtype"] = None
            elif column.role not in needed:
                updates[column.name] = {"required": False}
        return self.schema.update_columns(updates)

    def validate(
        self, frame: pd.DataFrame, source: str = "data", *, labelled: bool = False
    ) -> pd.DataFrame:
        """Check ``frame`` against the contract and return it with contract dtypes.

        ``labelled``: the frame must carry every declared column (training data); otherwise
        only the features are required (prediction inputs). Extra columns are kept.
        """
        if frame.empty:
            raise DataValidationError(f"{source}: no rows")
        frame = self.normalize(frame)
        self.refuse_booleans(frame, source)
        try:
            return self.input_schema(labelled).validate(frame, lazy=True)
        except SchemaErrors as errors:
            raise DataValidationError(describe_failures(errors, source)) from None

    def label(self, frame: pd.DataFrame, source: str = "data") -> pd.DataFrame:
        """Add the target if the data lacks it and keep rows with a plausible target.

        Rows outside the target's declared range, for a classifier rows whose label is not a
        declared class (or without a target) are left out; none left is an error naming them.
        ``quality.screen`` sets them aside as rejects, counted; this drops them.
        """
        labelled, keep, _ = self.plausible_target(frame, source)
        if not keep.any():
            raise DataValidationError(f"{source}: no row has a {self.target.name} {self.wanted}")
        return labelled[keep].reset_index(drop=True)

    @property
    def wanted(self) -> str:
        """What a plausible target is, in words (messages)."""
        if self.is_classifier:
            return f"in the declared classes {list(self.classes)}"
        low, high = self.target_range
        unit = f" {self.target.unit}" if self.target.unit else ""
        return f"within {low:g}..{high:g}{unit}"

    def plausible_target(
        self, frame: pd.DataFrame, source: str = "data"
    ) -> tuple[pd.DataFrame, pd.Series, str]:
        """``frame`` with its target as the contract's type (derived if the data lacks it),
        which rows have a plausible one, and the check the others fail."""
        name = self.target.name
        if name not in frame.columns:
            if self.derive_target is None:
                raise DataValidationError(f"{source}: missing target column {name!r}")
            try:
                frame = frame.assign(**{name: self.derive_target(frame)})
            except KeyError as exc:
                raise DataValidationError(
                    f"{source}: missing target column {name!r}, and column {exc} to derive it"
                ) from None
        if self.is_classifier:
            values, keep = self.class_labels(frame[name])
            check = f"isin({list(self.classes)})"
        else:
            values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            low, high = self.target_range
            keep = values.between(low, high)
            check = f"in_range({low:g}, {high:g})"
        return frame.assign(**{name: values}), keep, check

    def class_labels(self, labels: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Labels as the declared classes' type, and which of them are declared classes.

        Integer classes also accept their text ("1" from CSV or JSON); anything else,
        missing labels included, is not a class.
        """
        if self.target.kind == "integer":
            numbers = pd.to_numeric(labels, errors="coerce")
            keep = numbers.isin(self.classes)
            return numbers.where(keep, 0).astype("int64"), keep
        text = labels.map(lambda label: label if pd.isna(label) else str(label))
        keep = text.isin(self.classes)
        return text.where(keep, None).astype(object), keep

    def prepare(self, frame: pd.DataFrame, source: str = "data") -> pd.DataFrame:
        """Validate training data and label it: what train and evaluate consume."""
        return self.label(self.validate(frame, source, labelled=True), source)

    def feature_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The features of validated data, in model order."""
        missing = [name for name in self.features if name not in frame.columns]
        if missing:
            raise DataValidationError(f"missing feature column(s) {missing}")
        return frame[self.features]

    def clip(self, predictions: npt.ArrayLike) -> tuple[npt.NDArray[Any], int]:
        """Hold predictions to the target's plausible range; also say how many were outside.

        A classifier's predictions are classes: returned as they are, none outside.
        """
        if self.is_classifier:
            return np.asarray(predictions), 0
        values = np.asarray(predictions, dtype="float64")
        low, high = self.target_range
        outside = int(np.count_nonzero((values < low) | (values > high)))
        return (np.clip(values, low, high) if outside else values), outside


def is_missing(value: Any) -> bool:
    """Whether one value is missing, however it is spelled: None, NaN, pd.NA or NaT."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def describe_failures(errors: SchemaErrors, source: str) -> str:
    """One line: the source, then each failing column with its check and first bad value."""
    cases = errors.failure_cases
    in_frame = cases["check"].astype(str).str.contains("column_in_dataframe")
    missing = cases.loc[in_frame, "failure_case"]
    if len(missing):
        return f"{source}: missing required column(s) {sorted(map(str, missing))}"
    parts = []
    for column, group in cases.groupby("column", sort=False, dropna=False):
        check = str(group["check"].iloc[0])
        failing = group[group["check"].astype(str) == check]
        parts.append(
            f"column {column!r} fails {'not null' if check == 'not_nullable' else check}: "
            f"{len(failing)} value(s), first {plain(failing['failure_case'].iloc[0])!r}"
        )
    return f"{source}: " + "; ".join(parts)


def plain(value: Any) -> Any:
    """A value as Python shows it: ``-1.5``, not ``np.float64(-1.5)``; missing is None."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        missing = bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: not one missing value
        missing = False
    return None if missing else value


def build_problem(
    model: type[pa.DataFrameModel],
    name: str = "problem",
    task: str = "regression",
    derive_target: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> Problem:
    """The problem a pandera ``DataFrameModel`` declares (what ``contract.py`` holds)."""
    schema = model.to_schema()
    return Problem(
        name=name,
        task=task,
        columns=tuple(_column(column, spec) for column, spec in schema.columns.items()),
        schema=schema,
        derive_target=derive_target,
    )


def from_contract() -> Problem:
    """Build the problem from ``contract.py``."""
    return build_problem(
        contract.SCHEMA,
        name=getattr(contract, "NAME", "problem"),
        task=getattr(contract, "TASK", "regression"),
        derive_target=getattr(contract, "derive_target", None),
    )


PROBLEM = from_contract()
