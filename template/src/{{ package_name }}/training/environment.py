"""Quiet, offline defaults for MLflow and Prefect: entry points set them before importing either.

Every value is a default: anything already in the environment wins, so the same code talks to a
tracking server or a Prefect server when ``MLFLOW_TRACKING_URI`` or ``PREFECT_API_URL`` is set.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STATE_DIR = ".mlops"


def state_dir(project_dir: Path | None = None) -> Path:
    """Local MLOps state (MLflow store and artifacts, Prefect home): ``<project>/.mlops``."""
    return (project_dir or Path.cwd()).resolve() / STATE_DIR


def set_offline_defaults(project_dir: Path | None = None) -> None:
    """Turn telemetry off, keep Prefect's home in the project and quiet the logs."""
    defaults = {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # no bar per run config read
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(state_dir(project_dir) / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",  # a busy laptop or CI runner
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    # Prefect creates its home but not the folders above it.
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    mute_known_noise()


#: How commands that run a flow get a Prefect server when ``PREFECT_API_URL`` is unset:
#: ``keep`` (the default) starts the project's local one in the background on first use and
#: leaves it up for the next commands; ``temporary`` lets Prefect start a temporary server per
#: command and stop it at the end (about ten seconds each, and its runs are forgotten).
SERVER_MODE = "MLOPS_PREFECT_SERVER"
SERVER_MODES = ("keep", "temporary")


def use_local_prefect_server(start: bool = True) -> str | None:
    """Point Prefect at the project's local server (``make prefect-server``, or one an earlier
    command left running) when ``PREFECT_API_URL`` is not set; with none running, start one in
    the background if ``start`` and :data:`SERVER_MODE` allow. Its API address, or None
    (Prefect as configured). Exits with one error line if the mode is unknown or the server
    does not start."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    from .local_server import ServerError, healthy, local_api_url, local_port, start_detached

    url = local_api_url()
    if not healthy(url):
        mode = os.environ.get(SERVER_MODE) or SERVER_MODES[0]
        if mode not in SERVER_MODES:
            raise SystemExit(f"error: {SERVER_MODE}={mode!r}: expected one of {SERVER_MODES}")
        if not start or mode == "temporary":
            return None
        home = Path(os.environ["PREFECT_HOME"]).expanduser()
        try:
            url = start_detached(home, local_port())
        except ServerError as exc:
            raise SystemExit(
                f"error: {exc}\n(`{SERVER_MODE}=temporary` runs each command on a temporary "
                "server instead)"
            ) from None
        print(
            f"started the project's Prefect server at {url} (log in {home}); it stays up for "
            "the next commands, `make prefect-stop` stops it",
            file=sys.stderr,
        )
    os.environ["PREFECT_API_URL"] = url
    return url


class _DropTraceback(logging.Filter):
    """Keep the log line but drop the traceback of errors the caller reports itself
    (``lines``: drop error lines too, the caller prints its own one)."""

    def __init__(self, expected: tuple[type[BaseException], ...], lines: bool = False) -> None:
        super().__init__()
        self.expected = expected
        self.lines = lines

    def filter(self, record: logging.LogRecord) -> bool:
        if self.lines and record.levelno >= logging.ERROR:
            return False
        if record.exc_info and isinstance(record.exc_info[1], self.expected):
            record.exc_info = None
            record.exc_text = None
        return True


@contextmanager
def tracebacks_hidden(
    *expected: type[BaseException], also: tuple[str, ...] = (), lines: bool = False
) -> Iterator[None]:
    """Like ``hide_tracebacks_of`` while the block runs, for Prefect's run loggers and ``also``
    (``lines``: their error lines too, for a command that prints one line per failure)."""
    loggers = [
        logging.getLogger(name) for name in ("prefect.task_runs", "prefect.flow_runs", *also)
    ]
    quiet = _DropTraceback(expected, lines)
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def hide_tracebacks_of(*expected: type[BaseException]) -> None:
    """No Prefect traceback for `expected` errors (bad data, bad config): one clear line.

    Call after importing Prefect, which configures its loggers on import.
    """
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logging.getLogger(name).addFilter(_DropTraceback(expected))


def mute_known_noise() -> None:
    """Silence specific, harmless warnings of the stack (not warnings in general)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sqlalchemy\..*")
    warnings.filterwarnings("ignore", message=r"The ``noload`` loader strategy is deprecated")
    warnings.filterwarnings(
        "ignore", message=r"Hint: Inferred schema contains integer column", category=UserWarning
    )
    # MLflow registers its local dataset source twice, then warns that a path is ambiguous.
    warnings.filterwarnings(
        "ignore",
        message=r"The specified dataset source can be interpreted in multiple ways: "
        r"LocalArtifactDatasetSource, LocalArtifactDatasetSource",
        category=UserWarning,
    )
    # uv environments have no pip; MLflow only wants its version for an unused conda.yaml.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    # Table creation and migrations of a fresh local store are routine, not news.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow.utils.uv_utils").setLevel(logging.WARNING)
