"""``make simulate``: the closed loop over generated months, offline and deterministic.

Each month: serve traffic through the live-swap service (in-process), attach ground truth,
monitor, decide, retrain, gate, promote and reload the service. Everything lives in its own
state folder (``.mlops/simulation``), so the project's registry is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml
from pydantic import SecretStr

with warnings.catch_warnings():  # starlette's note about httpx2; the client works as is
    warnings.filterwarnings("ignore", message=".*httpx.*")
    from fastapi.testclient import TestClient

from ..contract import FEATURES, TARGET, load_month
from ..serving.settings import ServingSettings
from ..synthetic import write_month
from ..training.config import load_config, parse_month
from .policy import DEFAULT_POLICY, load_policy, parse_policy

if TYPE_CHECKING:
    from .loop import LoopPaths

ADMIN_TOKEN = "simulation-token"
BATCH = 500


@dataclass(frozen=True)
class Scenario:
    """What the simulation generates and serves."""

    first: str = "2024-01"
    months: int = 8
    drift_from: int = 5  # 1-based month number where drift starts
    drift: float = 0.8
    rows: int = 20_000  # trips generated per month
    traffic: int = 3_000  # trips served per month
    budget: int = 2  # hyperparameter trials per training run
    seed: int = 7


@dataclass(frozen=True)
class TimelineRow:
    """One month of the loop."""

    month: str
    injected_drift: float
    drift_share: float
    champion_rmse: float | None
    served_version: int
    decision: str
    reason: str
    champion_version: int


def _month(first: str, offset: int) -> str:
    from .loop import shift_month

    return shift_month(first, offset)


def _isolate(state: Path) -> None:
    """A fresh, private MLflow store and Prefect home for the run."""
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{state.resolve() / 'mlflow.db'}"
    os.environ["MLFLOW_ARTIFACT_LOCATION"] = (state.resolve() / "artifacts").as_uri()


def _write_configs(state: Path, scenario: Scenario, policy_path: Path) -> Path:
    """Training config and policy of the simulation; returns the policy file."""
    training = {
        "data": {
            "dir": str(state / "data"),
            "train_months": [scenario.first],
            "validation_month": _month(scenario.first, 1),
            "synthetic_rows": scenario.rows,
            "seed": scenario.seed,
        },
        "model": {"family": "linear"},
        "search": {"budget": scenario.budget, "seed": scenario.seed},
    }
    (state / "training.yaml").write_text(yaml.safe_dump(training))
    tree = yaml.safe_load(policy_path.read_text()) or {}
    tree.setdefault("training", {})["config"] = str(state / "training.yaml")
    parse_policy(tree, str(policy_path))  # fail early, with the file's name
    path = state / "retraining.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _serve_month(client: TestClient, period: str, trips: pd.DataFrame) -> int:
    """Send ``trips`` as batch predictions, then their actual durations; return the version."""
    version, truth = 0, []
    for start in range(0, len(trips), BATCH):
        chunk = trips.iloc[start : start + BATCH]
        body = {"trips": chunk[FEATURES].to_dict("records")}
        response = client.post(
            "/predict/batch", json=body, headers={"x-request-id": f"{period}-{start}"}
        )
        response.raise_for_status()
        answer = response.json()
        version = answer["model_version"]
        truth += [
            {"request_id": p["request_id"], "duration": float(duration)}
            for p, duration in zip(answer["predictions"], chunk[TARGET], strict=True)
        ]
    client.post("/ground-truth", json={"items": truth}).raise_for_status()
    return int(version)


def _table(rows: list[TimelineRow]) -> str:
    lines = [
        "| month | injected drift | drift share | champion RMSE | served | decision | champion "
        "| reason |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rmse = "-" if row.champion_rmse is None else f"{row.champion_rmse:.2f}"
        lines.append(
            f"| {row.month} | {row.injected_drift:.1f} | {row.drift_share:.2f} | {rmse} "
            f"| v{row.served_version} | {row.decision} | v{row.champion_version} | {row.reason} |"
        )
    return "\n".join(lines)


def simulate(
    scenario: Scenario | None = None,
    policy_path: Path = DEFAULT_POLICY,
    state: Path = Path(".mlops/simulation"),
    reports: Path = Path("reports/simulation"),
) -> list[TimelineRow]:
    """Run the loop over ``scenario``'s months; write the timeline and reports; return it."""
    scenario = scenario or Scenario()
    started = time.perf_counter()
    _isolate(state)
    # Imported after _isolate: the registry and tracking read the environment it sets.
    from ..serving.models import load_models
    from . import loop
    from .promotion import promote
    from .service import SwapSettings, create_app

    policy = load_policy(_write_configs(state, scenario, policy_path))
    months = [_month(scenario.first, i) for i in range(scenario.months)]
    drifts = [scenario.drift if i + 1 >= scenario.drift_from else 0.0 for i in range(len(months))]
    for period, drift in zip(months, drifts, strict=True):
        write_month(state / "data", *parse_month(period), scenario.rows, scenario.seed, drift)
    if reports.exists():
        shutil.rmtree(reports)
    paths = loop.LoopPaths.under(state / "automation", reports / "monitoring")
    first = loop.default_trainer(load_config(policy.training.config))
    promote(first.model_version)  # the trainer assigns no alias: the first model is champion
    print(f"bootstrap: champion v{first.model_version} trained on {months[0]}", end=" ")
    print(f"({time.perf_counter() - started:.0f} s)")

    settings = ServingSettings(
        prediction_log_url=f"sqlite:///{state.resolve() / 'predictions.db'}",
        challenger_share=0.0,
        log_flush_interval=0.05,
    )
    app = create_app(
        settings, load_models, SwapSettings(poll_interval=0, admin_token=SecretStr(ADMIN_TOKEN))
    )
    timeline: list[TimelineRow] = []
    with TestClient(app) as client:
        engine = app.state.service.engine
        for index in range(2, len(months)):
            period, drift = months[index], drifts[index]
            trips = load_month(state / "data", *parse_month(period)).sample(
                scenario.traffic, random_state=scenario.seed
            )
            start = datetime.now(UTC)
            served = _serve_month(client, period, trips)
            app.state.service.log.flush()
            result = loop.run_monitoring(
                policy, engine, paths, datetime.now(UTC), start=start, period=period
            )
            month_end = datetime(*parse_month(_month(period, 1)), 1, tzinfo=UTC)
            record = loop.run_retraining_check(policy, engine, paths, month_end)
            reload = client.post(
                "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            reload.raise_for_status()
            timeline.append(
                TimelineRow(
                    month=period,
                    injected_drift=drift,
                    drift_share=result.drift_share,
                    champion_rmse=result.rmse,
                    served_version=served,
                    decision=record.outcome,
                    reason=record.reason,
                    champion_version=int(reload.json()["champion_version"]),
                )
            )
            print(f"{period}: {record.outcome} ({time.perf_counter() - started:.0f} s)")
    _write_reports(reports, timeline, paths)
    print(_table(timeline))
    print(f"simulated {len(timeline)} months in {time.perf_counter() - started:.0f} s")
    print(f"reports: {reports}/ (timeline.md, decisions.jsonl, monitoring/*.html)")
    return timeline


def _write_reports(reports: Path, timeline: list[TimelineRow], paths: LoopPaths) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    table = _table(timeline)
    (reports / "timeline.md").write_text(f"# Closed-loop simulation\n\n{table}\n")
    (reports / "timeline.json").write_text(
        json.dumps([asdict(row) for row in timeline], indent=2) + "\n"
    )
    if paths.decisions.is_file():
        shutil.copy(paths.decisions, reports / "decisions.jsonl")
