"""The template as a released product: licenses, version and changelog, CI matrix, releases."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.licenses import canonicalize_license_expression

from extensions import maturity
from tests.conftest import (
    ROOT,
    Installed,
    Render,
    git_commit_all,
    git_status,
    project_env,
    run,
)

from .transitions import PACKAGE, build_template_repo, conflict_leftovers, generate, update

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


def test_every_release_tag_has_its_changelog_entry() -> None:
    """Each `vX.Y.Z` tag of this repository (a clone has them; a copy without git has none)
    is a version the CHANGELOG describes, and no tag is newer than pyproject's version."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no tags to check")
    listed = subprocess.run(
        ["git", "tag", "--list", "v*"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    tags = [tag[1:] for tag in listed.stdout.split() if re.fullmatch(r"v\d+\.\d+\.\d+", tag)]
    headings = set(
        re.findall(r"^## \[(\d+\.\d+\.\d+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    )
    assert sorted(set(tags) - headings) == []
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    newest = max((tuple(map(int, tag.split("."))) for tag in tags), default=(0, 0, 0))
    assert newest <= tuple(map(int, version.split(".")))


def test_the_docs_say_how_to_move_to_a_template_version() -> None:
    docs = (ROOT / "docs" / "changing-level.md").read_text()
    assert "## Moving to a newer template version" in docs
    assert re.search(r"copier update --trust --defaults --vcs-ref v\d+\.\d+\.\d+", docs)


def test_template_ci_runs_every_offered_python() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "template.yml").read_text())
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]
    assert matrix == COPIER["python_version"]["choices"]


# ------------------------------------------------ releases: copy one, update to a newer one


def test_copying_a_release_renders_that_release_and_the_readme_command_the_head(
    tmp_path: Path,
) -> None:
    repo = build_template_repo(tmp_path / "template", tag="v0.1.0")
    readme = repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nAfter v0.1.0.\n")
    git_commit_all(repo, "after the release")
    # Copier's default is the newest tag; the README's command adds --vcs-ref HEAD.
    (quick,) = re.findall(r"copier copy (.*) --vcs-ref HEAD\n", (ROOT / "README.md").read_text())
    assert quick == '--trust --defaults "$PWD" ../my-ml-project'
    released = generate(repo, tmp_path / "released", level=1, vcs_ref=None)
    head = generate(repo, tmp_path / "head", level=1, vcs_ref="HEAD")
    assert yaml.safe_load((released / ".copier-answers.yml").read_text())["_commit"] == "v0.1.0"
    assert "After v0.1.0." not in (released / "README.md").read_text()
    assert "After v0.1.0." in (head / "README.md").read_text()


# What the next release changes in files the user also edits: the Makefile's help line
# (the user's edit of the same line conflicts) and a module's docstring (merges cleanly).
RELEASE_HELP = ("## List the targets", "## List every target")
USER_HELP = "## List the targets, then pick one"


def release_a_change(repo: Path) -> Path:
    """Commit, after the tag, what a next release changes; return the changed module."""
    makefile = repo / "template" / "Makefile.jinja"
    makefile.write_text(makefile.read_text().replace(*RELEASE_HELP))
    module = next((repo / "template" / "src").glob("*/features.py"))
    text = module.read_text()
    module.write_text(text.replace('"""', '"""Released later. ', 1))
    git_commit_all(repo, "the next release")
    return module


@pytest.mark.slow
@pytest.mark.parametrize("level", [1, 3])
def test_a_project_from_a_release_updates_to_the_next_keeping_the_users_edits(
    tmp_path: Path, installed: Installed, level: int
) -> None:
    installed(level)  # fills the uv cache this level installs from
    repo = build_template_repo(tmp_path / "template", tag="v0.1.0")
    project = generate(repo, tmp_path / "project", level=level, vcs_ref="v0.1.0")
    git_commit_all(project)
    # The user edits files the next release also changes.
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text().replace(RELEASE_HELP[0], USER_HELP))
    features = project / "src" / PACKAGE / "features.py"
    user_function = "\n\ndef user_feature_names() -> list[str]:\n    return ['user']\n"
    features.write_text(features.read_text() + user_function)
    git_commit_all(project, "user work")
    release_a_change(repo)

    update(project, vcs_ref="HEAD")

    # The clean merge keeps both sides; the same line edited twice is a marked conflict.
    merged = features.read_text()
    assert "Released later." in merged
    assert user_function in merged
    assert conflict_leftovers(project) == ["Makefile"]
    doctor = subprocess.run(
        [sys.executable, "scripts/doctor.py"],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
    )
    assert doctor.returncode == 1
    assert "conflict markers in Makefile" in doctor.stdout
    # The user resolves it (keeping their line), then installs (the project's own lock,
    # offline), and the project's tests pass.
    resolved = re.sub(
        "^<{7} .*?\n(.*?)^={7}\n.*?^>{7} .*?\n",
        r"\1",
        makefile.read_text(),
        flags=re.M | re.S,
    )
    makefile.write_text(resolved)
    assert USER_HELP in resolved
    assert conflict_leftovers(project) == []
    run(["git", "add", "Makefile"], project)  # as the doctor says
    run([sys.executable, "scripts/doctor.py"], project)
    run(["make", "install"], project, offline=True)
    if level == 1:
        run(["make", "test"], project)
    else:  # level 3's whole suite is minutes long: the tests of the module both sides changed
        run([".venv/bin/pytest", "-q", "tests/test_features.py"], project)
    git_commit_all(project, "Template update")
    assert git_status(project) == ""


