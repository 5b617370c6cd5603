"""The problem this project solves, declared once: is a breast tumour malignant?

A user's own binary classification problem ("Your own problem"): scikit-learn's breast cancer
data (569 biopsies, the ten mean measurements of the cell nuclei), with a patient identifier,
an exam date, the clinic (unknown for some biopsies) and the radius's tertile (0, 1 or 2) per
biopsy. The diagnosis is a string class; "malignant" is the positive one, predicted from a
probability of 0.3 on.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

NAME = "breast-tumour-diagnosis"
TASK = "binary"


class Biopsies(pa.DataFrameModel):
    """One biopsy: the mean measurements of its cell nuclei, and the diagnosis."""

    patient_id: Series[str] = pa.Field(metadata={"role": "identifier"})
    exam_date: Series[pd.Timestamp] = pa.Field(metadata={"role": "event_time"})
    clinic: Series[str] = pa.Field(nullable=True, metadata={"role": "categorical"})
    size_grade: Series[int] = pa.Field(
        isin=[0, 1, 2], description="Tertile of the mean radius", metadata={"role": "categorical"}
    )
    mean_radius: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    mean_texture: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    mean_perimeter: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    mean_area: Series[float] = pa.Field(ge=0, metadata={"role": "numeric"})
    mean_smoothness: Series[float] = pa.Field(ge=0, le=1, metadata={"role": "numeric"})
    mean_compactness: Series[float] = pa.Field(ge=0, le=1, metadata={"role": "numeric"})
    mean_concavity: Series[float] = pa.Field(ge=0, le=1, metadata={"role": "numeric"})
    mean_concave_points: Series[float] = pa.Field(ge=0, le=1, metadata={"role": "numeric"})
    mean_symmetry: Series[float] = pa.Field(ge=0, le=1, metadata={"role": "numeric"})
    mean_fractal_dimension: Series[float] = pa.Field(ge=0, le=1, metadata={"role": "numeric"})
    # A classifier's target declares its classes with isin; a binary one names the positive,
    # and here predicts it from a probability of 0.3 on (a missed tumour costs more).
    diagnosis: Series[str] = pa.Field(
        isin=["benign", "malignant"],
        description="Diagnosis of the biopsy",
        metadata={"role": "target", "positive": "malignant", "threshold": 0.3},
    )

    class Config:
        coerce = True


SCHEMA = Biopsies
