"""The problem this project solves, declared once: NYC taxi trip duration (the shipped example).

Everything else reads this file: validation, features, training, the service's request and
response models, the prediction log, monitoring and the promotion gate. To solve your own
problem, rewrite this file (columns, roles, bounds, target), point the configs at your data
and change nothing else (docs: "Your own problem").

Roles, set in each field's metadata: ``categorical`` and ``numeric`` features, ``event_time``
(orders the data: training windows, monitoring), ``identifier``, ``target``; a column without
a role is checked when present and otherwise ignored. ``aliases`` are other spellings of a
column in source files; they are renamed on read.

``TASK`` says what the target is: ``"regression"`` (a number; its bounds are its plausible
range), ``"binary"`` or ``"multiclass"`` (a class). A classifier's target declares its classes
with ``isin=[...]`` (strings or integers); a binary one also names its positive class, the one
ROC and PR AUC score: ``metadata={"role": "target", "positive": "churned"}``, and may set the
probability from which it is predicted (``"threshold": 0.3``; 0.5 when left out).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

#: A short name for the problem (used in run names, model descriptions and messages).
NAME = "nyc-taxi-trip-duration"
#: What the model predicts: "regression" here ("binary" and "multiclass" classify).
TASK = "regression"
#: The share of the rows a command reads that may break this contract before the command fails;
#: below it, bad rows are set aside: counted, reported and written to reports/rejects/.
MAX_REJECTED_SHARE = 0.10


class Trips(pa.DataFrameModel):
    """One taxi trip, as the NYC TLC publishes them (yellow and green trip-record files)."""

    pickup_datetime: Series[pd.Timestamp] = pa.Field(
        description="When the meter was engaged",
        metadata={
            "role": "event_time",
            "aliases": ["tpep_pickup_datetime", "lpep_pickup_datetime"],
        },
    )
    dropoff_datetime: Series[pd.Timestamp] = pa.Field(
        description="When the meter was disengaged",
        metadata={"aliases": ["tpep_dropoff_datetime", "lpep_dropoff_datetime"]},
    )
    PULocationID: Series[int] = pa.Field(
        ge=1, le=265, description="TLC pickup zone", metadata={"role": "categorical"}
    )
    DOLocationID: Series[int] = pa.Field(
        ge=1, le=265, description="TLC drop-off zone", metadata={"role": "categorical"}
    )
    # What is plausible for a metered trip of at most an hour: real months also hold negative
    # and 250,000-mile distances, which break the contract (the model's pipeline holds the rare
    # extreme value it lets through to the training data's range).
    trip_distance: Series[float] = pa.Field(
        ge=0, le=100, description="Trip distance", metadata={"role": "numeric", "unit": "miles"}
    )
    # The target's bounds are its plausible range: rows outside it are set aside from training
    # (counted), predictions are held to it and ground truth outside it is set aside.
    duration: Series[float] = pa.Field(
        ge=1,
        le=60,
        description="Trip duration",
        metadata={"role": "target", "unit": "minutes"},
    )

    class Config:
        coerce = True


#: The declaration the rest of the package reads.
SCHEMA = Trips


def derive_target(trips: pd.DataFrame) -> pd.Series:
    """Minutes from pickup to drop-off: TLC files do not carry the duration itself.

    Called only when the target column is absent; delete it if your files carry the target.
    """
    seconds = (trips["dropoff_datetime"] - trips["pickup_datetime"]).dt.total_seconds()
    return seconds / 60