# ------------------------------------------------ migrations: what a release moved, moved

# Level 4 used to set drift thresholds of its own under retraining.yaml's triggers (their last
# shape, before commit c0e47e2: the test's v0.1.0); a later version moved them to
# monitoring.yaml's drift section (feature_thresholds was new there).
OLD_TRIGGERS = """\
  drift_share: 0.5             # retrain when this share of the features drifted ...
  categorical_threshold: 0.15  # ... a feature drifts when its score exceeds its threshold:
  numeric_threshold: 0.2       #     Jensen-Shannon (categorical), normed Wasserstein (numeric)
  feature_thresholds: {}       # per-feature limits, e.g. {some_feature: 0.3}
"""


def configs_say(project: Path, values: str) -> str:
    """Install ``project`` offline, load its three configs with its own loaders (``policy``,
    ``monitoring``, ``training``), and return what printing ``values`` of them gives."""
    run(["make", "install"], project, offline=True)
    script = (
        f"from {PACKAGE}.automation.policy import load_policy\n"
        f"from {PACKAGE}.monitoring.config import load_config\n"
        f"from {PACKAGE}.training.config import load_config as load_training\n"
        "policy, monitoring, training = load_policy(), load_config(), load_training()\n"
        f"print({values})"
    )
    return run([".venv/bin/python", "-c", script], project).stdout


def tag_the_release_before_the_move(repo: Path) -> dict[Path, str]:
    """Tag v0.1.0 with the config shape before the move; return the files as they are now."""
    configs = repo / "template" / "configs"
    retraining, monitoring = configs / "retraining.yaml.jinja", configs / "monitoring.yaml"
    newer = {path: path.read_text() for path in (retraining, monitoring)}
    old, moved = re.subn(
        r"^  drift_share:.*?(?=^  metric:)", OLD_TRIGGERS, newer[retraining], flags=re.M | re.S
    )
    retraining.write_text(old)
    old_monitoring, added = re.subn(
        r"^  feature_thresholds:.*\n", "", newer[monitoring], flags=re.M
    )
    monitoring.write_text(old_monitoring)
    assert (moved, added) == (1, 1), "the test's picture of the old shape no longer fits"
    git_commit_all(repo, "0.1.0")
    run(["git", "tag", "v0.1.0"], repo)
    return newer


