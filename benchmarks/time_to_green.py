"""Time to green: from ``copier copy`` to a passing ``make test``, per level, warm uv cache.

Level 0 has no Makefile: its green is the notebook executed headless (nbclient) in a venv made
from its requirements.txt. Levels 1-4 run ``make install`` then ``make test``. The first round
warms the uv cache and is not counted when there is more than one round.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import (
    Deadline,
    Options,
    Result,
    env,
    fmt,
    median,
    ratio,
    render_project,
    sh,
    template_workdir,
)

TARGETS = {1: 30.0, 4: 180.0}  # seconds, issue 8
TIMEOUT = 900.0  # per command
NOTEBOOK = (
    "import nbformat, nbclient;"
    "nb = nbformat.read('01-explore-and-train.ipynb', as_version=4);"
    "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3').execute()"
)


PYTEST_SESSION = re.compile(r" in (\d+(?:\.\d+)?)s")


def make_test(project: Path) -> tuple[float, float]:
    """``make test``: its wall seconds and the session seconds pytest reports (nan if none)."""
    start = time.perf_counter()
    proc = subprocess.run(
        ["make", "test"], cwd=project, env=env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(
            f"`make test` exited {proc.returncode} in {project}\n{proc.stdout[-3000:]}"
        )
    found = PYTEST_SESSION.findall(proc.stdout.splitlines()[-1] if proc.stdout else "")
    return seconds, float(found[-1]) if found else float("nan")


def green(template: Path, project: Path, level: int) -> dict[str, float]:
    """Phase times (seconds) of one copy-to-green run at ``level``."""
    phases = {"copy": render_project(template, project, level)}
    if level == 0:
        venv = project / ".venv"
        python = str(venv / "bin" / "python")
        phases["install"] = sh(
            ["uv", "venv", "-q", "--python", sys.executable, str(venv)], project
        ) + sh(
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
            timeout=TIMEOUT,
        )
        phases["test"] = sh([python, "-c", NOTEBOOK], project / "notebooks", timeout=TIMEOUT)
    else:
        phases["install"] = sh(["make", "install"], project, timeout=TIMEOUT)
        phases["test"], session = make_test(project)
    phases["total"] = sum(phases.values())
    if level:
        phases["pytest session"] = session
    return phases


def run(options: Options) -> Result:
    levels = sorted(options.levels)
    result = Result(
        name="time_to_green",
        title="Time to green: copier copy to a passing make test (warm uv cache), median seconds",
        columns=[
            "level",
            "copy",
            "install",
            "test",
            "of which pytest session",
            "total",
            "target",
            "ratio to target",
        ],
    )
    load_before = os.getloadavg()
    samples: dict[int, list[dict[str, float]]] = {level: [] for level in levels}
    rounds = 1 if options.quick else max(1, options.rounds)
    with template_workdir("green") as (work, template):
        deadline = Deadline(options.budget, rounds, default=1800)
        for i in deadline.rounds():
            shift = i % len(levels)
            for level in levels[shift:] + levels[:shift]:
                project = work / f"r{i}" / f"level-{level}"
                project.parent.mkdir(exist_ok=True)
                samples[level].append(green(template, project, level))
                print(
                    f"   round {i} level {level}: {samples[level][-1]['total']:.1f} s", flush=True
                )
    for level in levels:
        runs = samples[level][1:] if len(samples[level]) > 1 else samples[level]
        med = {phase: median([r[phase] for r in runs]) for phase in runs[0]}
        target = TARGETS.get(level)
        to_target = f"{fmt(ratio(med['total'], target))}x" if target else "-"
        result.rows.append(
            [
                str(level),
                *(fmt(med[p], 1) for p in ("copy", "install", "test")),
                fmt(med.get("pytest session", float("nan")), 1),
                fmt(med["total"], 1),
                f"< {target:g} s" if target else "-",
                to_target,
            ]
        )
        if target:
            result.chart.append((f"level {level} / target", ratio(med["total"], target)))
    counted = max(len(s) for s in samples.values())
    result.notes.append(
        f"{counted} round(s) per level"
        + (
            "; the first warmed the uv cache and is not counted"
            if counted > 1
            else "; cache as found (run with more rounds to discard a cold first round)"
        )
        + ". Level 0: venv + requirements + the notebook run headless; levels 1-4: "
        "`make install` then `make test`. Ratio to target < 1 means the target is met."
    )
    load_after = os.getloadavg()
    result.notes.append(
        f"Load average (1 min) {load_before[0]:.1f} at the start, {load_after[0]:.1f} at the "
        f"end, on {os.cpu_count()} cores shared with other work. `make install` is `uv sync`: "
        "resolving against PyPI (network round trips even with a warm cache) and linking from "
        "the cache. `make test` minus the pytest session is `uv run`, Python and pytest "
        "start-up; the session includes the first import of pandas, scikit-learn and pyarrow "
        "in the fresh venv, which compiles their bytecode."
    )
    result.chart_title = "total time / issue-8 target"
    result.data = {"samples": {str(k): v for k, v in samples.items()}}
    return result
