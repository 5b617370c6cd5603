"""``python -m <package>.serving [--host H] [--port P]``: run the service with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

parser = argparse.ArgumentParser(description="Serve the registry's models over HTTP.")
parser.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
args = parser.parse_args()
uvicorn.run(
    f"{__package__}.app:create_app",
    factory=True,
    host=args.host,
    port=args.port,
    access_log=False,
)
