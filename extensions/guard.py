"""Level guard: `copier update` never silently loses the user's work.

Copier runs this file as two migrations (copier.yml `_migrations`, needs `--trust`), with
copier's own Python, in the project being updated:

- `before` (nothing changed yet): refuse to go on when the answers file's level does not
  match the files on disk (a hand-edited `level` turns the update into a silent no-op).
- `after` (the update is done): every file the update removed that the user had changed
  (it differs from what the template rendered for the old answers: a downgrade, or a
  file a level replaces, such as level 0's requirements.txt) is written back under
  `.copier-kept/<old level>-to-<new level>/<its path>` (the template's version it started
  from goes to `.copier-kept/.template/...`), and the output says so. When an update
  re-creates a path `.copier-kept/` holds (moving back up), your newest kept version is
  merged into the template's new one with `git merge-file` (conflicts marked), and the
  output says so; the kept copy stays until you delete it. It also
  reports the user's own files left in folders the new level does not have, and any
  conflict markers or `.rej` files the merge left (copier exits 0 on those).

Migrations run only in the real project (never in copier's temporary copies) and the
project's git HEAD is the state before the update (copier refuses a dirty tree), so HEAD
is the reference for "before". Idempotent: running it again changes nothing. It writes
only inside the project folder (and one temporary directory for the old rendering).
Set MLOPS_TEMPLATE_SKIP_LEVEL_CHECK=1 to skip the `before` check.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import maturity  # the model beside this file, in the template being applied

KEPT_DIR = ".copier-kept"
TEMPLATE_DIR = ".template"  # under KEPT_DIR: the template's version each kept file started from
DOCTOR = "scripts/doctor.py"
STAMP = re.compile(r"^RENDERED_LEVEL\s*=\s*(\d+)\s*$", re.M)
MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.M)
SKIP_ENV = "MLOPS_TEMPLATE_SKIP_LEVEL_CHECK"


def say(message: str) -> None:
    print(f"[level guard] {message}", file=sys.stderr, flush=True)


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], capture_output=True, check=check)


def load_yaml(text: str) -> dict[str, Any]:
    import yaml  # copier's own dependency: always importable where copier runs

    data = yaml.safe_load(text) or {}
    return data if isinstance(data, dict) else {}


def head_file(path: str) -> bytes | None:
    """The content of `path` (relative to the project) at HEAD, or None."""
    proc = git("show", f"HEAD:./{path}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def head_files() -> list[str]:
    """Every file tracked at HEAD, relative to the project folder."""
    out = git("ls-tree", "-r", "-z", "--name-only", "HEAD", ".").stdout.decode()
    prefix = git("rev-parse", "--show-prefix").stdout.decode().strip()
    return [p.removeprefix(prefix) for p in out.split("\0") if p]


def in_real_project(answers_file: str) -> bool:
    """True in the project being updated; False in copier's temporary copies."""
    inside = git("rev-parse", "--is-inside-work-tree", check=False)
    return inside.returncode == 0 and head_file(answers_file) is not None


def level_of(answers: dict[str, Any]) -> int:
    level = answers.get("level", maturity.DEFAULT_LEVEL)
    return level if isinstance(level, int) and level in maturity.LEVEL_NUMBERS else -1


def owner_level(path: str) -> int | None:
    try:
        owner = maturity.owner_of(path)
    except LookupError:
        return None  # the user's own file
    return None if owner is None else owner.number


# ----------------------------------------------------------------------- before


def level_mismatch(level: int, files: list[str]) -> str | None:
    """Why the files at HEAD cannot be a level-`level` project, or None if they can."""
    if level < 0:
        return "the answers file has no valid level"
    if DOCTOR in files:
        stamp = STAMP.search((head_file(DOCTOR) or b"").decode(errors="replace"))
        if stamp and int(stamp.group(1)) != level:
            return (
                f"the answers file says level {level} but the files were generated for "
                f"level {stamp.group(1)} ({DOCTOR})"
            )
    elif level >= 1 and not any((owner_level(f) or 0) >= 1 for f in files):
        return f"the answers file says level {level} but the project has only level-0 files"
    return None


