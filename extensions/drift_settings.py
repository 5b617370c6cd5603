"""Migration: level 4's drift settings move from retraining.yaml to monitoring.yaml.

Level 4 used to set drift thresholds of its own under `triggers:` of configs/retraining.yaml
(`feature_thresholds` in release 0.1.0; `categorical_threshold` and `numeric_threshold` too in
the development versions after it, until commit c0e47e2); later versions share one
drift verdict between levels 3 and 4, set in the `drift:` section of configs/monitoring.yaml
(`categorical_threshold`, `numerical_threshold`, `feature_thresholds`), and the retraining
policy refuses the old keys. Copier runs this file as two migrations (copier.yml `_migrations`,
needs `--trust`), with copier's own Python, in the project being updated:

- `before` (nothing changed yet): each old key whose value you changed is remembered (in the
  project's git directory), and every old key's lines are put back as the old release wrote
  them (staged: copier merges the index), so the update's merge drops them without a conflict.
- `after` (the update is done): the remembered values are written into monitoring.yaml's
  `drift:` section, each on its key's line (the line's comment kept; a key the section lacks
  is added at its end), and the output names each move and the value it replaced. Old keys
  the merge left in retraining.yaml are removed.

Values still as the old release shipped them are not carried over: the shared verdict's
settings apply, as the CHANGELOG says. YAML is edited line by line, so every other line,
comment and value stays as you wrote it; an edit that would not read back as intended is
not written, and the output says what to set by hand. Idempotent: without the old keys, or
run again, it changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml  # copier's own dependency: always importable where copier runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guard  # the level guard beside this file: git helpers and the old release's rendering

RETRAINING = "configs/retraining.yaml"
MONITORING = "configs/monitoring.yaml"
OLD_SECTION, NEW_SECTION = "triggers", "drift"
#: Old key under retraining.yaml's `triggers:` -> its key under monitoring.yaml's `drift:`.
MOVED = {
    "categorical_threshold": "categorical_threshold",
    "numeric_threshold": "numerical_threshold",
    "feature_thresholds": "feature_thresholds",
}
PLAN = "mlops-template-drift-settings.json"  # in the project's git directory
MISSING = object()


def say(message: str) -> None:
    print(f"[drift settings] {message}", file=sys.stderr, flush=True)


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


def old_settings(text: str) -> dict[str, Any]:
    """The moved keys `text` (a retraining.yaml) still sets under `triggers:`."""
    try:
        section = _sections(text).get(OLD_SECTION)
    except (yaml.YAMLError, ValueError):
        return {}
    if not isinstance(section, dict):
        return {}
    return {key: section[key] for key in MOVED if key in section}


# ------------------------------------------------------------------------- stages


def plan_path() -> Path:
    git_dir = guard.git("rev-parse", "--absolute-git-dir").stdout.decode().strip()
    return Path(git_dir) / PLAN


def old_release_file(answers_file: str, template: str, path: str) -> str | None:
    """`path` as the release the project was last rendered from wrote it, or None."""
    answers = guard.load_yaml((guard.head_file(answers_file) or b"").decode())
    with tempfile.TemporaryDirectory(prefix="mlops-drift-settings-") as tmp:
        if not guard.render_old(answers, template, Path(tmp) / "old"):
            return None
        rendered = Path(tmp) / "old" / path
        return rendered.read_text() if rendered.is_file() else None


def before(answers_file: str, template: str) -> int:
    if not guard.in_real_project(answers_file):
        return 0
    plan = plan_path()
    plan.unlink(missing_ok=True)
    retraining = Path(RETRAINING)
    text = retraining.read_text() if retraining.is_file() else ""
    found = old_settings(text)
    if not found:
        return 0
    base = old_release_file(answers_file, template, RETRAINING)
    shipped = old_settings(base) if base is not None else {}
    chosen = {MOVED[k]: v for k, v in found.items() if shipped.get(k, MISSING) != v}
    plan.write_text(json.dumps({"moves": chosen, "from": dict(found)}))
    try:
        edited = drop_keys(text, OLD_SECTION, list(found), base)
    except ValueError as error:
        say(f"{RETRAINING}: left as it is ({error}); the update may mark a conflict there")
        return 0
    if edited != text:
        retraining.write_text(edited)
        guard.git("add", "--", RETRAINING)  # copier merges what the index holds
    return 0


def after(answers_file: str) -> int:
    if not guard.in_real_project(answers_file):
        return 0
    plan = plan_path()
    if not plan.is_file():
        return 0
    recorded = json.loads(plan.read_text())
    moves: dict[str, Any] = recorded["moves"]
    monitoring = Path(MONITORING)
    unset = dict(moves)
    if moves and monitoring.is_file():
        text = original = monitoring.read_text()
        for key, value in moves.items():
            try:
                previous = (_sections(text).get(NEW_SECTION) or {}).get(key, MISSING)
                text = set_key(text, NEW_SECTION, key, value)
            except (ValueError, yaml.YAMLError) as error:
                say(f"{MONITORING}: could not set {NEW_SECTION}.{key} ({error})")
                continue
            unset.pop(key)
            was = "" if previous is MISSING else f" (it was {flow(previous)})"
            say(f"your {NEW_SECTION}.{key}: {flow(value)} is now in {MONITORING}{was}")
        if text != original:
            monitoring.write_text(text)
    for key, value in unset.items():
        say(f"set {NEW_SECTION}.{key}: {flow(value)} in {MONITORING} by hand (your old value)")
    _drop_leftovers()
    retraining = Path(RETRAINING)
    # Unstage `before`'s edit (`git diff` then shows the whole update), also when the update
    # removed the file (a move to level 3), never where the merge marked a conflict.
    if not (retraining.is_file() and guard.MARKER.search(retraining.read_text())):
        guard.git("reset", "-q", "--", RETRAINING, check=False)
    if moves:
        say(f"levels 3 and 4 now share one drift verdict, set in {MONITORING}'s drift section")
    plan.unlink()
    return 0


def _drop_leftovers() -> None:
    """Remove old keys the update's merge kept in retraining.yaml (they are moved or shipped)."""
    retraining = Path(RETRAINING)
    if not retraining.is_file():
        return
    text = retraining.read_text()
    left = list(old_settings(text))
    if not left or guard.MARKER.search(text):
        return
    try:
        retraining.write_text(drop_keys(text, OLD_SECTION, left, None))
    except ValueError as error:
        say(f"{RETRAINING}: remove {', '.join(left)} from triggers by hand ({error})")


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
