"""The shipped example's data: seeded synthetic trips in the TLC yellow-taxi schema, offline.

The city is fixed (zone positions and popularity never change); the seed only changes the trips.
``drift`` in [0, 1] moves demand to outer zones, lengthens trips and slows traffic, so a drift
detector flags the month and a model trained on undrifted months gets worse.
"""

from __future__ import annotations

import calendar
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from .datasets import write_generated

#: The example this generator belongs to (``contract.NAME`` of the taxi contract).
EXAMPLE = "nyc-taxi-trip-duration"
#: Where the example's generated months go: their own folder, never a TLC file name.
EXAMPLE_DIR = Path("data/example")

PICKUP = "tpep_pickup_datetime"
DROPOFF = "tpep_dropoff_datetime"
PICKUP_ZONE = "PULocationID"
DROPOFF_ZONE = "DOLocationID"
DISTANCE = "trip_distance"
PASSENGERS = "passenger_count"
ZONE_MIN, ZONE_MAX = 1, 265  # TLC taxi zones (264 and 265 mean "unknown")

Floats = npt.NDArray[np.float64]

_CITY_SEED = 20240101
_AIRPORTS = (1, 132, 138)  # Newark, JFK, LaGuardia
_HOUR_WEIGHTS = np.array(
    [3, 2, 1.5, 1, 1, 1.5, 3, 5, 6, 6, 6, 6, 6.5, 6.5, 7, 7.5, 8, 9, 9, 8.5, 7.5, 7, 6, 4.5]
)


def _city() -> tuple[npt.NDArray[np.int64], Floats, Floats]:
    """Zone ids, their (x, y) positions in miles and their distance to the centre."""
    rng = np.random.default_rng(_CITY_SEED)
    zones = np.arange(ZONE_MIN, ZONE_MAX + 1)
    radius = 10 * rng.random(zones.size)  # dense centre, sparse outskirts
    angle = rng.uniform(0, 2 * np.pi, zones.size)
    xy = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    for zone, position in zip(_AIRPORTS, [(-12.0, 2.0), (11.0, -9.0), (8.0, 4.0)], strict=True):
        xy[zone - ZONE_MIN] = position
    return zones, xy, np.hypot(xy[:, 0], xy[:, 1])


def _zone_weights(radius: Floats, drift: float) -> Floats:
    """Skewed popularity: central zones dominate; drift flattens it towards the outskirts."""
    noise = np.random.default_rng(_CITY_SEED + 1).lognormal(0.0, 0.8, radius.size)
    weights: Floats = np.exp(-radius / (1.0 + 2.5 * drift)) * noise
    airport = np.isin(np.arange(ZONE_MIN, ZONE_MAX + 1), _AIRPORTS)
    weights[airport] = weights.max() * (0.1 + 0.4 * drift)
    weights /= weights.sum()
    return weights


def generate_trips(
    year: int, month: int, n_rows: int, seed: int = 42, drift: float = 0.0
) -> pd.DataFrame:
    """Generate ``n_rows`` trips picked up in ``year``-``month`` (vectorised, ~1 s per million)."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be positive, got {n_rows}")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be in [0, 1], got {drift}")
    rng = np.random.default_rng([seed, year, month])
    zones, xy, radius = _city()
    weights = _zone_weights(radius, drift)
    pu = rng.choice(zones.size, n_rows, p=weights)
    do = rng.choice(zones.size, n_rows, p=weights)

    straight = np.hypot(*(xy[pu] - xy[do]).T)
    distance = np.where(pu == do, rng.gamma(2.0, 0.4, n_rows), 1.3 * straight)
    distance *= rng.lognormal(0.0, 0.15, n_rows) * (1.0 + 0.2 * drift)
    distance = np.round(np.where(rng.random(n_rows) < 0.01, 0.0, distance), 2)

    days = calendar.monthrange(year, month)[1]
    start = np.datetime64(f"{year:04d}-{month:02d}-01T00:00:00", "s")
    hour = rng.choice(24, n_rows, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    offset = rng.integers(0, days, n_rows) * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n_rows)
    pickup = start + offset.astype("timedelta64[s]")

    rush = np.isin(hour, [7, 8, 9, 16, 17, 18, 19])
    night = hour < 6
    mph = (7.0 + 1.5 * np.minimum(distance, 15.0)) * np.where(rush, 0.7, np.where(night, 1.4, 1.0))
    mph *= 1.0 - 0.25 * drift
    minutes = (2.0 + 60.0 * distance / mph) * rng.lognormal(0.0, 0.2, n_rows)
    outlier = rng.random(n_rows)
    minutes = np.where(outlier < 0.01, rng.uniform(-2.0, 1.0, n_rows), minutes)  # cancelled
    minutes = np.where(outlier > 0.99, rng.uniform(60.0, 1_500.0, n_rows), minutes)  # meter left on
    dropoff = pickup + np.round(minutes * 60).astype("timedelta64[s]")

    passengers = rng.choice(
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], n_rows, p=[0.72, 0.15, 0.05, 0.03, 0.03, 0.02]
    )
    passengers[rng.random(n_rows) < 0.03] = np.nan
    fare = np.round(3.0 + 2.5 * distance + 0.5 * np.clip(minutes, 0, None), 2)
    return pd.DataFrame(
        {
            "VendorID": rng.choice(np.array([1, 2], dtype="int32"), n_rows, p=[0.25, 0.75]),
            PICKUP: pickup.astype("datetime64[us]"),
            DROPOFF: dropoff.astype("datetime64[us]"),
            PASSENGERS: passengers,
            DISTANCE: distance,
            "RatecodeID": np.where(rng.random(n_rows) < 0.97, 1.0, 2.0),
            PICKUP_ZONE: zones[pu].astype("int32"),
            DROPOFF_ZONE: zones[do].astype("int32"),
            "payment_type": rng.choice(np.array([1, 2]), n_rows, p=[0.8, 0.2]),
            "fare_amount": fare,
            "total_amount": np.round(fare * 1.25 + 1.0, 2),
        }
    )


def example_file(data_dir: str | Path, year: int, month: int) -> Path:
    """Where a generated month goes: ``<data_dir>/trips-2024-01.parquet``."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be in 1..12, got {month}")
    return Path(data_dir) / f"trips-{year:04d}-{month:02d}.parquet"


def write_month(
    data_dir: str | Path,
    year: int,
    month: int,
    n_rows: int = 100_000,
    seed: int = 42,
    drift: float = 0.0,
) -> Path:
    """Write a synthetic month, marked as generated, to ``data_dir`` and return its path."""
    trips = generate_trips(year, month, n_rows, seed=seed, drift=drift)
    marker = f"{__name__} (seed={seed}, drift={drift:g})"
    return write_generated(trips, example_file(data_dir, year, month), marker)