def before(answers_file: str) -> int:
    if not in_real_project(answers_file) or os.environ.get(SKIP_ENV) == "1":
        return 0
    answers = load_yaml((head_file(answers_file) or b"").decode())
    problem = level_mismatch(level_of(answers), head_files())
    if problem is None:
        return 0
    say(f"stopping before any change: {problem}.")
    say(
        "The answers file must never be edited by hand: restore it "
        f"(git log -p {answers_file}; git checkout <commit> -- {answers_file}; git commit), "
        f"then change the level with: {maturity.LEVEL_COMMAND} --data level=N"
    )
    say(f"See {maturity.CHANGING_LEVEL_URL}")
    say(f"(To run the update anyway, set {SKIP_ENV}=1.)")
    return 1


# ------------------------------------------------------------------------ after


def render_old(answers: dict[str, Any], template: str, into: Path) -> bool:
    """Render the template at the old commit with the old answers into `into`."""
    import copier  # this script runs under copier's Python

    data = {k: v for k, v in answers.items() if not k.startswith("_")}
    commit = str(answers.get("_commit", "HEAD"))
    for source in dict.fromkeys([template, str(answers.get("_src_path", ""))]):
        if not source:
            continue
        try:
            copier.run_copy(
                source,
                str(into),
                data=data,
                vcs_ref=commit,
                defaults=True,
                unsafe=True,
                quiet=True,
                skip_tasks=True,
                overwrite=True,
            )
        except Exception as error:  # any failure: try the next source, then give up
            say(f"could not render the previous version from {source} at {commit}: {error}")
            continue
        return True
    return False


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keep(path: str, content: bytes, base: str, original: bytes | None) -> str:
    """Write `content` under the first `base[-n]/path` that is free or already identical.

    `original` (the template's rendering the user's version started from) goes under
    `.template/base[-n]/path`: it is the base of the 3-way merge when the path comes back.
    """
    for n in range(1, 1000):
        folder = base if n == 1 else f"{base}-{n}"
        target = Path(KEPT_DIR) / folder / path
        if target.is_file() and digest(target.read_bytes()) == digest(content):
            return target.as_posix()
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            if original is not None:
                template = Path(KEPT_DIR) / TEMPLATE_DIR / folder / path
                template.parent.mkdir(parents=True, exist_ok=True)
                template.write_bytes(original)
            return target.as_posix()
    raise RuntimeError(f"no free place to keep {path}")


def kept_versions(path: str) -> list[Path]:
    """The user's kept versions of `path`, newest last (by commit time, then file time)."""

    def age(kept: Path) -> tuple[int, float]:
        log = git("log", "-1", "--format=%ct", "--", kept.as_posix(), check=False)
        stamp = log.stdout.decode().strip()
        return int(stamp) if stamp.isdigit() else 0, kept.stat().st_mtime

    found = [
        kept
        for kept in Path(KEPT_DIR).glob(f"*/{path}")
        if kept.is_file() and kept.relative_to(KEPT_DIR).parts[0] != TEMPLATE_DIR
    ]
    return sorted(found, key=age)


def merge(yours: Path, base: Path | None, current: Path) -> tuple[bytes, int] | None:
    """`git merge-file` of your kept version and the template's new one, from `base`.

    Without a base (a copy kept by an older guard) every difference is a conflict.
    Returns the merged bytes and the number of conflicts, or None (binary files).
    """
    with tempfile.TemporaryDirectory(prefix="mlops-guard-merge-") as tmp:
        empty = Path(tmp) / "empty"
        empty.write_bytes(b"")
        labels = ["yours (" + yours.as_posix() + ")", "template when kept", "template now"]
        proc = git(
            "merge-file", "-p", "-L", labels[0], "-L", labels[1], "-L", labels[2],
            str(yours.resolve()), str((base or empty).resolve()), str(current.resolve()),
            check=False,
        )  # fmt: skip
    if proc.returncode < 0 or proc.returncode > 127:
        return None
    return proc.stdout, proc.returncode


