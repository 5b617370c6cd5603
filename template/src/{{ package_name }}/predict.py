"""Predict trip durations with a trained pipeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.pipeline import Pipeline

from .features import prepare_features


def predict(
    model: Pipeline, records: pd.DataFrame | Sequence[Mapping[str, Any]]
) -> npt.NDArray[np.float64]:
    """Predicted durations in minutes, one per record (extra columns are ignored)."""
    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    if len(frame) == 0:
        return np.empty(0, dtype="float64")
    return np.asarray(model.predict(prepare_features(frame)), dtype="float64")
