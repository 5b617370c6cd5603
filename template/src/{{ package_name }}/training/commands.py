"""Level 2's subcommands: ``train`` runs the tracked pipeline, ``predict`` uses the registry,
``prefect-server`` runs the project's local Prefect server (every command then uses it).

Heavy imports (Prefect, MLflow, pandas) happen inside the handlers, after the offline defaults
are set, so ``<slug> --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..cli import add_predict_files, add_rejected_share

COMMANDS = ("train", "predict", "prefect-server")
#: ``config.DEFAULT_CONFIG``, not imported from there: that module imports pandas and sklearn.
DEFAULT_CONFIG = Path("configs/training.yaml")

TRAIN_EPILOG = """\
examples:
  %(prog)s
  %(prog)s --set search.budget=20 --set model.family=hist_gradient_boosting
  %(prog)s --set data.source=data/tlc --set data.train.start=2024-03-01
  make train ARGS="--set search.budget=3"

Runs are tracked in .mlops/mlflow.db (or MLFLOW_TRACKING_URI); see them with `make mlflow-ui`.
The first registered version becomes `champion`, later ones `challenger`.
"""


def config_options(
    parser: argparse.ArgumentParser, default: Path | None, what: str, example: str
) -> None:
    """``--config PATH`` and repeatable ``--set KEY=VALUE``: every YAML-configured command's."""
    parser.add_argument(
        "--config", type=Path, default=default, help=f"{what} (default: %(default)s)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one config value (dotted key, YAML value), e.g. --set {example}",
    )


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--set``: the training pipeline's options."""
    config_options(parser, DEFAULT_CONFIG, "YAML training configuration", "search.budget=20")


def train(args: argparse.Namespace) -> int:
    """Run the flow; exit 2 on a bad configuration or bad data, 3 if tracking fails, 4 when
    training is refused (``trainability``): nothing is registered then."""
    from . import environment

    environment.set_offline_defaults()
    environment.use_local_prefect_server()
    from .config import ConfigError, load_config

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from mlflow.exceptions import MlflowException

    from ..outcomes import ExitCode
    from ..problem import DataValidationError
    from ..trainability import TrainingRefused
    from .flow import training_flow

    environment.hide_tracebacks_of(DataValidationError, MlflowException)
    try:
        result = training_flow(config)
    except TrainingRefused as exc:
        print(f"error: training refused, nothing was registered: {exc}", file=sys.stderr)
        return ExitCode.REFUSED
    except DataValidationError as exc:
        print(f"error: bad data, nothing was registered: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except MlflowException as exc:  # tracking server down or refusing: no alias was moved
        print(f"error: MLflow tracking failed, no alias was moved: {exc}", file=sys.stderr)
        return ExitCode.TRACKING
    metrics = " ".join(f"{name}={value:.3f}" for name, value in result.metrics.items())
    print(f"validation {metrics}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"registered version {result.model_version} as {result.alias!r} (run {result.run_id})")
    return 0


def _load_registered(alias: str, version: int | None) -> tuple[Any, int]:
    """The registered model at ``version`` (if given) or ``alias``, and its version."""
    from .registry import load_model_by_alias, load_model_version

    if version is not None:
        return load_model_version(version), version
    return load_model_by_alias(alias)


def predict(args: argparse.Namespace) -> int:
    """Score a file with a registered model; exit 2 when there is no such model."""
    from . import environment

    environment.set_offline_defaults()
    from ..cli import predictions_output, predictions_written, with_predictions, write_frame
    from ..datasets import read_file
    from .registry import ModelNotFoundError, check_task
    from .tracking import configure_tracking

    configure_tracking()
    frame, _ = read_file(args.input)
    try:
        model, version = _load_registered(args.alias, args.model_version)
        check_task(model, version)
    except ModelNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out, clipped, rejects = with_predictions(model, frame, str(args.input), args.max_rejected_share)
    output = predictions_output(args)
    write_frame(out, output)
    which = f"{args.alias!r} (version {version})"
    if args.model_version is not None:
        which = f"version {version}"
    print(predictions_written(len(out), rejects, output, clipped, f" of {which}"))
    for line in rejects.summary_lines(str(args.input)):
        print(line)
    return 0


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a version number like 3, got {text!r}")
    return int(text)


def prefect_server(args: argparse.Namespace) -> int:
    """Run the project's local Prefect server on 127.0.0.1 until Ctrl-C; say who uses it.
    ``--stop``: stop the one a command started in the background."""
    import os
    import signal

    from . import environment
    from .local_server import (
        exit_on_sigterm,
        healthy,
        local_api_url,
        local_port,
        local_server,
        run_until_stopped,
        stop_detached,
    )

    environment.set_offline_defaults()
    home = Path(os.environ["PREFECT_HOME"]).expanduser()
    if args.stop:
        print(stop_detached(home))
        return 0
    if healthy(local_api_url()):
        print(
            f"a Prefect server already answers at {local_api_url()}: the project's commands use "
            "it (`make prefect-stop` stops one they started in the background)"
        )
        return 0
    exit_on_sigterm()

    def serve_until_stopped() -> None:
        with local_server(home, local_port()) as api_url:
            print(
                f"Prefect server at {api_url} (database and log in {home}); Ctrl-C stops it.\n"
                f"While it runs, the project's commands (train, ...) use it, and their runs stay\n"
                f"visible; for `prefect` commands:\n"
                f"  export PREFECT_API_URL={api_url}",
                flush=True,
            )
            signal.pause()

    return run_until_stopped(serve_until_stopped)


def register(commands: Any) -> None:
    """Add ``train`` and ``predict`` (replacing level 1's) and ``prefect-server`` to the
    project's command line."""
    fit = commands.add_parser(
        "train",
        help="train, track and register a model (Prefect flow, MLflow registry)",
        description="Run the training pipeline on the data configs/training.yaml names: "
        "tune, train, evaluate on the held-out rows, log the run and register the model.",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_arguments(fit)
    fit.set_defaults(handler=train)

    score = commands.add_parser(
        "predict",
        help="predict for a file of inputs with a registered model",
        description="Read a parquet or csv file with the contract's feature columns and write "
        "it back with a predicted_<target> column (a classifier's also with a "
        "probability_<class> column per class), scored by the registry's champion "
        "(or --alias / --version).",
    )
    add_predict_files(score)
    which = score.add_mutually_exclusive_group()
    which.add_argument("--alias", default="champion", help="registry alias (default: %(default)s)")
    which.add_argument(
        "--version", dest="model_version", type=_positive_int, help="registry version number"
    )
    add_rejected_share(score)
    score.set_defaults(handler=predict)

    server = commands.add_parser(
        "prefect-server",
        help="run the project's local Prefect server until Ctrl-C (--stop: stop the "
        "background one)",
        description="Run a Prefect server on 127.0.0.1:4200 (PREFECT_SERVER_API_PORT moves it) "
        "with its database in .mlops/prefect/, in the foreground. Without it, the first command "
        "that runs a flow starts the same server in the background and leaves it up for the "
        "next ones (MLOPS_PREFECT_SERVER=temporary: a temporary server per command instead).",
    )
    server.add_argument(
        "--stop", action="store_true", help="stop the server a command started in the background"
    )
    server.set_defaults(handler=prefect_server)
