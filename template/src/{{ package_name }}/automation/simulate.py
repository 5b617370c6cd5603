"""``make simulate``: the closed loop over generated months, offline, for any declared problem.

Each month: serve its rows through the live-swap service (in-process), attach ground truth,
monitor, decide, retrain, gate, promote and reload the service; then the month joins the
history a challenger may train on. The months come from the example's generator (``synthetic``)
for the shipped example, else from the contract itself (``sampledata``), with drift from a
chosen month on. Everything lives in its own state folder (``.mlops/simulation``), so the
project's registry is never touched. This is the only place outside ``make data`` where
generated data is used.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from pydantic import SecretStr

from .. import datasets, sampledata, synthetic
from ..problem import PROBLEM
from ..serving.settings import ServingSettings
from ..training.config import read_yaml
from . import DEFAULT_POLICY
from .policy import RetrainingPolicy, load_policy

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from .loop import LoopPaths

ADMIN_TOKEN = "simulation-token"
#: The training window of the simulation's challengers when the policy sets none: a month.
MONTH_DAYS = 31
BATCH = 500


@dataclass(frozen=True)
class Scenario:
    """What the simulation generates and serves."""

    first: tuple[int, int] = (2024, 1)  # year, month
    months: int = 8
    drift_from: int = 5  # 1-based month number where drift starts
    drift: float = 0.8
    rows: int = 20_000  # rows generated per month
    traffic: int = 3_000  # rows served per month
    budget: int = 2  # hyperparameter trials per training run
    seed: int = 7

    def month(self, offset: int) -> datetime:
        """The first instant of month ``offset`` (0 = ``first``), in UTC."""
        index = self.first[0] * 12 + self.first[1] - 1 + offset
        return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimelineRow:
    """One month of the loop."""

    month: str
    injected_drift: float
    drift_share: float
    metric: str  # the watched metric (``triggers.metric``)
    champion_score: float | None
    served_version: int
    decision: str
    reason: str
    champion_version: int


def contract_rows(scenario: Scenario, drift: float, index: int) -> pd.DataFrame:
    """Month ``index``'s rows drawn from the contract (``sampledata``), event times within it.

    Every month is a slice of one draw per drift level with one seed, so the target depends on
    the features the same way throughout; drift moves the features and the target.
    """
    frame = _contract_draw(scenario, drift)
    rows = frame.iloc[index * scenario.rows : (index + 1) * scenario.rows].reset_index(drop=True)
    if PROBLEM.event_time is not None:  # spread over the month, in the drawn order
        start = pd.Timestamp(scenario.month(index)).tz_localize(None)
        seconds = (
            pd.Timestamp(scenario.month(index + 1)).tz_localize(None) - start
        ).total_seconds()
        spread = pd.Series(range(len(rows))) * (seconds - 1) / max(len(rows), 1)
        rows[PROBLEM.event_time] = start + pd.to_timedelta(spread.to_numpy(), unit="s")
    return rows


@functools.cache
def _contract_draw(scenario: Scenario, drift: float) -> pd.DataFrame:
    return sampledata.sample_frame(scenario.rows * scenario.months, scenario.seed, drift)


def write_month_rows(folder: Path, scenario: Scenario, index: int, drift: float) -> Path:
    """Generate month ``index`` into ``folder``: the example's trips, or the contract's rows."""
    moment = scenario.month(index)
    if PROBLEM.name == synthetic.EXAMPLE:
        return synthetic.write_month(
            folder, moment.year, moment.month, scenario.rows, scenario.seed, drift
        )
    path = folder / f"rows-{moment:%Y-%m}.parquet"
    marker = f"{sampledata.GENERATED_BY} (seed={scenario.seed}, drift={drift:g})"
    return datasets.write_generated(contract_rows(scenario, drift, index), path, marker)


def _isolate(state: Path) -> None:
    """A fresh, private MLflow store for the run."""
    if state.exists():
        shutil.rmtree(state)
    state.mkdir(parents=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{state.resolve() / 'mlflow.db'}"
    os.environ["MLFLOW_ARTIFACT_LOCATION"] = (state.resolve() / "artifacts").as_uri()


def _write_configs(
    state: Path, scenario: Scenario, policy_path: Path, first: Path, second: Path
) -> RetrainingPolicy:
    """The simulation's training config (the ``first`` month's file trains, the ``second``'s
    validates) and policy."""
    training = {
        "data": {
            "source": str(state / "data"),
            "train": {"source": str(first)},
            "validation": {"source": str(second)},
            "seed": scenario.seed,
        },
        "model": {"family": "linear"},
        "search": {"budget": scenario.budget, "seed": scenario.seed},
    }
    (state / "training.yaml").write_text(yaml.safe_dump(training))
    tree = read_yaml(policy_path)
    training = tree.get("training", {})
    tree["training"] = {
        **training,
        "config": str(state / "training.yaml"),
        "data": {},  # the generated months, whatever source the project's policy names
        # a challenger learns the latest month (the policy's window when it sets one)
        "window_days": training.get("window_days") or MONTH_DAYS,
    }
    path = state / "retraining.yaml"
    path.write_text(yaml.safe_dump(tree))
    return load_policy(path)


def serve_rows(client: TestClient, rows: pd.DataFrame, prefix: str) -> int:
    """Send ``rows`` as batch predictions, then their ground truth; return the served version."""
    target, features = PROBLEM.target.name, PROBLEM.feature_frame(rows)
    version, truth = 0, []
    for start in range(0, len(rows), BATCH):
        chunk = features.iloc[start : start + BATCH]
        body = {"rows": json.loads(chunk.to_json(orient="records", date_format="iso"))}
        response = client.post(
            "/predict/batch", json=body, headers={"x-request-id": f"{prefix}-{start}"}
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        version = int(answer["model_version"])
        actual = rows[target].iloc[start : start + BATCH]
        truth += [
            {"request_id": p["request_id"], target: value}
            for p, value in zip(answer["predictions"], actual.tolist(), strict=True)
        ]
    client.post("/ground-truth", json={"items": truth}).raise_for_status()
    return version


def _table(rows: list[TimelineRow]) -> str:
    metric = rows[0].metric if rows else "metric"
    lines = [
        f"| month | injected drift | drift share | champion {metric} | served | decision "
        "| champion | reason |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        score = "-" if row.champion_score is None else f"{row.champion_score:.3g}"
        lines.append(
            f"| {row.month} | {row.injected_drift:.1f} | {row.drift_share:.2f} | {score} "
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
    with warnings.catch_warnings():  # starlette's note about httpx2; the client works as is
        warnings.filterwarnings("ignore", message=".*httpx.*")
        from fastapi.testclient import TestClient

    from ..serving.models import load_models
    from ..training.config import load_config
    from ..training.tracking import configure_tracking
    from . import loop
    from .promotion import promote
    from .service import SwapSettings, create_app

    configure_tracking()
    months = [scenario.month(i) for i in range(scenario.months + 1)]  # and the end of the last
    drifts = [scenario.drift if i + 1 >= scenario.drift_from else 0.0 for i in range(len(months))]
    # The first two months are history; a later one joins it once it has been served and judged.
    files = [
        write_month_rows(state / ("data" if i < 2 else "incoming"), scenario, i, drifts[i])
        for i in range(scenario.months)
    ]
    policy = _write_configs(state, scenario, policy_path, files[0], files[1])
    if reports.exists():
        shutil.rmtree(reports)
    paths = loop.LoopPaths.under(state / "automation", reports / "monitoring")
    first = loop.default_trainer(load_config(policy.training.config))
    promote(first.model_version)  # the trainer assigns no alias: the first model is champion
    print(f"bootstrap: champion v{first.model_version} trained on {months[0]:%Y-%m}", end=" ")
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
        for index in range(2, scenario.months):
            label, period = f"{months[index]:%Y-%m}", (months[index], months[index + 1])
            rows = datasets.load(files[index])[0]
            rows = rows.sample(min(scenario.traffic, len(rows)), random_state=scenario.seed)
            start = datetime.now(UTC)
            served = serve_rows(client, rows, label)
            app.state.service.log.flush()
            result = loop.run_monitoring(
                policy, engine, paths, datetime.now(UTC), start=start, period=period, label=label
            )
            record = loop.run_retraining_check(policy, engine, paths, period[1])
            files[index].replace(state / "data" / files[index].name)  # now history
            reload = client.post(
                "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            reload.raise_for_status()
            timeline.append(
                TimelineRow(
                    month=label,
                    injected_drift=drifts[index],
                    drift_share=result.drift_share,
                    metric=result.metric,
                    champion_score=result.score,
                    served_version=served,
                    decision=record.outcome,
                    reason=record.reason,
                    champion_version=int(reload.json()["champion_version"]),
                )
            )
            print(f"{label}: {record.outcome} ({time.perf_counter() - started:.0f} s)")
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
