"""Shared fixtures: rendering the template, running generated projects' commands."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NoReturn

import pytest
import yaml

from tests.engines import free_port

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


# CI must not pass by skipping: there, a test whose tool is missing fails instead.
IN_CI = os.environ.get("CI", "").lower() in {"true", "1"}


def cannot_run(reason: str) -> NoReturn:
    """Skip a test this machine cannot run (`reason` names what is missing); under CI, fail."""
    if IN_CI:
        pytest.fail(f"cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the slow end-to-end tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        # Slow tests first: with workers (pytest-xdist, as CI runs), the quick ones then fill
        # the gaps instead of a long test starting last.
        items.sort(key=lambda item: "slow" not in item.keywords)
        return
    skip = pytest.mark.skip(reason="slow end-to-end test: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


# With workers (pytest-xdist, `--dist loadgroup`), one worker runs all the tests of these
# modules: they share module-scoped engines. (xdist's own `xdist_group` marker, set there
# too, does nothing under pytest 9: xdist renames node ids through an attribute pytest 9 no
# longer reads.)
ONE_WORKER_MODULES = {"tests/test_engines.py"}
# ... and all the tests of one parameter of these: they share a module-scoped project per
# parameter (split up, each worker would build and train its own).
ONE_WORKER_PER_PARAMETER_MODULES = {"tests/test_own_problem.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        """Each test on its own, but a module of ONE_WORKER_MODULES as one unit, and each
        parameter of a module of ONE_WORKER_PER_PARAMETER_MODULES as one."""

        def _split_scope(self, nodeid: str) -> str:
            module, _, test = nodeid.partition("::")
            if module in ONE_WORKER_MODULES:
                return module
            if module in ONE_WORKER_PER_PARAMETER_MODULES and "[" in test:
                return module + test[test.index("[") :]
            return nodeid

    return ModuleGroups(config, log)


def project_env() -> dict[str, str]:
    """Environment for a generated project's commands: offline-safe, shared package cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    # Bytecode is cached, as on a user's machine: without it every process of a generated
    # project recompiles what it imports (mlflow, prefect, pandas: ~4 s of CPU each time).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["UV_PYTHON_DOWNLOADS"] = "never"  # never fetch a toolchain at run time
    env["UV_PYTHON_PREFERENCE"] = "only-system"
    # The running Python, also for projects rendered with another `python_version` default.
    env.setdefault("UV_PYTHON", f"{sys.version_info.major}.{sys.version_info.minor}")
    env.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))  # one cache for all
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "1"
    # The projects' local Prefect server, which the first command that runs a flow starts in
    # the background, on a port and home of this test process: the commands of every project
    # here share it, never find another worker's (stopped while they run) or a developer's own
    # on 4200, and the session stops it.
    env["PREFECT_SERVER_API_PORT"] = str(_prefect_server_port())
    env["PREFECT_HOME"] = str(_prefect_home())
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers:
        # This suite's workers already fill the cores: a generated `make test` runs in one
        # process (its own workers would repeat every session fixture: +35% CPU at level 4),
        # and native thread pools get this worker's share (OpenMP spinning on busy cores made a
        # tree fit 10x slower).
        env["TEST_WORKERS"] = "0"
        share = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, share)
    return env


@functools.cache
def _prefect_server_port() -> int:
    return free_port()


@functools.cache
def _prefect_home() -> Path:
    return Path(tempfile.mkdtemp(prefix="prefect-home-"))


@pytest.fixture(scope="session", autouse=True)
def _stop_background_prefect_server() -> Iterator[None]:
    """Stop the Prefect server a project's command left running in this process's home (it
    outlives the command by design: `make prefect-stop` reads the same file)."""
    yield
    if _prefect_home.cache_info().currsize:
        pid_file = _prefect_home() / "server.pid"
        if pid_file.is_file():
            with suppress(ProcessLookupError, ValueError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)


def run(
    cmd: list[str], cwd: Path, timeout: float = 900, offline: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `cmd` in `cwd` (`offline`: uv reads only its cache); fail the test if it fails."""
    env = {**project_env(), **({"UV_OFFLINE": "1"} if offline else {})}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
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


# ------------------------------------------------ installed projects, shared by the whole run


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path`, across processes (pytest-xdist workers)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's temporary folder, the same one for every pytest-xdist worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def copy_installed(source: Path, project: Path) -> Path:
    """A private copy of the installed project `source` (its git history and committed lock
    included) with a venv of its own, installed as CI does (`make install`: the lock unchanged),
    offline, linked from the uv cache the first install filled."""
    shutil.copytree(source, project, ignore=shutil.ignore_patterns(".venv"), symlinks=True)
    run(["make", "install"], project, offline=True)
    return project


Installed = Callable[[int], Path]


@pytest.fixture(scope="session")
def installed(render: Render, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The project of `level` rendered, committed (its shipped uv.lock included) and
    `make install`ed from nothing, once per run for all workers. Read it, never change it:
    `installed_copy` gives a private one."""
    root = run_tmp(tmp_path_factory) / "installed"
    root.mkdir(exist_ok=True)

    def _installed(level: int) -> Path:
        project = root / f"level-{level}"
        done, failed = project.with_suffix(".done"), project.with_suffix(".failed")
        with file_lock(project.with_suffix(".lock")):
            if failed.exists():
                pytest.fail(f"`make install` failed at level {level}:\n{failed.read_text()}")
            if not done.exists():
                shutil.rmtree(project, ignore_errors=True)
                shutil.copytree(render(level=level), project, ignore=shutil.ignore_patterns(".git"))
                git_commit_all(project)
                try:
                    # The first commit holds the lock the template ships; installing keeps it.
                    run(["make", "install"], project)
                    if changed := git_status(project):
                        pytest.fail(f"`make install` changed the shipped lock:\n{changed}")
                except pytest.fail.Exception as exc:
                    failed.write_text(str(exc))
                    raise
                done.touch()
        return project

    return _installed


@pytest.fixture
def installed_copy(tmp_path: Path, installed: Installed) -> Callable[[int], Path]:
    """A private, installed, committed project of `level` (safe to change)."""
    return lambda level: copy_installed(installed(level), tmp_path / f"level-{level}")
