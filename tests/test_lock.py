"""The uv.lock each level ships (locks/, rendered by template/uv.lock.jinja) and its life in a
project: installed unchanged, kept by updates, relocked on demand."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.utils import canonicalize_name

from extensions import maturity
from scripts import locks
from tests.conftest import ROOT, Installed, Render, git_commit_all, git_status, project_env, run

from .transitions import build_template_repo, generate, update

LOCKED_LEVELS = locks.locked_levels()
PYTHONS = locks.python_versions()


def unchecked(cmd: list[str], project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=project, env=project_env(), capture_output=True, text=True)


def locked_versions(lock: str) -> dict[str, set[str]]:
    """Every package a uv.lock pins from an index: name -> its versions (one per Python fork)."""
    pinned: dict[str, set[str]] = {}
    for package in tomllib.loads(lock)["package"]:
        if "registry" in package.get("source", {}):
            pinned.setdefault(package["name"], set()).add(package["version"])
    return pinned


def has_interpreter(python: str) -> bool:
    """uv checks a lock with an interpreter of its Python (CI's matrix has one leg per version)."""
    return python == f"{sys.version_info.major}.{sys.version_info.minor}" or bool(
        shutil.which(f"python{python}")
    )


def test_every_level_with_a_package_ships_a_lock_per_offered_python() -> None:
    packaged = [n for n in maturity.LEVEL_NUMBERS if maturity.belongs_at("pyproject.toml", n)]
    assert packaged == LOCKED_LEVELS
    offered = yaml.safe_load((ROOT / "copier.yml").read_text())["python_version"]["choices"]
    expected = {f"level-{n}-py{v}.lock" for n in LOCKED_LEVELS for v in offered}
    assert {path.name for path in (ROOT / "locks").iterdir()} == expected


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("level", LOCKED_LEVELS)
def test_the_shipped_lock_matches_the_levels_dependencies(
    render: Render, level: int, python: str
) -> None:
    """Fails when a template's dependency changed and nobody relocked (`make locks`)."""
    project = render(level=level, python_version=python, project_name="Fare Check")
    shipped = locks.lock_path(level, python).read_text()
    # The lock names the project (uv.lock.jinja), nothing else changes.
    assert 'name = "fare-check"' in (project / "uv.lock").read_text()
    assert (project / "uv.lock").read_text() == shipped.replace(
        f'name = "{locks.DEFAULT_PROJECT}"', 'name = "fare-check"'
    )
    if not has_interpreter(python):
        return  # the leg of CI's matrix that runs `python` checks the rest
    # uv checks the lock against pyproject.toml without the network or a cache.
    check = subprocess.run(
        ["uv", "lock", "--check", "--offline"],
        cwd=project,
        env={**project_env(), "UV_PYTHON": python, "UV_CACHE_DIR": str(project / ".no-cache")},
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, (
        f"locks/level-{level}-py{python}.lock is stale against level {level}'s pyproject.toml: "
        f"run `{locks.REFRESH}` and commit locks/\n{check.stderr[-2000:]}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("level", LOCKED_LEVELS)
def test_a_new_project_installs_the_shipped_lock_offline_and_unchanged(
    installed: Installed, level: int, tmp_path: Path
) -> None:
    """`make install` of a fresh copy, with uv offline (the cache the first install filled)."""
    project = tmp_path / "project"
    shutil.copytree(installed(level), project, ignore=shutil.ignore_patterns(".venv"))
    run(["make", "install"], project, offline=True)
    assert git_status(project) == ""  # the shipped lock, untouched
    python = project / ".venv" / "bin" / "python"
    listing = run(["uv", "pip", "list", "--format", "json", "--python", str(python)], project)
    installed_versions = {
        canonicalize_name(item["name"]): item["version"]
        for item in json.loads(listing.stdout)
        if "editable_project_location" not in item
    }
    pinned = locked_versions((project / "uv.lock").read_text())
    assert installed_versions, "nothing installed"
    differing = {
        name: (version, pinned.get(name))
        for name, version in installed_versions.items()
        if version not in pinned.get(name, set())
    }
    assert differing == {}


@pytest.mark.slow
def test_a_committed_lock_stays_exact_through_a_level_change(tmp_path: Path) -> None:
    repo = build_template_repo(tmp_path / "template")
    project = generate(repo, tmp_path / "project", level=1)
    git_commit_all(project)
    # The first commit holds the shipped lock; `make install` leaves it alone.
    assert run(["git", "ls-files", "uv.lock"], project).stdout.strip() == "uv.lock"  # not ignored
    run(["make", "install"], project)
    assert git_status(project) == ""
    locked = (project / "uv.lock").read_text()

    # Level 2 adds the `training` extra: copier leaves the project's lock alone, so it is
    # stale; `make install` refuses it, and CI's check and the doctor say what to do.
    update(project, 2)
    assert (project / "uv.lock").read_text() == locked
    assert unchecked(["uv", "lock", "--check", "--offline"], project).returncode == 1
    refused = unchecked(["make", "install"], project)
    assert refused.returncode != 0
    assert "--locked" in refused.stderr
    doctor = unchecked([sys.executable, "scripts/doctor.py"], project)
    assert doctor.returncode == 1
    assert "uv.lock does not match pyproject.toml: run `make lock`" in doctor.stdout
    git_commit_all(project, "Level 2")

    # `make lock` relocks for the new extra; the lock is then exact again.
    run(["make", "lock"], project)
    assert "mlflow" in locked_versions((project / "uv.lock").read_text())
    run(["make", "install"], project)
    run([sys.executable, "scripts/doctor.py"], project)
    git_commit_all(project, "Lock level 2")
    assert git_status(project) == ""
