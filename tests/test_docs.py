"""The docs site builds strictly, covers every level, and shows what the template renders."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from extensions import maturity
from tests.conftest import ROOT, TEMPLATE, Render, cannot_run, project_env

from .paths import expected_paths

LEVELS = list(maturity.LEVEL_NUMBERS)
PACKAGE = "taxi_trip_duration"  # copier.yml's default package name
FILE_TREE = re.compile(r'<pre class="file-tree"><code>(.*?)</code></pre>', re.S)
TREE_LINE = re.compile(r"^((?:│   |    )*)(?:├── |└── )(.+?)(?:  ← new)?$")
TABLE_MARKERS = re.compile(r"<!-- maturity-table:[^\n]*-->\n(.*?)\n<!-- /maturity-table -->", re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with `mkdocs build --strict` (any warning fails the build)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


class _IgnoreTags(yaml.SafeLoader):
    """Reads mkdocs.yml without importing what its `!!python/name` tags name."""


_IgnoreTags.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)


def page(site: Path, level: maturity.Level) -> str:
    return (site / level.docs_path / "index.html").read_text(encoding="utf-8")


def tree_paths(tree: str) -> set[str]:
    """The file paths of a `tree`-style listing (directories end with '/')."""
    lines = tree.splitlines()[1:]  # the first line is the project folder
    stack: list[str] = []
    files = set()
    for line in lines:
        match = TREE_LINE.match(line)
        assert match, f"not a tree line: {line!r}"
        depth = len(match.group(1)) // 4
        name = match.group(2)
        del stack[depth:]
        if name.endswith("/"):
            stack.append(name)
        else:
            files.add("".join(stack) + name)
    return files


def test_nav_lists_every_level_page_and_changing_level() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_IgnoreTags)
    nav = yaml.safe_dump(config["nav"])
    for level in maturity.LEVELS:
        assert f"levels/level-{level.number}.md" in nav
    assert "changing-level.md" in nav


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_has_its_page(site: Path, level: int) -> None:
    text = page(site, maturity.get_level(level))
    assert maturity.get_level(level).label in text
    assert maturity.get_level(level).summary in html.unescape(text)
    # the generated ladder and the level's architecture diagram
    assert text.count('<pre class="mermaid">') >= 2


@pytest.mark.parametrize("level", LEVELS)
def test_file_tree_in_docs_is_what_the_template_renders(site: Path, level: int) -> None:
    trees = FILE_TREE.findall(page(site, maturity.get_level(level)))
    assert len(trees) == 1
    assert tree_paths(html.unescape(trees[0])) == expected_paths(TEMPLATE, level, PACKAGE)


def test_maturity_model_page_has_the_table_and_every_level(site: Path) -> None:
    text = html.unescape((site / "maturity-model" / "index.html").read_text(encoding="utf-8"))
    for level in maturity.LEVELS:
        assert level.summary in text
        assert f'href="../{level.docs_path}"' in text


def test_readme_maturity_table_is_the_models() -> None:
    match = TABLE_MARKERS.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md lost its maturity-table markers"
    assert match.group(1) == maturity.markdown_table()


def test_generated_readme_links_to_its_level_page(site: Path, render: Render) -> None:
    level = maturity.get_level(maturity.DEFAULT_LEVEL)
    readme = (render(level=level.number) / "README.md").read_text(encoding="utf-8")
    assert level.docs_url in readme
    assert level.docs_url.startswith(maturity.DOCS_URL)
    assert (site / level.docs_path / "index.html").is_file()


# ------------------------------------------------ the level guide each project ships (GUIDE.md)

ARTICLE = re.compile(r'<article class="md-content__inner md-typeset">(.*?)</article>', re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>\s]+)>|href=\"([^\"]+)\"")
FENCED = re.compile(r"^```.*?^```", re.M | re.S)


def visible_text(page_html: str) -> str:
    """What a reader sees of an HTML fragment: its text, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_html)).split())


def link_targets(markdown: str) -> list[str]:
    """Targets of the Markdown links, autolinks and HTML links outside code blocks."""
    return [next(g for g in m.groups() if g) for m in LINK.finditer(FENCED.sub("", markdown))]


@pytest.fixture(scope="module")
def site_markdown() -> Callable[[str], str]:
    """Markdown to HTML with the site's Markdown extensions (mkdocs.yml's)."""
    import markdown
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"))
    return lambda text: markdown.markdown(
        text, extensions=config.markdown_extensions, extension_configs=config.mdx_configs
    )


