"""Users' edits stay green: every value of the shipped configs changed to another valid one,
the configs still load and the project's own tests still pass (they test behaviour, not the
shipped values)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run

pytestmark = pytest.mark.slow

LEVEL = 4
CONFIGS = ("training.yaml", "monitoring.yaml", "retraining.yaml")

# Values a generic nudge would get wrong (a string has no "next" value; a null or an empty
# section is set to something sensible), by file and dotted path.
OVERRIDES: dict[str, dict[str, Any]] = {
    "training.yaml": {
        "data.source": "data/example/*.parquet",  # the same files, named by a glob
        "model.family": "random_forest",
        "search.metric": "mae",
        "search.space": {"max_depth": [4, 8], "min_samples_leaf": [2, 5]},
    },
    "monitoring.yaml": {
        "reports_dir": "reports/edited",
        "training_config": "./configs/training.yaml",
        "reference.source": "data/example/",
        "drift.categorical_method": "hellinger",
        "drift.numerical_method": "psi",
        "drift.prediction_method": "hellinger",
        "checks.metric": "mae",
        "checks.limit": 9.5,
        "promotion.metric": "mae",
        "promotion.confidence": 0.9,  # a probability: up by a tenth would pass 1
        "promotion.data": {"source": "data/example/", "start": "2024-02-01", "end": "2024-03-01"},
    },
    "retraining.yaml": {
        "training.config": "./configs/training.yaml",
        "training.data": {"source": "data/example/"},
        "training.overrides": ["search.budget=3"],
        "gate.confidence": 0.9,
        "monitoring.config": "./configs/monitoring.yaml",
        "schedules.timezone": "Europe/Paris",
        "schedules.monitoring": "*/20 * * * *",
        "schedules.retraining": "0 5 * * 1",
        "schedules.work_pool": "edited-pool",
    },
}


def nudged(value: Any, path: str) -> Any:
    """Another valid value of the same kind: numbers up by about a tenth (shares stay below
    their bound of 1), booleans flipped, dates of a window moved inwards by a day."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return round(value * 1.1, 6) if value else 0.1
    if isinstance(value, date):  # `start` moves later, `end` earlier: the window stays valid
        return value + timedelta(days=-1 if path.endswith("end") else 1)
    if value is None or value in ({}, []):
        return value  # left as shipped unless OVERRIDES sets it
    raise AssertionError(f"{path} = {value!r}: no generic edit; add one to OVERRIDES")


def edit(tree: Any, overrides: dict[str, Any], changed: list[str], path: str = "") -> Any:
    """``tree`` with every leaf edited; the dotted paths of the changed values go to
    ``changed``."""
    if path in overrides:
        changed.append(path)
        return overrides[path]
    if isinstance(tree, dict) and tree:
        return {
            key: edit(value, overrides, changed, f"{path}.{key}" if path else str(key))
            for key, value in tree.items()
        }
    if isinstance(tree, list) and tree:
        return [edit(value, overrides, changed, f"{path}.{i}") for i, value in enumerate(tree)]
    new = nudged(tree, path)
    if new != tree:
        changed.append(path)
    return new


LOAD_ALL = """
import json
from {package}.automation.policy import load_policy
from {package}.monitoring.config import load_config as load_monitoring
from {package}.training.config import load_config as load_training

configs = {{
    "training.yaml": load_training(),
    "monitoring.yaml": load_monitoring(),
    "retraining.yaml": load_policy(),
}}
print(json.dumps({{name: config.model_dump(mode="json") for name, config in configs.items()}}))
"""


def load_all(project: Path, package: str) -> dict[str, Any]:
    """Every config read by the project's own loaders (run in its venv), as JSON."""
    script = LOAD_ALL.format(package=package)
    out = run(["uv", "run", "--frozen", "python", "-c", script], project).stdout
    loaded: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return loaded


def test_every_config_value_edited_keeps_the_project_green(
    installed_copy: Callable[[int], Path],
) -> None:
    project = installed_copy(LEVEL)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    package = answers["package_name"]
    shipped = load_all(project, package)

    for name in CONFIGS:
        path = project / "configs" / name
        changed: list[str] = []
        edited = edit(yaml.safe_load(path.read_text()), OVERRIDES[name], changed)
        unused = set(OVERRIDES[name]) - set(changed)
        assert not unused, f"{name}: OVERRIDES name no key of the file: {sorted(unused)}"
        assert len(changed) >= 10, f"{name}: only {changed} changed"
        path.write_text(yaml.safe_dump(edited, sort_keys=False))

    loaded = load_all(project, package)  # each edited config still loads
    for name in CONFIGS:
        assert loaded[name] != shipped[name], f"{name}: the edits did not reach the loaded config"
    assert loaded["training.yaml"]["model"]["family"] == "random_forest"

    run(["make", "test"], project, timeout=3600)
