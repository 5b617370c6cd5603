"""Time to green: from ``copier copy`` to a passing ``make test``, per level, warm uv cache.

Level 0 has no Makefile: its green is the notebook executed headless (nbclient) in a venv made
from its requirements.txt. Levels 1-4 run ``make install`` then ``make test``. The first round
warms the uv cache and is not counted when there is more than one round.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.common import (
    Deadline,
    Options,
    Result,
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
        phases["test"] = sh(["make", "test"], project, timeout=TIMEOUT)
    phases["total"] = sum(phases.values())
    return phases


def run(options: Options) -> Result:
    levels = sorted(options.levels)
    result = Result(
        name="time_to_green",
        title="Time to green: copier copy to a passing make test (warm uv cache), median seconds",
        columns=["level", "copy", "install", "test", "total", "target", "ratio to target"],
    )
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
                *(fmt(med[p], 1) for p in ("copy", "install", "test", "total")),
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
    result.chart_title = "total time / issue-8 target"
    result.data = {"samples": {str(k): v for k, v in samples.items()}}
    return result
