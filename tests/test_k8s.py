"""Kubernetes manifests (level 3+): valid against the Kubernetes schemas, offline, and consistent.

The schemas ship inside `kubernetes-validate` (no download at run time). Strict mode rejects
unknown fields, so a misspelt key fails here rather than on a cluster.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from extensions import maturity
from tests.conftest import Render, cannot_run

#: The Kubernetes version the manifests are checked against (oldest still widely supported).
KUBERNETES_VERSION = "1.31"
K8S_LEVELS = [
    n for n in maturity.LEVEL_NUMBERS if maturity.belongs_at("deploy/k8s/service.yaml", n)
]
SERVICE = "prediction-service"


def k8s_dir(render: Render, level: int) -> Path:
    return render(level=level) / "deploy" / "k8s"


def manifests(folder: Path) -> list[Path]:
    return sorted(path for path in folder.glob("*.yaml") if path.name != "kustomization.yaml")


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def validate(resource: dict, where: str) -> None:
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        error = exc.caught
        location = "/".join(str(part) for part in error.absolute_path)
        pytest.fail(f"{where}: {resource['kind']} at /{location}: {error.message}")


def by_kind(folder: Path) -> dict[tuple[str, str], dict]:
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in manifests(folder)
        for doc in documents(path)
    }


def containers(resource: dict) -> list[dict]:
    return resource["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("level", K8S_LEVELS)
def test_every_manifest_is_valid_for_the_pinned_kubernetes(render: Render, level: int) -> None:
    folder = k8s_dir(render, level)
    checked = 0
    for path in manifests(folder):
        for doc in documents(path):
            validate(doc, path.name)
            checked += 1
    assert checked >= 7


@pytest.mark.parametrize("level", K8S_LEVELS)
def test_kustomization_lists_exactly_the_manifests(render: Render, level: int) -> None:
    folder = k8s_dir(render, level)
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [path.name for path in manifests(folder)]


@pytest.mark.parametrize("level", K8S_LEVELS)
def test_service_is_probed_on_its_own_endpoints_and_hardened(render: Render, level: int) -> None:
    project = render(level=level)
    resources = by_kind(project / "deploy" / "k8s")
    app = next(project.glob("src/*/serving/app.py")).read_text()
    routes = set(re.findall(r'@app\.get\("([^"]+)"', app))
    (service,) = containers(resources["Deployment", SERVICE])
    assert service["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert service["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"/health/ready", "/health/live"} <= routes
    port = service["ports"][0]["containerPort"]
    assert f'"--port", "{port}"' in (project / "deploy" / "Dockerfile").read_text()
    hpa = resources["HorizontalPodAutoscaler", SERVICE]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": SERVICE,
    }
    for name in (SERVICE, "prefect-worker"):
        deployment = resources["Deployment", name]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"requests", "limits"} <= container["resources"].keys()
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("level", K8S_LEVELS)
def test_settings_are_the_documented_ones_and_secrets_are_references(
    render: Render, level: int
) -> None:
    project = render(level=level)
    documented = set(
        re.findall(r"^# ?([A-Z][A-Z0-9_]+)=", (project / ".env.example").read_text(), re.M)
    )
    resources = by_kind(project / "deploy" / "k8s")
    config_maps = [doc for (kind, _), doc in resources.items() if kind == "ConfigMap"]
    keys = {key for doc in config_maps for key in doc["data"]}
    assert keys <= documented, f"not in .env.example: {sorted(keys - documented)}"
    assert {"MLFLOW_TRACKING_URI", "SERVING_CHALLENGER_SHARE"} <= keys
    assert "SERVING_PREDICTION_LOG_URL" not in keys  # it holds a password: a secret
    assert not [kind for kind, _ in resources if kind == "Secret"], "no secret in a generated file"
    for name in (SERVICE, "prefect-worker"):
        (container,) = containers(resources["Deployment", name])
        env = {item["name"]: item for item in container.get("env", [])}
        assert env["SERVING_PREDICTION_LOG_URL"]["valueFrom"]["secretKeyRef"]["name"] == "secrets"


@pytest.mark.parametrize("level", K8S_LEVELS)
def test_the_kustomize_build_is_valid(render: Render, level: int) -> None:
    if shutil.which("kubectl") is None:
        cannot_run("kubectl (its `kustomize`) is not on PATH")
    folder = k8s_dir(render, level)
    built = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(built) if doc]
    for doc in docs:
        validate(doc, "kustomize build")
    slug = yaml.safe_load((folder / "kustomization.yaml").read_text())["namespace"]
    namespaced = [doc for doc in docs if doc["kind"] != "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {slug}
    deployment = next(
        doc for doc in docs if doc["metadata"]["name"] == SERVICE and doc["kind"] == "Deployment"
    )
    (service,) = containers(deployment)
    assert service["image"] == f"{slug}-service:latest"
    live_swap = any(cap.key == "automated_deployment" for cap in maturity.capabilities_at(level))
    assert ("automation.service:create_app" in " ".join(service.get("args", []))) == live_swap
