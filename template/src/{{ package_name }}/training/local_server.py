"""The project's Prefect server on 127.0.0.1, for when no ``PREFECT_API_URL`` is set.

Without a server, Prefect starts a temporary one per command (about ten seconds each) and
forgets its runs; its ephemeral API runs no scheduler either, so served deployments would never
get their scheduled runs. So the first command that runs a flow starts this one in the
background and leaves it up for the next (:func:`start_detached`, ``make prefect-stop`` ends
it), or ``make prefect-server`` and ``make automation`` run it in the foreground. Its database
is the SQLite file in ``PREFECT_HOME`` (``.mlops/prefect/``), its log ``server.log`` beside it.
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
from contextlib import contextmanager, suppress
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


#: Where a background server's process id is kept (in ``PREFECT_HOME``), for ``--stop``.
PID_FILE = "server.pid"


def _spawn(home: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    """``prefect server start`` on 127.0.0.1:``port`` in a session of its own, logging to
    ``home/server.log``."""
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-ui", "--analytics-off"]
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    with log.open("ab") as handle:
        process = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log


def _wait_healthy(
    api_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Return once ``api_url`` answers; raise :class:`ServerError` if ``process`` exits or
    ``timeout`` passes first."""
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


@contextmanager
def local_server(home: Path, port: int = 0, timeout: float = STARTUP_TIMEOUT) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 (``port`` 0: any free one); yield its API URL.

    The server is stopped on exit, whatever happened inside.
    """
    port = port or free_port()
    api_url = local_api_url(port)
    process, log = _spawn(home, port)
    try:
        _wait_healthy(api_url, process, log, timeout)
        yield api_url
    finally:
        _stop(process)


def start_detached(home: Path, port: int, timeout: float = STARTUP_TIMEOUT) -> str:
    """Start the local server so that it outlives this process; return its API URL once it
    answers. Its process id goes to ``home/server.pid``, for :func:`stop_detached`."""
    api_url = local_api_url(port)
    process, log = _spawn(home, port)
    try:
        _wait_healthy(api_url, process, log, timeout)
    except ServerError:
        _stop(process)
        raise
    if process.poll() is None:  # else another command's server took the port meanwhile
        (home / PID_FILE).write_text(f"{process.pid}\n")
    return api_url


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child, now reaped
            return False
    except ChildProcessError:  # not our child: its parent (init) reaps it
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_detached(home: Path, timeout: float = 20) -> str:
    """Stop the background server whose id ``home/server.pid`` holds; say what happened."""
    pid_file = home / PID_FILE
    if not pid_file.is_file():
        return f"no background Prefect server to stop ({pid_file} does not exist)"
    pid = int(pid_file.read_text())
    pid_file.unlink()
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return f"the background Prefect server (process {pid}) had already stopped"
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            break
        time.sleep(0.2)
    return f"stopped the background Prefect server (process {pid})"


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
