"""The problem this project solves, declared once: diabetes progression after one year.

A user's own problem, as the template's docs walk through it ("Your own problem"): scikit-learn's
diabetes data (442 patients, ten baseline measurements, standardised), with the sex as a string
category, a BMI band derived from it (missing for some patients), the blood pressure's tertile as
an integer category (0, 1 or 2) and a visit date per patient.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

NAME = "diabetes-progression"
TASK = "regression"


class Patients(pa.DataFrameModel):
    """One patient at their baseline visit."""

    patient_id: Series[str] = pa.Field(metadata={"role": "identifier"})
    visit_date: Series[pd.Timestamp] = pa.Field(metadata={"role": "event_time"})
    sex: Series[str] = pa.Field(isin=["female", "male"], metadata={"role": "categorical"})
    bmi_band: Series[str] = pa.Field(
        isin=["low", "normal", "high"], nullable=True, metadata={"role": "categorical"}
    )
    bp_grade: Series[int] = pa.Field(
        isin=[0, 1, 2], description="Blood pressure tertile", metadata={"role": "categorical"}
    )
    age: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    bmi: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    bp: Series[float] = pa.Field(
        ge=-0.5, le=0.5, description="Mean blood pressure", metadata={"role": "numeric"}
    )
    s1: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    s2: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    s3: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    s4: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    s5: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    s6: Series[float] = pa.Field(ge=-0.5, le=0.5, metadata={"role": "numeric"})
    progression: Series[float] = pa.Field(
        ge=20,
        le=360,
        description="Disease progression one year after baseline",
        metadata={"role": "target", "unit": "points"},
    )

    class Config:
        coerce = True


SCHEMA = Patients
