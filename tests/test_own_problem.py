"""Slow: a user's own problem in one place. Replace only the contract, the configs and the data.

For each task (regression, binary and multiclass classification) a level-4 project gets the
contract of `tests/data/own_problem/` in place of its `contract.py`, data a package ships in
`data/` and configs that point at it: scikit-learn's diabetes data (string categories, nulls, a
target in points), its breast cancer data (string classes, a positive one) and its wine data
(integer classes). Then every command of every level runs: `make lint test train` twice, live
predictions and a batch through the service, ground truth, `monitor`, `promote`, `retrain` and
`score`. No other file may change. And a level-2 project with the user's own (binary) problem
moves up to level 3, whose serving and monitoring then derive from that contract.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Installed, copy_installed, git_commit_all, git_status, project_env, run
from tests.engines import free_port
from tests.transitions import build_template_repo, generate, update

pytestmark = pytest.mark.slow

OWN = Path(__file__).parent / "data" / "own_problem"
PACKAGE = "taxi_trip_duration"  # the default answers' package name; the problem is not taxis
LEVEL = 4
TRAIN = {"start": "2023-01-01", "end": "2023-10-01"}
VALIDATION = {"start": "2023-10-01", "end": "2024-01-01"}
Record = dict[str, str | float | None]


@dataclass(frozen=True)
class OwnProblem:
    """A problem of `tests/data/own_problem/`: its task, where its data goes, its columns."""

    task: str  # also names its contract (<task>_contract.py) and its dataset in make_data.py
    folder: str  # where its data goes in the project
    identifier: str
    event_time: str
    target: str
    classes: tuple[str, ...]  # as the service's answers name them; () for a regressor
    min_rows: int  # the smallest samples monitoring, promotion and retraining may judge
    value_range: tuple[float, float] = (-math.inf, math.inf)  # a regressor's plausible answers
    threshold: float | None = None  # a binary contract's: the positive class from it on

    @property
    def labelled(self) -> str:
        return f"{self.folder}/labelled.parquet"

    def check_answer(self, answer: dict[str, object]) -> None:
        predicted = answer[f"predicted_{self.target}"]
        if not self.classes:
            assert isinstance(predicted, float)
            assert self.value_range[0] <= predicted <= self.value_range[1]
            return
        probabilities = answer["probabilities"]
        assert isinstance(probabilities, dict)
        assert list(probabilities) == list(self.classes)
        assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-6)
        if self.threshold is None:
            assert str(predicted) == max(probabilities, key=probabilities.__getitem__)
        else:  # the first class of a binary contract is its negative one, here
            negative, positive = self.classes
            chance = probabilities[positive]
            assert predicted == (positive if chance >= self.threshold else negative)


PROBLEMS = [
    OwnProblem(
        task="regression",
        folder="data/diabetes",
        identifier="patient_id",
        event_time="visit_date",
        target="progression",
        classes=(),
        min_rows=50,
        value_range=(20, 360),
    ),
    OwnProblem(
        task="binary",
        folder="data/tumours",
        identifier="patient_id",
        event_time="exam_date",
        target="diagnosis",
        classes=("benign", "malignant"),
        min_rows=50,
        threshold=0.3,  # declared in binary_contract.py
    ),
    OwnProblem(
        task="multiclass",
        folder="data/wines",
        identifier="wine_id",
        event_time="tasting_date",
        target="cultivar",
        classes=("0", "1", "2"),
        min_rows=20,  # 178 wines: about 45 in the last quarter
    ),
]


def _edit_yaml(path: Path, edit: Callable[[dict], None]) -> None:
    tree = yaml.safe_load(path.read_text()) or {}
    edit(tree)
    path.write_text(yaml.safe_dump(tree, sort_keys=False))


def _point_configs_at_the_data(project: Path, problem: OwnProblem) -> None:
    """What a user edits in configs/: where the data is, its windows, sizes a small problem has."""
    data, n = problem.labelled, problem.min_rows

    def training(tree: dict) -> None:
        tree["data"] = {**tree.get("data", {}), "source": data, "train": TRAIN}
        tree["data"]["validation"] = VALIDATION

    def monitoring(tree: dict) -> None:
        # the reference defaults to the training window; a small problem needs smaller samples
        tree["drift"] = {**tree.get("drift", {}), "min_rows": n}
        # any drift counts (thresholds as set, no calibration), so that the test walks the
        # whole loop: retraining and the gate
        anything = {"calibration_rounds": 0, "numerical_threshold": 1e-6}
        tree["drift"] |= anything | {"categorical_threshold": 1e-6}
        tree["checks"] = {**tree.get("checks", {}), "min_labelled": n}
        tree["promotion"] = {**tree.get("promotion", {}), "min_labelled": n}

    def retraining(tree: dict) -> None:
        # retrain on any drifted feature (monitoring's verdict, see above)
        anything = {"drift_share": 0.01, "min_labelled_rows": n}
        tree["triggers"] = {**tree.get("triggers", {}), **anything}
        tree["gate"] = {**tree.get("gate", {}), "min_rows": n}
        # the data has no recent rows: the challenger trains on a fixed window of it
        tree["training"] = {
            **tree.get("training", {}),
            "data": {"source": data, **TRAIN},
            "window_days": None,
        }

    edits = {"training": training, "monitoring": monitoring, "retraining": retraining}
    for name, edit in edits.items():
        path = project / "configs" / f"{name}.yaml"
        if path.exists():  # the configs of the project's level
            _edit_yaml(path, edit)


@pytest.fixture(scope="module", params=PROBLEMS, ids=lambda problem: problem.task)
def problem(request: pytest.FixtureRequest) -> OwnProblem:
    return request.param


@pytest.fixture(scope="module")
def project(
    problem: OwnProblem, installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A level-4 project with the user's problem in place and installed."""
    project = copy_installed(installed(LEVEL), tmp_path_factory.mktemp("own") / problem.task)
    shutil.copy(OWN / f"{problem.task}_contract.py", project / "src" / PACKAGE / "contract.py")
    python = str(project / ".venv" / "bin" / "python")
    run([python, str(OWN / "make_data.py"), problem.task, problem.folder], project)
    _point_configs_at_the_data(project, problem)
    return project


