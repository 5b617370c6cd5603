"""MkDocs hook: renders the docs' generated parts from the maturity model in extensions/.

Pages hold prose plus marker comments such as ``<!-- maturity:file-tree -->``; the hook replaces
each marker with Markdown computed from ``extensions/maturity.py`` and ``template/`` by
``extensions/guide.py``, which also renders each generated project's GUIDE.md from the same
level pages. An unknown marker, a marker on the wrong page or a level without a page fails the
build.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the model and the guide, without installing them
    sys.path.insert(0, str(ROOT))

from extensions import guide, maturity  # noqa: E402


@cache
def site_guide() -> guide.Guide:
    """The generated sections as the site shows them: for copier.yml's default answers."""
    return guide.Guide(maturity, ROOT, guide.default_answers(ROOT, maturity))


def on_config(config: Any) -> Any:
    # The URL is defined once, in the model, because generated READMEs and guides link to it too.
    config["site_url"] = maturity.DOCS_URL
    site_guide.cache_clear()  # `mkdocs serve` rebuilds in one process
    return config


def on_files(files: Any, config: Any) -> Any:
    missing = [
        guide.level_page(lvl.number)
        for lvl in maturity.LEVELS
        if not files.get_file_from_path(guide.level_page(lvl.number))
    ]
    if missing:
        raise PluginError(f"every maturity level needs a page; missing docs/{missing}")
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    try:
        return site_guide().fill(markdown, page.file.src_uri)
    except guide.GuideError as error:
        raise PluginError(str(error)) from error
