"""Copier migrations (copier.yml `_migrations`): what a release moved, moved in the project.

The update itself, from a release with the old keys to one without, is tested in
test_release.py; here the migration's YAML editing, on text.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from extensions import drift_settings
from tests.conftest import ROOT, git_commit_all

MONITORING = (ROOT / "template" / "configs" / "monitoring.yaml").read_text()
# retraining.yaml's triggers as versions before the move wrote them, with a user's values.
OLD_TRIGGERS = """\
# Retraining policy (level 4)
triggers:
  drift_share: 0.5             # retrain when this share of the features drifted ...
  categorical_threshold: 0.15  # ... a feature drifts when its score exceeds its threshold:
  numeric_threshold: 0.3       #     Jensen-Shannon (categorical), normed Wasserstein (numeric)
  feature_thresholds:          # per-feature limits
    trip_distance: 0.4
    # the user's note on pickup_hour
    pickup_hour: 0.25

  metric: null                 # ... or when this metric
gate:
  margin: 0.02
"""
SHIPPED_TRIGGERS = OLD_TRIGGERS.replace("0.3 ", "0.2 ").replace(
    "feature_thresholds:          # per-feature limits\n    trip_distance: 0.4\n"
    "    # the user's note on pickup_hour\n    pickup_hour: 0.25\n",
    "feature_thresholds: {}       # per-feature limits\n",
)


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    pairs = zip(before.splitlines(), after.splitlines(), strict=True)
    return [(old, new) for old, new in pairs if old != new]


def test_a_value_replaces_the_keys_own_line_and_keeps_its_comment() -> None:
    edited = drift_settings.set_key(MONITORING, "drift", "numerical_threshold", 0.3)
    assert changed_lines(MONITORING, edited) == [
        ("  numerical_threshold: 0.1", "  numerical_threshold: 0.3")
    ]
    edited = drift_settings.set_key(MONITORING, "drift", "prediction_threshold", 0.25)
    ((old, new),) = changed_lines(MONITORING, edited)
    assert new.startswith("  prediction_threshold: 0.25 ")
    assert new.index("#") == old.index("#")  # the comment stays in its column...
    edited = drift_settings.set_key(MONITORING, "drift", "feature_thresholds", {"a": 0.4})
    ((old, new),) = changed_lines(MONITORING, edited)
    # ... or two spaces after a longer value
    assert new.startswith("  feature_thresholds: {a: 0.4}  # a feature's own threshold")


def test_a_key_the_section_lacks_is_added_at_its_end() -> None:
    without = MONITORING.replace("  feature_thresholds: {}", "  # feature_thresholds: {}")
    edited = drift_settings.set_key(without, "drift", "feature_thresholds", {"a": 0.4})
    assert yaml.safe_load(edited)["drift"]["feature_thresholds"] == {"a": 0.4}
    lines = edited.splitlines()
    added = lines.index("  feature_thresholds: {a: 0.4}")
    assert lines[added - 1].lstrip().startswith("sample_rows:")  # the drift section's last
    assert [line for line in lines if line != lines[added]] == without.splitlines()


def test_a_block_value_becomes_one_line_and_its_neighbours_stay() -> None:
    edited = drift_settings.set_key(OLD_TRIGGERS, "triggers", "feature_thresholds", {"x": 1.0})
    triggers = yaml.safe_load(edited)["triggers"]
    assert triggers["feature_thresholds"] == {"x": 1.0}
    assert "  metric: null                 # ... or when this metric\n" in edited
    assert "\n\n  metric" in edited  # the blank line before the next key is kept


def test_an_edit_that_would_not_read_back_is_refused() -> None:
    with pytest.raises(ValueError, match="not a section"):
        drift_settings.set_key("window:\n  hours: 24\n", "drift", "numerical_threshold", 0.3)


def test_old_keys_take_the_old_releases_lines_or_go() -> None:
    moved = list(drift_settings.MOVED)
    as_shipped = drift_settings.drop_keys(OLD_TRIGGERS, "triggers", moved, SHIPPED_TRIGGERS)
    assert as_shipped == SHIPPED_TRIGGERS  # the update's merge then drops them cleanly
    removed = drift_settings.drop_keys(OLD_TRIGGERS, "triggers", moved, None)
    assert yaml.safe_load(removed) == {
        "triggers": {"drift_share": 0.5, "metric": None},
        "gate": {"margin": 0.02},
    }
    assert "# Retraining policy (level 4)\n" in removed
    assert drift_settings.drop_keys(removed, "triggers", moved, None) == removed  # idempotent


def test_old_settings_are_read_only_from_the_old_shape() -> None:
    assert drift_settings.old_settings(OLD_TRIGGERS) == {
        "categorical_threshold": 0.15,
        "numeric_threshold": 0.3,
        "feature_thresholds": {"trip_distance": 0.4, "pickup_hour": 0.25},
    }
    current = (ROOT / "template" / "configs" / "retraining.yaml.jinja").read_text()
    assert drift_settings.old_settings(current) == {}
    assert drift_settings.old_settings("triggers: [") == {}


def migrate(project: Path, stage: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / "extensions" / "drift_settings.py"
    return subprocess.run(
        ["python3", str(script), stage, f"--template={ROOT}"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )


def status(project: Path) -> list[str]:
    out = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True)
    return out.stdout.decode().splitlines()


def test_after_the_update_the_values_land_once(tmp_path: Path) -> None:
    """The `after` stage, as copier runs it, with the values `before` recorded; run twice."""
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / ".copier-answers.yml").write_text("level: 4\n")
    (project / "configs" / "monitoring.yaml").write_text(MONITORING)
    git_commit_all(project)
    moves = {"numerical_threshold": 0.3, "feature_thresholds": {"trip_distance": 0.4}}
    plan = project / ".git" / drift_settings.PLAN
    plan.write_text(json.dumps({"moves": moves, "from": {}}))
    # `before` staged its edit of retraining.yaml; the update (to level 3) removed the file.
    retraining = project / "configs" / "retraining.yaml"
    retraining.write_text("triggers: {}\n")
    subprocess.run(["git", "add", str(retraining)], cwd=project, check=True)
    retraining.unlink()

    first = migrate(project, "after")

    drift = yaml.safe_load((project / "configs" / "monitoring.yaml").read_text())["drift"]
    assert {key: drift[key] for key in moves} == moves
    assert "numerical_threshold: 0.3 is now in configs/monitoring.yaml (it was 0.1)" in first.stderr
    assert not plan.exists()
    assert status(project) == [" M configs/monitoring.yaml"]  # nothing left staged
    edited = (project / "configs" / "monitoring.yaml").read_text()
    assert migrate(project, "after").stderr == ""
    assert (project / "configs" / "monitoring.yaml").read_text() == edited


def test_without_the_old_keys_nothing_happens(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / ".copier-answers.yml").write_text("level: 4\n")
    retraining = (ROOT / "template" / "configs" / "retraining.yaml.jinja").read_text()
    (project / "configs" / "retraining.yaml").write_text(retraining)
    git_commit_all(project)
    for stage in ("before", "after"):
        assert migrate(project, stage).stderr == ""
    assert status(project) == []
    assert not (project / ".git" / drift_settings.PLAN).exists()
