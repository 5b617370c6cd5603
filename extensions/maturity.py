"""The MLOps maturity model, as data: the single source of truth of this template.

copier.yml (`_exclude`, messages), every template file (through the context hook
below), the template's own tests and the docs all read this module. Nothing else
decides which level has which capability or which files.

Paths are patterns in gitignore syntax over the *generated* project's paths, so
`src/*/training/` means the `training` package whatever the package is called.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import keyword
import re
import sys
from dataclasses import dataclass, field
from datetime import date
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from jinja2 import Environment


@dataclass(frozen=True)
class Capability:
    key: str
    label: str


@dataclass(frozen=True)
class Level:
    number: int
    name: str
    summary: str
    capabilities: tuple[Capability, ...]
    # Paths this level adds to the project.
    paths: tuple[str, ...]
    # Paths of lower levels that this level replaces (removed from this level on).
    retires: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return f"{self.number} - {self.name}"

    @property
    def docs_path(self) -> str:
        """This level's page in the docs site (source: docs/levels/level-N.md)."""
        return f"levels/level-{self.number}/"

    @property
    def docs_url(self) -> str:
        return DOCS_URL + self.docs_path


# Where the docs site (mkdocs.yml, docs/) is published; generated READMEs link to their level.
DOCS_URL = "https://mlops-maturity-template.github.io/mlops-maturity-template/"

# How a project runs Copier to change level: uv fetches Copier and the extensions the template
# loads, so the command works from any project folder with uv alone (READMEs, messages, docs).
UPDATE_COMMAND = (
    "uvx --from copier --with copier-template-extensions copier update --trust --defaults"
)
# A level change keeps the template version the project has (`:current:`): without it Copier
# takes the newest tag, and a project generated from a newer commit (`--vcs-ref HEAD`) would be
# refused as a downgrade. A version change is UPDATE_COMMAND with `--vcs-ref vX.Y.Z`.
LEVEL_REF_FLAG = "--vcs-ref=:current:"
LEVEL_COMMAND = f"{UPDATE_COMMAND} {LEVEL_REF_FLAG}"
# The docs page about changing level (the level guard's messages point to it).
CHANGING_LEVEL_URL = DOCS_URL + "changing-level/"

# The example's contract as the template ships it: `contract draft` replaces it unasked only
# while it is unedited (the generated package compares its SHA-256 with this file's).
# The template repository this file belongs to (copier loads it from its copy of the repository).
TEMPLATE_REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONTRACT = TEMPLATE_REPO / "template/src/{{ package_name }}/contract.py"
# Renders the level guides (the docs site's level pages and each project's GUIDE.md).
GUIDE_MODULE = Path(__file__).resolve().with_name("guide.py")

# Files every level has. Their content grows in stable, per-capability blocks; GUIDE.md is the
# level's guide (docs/levels/level-N.md, rendered by extensions/guide.py), replaced per level.
SHARED_PATHS: tuple[str, ...] = (
    "README.md",
    "GUIDE.md",
    "LICENSE",
    ".gitignore",
    ".copier-answers.yml",
)

