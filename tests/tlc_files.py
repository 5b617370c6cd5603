"""TLC-schema trip files for tests: yellow-taxi columns, no duration (projects derive it)."""

from __future__ import annotations

# Run with a project's Python: `python -c WRITE_MONTHS FOLDER YYYY-MM [green:YYYY-MM ...]` writes
# 3,000 seeded trips per month to FOLDER/yellow_tripdata_YYYY-MM.parquet (green_tripdata_...,
# with the green files' lpep_ datetimes, for a month given as green:YYYY-MM).
WRITE_MONTHS = """
import sys
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
for given in sys.argv[2:]:
    colour, _, month = given.rpartition(":")
    colour, prefix = (colour, "lpep_") if colour == "green" else ("yellow", "tpep_")
    n = 3000
    start = pd.Timestamp(f"{month}-01")
    pickup = start + pd.to_timedelta(rng.integers(0, 86400 * 28, n), "s")
    distance = rng.gamma(2.0, 1.5, n).round(2)
    minutes = 3 + 4 * distance + rng.normal(0, 2, n)
    pd.DataFrame({
        f"{prefix}pickup_datetime": pickup,
        f"{prefix}dropoff_datetime": pickup + pd.to_timedelta(minutes * 60, "s"),
        "PULocationID": rng.integers(1, 266, n),
        "DOLocationID": rng.integers(1, 266, n),
        "trip_distance": distance,
    }).to_parquet(f"{sys.argv[1]}/{colour}_tripdata_{month}.parquet")
"""
