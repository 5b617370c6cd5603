"""Slow: a level-2 project refuses degenerate training runs, as a user meets them.

With a binary problem of the user's own (`tests/data/own_problem/`), `train` is refused when the
validation rows hold one class (its ROC and PR AUC are undefined), when the training rows miss a
declared class, and when there are fewer rows than the minimum: each time with exit code 4, one
`error:` line naming the cause, and nothing registered (so no alias can have moved).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Installed, copy_installed, project_env, run

pytestmark = pytest.mark.slow

OWN = Path(__file__).parent / "data" / "own_problem"
PACKAGE = "taxi_trip_duration"  # the default answers' package name; the problem is not taxis
FOLDER = "data/tumours"
REFUSED = 4  # outcomes.ExitCode.REFUSED of the generated project
ANY_TIME = ["--set", "data.train={}"]  # the data's dates are in 2023, the shipped windows later
CASES = {
    "one class in the validation rows": (
        [*ANY_TIME, "--set", f"data.validation={{source: {FOLDER}/benign.parquet}}"],
        "roc_auc, pr_auc undefined on the",
    ),
    "a class missing from the training rows": (
        [
            "--set",
            f"data.source={FOLDER}/benign.parquet",
            *ANY_TIME,
            "--set",
            "data.validation=null",
        ],
        "no row of the declared class(es) ['malignant']",
    ),
    "too few rows": (
        [*ANY_TIME, "--set", "data.validation=null", "--set", "minimum_rows.train=100000"],
        "fewer than the minimum 100000 (minimum_rows.train)",
    ),
}
SPLIT = (
    "import sys, pandas as pd; rows = pd.read_parquet(sys.argv[1]); "
    "rows[rows['diagnosis'] == 'benign'].to_parquet(sys.argv[2], index=False)"
)
VERSIONS = (
    f"from {PACKAGE}.training.tracking import configure_tracking; configure_tracking(); "
    "from mlflow import MlflowClient; print(len(MlflowClient().search_model_versions()))"
)


@pytest.fixture(scope="module")
def project(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A level-2 project with the user's binary problem, its data and a one-class file."""
    project = copy_installed(installed(2), tmp_path_factory.mktemp("degenerate") / "level-2")
    shutil.copy(OWN / "binary_contract.py", project / "src" / PACKAGE / "contract.py")
    python = str(project / ".venv" / "bin" / "python")
    run([python, str(OWN / "make_data.py"), "binary", FOLDER], project)
    labelled, benign = f"{FOLDER}/labelled.parquet", f"{FOLDER}/benign.parquet"
    run([python, "-c", SPLIT, labelled, benign], project)
    return project


@pytest.mark.parametrize("case", list(CASES))
def test_a_degenerate_training_run_is_refused_and_registers_nothing(
    project: Path, case: str
) -> None:
    overrides, cause = CASES[case]
    source = (
        []
        if "data.source=" in " ".join(overrides)
        else ["--set", f"data.source={FOLDER}/labelled.parquet"]
    )
    python = str(project / ".venv" / "bin" / "python")
    proc = subprocess.run(
        [python, "-m", PACKAGE, "train", *source, *overrides],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == REFUSED, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [proc.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith("error: training refused, nothing was registered: ")
    assert cause in errors[0]
    assert "Traceback" not in proc.stderr
    assert run([python, "-c", VERSIONS], project).stdout.strip() == "0"