LEVELS: tuple[Level, ...] = (
    Level(
        number=0,
        name="No MLOps",
        summary="A notebook that explores the data, trains a model and saves it by hand.",
        capabilities=(
            Capability("notebook", "exploratory notebook"),
            Capability("manual_training", "manual training and model file"),
        ),
        paths=(
            "notebooks/",
            "data/",
            "models/",
            "requirements.txt",
        ),
    ),
    Level(
        number=1,
        name="DevOps, no MLOps",
        summary="An installable, tested package with a CLI, linters, CI and a container image.",
        capabilities=(
            Capability("package", "installable package (src layout, uv)"),
            Capability("data_contract", "data contract and validation"),
            Capability("tests", "unit and end-to-end tests"),
            Capability("ci_cd", "CI/CD workflows"),
            Capability("containers", "container image"),
        ),
        paths=(
            "pyproject.toml",
            "uv.lock",
            "Makefile",
            ".python-version",
            ".pre-commit-config.yaml",
            ".dockerignore",
            "Dockerfile",
            ".github/",
            "src/",
            "tests/",
            "scripts/",
        ),
        retires=("requirements.txt",),
    ),
    Level(
        number=2,
        name="Automated training",
        summary="A tracked training pipeline that ends in a versioned model in a registry.",
        capabilities=(
            Capability("training_pipeline", "training pipeline (Prefect)"),
            Capability("experiment_tracking", "experiment tracking (MLflow)"),
            Capability("model_registry", "model registry with aliases"),
        ),
        paths=(
            ".env.example",
            "configs/",
            "src/*/training/",
            "tests/training/",
        ),
    ),
    Level(
        number=3,
        name="Automated deployment",
        summary="Served models with A/B testing, monitoring, batch scoring and gated promotion.",
        capabilities=(
            Capability("serving", "online serving (FastAPI)"),
            Capability("ab_testing", "A/B testing of champion and challenger"),
            Capability("monitoring", "monitoring (Evidently, Prometheus, Grafana)"),
            Capability("batch_scoring", "batch scoring"),
            Capability("gated_promotion", "gated champion/challenger promotion"),
        ),
        paths=(
            "configs/monitoring.yaml",
            "src/*/serving/",
            "src/*/monitoring/",
            "tests/serving/",
            "tests/monitoring/",
            "deploy/",
            ".github/workflows/cd.yml",
        ),
    ),
    Level(
        number=4,
        name="Full MLOps automation",
        summary="Monitoring-triggered retraining, automatic promotion and live model swap.",
        capabilities=(
            Capability("automated_retraining", "monitoring-triggered retraining"),
            Capability("automated_deployment", "automatic promotion and live model swap"),
        ),
        paths=(
            "configs/retraining.yaml",
            "deploy/k8s/automation.yaml",
            "src/*/automation/",
            "tests/automation/",
            ".github/workflows/retrain.yml",
        ),
    ),
)

LEVEL_NUMBERS: tuple[int, ...] = tuple(level.number for level in LEVELS)
DEFAULT_LEVEL = 1


def get_level(number: int) -> Level:
    """Return the level `number`, with a clear error for anything else."""
    for level in LEVELS:
        if level.number == number:
            return level
    raise ValueError(f"level must be one of {list(LEVEL_NUMBERS)}, got {number!r}")


def capabilities_at(number: int) -> list[Capability]:
    """Every capability a project at `number` has (levels are cumulative)."""
    return [cap for level in LEVELS[: get_level(number).number + 1] for cap in level.capabilities]


def excluded_paths(number: int) -> list[str]:
    """Patterns a project at `number` must not contain: higher levels' and retired paths.

    Folder patterns lose their trailing slash so that copier skips the folder itself, not
    only its files (it would otherwise leave the folder behind, empty).
    """
    get_level(number)
    above = [path for level in LEVELS if level.number > number for path in level.paths]
    retired = [path for level in LEVELS if level.number <= number for path in level.retires]
    return [path.rstrip("/") for path in above + retired]


def _matches(path: str, pattern: str) -> bool:
    """gitignore-style match for the patterns used above (anchored, `dir/` = subtree)."""
    if pattern.endswith("/"):
        return fnmatch(path + "/", pattern + "*") or fnmatch(path, pattern + "*")
    return fnmatch(path, pattern) and path.count("/") == pattern.count("/")


def owner_of(path: str) -> Level | None:
    """The level that introduces generated `path` (None for shared files).

    The most specific owner wins: `configs/` belongs to level 2, `configs/serving.yaml` to 3.
    """
    if path in SHARED_PATHS:
        return None
    for level in reversed(LEVELS):
        if any(_matches(path, pattern) for pattern in level.paths):
            return level
    raise LookupError(f"{path!r} belongs to no level in extensions/maturity.py")


