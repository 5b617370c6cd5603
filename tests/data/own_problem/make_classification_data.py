"""Write scikit-learn's breast cancer (binary) or wine (multiclass) data as the own-problem
test's data files (run in the project): ``python make_classification_data.py binary data/tumours``.

Beside the labelled rows: the last quarter's rows without their class (traffic to serve) and
their classes keyed by identifier (ground truth that arrives later).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_wine


def breast_cancer() -> tuple[pd.DataFrame, str, str, str]:
    data = load_breast_cancer(as_frame=True)
    means = [c for c in data.frame.columns if c.startswith("mean ")]
    frame = data.frame[means].rename(columns=lambda c: c.replace(" ", "_"))
    frame["diagnosis"] = np.asarray(data.target_names)[data.target]
    return frame, "patient_id", "exam_date", "diagnosis"


def wine() -> tuple[pd.DataFrame, str, str, str]:
    data = load_wine(as_frame=True)
    frame = data.frame.rename(
        columns={"od280/od315_of_diluted_wines": "od280_od315", "target": "cultivar"}
    )
    return frame, "wine_id", "tasting_date", "cultivar"


DATASETS = {"binary": breast_cancer, "multiclass": wine}


def main(task: str, folder: Path) -> None:
    frame, identifier, event_time, target = DATASETS[task]()
    rng = np.random.default_rng(0)
    # One row per day of 2023 or so, in a fixed random order (the data's own order is sorted).
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
    if len(sys.argv) < 2 or sys.argv[1] not in DATASETS:
        sys.exit(f"usage: {Path(sys.argv[0]).name} binary|multiclass [FOLDER]")
    default = "data/tumours" if sys.argv[1] == "binary" else "data/wines"
    main(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else default))
