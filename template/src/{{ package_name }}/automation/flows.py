"""Prefect flows of the loop and their scheduled deployments.

Two ways to run them on their schedules:

- one machine: ``serve`` runs both in this process (``make automation``), against the server
  of ``PREFECT_API_URL``, else the project's local server on 127.0.0.1:4200 (``make
  prefect-server``, or one ``make automation`` starts for itself; never Prefect's ephemeral
  API, which runs no scheduler);
- scaled out: ``deploy`` registers them on that server in a work pool (``make deploy-flows``),
  and workers polling that pool (``uv run --frozen prefect worker start --pool ...``) run them.

Either way the flows are imported from the installed package (a module path, no code upload),
and each run works in the project directory, where configs, data and ``.mlops/`` are.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType
from sqlalchemy import Engine

from ..monitoring.config import load_config as load_monitoring_config
from ..monitoring.retention import prune_expired
from ..serving.settings import ServingSettings
from ..serving.store import make_engine
from ..training.environment import set_offline_defaults
from ..training.tracking import configure_tracking
from . import loop
from .policy import DEFAULT_POLICY, RetrainingPolicy, load_policy

MONITORING_DEPLOYMENT = "monitoring-hourly"
RETRAINING_DEPLOYMENT = "retraining-check-daily"
# The pool type `deploy` creates when the pool is missing: runs as processes on the worker.
POOL_TYPE = "process"


def _setup(policy_path: str) -> tuple[RetrainingPolicy, Engine]:
    """The policy, the tracking store and the prediction log a flow run works with."""
    set_offline_defaults()
    policy = load_policy(policy_path)
    configure_tracking()
    return policy, make_engine(ServingSettings().prediction_log_url)


@flow(name="automation-monitoring")
def monitoring_flow(policy_path: str = str(DEFAULT_POLICY)) -> dict[str, object]:
    """Run level 3's monitoring check on the champion's recent traffic; store the result; then
    prune the prediction log to its retention (``retention.days`` of the monitoring config).

    No traffic in the window is recorded in the decision log and the run completes."""
    policy, engine = _setup(policy_path)
    paths, now = loop.LoopPaths.default(), datetime.now(UTC)
    try:
        result = loop.run_monitoring(policy, engine, paths, now)
    except loop.NoTrafficError as exc:  # a new service, a quiet night: recorded, not a failure
        record = loop.record_no_traffic(paths, now, exc)
        return {"outcome": record.outcome, "reason": record.reason, **prune_log(policy, engine)}
    return {
        "drift_share": result.drift_share,
        result.metric: result.score,
        "report": result.report,
        **prune_log(policy, engine),
    }


@task(name="prune prediction log", cache_policy=NO_CACHE)
def prune_log(policy: RetrainingPolicy, engine: Engine) -> dict[str, int]:
    """Delete what ``retention`` of the monitoring configuration no longer keeps (nothing when
    its ``days`` is null): the counts of deleted predictions and ground-truth values."""
    config = load_monitoring_config(policy.monitoring.config)
    pruned = prune_expired(engine, config, datetime.now(UTC))
    if pruned is None:
        return {}
    get_run_logger().info(pruned.describe())
    return {"pruned_predictions": pruned.predictions, "pruned_ground_truth": pruned.ground_truth}


@flow(name="retraining-check")
def retraining_flow(policy_path: str = str(DEFAULT_POLICY)) -> dict[str, object]:
    """Read the latest monitoring result, decide, retrain, gate and promote; record why."""
    policy, engine = _setup(policy_path)
    record = loop.run_retraining_check(policy, engine, loop.LoopPaths.default(), datetime.now(UTC))
    return {"outcome": record.outcome, "reason": record.reason}


def build_deployments(
    policy: RetrainingPolicy,
    policy_path: Path = DEFAULT_POLICY,
    *,
    work_pool: str | None = None,
    working_dir: Path | None = None,
) -> list[RunnerDeployment]:
    """The two scheduled deployments, built locally (no server needed to build them).

    Without ``work_pool`` they are for ``serve``; with it, for workers of that pool, which start
    each run in ``working_dir`` (default: the current directory, made absolute).
    """
    schedules = policy.schedules
    job_variables = None
    if work_pool is not None:
        job_variables = {"working_dir": str((working_dir or Path.cwd()).resolve())}
    built = [
        deployed.to_deployment(
            name=name,
            schedule=Cron(cron, timezone=schedules.timezone),
            parameters={"policy_path": str(policy_path)},
            tags=["mlops", tag],
            entrypoint_type=EntrypointType.MODULE_PATH,  # imported from the installed package
            work_pool_name=work_pool,
            job_variables=job_variables,
        )
        for deployed, name, cron, tag in [
            (monitoring_flow, MONITORING_DEPLOYMENT, schedules.monitoring, "monitoring"),
            (retraining_flow, RETRAINING_DEPLOYMENT, schedules.retraining, "retraining"),
        ]
    ]
    deployments = [item for item in built if isinstance(item, RunnerDeployment)]
    assert len(deployments) == len(built), "called from async code: use the async API"
    return deployments


def ensure_work_pool(name: str) -> tuple[str, bool]:
    """The pool's type, and whether it was created now (as a ``process`` pool)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            return client.read_work_pool(name).type, False
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            pool = WorkPoolCreate(name=name, type=POOL_TYPE, base_job_template=template)
            return client.create_work_pool(pool).type, True


def serve(deployments: list[RunnerDeployment], api_url: str | None = None) -> None:
    """Run ``deployments`` on their schedules in this process until Ctrl-C or SIGTERM.

    Against ``api_url`` if given (else the configured API). Each flow run starts as a child
    process; the schedules are paused again on shutdown.
    """
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    updates = {PREFECT_API_URL: api_url} if api_url else {}
    with temporary_settings(updates=updates):
        prefect_serve(*deployments, print_starting_message=False)
