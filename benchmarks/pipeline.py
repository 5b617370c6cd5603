"""Pipeline overhead: the level-2 Prefect training flow against the same functions called directly.

One generated, installed level-2 project (or ``--project``, any level >= 2). Prefect's home is
warmed first (one flow run, not counted). Then, alternated round after round, each contender
runs in a fresh process of the project's interpreter with the same configuration, the same data
and search budget, tracking to a local SQLite store and artifact folder of its own:

- ``Prefect flow``: ``training_flow(config)``, what ``make train`` runs;
- ``direct calls``: the flow's task functions (``task.fn``) called in the same order, with the
  same MLflow run, registration and alias, and no Prefect run;
- ``Prefect flow, running server``: the same ``training_flow(config)`` with ``PREFECT_API_URL``
  pointing at a ``prefect server start`` that the benchmark starts once (its own home in the
  scratch folder, analytics off) and stops at the end; its start is timed once, not per run.

Each process reports the time of the training call (imports excluded, the same modules for
both) and the whole process's wall time is measured too.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the project's interpreter (the child)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    Deadline,
    Options,
    Result,
    alternate,
    env,
    fmt,
    free_port,
    median,
    package_of,
    ratio,
    render_project,
    sh,
    template_workdir,
    workdir,
)

TARGET_OVERHEAD = 3.0  # seconds per run once Prefect's home exists, issue 8
CONTENDERS = {
    "Prefect flow": "flow",
    "direct calls": "direct",
    "Prefect flow, running server": "server",
}
QUICK_OVERRIDES = ("search.budget=1",)
#: Rows per generated month (``<slug> data --rows``): quick mode, full runs.
ROWS = {True: 2_000, False: 100_000}


# --- the child: runs inside the generated project's environment ------------------------------


def _direct(flow: Any, tracking: Any, config: Any) -> Any:
    """The body of ``training_flow`` with every task's plain function (no Prefect run)."""
    from mlflow import MlflowClient

    tracking.configure_tracking()
    data = flow.load_data.fn(config.data)
    run_id = flow._start_run(config, data, flow.PROBLEM)
    client = MlflowClient()
    features = flow.make_features.fn(data, config.search.tuning_fraction, config.search.seed)
    params = flow.tune.fn(features, config, run_id)
    model = flow.train_best.fn(features, config.model.family, params)
    metrics = flow.evaluate_model.fn(model, data)
    flow.log_run.fn(run_id, config, data, features, params, model, metrics)
    version = flow.register.fn(run_id)
    client.set_terminated(run_id, "FINISHED")
    alias = flow.assign_alias.fn(version)
    return flow.TrainingResult(run_id, version, alias, metrics)


def child(argv: list[str]) -> None:
    """``flow|server|direct [KEY=VALUE ...]``: one training run; print its seconds as JSON."""
    from importlib import import_module

    mode, overrides = argv[0], argv[1:]
    start = time.perf_counter()
    pkg = os.environ["BENCH_PACKAGE"]
    import_module(f"{pkg}.training.environment").set_offline_defaults()  # what `train` does
    flow = import_module(f"{pkg}.training.flow")
    tracking = import_module(f"{pkg}.training.tracking")
    config = import_module(f"{pkg}.training.config").load_config("configs/training.yaml", overrides)
    imported = time.perf_counter() - start
    start = time.perf_counter()
    result = flow.training_flow(config) if mode != "direct" else _direct(flow, tracking, config)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"seconds": seconds, "imports": imported, "version": result.model_version}
            | {"metrics": result.metrics}
        )
    )


