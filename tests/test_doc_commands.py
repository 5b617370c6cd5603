"""Every command the docs and READMEs show exists: a `make` target in the Makefile of the level
it is shown for, a project command that the CLI of that level parses (`build_parser` of the
rendered project: its arguments, its options and their values).

Read from the ```bash blocks of README.md, docs/ and each level's generated README and GUIDE.md.
A page of docs/levels/ (and a GUIDE.md) is checked against its level; another page against any
level that has the command (a docs page may show a level-3 command beside a level-1 one).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from extensions import maturity
from tests.conftest import ROOT, Render

PACKAGE = "taxi_trip_duration"
SLUG = "taxi-trip-duration"
FENCE = re.compile(r"^```(?:bash|sh|console)\n(.*?)^```", re.M | re.S)
PLACEHOLDERS = {"<slug>": SLUG, "<package>": PACKAGE}
TARGET = re.compile(r"^([A-Za-z0-9_-]+):(?!=)", re.M)
ENV_SETTING = re.compile(r"^[A-Z_][A-Z0-9_]*=")
PROJECT_COMMAND = re.compile(
    rf"^(?:uv run (?:--frozen )?)?(?:{SLUG}|python3? -m {PACKAGE})(?= |$)(.*)$"
)


def commands(markdown: str) -> Iterator[str]:
    """Each shell command of the ```bash blocks, without comments, split at && and ;."""
    for block in FENCE.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            for name, value in PLACEHOLDERS.items():
                line = line.replace(name, value)
            for part in re.split(r"&&|;|\|\|", line):
                if part.strip():
                    yield part.strip()


def _parse(project: Path, argv: list[str]) -> str | None:
    """None if the project's CLI parses ``argv``, else argparse's message."""
    sys.path.insert(0, str(project / "src"))
    # The rendered project is shared with other tests: leave no __pycache__ in it.
    writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        cli = importlib.import_module(f"{PACKAGE}.cli")
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.build_parser().parse_args(argv)
            except SystemExit as exit:
                return None if exit.code == 0 else errors.getvalue().strip().splitlines()[-1]
        return None
    finally:
        sys.dont_write_bytecode = writes_bytecode
        sys.path.remove(str(project / "src"))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _make_problem(project: Path, words: list[str]) -> str | None:
    if not (project / "Makefile").is_file():
        return "no Makefile at this level"
    makefile = (project / "Makefile").read_text()
    targets = set(TARGET.findall(makefile))
    variables = [w for w in words[1:] if "=" in w]
    for target in [w for w in words[1:] if "=" not in w and not w.startswith("-")]:
        if target not in targets:
            return f"no make target {target!r}"
        recipe = re.search(
            rf"^{re.escape(target)}:.*\n\t\$\(RUN\) {SLUG} (\S+) \$\(ARGS\)$", makefile, re.M
        )
        args = next((v.partition("=")[2] for v in variables if v.startswith("ARGS=")), None)
        if recipe and args:
            problem = _parse(project, [recipe.group(1), *shlex.split(args)])
            if problem:
                return problem
    return None


def _mlflow_problem(settings: list[str], words: list[str]) -> str | None:
    """An MLflow command runs in the project's venv and, to serve, reads its registry."""
    if words[0] != "uv":
        return "run mlflow as `uv run --frozen mlflow ...` (the venv's bin on PATH, for uvicorn)"
    serves = words[words.index("mlflow") + 1 : words.index("mlflow") + 3] == ["models", "serve"]
    if serves and not any(s.startswith("MLFLOW_TRACKING_URI=") for s in settings):
        return "mlflow models serve needs MLFLOW_TRACKING_URI (the project's registry)"
    return None


def problem_with(command: str, project: Path) -> str | None:
    """What is wrong with ``command`` in ``project`` (None: nothing, or not a project command)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    settings = list(itertools.takewhile(ENV_SETTING.match, words))
    words = words[len(settings) :]
    if not words:
        return None
    in_uv = words[:2] == ["uv", "run"] and "mlflow" in words[2:4]
    if Path(words[0]).name == "mlflow" or in_uv:
        return _mlflow_problem(settings, words)
    if words[0] == "make":
        return _make_problem(project, words)
    found = PROJECT_COMMAND.match(command)
    if found and not (project / "src").is_dir():
        return "no project command line at this level"
    if found:
        return _parse(project, shlex.split(found.group(1)))
    return None


def _sources(render: Render) -> list[tuple[str, str, list[int]]]:
    """(name, markdown, levels to check it against) of every page that shows commands."""
    levels = list(maturity.LEVEL_NUMBERS)
    pages = [("README.md", (ROOT / "README.md").read_text(), levels)]
    for page in sorted((ROOT / "docs").rglob("*.md")):
        level = re.fullmatch(r"level-(\d)", page.stem)
        name = str(page.relative_to(ROOT))
        pages.append((name, page.read_text(), [int(level.group(1))] if level else levels))
    for number in levels:
        for generated in ("README.md", "GUIDE.md"):
            text = (render(level=number) / generated).read_text()
            pages.append((f"level-{number} {generated}", text, [number]))
    return pages


def test_every_command_the_docs_show_exists(render: Render) -> None:
    wrong = []
    for name, markdown, levels in _sources(render):
        for command in commands(markdown):
            problems = [problem_with(command, render(level=n)) for n in levels]
            if all(problems):
                wrong.append(f"{name}: `{command}`: {problems[-1]}")
    assert wrong == []


@pytest.mark.parametrize(
    ("command", "wrong"),
    [
        (f"uv run {SLUG} generate-data --months 1", "invalid choice: 'generate-data'"),
        (f"uv run {SLUG} data --months 1", "expected YYYY-MM, got '1'"),
        ("make nothing-here", "no make target 'nothing-here'"),
        ('make data ARGS="--months 1"', "expected YYYY-MM, got '1'"),
        (".venv/bin/mlflow models serve -m models:/x@champion", "uv run --frozen mlflow"),
        ("mlflow models serve -m models:/x@champion --env-manager local", "uv run --frozen"),
        ("uv run --frozen mlflow models serve -m models:/x@champion", "MLFLOW_TRACKING_URI"),
    ],
)
def test_a_wrong_command_is_found(render: Render, command: str, wrong: str) -> None:
    found = problem_with(command, render(level=1))
    assert found is not None
    assert wrong in found


# A fresh Debian or Ubuntu machine has `python3` but no `python`, and its system Python refuses
# `pip install` outside a venv (PEP 668: "externally-managed-environment").
BARE_PYTHON = re.compile(r"(?<![\w/.-])python -m venv\b")
SYSTEM_PIP = re.compile(r"(?<![\w/.-])(?:python3? -m )?pip3? install [^\n`]*\buv\b")


def test_instructions_work_on_a_debian_system_python(render: Render) -> None:
    pages = {name: markdown for name, markdown, _ in _sources(render)}
    pages["copier.yml"] = (ROOT / "copier.yml").read_text()
    for number in maturity.LEVEL_NUMBERS[1:]:
        pages[f"level-{number} Makefile"] = (render(level=number) / "Makefile").read_text()
    wrong = [
        f"{name}: {found.group(0)!r}"
        for name, text in pages.items()
        for pattern in (BARE_PYTHON, SYSTEM_PIP)
        for found in pattern.finditer(text)
    ]
    assert wrong == []