@pytest.fixture(scope="module")
def service(project: Path) -> Iterator[str]:
    """`make serve` on a free loopback port, after two trainings (champion and challenger)."""
    for _ in range(2):
        run(["make", "train"], project)
    with serving(project) as url:
        yield url


@contextmanager
def serving(project: Path) -> Iterator[str]:
    """`make serve` on a free loopback port while the block runs; its address."""
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


def _post(url: str, body: object, headers: dict[str, str] | None = None) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert isinstance(answer, dict)
    return answer


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


def _requests(project: Path, problem: OwnProblem) -> list[Record]:
    """The last quarter's rows, without their target, as the service receives them."""
    rows = _read_csv(project / problem.folder / "new.csv")
    return [{k: _json_value(v) for k, v in row.items() if k != problem.event_time} for row in rows]


def _parquet_shape(project: Path, path: str) -> dict[str, Any]:
    """Rows and columns of a parquet file, read by the project's own reader."""
    script = (
        f"import json, sys; from {PACKAGE}.datasets import read_file; "
        "frame, _ = read_file(sys.argv[1]); "
        "print(json.dumps({'rows': len(frame), 'columns': list(frame.columns)}))"
    )
    python = str(project / ".venv" / "bin" / "python")
    shape: dict[str, Any] = json.loads(run([python, "-c", script, path], project).stdout)
    return shape


def test_lint_and_tests_pass_with_the_users_contract(project: Path) -> None:
    run(["make", "lint"], project)
    run(["make", "test"], project)


