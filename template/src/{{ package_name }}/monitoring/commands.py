"""Level 3's subcommands of the project's command line: monitor, score, promote, attach-truth,
prune-log.

Heavy libraries (pandas, MLflow, Prefect, Evidently) are imported when a command runs, after
the offline defaults of MLflow and Prefect are set, never when the module is imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cli import CommandError, add_rejected_share, positive_int
from ..training.commands import config_options

if TYPE_CHECKING:
    from .config import MonitoringConfig, Selection

COMMANDS = ("monitor", "score", "promote", "attach-truth", "prune-log")
DEFAULT_CONFIG = Path("configs/monitoring.yaml")
Handler = Callable[[argparse.Namespace], int | None]


def _prepare(args: argparse.Namespace) -> MonitoringConfig:
    """The monitoring configuration (``_reported`` has set up MLflow and Prefect)."""
    from .config import load_config

    config: MonitoringConfig = load_config(args.config, tuple(args.overrides))
    return config


def _selection(args: argparse.Namespace, source: str | None) -> Selection | None:
    """``source`` and ``--start``/``--end`` as a selection (None when none is given)."""
    from pydantic import ValidationError

    from .config import Selection

    if source is None and args.start is None and args.end is None:
        return None
    try:
        return Selection(source=source, start=args.start, end=args.end)
    except ValidationError as exc:
        messages = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise CommandError(f"--start/--end: {messages}") from None


def _reported(handler: Handler, runs_flow: bool = True) -> Handler:
    """Configuration and registry errors as one ``error:`` line (the CLI prints them).

    First the offline defaults of MLflow and Prefect and the project's Prefect server (started
    if ``runs_flow``: the handler runs a Prefect flow), before anything imports Prefect: it reads
    its settings once, on import. Then Prefect, if the handler runs a flow (it configures its
    loggers on import; the filter goes on after). Other handlers do not pay for it.
    """

    def run(args: argparse.Namespace) -> int | None:
        from ..training.config import ConfigError
        from ..training.environment import set_offline_defaults, use_local_prefect_server

        set_offline_defaults()
        use_local_prefect_server(start=runs_flow)
        expected: tuple[type[Exception], ...] = (ConfigError,)
        try:
            if runs_flow:
                import prefect  # noqa: F401

            from ..problem import DataValidationError
            from ..training.environment import tracebacks_hidden
            from ..training.registry import ModelNotFoundError

            expected = (ConfigError, ModelNotFoundError)
            with tracebacks_hidden(*expected, DataValidationError):  # one line, not a traceback
                return handler(args)
        except expected as exc:
            raise CommandError(str(exc)) from None

    return run


def _monitor(args: argparse.Namespace) -> int:
    config = _prepare(args)
    from ..outcomes import ExitCode
    from .flow import monitoring_flow

    result = monitoring_flow(config=config)
    return ExitCode.NO_TRAFFIC if result.rows == 0 else ExitCode.OK


def _score(args: argparse.Namespace) -> None:
    config = _prepare(args)
    from ..datasets import resolve
    from .batch import batch_scoring_flow

    selection = _selection(args, args.source)
    location = args.source or config.data_source()
    resolve(location)  # a missing input is one error line, before the flow starts
    window = None if selection is None else selection.window()
    batch_scoring_flow(location, args.output, window, args.chunk_rows, args.max_rejected_share)


def _promote(args: argparse.Namespace) -> int:
    config = _prepare(args)
    from ..datasets import resolve
    from ..outcomes import ExitCode
    from .promotion import promotion_flow

    selection = _selection(args, args.source) or config.promotion.data
    if selection is not None:  # a missing source is one error line, before the flow starts
        resolve(selection.location(config.data_source()))
    decision = promotion_flow(config=config, data=selection)
    if decision.promoted:
        return ExitCode.OK
    return ExitCode.SKIPPED if decision.challenger_version is None else ExitCode.REFUSED


def _attach_truth(args: argparse.Namespace) -> None:
    config = _prepare(args)
    from ..serving.store import attach_ground_truth, make_engine
    from .ground_truth import describe, truth_from_file

    # a bad file is refused before the log is opened
    items, rejects = truth_from_file(args.file, args.max_rejected_share)
    result = attach_ground_truth(make_engine(config.log_url()), items)
    print(f"{describe(result)} (from {args.file})")
    for line in rejects.summary_lines(str(args.file)):
        print(line)


def _prune_log(args: argparse.Namespace) -> int:
    config = _prepare(args)
    from datetime import UTC, datetime

    from ..outcomes import ExitCode
    from ..serving.store import make_engine
    from .retention import prune_expired

    pruned = prune_expired(make_engine(config.log_url()), config, datetime.now(UTC))
    if pruned is None:
        print("retention.days is null: the prediction log is kept whole, nothing deleted")
        return ExitCode.SKIPPED
    print(f"{pruned.describe()} (retention.days {config.retention.days:g})")
    return ExitCode.OK


def _common(parser: argparse.ArgumentParser) -> None:
    config_options(parser, DEFAULT_CONFIG, "monitoring configuration", "drift.min_rows=200")


def _window(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--start", default=None, help=f"{what} from this event time (inclusive)")
    parser.add_argument("--end", default=None, help=f"{what} before this event time")


def register(commands: Any) -> None:
    """Add level 3's subcommands to the project's command line."""
    monitor = commands.add_parser(
        "monitor",
        help="drift, missing values, the task's metrics and clipped predictions of recent traffic",
        description="Compare the prediction log's recent window with the reference "
        "(configs/monitoring.yaml); write an HTML report and store the metrics.",
    )
    _common(monitor)
    monitor.set_defaults(handler=_reported(_monitor))

    score = commands.add_parser(
        "score",
        help="score a file, folder, glob or time window with the champion",
        description="Write the rows with predicted_<target> (held to the target's range), "
        "the model version and the scoring time to reports/batch/.",
    )
    score.add_argument(
        "source",
        nargs="?",
        default=None,
        help="parquet/csv file, folder or glob (default: the training data's source)",
    )
    _window(score, "score rows")
    score.add_argument("--output", type=Path, default=None, help="parquet file to write")
    score.add_argument(
        "--chunk-rows", type=positive_int, default=100_000, help="rows scored at a time"
    )
    add_rejected_share(score)
    _common(score)
    score.set_defaults(handler=_reported(_score))

    promote = commands.add_parser(
        "promote",
        help="promote the challenger if it beats the champion by the margin",
        description="Score champion and challenger on the same labelled data: --source and/or "
        "--start/--end, else promotion.data, else the labelled traffic of the prediction log.",
    )
    promote.add_argument(
        "--source", default=None, help="labelled data (default: the training data's source)"
    )
    _window(promote, "labelled rows")
    _common(promote)
    promote.set_defaults(handler=_reported(_promote))

    truth = commands.add_parser(
        "attach-truth",
        help="attach ground truth to logged predictions by request id",
        description="Read a parquet/csv file with request_id and the target (or the columns "
        "contract.derive_target reads); bad values are set aside.",
    )
    truth.add_argument("file", type=Path, help="parquet/csv file")
    add_rejected_share(truth)
    _common(truth)
    truth.set_defaults(handler=_reported(_attach_truth, runs_flow=False))

    prune_log = commands.add_parser(
        "prune-log",
        help="delete predictions older than retention.days, and their ground truth",
        description="Delete the prediction log's predictions served more than retention.days "
        "ago (configs/monitoring.yaml) with their ground truth; print how many.",
    )
    _common(prune_log)
    prune_log.set_defaults(handler=_reported(_prune_log, runs_flow=False))
