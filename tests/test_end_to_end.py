"""Slow: generated projects install from nothing and pass their own checks, offline."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git_status, run

pytestmark = pytest.mark.slow

# The commands a new user runs at each level, in order (see each level's README).
MAKE_TARGETS: dict[int, list[str]] = {
    1: ["install", "lint", "test", "train"],
}


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


@pytest.mark.parametrize("level", sorted(MAKE_TARGETS))
def test_fresh_project_passes_its_own_checks_and_stays_clean(
    fresh_project: Callable[..., Path], level: int
) -> None:
    project = fresh_project(level=level)
    for target in MAKE_TARGETS[level]:
        run(["make", target], project)
    assert git_status(project) == ""
