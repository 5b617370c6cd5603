"""MkDocs hook: renders the docs' generated parts from the maturity model in extensions/.

Pages hold prose plus marker comments such as ``<!-- maturity:file-tree -->``; this hook
replaces each marker with Markdown computed from ``extensions/maturity.py`` and ``template/``,
so the tables, the ladder, the file trees and the command lists cannot drift from the
template. An unknown marker, a marker on the wrong page or a level without a page fails
the build.
"""

from __future__ import annotations

import html
import posixpath
import re
import sys
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import jinja2
import yaml
from mkdocs.exceptions import PluginError
from mkdocs.utils.meta import get_data

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template"
if str(ROOT) not in sys.path:  # the model and the tests' path helpers, without installing them
    sys.path.insert(0, str(ROOT))

from extensions import maturity  # noqa: E402
from tests.paths import expected_paths  # noqa: E402

MARKER = re.compile(r"<!-- maturity:([a-z-]+) -->")
LEVEL_PAGE = re.compile(r"^levels/level-(\d+)\.md$")
MAKE_TARGET = re.compile(r"^([a-zA-Z_-]+):.*## (.*)$", re.M)


def level_page(number: int) -> str:
    """Source path (under docs/) of a level's page; its URL is `Level.docs_path`."""
    return f"levels/level-{number}.md"


# ------------------------------------------------------------------ mkdocs events


def on_config(config: Any) -> Any:
    # The URL is defined once, in the model, because generated READMEs link to it too.
    config["site_url"] = maturity.DOCS_URL
    for cached in (_answers, _make_targets):  # `mkdocs serve` rebuilds in one process
        cached.cache_clear()
    return config


def on_files(files: Any, config: Any) -> Any:
    missing = [
        level_page(lvl.number)
        for lvl in maturity.LEVELS
        if not files.get_file_from_path(level_page(lvl.number))
    ]
    if missing:
        raise PluginError(f"every maturity level needs a page; missing docs/{missing}")
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    src = page.file.src_uri
    match = LEVEL_PAGE.match(src)
    level = maturity.get_level(int(match.group(1))) if match else None

    def replace(marker: re.Match[str]) -> str:
        name = marker.group(1)
        if name in PAGE_SECTIONS:
            return PAGE_SECTIONS[name](src, Path(config["docs_dir"]))
        if name in LEVEL_SECTIONS:
            if level is None:
                raise PluginError(f"{src}: marker {name!r} belongs on a level page")
            return LEVEL_SECTIONS[name](level, src, Path(config["docs_dir"]))
        raise PluginError(f"{src}: unknown marker <!-- maturity:{name} -->")

    return MARKER.sub(replace, markdown)


# ------------------------------------------------------------------ helpers


def _link(from_src: str, to_src: str) -> str:
    """Relative link between two docs source files (MkDocs resolves and checks it)."""
    return posixpath.relpath(to_src, posixpath.dirname(from_src) or ".")


def _choose_when(docs_dir: Path, number: int) -> str:
    """The `choose:` front matter of a level's page: when to pick this level."""
    _, meta = get_data((docs_dir / level_page(number)).read_text(encoding="utf-8"))
    if not meta.get("choose"):
        raise PluginError(f"docs/{level_page(number)} needs `choose:` front matter")
    return str(meta["choose"]).strip()


@cache
def _answers() -> dict[str, Any]:
    """copier.yml's default answers, rendered the way copier renders them."""
    config = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
    env = jinja2.Environment(extensions=[maturity.MaturityFilters])
    answers: dict[str, Any] = {}
    for key, question in config.items():
        if key.startswith("_") or not isinstance(question, dict):
            continue
        default = question.get("default")
        if isinstance(default, str):
            default = env.from_string(default).render(answers)
        answers[key] = default
    return answers


def _package() -> str:
    return str(_answers()["package_name"])


