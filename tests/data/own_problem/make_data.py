"""Write a dataset scikit-learn ships as the own-problem test's data files (run in the project):
``python make_data.py regression|binary|multiclass FOLDER``.

regression: the diabetes data (progression in points; sex and a BMI band as string categories,
the band missing for some patients); binary: the breast cancer data (benign or malignant);
multiclass: the wine data (cultivar 0, 1 or 2). Each row gets an identifier and a date in 2023,
and each dataset has a nullable string category and an integer category of 0, 1 and 2 (a grade:
the tertile of one of its measurements).
Written to FOLDER: ``labelled.parquet`` (every row), ``new.csv`` (the last quarter's rows without
their target: traffic to serve) and ``outcomes.csv`` (their targets by identifier: ground truth
that arrives later).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

#: A dataset: its rows, and the names of its identifier, event time and target.
Dataset = tuple[pd.DataFrame, str, str, str]


def grade(values: pd.Series) -> pd.Series:
    """The tertile of each value: 0, 1 or 2."""
    return pd.qcut(values, 3, labels=False).astype("int64")


def sites(rng: np.random.Generator, n_rows: int) -> pd.Series:
    """Where each row was recorded: four sites, unknown (missing) for about one in twenty."""
    named = rng.choice(np.array(["north", "south", "east", "west"], dtype=object), n_rows)
    return pd.Series(named, dtype=object).where(rng.random(n_rows) > 0.05, None)


def diabetes(rng: np.random.Generator) -> Dataset:
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")
    band = pd.cut(frame["bmi"], [-1, -0.03, 0.03, 1], labels=["low", "normal", "high"])
    frame["bmi_band"] = band.astype(object).where(rng.random(len(frame)) > 0.05, None)
    frame["bp_grade"] = grade(frame["bp"])
    return frame, "patient_id", "visit_date", "progression"


def breast_cancer(rng: np.random.Generator) -> Dataset:
    data = load_breast_cancer(as_frame=True)
    means = [c for c in data.frame.columns if c.startswith("mean ")]
    frame = data.frame[means].rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = np.asarray(data.target_names)[data.target]
    frame["clinic"] = sites(rng, len(frame))
    frame["size_grade"] = grade(frame["mean_radius"])
    return frame, "patient_id", "exam_date", "diagnosis"


def wine(rng: np.random.Generator) -> Dataset:
    frame = load_wine(as_frame=True).frame.rename(
        columns={"od280/od315_of_diluted_wines": "od280_od315", "target": "cultivar"}
    )
    frame["cellar"] = sites(rng, len(frame))
    frame["colour_grade"] = grade(frame["color_intensity"])
    return frame, "wine_id", "tasting_date", "cultivar"


DATASETS: dict[str, Callable[[np.random.Generator], Dataset]] = {
    "regression": diabetes,
    "binary": breast_cancer,
    "multiclass": wine,
}


def main(task: str, folder: Path) -> None:
    rng = np.random.default_rng(0)
    frame, identifier, event_time, target = DATASETS[task](rng)
    # One row per day of 2023 or so, in a fixed random order (some datasets come sorted).
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    days = np.sort(rng.integers(0, 365, len(frame)))
    frame.insert(0, identifier, [f"{identifier[0]}{i:03d}" for i in range(len(frame))])
    frame.insert(1, event_time, pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D"))
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "labelled.parquet", index=False)
    late = frame[frame[event_time] >= "2023-10-01"]
    late.drop(columns=target).to_csv(folder / "new.csv", index=False)
    late[[identifier, target]].to_csv(folder / "outcomes.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in DATASETS:
        sys.exit(f"usage: {Path(sys.argv[0]).name} {'|'.join(DATASETS)} FOLDER")
    main(sys.argv[1], Path(sys.argv[2]))