def belongs_at(path: str, number: int) -> bool:
    """Whether generated `path` is part of a project at level `number`."""
    owner = owner_of(path)
    if owner is not None and owner.number > number:
        return False
    return not any(
        _matches(path, pattern)
        for level in LEVELS
        if level.number <= number
        for pattern in level.retires
    )


# The answers file's template name in template/ and tool caches a developer may leave there
# (copier.yml excludes them too).
ANSWERS_FILE_TEMPLATE = "{{_copier_conf.answers_file}}.jinja"
CACHES = {"__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache"}


def template_output_paths(template: Path, package_name: str) -> set[str]:
    """Every path the template tree `template` can render (any level), with names rendered."""
    paths = set()
    for file in template.rglob("*"):
        if not file.is_file() or CACHES.intersection(file.parts):
            continue
        rel = file.relative_to(template).as_posix()
        if rel == ANSWERS_FILE_TEMPLATE:
            rel = ".copier-answers.yml"
        rel = rel.replace("{{ package_name }}", package_name).removesuffix(".jinja")
        paths.add(rel)
    return paths


def expected_paths(template: Path, number: int, package_name: str) -> set[str]:
    """The exact file set of a project at level `number` rendered from `template`."""
    return {p for p in template_output_paths(template, package_name) if belongs_at(p, number)}


def template_context(number: int) -> dict[str, Any]:
    """What every template sees: the model, the chosen level, and `has_<capability>` flags."""
    level = get_level(number)
    have = {cap.key for cap in capabilities_at(number)}
    flags = {f"has_{cap.key}": cap.key in have for lvl in LEVELS for cap in lvl.capabilities}
    return {
        "maturity_levels": LEVELS,
        "docs_url": DOCS_URL,
        "maturity_level": level,
        "next_maturity_level": LEVELS[number + 1] if number + 1 < len(LEVELS) else None,
        "level_capabilities": capabilities_at(number),
        "level_excluded_paths": "\n".join(excluded_paths(number)),
        "update_command": UPDATE_COMMAND,
        "level_command": LEVEL_COMMAND,
        "level_ref_flag": LEVEL_REF_FLAG,
        "changing_level_url": CHANGING_LEVEL_URL,
        "shipped_contract_sha256": shipped_contract_sha256(),
        **flags,
    }


@cache
def shipped_contract_sha256() -> str:
    """The SHA-256 of the example's contract.py as this template renders it (unchanged)."""
    return hashlib.sha256(SHIPPED_CONTRACT.read_bytes()).hexdigest()


@cache
def _hook_context(number: int) -> dict[str, Any]:
    """`template_context`, computed once per level (copier renders ~1,000 strings per copy)."""
    return template_context(number)


def _context_hook(context: dict[str, Any]) -> None:
    """Copier context hook: exposes the model to copier.yml and every template."""
    context.setdefault("copyright_year", date.today().year)  # the LICENSE's copyright line
    level = context.get("level")
    if isinstance(level, int) and level in LEVEL_NUMBERS:
        context.update(_hook_context(level))


EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def to_identifier(text: str) -> str:
    """`"Taxi Trip-Duration 2"` -> `"taxi_trip_duration_2"` (a default package name)."""
    name = re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")
    return f"_{name}" if name[:1].isdigit() else name


def is_package_name(text: str) -> bool:
    """A lower-case Python identifier that is not a keyword."""
    return text.isidentifier() and text == text.lower() and not keyword.iskeyword(text)


def _install_filters(environment: Environment) -> None:
    """Jinja filters and tests for copier.yml's defaults and validators; `level_guide()`."""
    from jinja2 import pass_context

    environment.filters["to_identifier"] = to_identifier
    # A quoted TOML/YAML-safe string: JSON string syntax is valid in both.
    environment.filters["quoted"] = lambda text: json.dumps(str(text), ensure_ascii=False)
    environment.tests["package_name"] = is_package_name
    environment.tests["email"] = lambda text: bool(EMAIL_PATTERN.match(str(text)))
    environment.tests["slug"] = lambda text: bool(SLUG_PATTERN.match(str(text)))
    environment.globals["level_guide"] = pass_context(_level_guide)


