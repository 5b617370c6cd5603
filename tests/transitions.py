"""Helpers for the level-transition tests: a committed template, typical user edits, checks.

Everything is computed from the maturity model and the template tree, so the tests cover
whatever levels have files today and grow with the template.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import copier

from extensions import maturity
from tests.conftest import DEFAULT_ANSWERS, ROOT, TEMPLATE, git_commit_all

from .paths import template_output_paths

PACKAGE = "taxi_trip_duration"
KEPT_DIR = ".copier-kept"
# Conflict markers copier/git leave (built, not written, so this file has none).
MARKER = re.compile("^(" + "<" * 7 + "|" + ">" * 7 + ")( |$)", re.M)
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "site"
)

# Upgrades whose result must also pass its own `make install test` (slow). A pair runs
# once both of its levels have files of their own in the template.
MAKE_TEST_UPGRADES: list[tuple[int, int]] = [(0, 1), (1, 2), (2, 3), (3, 4), (1, 4)]


def levels_with_files(template: Path = TEMPLATE) -> set[int]:
    """Levels that own at least one file of the template (today's working tree by default)."""
    levels = set()
    for path in template_output_paths(template, PACKAGE):
        try:
            owner = maturity.owner_of(path)
        except LookupError:  # a stray file (a tool's cache): test_render reports those
            continue
        if owner is not None:
            levels.add(owner.number)
    return levels


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout


def build_template_repo(destination: Path, tag: str | None = "v0.1.0") -> Path:
    """A committed (and tagged) copy of the template's working tree: updates need git."""
    shutil.copytree(ROOT, destination, ignore=COPY_IGNORE)
    git_commit_all(destination, "template")
    if tag:
        git(destination, "tag", tag)
    return destination


def generate(template: Path, destination: Path, level: int, vcs_ref: str | None = "HEAD") -> Path:
    copier.run_copy(
        str(template),
        destination,
        data={"level": level, **DEFAULT_ANSWERS},
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    return destination


def update(project: Path, level: int | None = None, vcs_ref: str | None = "HEAD") -> None:
    """`copier update --trust --defaults [--data level=N]`, as a user runs it."""
    copier.run_update(
        dst_path=project,
        data={} if level is None else {"level": level},
        defaults=True,
        overwrite=True,
        unsafe=True,
        quiet=True,
        vcs_ref=vcs_ref,
    )


@dataclass(frozen=True)
class Edit:
    """A user edit: `marker` must still be in `path` (or in its kept copy) afterwards."""

    path: str
    marker: str
    own_file: bool = False  # a file of the user's own (not from the template)


def _append(project: Path, path: str, text: str) -> None:
    file = project / path
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a") as handle:
        handle.write(text)


def _replace_once(project: Path, path: str, old: str, new: str) -> None:
    file = project / path
    text = file.read_text()
    assert old in text, f"{old!r} not in {path}: update the user edits in tests/transitions.py"
    file.write_text(text.replace(old, new, 1))


def _first_module(project: Path, folder: str) -> str | None:
    """The first generated module (not __init__) in the package folder `folder`."""
    modules = sorted((project / "src" / PACKAGE / folder).glob("*.py"))
    names = [m for m in modules if m.name not in {"__init__.py", "__main__.py"}]
    return names[0].relative_to(project).as_posix() if names else None


def _bump_first_number(project: Path, path: str) -> str | None:
    """Edit a config value: add 1 to the first `key: <int>` line of a YAML file."""
    file = project / path
    text = file.read_text()
    found = re.search(r"^(\s*[A-Za-z_]+:\s*)(\d+)\s*$", text, re.M)
    if not found:
        return None
    line = f"{found.group(1)}{int(found.group(2)) + 1}"
    file.write_text(text[: found.start()] + line + text[found.end() :])
    return line.strip()


def apply_user_edits(project: Path, level: int) -> list[Edit]:
    """Typical work of a user at `level`; returns what must survive any update."""
    edits: list[Edit] = []
    note = "\n## Our team notes\n\nUser note: retrain monthly; ask Dana before changing the data.\n"
    _append(project, "README.md", note)
    edits.append(Edit("README.md", "User note: retrain monthly"))
    if level == 0:
        _append(project, "requirements.txt", "rich>=13\n")
        edits.append(Edit("requirements.txt", "rich>=13"))
        _replace_once(project, "requirements.txt", "scikit-learn>=1.5", "scikit-learn>=1.5,<2")
        edits.append(Edit("requirements.txt", "scikit-learn>=1.5,<2"))
        _append(project, "notebooks/helpers.py", '"""My helpers."""\n\nANSWER = 42\n')
        edits.append(Edit("notebooks/helpers.py", "ANSWER = 42", own_file=True))
        return edits
    package = f"src/{PACKAGE}"
    own = '"""Features of my own."""\n\n\ndef user_own_feature(x: float) -> float:\n'
    own += '    """Double `x`."""\n    return 2 * x\n'
    _append(project, f"{package}/user_features.py", own)
    edits.append(Edit(f"{package}/user_features.py", "def user_own_feature", own_file=True))
    added = '\n\ndef user_added_helper() -> str:\n    """Added by the user."""\n    return "mine"\n'
    _append(project, f"{package}/features.py", added)
    edits.append(Edit(f"{package}/features.py", "def user_added_helper"))
    # An extra dependency already in the tree (no download) and an edited tool setting.
    _replace_once(
        project,
        "pyproject.toml",
        '    "joblib>=1.4",\n',
        '    "joblib>=1.4",\n    "python-dateutil>=2.8",\n',
    )
    edits.append(Edit("pyproject.toml", '"python-dateutil>=2.8"'))
    _replace_once(project, "pyproject.toml", "line-length = 100", "line-length = 110")
    edits.append(Edit("pyproject.toml", "line-length = 110"))
    target = "\nuser-report: ## My own target\n\t@echo user-report\n"
    _append(project, "Makefile", target)
    edits.append(Edit("Makefile", "user-report: ## My own target"))
    # Work in each higher level's own code and configs, wherever that level has them.
    for number in range(2, level + 1):
        edits += apply_level_code_edits(project, number)
    return edits


def apply_level_code_edits(project: Path, number: int) -> list[Edit]:
    """A function added to a module of level `number`'s own package, and an edited config."""
    edits = []
    for pattern in maturity.get_level(number).paths:
        folder = pattern.removeprefix("src/*/").rstrip("/")
        if pattern.startswith("src/*/") and pattern.endswith("/"):
            module = _first_module(project, folder)
            if module:
                function = f"def user_level{number}_{folder}() -> int:\n    return {number}\n"
                _append(project, module, "\n\n" + function)
                edits.append(Edit(module, f"def user_level{number}_{folder}"))
        elif pattern.startswith("configs/") and (project / pattern).is_file():
            line = _bump_first_number(project, pattern)
            if line:
                edits.append(Edit(pattern, line))
    return edits


def kept_copies(project: Path, path: str) -> list[Path]:
    return sorted((project / KEPT_DIR).glob(f"*/{path}"))


def missing_edits(project: Path, edits: list[Edit]) -> list[Edit]:
    """Edits found neither in place nor in a kept copy."""

    def present(edit: Edit) -> bool:
        places = [project / edit.path, *kept_copies(project, edit.path)]
        return any(p.is_file() and edit.marker in p.read_text() for p in places)

    return [edit for edit in edits if not present(edit)]


def conflict_leftovers(project: Path) -> list[str]:
    """Files with conflict markers, and .rej files."""
    found = []
    for file in project.rglob("*"):
        rel = file.relative_to(project)
        if not file.is_file() or rel.parts[0] in {".git", ".venv"}:
            continue
        if file.suffix == ".rej" or MARKER.search(file.read_text(errors="replace")):
            found.append(rel.as_posix())
    return sorted(found)
