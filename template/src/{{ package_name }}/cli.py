"""Command line: generate synthetic data, train a model, predict durations."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .contract import DataValidationError, load_month, month_file, read_trips
from .features import FAMILIES
from .model import ModelFileError, evaluate, load_model, save_model, train
from .predict import predict
from .synthetic import write_month

DEFAULT_MODEL_PATH = Path("models/model.joblib")
DEFAULT_DATA_DIR = Path("data")


def _year_month(text: str) -> tuple[int, int]:
    """Parse ``YYYY-MM`` for argparse."""
    try:
        year, month = (int(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {text!r}") from None
    if not 1 <= month <= 12:
        raise argparse.ArgumentTypeError(f"month must be 01..12, got {text!r}")
    return year, month


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _drift(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"drift must be in [0, 1], got {text}")
    return value


def _params(text: str) -> dict[str, Any]:
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--params must be a JSON object ({exc})") from None
    if not isinstance(params, dict):
        raise argparse.ArgumentTypeError("--params must be a JSON object like '{\"alpha\": 0.5}'")
    return params


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="folder of TLC files like yellow_tripdata_2024-01.parquet (default: %(default)s)",
    )
    parser.add_argument(
        "--rows",
        type=_positive_int,
        default=100_000,
        help="trips per synthetic month (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with its three subcommands."""
    # The console script shows its own name; `python -m` would otherwise show "__main__.py".
    prog = f"python -m {__package__}" if sys.argv[0].endswith("__main__.py") else None
    parser = argparse.ArgumentParser(
        prog=prog, description="Predict NYC taxi trip duration (minutes)."
    )
    parser.add_argument("--version", action="version", version=f"{__package__} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate-data",
        help="write synthetic months in the TLC schema",
        description="Write seeded synthetic trips as TLC-named parquet files. "
        "Existing files (such as real TLC downloads) are kept unless --overwrite is given.",
    )
    _add_data_options(generate)
    generate.add_argument("--year", type=int, default=2024, help="year (default: %(default)s)")
    generate.add_argument(
        "--months", type=int, nargs="+", default=[1, 2], help="months (default: 1 2)"
    )
    generate.add_argument(
        "--drift", type=_drift, default=0.0, help="distribution shift in [0, 1] (default: 0)"
    )
    generate.add_argument("--overwrite", action="store_true", help="replace existing files")

    fit = commands.add_parser(
        "train",
        help="train on one month, report metrics on another",
        description="Train on --train-month and evaluate on --val-month. Missing month files "
        "are generated synthetically first.",
    )
    _add_data_options(fit)
    fit.add_argument(
        "--train-month", type=_year_month, default=(2024, 1), help="YYYY-MM (default: 2024-01)"
    )
    fit.add_argument(
        "--val-month", type=_year_month, default=(2024, 2), help="YYYY-MM (default: 2024-02)"
    )
    fit.add_argument(
        "--family", choices=FAMILIES, default="linear", help="model family (default: %(default)s)"
    )
    fit.add_argument(
        "--params", type=_params, default=None, help="regressor parameters as a JSON object"
    )
    fit.add_argument(
        "--model-path",
        type=Path,
        default=DEFAULT_MODEL_PATH,
        help="where to save the model (default: %(default)s)",
    )

    score = commands.add_parser(
        "predict",
        help="predict durations for a file of trips",
        description="Read trips (parquet or csv with PULocationID, DOLocationID, trip_distance) "
        "and write them with a predicted_duration column.",
    )
    score.add_argument(
        "--model-path", type=Path, default=DEFAULT_MODEL_PATH, help="(default: %(default)s)"
    )
    score.add_argument("--input", type=Path, required=True, help="parquet or csv file of trips")
    score.add_argument(
        "--output",
        type=Path,
        default=Path("predictions.parquet"),
        help="parquet or csv file to write (default: %(default)s)",
    )
    return parser


def _generate(args: argparse.Namespace) -> None:
    for month in args.months:
        path = month_file(args.data_dir, args.year, month)
        if path.exists() and not args.overwrite:
            print(f"kept existing {path} (use --overwrite to replace it)")
            continue
        write_month(args.data_dir, args.year, month, args.rows, seed=args.seed, drift=args.drift)
        print(f"wrote {path} ({args.rows} synthetic trips, drift={args.drift:g})")


def _train(args: argparse.Namespace) -> None:
    months = []
    for year, month in (args.train_month, args.val_month):
        path = month_file(args.data_dir, year, month)
        if not path.exists():
            write_month(args.data_dir, year, month, args.rows, seed=args.seed)
            print(f"{path} not found: generated {args.rows} synthetic trips")
        months.append(load_month(args.data_dir, year, month))
    train_df, val_df = months
    model = train(train_df, family=args.family, params=args.params)
    metrics = evaluate(model, val_df)
    path = save_model(model, args.model_path)
    print(f"trained {args.family} on {len(train_df)} trips, validated on {len(val_df)} trips")
    print(" ".join(f"{name}={value:.3f}" for name, value in metrics.items()))
    print(f"saved model to {path}")


def _predict(args: argparse.Namespace) -> None:
    model = load_model(args.model_path)
    trips = read_trips(args.input)
    out = trips.assign(predicted_duration=predict(model, trips))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix.lower() == ".csv":
        out.to_csv(args.output, index=False)
    else:
        out.to_parquet(args.output, index=False)
    print(f"wrote {len(out)} predictions to {args.output}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (2 for bad input data or files)."""
    args = build_parser().parse_args(argv)
    handlers = {"generate-data": _generate, "train": _train, "predict": _predict}
    try:
        handlers[args.command](args)
    except (DataValidationError, ModelFileError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
