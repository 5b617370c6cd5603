"""``python -m <package>.training``: run the training flow (what ``make train`` calls)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import environment

environment.set_offline_defaults()

from ..contract import DataValidationError  # noqa: E402
from .config import DEFAULT_CONFIG, ConfigError, load_config  # noqa: E402

EPILOG = """\
examples:
  python -m %(prog)s
  python -m %(prog)s --set search.budget=20 --set model.family=hist_gradient_boosting
  python -m %(prog)s --set 'data.train_months=[2024-01, 2024-02]' \\
      --set data.validation_month=2024-03
  make train ARGS="--set search.budget=3"

Runs are tracked in .mlops/mlflow.db (or MLFLOW_TRACKING_URI); see them with `make mlflow-ui`.
"""


def build_parser() -> argparse.ArgumentParser:
    """Command line of the training pipeline."""
    parser = argparse.ArgumentParser(
        prog=__package__,
        description="Train, track and register a trip-duration model (Prefect + MLflow).",
        epilog=EPILOG % {"prog": __package__},
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="YAML training configuration (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (dotted key, YAML value); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the flow; exit 2 on a bad configuration or bad data, 3 if tracking fails."""
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from mlflow.exceptions import MlflowException

    from .flow import training_flow

    environment.hide_tracebacks_of(DataValidationError, MlflowException)
    try:
        result = training_flow(config)
    except DataValidationError as exc:
        print(f"error: bad data, nothing was registered: {exc}", file=sys.stderr)
        return 2
    except MlflowException as exc:  # tracking server down or refusing: no alias was moved
        print(f"error: MLflow tracking failed, no alias was moved: {exc}", file=sys.stderr)
        return 3
    metrics = " ".join(f"{name}={value:.3f}" for name, value in result.metrics.items())
    print(f"validation {metrics}")
    print(f"registered version {result.model_version} as {result.alias!r} (run {result.run_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
