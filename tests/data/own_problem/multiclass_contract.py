"""The problem this project solves, declared once: which cultivar grew a wine?

A user's own multiclass problem ("Your own problem"): scikit-learn's wine data (178 wines from
three cultivars of one Italian region, thirteen chemical measurements), with a sample
identifier, a tasting date, the cellar (unknown for some wines) and the colour's tertile (0, 1
or 2) per wine. The cultivar is an integer class: 0, 1 or 2.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

NAME = "wine-cultivar"
TASK = "multiclass"


class Wines(pa.DataFrameModel):
    """One wine's chemical analysis, and its cultivar."""

    wine_id: Series[str] = pa.Field(metadata={"role": "identifier"})
    tasting_date: Series[pd.Timestamp] = pa.Field(metadata={"role": "event_time"})
    cellar: Series[str] = pa.Field(nullable=True, metadata={"role": "categorical"})
    colour_grade: Series[int] = pa.Field(
        isin=[0, 1, 2],
        description="Tertile of the colour intensity",
        metadata={"role": "categorical"},
    )
    alcohol: Series[float] = pa.Field(ge=0, le=100, metadata={"role": "numeric", "unit": "%"})
    malic_acid: Series[float] = pa.Field(ge=0, metadata={"role": "numeric", "unit": "g/l"})
    ash: Series[float] = pa.Field(ge=0, metadata={"role": "numeric", "unit": "g/l"})
    alcalinity_of_ash: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    magnesium: Series[float] = pa.Field(ge=0, metadata={"role": "numeric", "unit": "mg/l"})
    total_phenols: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    flavanoids: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    nonflavanoid_phenols: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    proanthocyanins: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    color_intensity: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    hue: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    od280_od315: Series[float] = pa.Field(
        ge=0, description="OD280/OD315 of diluted wines", metadata={"role": "numeric"}
    )
    proline: Series[float] = pa.Field(ge=0, metadata={"role": "numeric", "unit": "mg/l"})
    # A classifier's target declares its classes with isin.
    cultivar: Series[int] = pa.Field(
        isin=[0, 1, 2], description="The grape cultivar", metadata={"role": "target"}
    )

    class Config:
        coerce = True


SCHEMA = Wines
