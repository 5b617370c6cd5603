"""What every benchmark shares: timing, statistics, the template snapshot, the environment."""

from __future__ import annotations

import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops-template-bench"
BIN = Path(sys.executable).parent
# Not part of the template: never copied into the snapshot that is benchmarked.
SNAPSHOT_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "site", "results"
)


@dataclass
class Options:
    """What the command line chose; every benchmark reads what it needs."""

    budget: float | None = None  # seconds per benchmark (None: its own default)
    rounds: int = 5  # at most this many alternating rounds
    levels: tuple[int, ...] = (0, 1, 2, 3, 4)
    duration: float = 5.0  # seconds per load-generator run (serving)
    quick: bool = False
    project: Path | None = None  # serving: an installed, trained level-3 project to reuse
    rows: int | None = None  # log_volume: logged predictions (None: its default)


@dataclass
class Result:
    """One benchmark's outcome: rows for the table, figures for JSON, notes for the docs."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    chart: list[tuple[str, float]] = field(default_factory=list)  # (label, ratio)
    chart_title: str = ""
    seconds: float = 0.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"


def env(**extra: str) -> dict[str, str]:
    """Offline, quiet environment with a git identity and the shared uv cache."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    # Bytecode is cached, as on a user's machine: some images set PYTHONDONTWRITEBYTECODE, and
    # then every command timed here would recompile what it imports (~5 s of the floor alone).
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    out["PATH"] = f"{BIN}{os.pathsep}{out.get('PATH', '')}"
    out.update(
        UV_PYTHON_DOWNLOADS="never",
        UV_PYTHON_PREFERENCE="only-system",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        GIT_AUTHOR_NAME="Benchmarks",
        GIT_COMMITTER_NAME="Benchmarks",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_EMAIL="bench@example.com",
    )
    out.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
    out.update(extra)
    return out


def sh(cmd: Sequence[str], cwd: Path, timeout: float = 600, **extra: str) -> float:
    """Run ``cmd``; return its wall time in seconds, raise with its output on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        list(cmd), cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=timeout
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` exited {proc.returncode} in {cwd}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return seconds


def git_commit_all(path: Path, message: str = "init") -> None:
    if not (path / ".git").exists():
        sh(["git", "init", "-q", "-b", "main"], path)
    sh(["git", "add", "-A"], path)
    sh(["git", "commit", "-q", "--no-verify", "-m", message], path)


def snapshot_template(dest: Path) -> Path:
    """A committed copy of the template's working tree (so uncommitted edits count, .venv not)."""
    shutil.copytree(ROOT, dest, ignore=SNAPSHOT_IGNORE)
    git_commit_all(dest, "benchmark snapshot")
    return dest


def copier() -> str:
    found = shutil.which("copier", path=str(BIN)) or shutil.which("copier")
    if found is None:
        raise RuntimeError("copier is not installed: pip install -e . in the template repo")
    return found


def _copier_args(command: str, level: int) -> list[str]:
    flags = ["-q", "--trust", "--defaults", "--vcs-ref", "HEAD", "--data", f"level={level}"]
    return [copier(), command, *flags]


def copy_cmd(template: Path, dest: Path, level: int) -> list[str]:
    """``copier copy`` of ``template`` at ``level`` into ``dest``."""
    return [*_copier_args("copy", level), str(template), str(dest)]


def update_cmd(level: int) -> list[str]:
    """``copier update`` of the project in the working directory to ``level``."""
    return _copier_args("update", level)


def render_project(template: Path, dest: Path, level: int) -> float:
    """Generate ``dest`` at ``level`` and commit it; return the seconds ``copier copy`` took."""
    seconds = sh(copy_cmd(template, dest, level), dest.parent)
    git_commit_all(dest)
    return seconds


def package_of(project: Path, needs: str | None = None) -> str:
    """The generated project's package name (its answers file); with ``needs``, check the
    package has that subpackage, i.e. that the project is of a level that has it."""
    for line in (project / ".copier-answers.yml").read_text().splitlines():
        if line.startswith("package_name:"):
            package = line.split(":", 1)[1].strip().strip("'\"")
            break
    else:
        raise RuntimeError(f"no package_name in {project}/.copier-answers.yml")
    if needs and not (project / "src" / package / needs).is_dir():
        raise RuntimeError(
            f"{project} has no {needs} package: a project of a higher level is needed"
        )
    return package


def free_port() -> int:
    """A loopback port nothing listens on (for a server the benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as tmp:
        yield Path(tmp)


@contextmanager
def template_workdir(prefix: str) -> Iterator[tuple[Path, Path]]:
    """A scratch folder and, in it, a committed snapshot of the template."""
    with workdir(prefix) as work:
        yield work, snapshot_template(work / "template")


class Deadline:
    """Rounds continue while the budget lasts (a round started is finished)."""

    def __init__(self, budget: float | None, rounds: int, default: float = 300.0) -> None:
        budget = default if budget is None else budget
        self.end = time.monotonic() + budget
        self.max_rounds = rounds
        self.done = 0

    def rounds(self) -> Iterator[int]:
        while self.done < self.max_rounds and (self.done == 0 or time.monotonic() < self.end):
            yield self.done
            self.done += 1

    def left(self) -> float:
        return self.end - time.monotonic()


def alternate(
    contenders: dict[str, Callable[[], float]], deadline: Deadline
) -> dict[str, list[float]]:
    """Time every contender once per round, in rotating order, until the deadline."""
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in deadline.rounds():
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(contenders[name]())
    return samples


def machine() -> dict[str, str]:
    """The machine the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
