"""Serving: the generated level-3 service against ``mlflow models serve --env-manager local``.

Both serve the same registered champion of one generated, trained level-3 project, on loopback,
with one uvicorn worker each, and get the same trips. A load generator in its own process drives
one server at a time; contenders alternate in every round. The load generator is ``wrk`` (C, one
thread, wrk_post.lua) when it is on PATH (Debian/Ubuntu: ``apt-get install wrk``), else
loadgen.py (httpx.AsyncClient): a Python client on the same cores saturates first and caps what
it can measure (it reported 256 req/s for a service wrk measured at 1,800-2,900).
The floor is the model's own in-process predict time for one row (floor.py).

Beside the regressor (the taxi example), a classifier contender: a second level-3 project
with the own-problem binary contract (tests/data/own_problem: breast cancer, string classes),
its data and a logistic regression champion registered by champion.py, measured on single rows
at concurrency 16 (issue 15). Its mlflow pyfunc answers ``predict_proba``; the service answers
the class and every class's probability.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import (
    ROOT,
    Deadline,
    Options,
    Result,
    env,
    fmt,
    free_port,
    median,
    package_of,
    ratio,
    render_project,
    sh,
    snapshot_template,
    workdir,
)

HERE = Path(__file__).resolve().parent
Scenario = tuple[str, int, int]  # label, rows per request, concurrency
SCENARIOS: list[Scenario] = [
    ("1 row", 1, 1),
    ("1 row", 1, 16),
    ("100 rows", 100, 1),
    ("100 rows", 100, 16),
]
CLASSIFIER_SCENARIOS: list[Scenario] = [("1 row, binary classifier", 1, 16)]
OWN_PROBLEM = ROOT / "tests" / "data" / "own_problem"
Samples = dict[str, list[dict[str, float]]]
TARGET_THROUGHPUT = 5.0  # x mlflow's req/s at concurrency 16 (issue 8)
STARTUP = 180.0  # seconds a server may take to answer


def trips(n: int, seed: int = 7) -> list[dict[str, float | int]]:
    rng = random.Random(seed)
    return [
        {
            "PULocationID": rng.randint(1, 263),
            "DOLocationID": rng.randint(1, 263),
            "trip_distance": round(rng.uniform(0.3, 15.0), 2),
        }
        for _ in range(n)
    ]


def prepare_project(work: Path) -> Path:
    """Generate level 3 from the template's working tree, install it and train a champion."""
    if not (ROOT / "template" / "src" / "{{ package_name }}" / "serving" / "app.py").exists():
        raise RuntimeError("the template has no level-3 service (serving/app.py) yet")
    template = snapshot_template(work / "template")
    project = work / "project"
    render_project(template, project, 3)
    sh(["make", "install"], project, timeout=900)
    (project / ".mlops").mkdir(exist_ok=True)
    sh(["make", "data"], project, timeout=600)  # the example's data: nothing is generated silently
    sh(["make", "train"], project, timeout=900)
    return project


def prepare_classifier(work: Path) -> tuple[Path, list[dict[str, object]]]:
    """Level 3 with the own-problem binary contract, its data and a registered classifier.

    Returns the project and request rows drawn from its data.
    """
    template = work / "template"
    if not template.exists():
        snapshot_template(template)
    project = work / "classifier"
    render_project(template, project, 3)
    package = package_of(project)
    shutil.copy(OWN_PROBLEM / "binary_contract.py", project / "src" / package / "contract.py")
    sh(["make", "install"], project, timeout=900)
    python = str(project / ".venv" / "bin" / "python")
    (project / ".mlops").mkdir(exist_ok=True)
    data = project / "data" / "tumours"
    sh([python, str(OWN_PROBLEM / "make_data.py"), "binary", str(data)], project)
    rows = work / "classifier-rows.json"
    sh(
        [python, str(HERE / "champion.py"), package, str(data / "labelled.parquet"), str(rows)],
        project,
        timeout=600,
    )
    found: list[dict[str, object]] = json.loads(rows.read_text())
    return project, found


