"""The level guides: docs/levels/level-N.md with their generated sections filled in.

A level's page holds prose plus marker comments such as ``<!-- maturity:file-tree -->``; this
module replaces each marker with Markdown computed from the maturity model and ``template/``, so
the tables, the ladder, the file trees and the command lists cannot drift from the template.
Two readers, one source: the docs site (docs/hooks.py, for every page) and every generated
project, whose GUIDE.md is its level's page (`project_guide`, through template/GUIDE.md.jinja),
with links that work offline: the site's URL for pages a project does not ship.

Needs only jinja2 and yaml (copier's own dependencies). The maturity model is passed in, not
imported: copier loads extensions/maturity.py by file path, and that module hands itself over.
"""

from __future__ import annotations

import html
import posixpath
import re
from collections.abc import Callable, Mapping
from functools import cache, cached_property
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

MARKER = re.compile(r"<!-- maturity:([a-z-]+) -->")
LEVEL_PAGE = re.compile(r"^levels/level-(\d+)\.md$")
MAKE_TARGET = re.compile(r"^([a-zA-Z_-]+):.*## (.*)$", re.M)
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
FENCE = re.compile(r"^```.*?^```[^\n]*$", re.M | re.S)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
# Where a generated project keeps its level's guide.
GUIDE_FILE = "GUIDE.md"


class GuideError(ValueError):
    """A page the guide cannot render: a marker unknown or misplaced, a setting missing."""


def level_page(number: int) -> str:
    """Source path (under docs/) of a level's page; its URL is `Level.docs_path`."""
    return f"levels/level-{number}.md"


def split_front_matter(markdown: str) -> tuple[str, dict[str, Any]]:
    """A page's text without its YAML front matter, and the front matter."""
    import yaml

    found = FRONT_MATTER.match(markdown)
    if not found:
        return markdown, {}
    return markdown[found.end() :], yaml.safe_load(found.group(1)) or {}


def default_answers(root: Path, model: ModuleType) -> dict[str, Any]:
    """copier.yml's default answers, rendered the way copier renders them."""
    import jinja2
    import yaml

    config = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    env = jinja2.Environment(extensions=[model.MaturityFilters])
    answers: dict[str, Any] = {}
    for key, question in config.items():
        if key.startswith("_") or not isinstance(question, dict):
            continue
        default = question.get("default")
        if isinstance(default, str):
            default = env.from_string(default).render(answers)
        answers[key] = default
    return answers


def _link(from_src: str, to_src: str) -> str:
    """Relative link between two docs source files (MkDocs resolves and checks it)."""
    return posixpath.relpath(to_src, posixpath.dirname(from_src) or ".")


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


def site_url(docs_url: str, target: str) -> str:
    """The published address of docs source path `target` (``page.md#anchor`` or an asset)."""
    path, hash_, anchor = target.partition("#")
    if path.endswith(".md"):
        path = path.removesuffix(".md")
        path = path.removesuffix("index") if posixpath.basename(path) == "index" else path + "/"
    return docs_url + path + hash_ + anchor


def offline_links(markdown: str, src: str, docs_url: str) -> str:
    """`markdown` (docs source `src`) with each relative link made one that works in a project.

    A link to a place on the same page stays; any other page or image of the site, which a
    project does not ship, becomes its address on the site. Code blocks are left as they are.
    """

    def rewrite(found: re.Match[str]) -> str:
        target = found.group(1)
        if target.startswith("#") or URL_SCHEME.match(target) or target.startswith("/"):
            return found.group(0)
        path, hash_, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(src), path))
        if resolved == src:
            return f"](#{anchor})" if anchor else "](#)"
        return f"]({site_url(docs_url, resolved + hash_ + anchor)})"

    parts, start = [], 0
    for fence in FENCE.finditer(markdown):
        parts += [LINK_TARGET.sub(rewrite, markdown[start : fence.start()]), fence.group(0)]
        start = fence.end()
    parts.append(LINK_TARGET.sub(rewrite, markdown[start:]))
    return "".join(parts)


