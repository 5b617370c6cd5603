"""Shared fixtures: rendering the template, running generated projects' commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# copier commits inside temporary clones during updates: give git an identity.
for _var, _value in [
    ("GIT_AUTHOR_NAME", "Template Tests"),
    ("GIT_COMMITTER_NAME", "Template Tests"),
    ("GIT_AUTHOR_EMAIL", "tests@example.com"),
    ("GIT_COMMITTER_EMAIL", "tests@example.com"),
]:
    os.environ.setdefault(_var, _value)
TEMPLATE = ROOT / "template"


def _running_python() -> str | None:
    """The Python running the tests, when copier.yml offers it as `python_version`.

    Generated projects target it, so CI's matrix (one leg per offered version) runs them on each
    (uv never downloads an interpreter here: a project must target one the machine has).
    """
    offered = yaml.safe_load((ROOT / "copier.yml").read_text())["python_version"]["choices"]
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    return running if running in offered else None


PYTHON_VERSION = _running_python()
DEFAULT_ANSWERS: dict[str, object] = {"python_version": PYTHON_VERSION} if PYTHON_VERSION else {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the slow end-to-end tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow end-to-end test: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def project_env() -> dict[str, str]:
    """Environment for a generated project's commands: offline-safe, shared package cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["UV_PYTHON_DOWNLOADS"] = "never"  # never fetch a toolchain at run time
    env["UV_PYTHON_PREFERENCE"] = "only-system"
    # The running Python, also for projects rendered with another `python_version` default.
    env.setdefault("UV_PYTHON", f"{sys.version_info.major}.{sys.version_info.minor}")
    env.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))  # one cache for all
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "1"
    return env


def run(cmd: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run `cmd` in `cwd`; fail the test with its output if it fails."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=project_env(), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        pytest.fail(
            f"`{' '.join(cmd)}` exited {proc.returncode} in {cwd}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def git_commit_all(project: Path, message: str = "Start from the MLOps template") -> None:
    if not (project / ".git").exists():
        run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", message], project)


def git_status(project: Path) -> str:
    return run(["git", "status", "--porcelain"], project).stdout


Render = Callable[..., Path]


@pytest.fixture(scope="session")
def render(copie_session) -> Iterator[Render]:  # type: ignore[no-untyped-def]
    """Render the template (its working tree) with `answers`; cached per answer set."""
    cache: dict[tuple[tuple[str, object], ...], Path] = {}

    def _render(**answers: object) -> Path:
        answers = {**DEFAULT_ANSWERS, **answers}
        key = tuple(sorted(answers.items()))
        if key not in cache:
            result = copie_session.copy(extra_answers=answers, template_dir=ROOT)
            if result.exception is not None:
                raise result.exception
            cache[key] = Path(result.project_dir)
        return cache[key]

    return _render


@pytest.fixture
def fresh_project(tmp_path: Path, render: Render) -> Callable[..., Path]:
    """A private, git-committed copy of a rendered project (safe to mutate)."""

    def _fresh(**answers: object) -> Path:
        project = tmp_path / "project"
        shutil.copytree(render(**answers), project, ignore=shutil.ignore_patterns(".git"))
        git_commit_all(project)
        return project

    return _fresh