def _guide_module() -> ModuleType:
    """extensions/guide.py beside this file, however this file was loaded (copier loads it by
    path, as `copier_template_extensions.maturity`; the docs and tests as `extensions.maturity`).
    """
    if __name__ == "extensions.maturity":
        return importlib.import_module("extensions.guide")
    spec = importlib.util.spec_from_file_location(f"{__name__}_guide", GUIDE_MODULE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {GUIDE_MODULE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _level_guide(context: Any) -> str:
    """Jinja global `level_guide()`: the GUIDE.md of the project being rendered (its level's
    page of the docs, with its answers)."""
    guide = _guide_module()
    answers = dict(context.get_all())
    return str(
        guide.Guide(sys.modules[__name__], TEMPLATE_REPO, answers).project_guide(answers["level"])
    )


def _compile_once(environment: Environment) -> None:
    """Compile each distinct template source once per environment.

    Copier renders every part of every template path (those a level excludes too) and the
    answers-file name with `from_string`, which compiles afresh each time: ~1,000
    compilations of ~150 distinct strings per copy, three times over in an update. Rendering
    is unchanged: every call still gets a new Template (own globals) from the cached code,
    and the extensions' `preprocess` hooks still run (copier's `yield` tag resets there).
    Copier makes one environment per run and never overlays it.
    """
    compile_source = environment.compile
    compiled: dict[tuple[str, str | None, str | None, bool, bool], Any] = {}

    def compile_cached(
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if not isinstance(source, str):
            return compile_source(source, name, filename, raw, defer_init)
        key = (source, name, filename, raw, defer_init)
        if key in compiled:
            environment.preprocess(source, name, filename)
            return compiled[key]
        compiled[key] = code = compile_source(source, name, filename, raw, defer_init)
        return code

    environment.compile = compile_cached  # type: ignore[method-assign]


def _jinja_extensions() -> dict[str, type]:
    """`MaturityContext` and `MaturityFilters`, built on first use.

    Importing the model then needs neither Jinja nor copier: the level guard imports it in
    a fresh Python on every `copier update`, where copier-template-extensions alone (it
    imports all of copier) took about a second.
    """
    from jinja2.ext import Extension

    try:  # copier loads this file through copier-template-extensions; the docs need not.
        from copier_template_extensions import ContextHook
    except ImportError:  # pragma: no cover - the tests and docs use the model without copier
        ContextHook = object

    class MaturityContext(ContextHook):  # type: ignore[misc,valid-type]
        """Copier context hook: exposes the model to copier.yml and every template."""

        def hook(self, context: dict[str, Any]) -> None:
            _context_hook(context)

    class MaturityFilters(Extension):
        """Jinja filters and tests for copier.yml, and one compilation per template source."""

        def __init__(self, environment: Environment) -> None:
            super().__init__(environment)
            _install_filters(environment)
            _compile_once(environment)

    return {cls.__name__: cls for cls in (MaturityContext, MaturityFilters)}


_EXTENSIONS: dict[str, type] = {}


def __getattr__(name: str) -> type:
    """Module attributes `MaturityContext` and `MaturityFilters` (copier.yml names them)."""
    if name in ("MaturityContext", "MaturityFilters"):
        if not _EXTENSIONS:
            _EXTENSIONS.update(_jinja_extensions())
        return _EXTENSIONS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def markdown_table() -> str:
    """The maturity ladder as a Markdown table (README and docs embed it verbatim)."""
    rows = ["| level | name | the project | capabilities added |", "|---|---|---|---|"]
    for level in LEVELS:
        adds = ", ".join(cap.label for cap in level.capabilities)
        rows.append(f"| {level.number} | {level.name} | {level.summary} | {adds} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
