"""The project's one command line. Its subcommands grow with the level.

Level 1 has ``contract draft``, ``data``, ``train`` and ``predict``. Each higher level's
package (``training``, ``serving``, ``monitoring``, ``automation``) adds its own through a
``commands`` module: its ``COMMANDS`` names them and ``register(commands)`` adds them; a name a
higher level provides replaces a lower level's (level 2's ``train`` runs the pipeline, level 4's
``monitor`` runs the loop's check). Heavy libraries are imported only when a command runs, so
``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .outcomes import MIN_TRAIN_ROWS, MIN_VALIDATION_ROWS, ExitCode, ModelFileError

DEFAULT_MODEL_PATH = Path("models/model.joblib")
#: Where ``predict`` writes by default: a folder the project's .gitignore ignores.
PREDICTIONS_DIR = Path("reports") / "predictions"
DEFAULT_DATA = "data/example"
DEFAULT_CONTRACT = Path("src") / str(__package__) / "contract.py"
#: Level packages that may add subcommands, in level order.
LEVEL_PACKAGES = ("training", "serving", "monitoring", "automation")

Handler = Callable[[argparse.Namespace], int | None]
Commands = Any  # argparse's private _SubParsersAction


class CommandError(Exception):
    """A command cannot run as asked; the message is printed as one ``error:`` line."""


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def year_month(text: str) -> tuple[int, int]:
    try:
        year, month = (int(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {text!r}") from None
    if not 1 <= month <= 12:
        raise argparse.ArgumentTypeError(f"month must be 01..12, got {text!r}")
    return year, month


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"expected a JSON object ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object like '{\"alpha\": 0.5}'")
    return value


# -- level 1 commands ---------------------------------------------------------------------
def _data(args: argparse.Namespace) -> None:
    if args.tlc is not None:
        _fetch_tlc(args)
        return
    from .datasets import write_generated
    from .problem import PROBLEM
    from .synthetic import EXAMPLE, example_file, write_month

    if PROBLEM.name != EXAMPLE:  # your own problem: rows drawn from the contract
        from .sampledata import GENERATED_BY, sample_frame

        path = Path(args.out) / "sample.parquet"
        if path.exists() and not args.overwrite:
            print(f"kept existing {path} (use --overwrite to replace it)")
            return
        write_generated(sample_frame(args.rows, args.seed, args.drift), path, GENERATED_BY)
        print(f"wrote {path} ({args.rows} rows drawn from contract.py)")
        return
    for year, month in args.months:
        path = example_file(args.out, year, month)
        if path.exists() and not args.overwrite:
            print(f"kept existing {path} (use --overwrite to replace it)")
            continue
        write_month(args.out, year, month, args.rows, seed=args.seed, drift=args.drift)
        print(f"wrote {path} ({args.rows} synthetic trips, drift={args.drift:g})")


def _fetch_tlc(args: argparse.Namespace) -> None:
    from .tlc import TLC_DIR, download_month, file_name

    folder = TLC_DIR if args.out == Path(DEFAULT_DATA) else args.out
    for year, month in args.months:
        path = folder / file_name(args.tlc, year, month)
        if path.exists() and not args.overwrite:
            print(f"kept existing {path} (use --overwrite to replace it)")
            continue
        print(f"downloaded {download_month(args.tlc, year, month, folder)}")


def _train(args: argparse.Namespace) -> None:
    from .datasets import load, split
    from .model import evaluate, save_model, train
    from .trainability import check_metrics, check_rows

    limit = args.max_rejected_share
    frame, lineage = load(args.data, max_rejected_share=limit)
    sides = {"train": lineage.as_dict()}
    if args.validation is not None:
        validation_df, validation_lineage = load(args.validation, max_rejected_share=limit)
        train_df, sides["validation"] = frame, validation_lineage.as_dict()
    else:
        train_df, validation_df = split(frame, args.validation_fraction, args.seed)
        validation_lineage = None
        sides["validation"] = {"split_from": "train", "fraction": args.validation_fraction}
    sides["train"]["rows"], sides["validation"]["rows"] = len(train_df), len(validation_df)
    for name, side in (("training", lineage), ("validation", validation_lineage)):
        for line in side.rejects.summary_lines(f"{name} data {side.location}") if side else []:
            print(line)
    check_rows(train_df, validation_df, args.min_train_rows, args.min_validation_rows)
    model = train(train_df, family=args.family, params=args.params)
    metrics = evaluate(model, validation_df)
    check_metrics(metrics, validation_df)
    warnings = _baseline_warnings(train_df, validation_df, metrics)
    path = save_model(model, args.model_path)
    kinds = {lineage.kind, validation_lineage.kind if validation_lineage else lineage.kind}
    data = {"kind": "generated" if "generated" in kinds else "file", **sides}
    record = {"family": args.family, "metrics": metrics, "warnings": warnings, "data": data}
    path.with_suffix(".json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(
        f"trained {args.family} on {len(train_df)} rows, validated on {len(validation_df)} "
        f"({lineage.kind} data: {lineage.location}, {len(lineage.files)} file(s))"
    )
    print(" ".join(f"{name}={value:.3f}" for name, value in metrics.items()))
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"saved model to {path}")


def _baseline_warnings(train_df: Any, validation_df: Any, metrics: dict[str, float]) -> list[str]:
    """A regressor no better than predicting the training mean, as a warning (else none)."""
    from .trainability import baseline

    found = baseline(train_df, validation_df, metrics.get("rmse", float("nan")))
    warning = found.warning() if found is not None else None
    return [warning] if warning else []


def write_frame(frame: Any, output: Path) -> None:
    """Write parquet or CSV by ``output``'s suffix; anything else is refused."""
    suffix = output.suffix.lower()
    if output.is_dir():
        raise CommandError(f"{output}: is a folder; give a file name like predictions.parquet")
    if suffix not in (".parquet", ".csv"):
        raise CommandError(f"{output}: unsupported output type {suffix!r}, use .parquet or .csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(output, index=False)
    else:
        frame.to_parquet(output, index=False)


def with_predictions(
    model: Any, frame: Any, source: str, max_rejected_share: float | None = None
) -> tuple[Any, int, Any]:
    """``frame`` with ``predicted_<target>`` (a classifier's also with one probability column
    per class) and ``rejected_because``; how many predictions were held to the target's range;
    and the rows set aside (``quality.Rejects``, written to a rejects file).

    Every input row stays in its place: a row that breaks the contract gets no prediction and
    its reason. Past ``max_rejected_share`` set aside, nothing is predicted (an error says why).
    """
    import pandas as pd

    from .predict import predict_proba_frame, predict_with_count, predicted_column
    from .problem import PROBLEM
    from .quality import mark, rejects_path, screen

    kept, rejects = screen(frame, source)
    rejects = rejects.settle(source, rejects_path(source, "inputs"), max_rejected_share)
    frame = frame.reset_index(drop=True)
    if PROBLEM.is_classifier:
        predicted = predict_proba_frame(model, kept, source=source).set_axis(kept.index)
        clipped = 0
    else:
        values, clipped = predict_with_count(model, kept, source=source)
        predicted = pd.DataFrame({predicted_column(): values}, index=kept.index)
    reasons = mark(frame, rejects, source)
    out = pd.concat([frame, predicted.reindex(frame.index), reasons], axis=1)
    return out, clipped, rejects


def predictions_written(rows: int, rejects: Any, output: Path, clipped: int, of: str = "") -> str:
    """``wrote 997 predictions for 1000 rows to ... (3 set aside, no prediction)``."""
    notes = [f"{clipped} held to the target's range"] if clipped else []
    notes += [f"{rejects.rejected} set aside, no prediction"] if rejects.rejected else []
    note = f" ({'; '.join(notes)})" if notes else ""
    return f"wrote {rows - rejects.rejected} predictions{of} for {rows} rows to {output}{note}"


def _predict(args: argparse.Namespace) -> None:
    from .datasets import read_file
    from .model import load_model

    model = load_model(args.model_path)
    frame, _ = read_file(args.input)
    out, clipped, rejects = with_predictions(model, frame, str(args.input), args.max_rejected_share)
    output = predictions_output(args)
    write_frame(out, output)
    print(predictions_written(len(out), rejects, output, clipped))
    for line in rejects.summary_lines(str(args.input)):
        print(line)


def _contract_draft(args: argparse.Namespace) -> None:
    from .contract_draft import DraftError, check_against, draft_contract, render, replaceable

    options = [("--task", args.task), ("--event-time", args.event_time), ("--name", args.name)]
    command = shlex.join(
        ["contract", "draft", str(args.file), "--target", args.target]
        + [part for option, value in options if value for part in (option, value)]
    )
    try:
        draft, frame = draft_contract(
            args.file,
            args.target,
            task=args.task,
            event_time=args.event_time,
            name=args.name,
            command=command,
            rows=args.rows,
        )
    except DraftError as exc:
        raise CommandError(str(exc)) from None
    text = render(draft)
    kept = check_against(text, frame, str(args.file))
    out: Path = args.out
    if not out.parent.is_dir():
        raise CommandError(f"{out.parent}: no such folder; run this in the project's root")
    if not args.force and not replaceable(out, text):
        raise CommandError(
            f"{out} was edited (it is neither the shipped contract nor this draft): review it, "
            "write the draft elsewhere (--out draft.py) or replace it (--force)"
        )
    out.write_text(text)
    print(f"wrote {out}: {draft.summary()}; it keeps {kept:,} of the {draft.rows:,} rows read")
    for note in draft.to_review:
        print(f"to review: {note}")
    print(f'then: make lint test; make train ARGS="--data {args.file}" (level 2 on: in configs/)')


def _register_level_1(commands: Commands, skip: set[str]) -> None:
    if "contract" not in skip:
        _add_contract(commands)
    if "data" not in skip:
        _add_data(commands)
    if "train" not in skip:
        _add_train(commands)
    if "predict" not in skip:
        _add_predict(commands)


def _add_contract(commands: Commands) -> None:
    contract = commands.add_parser(
        "contract",
        help="draft contract.py from a data file",
        description="Declare your own problem: draft contract.py from your data.",
    )
    actions = contract.add_subparsers(dest="action", required=True, metavar="ACTION")
    draft = actions.add_parser(
        "draft",
        help="write a contract.py guessed from a parquet or csv file, to review",
        description="Read FILE (its first --rows rows) and write a contract.py: each column's "
        "type, nullability, bounds or allowed values from the data, and a guessed role with its "
        "reason as a comment. Refuses to replace an edited contract.py without --force.",
    )
    draft.add_argument("file", type=Path, metavar="FILE", help="parquet or csv file")
    draft.add_argument("--target", required=True, help="the column to predict")
    draft.add_argument(
        "--task",
        choices=("regression", "binary", "multiclass"),
        default=None,
        help="what the target is (default: guessed from its values)",
    )
    draft.add_argument("--event-time", default=None, help="the column that orders the rows")
    draft.add_argument("--name", default=None, help="the problem's short name (default: target)")
    draft.add_argument("--out", type=Path, default=DEFAULT_CONTRACT, help="(default: %(default)s)")
    draft.add_argument(
        "--rows", type=positive_int, default=200_000, help="rows read (default: %(default)s)"
    )
    draft.add_argument("--force", action="store_true", help="replace an edited contract.py")
    draft.set_defaults(handler=_contract_draft)


def _add_data(commands: Commands) -> None:
    data = commands.add_parser(
        "data",
        help="generate the example's data (never under a real source's name)",
        description="Write seeded synthetic months of the shipped example to data/example/ "
        "(rows drawn from contract.py when you declared your own problem).",
    )
    data.add_argument("--out", type=Path, default=Path(DEFAULT_DATA), help="(default: %(default)s)")
    data.add_argument(
        "--months",
        type=year_month,
        nargs="+",
        default=[(2024, 1), (2024, 2)],
        help="YYYY-MM months to generate (default: 2024-01 2024-02)",
    )
    data.add_argument("--rows", type=positive_int, default=100_000, help="rows per file")
    data.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    data.add_argument("--drift", type=unit_interval, default=0.0, help="shift in [0, 1]")
    data.add_argument("--overwrite", action="store_true", help="replace existing files")
    data.add_argument(
        "--tlc",
        choices=("yellow", "green"),
        default=None,
        help="download real TLC months instead, to data/tlc/ (address: TLC_BASE_URL)",
    )
    data.set_defaults(handler=_data)


def _add_train(commands: Commands) -> None:
    fit = commands.add_parser(
        "train",
        help="train a model and report its validation metrics",
        description="Train on --data (a file, folder or glob of parquet/csv) and validate on "
        "its latest rows by event time, or on --validation.",
    )
    fit.add_argument("--data", default=DEFAULT_DATA, help="training data (default: %(default)s)")
    fit.add_argument("--validation", default=None, help="separate validation data")
    fit.add_argument(
        "--validation-fraction",
        type=fraction,
        default=0.2,
        help="latest share of --data held out when --validation is not given (default: 0.2)",
    )
    fit.add_argument(
        "--family",
        default="linear",
        help="linear | random_forest | hist_gradient_boosting (default: %(default)s)",
    )
    fit.add_argument("--params", type=json_object, default=None, help="model parameters, JSON")
    fit.add_argument("--seed", type=int, default=42, help="split seed without event time")
    fit.add_argument(
        "--min-train-rows",
        type=positive_int,
        default=MIN_TRAIN_ROWS,
        help="refuse to train on fewer rows (default: %(default)s)",
    )
    fit.add_argument(
        "--min-validation-rows",
        type=positive_int,
        default=MIN_VALIDATION_ROWS,
        help="refuse to validate on fewer rows (default: %(default)s)",
    )
    fit.add_argument(
        "--model-path", type=Path, default=DEFAULT_MODEL_PATH, help="(default: %(default)s)"
    )
    add_rejected_share(fit)
    fit.set_defaults(handler=_train)


def _add_predict(commands: Commands) -> None:
    score = commands.add_parser(
        "predict",
        help="predict for a file of inputs",
        description="Read a parquet or csv file with the contract's feature columns and write "
        "it back with a predicted_<target> column (classifiers: and a probability_<class> "
        "column per class).",
    )
    score.add_argument(
        "--model-path", type=Path, default=DEFAULT_MODEL_PATH, help="(default: %(default)s)"
    )
    add_predict_files(score)
    add_rejected_share(score)
    score.set_defaults(handler=_predict)


def add_predict_files(parser: argparse.ArgumentParser) -> None:
    """``--input`` and ``--output`` (by default a file in ``reports/predictions/``)."""
    parser.add_argument("--input", type=Path, required=True, help="parquet or csv file")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"parquet or csv file (default: {PREDICTIONS_DIR}/<input name>-predictions.parquet, "
        "ignored by git)",
    )