def test_every_level_runs_on_the_users_problem(
    project: Path, problem: OwnProblem, service: str
) -> None:
    requests = _requests(project, problem)
    singles = len(requests) // 2
    # Live predictions, one by one, with the row's identifier as the request id ...
    ids = []
    for record in requests[:singles]:
        ids.append(str(record[problem.identifier]))
        answer = _post(f"{service}/predict", {"features": record}, {"X-Request-ID": ids[-1]})
        problem.check_answer(answer)
    # ... and the rest as one batch (its rows get the ids late/0, late/1, ...)
    answer = _post(
        f"{service}/predict/batch", {"rows": requests[singles:]}, {"X-Request-ID": "late"}
    )
    predictions = answer["predictions"]
    assert isinstance(predictions, list)
    assert len(predictions) == len(requests) - singles
    for prediction in predictions:
        problem.check_answer(prediction)
    ids += [f"late/{i}" for i in range(len(requests) - singles)]
    # Ground truth for every request, then monitoring, promotion, retraining and scoring
    outcomes = _read_csv(project / problem.folder / "outcomes.csv")
    with (project / problem.folder / "truth.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["request_id", problem.target])
        writer.writerows(zip(ids, [row[problem.target] for row in outcomes], strict=True))
    attached = run(["make", "attach-truth", f"FILE={problem.folder}/truth.csv"], project)
    assert f"attached {len(ids)} value(s) of {problem.target}" in attached.stdout
    for target in ("monitor", "promote", "retrain"):
        run(["make", target], project)
    decisions = (project / ".mlops" / "automation" / "decisions.jsonl").read_text().splitlines()
    retraining = json.loads(decisions[-1])
    assert retraining["outcome"] in ("promoted", "refused"), retraining["reason"]
    assert retraining["challenger_version"] == 3  # after the champion and challenger of `train`
    run(["make", "score", f"SOURCE={problem.folder}/new.csv"], project)
    scored = _parquet_shape(project, "reports/batch/new-predictions.parquet")
    assert scored["rows"] == len(requests)
    probabilities = [f"probability_{label}" for label in problem.classes]
    assert {f"predicted_{problem.target}", *probabilities} <= set(scored["columns"])


def test_nothing_but_the_contract_configs_and_data_changed(project: Path, service: str) -> None:
    changed = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    paths = {line[3:] for line in changed.splitlines()}
    allowed = (f"src/{PACKAGE}/contract.py", "configs/", "data/")
    assert [p for p in paths if not p.startswith(allowed)] == []
    assert f"src/{PACKAGE}/contract.py" in paths


def test_a_project_with_the_users_problem_moves_up_a_level(tmp_path: Path) -> None:
    problem = next(p for p in PROBLEMS if p.task == "binary")
    template = build_template_repo(tmp_path / "template")
    project = generate(template, tmp_path / "project", 2)
    git_commit_all(project)
    run(["make", "install"], project)
    contract = project / "src" / PACKAGE / "contract.py"
    shutil.copy(OWN / f"{problem.task}_contract.py", contract)
    python = str(project / ".venv" / "bin" / "python")
    run([python, str(OWN / "make_data.py"), problem.task, problem.folder], project)
    _point_configs_at_the_data(project, problem)
    git_commit_all(project, "Our own problem")

    update(project, 3)

    assert contract.read_text() == (OWN / f"{problem.task}_contract.py").read_text()
    training = yaml.safe_load((project / "configs" / "training.yaml").read_text())
    assert training["data"]["source"] == problem.labelled
    run(["make", "lock"], project)  # level 3's dependencies, in the lock
    run(["make", "install"], project)
    git_commit_all(project, "Level 3")
    # what level 3 adds; the level-4 binary project above runs the whole suite on this contract
    run(["make", "test", "ARGS=tests/serving tests/monitoring"], project)
    run(["make", "train"], project)
    run(["make", "score", f"SOURCE={problem.folder}/new.csv"], project)
    scored = _parquet_shape(project, "reports/batch/new-predictions.parquet")
    assert {f"probability_{label}" for label in problem.classes} <= set(scored["columns"])
    assert git_status(project) == ""
