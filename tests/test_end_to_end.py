"""Slow: generated projects install from nothing and pass their own checks, offline."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git_status, project_env, run
from tests.tlc_files import WRITE_MONTHS

pytestmark = pytest.mark.slow

# The commands a new user runs at each level after `make install`, in order (see each level's
# README). The `installed` fixture ran `make install` on the fresh project once per run and
# committed the lock it wrote; each copy installs from that lock (`SYNC_ARGS=--locked`, as CI).
# From level 2 the second `train` uses another family: a challenger that differs from the champion.
CHALLENGER = 'train ARGS="--set model.family=hist_gradient_boosting"'
PROMOTE_ON_LABELLED_DATA = 'promote ARGS="--start 2024-02-18"'
MAKE_TARGETS: dict[int, list[str]] = {
    # `secrets`: no generated file holds anything a secret scanner flags.
    1: ["secrets", "lint", "test", "data", "train"],
    # Training twice: the second run must register a challenger beside the champion.
    2: ["lint", "test", "data", "train", CHALLENGER],
    # Then score the data, monitor (an empty log: no verdict), try a promotion on the log (no
    # labelled traffic yet: refused) and one on February's labelled rows, as the README shows:
    # the challenger is better there, so it becomes champion.
    # `test-slow` (once, here): fuzzing, load bursts and fault injection (docs/reliability.md).
    3: [
        "lint",
        "test",
        "test-slow",
        "data",
        "train",
        CHALLENGER,
        "score",
        "monitor",
        "promote",
        PROMOTE_ON_LABELLED_DATA,
    ],
    # Then the closed loop over generated months, on a registry of its own (.mlops/simulation),
    # and the level's own slow tests (a retraining killed midway); level 3 ran the others.
    # `test` on the project's own parallel workers, as a user runs it (elsewhere this suite's
    # workers run generated suites in one process each).
    4: [
        "lint",
        "test TEST_WORKERS=2",
        "test-slow ARGS=tests/automation",
        "data",
        "train",
        CHALLENGER,
        "simulate",
    ],
}

# Run inside a generated project's venv: the registered versions and their aliases.
REGISTRY_PROBE = """
import json
from mlflow import MlflowClient
from {package}.training.registry import MODEL_NAME
from {package}.training.tracking import configure_tracking
configure_tracking()
client = MlflowClient()
versions = client.search_model_versions(f"name = '{{MODEL_NAME}}'")
aliases = client.get_registered_model(MODEL_NAME).aliases
print(json.dumps({{"versions": sorted(int(v.version) for v in versions), "aliases": aliases}}))
"""


def registry_state(project: Path, package: str = "taxi_trip_duration") -> dict:
    """Versions and aliases in a project's own tracking store (.mlops/mlflow.db)."""
    probe = REGISTRY_PROBE.format(package=package)
    out = run(["uv", "run", "--frozen", "python", "-c", probe], project).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_level_0_notebook_runs_headless_from_its_requirements(
    fresh_project: Callable[..., Path],
) -> None:
    project = fresh_project(level=0)
    venv = project / ".venv"
    run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], project)
    python = str(venv / "bin" / "python")
    run(
        [
            "uv",
            "pip",
            "install",
            "-q",
            "--python",
            python,
            "-r",
            "requirements.txt",
            "nbclient",
            "ipykernel",
        ],
        project,
    )
    script = (
        "import nbformat, nbclient;"
        "nb = nbformat.read('01-explore-and-train.ipynb', as_version=4);"
        "nbclient.NotebookClient(nb, timeout=300, kernel_name='python3').execute()"
    )
    run([python, "-c", script], project / "notebooks")
    assert (project / "models" / "model.pkl").stat().st_size > 0
    assert git_status(project) == ""
    # Real TLC files of other months and colours (yellow against green): found by changing the
    # first cell only, and named
    run([python, "-c", WRITE_MONTHS, "data", "2023-11", "green:2023-12"], project)
    months = 'TRAIN = ("yellow", 2023, 11)\nVALIDATION = ("green", 2023, 12)'
    out = run([python, "-c", TLC_RUN, months], project / "notebooks").stdout
    assert "yellow 2023-11: 3,000 trips read from ../data/yellow_tripdata_2023-11.parquet" in out
    assert "green 2023-12: 3,000 trips read from ../data/green_tripdata_2023-12.parquet" in out
    missing = 'TRAIN = ("yellow", 2023, 10)\nVALIDATION = ("green", 2023, 12)'
    failed = subprocess.run(
        [python, "-c", TLC_RUN, missing],
        cwd=project / "notebooks",
        env=project_env(),
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0
    assert "yellow_tripdata_2023-10.parquet not found" in failed.stdout + failed.stderr


# The notebook with its first cell set to read TLC files of the months given as argv[1].
TLC_RUN = """
import sys, nbformat, nbclient
nb = nbformat.read("01-explore-and-train.ipynb", as_version=4)
first = next(cell for cell in nb.cells if cell.cell_type == "code")
default = 'TRAIN = ("yellow", 2024, 1)\\nVALIDATION = ("yellow", 2024, 2)'
assert 'SOURCE = "example"' in first.source and default in first.source, first.source
first.source = first.source.replace('SOURCE = "example"', 'SOURCE = "tlc"')
first.source = first.source.replace(default, sys.argv[1])
nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
for cell in nb.cells:
    for output in cell.get("outputs", []):
        print(output.get("text", ""), end="")
"""


@pytest.mark.parametrize("level", sorted(MAKE_TARGETS))
def test_fresh_project_passes_its_own_checks_and_stays_clean(
    installed_copy: Callable[[int], Path], level: int
) -> None:
    project = installed_copy(level)
    for target in MAKE_TARGETS[level]:
        run(["make", *shlex.split(target)], project)
    assert git_status(project) == ""  # nothing rewrote uv.lock (or anything else)
    if PROMOTE_ON_LABELLED_DATA in MAKE_TARGETS[level]:
        # The challenger (another family) won on labelled data: version 2 is champion now.
        state = registry_state(project)
        assert state["versions"] == [1, 2]
        assert state["aliases"]["champion"] == 2
    elif CHALLENGER in MAKE_TARGETS[level]:
        # Two `make train` runs: version 1 stays champion, version 2 is the challenger.
        assert (project / ".mlops" / "mlflow.db").is_file()
        assert registry_state(project) == {
            "versions": [1, 2],
            "aliases": {"champion": 1, "challenger": 2},
        }
