"""Level 3's command: ``serve`` (the prediction service, with uvicorn)."""

from __future__ import annotations

import argparse

from ..cli import CommandError, Commands

COMMANDS = ("serve",)
DEFAULT_APP = f"{__package__}.app:create_app"


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from .settings import ServingSettings
    from .store import LogSchemaError, make_engine

    settings = ServingSettings()
    try:  # a log made for another contract: one line now, not a traceback at start-up
        make_engine(settings.prediction_log_url).dispose()
    except LogSchemaError as exc:
        raise CommandError(str(exc)) from None
    uvicorn.run(args.app, factory=True, host=args.host, port=args.port, access_log=False)


def register(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the registry's champion (and challenger) over HTTP",
        description="Run the prediction service with uvicorn; it reads SERVING_* settings "
        "(see serving/settings.py). API docs at /docs.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    serve.add_argument(
        "--app", default=DEFAULT_APP, help="app factory, module:function (default: %(default)s)"
    )
    serve.set_defaults(handler=_serve)
