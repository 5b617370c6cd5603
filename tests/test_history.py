"""Slow: level 4 on a small historical problem, with the shipped windows and thresholds.

A user brings a dataset whose event times lie years in the past: plotly's `tips` (244 bills,
paid in 2019 here), with a contract of its own (`tests/data/history/`) in place of
`contract.py`, the data in `data/` and `configs/training.yaml` pointing at it; nothing else
changes. Then, in one project and in sequence: monitoring an empty prediction log is an outcome
(exit 6), not a crash; drifted traffic of the data's latest bills is served and labelled; level
3's check and level 4's `monitor` give the same drift verdict on that window; a forced training
failure exits non-zero with one error line and does not start the cool-down; a training window
pinned over the gate's rows is refused; `retrain` with the default windows trains on the bills
before the gate's rows; `simulate` runs the loop for this contract.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Installed, copy_installed, project_env, run
from tests.test_own_problem import _post, serving

pytestmark = pytest.mark.slow

HISTORY = Path(__file__).parent / "data" / "history"
PACKAGE = "taxi_trip_duration"  # the default answers' package name; the problem is not taxis
COMMAND = "taxi-trip-duration"
FOLDER = "data/tips"
TRAFFIC = 120  # the latest bills, served again as drifted traffic
# README, exit codes
OK, FAILED, REFUSED, NO_TRAFFIC = 0, 1, 4, 6

LEVEL_3_CHECK = f"""
import json
from {PACKAGE}.training.environment import set_offline_defaults
set_offline_defaults()
from {PACKAGE}.monitoring.flow import monitoring_flow
drift = monitoring_flow().drift
drifted = sorted(name for name, flag in drift.drifted.items() if flag)
print(json.dumps({{"drifted": drifted, "share": drift.share, "scores": drift.scores,
                  "detected": drift.dataset_drift}}))
"""
CHALLENGER_DATA = f"""
import json, sys
from {PACKAGE}.training.environment import set_offline_defaults
set_offline_defaults()
from mlflow import MlflowClient
from {PACKAGE}.automation.promotion import lineage
from {PACKAGE}.training.tracking import configure_tracking
configure_tracking()
found = lineage(int(sys.argv[1]))
params = MlflowClient().get_run(found.run_id).data.params
print(json.dumps({{"data": found.training["data"], "params": params}}))
"""


@pytest.fixture(scope="module")
def project(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A level-4 project with the tips problem in place: contract, data, the data's source."""
    project = copy_installed(installed(4), tmp_path_factory.mktemp("history") / "tips")
    shutil.copy(HISTORY / "tips_contract.py", project / "src" / PACKAGE / "contract.py")
    python = str(project / ".venv" / "bin" / "python")
    run([python, str(HISTORY / "make_tips.py"), FOLDER, str(TRAFFIC)], project)
    training = project / "configs" / "training.yaml"
    tree = yaml.safe_load(training.read_text())
    tree["data"]["source"] = f"{FOLDER}/bills.parquet"
    training.write_text(yaml.safe_dump(tree, sort_keys=False))
    return project