# --- the harness ------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes in process group ``pgid``."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state; utime, stime are 11, 12
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Server:
    """A ``prefect server start`` of the project's environment, in a process group of its own."""

    def __init__(self, project: Path, work: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log = work / "prefect-server.log"
        self.home = work / "prefect-server"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds = float("nan")
        self.project = project

    def start(self, timeout: float = 300) -> float:
        """Start the server and wait for ``/api/health``; return the seconds that took."""
        command = [str(self.project / ".venv/bin/prefect"), "server", "start", "--host"]
        command += ["127.0.0.1", "--port", str(self.port)]
        start = time.perf_counter()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.project,
                env=env(PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false"),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.perf_counter() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                    if response.status == 200:
                        self.start_seconds = time.perf_counter() - start
                        return self.start_seconds
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(
            f"prefect server not healthy in {timeout:.0f} s:\n{self.log.read_text()[-3000:]}"
        )

    def cpu(self) -> float:
        return _group_cpu(self.proc.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        """Terminate the whole process group, then kill whatever is left of it."""
        if self.proc is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


@contextmanager
def running_server(project: Path, work: Path) -> Iterator[Server]:
    server = Server(project, work)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _stores(work: Path, name: str) -> dict[str, str]:
    """A SQLite tracking store and an artifact folder of the contender's own."""
    folder = work / "stores" / name
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_LOCATION": (folder / "artifacts").as_uri(),
    }


def train_once(
    project: Path,
    work: Path,
    mode: str,
    overrides: tuple[str, ...],
    samples: dict[str, list[Any]],
    server: Server,
) -> float:
    """One training run of ``mode`` in a fresh process; record its figures; return wall time.

    CPU seconds (the process and the processes it waited for, e.g. Prefect's ephemeral server;
    for ``server`` also the running server's CPU during the run) are recorded too: on a shared
    machine they move less than wall time.
    """
    extra = {"PREFECT_API_URL": server.url} if mode == "server" else {}
    server_before = server.cpu() if mode == "server" else 0.0
    cpu_before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        [str(project / ".venv/bin/python"), str(Path(__file__).resolve()), mode, *overrides],
        cwd=project,
        env=env(BENCH_PACKAGE=package_of(project, "training"), **_stores(work, mode), **extra),
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    figures = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    server_cpu = (server.cpu() - server_before) if mode == "server" else 0.0
    cpu = _children_cpu() - cpu_before + server_cpu
    samples.setdefault(mode, []).append(
        {**figures, "wall": wall, "cpu": cpu, "server_cpu": server_cpu}
    )
    print(
        f"   {mode}: {figures['seconds']:.2f} s in the call, {wall:.2f} s wall, {cpu:.2f} s CPU",
        flush=True,
    )
    return wall


def measure(project: Path, work: Path, options: Options) -> Result:
    overrides = QUICK_OVERRIDES if options.quick else ()
    package = package_of(project, "training")
    print("   generating the example's data (not counted)", flush=True)
    command = [str(project / ".venv/bin/python"), "-m", package, "data", "--overwrite"]
    rows = ["--rows", str(ROWS[options.quick])]
    subprocess.run([*command, *rows], cwd=project, check=True, capture_output=True, timeout=600)
    print("   starting a Prefect server (not counted)", flush=True)
    with running_server(project, work) as server:
        print(f"   server healthy in {server.start_seconds:.1f} s at {server.url}", flush=True)
        # Data generated once, Prefect's home, the server and each store warmed: not counted.
        # Quick mode (a smoke run, its figures not meant to be read) skips the warm-up.
        warm: dict[str, list[Any]] = {}
        if not options.quick:
            print("   warming Prefect's home, the server, the data and the stores", flush=True)
            for mode in CONTENDERS.values():
                train_once(project, work, mode, overrides, warm, server)
        samples: dict[str, list[Any]] = {}
        rounds = 1 if options.quick else max(1, options.rounds)
        contenders = {
            name: (lambda mode=mode: train_once(project, work, mode, overrides, samples, server))
            for name, mode in CONTENDERS.items()
        }
        load_before = os.getloadavg()
        alternate(contenders, Deadline(options.budget, rounds, default=600))
        load_after = os.getloadavg()
    return _result(samples, warm, overrides, server.start_seconds, (load_before, load_after))


def _result(
    samples: dict[str, list[Any]],
    warm: dict[str, list[Any]],
    overrides: tuple[str, ...],
    server_start: float,
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> Result:
    def med(mode: str, key: str) -> float:
        return median([s[key] for s in samples[mode]])

    result = Result(
        name="pipeline",
        title="Pipeline overhead: level-2 Prefect training flow vs direct calls, median seconds",
        columns=["measured", "Prefect flow", "direct calls", "overhead s", "ratio", "target"],
    )
    measured = [
        ("training call", "seconds"),
        ("whole process", "wall"),
        ("whole process, CPU s", "cpu"),
    ]
    for mode, suffix in [("flow", ""), ("server", ", running server")]:
        for label, key in measured:
            flow_s, direct_s = med(mode, key), med("direct", key)
            result.rows.append(
                [
                    label + suffix,
                    fmt(flow_s),
                    fmt(direct_s),
                    fmt(flow_s - direct_s),
                    f"{fmt(ratio(flow_s, direct_s))}x",
                    f"overhead < {TARGET_OVERHEAD:g} s" if key == "seconds" else "-",
                ]
            )
    overhead = med("flow", "seconds") - med("direct", "seconds")
    served = med("server", "seconds") - med("direct", "seconds")
    result.chart = [
        ("flow / direct (training call)", ratio(med("flow", "seconds"), med("direct", "seconds"))),
        (f"overhead / {TARGET_OVERHEAD:g} s target", ratio(overhead, TARGET_OVERHEAD)),
        (
            "flow, running server / direct (training call)",
            ratio(med("server", "seconds"), med("direct", "seconds")),
        ),
        (
            f"overhead, running server / {TARGET_OVERHEAD:g} s target",
            ratio(served, TARGET_OVERHEAD),
        ),
    ]
    result.chart_title = "flow / direct calls, and overhead / target (< 1 is better)"
    metrics = samples["flow"][-1]["metrics"]

    def load(values: tuple[float, float, float]) -> str:
        return "/".join(f"{v:.1f}" for v in values)

    result.notes += [
        f"{len(samples['flow'])} alternating round(s) of the three contenders after "
        + ("no warm-up (quick mode)" if not warm else "one warm-up run of each (not counted)")
        + "; each run a fresh process of the project's interpreter. "
        + ("Quick mode: " + ", ".join(overrides) + ". " if overrides else "")
        + "Configuration: the project's configs/training.yaml (validation rmse "
        f"{metrics.get('rmse', float('nan')):.3f} in the last flow run). "
        "Training call = the flow or the direct calls, imports excluded; whole process = "
        "interpreter start to exit, imports of MLflow, Prefect and the package included "
        "(the same for all, so its difference is Prefect's work at run time and shutdown); "
        "CPU s = user + system time of the process and of the processes it started and waited "
        "for (Prefect's ephemeral API server), plus, for the running-server rows, the running "
        "server's CPU during the run; a busy machine inflates CPU s far less than wall time.",
        "Rows without a suffix: the flow as `make train` runs it, whose first call in the "
        "process starts Prefect's ephemeral API server. Rows ending `running server`: the same "
        "flow with PREFECT_API_URL set to a `prefect server start` (Prefect home of its own, "
        f"analytics off) started once before the runs; it was healthy in {fmt(server_start, 1)} s "
        "(paid once, not in any row).",
        f"Target (issue 8): under {TARGET_OVERHEAD:g} s of overhead per run once Prefect's home "
        f"exists: measured {fmt(overhead)} s with the ephemeral server "
        f"({'met' if overhead < TARGET_OVERHEAD else 'missed'}), {fmt(served)} s with a running "
        f"server ({'met' if served < TARGET_OVERHEAD else 'missed'}).",
        f"Load average (1/5/15 min) {load(loads[0])} when the rounds began, {load(loads[1])} "
        "when they ended.",
    ]
    result.data = {
        "samples": samples,
        "warm_up": warm,
        "overrides": list(overrides),
        "server_start_seconds": server_start,
        "load_average": {"before": list(loads[0]), "after": list(loads[1])},
    }
    return result


def run(options: Options) -> Result:
    if options.project is not None:
        with workdir("pipeline") as work:
            return measure(options.project.resolve(), work, options)
    with template_workdir("pipeline") as (work, template):
        project = work / "level-2"
        render_project(template, project, 2)
        sh(["make", "install"], project, timeout=900)
        return measure(project, work, options)


if __name__ == "__main__":
    child(sys.argv[1:])