class Guide:
    """The generated sections of the docs, for one set of answers (a project's, or the site's:
    copier.yml's defaults), from the template repository at `root`."""

    def __init__(self, model: ModuleType, root: Path, answers: Mapping[str, Any]) -> None:
        self.model = model
        self.root = root
        self.docs = root / "docs"
        self.template = root / "template"
        self.answers = dict(answers)
        self.package = str(answers["package_name"])
        self.slug = str(answers["project_slug"])
        self.make_targets = cache(self._make_targets)
        self.paths = cache(self._paths)
        self.page_sections: dict[str, Callable[[str], str]] = {
            "table": self._table,
            "ladder": self._ladder_section,
            "choose": self._choose,
            "readme-quickstart": self._quickstart,
        }
        self.level_sections: dict[str, Callable[[Any, str], str]] = {
            "level-header": self._header,
            "file-tree": self._files,
            "commands": self._commands,
            "lacks": self._lacks,
            "move-up": self._move_up,
        }

    # ------------------------------------------------------------------ pages

    def fill(self, markdown: str, src: str) -> str:
        """`markdown` of docs page `src` with every marker replaced by its section."""
        match = LEVEL_PAGE.match(src)
        level = self.model.get_level(int(match.group(1))) if match else None

        def replace(marker: re.Match[str]) -> str:
            name = marker.group(1)
            if name in self.page_sections:
                return self.page_sections[name](src)
            if name in self.level_sections:
                if level is None:
                    raise GuideError(f"{src}: marker {name!r} belongs on a level page")
                return self.level_sections[name](level, src)
            raise GuideError(f"{src}: unknown marker <!-- maturity:{name} -->")

        return MARKER.sub(replace, markdown)

    def level_guide(self, number: int) -> str:
        """Level `number`'s page as the site shows it, in Markdown that reads offline."""
        src = level_page(number)
        page, _ = split_front_matter((self.docs / src).read_text(encoding="utf-8"))
        # The pages are written for the default names; a project reads its own.
        for name in ("project_slug", "package_name"):
            page = page.replace(str(self.defaults[name]), str(self.answers[name]))
        return offline_links(self.fill(page, src), src, self.model.DOCS_URL)

    def project_guide(self, number: int) -> str:
        """A project's GUIDE.md, without its final newline (template/GUIDE.md.jinja adds it): its
        level's guide, under a line saying where it comes from."""
        level = self.model.get_level(number)
        note = (
            f"<!-- {GUIDE_FILE}: the template's guide to level {number}, rewritten by every "
            "`copier update`; keep your notes in README.md. -->\n"
            f"*This project's level guide, also on the [site]({level.docs_url}). "
            "Back to the [README](README.md).*\n\n"
        )
        return note + self.level_guide(number).strip("\n")

    # ------------------------------------------------------------------ helpers

    @cached_property
    def defaults(self) -> dict[str, Any]:
        """copier.yml's default answers (the site's; the pages' prose names their package)."""
        return default_answers(self.root, self.model)

    def choose_when(self, number: int) -> str:
        """The `choose:` front matter of a level's page: when to pick this level."""
        page = (self.docs / level_page(number)).read_text(encoding="utf-8")
        _, meta = split_front_matter(page)
        if not meta.get("choose"):
            raise GuideError(f"docs/{level_page(number)} needs `choose:` front matter")
        return str(meta["choose"]).strip()

    def _make_targets(self, number: int) -> dict[str, str]:
        """`make help` of a project at `number`: target -> description ({} without one)."""
        import jinja2

        if not self.model.belongs_at("Makefile", number):
            return {}
        env = jinja2.Environment(
            extensions=[self.model.MaturityFilters], keep_trailing_newline=True
        )
        source = (self.template / "Makefile.jinja").read_text(encoding="utf-8")
        context = {**self.answers, "level": number, **self.model.template_context(number)}
        return dict(MAKE_TARGET.findall(env.from_string(source).render(context)))

    def _paths(self, number: int) -> set[str]:
        return set(self.model.expected_paths(self.template, number, self.package))

    def own_paths(self, level: Any) -> set[str]:
        """Generated paths `level` introduces, as the template holds them today."""
        return {p for p in self.paths(level.number) if self.model.owner_of(p) is level}

    def _ladder(self, current: int | None = None) -> str:
        """The maturity ladder as a Mermaid flowchart (the current level highlighted)."""
        lines = ["```mermaid", "flowchart LR"]
        for level in self.model.LEVELS:
            adds = "<br/>".join(cap.label for cap in level.capabilities)
            lines.append(f'  L{level.number}["<b>{level.label}</b><br/><small>{adds}</small>"]')
        numbers = [level.number for level in self.model.LEVELS]
        lines += [f"  L{a} --> L{b}" for a, b in pairwise(numbers)]
        if current is not None:
            lines.append("  classDef here fill:#ffe082,stroke:#f57f17,stroke-width:2px,color:#000")
            lines.append(f"  class L{current} here")
        lines.append("```")
        return "\n".join(lines)

    # ------------------------------------------------------------------ page sections

    def _table(self, src: str) -> str:
        return str(self.model.markdown_table())

    def _ladder_section(self, src: str) -> str:
        return self._ladder()

    def _choose(self, src: str) -> str:
        return "\n".join(
            f"- **[Level {lvl.label}]({_link(src, level_page(lvl.number))})**: "
            f"{self.choose_when(lvl.number)}"
            for lvl in self.model.LEVELS
        )

    def _quickstart(self, src: str) -> str:
        """The README's quick-start commands, verbatim."""
        readme = (self.root / "README.md").read_text(encoding="utf-8")
        found = re.search(r"^## Quick start\n.*?(```bash\n.*?\n```)", readme, re.S | re.M)
        if not found:
            raise GuideError("README.md has no ```bash block under '## Quick start'")
        return found.group(1)

    # ------------------------------------------------------------------ level sections

    def _header(self, level: Any, src: str) -> str:
        caps = ", ".join(cap.label for cap in level.capabilities)
        lines = [
            f"# Level {level.label}",
            "",
            f"**{level.summary}**",
            "",
            self._ladder(level.number),
            "",
            f"- **Adds:** {caps}.",
        ]
        if level.retires:
            lines.append(f"- **Replaces:** {', '.join(f'`{p}`' for p in level.retires)}.")
        lines.append(f"- **Choose it when:** {self.choose_when(level.number)}")
        if level.number > 0:
            below = self.model.get_level(level.number - 1)
            lines.append(
                f"- **Builds on:** [level {below.label}]({_link(src, level_page(below.number))}); "
                "everything there is here too."
            )
        return "\n".join(lines)

    def _files(self, level: Any, src: str) -> str:
        paths = self.paths(level.number)
        own = self.own_paths(level)
        new = own if level.number > 0 else set()
        tree = html.escape(file_tree(paths, self.slug, new))
        parts = []
        if level.paths and not own:
            parts += [
                '!!! warning "Being built"',
                "    The template does not hold this level's files yet, so a project generated",
                "    at this level today gets the tree below, which is the level below's. The",
                "    rest of this page describes the design the level is being built to.",
                "",
            ]
        parts += [
            f"A project generated at level {level.number} with {self._whose_answers()} "
            f"(package `{self.package}`) has exactly these {len(paths)} files"
            + (", those marked ← new added by this level:" if new else ":"),
            "",
            f'<pre class="file-tree"><code>{tree}</code></pre>',
        ]
        return "\n".join(parts)

    def _whose_answers(self) -> str:
        names = ("package_name", "project_slug")
        same = all(str(self.defaults[name]) == str(self.answers[name]) for name in names)
        return "the default answers" if same else "this project's answers"

    def _commands(self, level: Any, src: str) -> str:
        targets = self.make_targets(level.number)
        if not targets:
            raise GuideError(f"{src}: level {level.number} has no Makefile; write its commands")
        before = self.make_targets(level.number - 1) if level.number > 0 else {}
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

    def _lacks(self, level: Any, src: str) -> str:
        above = [lvl for lvl in self.model.LEVELS if lvl.number > level.number]
        if not above:
            return "Nothing in the model: this is the top level."
        return "\n".join(
            f"- {', '.join(cap.label for cap in lvl.capabilities)} "
            f"([level {lvl.number}]({_link(src, level_page(lvl.number))}))"
            for lvl in above
        )

    def _move_up(self, level: Any, src: str) -> str:
        changing = _link(src, "changing-level.md")
        if level.number == self.model.LEVELS[-1].number:
            return (
                "This is the top of the ladder. To go down a level, read "
                f"[Changing level]({changing}) first: a downgrade removes files."
            )
        nxt = self.model.get_level(level.number + 1)
        caps = ", ".join(cap.label for cap in nxt.capabilities)
        return "\n".join(
            [
                f"[Level {nxt.label}]({_link(src, level_page(nxt.number))}) adds {caps}. "
                "From the project's root, with everything committed:",
                "",
                "```bash",
                f"{self.model.LEVEL_COMMAND} --data level={nxt.number}",
                "git status && git diff   # review; resolve any conflict markers, then commit",
                "```",
                "",
                f"Your files and edits are kept. [Changing level]({changing}) explains the merge, "
                "conflicts and going back down.",
            ]
        )
