"""`.env.example` documents every environment variable the generated code reads, and no secret."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from extensions import maturity
from tests.conftest import Render

PACKAGE = "taxi_trip_duration"
LEVELS_WITH_ENV = [
    level.number for level in maturity.LEVELS if maturity.belongs_at(".env.example", level.number)
]


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _settings_variables(tree: ast.Module) -> set[str]:
    """Variables of pydantic-settings classes: env_prefix + field name, or a validation alias."""
    found: set[str] = set()
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        prefix = None
        for node in ast.walk(cls):
            if isinstance(node, ast.keyword) and node.arg == "env_prefix":
                prefix = _string(node.value)
        if prefix is None:
            continue
        for stmt in cls.body:
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                continue
            if stmt.target.id == "model_config":
                continue
            aliases = [
                _string(arg)
                for call in ast.walk(stmt)
                if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "AliasChoices"
                for arg in call.args
            ]
            found.update(a for a in aliases if a) if any(aliases) else found.add(
                prefix + stmt.target.id.upper()
            )
    return found


def _read_variables(tree: ast.Module) -> set[str]:
    """`os.environ.get("X")`, `os.environ["X"]` (reads) and `os.environ.setdefault` defaults."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if getattr(owner, "attr", "") == "environ" and node.func.attr in {"get", "setdefault"}:
                name = _string(node.args[0]) if node.args else None
                if name:
                    found.add(name)
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and getattr(node.value, "attr", "") == "environ"
        ):
            name = _string(node.slice)
            if name:
                found.add(name)
        # Defaults set through a dict then setdefault in a loop (training/environment.py).
        if isinstance(node, ast.Dict) and any(
            isinstance(key, ast.Constant) and str(key.value).startswith(("MLFLOW_", "PREFECT_"))
            for key in node.keys
        ):
            found.update(k for k in (_string(key) for key in node.keys) if k)
    return found


def variables_read(project: Path) -> set[str]:
    found: set[str] = set()
    for path in (project / "src" / PACKAGE).rglob("*.py"):
        tree = ast.parse(path.read_text())
        found |= _settings_variables(tree) | _read_variables(tree)
    return found


def documented(project: Path) -> dict[str, str]:
    """`# NAME=value` and `NAME=value` lines of .env.example."""
    pattern = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$")
    lines = (project / ".env.example").read_text().splitlines()
    return {m.group(1): m.group(2) for m in map(pattern.match, lines) if m}


@pytest.mark.parametrize("level", LEVELS_WITH_ENV)
def test_env_example_documents_every_variable_the_code_reads(render: Render, level: int) -> None:
    project = render(level=level)
    read = variables_read(project)
    assert "MLFLOW_TRACKING_URI" in read  # the scanner finds what it should
    missing = read - set(documented(project))
    assert not missing, f".env.example misses {sorted(missing)}"


@pytest.mark.parametrize("level", LEVELS_WITH_ENV)
def test_env_example_holds_no_secret_and_sets_nothing(render: Render, level: int) -> None:
    project = render(level=level)
    text = (project / ".env.example").read_text()
    # Every assignment is commented out: copying the file changes no default.
    assert not [line for line in text.splitlines() if re.match(r"^[A-Z_]+=", line)]
    secrets = {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AUTOMATION_ADMIN_TOKEN"}
    assert all(documented(project)[name] == "" for name in secrets & set(documented(project)))
    assert "/.env" in (project / ".gitignore").read_text().splitlines()