def predictions_output(args: argparse.Namespace) -> Path:
    """``--output``, else ``reports/predictions/<input name>-predictions.parquet``."""
    if args.output is not None:
        return Path(args.output)
    return PREDICTIONS_DIR / f"{Path(args.input).stem}-predictions.parquet"


def add_rejected_share(parser: argparse.ArgumentParser) -> None:
    """``--max-rejected-share``: how many bad rows a command may set aside before it fails."""
    parser.add_argument(
        "--max-rejected-share",
        type=unit_interval,
        default=None,
        help="fail when more than this share of the rows break the contract (default: "
        "MAX_REJECTED_SHARE in contract.py, else 0.1); the others are set aside",
    )


def _level_modules() -> list[Any]:
    """The ``commands`` modules of the level packages this project has."""
    found = []
    for name in LEVEL_PACKAGES:
        module = f"{__package__}.{name}.commands"
        if importlib.util.find_spec(f"{__package__}.{name}") is not None:
            found.append(importlib.import_module(module))
    return found


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand this project's level has."""
    prog = f"python -m {__package__}" if sys.argv[0].endswith("__main__.py") else None
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"{__package__} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = _level_modules()
    provided = [set(module.COMMANDS) for module in modules]
    _register_level_1(commands, skip=set().union(*provided))
    for index, module in enumerate(modules):
        replaced = set().union(*provided[index + 1 :])  # a higher level's command wins
        module.register(_Without(commands, replaced) if replaced else commands)
    return parser


class _Without:
    """``commands`` minus the names a higher level replaces: their parsers are left detached."""

    def __init__(self, commands: Commands, names: set[str]) -> None:
        self.commands = commands
        self.names = names

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name in self.names:
            kwargs.pop("help", None)
            kwargs.pop("aliases", None)
            return argparse.ArgumentParser(prog=name, **kwargs)
        parser: argparse.ArgumentParser = self.commands.add_parser(name, **kwargs)
        return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exit with an ``outcomes.ExitCode``: 2 for bad input (data, files,
    arguments), 4 for a refused training run, else the command's own."""
    args = build_parser().parse_args(argv)
    from .problem import DataValidationError

    expected = (DataValidationError, CommandError, FileNotFoundError, ModelFileError)
    try:
        from .trainability import TrainingRefused

        code = args.handler(args)
    except TrainingRefused as exc:
        print(f"error: training refused, nothing was saved: {exc}", file=sys.stderr)
        return ExitCode.REFUSED
    except expected as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    return int(code or 0)
