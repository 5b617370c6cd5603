"""Every level transition keeps the user's work; the level guard and the doctor work.

For each ordered pair of distinct levels (a, b): generate at a from a committed copy of
the template, commit, apply typical user edits, `copier update --data level=b`, then check
that every edit survives (in place or in `.copier-kept/`), the files are exactly level
b's plus the user's own plus kept copies, and nothing is left conflicted.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from extensions import maturity
from tests.conftest import git_commit_all, git_status, run

from .paths import expected_paths, project_paths
from .transitions import (
    KEPT_DIR,
    MAKE_TEST_UPGRADES,
    PACKAGE,
    apply_level_code_edits,
    apply_user_edits,
    build_template_repo,
    conflict_leftovers,
    generate,
    git,
    levels_with_files,
    missing_edits,
    update,
)

LEVELS = list(maturity.LEVEL_NUMBERS)
# All 20 ordered pairs. Steps of one level run by default; the rest (~4 s each) with --slow.
PAIRS = [
    pytest.param(a, b, id=f"{a}-to-{b}", marks=() if abs(a - b) == 1 else pytest.mark.slow)
    for a, b in itertools.permutations(LEVELS, 2)
]


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template_repo(tmp_path_factory.mktemp("template") / "template")


@pytest.fixture(scope="session")
def generated(
    template_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[int], Path]:
    """One project per level, generated once; tests work on private copies."""
    cache: dict[int, Path] = {}

    def _generated(level: int) -> Path:
        if level not in cache:
            cache[level] = generate(template_repo, tmp_path_factory.mktemp("gen") / "p", level)
        return cache[level]

    return _generated


@pytest.fixture
def project_at(tmp_path: Path, generated: Callable[[int], Path]) -> Callable[[int], Path]:
    """A private, committed project at `level`."""

    def _project_at(level: int) -> Path:
        project = tmp_path / "project"
        shutil.copytree(generated(level), project)
        git_commit_all(project)
        return project

    return _project_at


def check_transition(project: Path, edits: list, target: int, template: Path) -> None:
    """`template`: the committed template copy the project came from (its `template/`)."""
    assert not missing_edits(project, edits), "user edits lost"
    assert conflict_leftovers(project) == []
    own = {edit.path for edit in edits if edit.own_file}
    kept = {
        p.relative_to(project).as_posix() for p in (project / KEPT_DIR).rglob("*") if p.is_file()
    }
    assert project_paths(project) == expected_paths(template, target, PACKAGE) | own | kept
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["level"] == target
    if (project / "scripts" / "doctor.py").exists():
        assert doctor_problems(project) == [], "doctor found problems"


@pytest.mark.parametrize(("start", "target"), PAIRS)
def test_transition_keeps_user_work(
    project_at: Callable[[int], Path],
    template_repo: Path,
    start: int,
    target: int,
    capfd: pytest.CaptureFixture[str],
) -> None:
    project = project_at(start)
    edits = apply_user_edits(project, start)
    git_commit_all(project, "user work")
    update(project, target)
    check_transition(project, edits, target, template_repo / "template")
    # Every kept copy is reported in the update's output.
    output = capfd.readouterr().err
    for kept in kept_files(project):
        assert f"{KEPT_DIR}/{kept}" in output


def kept_files(project: Path) -> list[str]:
    """The user's kept copies (not the template versions kept beside them for merging)."""
    root = project / KEPT_DIR
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != ".template"
    )


def make_test_pairs() -> list[tuple[int, int]]:
    have = levels_with_files()
    return [(a, b) for a, b in MAKE_TEST_UPGRADES if {a, b} - {0} <= have]


def tracked_files(project: Path) -> dict[str, bytes]:
    """The project's committed files and their bytes, but for the user's kept copies and the
    lock (an update keeps the project's; `make lock` resolves the new level's next)."""
    listed = git(project, "ls-files", "-z").split("\0")
    return {
        path: (project / path).read_bytes()
        for path in listed
        if path and path != "uv.lock" and not path.startswith(f"{KEPT_DIR}/")
    }


