"""Slow: a generated project on real engines, switched by environment variables alone.

Starts on loopback a throwaway PostgreSQL 15 cluster, an S3-compatible server (moto), an MLflow
tracking server (PostgreSQL backend store, artifacts proxied to S3) and a Prefect server (its
database on the same PostgreSQL), then runs the generated project's own `make train` against
them and checks each engine holds what it should. Level 4's scheduled flows run there too:
on a worker of their work pool, and served by one long-lived process. Run with
`pytest --slow -m engines`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from extensions import maturity
from tests import engines
from tests.conftest import Installed, cannot_run, copy_installed, git_status, project_env

# One group: with pytest-xdist, one worker runs every test here on one set of engines.
pytestmark = [pytest.mark.slow, pytest.mark.engines, pytest.mark.xdist_group("engines")]

PACKAGE = "taxi_trip_duration"
MODEL_NAME = PACKAGE
BUCKET = "mlflow"
ARTIFACT_PREFIX = "artifacts"
# The lowest level with every capability exercised here.
NEEDS = {"training_pipeline", "model_registry", "serving", "monitoring", "automated_retraining"}
LEVEL = min(
    level.number
    for level in maturity.LEVELS
    if {cap.key for cap in maturity.capabilities_at(level.number)} >= NEEDS
)
# The concurrent burst against the replicated service: bounded in count and time, loopback only.
BURST_REQUESTS = 1_000
BURST_CONCURRENCY = 16


@dataclass
class Stack:
    """The engines, the generated project, and the environment that points one at the other."""

    project: Path
    postgres: engines.Postgres
    s3: engines.Engine
    mlflow: engines.Engine
    prefect: engines.Engine
    figures: dict[str, float] = field(default_factory=dict)
    trained: bool = False

    @property
    def env(self) -> dict[str, str]:
        """The only difference between a laptop run and a run on the engines."""
        return {
            **project_env(),
            **engines.s3_env(self.s3.url),
            "MLFLOW_TRACKING_URI": self.mlflow.url,
            "PREFECT_API_URL": self.prefect.url,
        }

    def run(
        self, cmd: list[str], extra_env: dict[str, str] | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run(
            cmd, cwd=self.project, env=env, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            pytest.fail(
                f"`{' '.join(cmd)}` exited {proc.returncode}\n--- stdout ---\n"
                f"{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
                f"\n--- mlflow log ---\n{self.mlflow.log.read_text()[-3000:]}"
            )
        return proc

    def probe(self, script: str) -> object:
        """Run `script` in the project's venv against the engines; parse its last line as JSON."""
        out = self.run([str(self.project / ".venv" / "bin" / "python"), "-c", script]).stdout
        return json.loads(out.strip().splitlines()[-1])


def prefect_api(stack: Stack, path: str, body: dict[str, object]) -> object:
    return prefect_api_at(stack.prefect.url, path, body)