@pytest.mark.slow
def test_an_update_moves_the_drift_settings_a_release_moved(
    tmp_path: Path, installed: Installed
) -> None:
    installed(4)  # fills the uv cache this level installs from
    repo = build_template_repo(tmp_path / "template", tag=None)
    newer = tag_the_release_before_the_move(repo)
    project = generate(repo, tmp_path / "project", level=4, vcs_ref="v0.1.0")
    git_commit_all(project)
    retraining = project / "configs" / "retraining.yaml"
    old = retraining.read_text()
    assert "  numeric_threshold: 0.2 " in old  # the old shape, as the old version shipped it
    user = old.replace("  numeric_threshold: 0.2 ", "  numeric_threshold: 0.3 ")
    user = user.replace("feature_thresholds: {}      ", "feature_thresholds: {trip_distance: 0.4}")
    user = user.replace("  min_labelled_rows: 100 ", "  min_labelled_rows: 50  ")
    retraining.write_text(user)
    git_commit_all(project, "user work")
    for path, text in newer.items():
        path.write_text(text)
    git_commit_all(repo, "0.2.0")
    run(["git", "tag", "v0.2.0"], repo)

    update(project, vcs_ref="v0.2.0")

    assert conflict_leftovers(project) == []
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v0.2.0"
    triggers = yaml.safe_load(retraining.read_text())["triggers"]
    assert not set(triggers) & {"categorical_threshold", "numeric_threshold", "feature_thresholds"}
    assert triggers["min_labelled_rows"] == 50  # the user's other edit stays
    monitoring = (project / "configs" / "monitoring.yaml").read_text()
    drift = yaml.safe_load(monitoring)["drift"]
    assert drift["numerical_threshold"] == 0.3  # the user's values, in their new place
    assert drift["feature_thresholds"] == {"trip_distance": 0.4}
    assert drift["categorical_threshold"] == 0.1  # left as shipped: the shared verdict's
    assert "  share: 0.5           # the data drifts when" in monitoring  # comments kept
    loaded = configs_say(project, "monitoring.drift.numerical_threshold")
    assert loaded.strip() == "0.3"
    run([sys.executable, "scripts/doctor.py"], project)
    git_commit_all(project, "Template update")
    assert git_status(project) == ""


RELEASE_0_1_0 = ROOT / "tests" / "data" / "release-0.1.0"  # its configs, as tag v0.1.0 has them
# A user's edits of 0.1.0's configs: each key the next releases renamed, moved or removed, and
# one key they kept (schedules.monitoring; an edit next to a line the release changed, such as
# cooldown_days below min_labelled_rows, is a merge conflict of its own).
EDITS_0_1_0 = {
    "monitoring.yaml": [
        ('  months: ["2024-01"]  #', '  months: ["2023-12"]  #'),
        ("  min_rows: 100 ", "  min_rows: 200 "),
        ("  max_rmse: 10.0 ", "  max_rmse: 8.0  "),
    ],
    "retraining.yaml": [
        ("    trip_distance: 0.2 ", "    trip_distance: 0.3 "),
        ("  rmse_degradation: 0.15 ", "  rmse_degradation: 0.25 "),
        ("  window_months: 1 ", "  window_months: 2 "),
        ("  prediction_range: [-5.0, 240.0]", "  prediction_range: [-1.0, 120.0]"),
        ("  latency_budget_ms: 25.0 ", "  latency_budget_ms: 40.0 "),
        ('  monitoring: "0 * * * *" ', '  monitoring: "5 * * * *" '),
    ],
    "training.yaml": [
        ('  train_months: ["2024-01"]  ', '  train_months: ["2023-12"]  '),
        ("  synthetic_rows: 100000 ", "  synthetic_rows: 5000   "),
    ],
}


