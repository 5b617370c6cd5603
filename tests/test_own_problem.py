"""Slow: a user's own problem in one place. Replace only the contract, the configs and the data.

A level-4 project is generated, its `contract.py` is replaced by the diabetes problem of
`tests/data/own_problem/` (string categories, nulls, a target in points), scikit-learn's diabetes
data is dropped into `data/` and the configs point at it. Then every command of every level runs:
`make lint test train` twice, live predictions and a batch through the service, ground truth,
`monitor`, `promote`, `retrain` and `score`. No other file may change.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import git_commit_all, project_env, run
from tests.engines import free_port

pytestmark = pytest.mark.slow

OWN = Path(__file__).parent / "data" / "own_problem"
PACKAGE = "taxi_trip_duration"  # the default answers' package name; the problem is not taxis
LEVEL = 4
DATA = "data/diabetes/patients.parquet"
TRAIN = {"start": "2023-01-01", "end": "2023-10-01"}
VALIDATION = {"start": "2023-10-01", "end": "2024-01-01"}


def _edit_yaml(path: Path, edit: Callable[[dict], None]) -> None:
    tree = yaml.safe_load(path.read_text()) or {}
    edit(tree)
    path.write_text(yaml.safe_dump(tree, sort_keys=False))


def _point_configs_at_the_data(project: Path) -> None:
    """What a user edits in configs/: where the data is, its windows, sizes a small problem has."""

    def training(tree: dict) -> None:
        tree["data"] = {**tree.get("data", {}), "source": DATA, "train": TRAIN}
        tree["data"]["validation"] = VALIDATION

    def monitoring(tree: dict) -> None:
        # the reference defaults to the training window; a small problem needs smaller samples
        tree["drift"] = {**tree.get("drift", {}), "min_rows": 50}
        tree["promotion"] = {**tree.get("promotion", {}), "min_labelled": 50}

    def retraining(tree: dict) -> None:
        tree["triggers"] = {**tree.get("triggers", {}), "min_labelled_rows": 50}
        # the data has no recent rows: the challenger trains on a fixed window of it
        tree["training"] = {
            **tree.get("training", {}),
            "data": {"source": DATA, **TRAIN},
            "window_days": None,
        }

    _edit_yaml(project / "configs" / "training.yaml", training)
    _edit_yaml(project / "configs" / "monitoring.yaml", monitoring)
    _edit_yaml(project / "configs" / "retraining.yaml", retraining)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, render: Callable[..., Path]) -> Path:
    """A level-4 project with the diabetes problem in place and installed."""
    project = tmp_path_factory.mktemp("own") / "project"
    shutil.copytree(render(level=LEVEL), project, ignore=shutil.ignore_patterns(".git"))
    git_commit_all(project)
    run(["make", "install"], project)
    git_commit_all(project, "Lock the environment")  # a first `make install` may write uv.lock
    shutil.copy(OWN / "contract.py", project / "src" / PACKAGE / "contract.py")
    python = str(project / ".venv" / "bin" / "python")
    run([python, str(OWN / "make_data.py"), "data/diabetes"], project)
    _point_configs_at_the_data(project)
    return project


@pytest.fixture(scope="module")
def service(project: Path) -> Iterator[str]:
    """`make serve` on a free loopback port, after two trainings (champion and challenger)."""
    for _ in range(2):
        run(["make", "train"], project)
    port = free_port()
    log = (project / ".mlops" / "serve.log").open("w")
    process = subprocess.Popen(
        ["make", "serve", f"PORT={port}"],
        cwd=project,
        env=project_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        subprocess.run(["pkill", "-TERM", "-g", str(process.pid)], check=False)
        process.wait(timeout=30)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the service exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    pytest.fail(f"the service was not ready within {timeout} s")


def _post(url: str, body: object, headers: dict[str, str] | None = None) -> object:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _read_csv(path: Path) -> list[dict[str, str | None]]:
    with path.open(newline="") as handle:
        return [
            {k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(handle)
        ]


def _json_value(text: str | None) -> str | float | None:
    """A CSV cell as a JSON client sends it: numbers as numbers, the rest as text."""
    try:
        return float(text) if text is not None else None
    except ValueError:
        return text


def _requests(project: Path) -> list[dict[str, str | float | None]]:
    """The last quarter's patients, without their outcome, as the service receives them."""
    rows = _read_csv(project / "data" / "diabetes" / "new-patients.csv")
    return [{k: _json_value(v) for k, v in row.items() if k != "visit_date"} for row in rows]


def test_lint_and_tests_pass_with_the_users_contract(project: Path) -> None:
    run(["make", "lint"], project)
    run(["make", "test"], project)


def test_every_level_runs_on_the_users_problem(project: Path, service: str) -> None:
    requests = _requests(project)
    predicted = "predicted_progression"
    # Live predictions, one by one, with the patient id as the request id ...
    ids = []
    for record in requests[:60]:
        ids.append(str(record["patient_id"]))
        answer = _post(f"{service}/predict", {"features": record}, {"X-Request-ID": ids[-1]})
        assert isinstance(answer, dict)
        assert 20 <= answer[predicted] <= 360
    # ... and the rest as one batch (its rows get the ids late-batch/0, late-batch/1, ...)
    answer = _post(f"{service}/predict/batch", {"rows": requests[60:]}, {"X-Request-ID": "late"})
    assert isinstance(answer, dict)
    ids += [f"late/{i}" for i in range(len(requests) - 60)]
    # Ground truth for every request, then monitoring, promotion, retraining and scoring
    outcomes = _read_csv(project / "data" / "diabetes" / "outcomes.csv")
    with (project / "data" / "diabetes" / "truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", "progression"])
        writer.writerows(zip(ids, [row["progression"] for row in outcomes], strict=True))
    run(["make", "attach-truth", "FILE=data/diabetes/truth.csv"], project)
    for target in ("monitor", "promote", "retrain"):
        run(["make", target], project)
    run(["make", "score", "SOURCE=data/diabetes/new-patients.csv"], project)


def test_nothing_but_the_contract_configs_and_data_changed(project: Path, service: str) -> None:
    changed = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    paths = {line[3:] for line in changed.splitlines()}
    allowed = (f"src/{PACKAGE}/contract.py", "configs/", "data/")
    assert [p for p in paths if not p.startswith(allowed)] == []
    assert f"src/{PACKAGE}/contract.py" in paths