def prefect_api_at(api_url: str, path: str, body: dict[str, object]) -> object:
    request = urllib.request.Request(
        f"{api_url}/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def stack(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = engines.postgres_available()
    if reason:
        cannot_run(reason)
    workdir = tmp_path_factory.mktemp("engines")
    started = time.monotonic()
    project = copy_installed(installed(LEVEL), workdir / "project")
    install_seconds = time.monotonic() - started  # the copy's; its lock is committed
    venv_bin = project / ".venv" / "bin"
    env = project_env()

    postgres = engines.start_postgres()
    running: list[engines.Engine] = []
    try:
        for database in ("mlflow", "prefect"):
            postgres.create_database(database)
        s3 = engines.start_moto(workdir, env)
        running.append(s3)
        s3_env = {**env, **engines.s3_env(s3.url)}
        subprocess.run(
            [
                str(venv_bin / "python"),
                "-c",
                f"import boto3; boto3.client('s3').create_bucket(Bucket='{BUCKET}')",
            ],
            env=s3_env,
            check=True,
            timeout=60,
        )
        mlflow = engines.start_mlflow(
            venv_bin, workdir, postgres.url("mlflow"), f"s3://{BUCKET}/{ARTIFACT_PREFIX}", s3_env
        )
        running.append(mlflow)
        prefect = engines.start_prefect(venv_bin, workdir, postgres.url("prefect", "asyncpg"), env)
        running.append(prefect)
        figures = {
            "project_install_s": install_seconds,
            "postgres_startup_s": postgres.startup_seconds,
            "s3_startup_s": s3.startup_seconds,
            "mlflow_startup_s": mlflow.startup_seconds,
            "prefect_startup_s": prefect.startup_seconds,
        }
        yield Stack(project, postgres, s3, mlflow, prefect, figures)
    finally:
        for engine in reversed(running):
            engine.stop()
        postgres.stop()
        shutil.rmtree(postgres.root, ignore_errors=True)


REGISTRY_PROBE = f"""
import json
from mlflow import MlflowClient
client = MlflowClient()
versions = client.search_model_versions("name = '{MODEL_NAME}'")
model = client.get_registered_model('{MODEL_NAME}')
experiment = client.get_experiment_by_name('taxi-trip-duration')
runs = client.search_runs([experiment.experiment_id])
print(json.dumps({{
    "versions": sorted(int(v.version) for v in versions),
    "aliases": {{alias: int(version) for alias, version in model.aliases.items()}},
    "model_ids": sorted(v.source.removeprefix("models:/") for v in versions),
    "training_runs": sum("mlflow.parentRunId" not in run.data.tags for run in runs),
    "artifact_location": experiment.artifact_location,
}}))
"""

CREATE_BUCKET = f"import boto3; boto3.client('s3').create_bucket(Bucket='{BUCKET}')"
S3_PROBE = f"""
import json, boto3
pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket="{BUCKET}")
print(json.dumps([item["Key"] for page in pages for item in page.get("Contents", [])]))
"""


DATA_BUCKET = "data"
UPLOAD_DATA = """
import json, pathlib, boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket="{bucket}")
files = sorted(pathlib.Path("data/example").glob("*.parquet"))
for path in files:
    s3.upload_file(str(path), "{bucket}", f"example/{{path.name}}")
print(json.dumps(len(files)))
"""


def train_twice(stack: Stack) -> None:
    """`make data`, then `make train` twice on that data in object storage, as a team would."""
    if stack.trained:
        return
    stack.run(["make", "data"])
    assert stack.probe(UPLOAD_DATA.format(bucket=DATA_BUCKET)) == 2
    source = f"data.source=s3://{DATA_BUCKET}/example/*.parquet"
    for attempt in (1, 2):
        started = time.monotonic()
        stack.run(["make", "train", f"ARGS=--set {source}"])
        stack.figures[f"make_train_{attempt}_s"] = time.monotonic() - started
    stack.trained = True


def test_training_runs_on_real_engines_by_environment_alone(stack: Stack) -> None:
    # Given a generated project whose only change is its environment
    # When it trains twice, as a user would
    train_twice(stack)

    # Then the MLflow server (on PostgreSQL) has both runs, two versions and both aliases
    state = stack.probe(REGISTRY_PROBE)
    assert isinstance(state, dict)
    assert state["versions"] == [1, 2]
    assert state["aliases"] == {"champion": 1, "challenger": 2}
    assert state["training_runs"] == 2
    assert state["artifact_location"].startswith("mlflow-artifacts:")
    assert stack.postgres.psql("SELECT count(*) FROM model_versions", "mlflow") == "2"
    aliases = stack.postgres.psql(
        "SELECT alias || '=' || version FROM registered_model_aliases ORDER BY alias", "mlflow"
    )
    assert aliases.splitlines() == ["challenger=2", "champion=1"]
    # and nothing went to the embedded SQLite store
    assert not (stack.project / ".mlops" / "mlflow.db").exists()

    # and each version's model files are in the S3 bucket
    keys = stack.probe(S3_PROBE)
    assert isinstance(keys, list)
    for model_id in state["model_ids"]:
        model_files = [key for key in keys if f"/models/{model_id}/artifacts/" in key]
        assert any(key.endswith("/MLmodel") for key in model_files), (model_id, keys)
        assert any(key.endswith(".skops") for key in model_files), model_files
    assert any(key.endswith("plots/residuals.png") for key in keys)

    # and the Prefect server (on PostgreSQL) recorded both flow runs as completed
    flow_runs = prefect_api(stack, "flow_runs/filter", {"flows": {"name": {"any_": ["training"]}}})
    assert isinstance(flow_runs, list)
    assert [run["state_type"] for run in flow_runs] == ["COMPLETED", "COMPLETED"]
    recorded = stack.postgres.psql("SELECT count(*) FROM flow_run", "prefect")
    assert recorded == "2"

    # and the project stayed clean
    assert git_status(stack.project) == ""
    print(json.dumps({name: round(value, 1) for name, value in stack.figures.items()}))


def _post(url: str, body: dict[str, object], request_id: str) -> tuple[int, float]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Request-Id": request_id},
        method="POST",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.monotonic() - started


def burst(replicas: list[engines.Engine], count: int, concurrency: int) -> dict[str, object]:
    """`count` predictions spread over `replicas`, `concurrency` at a time; statuses, latencies."""
    zones = [(161, 236), (237, 236), (132, 265), (138, 161), (48, 68)]

    def one(i: int) -> tuple[int, float, int]:
        pickup, dropoff = zones[i % len(zones)]
        trip = {"PULocationID": pickup, "DOLocationID": dropoff, "trip_distance": 0.5 + i % 17}
        target = i % len(replicas)
        body = {"features": trip, "key": f"rider-{i % 97}"}
        status, seconds = _post(f"{replicas[target].url}/predict", body, f"burst-{i:06d}")
        return status, seconds, target

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(count)))
    elapsed = time.monotonic() - started
    latencies = sorted(seconds for _, seconds, _ in results)
    return {
        "statuses": Counter(status for status, _, _ in results),
        "per_replica": Counter(target for _, _, target in results),
        "requests_per_s": count / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def test_two_replicas_serve_the_server_champion_and_lose_no_log_rows(stack: Stack) -> None:
    # Given the registry on the MLflow server holds a champion and a challenger
    train_twice(stack)
    database = stack.postgres.create_database("serving")
    log_url = stack.postgres.url(database)
    env = {**stack.env, "SERVING_PREDICTION_LOG_URL": log_url, "SERVING_CHALLENGER_SHARE": "0.2"}
    venv_bin = stack.project / ".venv" / "bin"
    app = f"{PACKAGE}.serving.app:create_app"
    # and two replicas of the service, started together, sharing one PostgreSQL prediction log
    replicas: list[engines.Engine] = []
    try:
        with ThreadPoolExecutor(2) as pool:
            start = engines.start_service
            starting = [
                pool.submit(start, f"replica-{n}", venv_bin, stack.project, app, env)
                for n in (1, 2)
            ]
            replicas = [future.result() for future in starting]
        for replica in replicas:
            stack.figures[f"{replica.name}_startup_s"] = replica.startup_seconds
            with urllib.request.urlopen(f"{replica.url}/info", timeout=10) as response:
                info = json.load(response)
            served = {model["variant"]: model["version"] for model in info["models"]}
            assert served == {"champion": 1, "challenger": 2}, info

        # When a bounded burst of concurrent predictions hits both replicas
        result = burst(replicas, BURST_REQUESTS, BURST_CONCURRENCY)
    finally:
        # (a graceful stop flushes each replica's queued log rows)
        for replica in replicas:
            replica.stop()
    for name in ("requests_per_s", "p50_ms", "p99_ms"):
        value = result[name]
        assert isinstance(value, float)
        stack.figures[f"burst_{name}"] = value

    # Then every request succeeded, on both replicas
    assert result["statuses"] == {200: BURST_REQUESTS}, result
    assert result["per_replica"] == {0: BURST_REQUESTS // 2, 1: BURST_REQUESTS // 2}
    # and every prediction is in the shared log exactly once, from both variants
    logged = stack.postgres.psql(
        "SELECT count(*), count(DISTINCT request_id), min(request_id), max(request_id) "
        "FROM predictions",
        database,
    )
    last = f"burst-{BURST_REQUESTS - 1:06d}"
    assert logged == f"{BURST_REQUESTS}|{BURST_REQUESTS}|burst-000000|{last}"
    variants = stack.postgres.psql(
        "SELECT variant || '=' || model_version FROM predictions GROUP BY 1 ORDER BY 1", database
    )
    assert variants.splitlines() == ["challenger=2", "champion=1"]

    # When monitoring runs on that log
    started = time.monotonic()
    stack.run(["make", "monitor"], {"SERVING_PREDICTION_LOG_URL": log_url})
    stack.figures["make_monitor_s"] = time.monotonic() - started
    # Then its metrics are stored beside the log, and its report is written
    stored = stack.postgres.psql("SELECT count(DISTINCT run_id) FROM monitoring_metrics", database)
    assert stored == "1"
    # and every chart of the Grafana dashboard reads them: its SQL runs on PostgreSQL
    for title, sql in dashboard_queries(stack.project):
        charted = stack.postgres.psql(sql.replace("$__timeFilter(ts)", "TRUE"), database)
        if "drift" in title or "class shares" in title:
            assert charted, f"the dashboard's chart {title!r} is empty"
    assert list((stack.project / "reports").rglob("*.html"))
    # and the log's readers select in SQL there too: the labelled rows by an inner join, then
    # retention deletes the oldest predictions with their ground truth, in chunks
    read = stack.probe(LOG_READS.replace("LOG_URL", log_url))
    assert read["labelled"] == 10, read
    assert read["newest_first"], read
    assert read["pruned"] == [read["older"], read["older_labelled"]], read
    assert read["older"] > 0, read
    assert read["left"] == BURST_REQUESTS - read["older"], read
    assert git_status(stack.project) == ""
    print(json.dumps({name: round(value, 1) for name, value in stack.figures.items()}))


# Labelled rows and retention on the PostgreSQL log: ten of its oldest predictions get ground
# truth; read_labelled finds them, newest first; prune deletes what was served before the 101st.
LOG_READS = f"""
import json
from datetime import timedelta
from sqlalchemy import func, select
from {PACKAGE}.monitoring.data import read_labelled
from {PACKAGE}.monitoring.retention import prune
from {PACKAGE}.serving.store import make_engine, predictions, upsert_ground_truth

engine = make_engine("LOG_URL")
with engine.connect() as conn:
    rows = conn.execute(select(predictions.c.request_id, predictions.c.ts).order_by("ts")).all()
labelled_ids = {{rid for rid, _ in rows[:10]}}
upsert_ground_truth(engine, [(rid, 12.5) for rid in labelled_ids])
found = read_labelled(engine, rows[0][1] - timedelta(seconds=1))
cut = rows[100][1]
older = [rid for rid, ts in rows if ts < cut]
pruned = prune(engine, cut, chunk_rows=40)
with engine.connect() as conn:
    left = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
print(json.dumps({{
    "labelled": len(found),
    "newest_first": bool(found["ts"].is_monotonic_decreasing),
    "older": len(older),
    "older_labelled": len(labelled_ids & set(older)),
    "pruned": [pruned.predictions, pruned.ground_truth],
    "left": left,
}}))
"""


def dashboard_queries(project: Path) -> list[tuple[str, str]]:
    """(title, SQL) of each chart of the project's Grafana dashboard that reads PostgreSQL."""
    dashboard = json.loads((project / "deploy/grafana/dashboards/service.json").read_text())
    return [
        (panel["title"], target["rawSql"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "rawSql" in target
    ]


# ------------------------------------------------------------------ level 4: scheduled flows

TRAFFIC_ROWS = 1_000
# Served rows of the validation month, with their actual targets, into the prediction log.
SERVE_TRAFFIC = f"""
import json
from fastapi.testclient import TestClient
from {PACKAGE}.datasets import Window, load
from {PACKAGE}.problem import PROBLEM
from {PACKAGE}.serving.app import create_app

rows = load("data/example", Window.parse("2024-02-01", "2024-03-01"))[0].head({TRAFFIC_ROWS})
target = PROBLEM.target.name
with TestClient(create_app()) as client:
    for start in range(0, len(rows), 50):
        chunk = rows.iloc[start : start + 50]
        body = {{"rows": json.loads(chunk[PROBLEM.features].to_json(orient="records"))}}
        answer = client.post("/predict/batch", json=body)
        answer.raise_for_status()
        truth = [
            {{"request_id": p["request_id"], target: float(value)}}
            for p, value in zip(answer.json()["predictions"], chunk[target], strict=True)
        ]
        client.post("/ground-truth", json={{"items": truth}}).raise_for_status()
    client.app.state.service.log.flush()
print(json.dumps(len(rows)))
"""
MONITORING = "automation-monitoring/monitoring-hourly"
RETRAINING = "retraining-check/retraining-check-daily"
RUN_DEPLOYMENT = """
import json, sys, time
from prefect.deployments import run_deployment
started = time.monotonic()
run = run_deployment(sys.argv[1], timeout=600)
print(json.dumps({"state": run.state_type.value, "seconds": time.monotonic() - started}))
"""


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> dict[str, str]:
    """A champion on the MLflow server and recent, labelled traffic in a PostgreSQL log."""
    train_twice(stack)
    log_url = stack.postgres.url(stack.postgres.create_database("automation"))
    env = {"SERVING_PREDICTION_LOG_URL": log_url}
    python = str(stack.project / ".venv" / "bin" / "python")
    stack.run([python, "-c", SERVE_TRAFFIC], env)
    return env


def history(stack: Stack) -> dict[str, int]:
    """How many monitoring results and decisions the loop has recorded so far."""
    folder = stack.project / ".mlops" / "automation"
    return {
        name: len((folder / f"{name}.jsonl").read_text().splitlines())
        if (folder / f"{name}.jsonl").is_file()
        else 0
        for name in ("monitoring", "decisions")
    }


def run_both(stack: Stack, env: dict[str, str], label: str) -> dict[str, int]:
    """Trigger monitoring, then the retraining check; each must complete. The history gained."""
    before = history(stack)
    python = str(stack.project / ".venv" / "bin" / "python")
    for deployment, key in [(MONITORING, "monitoring"), (RETRAINING, "retraining")]:
        out = stack.run([python, "-c", RUN_DEPLOYMENT, deployment], env).stdout
        result = json.loads(out.strip().splitlines()[-1])
        assert result["state"] == "COMPLETED", (deployment, result)
        stack.figures[f"{label}_{key}_run_s"] = result["seconds"]
    after = history(stack)
    return {name: after[name] - before[name] for name in after}


def work_pool(project: Path) -> str:
    policy = yaml.safe_load((project / "configs" / "retraining.yaml").read_text())
    return str(policy["schedules"]["work_pool"])


def test_scheduled_flows_run_on_a_worker_of_their_work_pool(
    stack: Stack, traffic: dict[str, str]
) -> None:
    # Given a champion, recent traffic, and the deployments registered by `make deploy-flows`
    pool = work_pool(stack.project)
    deployed = stack.run(["make", "deploy-flows"], traffic).stdout
    assert f"work pool {pool} (process): created" in deployed
    assert f"prefect worker start --pool {pool}" in deployed
    state = stack.probe(
        "import json; from prefect import get_client\n"
        "with get_client(sync_client=True) as c:\n"
        "    print(json.dumps([d.work_pool_name for d in c.read_deployments()"
        " if d.tags and 'mlops' in d.tags]))"
    )
    assert state == [pool, pool]

    # When a worker polls that pool, started away from the project (the runs find it alone)
    venv_bin = stack.project / ".venv" / "bin"
    workdir = stack.project.parent
    log = workdir / "worker.log"
    env = {**stack.env, **traffic, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    cmd = [str(venv_bin / "prefect"), "worker", "start", "--pool", pool]
    worker = engines.Engine("worker", "", engines.spawn("worker", cmd, log, env, workdir), log)
    try:
        # and each deployment is triggered
        gained = run_both(stack, traffic, "worker")
    finally:
        worker.stop()

    # Then both runs completed, and the loop recorded a monitoring result and a decision
    assert gained == {"monitoring": 1, "decisions": 1}, log.read_text()[-3000:]
    assert git_status(stack.project) == ""
    print(json.dumps({name: round(value, 1) for name, value in stack.figures.items()}))


SERVING_LINE = re.compile(r"serving them against a local Prefect server, (http://\S+/api) ")


def test_one_process_serves_the_scheduled_flows(stack: Stack, traffic: dict[str, str]) -> None:
    # Given a champion and recent traffic, and no Prefect server configured
    env = {**stack.env, **traffic}
    del env["PREFECT_API_URL"]
    # a port and home of its own: not the server other commands of this process left running
    env["PREFECT_SERVER_API_PORT"] = str(engines.free_port())
    env["PREFECT_HOME"] = str(stack.project.parent / "automation-prefect-home")
    log = stack.project.parent / "automation.log"
    python = str(stack.project / ".venv" / "bin" / "python")
    cmd = [python, "-m", f"{PACKAGE}.automation", "serve-flows"]

    # When `make automation`'s command runs
    started = time.monotonic()
    process = engines.spawn("automation", cmd, log, env, stack.project)
    serving = engines.Engine("automation", "", process, log)
    try:
        engines.wait_until(
            "automation", lambda: bool(SERVING_LINE.search(log.read_text())), process, log, 240
        )
        match = SERVING_LINE.search(log.read_text())
        assert match is not None
        api_url = match.group(1)
        stack.figures["serve_startup_s"] = time.monotonic() - started

        # Then its local server schedules the next runs of both flows (the ephemeral API would not)
        def scheduled() -> bool:
            runs = prefect_api_at(
                api_url,
                "flow_runs/filter",
                {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}, "limit": 200},
            )
            assert isinstance(runs, list)
            return len({run["deployment_id"] for run in runs}) == 2

        engines.wait_until("scheduler", scheduled, process, log, 120)
        # and runs of its deployments, triggered now, complete in that process
        gained = run_both(stack, {**traffic, "PREFECT_API_URL": api_url}, "serve")
    finally:
        serving.stop()

    assert gained == {"monitoring": 1, "decisions": 1}, log.read_text()[-3000:]
    # and stopping it stops its server
    assert not engines.http_ok(f"{api_url}/health")()
    assert git_status(stack.project) == ""
    print(json.dumps({name: round(value, 1) for name, value in stack.figures.items()}))
