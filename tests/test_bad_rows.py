"""Acceptance: a TLC-schema file with bad rows trains at levels 1 and 2; the bad rows are set
aside and counted per check in the output, the lineage and the rejects file; the run fails only
past the configured share.

The installed projects are read, never changed: every command runs in a folder of its own.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from .conftest import Installed, project_env

pytestmark = pytest.mark.slow

ROWS = 4_000
#: 10 rows broken per kind: negative and absurd distances, zero and negative durations, nulls.
INJECT = """
import sys
import numpy as np
import pandas as pd

path = sys.argv[1]
trips = pd.read_parquet(path)
rows = np.random.default_rng(3).choice(len(trips), size=50, replace=False)
pickup, dropoff = "tpep_pickup_datetime", "tpep_dropoff_datetime"
trips = trips.astype({"trip_distance": "float64", "PULocationID": "float64"})
trips.loc[rows[0:10], "trip_distance"] = -1.5
trips.loc[rows[10:20], dropoff] = trips.loc[rows[10:20], pickup]
trips.loc[rows[20:30], dropoff] = trips.loc[rows[20:30], pickup] - pd.Timedelta(minutes=5)
trips.loc[rows[30:40], "PULocationID"] = np.nan
trips.loc[rows[40:50], "trip_distance"] = 250_000.0
trips.to_parquet(path)
"""
#: The checks the injected rows break (the generator's own trips may add implausible ones).
BROKEN = {
    "trip_distance greater_than_or_equal_to(0)": 10,
    "PULocationID not_null": 10,
    "trip_distance less_than_or_equal_to(100)": 10,
}


def _package(project: Path) -> str:
    return next(p.name for p in (project / "src").iterdir() if (p / "__init__.py").exists())


def _cli(project: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    package = _package(project)
    python = str(project / ".venv" / "bin" / "python")
    return subprocess.run(
        [python, "-m", package, *args],
        cwd=cwd,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _bad_file(project: Path, cwd: Path) -> Path:
    """The example's generated January with 50 bad rows injected."""
    made = _cli(project, cwd, "data", "--rows", str(ROWS), "--months", "2024-01", "--out", "in")
    assert made.returncode == 0, made.stderr
    (path,) = (cwd / "in").iterdir()
    python = str(project / ".venv" / "bin" / "python")
    subprocess.run([python, "-c", INJECT, str(path)], check=True, env=project_env(), timeout=120)
    return path


def _rejects(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _counted(output: str, rejects: list[dict[str, str]]) -> tuple[int, dict[str, int]]:
    """The rows set aside as the output says, and the rejects file's count per check."""
    line = next(line for line in output.splitlines() if "set aside" in line)
    said = int(line.split("set aside ")[1].split(" of ")[0])
    return said, dict(Counter(f"{r['column']} {r['check']}" for r in rejects))


def _assert_broken_rows_counted(by_check: dict[str, int]) -> None:
    for check, count in BROKEN.items():
        assert by_check.get(check) == count, by_check
    # zero and negative durations are outside the target's plausible range
    assert by_check.get("duration in_range(1, 60)", 0) >= 20, by_check


def test_level_1_sets_bad_rows_aside_and_fails_only_past_the_limit(
    installed: Installed, tmp_path: Path
) -> None:
    project = installed(1)
    path = _bad_file(project, tmp_path)
    # Under the default limit, training runs: the rows set aside are printed, recorded, written
    model = ["--model-path", "m/model.joblib"]
    trained = _cli(project, tmp_path, "train", "--data", str(path), *model)
    assert trained.returncode == 0, trained.stderr
    record = json.loads((tmp_path / "m" / "model.json").read_text())["data"]
    rejects = _rejects(tmp_path / record["train"]["rejects_file"])
    said, by_check = _counted(trained.stdout, rejects)
    _assert_broken_rows_counted(by_check)
    assert record["train"]["rejected_by_check"] == by_check
    assert said == record["train"]["rows_rejected"] == len({r["row"] for r in rejects})
    assert record["train"]["rows_read"] == ROWS
    assert record["validation"]["split_from"] == "train"
    # Past a limit below the share set aside, it fails with one line giving the counts
    limit = 0.5 * said / ROWS
    refused = _cli(
        project, tmp_path, "train", "--data", str(path), "--max-rejected-share", f"{limit:.4f}"
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
    assert f"{said} of {ROWS} rows" in refused.stderr
    assert "trip_distance greater_than_or_equal_to(0): 10" in refused.stderr


def test_level_2_records_bad_rows_in_the_run_and_fails_only_past_the_limit(
    installed: Installed, tmp_path: Path
) -> None:
    project = installed(2)
    path = _bad_file(project, tmp_path)
    config = str(project / "configs" / "training.yaml")
    options = ["--config", config, "--set", f"data.source={path}", "--set", "search.budget=1"]
    options += ["--set", "data.train.start=null", "--set", "data.train.end=null"]
    options += ["--set", "data.validation=null"]
    trained = _cli(project, tmp_path, "train", *options)
    assert trained.returncode == 0, trained.stderr
    run_id = trained.stdout.split("(run ")[1].split(")")[0]
    probe = f"""
import json, mlflow
from {_package(project)}.training import environment, tracking
environment.set_offline_defaults()
tracking.configure_tracking()
run = mlflow.get_run("{run_id}")
lineage = mlflow.artifacts.load_dict(run.info.artifact_uri + "/data/lineage.json")
files = [f.path for f in mlflow.MlflowClient().list_artifacts("{run_id}", "data/rejects")]
print(json.dumps({{"metrics": run.data.metrics, "lineage": lineage, "files": files}}))
"""
    python = str(project / ".venv" / "bin" / "python")
    found = json.loads(
        subprocess.run(
            [python, "-c", probe],
            cwd=tmp_path,
            env=project_env(),
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout.splitlines()[-1]
    )
    rejects = _rejects(tmp_path / found["lineage"]["train"]["rejects_file"])
    said, by_check = _counted(trained.stdout, rejects)
    _assert_broken_rows_counted(by_check)
    assert found["lineage"]["train"]["rejected_by_check"] == by_check
    assert found["metrics"]["data.train.rows_rejected"] == said
    assert found["metrics"]["data.train.rejected.trip_distance_greater_than_or_equal_to_0"] == 10
    written = Path(found["lineage"]["train"]["rejects_file"]).name
    assert found["files"] == [f"data/rejects/{written}"]
    # Past the configured share, the run fails in one line and registers nothing
    limit = 0.5 * said / ROWS
    refused = _cli(
        project, tmp_path, "train", *options, "--set", f"data.max_rejected_share={limit:.4f}"
    )
    assert refused.returncode == 2
    error = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1
    assert f"{said} of {ROWS} rows" in error[0]
    assert "registered version" not in refused.stdout
