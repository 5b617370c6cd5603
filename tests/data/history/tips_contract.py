"""The problem this project solves, declared once: the tip a restaurant table leaves.

A user's own historical problem: plotly's `tips` data (244 bills of one waiter, each with its
total, the party's size, day, meal, and whether they smoked), with a bill number and the time
each bill was paid, in 2019.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

NAME = "restaurant-tips"
TASK = "regression"


class Bills(pa.DataFrameModel):
    """One paid bill."""

    bill_id: Series[str] = pa.Field(metadata={"role": "identifier"})
    paid_at: Series[pd.Timestamp] = pa.Field(metadata={"role": "event_time"})
    total_bill: Series[float] = pa.Field(ge=0, le=500, metadata={"role": "numeric", "unit": "USD"})
    size: Series[int] = pa.Field(
        isin=[1, 2, 3, 4, 5, 6], description="People at the table", metadata={"role": "categorical"}
    )
    sex: Series[str] = pa.Field(isin=["Female", "Male"], metadata={"role": "categorical"})
    smoker: Series[str] = pa.Field(isin=["No", "Yes"], metadata={"role": "categorical"})
    day: Series[str] = pa.Field(
        isin=["Thur", "Fri", "Sat", "Sun"], metadata={"role": "categorical"}
    )
    time: Series[str] = pa.Field(isin=["Lunch", "Dinner"], metadata={"role": "categorical"})
    tip: Series[float] = pa.Field(
        ge=0, le=50, description="The tip left", metadata={"role": "target", "unit": "USD"}
    )

    class Config:
        coerce = True


SCHEMA = Bills
