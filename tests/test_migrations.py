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

from extensions import moved_settings
from tests.conftest import ROOT, Render, git_commit_all

MONITORING = (ROOT / "template" / "configs" / "monitoring.yaml").read_text()
RETRAINING, MONITORING_FILE = moved_settings.RETRAINING, moved_settings.MONITORING
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
    edited = moved_settings.set_key(MONITORING, "drift", "numerical_threshold", 0.3)
    assert changed_lines(MONITORING, edited) == [
        ("  numerical_threshold: 0.1", "  numerical_threshold: 0.3")
    ]
    edited = moved_settings.set_key(MONITORING, "drift", "prediction_threshold", 0.25)
    ((old, new),) = changed_lines(MONITORING, edited)
    assert new.startswith("  prediction_threshold: 0.25 ")
    assert new.index("#") == old.index("#")  # the comment stays in its column...
    edited = moved_settings.set_key(MONITORING, "drift", "feature_thresholds", {"a": 0.4})
    ((old, new),) = changed_lines(MONITORING, edited)
    # ... or two spaces after a longer value
    assert new.startswith("  feature_thresholds: {a: 0.4}  # a feature's own threshold")


def test_a_key_the_section_lacks_is_added_at_its_end() -> None:
    without = MONITORING.replace("  feature_thresholds: {}", "  # feature_thresholds: {}")
    edited = moved_settings.set_key(without, "drift", "feature_thresholds", {"a": 0.4})
    assert yaml.safe_load(edited)["drift"]["feature_thresholds"] == {"a": 0.4}
    lines = edited.splitlines()
    added = lines.index("  feature_thresholds: {a: 0.4}")
    assert lines[added - 1].lstrip().startswith("sample_rows:")  # the drift section's last
    assert [line for line in lines if line != lines[added]] == without.splitlines()


def test_a_block_value_becomes_one_line_and_its_neighbours_stay() -> None:
    edited = moved_settings.set_key(OLD_TRIGGERS, "triggers", "feature_thresholds", {"x": 1.0})
    triggers = yaml.safe_load(edited)["triggers"]
    assert triggers["feature_thresholds"] == {"x": 1.0}
    assert "  metric: null                 # ... or when this metric\n" in edited
    assert "\n\n  metric" in edited  # the blank line before the next key is kept


def test_an_edit_that_would_not_read_back_is_refused() -> None:
    with pytest.raises(ValueError, match="not a section"):
        moved_settings.set_key("window:\n  hours: 24\n", "drift", "numerical_threshold", 0.3)


def test_old_keys_take_the_old_releases_lines_or_go() -> None:
    moved = ["categorical_threshold", "numeric_threshold", "feature_thresholds"]
    as_shipped = moved_settings.drop_keys(OLD_TRIGGERS, "triggers", moved, SHIPPED_TRIGGERS)
    assert as_shipped == SHIPPED_TRIGGERS  # the update's merge then drops them cleanly
    removed = moved_settings.drop_keys(OLD_TRIGGERS, "triggers", moved, None)
    assert yaml.safe_load(removed) == {
        "triggers": {"drift_share": 0.5, "metric": None},
        "gate": {"margin": 0.02},
    }
    assert "# Retraining policy (level 4)\n" in removed
    assert moved_settings.drop_keys(removed, "triggers", moved, None) == removed  # idempotent


def test_old_settings_are_read_only_from_the_old_shape() -> None:
    found = moved_settings.old_settings(OLD_TRIGGERS, RETRAINING)
    assert {setting.name: value for setting, value in found.items()} == {
        "triggers.categorical_threshold": 0.15,
        "triggers.numeric_threshold": 0.3,
        "triggers.feature_thresholds": {"trip_distance": 0.4, "pickup_hour": 0.25},
    }
    current = (ROOT / "template" / "configs" / "retraining.yaml.jinja").read_text()
    assert moved_settings.old_settings(current, RETRAINING) == {}
    assert moved_settings.old_settings("triggers: [", RETRAINING) == {}
    assert moved_settings.old_settings(OLD_TRIGGERS, MONITORING_FILE) == {}  # another file's