@cache
def _make_targets(number: int) -> dict[str, str]:
    """`make help` of a project at `number`: target -> description ({} without a Makefile)."""
    if not maturity.belongs_at("Makefile", number):
        return {}
    env = jinja2.Environment(extensions=[maturity.MaturityFilters], keep_trailing_newline=True)
    source = (TEMPLATE / "Makefile.jinja").read_text(encoding="utf-8")
    context = {**_answers(), "level": number, **maturity.template_context(number)}
    return dict(MAKE_TARGET.findall(env.from_string(source).render(context)))


def _own_paths(level: maturity.Level) -> set[str]:
    """Generated paths this level introduces, as the template holds them today."""
    return {
        p
        for p in expected_paths(TEMPLATE, level.number, _package())
        if maturity.owner_of(p) is level
    }


def file_tree(paths: set[str], root: str, new: set[str]) -> str:
    """`tree --dirsfirst`-style listing of `paths`; `new` entries are marked ``← new``."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        *dirs, name = path.split("/")
        for part in dirs:
            node = node.setdefault(part + "/", {})
        node[name] = None

    def all_new(prefix: str) -> bool:
        inside = [p for p in paths if p.startswith(prefix)]
        return bool(inside) and all(p in new for p in inside)

    lines = [root + "/"]

    def walk(node: dict[str, Any], indent: str, prefix: str, parent_new: bool) -> None:
        names = sorted(node, key=lambda n: (not n.endswith("/"), n.lower()))
        for i, name in enumerate(names):
            last = i == len(names) - 1
            path = prefix + name
            is_new = all_new(path) if name.endswith("/") else path in new
            mark = "  ← new" if is_new and not parent_new else ""
            lines.append(f"{indent}{'└── ' if last else '├── '}{name}{mark}")
            if node[name] is not None:
                walk(node[name], indent + ("    " if last else "│   "), path, is_new or parent_new)

    walk(tree, "", "", False)
    return "\n".join(lines)


def _ladder(current: int | None = None) -> str:
    """The maturity ladder as a Mermaid flowchart (the current level highlighted)."""
    lines = ["```mermaid", "flowchart LR"]
    for level in maturity.LEVELS:
        adds = "<br/>".join(cap.label for cap in level.capabilities)
        lines.append(f'  L{level.number}["<b>{level.label}</b><br/><small>{adds}</small>"]')
    numbers = [level.number for level in maturity.LEVELS]
    lines += [f"  L{a} --> L{b}" for a, b in pairwise(numbers)]
    if current is not None:
        lines.append("  classDef here fill:#ffe082,stroke:#f57f17,stroke-width:2px,color:#000")
        lines.append(f"  class L{current} here")
    lines.append("```")
    return "\n".join(lines)


# ------------------------------------------------------------------ sections


def _table(src: str, docs_dir: Path) -> str:
    return maturity.markdown_table()


def _ladder_section(src: str, docs_dir: Path) -> str:
    return _ladder()


def _choose(src: str, docs_dir: Path) -> str:
    items = [
        f"- **[Level {lvl.label}]({_link(src, level_page(lvl.number))})**: "
        f"{_choose_when(docs_dir, lvl.number)}"
        for lvl in maturity.LEVELS
    ]
    return "\n".join(items)


def _quickstart(src: str, docs_dir: Path) -> str:
    """The README's quick-start commands, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## Quick start\n.*?(```bash\n.*?\n```)", readme, re.S | re.M)
    if not found:
        raise PluginError("README.md has no ```bash block under '## Quick start'")
    return found.group(1)


