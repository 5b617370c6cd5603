"""Bad answers are refused with a message naming the question, leaving nothing behind."""

from __future__ import annotations

from pathlib import Path

import copier
import pytest
import yaml

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


# One bad answer per question that has a validator, and a word of the fix its message gives.
VALIDATED = {
    "project_name": ("  ", "project name"),
    "package_name": ("1-bad-name", "e.g."),
    "project_slug": ("Not A Slug", "e.g."),
    "author_email": ("not-an-email", "like name@example.com"),
    "level": (True, "from 0 to 4"),
}


def test_every_validator_has_a_bad_answer_here() -> None:
    config = yaml.safe_load((ROOT / "copier.yml").read_text())
    validated = {k for k, v in config.items() if isinstance(v, dict) and "validator" in v}
    assert validated == set(VALIDATED), "give each validated question a bad answer in VALIDATED"


@pytest.mark.parametrize("question", sorted(VALIDATED))
def test_validator_message_fits_one_line_and_says_the_fix(tmp_path: Path, question: str) -> None:
    """Copier shows a validator's message on one line: at 80 columns it must fit whole."""
    bad, fix = VALIDATED[question]
    with pytest.raises(ValueError, match=f"question '{question}'") as raised:
        copier.run_copy(
            str(ROOT),
            tmp_path / "project",
            data={question: bad},
            defaults=True,
            unsafe=True,
            quiet=True,
            vcs_ref="HEAD",
        )
    message = str(raised.value).split(f"question '{question}': ", 1)[1]
    assert "\n" not in message
    assert len(message) <= 80, message
    assert fix in message
