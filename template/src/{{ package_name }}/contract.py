"""Data contract: the NYC TLC yellow-taxi columns this project reads, and how they are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pandas as pd

PICKUP: Final = "tpep_pickup_datetime"
DROPOFF: Final = "tpep_dropoff_datetime"
PICKUP_ZONE: Final = "PULocationID"
DROPOFF_ZONE: Final = "DOLocationID"
DISTANCE: Final = "trip_distance"
PASSENGERS: Final = "passenger_count"

#: Columns every trips file must have, with the dtype they are coerced to.
REQUIRED_COLUMNS: Final[dict[str, str]] = {
    PICKUP: "datetime64[us]",
    DROPOFF: "datetime64[us]",
    PICKUP_ZONE: "int64",
    DROPOFF_ZONE: "int64",
    DISTANCE: "float64",
}
#: Columns that are checked when present (nulls allowed).
OPTIONAL_COLUMNS: Final[dict[str, str]] = {PASSENGERS: "float64"}

#: TLC taxi zones are numbered 1..265 (264 and 265 mean "unknown").
ZONE_MIN: Final = 1
ZONE_MAX: Final = 265

TARGET: Final = "duration"
MIN_DURATION: Final = 1.0
MAX_DURATION: Final = 60.0

CATEGORICAL_FEATURES: Final[list[str]] = [PICKUP_ZONE, DROPOFF_ZONE]
NUMERICAL_FEATURES: Final[list[str]] = [DISTANCE]
FEATURES: Final[list[str]] = CATEGORICAL_FEATURES + NUMERICAL_FEATURES

SUPPORTED_SUFFIXES: Final = (".parquet", ".csv")


class DataValidationError(ValueError):
    """Input data breaks the contract; the message names the file, column or value."""


def month_file(data_dir: str | Path, year: int, month: int) -> Path:
    """Path of a month of trips, named as TLC names it: ``yellow_tripdata_2024-01.parquet``."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be in 1..12, got {month}")
    return Path(data_dir) / f"yellow_tripdata_{year:04d}-{month:02d}.parquet"


def read_trips(path: str | Path) -> pd.DataFrame:
    """Read a parquet or csv file of trips, failing with the file's name if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataValidationError(
            f"{path}: unsupported file type {suffix!r}, expected one of {SUPPORTED_SUFFIXES}"
        )
    try:
        df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pyarrow, csv parser and decoding errors all mean the same here
        raise DataValidationError(f"{path}: cannot read {suffix[1:]} file ({exc})") from exc
    if df.empty:
        raise DataValidationError(f"{path}: file has no rows")
    return df


def _first_bad(values: pd.Series, bad: pd.Series) -> str:
    """Describe how many values are bad and show the first one."""
    first = values[bad].iloc[0]
    shown = repr(first) if isinstance(first, str) else str(first)
    return f"{int(bad.sum())} bad value(s), first {shown}"


def _coerce_datetime(values: pd.Series, column: str, source: str) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values, errors="coerce")
        bad = parsed.isna() & values.notna()
        if bad.any():
            raise DataValidationError(
                f"{source}: column {column!r} must hold datetimes, {_first_bad(values, bad)}"
            )
        values = parsed
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(None)
    return values.astype("datetime64[us]")


def _coerce_number(values: pd.Series, column: str, source: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values) or not (
        pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_object_dtype(values)
        or pd.api.types.is_string_dtype(values)
    ):
        raise DataValidationError(
            f"{source}: column {column!r} must be numeric, got {values.dtype}"
        )
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna()
    if bad.any():
        raise DataValidationError(
            f"{source}: column {column!r} must be numeric, {_first_bad(values, bad)}"
        )
    return parsed.astype("float64")


def _check_zone(values: pd.Series, column: str, source: str) -> pd.Series:
    bad = (values % 1 != 0) | (values < ZONE_MIN) | (values > ZONE_MAX)
    if bad.any():
        raise DataValidationError(
            f"{source}: column {column!r} must hold zone ids {ZONE_MIN}..{ZONE_MAX}, "
            f"{_first_bad(values, bad)}"
        )
    return values.astype("int64")


def validate_trips(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Check ``df`` against the contract and return a copy with contract dtypes.

    ``source`` (usually the file name) starts every error message.
    """
    missing = [column for column in REQUIRED_COLUMNS if column not in df.columns]
    if missing:
        raise DataValidationError(f"{source}: missing required column(s) {missing}")
    if df.empty:
        raise DataValidationError(f"{source}: no rows")
    out = df.copy()
    for column in [*REQUIRED_COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in df.columns)]:
        values = out[column]
        required = column in REQUIRED_COLUMNS
        if values.isna().all():
            raise DataValidationError(f"{source}: column {column!r} is entirely null")
        if required and values.isna().any():
            raise DataValidationError(
                f"{source}: column {column!r} has {int(values.isna().sum())} null value(s)"
            )
        if column in (PICKUP, DROPOFF):
            out[column] = _coerce_datetime(values, column, source)
            continue
        numbers = _coerce_number(values, column, source)
        if column in CATEGORICAL_FEATURES:
            out[column] = _check_zone(numbers, column, source)
            continue
        negative = numbers < 0
        if negative.any():
            raise DataValidationError(
                f"{source}: column {column!r} must not be negative, {_first_bad(numbers, negative)}"
            )
        out[column] = numbers
    return out


def add_target(df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
    """Add ``duration`` (minutes from pickup to drop-off) and keep trips of 1 to 60 minutes."""
    out = df.copy()
    out[TARGET] = (out[DROPOFF] - out[PICKUP]).dt.total_seconds() / 60
    out = out[out[TARGET].between(MIN_DURATION, MAX_DURATION)].reset_index(drop=True)
    if out.empty:
        raise DataValidationError(
            f"{source}: no trip lasts between {MIN_DURATION:g} and {MAX_DURATION:g} minutes"
        )
    return out


def load_month(data_dir: str | Path, year: int, month: int) -> pd.DataFrame:
    """Read, validate and label one month of trips from ``data_dir``."""
    path = month_file(data_dir, year, month)
    df = validate_trips(read_trips(path), source=str(path))
    return add_target(df, source=str(path))
