"""The batch scoring flow: a file (or a month of data/) scored by the champion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..training import environment

environment.set_offline_defaults()

from prefect import flow  # noqa: E402

from ..contract import month_file, read_trips  # noqa: E402
from ..predict import predict  # noqa: E402
from ..training.config import parse_month  # noqa: E402
from ..training.registry import CHAMPION, load_model_by_alias  # noqa: E402
from ..training.tracking import configure_tracking  # noqa: E402

PREDICTED = "predicted_duration"


@dataclass(frozen=True)
class ScoringResult:
    output: Path
    rows: int
    model_version: int


def resolve_input(source: str, data_dir: Path = Path("data")) -> Path:
    """``source`` is a parquet/csv path or a month ``YYYY-MM`` of ``data_dir``."""
    try:
        year, month = parse_month(source)
    except ValueError:
        return Path(source)
    return month_file(data_dir, year, month)


def default_output(source: Path, reports_dir: Path = Path("reports")) -> Path:
    return reports_dir / "batch" / f"{source.stem}-predictions.parquet"


@flow(name="batch scoring", log_prints=False)
def batch_scoring_flow(
    source: str, output: Path | None = None, data_dir: Path = Path("data")
) -> ScoringResult:
    """Score every trip of ``source`` with the champion; write trips + predictions + version."""
    path = resolve_input(source, data_dir)
    trips = read_trips(path)
    configure_tracking()
    model, version = load_model_by_alias(CHAMPION)
    scored = trips.assign(
        **{PREDICTED: predict(model, trips)},
        model_version=version,
        model_alias=CHAMPION,
        scored_at=datetime.now(UTC),
    )
    output = output or default_output(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(output, index=False)
    print(f"scored {len(scored)} trips of {path} with champion v{version} -> {output}")
    return ScoringResult(output, len(scored), version)
