"""Write scikit-learn's diabetes data as the own-problem test's data files (run in the project)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes


def main(folder: Path) -> None:
    data = load_diabetes(as_frame=True)
    frame = data.frame.rename(columns={"target": "progression"})
    rng = np.random.default_rng(0)
    frame.insert(0, "patient_id", [f"p{i:03d}" for i in range(len(frame))])
    # One visit per patient, spread over 2023 in a fixed random order.
    days = np.sort(rng.integers(0, 365, len(frame)))
    frame.insert(1, "visit_date", pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D"))
    frame["sex"] = np.where(frame["sex"] > 0, "male", "female")
    band = pd.cut(frame["bmi"], [-1, -0.03, 0.03, 1], labels=["low", "normal", "high"])
    frame["bmi_band"] = band.astype(object).where(rng.random(len(frame)) > 0.05, None)
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "patients.parquet", index=False)
    # Traffic to serve: the last quarter's patients, without their outcome.
    late = frame[frame["visit_date"] >= "2023-10-01"]
    late.drop(columns="progression").to_csv(folder / "new-patients.csv", index=False)
    late[["patient_id", "progression"]].to_csv(folder / "outcomes.csv", index=False)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/diabetes"))