@pytest.mark.parametrize("level", LEVELS)
def test_generated_guide_reads_as_the_sites_level_page(
    site: Path, render: Render, site_markdown: Callable[[str], str], level: int
) -> None:
    """GUIDE.md is the level's page of the site, generated sections included (the file tree, the
    commands, the ladder...): the same text, whatever its links point to."""
    guide = (render(level=level) / "GUIDE.md").read_text(encoding="utf-8")
    header = f"# Level {maturity.get_level(level).label}\n"
    assert header in guide
    shown = ARTICLE.search(page(site, maturity.get_level(level)))
    assert shown, "the theme's article element was not found"
    page_text = guide[guide.index(header) :]
    assert visible_text(site_markdown(page_text)) == visible_text(shown.group(1))


@pytest.mark.parametrize("level", LEVELS)
def test_links_of_the_generated_readme_and_guide_work_offline(
    site: Path, render: Render, level: int
) -> None:
    """A relative link reaches a file of the project; a link to the site, a page it has. The
    README points to the guide the project ships before the site."""
    project = render(level=level)
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert readme.index("](GUIDE.md)") < readme.index(maturity.get_level(level).docs_url)
    broken = []
    for name in ("README.md", "GUIDE.md"):
        for target in link_targets((project / name).read_text(encoding="utf-8")):
            path = target.partition("#")[0]
            if target.startswith(maturity.DOCS_URL):
                local = site / path.removeprefix(maturity.DOCS_URL)
                if not (local.is_file() or (local / "index.html").is_file()):
                    broken.append(f"{name}: {target} (not on the site)")
            elif not re.match(r"^[a-z][a-z0-9+.-]*:|^#", target) and not (project / path).exists():
                broken.append(f"{name}: {target} (no such file in the project)")
    assert broken == []


def test_generated_guide_names_the_projects_own_package_and_command(render: Render) -> None:
    guide = (render(level=1, project_name="Fare Check") / "GUIDE.md").read_text(encoding="utf-8")
    assert "uv run fare-check " in guide
    assert "src/fare_check" in guide
    assert "taxi-trip-duration" not in guide
    assert "taxi_trip_duration" not in guide


# ------------------------------------------------------- screenshots (scripts/screenshots.py)

SCREENSHOTS = ROOT / "docs" / "images" / "screenshots"
IMAGE_REF = re.compile(r"!\[[^\]]+\]\(([^)\s]+\.png)\)")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a complete PNG (signature, IHDR first, IEND last)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR", "no IHDR chunk"
    assert data[-8:-4] == b"IEND", "truncated: no IEND chunk"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_screenshots_in_the_docs_are_the_scripts_and_valid_pngs() -> None:
    from scripts.screenshots import OUT, SHOTS

    assert OUT == SCREENSHOTS
    referenced: set[Path] = set()
    for page_path in (ROOT / "docs").rglob("*.md"):
        for target in IMAGE_REF.findall(page_path.read_text(encoding="utf-8")):
            image = (page_path.parent / target).resolve()
            assert image.is_file(), f"{page_path.relative_to(ROOT)} shows missing {target}"
            referenced.add(image)
    shots = {shot.name: shot for shot in SHOTS}
    on_disk = {path.name for path in SCREENSHOTS.iterdir()}
    assert on_disk == set(shots), "docs/images/screenshots/ is not what the script takes"
    assert {SCREENSHOTS / name for name in shots} <= referenced, "a screenshot no page shows"
    for name, shot in shots.items():
        data = (SCREENSHOTS / name).read_bytes()
        assert png_size(data) == (shot.width, shot.height), name
        assert len(data) < 300_000, f"{name} is {len(data) // 1024} KB"


@pytest.mark.slow
def test_screenshot_script_photographs_a_generated_project(
    tmp_path: Path, installed_copy: Callable[[int], Path]
) -> None:
    """The whole script on the run's installed level-3 project (`--project`): install, train
    twice, serve, monitor, MLflow UI, Chromium."""
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        cannot_run("needs chromium on PATH (apt-get install chromium)")
    from scripts.screenshots import SHOTS

    project, out = installed_copy(3), tmp_path / "shots"
    script = [sys.executable, str(ROOT / "scripts" / "screenshots.py")]
    proc = subprocess.run(
        [*script, "--project", str(project), "--out", str(out)],
        cwd=ROOT,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    for shot in SHOTS:
        assert png_size((out / shot.name).read_bytes()) == (shot.width, shot.height)