def wait_ready(
    url: str, body: bytes, proc: subprocess.Popen[bytes], log: Path, poll: float = 0.5
) -> None:
    import urllib.request

    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        request = urllib.request.Request(url, body, {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(poll)
    raise RuntimeError(f"{url} not ready after {STARTUP:.0f} s: {log.read_text()[-2000:]}")


@contextmanager
def server(
    cmd: list[str], project: Path, log: Path, **extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=project,
            env=env(**extra),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session, and everything it started."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def load_generator() -> str:
    """What drives the load: wrk when installed, else the Python client."""
    return "wrk" if shutil.which("wrk") else "httpx"


def load_wrk(url: str, body: Path, concurrency: int, seconds: float) -> dict[str, float]:
    """One wrk run (one thread, ``concurrency`` connections), in the loadgen.py figures."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(HERE / "wrk_post.lua"),
            url,
        ],
        env={**os.environ, "BODY": str(body)},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "requests": figures["requests"],
        "errors": figures["errors"],
        "rps": figures["requests"] / figures["seconds"],
        "p50_ms": figures["p50_us"] / 1000,
        "p99_ms": figures["p99_us"] / 1000,
    }


def load(python: Path, url: str, body: Path, concurrency: int, seconds: float) -> dict[str, float]:
    if load_generator() == "wrk":
        return load_wrk(url, body, concurrency, seconds)
    out = subprocess.run(
        [str(python), str(HERE / "loadgen.py"), url, str(body), str(concurrency), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(
    project: Path,
    rows: list[dict[str, object]],
    scenarios: list[Scenario],
    options: Options,
    work: Path,
) -> tuple[Samples, dict[str, float]]:
    """Serve ``project``'s champion both ways and load each with ``scenarios``, alternating.

    Returns the load figures by ``"<contender> <rows> <concurrency>"`` and the floor.
    """
    package, python = package_of(project), project / ".venv" / "bin" / "python"
    ports = {"service": free_port(), "mlflow": free_port()}
    urls = {
        "service": (
            f"http://127.0.0.1:{ports['service']}/predict",
            f"http://127.0.0.1:{ports['service']}/predict/batch",
        ),
        "mlflow": (f"http://127.0.0.1:{ports['mlflow']}/invocations",) * 2,
    }
    sizes = sorted({n for _label, n, _conc in scenarios} | {1})
    bodies: dict[tuple[str, int], Path] = {}
    for n in sizes:
        ours = {"features": rows[0]} if n == 1 else {"rows": rows[:n]}
        for name, payload in (("service", ours), ("mlflow", {"dataframe_records": rows[:n]})):
            path = work / f"{project.name}-{name}-{n}.json"
            path.write_text(json.dumps(payload))
            bodies[name, n] = path
    tracking = f"sqlite:///{project / '.mlops' / 'mlflow.db'}"
    path_env = f"{project / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    serve_ours = [str(python), "-m", package, "serve", "--port", str(ports["service"])]
    serve_mlflow = [
        str(project / ".venv" / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{package}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(ports["mlflow"]),
    ]
    samples: Samples = {}
    logs = {name: work / f"{project.name}-{name}.log" for name in ("service", "mlflow")}
    with (
        server(serve_ours, project, logs["service"], PATH=path_env) as ours_proc,
        server(
            serve_mlflow, project, logs["mlflow"], PATH=path_env, MLFLOW_TRACKING_URI=tracking
        ) as mlflow_proc,
    ):
        procs = {"service": ours_proc, "mlflow": mlflow_proc}
        for name, proc in procs.items():
            wait_ready(urls[name][0], bodies[name, 1].read_bytes(), proc, logs[name])
            for n in sizes:  # warm up, not counted
                load(python, urls[name][0 if n == 1 else 1], bodies[name, n], 4, 1.0)
        rounds = 1 if options.quick else max(1, options.rounds)
        names = ["service", "mlflow"]
        for i in Deadline(options.budget, rounds, default=300).rounds():
            for _label, n, conc in scenarios:
                order = names if i % 2 == 0 else names[::-1]
                for name in order:
                    url = urls[name][0 if n == 1 else 1]
                    figures = load(python, url, bodies[name, n], conc, options.duration)
                    samples.setdefault(f"{name} {n} {conc}", []).append(figures)
    floor = json.loads(
        subprocess.run(
            [str(python), str(HERE / "floor.py"), package, json.dumps(rows[0])],
            cwd=project,
            env=env(MLFLOW_TRACKING_URI=tracking),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return samples, floor


def _rows(samples: Samples, scenarios: list[Scenario], result: Result) -> None:
    """One table row and chart bar per scenario."""

    def med(name: str, n: int, conc: int, key: str) -> float:
        return median([s[key] for s in samples[f"{name} {n} {conc}"]])

    for label, n, conc in scenarios:
        ours_rps, ml_rps = med("service", n, conc, "rps"), med("mlflow", n, conc, "rps")
        ours_p99, ml_p99 = med("service", n, conc, "p99_ms"), med("mlflow", n, conc, "p99_ms")
        result.rows.append(
            [
                label,
                str(conc),
                fmt(ours_rps, 0),
                fmt(ml_rps, 0),
                f"{fmt(ratio(ours_rps, ml_rps))}x",
                f"{fmt(med('service', n, conc, 'p50_ms'), 1)} / {fmt(ours_p99, 1)}",
                f"{fmt(med('mlflow', n, conc, 'p50_ms'), 1)} / {fmt(ml_p99, 1)}",
                f"{fmt(ratio(ours_p99, ml_p99))}x",
            ]
        )
        result.chart.append((f"{label}, c={conc}", ratio(ours_rps, ml_rps)))


def _single_row_ratio(samples: Samples) -> float:
    ours = median([s["rps"] for s in samples["service 1 16"]])
    return ratio(ours, median([s["rps"] for s in samples["mlflow 1 16"]]))


def run(options: Options) -> Result:
    result = Result(
        name="serving",
        title="Serving: level-3 service vs mlflow models serve, same champion (medians)",
        columns=[
            "payload",
            "concurrency",
            "service req/s",
            "mlflow req/s",
            "throughput ratio",
            "service p50/p99 ms",
            "mlflow p50/p99 ms",
            "p99 ratio",
        ],
    )
    with workdir("serving") as work:
        project = options.project or prepare_project(work)
        regressor, floor = measure(project, trips(100), SCENARIOS, options, work)
        classifier_project, rows = prepare_classifier(work)
        classifier, classifier_floor = measure(
            classifier_project, rows, CLASSIFIER_SCENARIOS, options, work
        )
    _rows(regressor, SCENARIOS, result)
    _rows(classifier, CLASSIFIER_SCENARIOS, result)
    everything = [*regressor.values(), *classifier.values()]
    errors = sum(int(s["errors"]) for runs in everything for s in runs)
    rounds_done = len(regressor["service 1 1"])
    generator = (
        "wrk, one thread" if load_generator() == "wrk" else "httpx.AsyncClient; wrk not installed"
    )
    load_average = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    result.notes += [
        f"{rounds_done} alternating round(s) of {options.duration:g} s per contender and "
        f"scenario; {errors} non-200 answers. One uvicorn worker each, loopback, same rows; "
        f"the load generator is a separate process on the same cores ({generator}). Load "
        f"average at the end (1, 5, 15 min): {load_average}.",
        f"Target (issue 8): at least {TARGET_THROUGHPUT:g}x mlflow's req/s at concurrency 16 "
        f"with lower p99: measured {fmt(_single_row_ratio(regressor))}x for single rows "
        f"(regressor), {fmt(_single_row_ratio(classifier))}x for a binary classifier (issue "
        "15: breast cancer contract, logistic regression; mlflow answers predict_proba, the "
        "service the class and both probabilities).",
        f"Floor, in process, one row: MLflow pyfunc on a one-row DataFrame "
        f"{fmt(floor['pyfunc_dataframe_ms'], 3)} ms; the service's predictor "
        f"({'fast path, no DataFrame' if floor['service_fast_path'] else 'sklearn pipeline'}) "
        f"{fmt(floor['service_predictor_ms'], 4)} ms. Classifier: pyfunc "
        f"{fmt(classifier_floor['pyfunc_dataframe_ms'], 3)} ms, the service's predictor "
        f"({'fast path' if classifier_floor['service_fast_path'] else 'sklearn pipeline'}) "
        f"{fmt(classifier_floor['service_predictor_ms'], 4)} ms.",
    ]
    result.chart_title = "service / mlflow req/s (higher is better)"
    result.data = {
        "samples": regressor,
        "floor": floor,
        "classifier": {"samples": classifier, "floor": classifier_floor},
        "load_generator": load_generator(),
        "load_average": os.getloadavg(),
    }
    return result