def migrate(project: Path, stage: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / "extensions" / "moved_settings.py"
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
    plan = project / ".git" / moved_settings.PLAN
    changed = [
        [RETRAINING, "triggers", "numeric_threshold", 0.3],
        [RETRAINING, "triggers", "feature_thresholds", {"trip_distance": 0.4}],
    ]
    plan.write_text(json.dumps({"changed": changed, "staged": [RETRAINING]}))
    # `before` staged its edit of retraining.yaml; the update (to level 3) removed the file.
    retraining = project / "configs" / "retraining.yaml"
    retraining.write_text("triggers: {}\n")
    subprocess.run(["git", "add", str(retraining)], cwd=project, check=True)
    retraining.unlink()

    first = migrate(project, "after")

    drift = yaml.safe_load((project / "configs" / "monitoring.yaml").read_text())["drift"]
    assert {key: drift[key] for key in moves} == moves
    assert (
        "your configs/retraining.yaml triggers.numeric_threshold: 0.3 is now "
        "drift.numerical_threshold in configs/monitoring.yaml (it was 0.1)"
    ) in first.stderr
    assert not plan.exists()
    assert status(project) == [" M configs/monitoring.yaml"]  # nothing left staged
    edited = (project / "configs" / "monitoring.yaml").read_text()
    assert migrate(project, "after").stderr == ""
    assert (project / "configs" / "monitoring.yaml").read_text() == edited


def test_without_the_old_keys_nothing_happens(tmp_path: Path, render: Render) -> None:
    project = tmp_path / "project"
    (project / ".copier-answers.yml").parent.mkdir(parents=True)
    (project / ".copier-answers.yml").write_text("level: 4\n")
    current = render(level=4) / "configs"
    (project / "configs").mkdir()
    for name in ("training.yaml", "monitoring.yaml", "retraining.yaml"):
        (project / "configs" / name).write_text((current / name).read_text())
    git_commit_all(project)
    for stage in ("before", "after"):
        assert migrate(project, stage).stderr == ""
    assert status(project) == []
    assert not (project / ".git" / moved_settings.PLAN).exists()


def test_old_keys_are_gone_from_the_release_and_new_ones_are_in_it(render: Render) -> None:
    """Each old key of the table is one the current configs lack; its new key one they set
    (a key kept in place but no longer shipped excepted)."""
    configs = render(level=4)
    current = {
        file: yaml.safe_load((configs / file).read_text())
        for file in dict.fromkeys(setting.file for setting in moved_settings.SETTINGS)
    }
    for setting in moved_settings.SETTINGS:
        assert setting.key not in current[setting.file][setting.section], setting
        assert (setting.to is None) == bool(setting.see), setting  # carried, or replaced
        if setting.to is not None and moved_settings.moves_away(setting):
            file, section, key = setting.to
            assert key in current[file][section], setting


def test_changed_values_land_in_their_new_keys_and_removed_ones_are_named(
    tmp_path: Path, render: Render
) -> None:
    """The `after` stage with 0.1.0's renamed, moved and removed keys `before` recorded."""
    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / ".copier-answers.yml").write_text("level: 4\n")
    current = render(level=4) / "configs"
    for name in ("training.yaml", "monitoring.yaml", "retraining.yaml"):
        (project / "configs" / name).write_text((current / name).read_text())
    # An old key the update's merge kept (a conflict the user resolved by keeping both sides).
    monitoring = project / "configs" / "monitoring.yaml"
    shipped_monitoring = monitoring.read_text()
    monitoring.write_text(shipped_monitoring.replace("checks:\n", "checks:\n  max_rmse: 8.0\n"))
    git_commit_all(project)
    shipped = {path.name: path.read_text() for path in (project / "configs").iterdir()}
    changed = [
        [MONITORING_FILE, "checks", "max_rmse", 8.0],
        [MONITORING_FILE, "checks", "min_rows", 200],
        [RETRAINING, "triggers", "rmse_degradation", 0.25],
        [RETRAINING, "gate", "prediction_range", [-1.0, 120.0]],
        [RETRAINING, "training", "window_months", 2],
        [RETRAINING, "gate", "latency_budget_ms", 40.0],
        [MONITORING_FILE, "reference", "months", ["2024-01", "2024-02"]],
        ["configs/training.yaml", "data", "dir", "/mnt/trips"],
    ]
    plan = project / ".git" / moved_settings.PLAN
    plan.write_text(json.dumps({"changed": changed, "staged": []}))

    said = migrate(project, "after").stderr.splitlines()

    new = {name: yaml.safe_load((project / "configs" / name).read_text()) for name in shipped}
    assert new["monitoring.yaml"]["checks"]["limit"] == 8.0
    assert "max_rmse" not in new["monitoring.yaml"]["checks"]  # the kept old key is gone
    assert new["monitoring.yaml"]["drift"]["min_rows"] == 200
    assert new["retraining.yaml"]["triggers"]["degradation"] == 0.25
    assert new["retraining.yaml"]["gate"]["prediction_range"] == [-1.0, 120.0]
    removed = [line for line in said if " was removed " in line]
    assert removed == [
        "[moved settings] configs/retraining.yaml: training.window_months was removed (yours "
        "was 2); see training.window_days (the latest N days of the source's rows before the "
        "gate's; null: all of them)",
        "[moved settings] configs/retraining.yaml: gate.latency_budget_ms was removed (yours "
        "was 40.0); see gate.max_latency_ratio (the challenger's p95 latency over the "
        "champion's, measured in the same run)",
        "[moved settings] configs/monitoring.yaml: reference.months was removed (yours was "
        "[2024-01, 2024-02]); see reference.start and reference.end (null: the training "
        "window)",
        "[moved settings] configs/training.yaml: data.dir was removed (yours was /mnt/trips); "
        "see data.source (a file, folder or glob of your data)",
    ]
    assert len(said) == len(changed)  # one line each
    assert "checks.max_rmse: 8.0 is now checks.limit in configs/monitoring.yaml" in said[0]
    # Only the carried keys' lines changed (prediction_range, not shipped, was added).
    assert len(changed_lines(shipped_monitoring, monitoring.read_text())) == 2
    retraining = (project / "configs" / "retraining.yaml").read_text()
    assert len(retraining.splitlines()) == len(shipped["retraining.yaml"].splitlines()) + 1
    assert (project / "configs" / "training.yaml").read_text() == shipped["training.yaml"]
    assert not plan.exists()
    edited = {path.name: path.read_text() for path in (project / "configs").iterdir()}
    assert migrate(project, "after").stderr == ""  # run again: nothing more
    assert {path.name: path.read_text() for path in (project / "configs").iterdir()} == edited
