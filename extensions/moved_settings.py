"""Migration: what a release renamed, moved or removed in configs/, done in the project.

Since release 0.1.0, keys of configs/training.yaml, monitoring.yaml and retraining.yaml were
renamed, moved or removed, and the project's loaders refuse the old keys with an error naming
the new place. `SETTINGS` lists each old key (`file`, `section`, `key`) and either where its
value now goes (same meaning: carried over) or what replaced it (a removal or a changed
meaning: dropped, and the output names the value and the setting to look at instead). Copier
runs this file as two migrations (copier.yml `_migrations`, needs `--trust`), with copier's own
Python, in the project being updated:

- `before` (nothing changed yet): each old key whose value you changed is remembered (in the
  project's git directory), and every old key's lines are put back as the old release wrote
  them (staged: copier merges the index), so the update's merge drops them without a conflict.
- `after` (the update is done): each remembered value of a moved key is written where the new
  release reads it, on its key's line (the line's comment kept; a key the section lacks is added
  at its end); each removed key gets one line naming your value and its replacement. Old keys
  the merge left behind are removed.

Values still as the old release shipped them are not carried over: the new release's defaults
apply, as the CHANGELOG says. YAML is edited line by line, so every other line, comment and
value stays as you wrote it; an edit that would not read back as intended is not written, and
the output says what to set by hand. Idempotent: without the old keys, or run again, it
changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import yaml  # copier's own dependency: always importable where copier runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guard  # the level guard beside this file: git helpers and the old release's rendering

TRAINING = "configs/training.yaml"
RETRAINING = "configs/retraining.yaml"
MONITORING = "configs/monitoring.yaml"


class Setting(NamedTuple):
    """An old key: where its value now goes (`to`), or what replaced it (`see`)."""

    file: str
    section: str
    key: str
    to: tuple[str, str, str] | None = None  # (file, section, key)
    see: str = ""

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"


def _drift(old: str, new: str) -> Setting:
    """Level 4's own drift thresholds: one verdict of level 3's at both levels now."""
    return Setting(RETRAINING, "triggers", old, (MONITORING, "drift", new))


_FALSE_ALARM = "checks.false_alarm_rate (each version is held to its own validation score)"
SETTINGS = [
    _drift("categorical_threshold", "categorical_threshold"),
    _drift("numeric_threshold", "numerical_threshold"),
    _drift("feature_thresholds", "feature_thresholds"),
    Setting(RETRAINING, "triggers", "rmse_degradation", (RETRAINING, "triggers", "degradation")),
    # Still read, no longer shipped (gate.prediction_slack derives the range from the target).
    Setting(RETRAINING, "gate", "prediction_range", (RETRAINING, "gate", "prediction_range")),
    Setting(
        RETRAINING,
        "gate",
        "latency_budget_ms",
        see="gate.max_latency_ratio (the challenger's p95 latency over the champion's, "
        "measured in the same run)",
    ),
    Setting(
        RETRAINING,
        "training",
        "window_months",
        see="training.window_days (the latest N days of the source's rows before the gate's; "
        "null: all of them)",
    ),
    Setting(MONITORING, "checks", "min_rows", (MONITORING, "drift", "min_rows")),
    Setting(MONITORING, "checks", "max_rmse", (MONITORING, "checks", "limit")),
    Setting(MONITORING, "checks", "max_rmse_share", see=_FALSE_ALARM),
    Setting(MONITORING, "checks", "limit_share", see=_FALSE_ALARM),
    Setting(
        MONITORING,
        "reference",
        "data_dir",
        see="reference.source (a file, folder or glob; null: the training data's source)",
    ),
    Setting(
        MONITORING,
        "reference",
        "months",
        see="reference.start and reference.end (null: the training window)",
    ),
    Setting(TRAINING, "data", "dir", see="data.source (a file, folder or glob of your data)"),
    Setting(
        TRAINING,
        "data",
        "train_months",
        see="data.train (a window by event time: {start: 2024-01-01, end: 2024-02-01}, "
        "or {days: 28})",
    ),
    Setting(
        TRAINING,
        "data",
        "validation_month",
        see="data.validation (a window, e.g. {days: 7}; null: the latest "
        "data.validation_fraction of the rows)",
    ),
    Setting(
        TRAINING,
        "data",
        "synthetic_rows",
        see="`make data` (it writes the example's generated months to data/example/)",
    ),
]
BY_PLACE = {(setting.file, setting.section, setting.key): setting for setting in SETTINGS}
PLAN = "mlops-template-moved-settings.json"  # in the project's git directory
MISSING = object()


def say(message: str) -> None:
    print(f"[moved settings] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------- line-level YAML editing


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def key_span(lines: list[str], section: str, key: str) -> tuple[int, int] | None:
    """Lines [start, end) of `key` in the top-level mapping `section`: its line and the
    lines indented deeper (a block value, continued comments), or None."""
    header = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    child_indent = None
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if _is_content(line) and _indent(line) == 0:
            return None  # the section ended without the key
        if not _is_content(line):
            continue
        child_indent = child_indent or _indent(line)
        if _indent(line) == child_indent and re.match(rf"{re.escape(key)}:(\s|$)", line.lstrip()):
            end = i + 1
            while end < len(lines) and (
                not lines[end].strip() or _indent(lines[end]) > child_indent
            ):
                end += 1
            while end > i + 1 and not lines[end - 1].strip():
                end -= 1  # trailing blank lines belong to the section, not the key
            return i, end
    return None


def section_end(lines: list[str], section: str) -> tuple[int, int] | None:
    """Where a new key goes in `section` (after its last line) and the children's indent."""
    header = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    last, child_indent = start, 0
    for i in range(start + 1, len(lines)):
        if _is_content(lines[i]) and _indent(lines[i]) == 0:
            break
        if lines[i].strip():
            last = i
            if _is_content(lines[i]):
                child_indent = child_indent or _indent(lines[i])
    return last + 1, child_indent or 2


