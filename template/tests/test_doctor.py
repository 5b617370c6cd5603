"""`make doctor` finds what a template update can leave behind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def doctor(project: Path) -> subprocess.CompletedProcess[str]:
    script = project / "scripts" / "doctor.py"
    return subprocess.run(
        [sys.executable, str(script), "--root", str(project)], capture_output=True, text=True
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of this project's answers file and doctor, outside git."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "doctor.py", tmp_path / "scripts" / "doctor.py")
    shutil.copy(ROOT / ".copier-answers.yml", tmp_path / ".copier-answers.yml")
    (tmp_path / "README.md").write_text("# Project\n")
    return tmp_path


def test_a_clean_project_passes(project: Path) -> None:
    result = doctor(project)
    assert result.returncode == 0, result.stdout
    assert "doctor: ok" in result.stdout


def test_conflict_markers_and_rejected_hunks_fail(project: Path) -> None:
    # Given what a conflicted `copier update` leaves
    conflict = "<" * 7 + " before updating\nmine\n=======\ntheirs\n" + ">" * 7 + " after\n"
    (project / "README.md").write_text(conflict)
    (project / "Makefile.rej").write_text("@@ -1 +1 @@\n")
    # When the doctor runs, then it names both and fails
    result = doctor(project)
    assert result.returncode == 1
    assert "conflict markers in README.md" in result.stdout
    assert "rejected hunks in Makefile.rej" in result.stdout


def test_a_hand_edited_level_fails(project: Path) -> None:
    answers = project / ".copier-answers.yml"
    text = answers.read_text()
    level = int(text.split("\nlevel: ", 1)[1].split()[0])
    answers.write_text(text.replace(f"\nlevel: {level}", f"\nlevel: {(level + 1) % 5}"))
    result = doctor(project)
    assert result.returncode == 1
    assert "edited by hand" in result.stdout