def test_the_release_0_1_0_configs_are_the_tags() -> None:
    if subprocess.run(["git", "rev-parse", "v0.1.0"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("no tag v0.1.0 here (a copy without git, or a clone without tags)")
    for path in RELEASE_0_1_0.iterdir():
        shown = subprocess.run(
            ["git", "show", f"v0.1.0:template/configs/{path.name}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert path.read_text() == shown.stdout, path.name


@pytest.mark.slow
def test_an_update_from_0_1_0_carries_or_names_every_changed_setting(
    tmp_path: Path, installed: Installed, capfd: pytest.CaptureFixture[str]
) -> None:
    """A level-4 project of 0.1.0's configs, edited where later releases renamed, moved or
    removed keys, updates without a conflict; its values land in their new keys."""
    installed(4)  # fills the uv cache this level installs from
    repo = build_template_repo(tmp_path / "template", tag=None)
    configs = repo / "template" / "configs"
    newer = {path: path.read_text() for path in configs.iterdir()}
    (configs / "retraining.yaml.jinja").unlink()
    for path in RELEASE_0_1_0.iterdir():
        (configs / path.name).write_text(path.read_text())
    git_commit_all(repo, "0.1.0")
    run(["git", "tag", "v0.1.0"], repo)
    project = generate(repo, tmp_path / "project", level=4, vcs_ref="v0.1.0")
    git_commit_all(project)
    for name, edits in EDITS_0_1_0.items():
        path = project / "configs" / name
        text = path.read_text()
        for old, new in edits:
            assert text.count(old) == 1, (name, old)  # the test's picture of 0.1.0 fits
            text = text.replace(old, new)
        path.write_text(text)
    git_commit_all(project, "user work")
    (configs / "retraining.yaml").unlink()
    for path, text in newer.items():
        path.write_text(text)
    git_commit_all(repo, "0.2.0")
    run(["git", "tag", "v0.2.0"], repo)
    capfd.readouterr()

    update(project, vcs_ref="v0.2.0")

    said = capfd.readouterr().err
    assert conflict_leftovers(project) == []
    read = {name: yaml.safe_load((project / "configs" / name).read_text()) for name in EDITS_0_1_0}
    monitoring, retraining = read["monitoring.yaml"], read["retraining.yaml"]
    assert monitoring["checks"]["limit"] == 8.0  # max_rmse, renamed
    assert monitoring["drift"]["min_rows"] == 200  # checks.min_rows, moved
    assert monitoring["drift"]["feature_thresholds"] == {
        "PULocationID": 0.15,
        "DOLocationID": 0.15,
        "trip_distance": 0.3,
    }
    assert retraining["triggers"]["degradation"] == 0.25  # rmse_degradation, renamed
    assert retraining["schedules"]["monitoring"] == "5 * * * *"  # the user's kept key stays
    assert retraining["gate"]["prediction_range"] == [-1.0, 120.0]  # no longer shipped, kept
    for removed, value in [
        ("reference.months", "[2023-12]"),
        ("training.window_months", "2"),
        ("gate.latency_budget_ms", "40.0"),
        ("data.train_months", "[2023-12]"),
        ("data.synthetic_rows", "5000"),
    ]:
        assert f"{removed} was removed (yours was {value}); see " in said
    loaded = configs_say(
        project,
        "policy.triggers.degradation, policy.gate.prediction_range,"
        " monitoring.checks.limit, monitoring.drift.min_rows",
    )
    assert loaded.split() == ["0.25", "(-1.0,", "120.0)", "8.0", "200"]
    run(["make", "doctor"], project)
    git_commit_all(project, "Template update")
    assert git_status(project) == ""


# ------------------------------------------------ the generated projects' template-update workflow

UPDATE_WORKFLOW = ".github/workflows/template-update.yml"


def workflow_step(workflow: dict[str, object], name: str) -> dict[str, str]:
    (job,) = workflow["jobs"].values()  # type: ignore[attr-defined]
    (step,) = [step for step in job["steps"] if step.get("name") == name]
    return step  # type: ignore[no-any-return]


@pytest.mark.parametrize("level", [n for n in maturity.LEVEL_NUMBERS if n >= 1])
def test_projects_propose_the_templates_newest_release_weekly(render: Render, level: int) -> None:
    workflow = yaml.safe_load((render(level=level) / UPDATE_WORKFLOW).read_text())
    assert workflow[True]["schedule"][0]["cron"]  # yaml reads the `on:` key as True
    update = workflow_step(workflow, "Update to it")["run"]
    assert f"{maturity.UPDATE_COMMAND} --vcs-ref " in update  # the README's command
    assert workflow_step(workflow, "Relock and install")["run"] == "make lock install"
    assert workflow_step(workflow, "Tests")["run"] == "make test"
    (job,) = workflow["jobs"].values()
    actions = [step.get("uses", "") for step in job["steps"]]
    assert any(action.startswith("peter-evans/create-pull-request@") for action in actions)


def test_level_0_has_no_update_workflow(render: Render) -> None:
    assert not (render(level=0) / UPDATE_WORKFLOW).exists()


def test_the_workflow_finds_the_newest_release_the_project_lacks(tmp_path: Path) -> None:
    """Its release step, run as written, against a template repository with two tags."""
    repo = build_template_repo(tmp_path / "template", tag="v0.1.0")
    project = generate(repo, tmp_path / "project", level=1, vcs_ref="v0.1.0")
    git_commit_all(project)
    workflow = yaml.safe_load((project / UPDATE_WORKFLOW).read_text())
    script = workflow_step(workflow, "Find the template's newest release")["run"]

    def newest() -> str:
        output, summary = tmp_path / "output", tmp_path / "summary"
        output.write_text("")
        env = {**project_env(), "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
        env["TEMPLATE_URL"] = ""
        subprocess.run(["bash", "-e", "-c", script], cwd=project, env=env, check=True)
        return output.read_text()

    assert newest() == ""  # generated from the newest release
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "next"], cwd=repo, check=True)
    for tag in ("v0.2.0", "v0.10.0"):
        subprocess.run(["git", "tag", tag], cwd=repo, check=True)
    assert newest() == "version=v0.10.0\n"  # versions sort as versions, not text
