"""``python -m <package>.automation COMMAND``: the level-4 loop from the command line.

The project's command line (``<slug> monitor``, ``retrain``, ...) offers the same commands
(``commands``). Heavy libraries are imported by the command that needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli import CommandError, positive_int
from ..outcomes import ExitCode
from ..training.commands import config_options
from . import DEFAULT_POLICY

if TYPE_CHECKING:  # imported by the commands that use them
    from prefect.deployments.runner import RunnerDeployment
    from sqlalchemy import Engine

    from .loop import LoopPaths
    from .policy import RetrainingPolicy


def _verbose_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verbose", action="store_true", help="print the traceback of a failure too"
    )


def _monitor_options(parser: argparse.ArgumentParser) -> None:
    config_options(parser, None, "monitoring config, the policy's when left out", "window.hours=48")
    _verbose_option(parser)


def _deploy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="build them, register nothing")
    parser.add_argument("--pool", help="work pool (default: the policy's schedules.work_pool)")
    parser.add_argument(
        "--working-dir",
        type=Path,
        default=Path.cwd(),
        help="where workers start each run: configs, data, .mlops (default: %(default)s)",
    )


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--app", default=f"{__package__}.service:create_app", help="app factory")


#: ``simulate``'s options: the scenario's field each sets, and its help.
SCENARIO_OPTIONS = {
    "--months": ("months", "months generated, the first two as history (default 8)"),
    "--drift-from": ("drift_from", "the month (1-based) drift starts in (default 5)"),
    "--rows": ("rows", "rows generated per month (default 20000)"),
    "--traffic": ("traffic", "rows served per month (default 3000)"),
    "--budget": ("budget", "hyperparameter trials per training run (default 2)"),
}


def _simulate_options(parser: argparse.ArgumentParser) -> None:
    for flag, (field, help_text) in SCENARIO_OPTIONS.items():
        parser.add_argument(flag, dest=field, type=positive_int, default=None, help=help_text)


def scenario_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario fields ``simulate``'s options set (the others keep their defaults)."""
    found = {field: getattr(args, field, None) for field, _ in SCENARIO_OPTIONS.values()}
    changes = {field: value for field, value in found.items() if value is not None}
    if changes.get("months", 3) < 3:
        raise CommandError("--months: at least 3 (two months of history, then one served)")
    return changes


def _no_options(parser: argparse.ArgumentParser) -> None:
    """A command without options of its own."""


#: Each command: its one-line help, and what adds its options to a parser. The project's
#: command line offers the same commands from this table (``commands``).
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "monitor": ("measure the champion's recent traffic, store the result", _monitor_options),
    "retrain": ("decide from the latest monitoring result; retrain, gate", _verbose_option),
    "rollback": ("move `champion` back to `previous-champion`", _no_options),
    "simulate": ("run the closed loop over generated months, offline", _simulate_options),
    "serve-flows": (
        "run the flows on their schedules in this process (Prefect serve)",
        _no_options,
    ),
    "deploy": ("register the scheduled deployments in a work pool, for workers", _deploy_options),
    "serve": ("run the service with live model swap", _serve_options),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=__package__, description="Monitoring-triggered retraining, promotion and rollback."
    )
    policy_option(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_options) in COMMANDS.items():
        add_options(commands.add_parser(name, help=help_text))
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


def _describe(deployments: Sequence[RunnerDeployment]) -> None:
    for deployment in deployments:
        crons = ", ".join(
            f"{getattr(item.schedule, 'cron', item.schedule)} "
            f"({getattr(item.schedule, 'timezone', None) or 'UTC'})"
            for item in deployment.schedules or []
        )
        print(f"{deployment.flow_name}/{deployment.name}: cron {crons}")


def serve_flows(policy: RetrainingPolicy, policy_path: Path) -> int:
    """Run both flows on their schedules here until Ctrl-C (one machine, no worker).

    Against ``PREFECT_API_URL`` if set, else the project's local server (``make prefect-server``)
    if it runs, else one started for the purpose on the same port (the ephemeral API runs no
    scheduler: its deployments would never run). Ctrl-C stops cleanly.
    """
    from ..training.local_server import (
        exit_on_sigterm,
        healthy,
        local_api_url,
        local_port,
        local_server,
        run_until_stopped,
    )
    from .flows import build_deployments, serve

    deployments = build_deployments(policy, policy_path)
    _describe(deployments)
    api = os.environ.get("PREFECT_API_URL") or (
        local_api_url() if healthy(local_api_url()) else None
    )

    def serve_until_stopped() -> None:
        if api:
            print(f"serving them against {api}; Ctrl-C stops (and pauses their schedules)")
            sys.stdout.flush()
            serve(deployments, api)
            return
        exit_on_sigterm()  # stop the local server on SIGTERM too
        home = Path(os.environ["PREFECT_HOME"]).expanduser()
        with local_server(home, local_port()) as api_url:
            print(
                f"serving them against a local Prefect server, {api_url} (database and log in "
                f"{home}); Ctrl-C stops both",
                flush=True,
            )
            serve(deployments, api_url)

    return run_until_stopped(serve_until_stopped)


