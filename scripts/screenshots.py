"""Screenshots of the UIs a generated level-3 project gives, for the docs.

    python scripts/screenshots.py                # generate a project in a temp dir, shoot
    python scripts/screenshots.py --project DIR  # reuse a generated level-3+ project

It generates a project (`copier copy --defaults --data level=3`), runs its own commands
(`make install`, `make train` twice: champion and challenger), serves the models and sends them a
month of drifted synthetic trips with their actual durations, runs `make monitor`, starts the
MLflow UI on the project's SQLite store, and photographs each page in SHOTS with headless Chromium,
driven over the DevTools protocol on a pipe (stdlib only: no Playwright, no WebSocket client).
Every server runs on a free loopback port and is stopped on the way out, whatever happens.

A shot is taken only once its page shows the texts it waits for, so a spinner or a blank page fails
the run instead of landing in the docs. Chromium gets no network beyond loopback, so every page is
shown as it renders offline. Needs: git, make, uv, copier and `chromium` on PATH
(Debian: `apt-get install chromium`). `make screenshots` runs it; commit the PNGs it writes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "screenshots"
QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


@dataclass(frozen=True)
class Shot:
    """One PNG: its file name, the texts its page must show first, and the viewport."""

    name: str
    wait_for: tuple[str, ...]
    width: int = 1400
    height: int = 900


SHOTS = (
    Shot("mlflow-training-runs.png", ("Metrics", "Parameters"), 1600, 700),
    Shot("mlflow-registered-model.png", ("champion", "challenger"), 1400, 600),
    Shot("evidently-drift-report.png", ("Dataset Drift", "Drift Score"), 1400, 1000),
)

# The MLflow UI remembers these per browser (localStorage key + "_v1", JSON values): open in the
# classic-ML view, without the assistant panel and first-visit tips covering the page.
MLFLOW_PREFS = {
    "mlflow.workflowType_v1": "machine_learning",
    "mlflow.assistant.panelOpen_v1": False,
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,
    "mlflow.detectIssues.guidanceShown_v1": True,
    "mlflow.flagForReview.guidanceShown_v1": True,
}

# Runs in the project's own environment: a month of drifted trips through POST /predict/batch
# (one caller key per batch, so the sticky split sends some batches to the challenger), then
# their actual durations through POST /ground-truth.
TRAFFIC = """
import importlib, json, sys, urllib.request
base, package, rows, drift = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
problem = importlib.import_module(package + ".problem").PROBLEM
synthetic = importlib.import_module(package + ".synthetic")
trips = problem.prepare(synthetic.generate_trips(2024, 3, rows, 7, drift), "drifted month")
target = problem.target.name
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)
truth, variants = [], {}
for start in range(0, len(trips), 50):
    chunk = trips.iloc[start:start + 50]
    batch = json.loads(chunk[problem.features].to_json(orient="records"))
    answer = post("/predict/batch", {"key": f"caller-{start}", "rows": batch})
    variants[answer["variant"]] = variants.get(answer["variant"], 0) + len(batch)
    truth += [{"request_id": p["request_id"], target: float(d)}
              for p, d in zip(answer["predictions"], chunk[target])]
