"""The README's own path: its commands, read out of README.md, work in sequence.

The slow test runs them literally, in a fresh clone of the repository (its committed HEAD),
with a PATH that has uv but no copier (a new user has the template's venv only inside the
clone): the Quick start generates a project and commits it, "Move a project to another
level" moves it up from inside it, and then the generated README's "Moving up" command
moves it up once more.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from extensions import maturity
from tests.conftest import ROOT, Render, project_env

from .paths import expected_paths, project_paths

PACKAGE = "taxi_trip_duration"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


def section(markdown: str, title: str) -> str:
    """The text under the level-2 heading `title`, up to the next level-2 heading."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert found, f"no '## {title}' section"
    return found.group(1)


def bash_blocks(markdown: str, title: str) -> list[str]:
    blocks = FENCE.findall(section(markdown, title))
    assert blocks, f"no ```bash block under '## {title}'"
    return blocks


def test_the_readme_moves_projects_with_the_templates_update_command() -> None:
    """One command everywhere: the README's, the generated READMEs' and the guard's."""
    readme = (ROOT / "README.md").read_text()
    (move,) = bash_blocks(readme, "Move a project to another level")
    update, lock = move.strip().splitlines()
    assert update == f"{maturity.LEVEL_COMMAND} --data level=2"
    assert lock.startswith("make lock")  # the new level's lock, which the doctor asks for
    quick = "\n".join(bash_blocks(readme, "Quick start"))
    assert 'copier copy --trust --defaults "$PWD" ' in quick  # an absolute template path


@pytest.mark.parametrize("level", [0, 3])
def test_a_project_names_the_same_update_command_wherever_it_says_how_to_move(
    render: Render, level: int
) -> None:
    project = render(level=level)
    answers = (project / ".copier-answers.yml").read_text()
    assert f"{maturity.LEVEL_COMMAND} --data level=N" in answers
    readme = (project / "README.md").read_text()
    assert f"{maturity.LEVEL_COMMAND} --data level={level + 1}" in readme


def user_env(tmp_path: Path) -> dict[str, str]:
    """A new user's environment: git, make, Python and uv on PATH, but no copier."""
    env = project_env()
    tools = tmp_path / "tools"
    tools.mkdir()
    venv_bin = Path(sys.executable).parent
    for tool in ("uv", "uvx"):
        (tools / tool).symlink_to(venv_bin / tool)
    rest = [p for p in env["PATH"].split(os.pathsep) if p and Path(p) != venv_bin]
    env["PATH"] = os.pathsep.join([str(tools), *rest])
    assert shutil.which("copier", path=env["PATH"]) is None, "copier must not be on PATH"
    return env


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"{script}\nexited {proc.returncode} in {cwd}\n--- stdout ---\n{proc.stdout[-4000:]}"
        f"\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
    return proc


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def check_level(project: Path, clone: Path, level: int, env: dict[str, str]) -> None:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["level"] == level
    assert answers["_src_path"] == str(clone)  # the template, not the project itself
    # The commit the project was generated from, recorded as `git describe` gives it.
    recorded = git(clone, "rev-parse", answers["_commit"] + "^{commit}")
    assert recorded == git(clone, "rev-parse", "HEAD")
    assert project_paths(project) == expected_paths(clone / "template", level, PACKAGE)
    doctor = bash("python3 scripts/doctor.py", project, env)
    assert f"ok (level {level}" in doctor.stdout


@pytest.mark.slow
def test_the_readme_commands_work_in_sequence(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = bash_blocks(readme, "Quick start")
    (move,) = bash_blocks(readme, "Move a project to another level")
    env = user_env(tmp_path)
    clone = tmp_path / "mlops-maturity-template"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    git(clone, "checkout", "-q", git(ROOT, "rev-parse", "HEAD"))
    # A release older than HEAD: Copier's default ref for an update, which the README's level
    # change must not take (it would refuse the "downgrade" from the HEAD the project has).
    git(clone, "tag", "v0.0.1", git(clone, "rev-list", "--max-parents=0", "HEAD").split()[0])

    for block in quick_start:
        bash(block, clone, env)
    project = tmp_path / "my-ml-project"
    assert git(project, "status", "--porcelain") == ""  # committed, ready to move
    check_level(project, clone, 1, env)

    output = bash(move, project, env)
    assert "level 1 -> 2 done" in output.stderr
    check_level(project, clone, 2, env)

    # The generated README's own command, from the project's next commit.
    bash('git add -A && git commit -q -m "Move to level 2"', project, env)
    (up,) = bash_blocks((project / "README.md").read_text(), "Moving up")
    bash(up, project, env)
    check_level(project, clone, 3, env)


def test_a_missing_uv_gets_one_line_that_says_what_to_install(
    render: Render, tmp_path: Path
) -> None:
    project = render(level=1)
    # A PATH of the tools `make help` and `make install` use, but uv (it may share their folder).
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("make", "bash", "git", "grep", "awk"):
        found = shutil.which(tool)
        assert found, f"{tool} is not on PATH"
        (tools / tool).symlink_to(found)
    path = str(tools)
    proc = subprocess.run(
        ["make", "install"], cwd=project, env={"PATH": path}, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert proc.stdout == ""  # nothing ran
    (line,) = proc.stderr.splitlines()
    assert "uv not found" in line
    assert "pipx install uv" in line  # plain pip is refused on Debian (PEP 668)
    assert len(line) <= 160, line
    # Targets that do not need uv still work without it.
    assert subprocess.run(["make", "help"], cwd=project, env={"PATH": path}).returncode == 0
