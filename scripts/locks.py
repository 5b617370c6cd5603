"""Refresh (or check) the uv.lock each level ships, one per offered Python version.

A generated project's first commit holds `locks/level-<N>-py<V>.lock`, rendered for its name
(template/uv.lock.jinja), so `make install` installs what the template's CI tested. Run it after
changing a dependency in template/pyproject.toml.jinja:

    make locks                      # relock what changed, keep every other pin (uv lock)
    make locks ARGS=--upgrade       # move every pin to its newest allowed version
    make locks ARGS=--check         # exit 1 if a shipped lock is stale (no network needed)

Each lock is resolved by uv in a project rendered from this working tree with the default
answers; the project's name in it is the default one, which uv.lock.jinja replaces.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "locks"
sys.path.insert(0, str(ROOT))

from extensions import maturity  # noqa: E402

REFRESH = "make locks"
# The name uv.lock.jinja replaces by the project's own (copier.yml's default project_slug).
DEFAULT_PROJECT = "taxi-trip-duration"
JINJA_DELIMITERS = ("{{", "{%", "{#")


def python_versions() -> list[str]:
    return list(yaml.safe_load((ROOT / "copier.yml").read_text())["python_version"]["choices"])


def locked_levels() -> list[int]:
    """The levels whose projects ship a uv.lock (level 0 is a notebook)."""
    return [level for level in maturity.LEVEL_NUMBERS if maturity.belongs_at("uv.lock", level)]


def lock_path(level: int, python: str) -> Path:
    return LOCKS / f"level-{level}-py{python}.lock"


def render(level: int, python: str, into: Path) -> Path:
    """A project of `level` for `python` with the default answers, from this working tree."""
    from copier import run_copy
    from copier.errors import DirtyLocalWarning

    warnings.filterwarnings("ignore", category=DirtyLocalWarning)

    project = into / f"level-{level}-py{python}"
    run_copy(
        str(ROOT),
        project,
        data={"level": level, "python_version": python},
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref="HEAD",
    )
    return project


def uv(args: list[str], project: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return subprocess.run(["uv", *args], cwd=project, env=env, capture_output=True, text=True)


def stale(level: int, python: str, tmp: Path) -> str | None:
    """None when the shipped lock matches the project's pyproject.toml, else why not."""
    shipped = lock_path(level, python)
    if not shipped.is_file():
        return f"{shipped.relative_to(ROOT)} is missing"
    project = render(level, python, tmp)
    shutil.copyfile(shipped, project / "uv.lock")
    check = uv(["lock", "--check", "--offline", "--quiet"], project)
    if check.returncode != 0:
        return f"{shipped.relative_to(ROOT)} does not match level {level}'s pyproject.toml"
    return None


def refresh(level: int, python: str, tmp: Path, upgrade: bool) -> None:
    shipped = lock_path(level, python)
    LOCKS.mkdir(exist_ok=True)
    shipped.touch()  # a new level's lock starts empty: uv.lock.jinja includes it
    project = render(level, python, tmp)
    if shipped.stat().st_size:
        shutil.copyfile(shipped, project / "uv.lock")  # uv keeps the pins it can
    else:
        (project / "uv.lock").unlink()
    args = ["lock", "--python", python] + (["--upgrade"] if upgrade else [])
    proc = uv(args, project)
    if proc.returncode != 0:
        sys.exit(f"uv lock failed for level {level}, Python {python}:\n{proc.stderr}")
    text = (project / "uv.lock").read_text()
    if f'name = "{DEFAULT_PROJECT}"' not in text:
        sys.exit(f"level {level}: the lock does not name the project {DEFAULT_PROJECT!r}")
    if any(delimiter in text for delimiter in JINJA_DELIMITERS):
        sys.exit(f"level {level}: the lock holds a Jinja delimiter; uv.lock.jinja cannot ship it")
    changed = shipped.read_text() != text
    shipped.write_text(text)
    changes = [line for line in proc.stderr.splitlines() if line.startswith(("Updated", "Added"))]
    state = "updated" if changed else "unchanged"
    print(f"{shipped.relative_to(ROOT)}: {state}", *(f"  {line}" for line in changes), sep="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    mode.add_argument("--upgrade", action="store_true", help="newest allowed versions")
    args = parser.parse_args(argv)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for level in locked_levels():
            for python in python_versions():
                if args.check:
                    problem = stale(level, python, Path(tmp))
                    problems += [problem] if problem else []
                else:
                    refresh(level, python, Path(tmp), args.upgrade)
    for problem in problems:
        print(f"{problem}: run `{REFRESH}` and commit locks/", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
