"""What the template should render, computed from its tree and the maturity model."""

from __future__ import annotations

from pathlib import Path

from extensions import maturity

ANSWERS_FILE_TEMPLATE = "{{_copier_conf.answers_file}}.jinja"
# Tool caches a developer may leave in template/ (copier.yml excludes them too).
CACHES = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


def template_output_paths(template: Path, package_name: str) -> set[str]:
    """Every path the template can render (any level), with names rendered."""
    paths = set()
    for file in template.rglob("*"):
        if not file.is_file() or CACHES.intersection(file.parts):
            continue
        rel = file.relative_to(template).as_posix()
        if rel == ANSWERS_FILE_TEMPLATE:
            rel = ".copier-answers.yml"
        rel = rel.replace("{{ package_name }}", package_name).removesuffix(".jinja")
        paths.add(rel)
    return paths


def expected_paths(template: Path, level: int, package_name: str) -> set[str]:
    """The exact file set of a project at `level`, per the maturity model."""
    return {
        p for p in template_output_paths(template, package_name) if maturity.belongs_at(p, level)
    }


def project_paths(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }
