"""What the template should render, computed from its tree and the maturity model."""

from __future__ import annotations

from pathlib import Path

from extensions.maturity import expected_paths, template_output_paths

__all__ = ["expected_paths", "project_paths", "template_output_paths"]


def project_paths(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix()
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts
    }
