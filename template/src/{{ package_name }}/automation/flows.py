"""Prefect flows of the loop and their scheduled deployments (``make deploy-flows``)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from sqlalchemy import Engine

from ..serving.settings import ServingSettings
from ..serving.store import make_engine
from ..training.environment import set_offline_defaults
from ..training.tracking import configure_tracking
from . import loop
from .policy import DEFAULT_POLICY, RetrainingPolicy, load_policy

MONITORING_DEPLOYMENT = "monitoring-hourly"
RETRAINING_DEPLOYMENT = "retraining-check-daily"


def _setup(policy_path: str) -> tuple[RetrainingPolicy, Engine]:
    """The policy, the tracking store and the prediction log a flow run works with."""
    set_offline_defaults()
    policy = load_policy(policy_path)
    configure_tracking()
    return policy, make_engine(ServingSettings().prediction_log_url)


@flow(name="automation-monitoring")
def monitoring_flow(policy_path: str = str(DEFAULT_POLICY)) -> dict[str, object]:
    """Run level 3's monitoring check on the champion's recent traffic; store the result."""
    policy, engine = _setup(policy_path)
    result = loop.run_monitoring(policy, engine, loop.LoopPaths.default(), datetime.now(UTC))
    return {"drift_share": result.drift_share, "rmse": result.rmse, "report": result.report}


@flow(name="retraining-check")
def retraining_flow(policy_path: str = str(DEFAULT_POLICY)) -> dict[str, object]:
    """Read the latest monitoring result, decide, retrain, gate and promote; record why."""
    policy, engine = _setup(policy_path)
    record = loop.run_retraining_check(policy, engine, loop.LoopPaths.default(), datetime.now(UTC))
    return {"outcome": record.outcome, "reason": record.reason}


def build_deployments(
    policy: RetrainingPolicy, policy_path: Path = DEFAULT_POLICY
) -> list[RunnerDeployment]:
    """The two scheduled deployments, built locally (no server needed to build them)."""
    schedules = policy.schedules
    built = [
        monitoring_flow.to_deployment(
            name=MONITORING_DEPLOYMENT,
            schedule=Cron(schedules.monitoring, timezone=schedules.timezone),
            parameters={"policy_path": str(policy_path)},
            tags=["mlops", "monitoring"],
        ),
        retraining_flow.to_deployment(
            name=RETRAINING_DEPLOYMENT,
            schedule=Cron(schedules.retraining, timezone=schedules.timezone),
            parameters={"policy_path": str(policy_path)},
            tags=["mlops", "retraining"],
        ),
    ]
    deployments = [item for item in built if isinstance(item, RunnerDeployment)]
    assert len(deployments) == len(built), "called from async code: use the async API"
    return deployments
