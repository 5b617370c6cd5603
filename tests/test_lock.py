"""Slow: a project's committed uv.lock through `make install` and a level change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git_commit_all, git_status, project_env, run

from .transitions import build_template_repo, generate, update

pytestmark = pytest.mark.slow


def unchecked(cmd: list[str], project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=project, env=project_env(), capture_output=True, text=True)


def test_a_committed_lock_stays_exact_through_a_level_change(tmp_path: Path) -> None:
    repo = build_template_repo(tmp_path / "template")
    project = generate(repo, tmp_path / "project", level=1)
    git_commit_all(project)
    # `make install` writes the lock; the user commits it; installing again leaves it alone.
    run(["make", "install"], project)
    git_commit_all(project, "Lock the dependencies")
    assert run(["git", "ls-files", "uv.lock"], project).stdout.strip() == "uv.lock"  # not ignored
    run(["make", "install"], project)
    assert git_status(project) == ""
    run(["uv", "sync", "--locked", "--all-extras"], project)  # what CI runs
    locked = (project / "uv.lock").read_text()

    # Level 2 adds the `training` extra: copier leaves the lock alone, so it is stale, and
    # CI's check and the doctor say what to do.
    update(project, 2)
    assert (project / "uv.lock").read_text() == locked
    assert unchecked(["uv", "lock", "--check", "--offline"], project).returncode == 1
    doctor = unchecked([sys.executable, "scripts/doctor.py"], project)
    assert doctor.returncode == 1
    assert "uv.lock does not match pyproject.toml: run `make install`" in doctor.stdout
    git_commit_all(project, "Level 2")

    # `make install` relocks; the lock is then exact again for CI and the doctor.
    run(["make", "install"], project)
    assert 'name = "mlflow"' in (project / "uv.lock").read_text()
    run(["uv", "sync", "--locked", "--all-extras"], project)
    run([sys.executable, "scripts/doctor.py"], project)
    git_commit_all(project, "Lock level 2")
    assert git_status(project) == ""
