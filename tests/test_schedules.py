"""Level 4's schedules and the workers that run them name one work pool, in every file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from extensions import maturity
from tests.conftest import Render

LEVELS = [n for n in maturity.LEVEL_NUMBERS if maturity.belongs_at("configs/retraining.yaml", n)]
WORKER_LEVELS = [
    n for n in maturity.LEVEL_NUMBERS if maturity.belongs_at("deploy/k8s/prefect-worker.yaml", n)
]


def worker_pools(project: Path) -> dict[str, str]:
    """The pool each Prefect worker (Kubernetes, compose) polls."""
    k8s = yaml.safe_load((project / "deploy" / "k8s" / "prefect-worker.yaml").read_text())
    compose = yaml.safe_load((project / "deploy" / "compose.yaml").read_text())
    commands = {
        "k8s": k8s["spec"]["template"]["spec"]["containers"][0]["command"],
        "compose": compose["services"]["prefect-worker"]["command"],
    }
    pools = {}
    for where, command in commands.items():
        assert command[:3] == ["prefect", "worker", "start"], (where, command)
        pools[where] = command[command.index("--pool") + 1]
    return pools


@pytest.mark.parametrize("level", WORKER_LEVELS)
def test_deployments_go_to_the_pool_the_workers_poll(render: Render, level: int) -> None:
    project = render(level=level)
    slug = yaml.safe_load((project / ".copier-answers.yml").read_text())["project_slug"]

    pools = worker_pools(project)

    # one pool per project, so that several projects can share a Prefect server
    assert pools == {"k8s": f"{slug}-pool", "compose": f"{slug}-pool"}
    if level in LEVELS:
        policy = yaml.safe_load((project / "configs" / "retraining.yaml").read_text())
        assert policy["schedules"]["work_pool"] == f"{slug}-pool"
