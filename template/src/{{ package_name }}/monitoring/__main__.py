"""``python -m <package>.monitoring COMMAND``: monitor, score, promote, attach ground truth."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..contract import DataValidationError
from ..training.registry import ModelNotFoundError
from .config import DEFAULT_CONFIG, ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="(default: %(default)s)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("monitor", help="drift, missing values and RMSE of recent traffic")
    score = commands.add_parser("score", help="score a file or a month with the champion")
    score.add_argument("source", help="parquet/csv file, or a month YYYY-MM of data/")
    score.add_argument("--output", type=Path, default=None, help="parquet file to write")
    promote = commands.add_parser("promote", help="promote the challenger if it is better")
    promote.add_argument(
        "--month", default=None, help="evaluate on this labelled month of data/ (default: the log)"
    )
    truth = commands.add_parser("attach-truth", help="attach actual durations by request id")
    truth.add_argument("file", type=Path, help="parquet/csv with request_id and duration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "monitor":
            from .flow import monitoring_flow

            monitoring_flow(config=config)
        elif args.command == "score":
            from .batch import batch_scoring_flow

            batch_scoring_flow(args.source, args.output, config.reference.data_dir)
        elif args.command == "promote":
            from .promotion import promotion_flow

            promotion_flow(str(args.config), args.month)
        else:
            from ..serving.store import make_engine
            from .ground_truth import attach_from_file

            count = attach_from_file(make_engine(config.log_url()), args.file)
            print(f"attached {count} actual durations from {args.file}")
    except (ConfigError, DataValidationError, ModelNotFoundError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