def flow(value: Any) -> str:
    """`value` as one line of YAML (a mapping in flow style)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def set_key(text: str, section: str, key: str, value: Any) -> str:
    """`text` with `section.key` set to `value` on one line, every other line unchanged."""
    lines = text.splitlines(keepends=True)
    span = key_span(lines, section, key)
    if span is not None:
        start, end = span
        first = lines[start].rstrip("\n")
        head, _, rest = first.partition(":")
        comment = re.search(r"\s+#.*$", rest) if end == start + 1 else None
        new = f"{head}: {flow(value)}"
        if comment:
            column = len(first) - len(comment.group(0).lstrip())  # where its `#` was
            new = new.ljust(max(column, len(new) + 2)) + comment.group(0).lstrip()
        lines[start:end] = [new + "\n"]
    else:
        place = section_end(lines, section)
        if place is None:
            raise ValueError(f"{section}: is not a section of the file")
        at, indent = place
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines.insert(at, f"{' ' * indent}{key}: {flow(value)}\n")
    edited = "".join(lines)
    _check(text, edited, section, key, value)
    return edited


def drop_keys(text: str, section: str, keys: list[str], base: str | None) -> str:
    """`text` with each of `keys` of `section` as `base` writes it (absent from `base`: removed)."""
    lines = text.splitlines(keepends=True)
    base_lines = base.splitlines(keepends=True) if base is not None else []
    for key in keys:
        span = key_span(lines, section, key)
        if span is None:
            continue
        base_span = key_span(base_lines, section, key)
        lines[span[0] : span[1]] = base_lines[slice(*base_span)] if base_span else []
    edited = "".join(lines)
    before, after = _sections(text), _sections(edited)
    old, new = before.get(section) or {}, after.get(section) or {}
    if any(new.get(k, MISSING) != v for k, v in old.items() if k not in keys):
        raise ValueError(f"removing {', '.join(keys)} would change other keys of {section}:")
    return edited


def _sections(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError("the file is not a YAML mapping")
    return data


def _check(original: str, edited: str, section: str, key: str, value: Any) -> None:
    """Refuse an edit that changes anything but `section.key`, or not to `value`."""
    before, after = _sections(original), _sections(edited)
    if (after.get(section) or {}).get(key, MISSING) != value:
        raise ValueError(f"{section}.{key} would not read back as {flow(value)}")
    before_section = dict(before.get(section) or {})
    after_section = dict(after.get(section) or {})
    before_section.pop(key, None)
    after_section.pop(key, None)
    if before_section != after_section or {k: v for k, v in before.items() if k != section} != {
        k: v for k, v in after.items() if k != section
    }:
        raise ValueError(f"setting {section}.{key} would change other settings")


def old_settings(text: str, file: str) -> dict[Setting, Any]:
    """The old keys `text` (the content of `file`) still sets, with their values."""
    try:
        data = _sections(text)
    except (yaml.YAMLError, ValueError):
        return {}
    found = {}
    for setting in SETTINGS:
        section = data.get(setting.section)
        if setting.file == file and isinstance(section, dict) and setting.key in section:
            found[setting] = section[setting.key]
    return found


def moves_away(setting: Setting) -> bool:
    """Whether the setting leaves its place (not a key that stays but is no longer shipped)."""
    return setting.to != (setting.file, setting.section, setting.key)


# ------------------------------------------------------------------------- stages


def plan_path() -> Path:
    git_dir = guard.git("rev-parse", "--absolute-git-dir").stdout.decode().strip()
    return Path(git_dir) / PLAN


def old_release_files(answers_file: str, template: str, paths: set[str]) -> dict[str, str]:
    """`paths` as the release the project was last rendered from wrote them (those it had)."""
    answers = guard.load_yaml((guard.head_file(answers_file) or b"").decode())
    with tempfile.TemporaryDirectory(prefix="mlops-moved-settings-") as tmp:
        if not guard.render_old(answers, template, Path(tmp) / "old"):
            return {}
        rendered = {path: Path(tmp) / "old" / path for path in paths}
        return {path: file.read_text() for path, file in rendered.items() if file.is_file()}


def before(answers_file: str, template: str) -> int:
    if not guard.in_real_project(answers_file):
        return 0
    plan = plan_path()
    plan.unlink(missing_ok=True)
    texts = {file: Path(file).read_text() for file in _files() if Path(file).is_file()}
    found = {file: old_settings(text, file) for file, text in texts.items()}
    found = {file: settings for file, settings in found.items() if settings}
    if not found:
        return 0
    bases = old_release_files(answers_file, template, set(found))
    changed = []
    for file, settings in found.items():
        shipped = old_settings(bases.get(file, ""), file)
        changed += [[*s[:3], v] for s, v in settings.items() if shipped.get(s, MISSING) != v]
    staged = []
    for file, settings in found.items():
        for section in dict.fromkeys(s.section for s in settings):
            keys = [s.key for s in settings if s.section == section]
            try:
                texts[file] = drop_keys(texts[file], section, keys, bases.get(file))
            except ValueError as error:
                say(f"{file}: left as it is ({error}); the update may mark a conflict there")
        if texts[file] != Path(file).read_text():
            Path(file).write_text(texts[file])
            guard.git("add", "--", file)  # copier merges what the index holds
            staged.append(file)
    plan.write_text(json.dumps({"changed": changed, "staged": staged}))
    return 0


def after(answers_file: str) -> int:
    if not guard.in_real_project(answers_file):
        return 0
    plan = plan_path()
    if not plan.is_file():
        return 0
    recorded = json.loads(plan.read_text())
    for file, section, key, value in recorded["changed"]:
        setting = BY_PLACE[file, section, key]
        if setting.to is None:
            say(f"{file}: {setting.name} was removed (yours was {flow(value)}); see {setting.see}")
        else:
            _carry(setting, setting.to, value)
    _drop_leftovers()
    # Unstage `before`'s edits (`git diff` then shows the whole update), also when the update
    # removed the file (a move to a lower level), never where the merge marked a conflict.
    for file in recorded["staged"]:
        if not (Path(file).is_file() and guard.MARKER.search(Path(file).read_text())):
            guard.git("reset", "-q", "--", file, check=False)
    plan.unlink()
    return 0


def _carry(setting: Setting, to: tuple[str, str, str], value: Any) -> None:
    """Write your value of `setting` where the new release reads it (`to`), and say so."""
    file, section, key = to
    target = Path(file)
    where = f"{section}.{key} in {file}"
    try:
        text = target.read_text() if target.is_file() else None
        if text is None:
            raise ValueError(f"{file} is not in the project")
        previous = (_sections(text).get(section) or {}).get(key, MISSING)
        target.write_text(set_key(text, section, key, value))
    except (ValueError, yaml.YAMLError) as error:
        say(f"set {where} to {flow(value)} by hand (your {setting.name}; {error})")
        return
    was = "" if previous is MISSING else f" (it was {flow(previous)})"
    if moves_away(setting):
        say(f"your {setting.file} {setting.name}: {flow(value)} is now {where}{was}")
    else:
        say(f"your {where}: {flow(value)} is kept (the release no longer ships it)")


def _files() -> list[str]:
    return list(dict.fromkeys(setting.file for setting in SETTINGS))


def _drop_leftovers() -> None:
    """Remove old keys the update's merge kept (their values were carried or reported)."""
    for file in _files():
        path = Path(file)
        text = original = path.read_text() if path.is_file() else ""
        left = [s for s in old_settings(text, file) if moves_away(s)]
        if not left or guard.MARKER.search(text):
            continue
        for section in dict.fromkeys(s.section for s in left):
            keys = [s.key for s in left if s.section == section]
            try:
                text = drop_keys(text, section, keys, None)
            except ValueError as error:
                say(f"{file}: remove {', '.join(keys)} from {section} by hand ({error})")
        if text != original:
            path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["before", "after"])
    parser.add_argument("--answers-file", default=".copier-answers.yml")
    parser.add_argument("--template", default="", help="the template being applied")
    args = parser.parse_args(argv)
    if args.stage == "before":
        return before(args.answers_file, args.template)
    return after(args.answers_file)


if __name__ == "__main__":
    sys.exit(main())
