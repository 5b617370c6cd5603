"""Real engines for the template's tests, started on loopback and stopped afterwards.

A throwaway PostgreSQL 15 cluster, an S3-compatible server (moto's server mode), an MLflow
tracking server on both, and a Prefect server on the same PostgreSQL. Each listens on
127.0.0.1 on a free port; nothing reaches beyond loopback. Every engine records how long it
took to answer its first health check, for the docs' figures.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# System tools (runuser) live in sbin folders, which a user's or a CI job's PATH may leave out.
SYSTEM_PATH = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def system_tool(name: str) -> str | None:
    """The path of `name` on PATH or in the system's sbin folders; None when absent."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_PATH])
    return shutil.which(name, path=search)


def _postgres_bin() -> Path:
    """PG_BIN, else the bin folder of the newest Debian/Ubuntu PostgreSQL server installed."""
    if "PG_BIN" in os.environ:
        return Path(os.environ["PG_BIN"])
    versions = sorted(
        int(initdb.parents[1].name)
        for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if initdb.parents[1].name.isdigit()
    )
    return Path(f"/usr/lib/postgresql/{versions[-1] if versions else 15}/bin")


PG_BIN = _postgres_bin()
# PostgreSQL refuses to run as root: as root, the cluster runs as this user.
PG_USER = os.environ.get("PG_RUN_AS", "nobody")
MOTO_SPEC = "moto[server]>=5,<6"
S3_REGION = "us-east-1"
# moto accepts any credentials; these are test values, not secrets.
S3_KEY_ID = "testing"
S3_SECRET = "testing"


class EngineError(RuntimeError):
    """An engine did not start; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@dataclass
class Engine:
    """A server process we started: its URL, log and startup time."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    startup_seconds: float = 0.0

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the process group, then SIGKILL what is left."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
        except ProcessLookupError:
            pass