def _header(level: maturity.Level, src: str, docs_dir: Path) -> str:
    caps = ", ".join(cap.label for cap in level.capabilities)
    lines = [
        f"# Level {level.label}",
        "",
        f"**{level.summary}**",
        "",
        _ladder(level.number),
        "",
        f"- **Adds:** {caps}.",
    ]
    if level.retires:
        lines.append(f"- **Replaces:** {', '.join(f'`{p}`' for p in level.retires)}.")
    lines.append(f"- **Choose it when:** {_choose_when(docs_dir, level.number)}")
    if level.number > 0:
        below = maturity.get_level(level.number - 1)
        lines.append(
            f"- **Builds on:** [level {below.label}]({_link(src, level_page(below.number))}); "
            "everything there is here too."
        )
    return "\n".join(lines)


def _files(level: maturity.Level, src: str, docs_dir: Path) -> str:
    answers = _answers()
    paths = expected_paths(TEMPLATE, level.number, _package())
    own = _own_paths(level)
    new = own if level.number > 0 else set()
    tree = html.escape(file_tree(paths, str(answers["project_slug"]), new))
    parts = []
    if level.paths and not own:
        parts += [
            '!!! warning "Being built"',
            "    The template does not hold this level's files yet, so a project generated at",
            "    this level today gets the tree below, which is the level below's. The rest of",
            "    this page describes the design the level is being built to.",
            "",
        ]
    parts += [
        f"A project generated at level {level.number} with the default answers "
        f"(package `{_package()}`) has exactly these {len(paths)} files"
        + (", those marked ← new added by this level:" if new else ":"),
        "",
        f'<pre class="file-tree"><code>{tree}</code></pre>',
    ]
    return "\n".join(parts)


def _commands(level: maturity.Level, src: str, docs_dir: Path) -> str:
    targets = _make_targets(level.number)
    if not targets:
        raise PluginError(f"{src}: level {level.number} has no Makefile; write its commands")
    before = _make_targets(level.number - 1) if level.number > 0 else {}
    rows = ["| command | what it does |", "|---|---|"]
    for target, help_text in targets.items():
        changed = target not in before or before[target] != help_text
        flag = " *(new)*" if changed and before else ""
        rows.append(f"| `make {target}` | {help_text}{flag} |")
    intro = (
        "The project's one task vocabulary is its Makefile (`make help` prints this list). "
        "Each target runs through `uv run`, in the `.venv` that `make install` creates."
    )
    return intro + "\n\n" + "\n".join(rows)


def _lacks(level: maturity.Level, src: str, docs_dir: Path) -> str:
    above = [lvl for lvl in maturity.LEVELS if lvl.number > level.number]
    if not above:
        return "Nothing in the model: this is the top level."
    return "\n".join(
        f"- {', '.join(cap.label for cap in lvl.capabilities)} "
        f"([level {lvl.number}]({_link(src, level_page(lvl.number))}))"
        for lvl in above
    )


def _move_up(level: maturity.Level, src: str, docs_dir: Path) -> str:
    changing = _link(src, "changing-level.md")
    if level.number == maturity.LEVELS[-1].number:
        return (
            "This is the top of the ladder. To go down a level, read "
            f"[Changing level]({changing}) first: a downgrade removes files."
        )
    nxt = maturity.get_level(level.number + 1)
    caps = ", ".join(cap.label for cap in nxt.capabilities)
    return "\n".join(
        [
            f"[Level {nxt.label}]({_link(src, level_page(nxt.number))}) adds {caps}. "
            "From the project's root, with everything committed:",
            "",
            "```bash",
            f"{maturity.UPDATE_COMMAND} --data level={nxt.number}",
            "git status && git diff   # review; resolve any conflict markers, then commit",
            "```",
            "",
            f"Your files and edits are kept. [Changing level]({changing}) explains the merge, "
            "conflicts and going back down.",
        ]
    )


PAGE_SECTIONS = {
    "table": _table,
    "ladder": _ladder_section,
    "choose": _choose,
    "readme-quickstart": _quickstart,
}
LEVEL_SECTIONS = {
    "level-header": _header,
    "file-tree": _files,
    "commands": _commands,
    "lacks": _lacks,
    "move-up": _move_up,
}
