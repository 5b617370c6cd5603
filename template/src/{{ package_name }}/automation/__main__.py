"""``python -m <package>.automation COMMAND``: the level-4 loop from the command line.

The project's command line (``<slug> monitor``, ``retrain``, ...) offers the same commands
(``commands``). Heavy libraries are imported by the command that needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import DEFAULT_POLICY

if TYPE_CHECKING:
    from sqlalchemy import Engine


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=__package__, description="Monitoring-triggered retraining, promotion and rollback."
    )
    policy_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("monitor", help="measure the champion's recent traffic, store the result")
    commands.add_parser("retrain", help="decide from the latest monitoring result; retrain, gate")
    commands.add_parser("rollback", help="move `champion` back to `previous-champion`")
    commands.add_parser("simulate", help="run the closed loop over generated months, offline")
    deploy = commands.add_parser("deploy", help="register the scheduled Prefect deployments")
    deploy.add_argument("--dry-run", action="store_true", help="build them, register nothing")
    serve = commands.add_parser("serve", help="run the service with live model swap")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--app", default=f"{__package__}.service:create_app", help="app factory")
    return parser


def policy_option(parser: argparse.ArgumentParser) -> None:
    """``--policy``: every command reads the retraining policy."""
    parser.add_argument(
        "--policy",
        type=Path,
        default=DEFAULT_POLICY,
        help="retraining policy (default: %(default)s)",
    )


def _engine() -> Engine:
    """The prediction log (one made for another contract is an error)."""
    from ..serving.settings import ServingSettings
    from ..serving.store import make_engine

    return make_engine(ServingSettings().prediction_log_url)


def run(args: argparse.Namespace) -> int:
    """Dispatch one command (its errors propagate: ``main`` or the project's CLI report them)."""
    from ..training.environment import set_offline_defaults
    from . import policy as policy_module

    set_offline_defaults()  # before MLflow or Prefect is imported
    if args.command == "serve":
        import uvicorn

        _engine().dispose()  # a log made for another contract: one error line, not a traceback
        uvicorn.run(
            args.app,
            factory=True,
            host=args.host,
            port=args.port,
            access_log=False,
        )
        return 0
    if args.command == "simulate":
        from .simulate import simulate

        simulate(policy_path=args.policy)
        return 0
    policy = policy_module.load_policy(args.policy)
    if args.command == "deploy":
        from .flows import build_deployments

        deployments = build_deployments(policy, args.policy)
        for deployment in deployments:
            cron = ", ".join(
                str(getattr(item.schedule, "cron", item.schedule))
                for item in deployment.schedules or []
            )
            print(f"{deployment.flow_name}/{deployment.name}: cron {cron}")
        if args.dry_run:
            return 0
        if not os.environ.get("PREFECT_API_URL"):
            print(
                "error: set PREFECT_API_URL to a Prefect server (e.g. http://127.0.0.1:4200/api); "
                "the local ephemeral API forgets deployments",
                file=sys.stderr,
            )
            return 2
        for deployment in deployments:
            print(f"registered {deployment.name}: {deployment.apply()}")
        return 0
    from ..training.tracking import configure_tracking
    from . import loop

    configure_tracking()
    now, paths = datetime.now(UTC), loop.LoopPaths.default()
    if args.command == "monitor":
        result = loop.run_monitoring(policy, _engine(), paths, now)
        print(f"drift share {result.drift_share:.2f}, RMSE {result.rmse}, report {result.report}")
        return 0
    if args.command == "retrain":
        record = loop.run_retraining_check(policy, _engine(), paths, now)
    else:
        record = loop.run_rollback(paths, now)
    print(f"{record.outcome}: {record.reason}")
    print(f"champion: v{record.champion_before} -> v{record.champion_after}")
    return 0


def expected_errors() -> tuple[type[Exception], ...]:
    """Errors reported as one ``error:`` line (exit 2): bad configs, data or a refused rollback."""
    from ..cli import CommandError
    from ..problem import DataValidationError
    from ..training.config import ConfigError
    from .promotion import RollbackError

    return CommandError, ConfigError, DataValidationError, RollbackError, FileNotFoundError


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 2 on a bad policy or configuration, unusable data or a refused rollback, with why."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except expected_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
