"""Rows drawn from the contract alone: declared types, bounds and categories.

For tests and first runs of *any* declared problem: the target depends on the features (a
model can learn it), and ``drift`` in [0, 1] shifts the features and the target so that
monitoring has something to find. A classifier's target is the class of a band of the same
signal: classes about equally common without drift, drift moves rows towards the last declared
class. The shipped example has a realistic generator of its own.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pandas as pd

from .problem import PROBLEM, Column, Problem

Floats = npt.NDArray[np.float64]

START = pd.Timestamp("2024-01-01")
SPAN_DAYS = 60
GENERATED_BY = "sampledata: rows drawn from contract.py"


def _numeric(column: Column, rng: np.random.Generator, n: int, drift: float) -> Floats:
    low = column.minimum if column.minimum is not None else 0.0
    high = column.maximum if column.maximum is not None else low + 100.0
    if math.isinf(high - low):
        high = low + 100.0
    center = low + (high - low) * (0.4 + 0.3 * drift)
    values = rng.normal(center, (high - low) / 6, n)
    return np.clip(values, low, high)


def _categories(column: Column) -> list[object]:
    if column.categories is not None:
        return list(column.categories)
    if column.kind == "integer":
        low = int(column.minimum) if column.minimum is not None else 0
        high = int(column.maximum) if column.maximum is not None else low + 9
        return list(range(low, min(high, low + 49) + 1))
    return [f"{column.name}-{i}" for i in range(8)]


def _categorical(column: Column, rng: np.random.Generator, n: int, drift: float) -> pd.Series:
    choices = _categories(column)
    weights = np.linspace(1.0, 1.0 + 4.0 * drift, len(choices)) / np.arange(1, len(choices) + 1)
    picked = rng.choice(len(choices), n, p=weights / weights.sum())
    return pd.Series(np.asarray(choices, dtype=object)[picked])


def _effects(problem: Problem, frame: pd.DataFrame, rng: np.random.Generator) -> Floats:
    """A learnable signal in [0, 1]: a fixed effect per category plus a slope per number."""
    signal = np.zeros(len(frame))
    for name in problem.categorical:
        codes = pd.Series(frame[name]).astype(str)
        levels = sorted(codes.dropna().unique())
        effect = dict(zip(levels, rng.normal(0, 1, len(levels)), strict=True))
        signal += codes.map(effect).fillna(0.0).to_numpy(dtype="float64")
    for name in problem.numeric:
        values = pd.to_numeric(frame[name]).to_numpy(dtype="float64")
        spread = np.nanstd(values) or 1.0
        signal += rng.normal(1.0, 0.3) * np.nan_to_num((values - np.nanmean(values)) / spread)
    spread = signal.std() or 1.0
    share: Floats = 1 / (1 + np.exp(-(signal - signal.mean()) / spread))
    return share


def _finite_range(problem: Problem) -> tuple[float, float]:
    """The target's range, with 100 units on a side the contract leaves open."""
    low, high = problem.target_range
    if math.isinf(low) and math.isinf(high):
        return 0.0, 100.0
    if math.isinf(low):
        return high - 100.0, high
    if math.isinf(high):
        return low, low + 100.0
    return low, high


def sample_frame(
    n_rows: int, seed: int = 42, drift: float = 0.0, problem: Problem = PROBLEM
) -> pd.DataFrame:
    """``n_rows`` rows that pass the contract, labelled, with a learnable target."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be in [0, 1], got {drift}")
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(index=range(n_rows))
    for column in problem.columns:
        if column.role == "target":
            continue
        if column.kind == "datetime":
            seconds = rng.integers(0, SPAN_DAYS * 86_400, n_rows)
            frame[column.name] = START + pd.to_timedelta(np.sort(seconds), unit="s")
        elif column.role == "categorical" or column.kind == "string" or column.categories:
            frame[column.name] = _categorical(column, rng, n_rows, drift)
        elif column.kind == "boolean":
            frame[column.name] = rng.random(n_rows) < 0.5
        else:
            values = _numeric(column, rng, n_rows, drift)
            frame[column.name] = np.round(values) if column.kind == "integer" else values
        if column.nullable and column.role != "event_time":
            frame.loc[rng.random(n_rows) < 0.02, column.name] = None
    signal = _effects(problem, frame, np.random.default_rng(seed + 1))
    noise = rng.normal(0, 0.05, n_rows)
    share = np.clip(0.1 + 0.8 * signal + 0.1 * drift + noise, 0.0, 1.0)
    if problem.is_classifier:
        frame[problem.target.name] = _classes(problem, share)
    else:
        low, high = _finite_range(problem)
        frame[problem.target.name] = low + (high - low) * share
    return problem.validate(frame, "generated rows", labelled=True)


def _classes(problem: Problem, share: Floats) -> pd.Series:
    """The declared class of each row's band of ``share``.

    Without drift and noise, ``share`` is 0.1 + 0.8 * sigmoid(z) with z about standard normal:
    band edges at its quantiles make the classes about equally common.
    """
    k = len(problem.classes)
    quantiles = [NormalDist().inv_cdf(i / k) for i in range(1, k)]
    edges = [0.1 + 0.8 / (1 + math.exp(-q)) for q in quantiles]
    bands = np.digitize(share, edges)
    labels = pd.Series(np.asarray(problem.classes, dtype=object)[bands])
    return problem.class_labels(labels)[0]