def command(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The project's command line, its exit code kept (``make`` hides codes 4-6)."""
    return subprocess.run(
        [str(project / ".venv" / "bin" / COMMAND), *args],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def python_json(project: Path, script: str, *args: str) -> Any:
    """The JSON a script run by the project's Python prints last."""
    python = str(project / ".venv" / "bin" / "python")
    return json.loads(run([python, "-c", script, *args], project).stdout.strip().splitlines()[-1])


def last_line(path: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(path.read_text().splitlines()[-1])
    return found


def policy_with(project: Path, folder: Path, name: str, training: dict[str, Any]) -> Path:
    """The project's retraining policy with ``training`` changes, in a file outside it."""
    tree = yaml.safe_load((project / "configs" / "retraining.yaml").read_text())
    tree["training"] = {**tree["training"], **training}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def serve_traffic(project: Path) -> datetime:
    """Serve the drifted latest bills with the times callers sent, then their tips; return the
    earliest of those times (where the gate's rows start)."""
    traffic = json.loads((project / FOLDER / "traffic.json").read_text())
    with serving(project) as url:
        answer = _post(
            f"{url}/predict/batch", {"rows": traffic["requests"]}, {"X-Request-ID": "bills"}
        )
        assert len(answer["predictions"]) == TRAFFIC  # type: ignore[arg-type]
        items = [
            {"request_id": f"bills/{i}", "tip": row["tip"]}
            for i, row in enumerate(traffic["truth"])
        ]
        attached = _post(f"{url}/ground-truth", {"items": items})
        assert attached["attached"] == TRAFFIC
    return min(datetime.fromisoformat(row["paid_at"]) for row in traffic["requests"])


def test_level_4_runs_on_a_historical_problem_with_the_default_windows(
    project: Path, tmp_path: Path
) -> None:
    decisions = project / ".mlops" / "automation" / "decisions.jsonl"
    run(["make", "train"], project)  # champion v1, on every bill

    # Monitoring an empty prediction log completes: an outcome, recorded, exit 6
    empty = command(project, "monitor")
    assert empty.returncode == NO_TRAFFIC, empty.stderr
    assert empty.stdout.startswith("no traffic: no served predictions")
    assert last_line(decisions)["outcome"] == "no traffic"

    gate_start = serve_traffic(project)

    # Levels 3 and 4 give one drift verdict on the same window
    level_3 = python_json(project, LEVEL_3_CHECK)
    measured = command(project, "monitor")
    assert measured.returncode == OK, measured.stderr
    level_4 = last_line(project / ".mlops" / "automation" / "monitoring.jsonl")
    assert level_4["rows"] == TRAFFIC
    assert sorted(level_4["drifted_features"]) == level_3["drifted"]
    assert level_4["drift_share"] == level_3["share"]
    assert level_4["feature_drift"] == {k: round(v, 4) for k, v in level_3["scores"].items()}
    assert level_3["detected"]  # the served bills drifted: a retraining is due
    assert f"drift share {level_3['share']:.2f}" in measured.stdout

    # A training failure exits non-zero with one error line ...
    failing = policy_with(project, tmp_path, "failing", {"overrides": ["minimum_rows.train=5000"]})
    failed = command(project, "retrain", "--policy", str(failing))
    assert failed.returncode == FAILED, failed.stdout
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "training failed" in errors[0]
    assert "Traceback" not in failed.stdout + failed.stderr
    assert "| ERROR" not in failed.stderr  # nor Prefect's or the loop's log lines of it
    assert last_line(decisions)["outcome"] == "failed"

    # ... and so does a training window pinned over the gate's rows, naming the overlap
    pinned = {"data": {"end": "2019-12-01"}}
    pinned_policy = policy_with(project, tmp_path, "pinned", pinned)
    overlapping = command(project, "retrain", "--policy", str(pinned_policy))
    assert overlapping.returncode == FAILED, overlapping.stdout
    assert "overlaps the gate's rows" in overlapping.stderr
    assert str(gate_start) in overlapping.stderr

    # Neither started the cool-down: the default policy retrains, on the bills before the
    # gate's rows (the data's own latest window, years before the wall clock)
    retrained = command(project, "retrain")
    assert retrained.returncode in (OK, REFUSED), retrained.stdout + retrained.stderr
    assert retrained.stdout.startswith(("promoted:", "refused:")), retrained.stdout
    record = last_line(decisions)
    assert record["challenger_version"] == 2
    challenger = python_json(project, CHALLENGER_DATA, "2")
    assert challenger["data"]["source"] == f"{FOLDER}/bills.parquet"
    assert datetime.fromisoformat(challenger["data"]["train"]["end"]) == gate_start
    rows = int(challenger["params"]["data.train_rows"]) + int(
        challenger["params"]["data.validation_rows"]
    )
    assert rows == 244 - TRAFFIC  # every bill before the first served one, none of them

    # The loop simulates this contract's problem too (the smallest scenario: one month served)
    sizes = "--months 3 --rows 300 --traffic 120 --budget 1"
    run(["make", "simulate", f"ARGS={sizes}"], project)
    timeline = json.loads((project / "reports" / "simulation" / "timeline.json").read_text())
    assert [row["month"] for row in timeline] == ["2024-03"]
    assert timeline[0]["decision"] in ("skipped", "promoted", "refused"), timeline[0]["reason"]

    # Only the contract, the configs' data source and the data changed (data/ is git-ignored)
    changed = run(["git", "status", "--porcelain", "--untracked-files=all"], project).stdout
    paths = {line[3:] for line in changed.splitlines()}
    assert paths == {f"src/{PACKAGE}/contract.py", "configs/training.yaml"}