@pytest.mark.slow
@pytest.mark.parametrize(("start", "target"), make_test_pairs())
def test_upgrade_is_a_fresh_project_with_the_users_work(
    project_at: Callable[[int], Path],
    generated: Callable[[int], Path],
    tmp_path: Path,
    start: int,
    target: int,
) -> None:
    """Moved up, a project holds byte for byte what a fresh project of that level holds with
    the same work done in it. That project's own suite runs in test_end_to_end (and with every
    config value edited in test_config_edits): here the upgraded one locks, installs, collects
    every test, and its doctor is content. Level 0's work (a notebook and its requirements)
    has no place in a fresh package: from there the whole suite runs."""
    project = project_at(start)
    apply_user_edits(project, start)
    git_commit_all(project, "user work")
    update(project, target)
    git_commit_all(project, f"level {target}")
    if start:
        fresh = tmp_path / "fresh"
        shutil.copytree(generated(target), fresh)
        apply_user_edits(fresh, start)
        git_commit_all(fresh, "the same work")
        upgraded, expected = tracked_files(project), tracked_files(fresh)
        assert sorted(upgraded) == sorted(expected)
        assert [path for path in expected if upgraded[path] != expected[path]] == []
    run(["make", "lock"], project)  # the new level's extras and the user's dependency
    run(["make", "install"], project)
    run(["make", "test", *(() if start == 0 else ("ARGS=--collect-only -q",))], project)
    run(["make", "doctor"], project)


def test_template_version_upgrade_merges_with_user_work(tmp_path: Path) -> None:
    """A project from an older tag updates to a newer tag without conflicts."""
    repo = build_template_repo(tmp_path / "template", tag="v1.0.0")
    project = generate(repo, tmp_path / "project", level=1, vcs_ref="v1.0.0")
    git_commit_all(project)
    edits = apply_user_edits(project, 1)
    git_commit_all(project, "user work")
    # The next template version changes shared files and a level-1 module.
    makefile = repo / "template" / "Makefile.jinja"
    makefile.write_text(makefile.read_text().replace("## List the targets", "## List every target"))
    contract = next((repo / "template" / "src").glob("*/contract.py"))
    contract.write_text(contract.read_text() + "\n\nTEMPLATE_V2 = True\n")
    git_commit_all(repo, "template v1.1.0")
    git(repo, "tag", "v1.1.0")
    update(project, vcs_ref=None)  # plain `copier update`: the newest tag
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v1.1.0"
    assert "## List every target" in (project / "Makefile").read_text()
    assert "TEMPLATE_V2 = True" in (project / f"src/{PACKAGE}/contract.py").read_text()
    check_transition(project, edits, 1, repo / "template")


@pytest.mark.slow
def test_walk_up_and_back_down_keeps_everything(
    project_at: Callable[[int], Path], template_repo: Path
) -> None:
    """0 -> 1 -> 2 -> 3 -> 4 -> 3 -> 2 -> 1 -> 0, working at each level on the way up."""
    project = project_at(0)
    edits = apply_user_edits(project, 0)
    git_commit_all(project, "work at 0")
    for level in LEVELS[1:]:
        update(project, level)
        git_commit_all(project, f"level {level}")
        edits += (
            apply_user_edits(project, 1) if level == 1 else apply_level_code_edits(project, level)
        )
        git_commit_all(project, f"work at {level}")
    for level in reversed(LEVELS[:-1]):
        update(project, level)
        assert not missing_edits(project, edits), f"user edits lost on the way down to {level}"
        assert conflict_leftovers(project) == []
        git_commit_all(project, f"back to {level}")
    own = {edit.path for edit in edits if edit.own_file}
    kept = {p.relative_to(project).as_posix() for p in (project / KEPT_DIR).rglob("*")}
    expected = expected_paths(template_repo / "template", 0, PACKAGE)
    assert project_paths(project) == expected | own | {k for k in kept if (project / k).is_file()}


def test_conflicts_are_reported_by_the_guard_and_the_doctor(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Copier exits 0 on a conflict: the guard's output and `make doctor` say so."""
    repo = build_template_repo(tmp_path / "template", tag="v1.0.0")
    project = generate(repo, tmp_path / "project", level=1, vcs_ref="v1.0.0")
    git_commit_all(project)
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text().replace("## List the targets", "## Mine"))
    git_commit_all(project, "user edit")
    template_makefile = repo / "template" / "Makefile.jinja"
    text = template_makefile.read_text().replace("## List the targets", "## Theirs")
    template_makefile.write_text(text)
    git_commit_all(repo, "template v1.1.0")
    git(repo, "tag", "v1.1.0")
    update(project, vcs_ref=None)
    assert conflict_leftovers(project) == ["Makefile"]
    assert "conflict markers in Makefile" in capfd.readouterr().err
    result = doctor(project)
    assert result.returncode == 1
    assert "conflict markers in Makefile" in result.stdout


# ------------------------------------------------------------------------- guard


def highest_level_module(template: Path, lowest: bool = False) -> tuple[int, str] | None:
    """A module of the highest (or lowest) level above 1 that has one in its own package."""
    for level in sorted(levels_with_files(template) - {0, 1}, reverse=not lowest):
        for pattern in maturity.get_level(level).paths:
            if pattern.startswith("src/*/") and pattern.endswith("/"):
                folder = template / "src" / "{{ package_name }}" / pattern[6:-1]
                modules = sorted(p.name for p in folder.glob("*.py") if p.name != "__init__.py")
                if modules:
                    return level, f"src/{PACKAGE}/{pattern[6:]}{modules[0]}"
    return None


