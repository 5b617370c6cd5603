"""Every level renders: exactly its files, no Jinja left, every file well-formed."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from extensions import maturity
from tests.conftest import TEMPLATE, Render

from .paths import expected_paths, project_paths

LEVELS = list(maturity.LEVEL_NUMBERS)
JINJA_LEFT = re.compile(r"{%|{#|(?<!\$){{\s*[a-z_]")
OTHER_ANSWERS = {
    "project_name": "Fare Estimator",
    "package_name": "fare_estimator",
    "project_slug": "fare-est",
    "description": 'Estimates fares, with quotes " and colons: fine',
    "author_name": "Zoë O'Brien",
    "author_email": "zoe@example.org",
    "python_version": "3.13",
}


@pytest.mark.parametrize("level", LEVELS)
def test_level_has_exactly_its_files(render: Render, level: int) -> None:
    project = render(level=level)
    assert project_paths(project) == expected_paths(TEMPLATE, level, "taxi_trip_duration")


@pytest.mark.parametrize("level", LEVELS)
def test_other_answers_render_exactly_the_same_file_set(render: Render, level: int) -> None:
    project = render(level=level, **OTHER_ANSWERS)
    assert project_paths(project) == expected_paths(TEMPLATE, level, "fare_estimator")


@pytest.mark.parametrize("answers", [{}, OTHER_ANSWERS], ids=["defaults", "other-answers"])
@pytest.mark.parametrize("level", LEVELS)
def test_rendered_files_are_well_formed(render: Render, level: int, answers: dict) -> None:
    project = render(level=level, **answers)
    for path in sorted(project.rglob("*")):
        if not path.is_file() or ".git" in path.relative_to(project).parts:
            continue
        text = path.read_text()
        if path.suffix not in {".json", ".ipynb"}:
            assert not JINJA_LEFT.search(text), f"Jinja left in {path.relative_to(project)}"
        if path.suffix == ".py":
            compile(text, str(path), "exec")
        elif path.suffix in {".yml", ".yaml"}:
            yaml.safe_load(text)
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix in {".json", ".ipynb"}:
            json.loads(text)


def test_level_0_is_a_notebook_project(render: Render) -> None:
    files = project_paths(render(level=0))
    assert "notebooks/01-explore-and-train.ipynb" in files
    assert "requirements.txt" in files
    assert not any(f.startswith(("src/", "tests/")) or f == "pyproject.toml" for f in files)


def test_level_1_replaces_requirements_with_a_package(render: Render) -> None:
    files = project_paths(render(level=1))
    assert "requirements.txt" not in files
    assert {"pyproject.toml", "Makefile", "src/taxi_trip_duration/cli.py"} <= files
    assert "notebooks/01-explore-and-train.ipynb" in files  # kept as the exploration record


def test_level_1_code_does_not_import_later_levels_tools(render: Render) -> None:
    package = render(level=1) / "src" / "taxi_trip_duration"
    for module in package.glob("*.py"):
        assert not re.search(
            r"^\s*(from|import) (mlflow|prefect|fastapi)", module.read_text(), re.M
        )


@pytest.mark.parametrize("level", LEVELS)
def test_answers_file_records_the_level(render: Render, level: int) -> None:
    answers = yaml.safe_load((render(level=level) / ".copier-answers.yml").read_text())
    assert answers["level"] == level


@pytest.mark.parametrize("level", LEVELS)
def test_readme_names_the_level_and_the_next_step(render: Render, level: int) -> None:
    readme = (render(level=level) / "README.md").read_text()
    assert maturity.get_level(level).label in readme
    if level < 4:
        assert f"--data level={level + 1}" in readme


def test_python_version_reaches_the_project(render: Render) -> None:
    project = render(level=1, **OTHER_ANSWERS)
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["requires-python"] == ">=3.13"
    assert pyproject["project"]["name"] == "fare-est"
    assert (project / ".python-version").read_text().strip() == "3.13"
    assert Path(project / "src" / "fare_estimator" / "__init__.py").exists()


def make_targets(project: Path) -> dict[str, str]:
    """Each Makefile target with its `## help` text."""
    makefile = project / "Makefile"
    text = makefile.read_text() if makefile.is_file() else ""
    return dict(re.findall(r"^([a-zA-Z_-]+):.*?## (.*)$", text, re.M))


@pytest.mark.parametrize("level", LEVELS)
def test_slow_test_targets_exist_only_where_slow_tests_do(render: Render, level: int) -> None:
    project = render(level=level)
    slow = sorted(
        path.relative_to(project).as_posix()
        for path in (project / "tests").rglob("test_*.py")
        if "pytest.mark.slow" in path.read_text()
    )
    targets = make_targets(project)
    assert ("test-slow" in targets) == bool(slow), (slow, targets.get("test-slow"))
    assert ("test-all" in targets) == bool(slow)
    # Its help names what it runs: a topic for each folder that holds slow tests.
    topics = {"training": "training", "serving": "service", "automation": "retraining"}
    for folder in {Path(path).parts[1] for path in slow}:
        assert topics[folder] in targets["test-slow"], folder
