"""Write plotly's `tips` data as a historical dataset (run in the project, whose level-4 venv has
plotly through evidently): ``python make_tips.py FOLDER TRAFFIC_ROWS``.

Each bill gets a number and the time it was paid: in 2019, in the data's order, at lunch or
dinner time. Written to FOLDER: ``bills.parquet`` (every bill) and ``traffic.json``: the latest
TRAFFIC_ROWS bills as callers later send them (features and the paid time, no tip), shifted as
traffic drifts (bills of a busier season: larger, on Sunday dinners, by smokers), and their
tips by bill number (ground truth that arrives later).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px


def bills() -> pd.DataFrame:
    frame = px.data.tips()
    rng = np.random.default_rng(0)
    days = np.sort(rng.integers(0, 365, len(frame)))
    hours = np.where(frame["time"] == "Lunch", 12, 19) + rng.random(len(frame))
    paid = pd.Timestamp("2019-01-01") + pd.to_timedelta(days, "D") + pd.to_timedelta(hours, "h")
    frame.insert(0, "paid_at", paid.round("s"))
    frame = frame.sort_values("paid_at", ignore_index=True)
    frame.insert(0, "bill_id", [f"b{i:03d}" for i in range(len(frame))])
    return frame


def traffic(frame: pd.DataFrame, rows: int) -> dict[str, list[dict[str, object]]]:
    late = frame.tail(rows).copy()
    late["total_bill"] = (late["total_bill"] * 2.5).round(2)
    late[["day", "time", "smoker"]] = ["Sun", "Dinner", "Yes"]
    late["paid_at"] = late["paid_at"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    requests = late.drop(columns="tip").to_dict("records")
    truth = late[["bill_id", "tip"]].to_dict("records")
    return {"requests": requests, "truth": truth}


def main(folder: Path, rows: int) -> None:
    frame = bills()
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "bills.parquet", index=False)
    (folder / "traffic.json").write_text(json.dumps(traffic(frame, rows), default=int))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