def test_guard_keeps_a_changed_higher_level_module_on_downgrade(
    project_at: Callable[[int], Path], template_repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    found = highest_level_module(template_repo / "template")
    if found is None:
        pytest.skip("no level above 1 has modules in the template yet")
    level, module = found
    project = project_at(level)
    (project / module).write_text((project / module).read_text() + "\nUSER_TUNING = 3\n")
    git_commit_all(project, "tune")
    update(project, 1)
    assert not (project / module).exists()
    kept = project / KEPT_DIR / f"{level}-to-1" / module
    assert "USER_TUNING = 3" in kept.read_text()
    err = capfd.readouterr().err
    assert f"{KEPT_DIR}/{level}-to-1/{module}" in err
    # The message points to the docs page, which exists (the project has no docs/).
    assert f"See {maturity.CHANGING_LEVEL_URL}" in err
    page = maturity.CHANGING_LEVEL_URL.removeprefix(maturity.DOCS_URL).rstrip("/")
    assert (Path(__file__).resolve().parents[1] / "docs" / f"{page}.md").is_file()
    # Unchanged files of that level are simply removed; the kept one's base is beside it.
    assert kept_files(project) == [f"{level}-to-1/{module}"]
    assert (project / KEPT_DIR / ".template" / f"{level}-to-1" / module).is_file()


def test_guard_keeps_a_changed_requirements_file_when_moving_up(
    project_at: Callable[[int], Path], capfd: pytest.CaptureFixture[str]
) -> None:
    project = project_at(0)
    (project / "requirements.txt").write_text(
        (project / "requirements.txt").read_text() + "rich>=13\n"
    )
    git_commit_all(project, "dependency")
    update(project, 1)
    assert not (project / "requirements.txt").exists()
    assert "rich>=13" in (project / KEPT_DIR / "0-to-1" / "requirements.txt").read_text()
    assert f"{KEPT_DIR}/0-to-1/requirements.txt" in capfd.readouterr().err


def test_guard_keeps_nothing_when_nothing_was_changed(
    project_at: Callable[[int], Path], template_repo: Path
) -> None:
    project = project_at(1)
    update(project, 0)
    assert not (project / KEPT_DIR).exists()
    assert project_paths(project) == expected_paths(template_repo / "template", 0, PACKAGE)


def run_guard(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    guard = Path(__file__).resolve().parents[1] / "extensions" / "guard.py"
    return subprocess.run(
        [sys.executable, str(guard), *args], cwd=project, capture_output=True, text=True
    )


def test_guard_is_idempotent_and_inert_outside_the_project(
    project_at: Callable[[int], Path], template_repo: Path, tmp_path: Path
) -> None:
    project = project_at(1)
    features = project / f"src/{PACKAGE}/features.py"
    features.write_text(features.read_text() + "\nUSER = 1\n")
    git_commit_all(project, "edit")
    update(project, 0)
    before = {
        p: p.read_bytes() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts
    }
    # Copier may run it again (tasks run up to 3 times); a second run changes nothing.
    again = run_guard(project, "after", f"--template={template_repo}")
    assert again.returncode == 0, again.stderr
    after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before
    # In a folder that is not the git project (copier's temporary copies) it does nothing.
    scratch = tmp_path / "scratch"
    shutil.copytree(project, scratch, ignore=shutil.ignore_patterns(".git"))
    for stage in ("before", "after"):
        result = run_guard(scratch, stage, f"--template={template_repo}")
        assert (result.returncode, result.stderr) == (0, "")
    assert not (scratch / KEPT_DIR / "1-to-0-2").exists()


def test_hand_edited_level_is_refused_before_any_change(
    project_at: Callable[[int], Path],
) -> None:
    project = project_at(1)
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("level: 1", "level: 0"))
    git_commit_all(project, "hand edit")
    head = git(project, "rev-parse", "HEAD")
    with pytest.raises(Exception, match=r"guard\.py"):
        update(project, 1)
    assert git(project, "rev-parse", "HEAD") == head
    assert git_status(project) == ""


# ------------------------------------------------------------------------ doctor


#: Doctor's line when uv.lock no longer matches pyproject.toml. An update never touches
#: uv.lock (copier.yml: _skip_if_exists), so after a level change or a user's new dependency
#: relocking is the user's next step (`make lock`, which the slow tests run).
STALE_LOCK = "doctor: uv.lock does not match pyproject.toml: run `make lock` and commit uv.lock"


def doctor(project: Path) -> subprocess.CompletedProcess[str]:
    """`scripts/doctor.py` with uv on PATH, as a user runs it: its lock check always runs."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "scripts/doctor.py"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
    )


def doctor_problems(project: Path) -> list[str]:
    """Doctor's problem lines, a stale lock aside (see STALE_LOCK)."""
    result = doctor(project)
    lines = result.stdout.splitlines()
    problems = [
        line
        for line in lines
        if line.startswith("doctor: ")
        and not line.startswith(("doctor: note:", "doctor: see ", "doctor: ok "))
        and line != STALE_LOCK
    ]
    assert problems or result.returncode == 0 or STALE_LOCK in lines, result.stdout
    return problems


def test_doctor_passes_on_every_fresh_level_that_has_it(generated: Callable[[int], Path]) -> None:
    for level in LEVELS:
        project = generated(level)
        if (project / "scripts" / "doctor.py").exists():
            result = doctor(project)
            assert result.returncode == 0, result.stdout
            assert f"ok (level {level}" in result.stdout


def test_doctor_finds_conflicts_rejects_and_a_level_mismatch(
    project_at: Callable[[int], Path],
) -> None:
    project = project_at(1)
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "<" * 7 + " before updating\nmine\n=======\n")
    (project / "Makefile.rej").write_text("@@ -1 +1 @@\n")
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace("level: 1", "level: 3"))
    result = doctor(project)
    assert result.returncode == 1
    assert "conflict markers in README.md" in result.stdout
    assert "rejected hunks in Makefile.rej" in result.stdout
    assert "says level 3 but the files were generated for level 1" in result.stdout