post("/ground-truth", {"items": truth})
print(f"sent {len(truth)} drifted trips {variants} and their actual durations")
"""


# ------------------------------------------------------------------ headless Chromium


class Browser:
    """Headless Chromium driven over `--remote-debugging-pipe` (NUL-separated JSON on fd 3/4)."""

    def __init__(self, chromium: str, profile: Path) -> None:
        to_chrome, self._write_fd = os.pipe()
        self._read_fd, from_chrome = os.pipe()
        args = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--proxy-server=127.0.0.1:9",  # offline: anything not on loopback fails to load
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            ["sh", "-c", f'exec "$@" 3<&{to_chrome} 4>&{from_chrome}', "sh", *args],
            pass_fds=(to_chrome, from_chrome),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer = b""
        self._next_id = 0
        try:
            targets = self.call("Target.getTargets")["targetInfos"]
            page = next(t["targetId"] for t in targets if t["type"] == "page")
            attached = self.call("Target.attachToTarget", targetId=page, flatten=True)
            self.session = attached["sessionId"]
            self.call("Page.enable", session=self.session)
        except BaseException:
            self.close()
            raise

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are dropped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            while b"\0" not in self._buffer:
                left = max(0.0, deadline - time.monotonic())
                if not select.select([self._read_fd], [], [], left)[0]:
                    raise TimeoutError(f"Chromium did not answer {method}")
                chunk = os.read(self._read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium exited")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, session=self.session, **params)

    def remember(self, storage: dict[str, Any]) -> None:
        """Put these localStorage entries (JSON-encoded) in place before any page script runs."""
        entries = json.dumps({key: json.dumps(value) for key, value in storage.items()})
        script = f"for (const [k, v] of Object.entries({entries})) localStorage.setItem(k, v)"
        self.page("Page.addScriptToEvaluateOnNewDocument", source=f"try {{{script}}} catch {{}}")

    def evaluate(self, expression: str) -> Any:
        result = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def shoot(self, url: str, shot: Shot, path: Path, timeout: float = 90) -> None:
        """Load `url` in a `shot`-sized viewport, wait for its text to render, write the PNG."""
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=shot.width,
            height=shot.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.page("Page.navigate", url="about:blank")  # a fresh document, not a hash change
        self.page("Page.navigate", url=url)
        texts = json.dumps(shot.wait_for)
        probe = f"!!document.body && {texts}.every(t => document.body.innerText.includes(t))"
        deadline = time.monotonic() + timeout
        while not self.evaluate(probe):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} never showed {shot.wait_for!r}")
            time.sleep(0.5)
        time.sleep(3)  # let late requests, charts and animations settle
        png = base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(png)
        width, height = png_size(path)
        print(f"  {path.name}: {width}x{height}, {len(png) // 1024} KB")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        stop(self.proc)
        os.close(self._write_fd)
        os.close(self._read_fd)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file; ValueError if it is not one."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


# ------------------------------------------------------------------ the project and its servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(cmd: list[str], cwd: Path) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, env={**os.environ, **QUIET})


def start(
    cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, output to `log`."""
    print("$", " ".join(cmd), "&", flush=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            env={**os.environ, **QUIET, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started here and its group: SIGINT (graceful), SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):  # stragglers of an exited leader
        os.killpg(proc.pid, signal.SIGKILL)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    """Wait until `url` answers 200 (servers start slowly on a busy laptop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited:\n{log.read_text()[-3000:]}")
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(url, timeout=5) as resp,
        ):
            if resp.status == 200:
                return
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def api(base: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return dict(json.load(resp))


@contextlib.contextmanager
def server(
    cmd: list[str], cwd: Path, ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    proc = start(cmd, cwd, log, env)
    try:
        wait_http(ready_url, proc, log)
        yield
    finally:
        stop(proc)


def generate(dest: Path) -> Path:
    copy = ["copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD", "--data", "level=3"]
    run([*copy, str(ROOT), str(dest)], ROOT)
    git = ["git", "-c", "user.name=screenshots", "-c", "user.email=screenshots@localhost"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        run([*git, *cmd], dest)
    return dest


def answers(project: Path) -> dict[str, str]:
    """The project's Copier answers (flat `key: value` lines, no YAML parser needed)."""
    out = {}
    for line in (project / ".copier-answers.yml").read_text().splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith("#"):
            out[key.strip()] = value.strip().strip("'\"")
    return out


def traffic(project: Path, package: str, logs: Path) -> None:
    """Serve champion and challenger (`make serve`) and send them a drifted month."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = ["make", "serve", f"PORT={port}"]
    with server(serve, project, f"{base}/health/ready", logs / "serve.log"):
        info = api(base, "/info")
        print("  serving", [(m["alias"], m["version"]) for m in info["models"]])
        print("$ uv run --frozen python -c TRAFFIC  # 5000 trips of a month with drift 0.8")
        cmd = ["uv", "run", "--frozen", "python", "-c", TRAFFIC, base, package, "5000", "0.8"]
        subprocess.run(cmd, cwd=project, check=True, env={**os.environ, **QUIET})
    # The log writer flushes on shutdown, which `server` waited for: the window is complete.


def shoot_mlflow(browser: Browser, project: Path, out: Path, logs: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mlflow = ["uv", "run", "--frozen", "mlflow", "ui", "--host", "127.0.0.1", "--port", str(port)]
    mlflow += ["--workers", "1", "--backend-store-uri", "sqlite:///.mlops/mlflow.db"]
    mlflow += ["--default-artifact-root", ".mlops/artifacts"]  # as `make mlflow-ui`
    no_jobs = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers
    with server(mlflow, project, f"{base}/health", logs / "mlflow.log", no_jobs):
        experiments = api(base, "/api/2.0/mlflow/experiments/search", {"max_results": 100})
        experiment = next(e for e in experiments["experiments"] if e["name"] != "Default")
        models = api(base, "/api/2.0/mlflow/registered-models/search")["registered_models"]
        model = next(m["name"] for m in models if {"champion", "challenger"} <= aliases(m))
        browser.remember(runs_table(base, experiment["experiment_id"]))
        urls = {
            "mlflow-training-runs.png": f"{base}/#/experiments/{experiment['experiment_id']}/runs",
            "mlflow-registered-model.png": f"{base}/#/models/{model}",
        }
        for shot in SHOTS:
            if shot.name in urls:
                browser.shoot(urls[shot.name], shot, out / shot.name)


def runs_table(base: str, experiment: str) -> dict[str, Any]:
    """The runs page's saved state: metric and parameter columns, the newest run expanded."""
    body = {"experiment_ids": [experiment], "max_results": 100, "order_by": ["start_time DESC"]}
    runs = api(base, "/api/2.0/mlflow/runs/search", body)["runs"]
    parents = [r for r in runs if "mlflow.parentRunId" not in tags(r)]
    newest = parents[0]
    metrics = {m["key"] for r in runs for m in r["data"].get("metrics", [])}
    metrics = sorted(key for key in metrics if "." not in key)  # not the data's row counts
    params = sorted(p["key"] for p in newest["data"].get("params", []) if "." not in p["key"])
    columns = ["attributes.`Models`"]
    columns += [f"metrics.`{key}`" for key in metrics] + [f"params.`{key}`" for key in params]
    state = {"selectedColumns": columns, "runsExpanded": {newest["info"]["run_id"]: True}}
    return {f'MLflowLocalStorage-1.1-ExperimentPage-["{experiment}"]-ReactComponentState': state}


def tags(run: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}


def aliases(model: dict[str, Any]) -> set[str]:
    return {alias["alias"] for alias in model.get("aliases", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, help="a generated level-3+ project to reuse")
    parser.add_argument(
        "--no-train", action="store_true", help="use the --project's registered models as they are"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="(default: %(default)s)")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        parser.error("needs `chromium` on PATH (Debian: apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        work = Path(tmp)
        project = (args.project or generate(work / "project")).resolve()
        logs = work / "logs"
        logs.mkdir()
        settings = answers(project)
        run(["make", "install"], project)
        if not args.no_train:  # the example's data, then a champion and a challenger
            run(["make", "data"], project)
            run(["make", "train"], project)
            run(["make", "train", "ARGS=--set model.family=hist_gradient_boosting"], project)
        traffic(project, settings["package_name"], logs)
        run(["make", "monitor"], project)
        reports = (project / "reports").glob("monitoring-*.html")
        report = max(reports, key=lambda path: path.stat().st_mtime)
        browser = Browser(chromium, work / "chromium-profile")
        try:
            browser.remember(MLFLOW_PREFS)
            shoot_mlflow(browser, project, args.out, logs)
            drift = next(s for s in SHOTS if s.name == "evidently-drift-report.png")
            browser.shoot(report.as_uri(), drift, args.out / drift.name)
        finally:
            browser.close()
    print(f"wrote {len(SHOTS)} screenshots to {args.out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
