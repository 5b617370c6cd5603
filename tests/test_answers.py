"""Bad answers are refused with a message naming the question, leaving nothing behind."""

from __future__ import annotations

from pathlib import Path

import copier
import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("answers", "question"),
    [
        ({"level": 7}, "level"),
        ({"level": -1}, "level"),
        ({"level": "x"}, "level"),
        ({"level": 1.5}, "level"),
        ({"package_name": "1-bad-name"}, "package_name"),
        ({"package_name": "import"}, "package_name"),
        ({"package_name": "Has-Dash"}, "package_name"),
        ({"project_slug": "Not A Slug"}, "project_slug"),
        ({"author_email": "not-an-email"}, "author_email"),
        ({"author_email": "a@b"}, "author_email"),
        ({"python_version": "2.7"}, "python_version"),
        ({"project_name": "   "}, "project_name"),
    ],
)
def test_bad_answer_is_refused_by_name(tmp_path: Path, answers: dict, question: str) -> None:
    destination = tmp_path / "project"
    with pytest.raises(ValueError, match=f"'{question}'"):
        copier.run_copy(
            str(ROOT),
            destination,
            data=answers,
            defaults=True,
            unsafe=True,
            quiet=True,
            vcs_ref="HEAD",
        )
    assert not destination.exists()