def deploy(policy: RetrainingPolicy, args: argparse.Namespace) -> int:
    """Register both deployments in the work pool on the server; say how to start a worker."""
    from .flows import build_deployments, ensure_work_pool

    pool = args.pool or policy.schedules.work_pool
    if not pool:
        print(
            f"error: name a work pool: schedules.work_pool in {args.policy}, or --pool",
            file=sys.stderr,
        )
        return 2
    working_dir = args.working_dir.resolve()
    deployments = build_deployments(policy, args.policy, work_pool=pool, working_dir=working_dir)
    _describe(deployments)
    print(f"work pool: {pool}; runs start in {working_dir}")
    if args.dry_run:
        return 0
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ..training.local_server import healthy, local_api_url

    api = os.environ.get("PREFECT_API_URL") or local_api_url()
    if not healthy(api):
        print(
            f"error: no Prefect server at {api}: start one with `make prefect-server` (or set "
            "PREFECT_API_URL to yours); Prefect's ephemeral API forgets deployments",
            file=sys.stderr,
        )
        return 2
    with temporary_settings(updates={PREFECT_API_URL: api}):
        kind, created = ensure_work_pool(pool)
        print(f"work pool {pool} ({kind}): {'created' if created else 'exists'}")
        for deployment in deployments:
            print(f"registered {deployment.flow_name}/{deployment.name}: {deployment.apply()}")
    print(
        "runs wait for a worker on the pool: start one where the project is installed, e.g.\n"
        f"  cd {working_dir} && PREFECT_API_URL={api} "
        f"uv run --frozen prefect worker start --pool {pool}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch one command (its errors propagate: ``main`` or the project's CLI report them)."""
    from ..training.environment import set_offline_defaults, use_local_prefect_server
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
        from .simulate import Scenario, simulate

        simulate(Scenario(**scenario_changes(args)), policy_path=args.policy)
        return 0
    policy = policy_module.load_policy(args.policy)
    if args.command != "serve-flows":  # which starts the local server itself
        use_local_prefect_server()
    if args.command == "serve-flows":
        return serve_flows(policy, args.policy)
    if args.command == "deploy":
        return deploy(policy, args)
    from ..training.tracking import configure_tracking
    from . import loop

    configure_tracking()
    now, paths = datetime.now(UTC), loop.LoopPaths.default()
    if args.command == "monitor":
        with _one_line_failures(args.verbose):
            return monitor(policy, args, paths, now)
    if args.command == "retrain":
        with _one_line_failures(args.verbose):
            record = loop.run_retraining_check(policy, _engine(), paths, now)
    else:
        record = loop.run_rollback(paths, now)
    code = outcome_code(record.outcome)
    if code == ExitCode.FAILED:
        print(f"error: {record.reason}", file=sys.stderr)
    else:
        print(f"{record.outcome}: {record.reason}")
    print(f"champion: v{record.champion_before} -> v{record.champion_after}")
    return code


def outcome_code(outcome: str) -> ExitCode:
    """The exit code of a decision's outcome (README: exit codes)."""
    from . import audit

    codes = {
        audit.PROMOTED: ExitCode.OK,
        audit.ROLLED_BACK: ExitCode.OK,
        audit.REFUSED: ExitCode.REFUSED,
        audit.SKIPPED: ExitCode.SKIPPED,
        audit.FAILED: ExitCode.FAILED,
        audit.NO_TRAFFIC: ExitCode.NO_TRAFFIC,
    }
    return codes[outcome]


@contextmanager
def _one_line_failures(verbose: bool) -> Iterator[None]:
    """No error lines or tracebacks from Prefect's run loggers or the loop's (unless
    ``verbose``): the command prints one line per failure, and the decision log keeps it."""
    if verbose:
        yield
        return
    import prefect  # noqa: F401  (it configures its loggers on import: filter after)

    from ..training.environment import tracebacks_hidden
    from . import loop

    with tracebacks_hidden(Exception, also=(loop.__name__,), lines=True):
        yield


def monitor(
    policy: RetrainingPolicy, args: argparse.Namespace, paths: LoopPaths, now: datetime
) -> int:
    """Measure the champion's recent traffic: print level 3's alerts; no traffic is recorded."""
    from ..monitoring.config import load_config
    from ..monitoring.flow import alert_lines, versions_text
    from . import loop

    config = load_config(args.config or policy.monitoring.config, tuple(args.overrides))
    try:
        result = loop.run_monitoring(policy, _engine(), paths, now, config=config)
    except loop.NoTrafficError as exc:
        record = loop.record_no_traffic(paths, now, exc)
        print(f"{record.outcome}: {record.reason}")
        return ExitCode.NO_TRAFFIC
    score = "no labels yet" if result.score is None else f"{result.score:.4g}"
    served = {int(version): rows for version, rows in result.extra["served_by"].items()}
    print(
        f"{result.rows} predictions served by {versions_text(served)}: drift share "
        f"{result.drift_share:.2f}, {result.metric} {score} on {result.labelled_rows} labelled "
        "row(s)"
    )
    for line in alert_lines(result.extra["alerts"], result.report):
        print(line)
    return ExitCode.OK


def expected_errors() -> tuple[type[Exception], ...]:
    """Errors reported as one ``error:`` line (exit 2): bad configs, data or a refused rollback."""
    from ..cli import CommandError
    from ..problem import DataValidationError
    from ..serving.store import LogSchemaError
    from ..training.config import ConfigError
    from ..training.registry import ModelNotFoundError
    from .promotion import RollbackError

    return (
        CommandError,
        ConfigError,
        DataValidationError,
        FileNotFoundError,
        LogSchemaError,
        ModelNotFoundError,
        RollbackError,
    )


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
