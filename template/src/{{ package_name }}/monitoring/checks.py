"""Checks that need no Evidently: missing values, error per variant, predictions held to range."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import CLIPPED, FEATURES, PREDICTION, TARGET, labelled


def missing_shares(window: pd.DataFrame) -> dict[str, float]:
    """Share of missing values per feature (0 for an empty window)."""
    if window.empty:
        return dict.fromkeys(FEATURES, 0.0)
    return {name: float(window[name].isna().mean()) for name in FEATURES}


def rmse_by_variant(window: pd.DataFrame, min_labelled: int) -> dict[str, tuple[float, int]]:
    """RMSE (target's unit) and labelled row count per variant with >= ``min_labelled`` rows."""
    out: dict[str, tuple[float, int]] = {}
    for variant, rows in labelled(window).groupby("variant"):
        if len(rows) >= min_labelled:
            error = rows[PREDICTION].to_numpy() - rows[TARGET].to_numpy()
            out[str(variant)] = (float(np.sqrt(np.mean(error**2))), len(rows))
    return out


def clipped_by_variant(window: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """Share and count of predictions held to the target's range, per variant."""
    if CLIPPED not in window.columns:
        return {}
    return {
        str(variant): (float(rows[CLIPPED].mean()), int(rows[CLIPPED].sum()))
        for variant, rows in window.groupby("variant")
    }
