"""A Prefect server on 127.0.0.1 for ``make automation`` when no ``PREFECT_API_URL`` is set.

Prefect's ephemeral API runs no scheduler, so served deployments would never get their
scheduled runs: one machine needs a real, if local, server. Its database is the SQLite file
in ``PREFECT_HOME`` (``.mlops/prefect/``), its log ``server.log`` beside it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_TIMEOUT = 120.0
#: The one port of the project's local Prefect server (``make prefect-server``, ``make
#: automation``, ``make deploy-flows`` and the commands they print); PREFECT_SERVER_API_PORT
#: (Prefect's own setting) moves it.
DEFAULT_PORT = 4200


def local_port() -> int:
    """The local server's port: ``PREFECT_SERVER_API_PORT``, else 4200."""
    return int(os.environ.get("PREFECT_SERVER_API_PORT") or DEFAULT_PORT)


def local_api_url(port: int | None = None) -> str:
    """The API address of the local server on ``port`` (default: :func:`local_port`)."""
    return f"http://127.0.0.1:{port or local_port()}/api"


class ServerError(RuntimeError):
    """The local Prefect server did not start; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def _tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.is_file() else "(no log)"


def _stop(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


@contextmanager
def local_server(home: Path, port: int = 0, timeout: float = STARTUP_TIMEOUT) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 (``port`` 0: any free one); yield its API URL.

    The server is stopped on exit, whatever happened inside.
    """
    port = port or free_port()
    api_url = local_api_url(port)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-ui", "--analytics-off"]
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    with log.open("ab") as handle:
        process = subprocess.Popen(
            cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while not healthy(api_url):
            if process.poll() is not None:
                problem = f"exited with {process.returncode}"
            elif time.monotonic() > deadline:
                problem = f"not ready after {timeout:.0f} s"
            else:
                time.sleep(0.5)
                continue
            raise ServerError(f"the local Prefect server {problem}; {log} ends:\n{_tail(log)}")
        yield api_url
    finally:
        _stop(process)


def exit_on_sigterm() -> None:
    """SIGTERM ends the process like Ctrl-C's clean path: a local server is stopped on the way."""
    signal.signal(signal.SIGTERM, _exit)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_until_stopped(body: Callable[[], None]) -> int:
    """The exit code of a command that runs ``body`` until Ctrl-C: 0 once stopped, 1 with one
    error line when the local server does not start."""
    try:
        body()
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped (Ctrl-C)")
    return 0