def restore(created: list[str]) -> list[str]:
    """Bring back your kept version of each path the update re-created; report each one."""
    messages = []
    for path in created:
        versions = kept_versions(path)
        current = Path(path)
        if not versions or not current.is_file():
            continue
        yours = versions[-1]
        now = current.read_bytes()
        if now == yours.read_bytes() or MARKER.search(now.decode(errors="replace")):
            continue  # identical, or restored already (a second run)
        folder = yours.relative_to(KEPT_DIR).parts[0]
        base = Path(KEPT_DIR) / TEMPLATE_DIR / folder / path
        merged = merge(yours, base if base.is_file() else None, current)
        if merged is None:
            messages.append(f"{path} is the template's again: merge {yours} by hand")
            continue
        content, conflicts = merged
        current.write_bytes(content)
        how = f"{conflicts} conflict(s) marked in it" if conflicts else "merged with the template's"
        messages.append(f"restored your {path} from {yours} ({how})")
    return messages


def conflicts(files: list[str]) -> tuple[list[str], list[str]]:
    """Files among `files` with conflict markers, and `.rej` files anywhere."""
    marked = []
    for name in files:
        path = Path(name)
        small = path.is_file() and path.stat().st_size < 5_000_000
        if small and MARKER.search(path.read_bytes().decode(errors="replace")):
            marked.append(name)
    rejects = sorted(
        p.as_posix()
        for p in Path().rglob("*.rej")
        if not {".git", ".venv", "node_modules"} & set(p.parts)
    )
    return marked, rejects


def changed_since_head() -> list[str]:
    out = git("status", "--porcelain", "-z", "--untracked-files=all", ".").stdout.decode()
    prefix = git("rev-parse", "--show-prefix").stdout.decode().strip()
    entries = [e for e in out.split("\0") if e]
    return [e[3:].removeprefix(prefix) for e in entries if len(e) > 3]


def untracked() -> list[str]:
    """Files git does not track (and does not ignore): what the update created."""
    out = git("ls-files", "-z", "--others", "--exclude-standard", ".").stdout.decode()
    return [p for p in out.split("\0") if p]


def after(answers_file: str, template: str) -> int:
    if not in_real_project(answers_file):
        return 0
    old = load_yaml((head_file(answers_file) or b"").decode())
    new = load_yaml(Path(answers_file).read_text()) if Path(answers_file).is_file() else {}
    old_level, new_level = level_of(old), level_of(new)
    files = head_files()
    removed = [f for f in files if not Path(f).exists() and not Path(f).is_symlink()]
    kept: list[tuple[str, str]] = []
    if removed:
        with tempfile.TemporaryDirectory(prefix="mlops-guard-") as tmp:
            rendered = render_old(old, template, Path(tmp) / "old")
            for path in removed:
                content = head_file(path)
                if content is None:
                    continue
                rendering = Path(tmp) / "old" / path
                original = rendering.read_bytes() if rendered and rendering.is_file() else None
                if original == content:
                    continue  # unchanged template file: removing it loses nothing
                kept.append((path, keep(path, content, f"{old_level}-to-{new_level}", original)))
    for path, where in kept:
        say(f"kept your changed {path} (removed by this update) in {where}")
    if kept:
        say(
            f"Review {KEPT_DIR}/: port what you need, then delete it. "
            f"See {maturity.CHANGING_LEVEL_URL}"
        )
    present = set(files)
    created = [f for f in untracked() if f not in present and not f.startswith(KEPT_DIR + "/")]
    for message in restore(created):
        say(message)
    leftovers = [f for f in files if Path(f).is_file() and (owner_level(f) or -1) > new_level >= 0]
    for path in leftovers:
        say(f"left in place: {path} (your file, in a place level {new_level} does not have)")
    marked, rejects = conflicts(changed_since_head())
    if marked or rejects:
        say("WARNING: the merge left conflicts (copier still exits 0). Resolve them:")
        for path in marked:
            say(f"  conflict markers in {path}")
        for path in rejects:
            say(f"  rejected hunks in {path}")
    elif old_level != new_level:
        doctor = " and `make doctor`" if Path(DOCTOR).is_file() else ""
        say(
            f"level {old_level} -> {new_level} done. Check `git status`, `git diff`{doctor}, "
            "then commit."
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["before", "after"])
    parser.add_argument("--answers-file", default=".copier-answers.yml")
    parser.add_argument("--template", default="", help="the template being applied")
    args = parser.parse_args(argv)
    if args.stage == "before":
        return before(args.answers_file)
    return after(args.answers_file, args.template)


if __name__ == "__main__":
    sys.exit(main())