def spawn(
    name: str, cmd: list[str], log: Path, env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` in its own process group (so `Engine.stop` ends its children too)."""
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        raise EngineError(f"{name}: cannot start {cmd[0]}: {exc}") from exc
    finally:
        handle.close()


def wait_until(
    name: str,
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    log: Path,
    timeout: float,
) -> float:
    """Poll `ready` until it holds; return the seconds it took. Fail early if `process` died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise EngineError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        if ready():
            return time.monotonic() - start
        time.sleep(0.2)
    raise EngineError(f"{name} not ready after {timeout:.0f} s:\n{_tail(log)}")


def http_ok(url: str) -> Callable[[], bool]:
    def _check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(200 <= response.status < 300)
        except (urllib.error.URLError, OSError):
            return False

    return _check


# ------------------------------------------------------------------ PostgreSQL


def postgres_available() -> str | None:
    """None if a cluster can be started here, else the reason it cannot."""
    for tool in ("initdb", "pg_ctl", "createdb", "psql"):
        if not (PG_BIN / tool).is_file():
            return f"PostgreSQL server binaries not found in {PG_BIN} (set PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and user {PG_USER!r} (PG_RUN_AS) does not exist"
        if system_tool("runuser") is None:
            return f"running as root and `runuser` is in neither PATH nor {', '.join(SYSTEM_PATH)}"
    return None


@dataclass
class Postgres:
    """A throwaway cluster in its own folder, trust auth on 127.0.0.1 only."""

    root: Path
    port: int
    user: str = "postgres"
    startup_seconds: float = 0.0
    databases: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str, driver: str = "psycopg") -> str:
        """SQLAlchemy URL of `database` (`driver`: psycopg, asyncpg, or "" for libpq's)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        return [system_tool("runuser") or "runuser", "-u", PG_USER, "--", *cmd]

    def _run(self, cmd: list[str], timeout: float = 120) -> str:
        proc = subprocess.run(
            self._as_owner(cmd), capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        if proc.returncode != 0:
            raise EngineError(
                f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                f"\n{_tail(self.log)}"
            )
        return proc.stdout

    def start(self) -> Postgres:
        start = time.monotonic()
        self.root.chmod(0o755)  # the cluster's owner must reach its folder
        if os.geteuid() == 0:
            owner = pwd.getpwnam(PG_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ]
        )
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c max_connections=200"
        )
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self.startup_seconds = time.monotonic() - start
        return self

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return name

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql`; return psql's unaligned, tuples-only output."""
        return self._run(
            [
                str(PG_BIN / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ]
        ).strip()

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
            subprocess.run(self._as_owner(cmd), capture_output=True, timeout=60, cwd=self.root)


def start_postgres() -> Postgres:
    """A new cluster in a fresh folder under the temp dir (reachable by the run-as user)."""
    root = Path(tempfile.mkdtemp(prefix="engines-pg-"))
    return Postgres(root=root, port=free_port()).start()


# ------------------------------------------------------------------ S3 (moto)


def s3_env(endpoint: str) -> dict[str, str]:
    """What boto3 (and MLflow's S3 store) need to talk to the test S3 server."""
    return {
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_DEFAULT_REGION": S3_REGION,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
    }


def start_moto(workdir: Path, env: dict[str, str], uv: str = "uv") -> Engine:
    """moto's S3-compatible server, from PyPI in a uv tool environment."""
    port = free_port()
    log = workdir / "moto.log"
    url = f"http://127.0.0.1:{port}"
    cmd = [
        uv,
        "tool",
        "run",
        "--from",
        MOTO_SPEC,
        "moto_server",
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    process = spawn("moto", cmd, log, env, cwd=workdir)
    engine = Engine("moto (S3)", url, process, log)
    # The first start installs moto into uv's cache: allow for it.
    engine.startup_seconds = wait_until(
        "moto", http_ok(f"{url}/moto-api/"), process, log, timeout=300
    )
    return engine


# ------------------------------------------------------------------ MLflow


def start_mlflow(
    venv_bin: Path, workdir: Path, backend_store_uri: str, artifacts: str, env: dict[str, str]
) -> Engine:
    """`mlflow server` on PostgreSQL, proxying artifacts to `artifacts` (s3://...)."""
    port = free_port()
    log = workdir / "mlflow.log"
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(venv_bin / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts,
    ]
    process = spawn("mlflow", cmd, log, env, cwd=workdir)
    engine = Engine("MLflow server", url, process, log)
    engine.startup_seconds = wait_until("mlflow", http_ok(f"{url}/health"), process, log, 240)
    return engine


# ------------------------------------------------------------------ Prefect


def start_prefect(venv_bin: Path, workdir: Path, database_url: str, env: dict[str, str]) -> Engine:
    """`prefect server start` with its database on PostgreSQL (asyncpg URL)."""
    port = free_port()
    log = workdir / "prefect.log"
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **env,
        "PREFECT_HOME": str(workdir / "prefect-server-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    cmd = [
        str(venv_bin / "prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ui",
        "--analytics-off",
    ]
    process = spawn("prefect", cmd, log, env, cwd=workdir)
    engine = Engine("Prefect server", url, process, log)
    engine.startup_seconds = wait_until("prefect", http_ok(f"{url}/health"), process, log, 240)
    return engine


# ------------------------------------------------------------------ the generated service


def start_service(
    name: str, venv_bin: Path, project: Path, app: str, env: dict[str, str], timeout: float = 240
) -> Engine:
    """One uvicorn process of the generated service (`app` is its factory), ready to serve."""
    port = free_port()
    log = project.parent / f"{name}.log"
    url = f"http://127.0.0.1:{port}"
    cmd = [str(venv_bin / "uvicorn"), "--factory", app, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-access-log"]
    process = spawn(name, cmd, log, env, cwd=project)
    engine = Engine(name, url, process, log)
    engine.startup_seconds = wait_until(name, http_ok(f"{url}/health/ready"), process, log, timeout)
    return engine
