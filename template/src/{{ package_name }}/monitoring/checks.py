"""Checks that need no Evidently: missing values and RMSE per variant."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import FEATURES, TARGET
from .data import PREDICTION, labelled


def missing_shares(window: pd.DataFrame) -> dict[str, float]:
    """Share of missing values per feature (0 for an empty window)."""
    if window.empty:
        return dict.fromkeys(FEATURES, 0.0)
    return {name: float(window[name].isna().mean()) for name in FEATURES}


def rmse_by_variant(window: pd.DataFrame, min_labelled: int) -> dict[str, tuple[float, int]]:
    """RMSE (minutes) and labelled row count per variant with at least ``min_labelled`` rows."""
    out: dict[str, tuple[float, int]] = {}
    for variant, rows in labelled(window).groupby("variant"):
        if len(rows) >= min_labelled:
            error = rows[PREDICTION].to_numpy() - rows[TARGET].to_numpy()
            out[str(variant)] = (float(np.sqrt(np.mean(error**2))), len(rows))
    return out
