"""The template's migrations and tasks write nothing outside the project being updated.

A project is generated in a sandbox folder with its own HOME and TMPDIR and a neighbour
folder beside it; updates up and down (the level guard runs as `before` and `after`
migrations, and keeps a changed file on the way down) must leave every file outside the
project exactly as it was, and no temporary file behind.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.conftest import git_commit_all

from .transitions import KEPT_DIR, PACKAGE, build_template_repo, generate, update

pytestmark = pytest.mark.slow  # two updates, ~20 s


def snapshot(root: Path, skip: Path) -> dict[str, bytes]:
    """Every file under `root` but outside `skip`, with its content."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and skip not in path.parents
    }


def test_updates_write_nothing_outside_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = build_template_repo(tmp_path / "template" / "template")
    sandbox = tmp_path / "sandbox"
    home, scratch, neighbour = sandbox / "home", sandbox / "tmp", sandbox / "neighbour"
    for folder in (home, scratch, neighbour):
        folder.mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Sandbox\n\temail = s@example.com\n")
    (neighbour / "notes.txt").write_text("not the project's\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR in this process too

    project = generate(template, sandbox / "project", 2)
    git_commit_all(project)
    flow = project / f"src/{PACKAGE}/training/flow.py"
    flow.write_text(flow.read_text() + "\n# the user's change\n")
    git_commit_all(project, "edit")
    before = snapshot(sandbox, project)

    update(project, 3)
    git_commit_all(project, "level 3")
    update(project, 1)  # the guard keeps the changed training flow in .copier-kept/

    assert (project / KEPT_DIR).is_dir()
    assert snapshot(sandbox, project) == before
    assert list(scratch.iterdir()) == []