# ------------------------------------------------------------- down and back up


@pytest.mark.slow
def test_down_and_back_up_restores_the_users_edits_in_place(
    project_at: Callable[[int], Path], capfd: pytest.CaptureFixture[str]
) -> None:
    """4 -> 2 -> 4: the edited level-3/4 files come back as the user left them."""
    top = LEVELS[-1]
    project = project_at(top)
    edits = apply_user_edits(project, top)
    git_commit_all(project, "user work")
    update(project, 2)
    git_commit_all(project, "down to 2")
    returning = {e.path for e in edits if not e.own_file and not (project / e.path).exists()}
    assert returning, "the downgrade removed no edited file: nothing to bring back"
    capfd.readouterr()
    update(project, top)
    output = capfd.readouterr().err
    misplaced = [e for e in edits if e.marker not in (project / e.path).read_text()]
    assert misplaced == [], "edits not back in place"
    assert conflict_leftovers(project) == []
    for path in returning:
        assert f"restored your {path} from {KEPT_DIR}/{top}-to-2/{path}" in output
    # A second run of the guard changes nothing.
    before = (project / sorted(returning)[0]).read_bytes()
    assert run_guard(project, "after").returncode == 0
    assert (project / sorted(returning)[0]).read_bytes() == before


def test_a_returning_file_is_merged_with_the_templates_changes(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """2 -> 1, the template changes, 1 -> 2: both sides' changes meet, conflicts are marked."""
    repo = build_template_repo(tmp_path / "template", tag=None)
    found = highest_level_module(repo / "template", lowest=True)
    if found is None:
        pytest.skip("no level above 1 has modules in the template yet")
    level, module = found
    package_folder = Path(module).parent.as_posix()
    folder = repo / "template" / package_folder.replace(PACKAGE, "{{ package_name }}")
    clean, clashing = sorted(p.name for p in folder.glob("*.py*") if "__init__" not in p.name)[:2]
    project = generate(repo, tmp_path / "project", level)
    git_commit_all(project)
    package_dir = project / Path(module).parent
    mine = {clean: "\n\ndef user_helper() -> int:\n    return 1\n", clashing: "\nUSER = 1\n"}
    for name, text in mine.items():
        with (package_dir / name.removesuffix(".jinja")).open("a") as handle:
            handle.write(text)
    git_commit_all(project, "user work")
    update(project, level - 1)
    git_commit_all(project, "down")
    # The template's next commit: a new first line in one module, a clashing end in the other.
    (folder / clean).write_text("# template v2\n" + (folder / clean).read_text())
    (folder / clashing).write_text((folder / clashing).read_text() + "\nTEMPLATE = 2\n")
    git_commit_all(repo, "template v2")
    capfd.readouterr()
    update(project, level)
    output = capfd.readouterr().err
    merged = (package_dir / clean.removesuffix(".jinja")).read_text()
    assert merged.startswith("# template v2\n")
    assert merged.endswith(mine[clean])
    conflicted = package_dir / clashing.removesuffix(".jinja")
    rel = conflicted.relative_to(project).as_posix()
    assert conflict_leftovers(project) == [rel]
    assert "USER = 1" in conflicted.read_text()
    assert "TEMPLATE = 2" in conflicted.read_text()
    assert f"restored your {rel}" in output
    assert "1 conflict(s) marked" in output
    assert f"conflict markers in {rel}" in output
