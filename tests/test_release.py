"""The template as a released product: licenses, its version and changelog, its CI matrix."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from packaging.licenses import canonicalize_license_expression

from extensions import maturity
from tests.conftest import ROOT, Render

COPIER = yaml.safe_load((ROOT / "copier.yml").read_text())
LICENSES = list(COPIER["license"]["choices"].values())
# What identifies each license's text (its title, or the clause no other one has).
LICENSE_TEXT = {
    "MIT": "Permission is hereby granted, free of charge",
    "Apache-2.0": "Apache License\n                           Version 2.0, January 2004",
    "BSD-3-Clause": "3. Neither the name of the copyright holder nor the names of its",
    "Proprietary": "No license is granted",
}


def test_every_license_choice_has_its_text() -> None:
    assert sorted(LICENSES) == sorted(LICENSE_TEXT)
    assert COPIER["license"]["default"] in LICENSES


@pytest.mark.parametrize("license_id", LICENSES)
def test_the_license_answer_writes_the_license_and_the_metadata(
    render: Render, license_id: str
) -> None:
    project = render(level=1, license=license_id, author_name="Zoë O'Brien")
    text = (project / "LICENSE").read_text()
    assert LICENSE_TEXT[license_id] in text
    others = [marker for other, marker in LICENSE_TEXT.items() if other != license_id]
    assert not [marker for marker in others if marker in text]
    if license_id != "Apache-2.0":  # Apache's text names no holder: its appendix says how
        assert re.search(r"Copyright \(c\) \d{4},? Zoë O'Brien", text), text[:200]
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["license-files"] == ["LICENSE"]
    assert canonicalize_license_expression(meta["license"]) == meta["license"]
    if license_id == "Proprietary":
        assert meta["license"].startswith("LicenseRef-")
        assert "Private :: Do Not Upload" in meta["classifiers"]
    else:
        assert meta["license"] == license_id
        assert "classifiers" not in meta


@pytest.mark.parametrize("level", maturity.LEVEL_NUMBERS)
def test_every_level_has_the_license(render: Render, level: int) -> None:
    assert "MIT License" in (render(level=level) / "LICENSE").read_text()


def test_the_template_has_its_own_license() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_version_is_the_changelogs_newest_release() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    assert headings[1] == version
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)


def test_the_docs_say_how_to_move_to_a_template_version() -> None:
    docs = (ROOT / "docs" / "changing-level.md").read_text()
    assert "## Moving to a newer template version" in docs
    assert re.search(r"copier update --trust --defaults --vcs-ref v\d+\.\d+\.\d+", docs)


def test_template_ci_runs_every_offered_python() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "template.yml").read_text())
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert matrix == COPIER["python_version"]["choices"]
