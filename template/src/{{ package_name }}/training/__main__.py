"""``python -m <package>.training``: the same pipeline as ``<slug> train``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .commands import TRAIN_EPILOG, add_train_arguments, train


def build_parser() -> argparse.ArgumentParser:
    """Command line of the training pipeline (the options of ``<slug> train``)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Train, track and register a model (Prefect + MLflow).",
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_train_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the flow; exit 2 on a bad configuration or bad data, 3 if tracking fails."""
    return train(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
