"""Exit codes of the command line (the one table the commands use and the README documents),
the minimum rows a training run needs, and the errors every command reports as bad input.

A scheduled job can tell a failure (1-3) from a policy outcome (4-6) that is no failure of
the machinery; for example ``<command> || [ $? -ge 4 ]`` keeps a job green unless it failed.
"""

from __future__ import annotations

from enum import IntEnum

#: Training is refused on fewer rows than these, by default (``trainability``): below them a
#: model and its validation metrics are noise. ``train --min-train-rows/--min-validation-rows``
#: (level 1) and ``minimum_rows`` in configs/training.yaml (level 2 and up) change them.
MIN_TRAIN_ROWS = 50
MIN_VALIDATION_ROWS = 20


class ExitCode(IntEnum):
    """How a command ended."""

    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    TRACKING = 3
    REFUSED = 4
    SKIPPED = 5
    NO_TRAFFIC = 6


#: What each code means, in the words of the README's table.
MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done: trained and registered, promoted, measured",
    ExitCode.FAILED: "failed: an error the command did not expect (the traceback is in the log)",
    ExitCode.BAD_INPUT: "bad input: configuration, data, arguments or a missing file or model",
    ExitCode.TRACKING: "the MLflow tracking store failed or is unreachable; no alias was moved",
    ExitCode.REFUSED: "refused: a degenerate training run, or a challenger the gate turned down",
    ExitCode.SKIPPED: "skipped: nothing to do (no trigger, cool-down, too few labels, "
    "no challenger)",
    ExitCode.NO_TRAFFIC: "no traffic: no served predictions in the monitored window",
}


class ModelFileError(Exception):
    """A model file is missing or does not hold a fitted pipeline (``model.load_model``).

    Defined here, not in ``model``, so that the command line reports it without importing the
    training code (scikit-learn's estimators and metrics) for every command.
    """
