"""Log volume: what `promote` and `monitor` read from a large prediction log (SQLite).

One generated, installed level-3 project (or ``--project``). Its own code creates the
prediction log (the service's tables and indexes) and fills it with ``--rows`` predictions
(default 1,000,000) served over one week, a share of them with ground truth. Then, per round,
each contender runs in a fresh process of the project's interpreter, alternated:

- ``labelled rows``: the rows `promote` (and level 4's gate and retraining) scores the models
  on, the labelled predictions of the last 168 hours. ``read_labelled`` (the inner join on the
  request id, selected in SQL) against what a user would write instead, and what the project
  did before: ``pandas.read_sql`` of the window and of the ground truth, merged in pandas.
- ``monitor window``: the newest ``window.max_rows`` predictions of the last 24 hours with
  their ground truth where it arrived, as `monitor` and level 4's trigger check read them.
  ``read_window`` (ordered and bounded in SQL along the ``ts`` index) against
  ``pandas.read_sql`` of the window and the ground truth, merged, sorted and cut in pandas.

Each process reports its own time (imports excluded; opening the log included) and its peak
resident memory (``ru_maxrss``, imports included).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the project's interpreter (the child)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    Deadline,
    Options,
    Result,
    fmt,
    median,
    package_of,
    ratio,
    render_project,
    sh,
    template_workdir,
    workdir,
)

DEFAULT_ROWS = 1_000_000
QUICK_ROWS = 20_000
LABELLED_SHARE = 0.001  # about what a week of a busy service gets labelled, or less
SPAN_HOURS = 168.0  # one week of traffic: promotion.window_hours
WINDOW_HOURS = 24.0  # monitoring's window.hours
WINDOW_MAX_ROWS = 100_000  # monitoring's window.max_rows
DISTINCT_ROWS = 10_000  # feature rows drawn once, repeated through the log
TARGET_SECONDS = 10.0  # issue 23, at 10M rows
TARGET_BYTES = 2**30
OPERATIONS = {
    "labelled rows": ("labelled-ours", "labelled-pandas"),
    "monitor window": ("window-ours", "window-pandas"),
}
NAMES = {"ours": "SQL (read_labelled / read_window)", "pandas": "pandas read_sql + merge"}


# --- the child: runs inside the generated project's environment ------------------------------


def _package() -> str:
    return os.environ["BENCH_PACKAGE"]


def _until() -> Any:
    from datetime import UTC, datetime

    return datetime(2024, 2, 15, tzinfo=UTC)


def _since(hours: float) -> Any:
    from datetime import timedelta

    return _until() - timedelta(hours=hours)


def child_fill(db: Path, rows: int) -> None:
    """``rows`` predictions spread over the week before ``_until``, every
    ``1 / LABELLED_SHARE``-th with ground truth, through the project's own schema."""
    from datetime import timedelta
    from importlib import import_module

    from sqlalchemy import insert

    pkg = _package()
    problem = import_module(f"{pkg}.problem").PROBLEM
    store = import_module(f"{pkg}.serving.store")
    sample = import_module(f"{pkg}.sampledata").sample_frame(DISTINCT_ROWS, seed=3)
    features = problem.feature_frame(sample).to_dict("records")
    target = sample[problem.target.name].tolist()
    engine = store.make_engine(f"sqlite:///{db}")
    columns = set(store.predictions.c.keys())
    start, step = _since(SPAN_HOURS), SPAN_HOURS * 3600 / rows
    every = round(1 / LABELLED_SHARE)
    truth: list[tuple[str, float]] = []
    chunk = 50_000
    for first in range(0, rows, chunk):
        batch = []
        for i in range(first, min(first + chunk, rows)):
            row = features[i % DISTINCT_ROWS]
            logged = {
                **row,
                "ts": start + timedelta(seconds=i * step),
                "request_id": f"r{i}",
                "variant": "champion" if i % 10 else "challenger",
                "model_version": 1 if i % 10 else 2,
                "prediction": target[i % DISTINCT_ROWS],
                "clipped": False,
                "latency_ms": 1.0,
            }
            batch.append({name: logged[name] for name in logged if name in columns})
            if i % every == 0:
                truth.append((f"r{i}", target[i % DISTINCT_ROWS]))
        with engine.begin() as conn:
            conn.execute(insert(store.predictions), batch)
    store.upsert_ground_truth(engine, truth)
    wal = db.with_name(f"{db.name}-wal")  # rows not yet checkpointed into the file
    size = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    print(json.dumps({"rows": rows, "labelled": len(truth), "bytes": size}))


def _pandas_window(db: Path, hours: float) -> Any:
    """The window and the ground truth read by pandas and merged there (the target's nulls
    kept), as a user without the project's reader would."""
    import pandas as pd
    from sqlalchemy import create_engine

    since, until = (t.strftime("%Y-%m-%d %H:%M:%S.%f") for t in (_since(hours), _until()))
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        logged = pd.read_sql_query(
            "SELECT * FROM predictions WHERE ts >= ? AND ts < ?", conn, params=(since, until)
        )
        truth = pd.read_sql_query("SELECT * FROM ground_truth", conn)
    return logged.merge(
        truth.drop(columns="ts"), on="request_id", how="left", validate="one_to_one"
    )


def child_measure(mode: str, db: Path) -> None:
    """Time one contender on the log in ``db``; print seconds, rows and peak memory as JSON."""
    import resource
    from importlib import import_module

    pkg = _package()
    data = import_module(f"{pkg}.monitoring.data")
    store = import_module(f"{pkg}.serving.store")
    target = data.TARGET
    start = time.perf_counter()
    engine = store.make_engine(f"sqlite:///{db}")  # opening the log (and sampling its statistics)
    if mode == "labelled-ours":
        frame = data.read_labelled(engine, _since(SPAN_HOURS), _until())
    elif mode == "labelled-pandas":
        merged = _pandas_window(db, SPAN_HOURS)
        frame = merged[merged[target].notna()]
    elif mode == "window-ours":
        since = _since(WINDOW_HOURS)
        frame = data.read_window(engine, since, _until(), WINDOW_MAX_ROWS, data.CHECK_COLUMNS)
    else:
        merged = _pandas_window(db, WINDOW_HOURS)
        frame = merged.sort_values("ts", ascending=False).head(WINDOW_MAX_ROWS)
    out = {
        "seconds": time.perf_counter() - start,
        "rows": len(frame),
        "labelled": int(frame[target].notna().sum()),
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
    }
    print(json.dumps(out))


def child(argv: list[str]) -> None:
    command, db = argv[0], Path(argv[1])
    if command == "fill":
        child_fill(db, int(argv[2]))
    else:
        child_measure(command, db)


# --- the harness ------------------------------------------------------------------------------


def _call(project: Path, args: list[str], timeout: float = 3600) -> dict[str, Any]:
    import subprocess

    from benchmarks.common import env

    proc = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), str(Path(__file__).resolve()), *args],
        cwd=project,
        env=env(BENCH_PACKAGE=package_of(project, "monitoring"), PYTHONWARNINGS="ignore"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def _rows(result: Result, size: int, runs: dict[str, list[dict[str, Any]]]) -> None:
    for operation, (ours, theirs) in OPERATIONS.items():
        ours_s = median([r["seconds"] for r in runs[ours]])
        for mode in (ours, theirs):
            seconds = median([r["seconds"] for r in runs[mode]])
            result.rows.append(
                [
                    f"{size:,}",
                    operation,
                    NAMES[mode.split("-")[1]],
                    str(runs[mode][-1]["rows"]),
                    fmt(seconds, 3),
                    f"{max(r['maxrss'] for r in runs[mode]) / 2**20:.0f}",
                    f"{fmt(ratio(seconds, ours_s), 1)}x",
                ]
            )


def measure(project: Path, work: Path, size: int, options: Options) -> Result:
    result = Result(
        name="log_volume",
        title="Log volume: promote's labelled rows and monitor's window, SQL vs pandas",
        columns=[
            "logged rows",
            "read",
            "contender",
            "rows read",
            "median s",
            "peak MiB",
            "time ratio to SQL",
        ],
    )
    db = work / f"log-{size}.db"
    start = time.monotonic()
    filled = _call(project, ["fill", str(db), str(size)])
    print(f"   {size:,} rows logged in {time.monotonic() - start:.0f} s: {filled}", flush=True)
    modes = [mode for pair in OPERATIONS.values() for mode in pair]
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    deadline = Deadline(options.budget, 1 if options.quick else max(1, options.rounds), 900)
    for i in deadline.rounds():
        shift = i % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            runs[mode].append(_call(project, [mode, str(db)]))
            sample = runs[mode][-1]
            print(
                f"   round {i} {mode}: {sample['seconds']:.3f} s "
                f"{sample['maxrss'] / 2**20:.0f} MiB, {sample['rows']} rows",
                flush=True,
            )
    for operation, (ours, theirs) in OPERATIONS.items():
        mine, other = runs[ours][-1], runs[theirs][-1]
        if (mine["rows"], mine["labelled"]) != (other["rows"], other["labelled"]):
            raise RuntimeError(f"{operation}: the contenders read different rows: {mine} {other}")
    _rows(result, size, runs)
    labelled_s = median([r["seconds"] for r in runs["labelled-ours"]])
    labelled_pandas = median([r["seconds"] for r in runs["labelled-pandas"]])
    window_s = median([r["seconds"] for r in runs["window-ours"]])
    peak = max(r["maxrss"] for mode in ("labelled-ours", "window-ours") for r in runs[mode])
    result.chart = [
        (f"{size:,} rows: labelled rows, SQL / pandas", ratio(labelled_s, labelled_pandas)),
        (
            f"{size:,} rows: slower read / {TARGET_SECONDS:g} s",
            ratio(max(labelled_s, window_s), TARGET_SECONDS),
        ),
        (f"{size:,} rows: peak memory / 1 GiB", ratio(peak, TARGET_BYTES)),
    ]
    result.chart_title = "SQL reads to pandas and to the targets (< 1 is better)"
    result.notes += [
        f"{len(runs['labelled-ours'])} alternating round(s), each contender a fresh process of "
        "the project's interpreter; times exclude imports and include opening the log "
        "(`make_engine`, which samples SQLite's statistics); peak memory is the process's "
        "ru_maxrss, imports included. Both contenders of a read return the same rows.",
        f"The log (SQLite, the service's schema and indexes, {filled.get('bytes', 0) / 2**20:.0f}"
        f" MiB) holds {size:,} predictions served evenly over {SPAN_HOURS:g} hours, "
        f"{filled.get('labelled', 0):,} ({LABELLED_SHARE:.1%}) of them with ground truth. "
        f"`labelled rows` reads the {SPAN_HOURS:g}-hour window (promotion.window_hours); "
        f"`monitor window` the newest {WINDOW_MAX_ROWS:,} rows (window.max_rows) of the last "
        f"{WINDOW_HOURS:g} hours (window.hours).",
        f"Target (issue 23, at 10M rows): each read under {TARGET_SECONDS:g} s and 1 GiB; at "
        f"{size:,} rows the SQL reads took {fmt(labelled_s, 3)} s and {fmt(window_s, 3)} s, "
        f"peak {peak / 2**20:.0f} MiB.",
    ]
    result.data = {"rows": size, "fill": filled, "samples": runs}
    db.unlink(missing_ok=True)
    return result


def run(options: Options) -> Result:
    size = QUICK_ROWS if options.quick else (options.rows or DEFAULT_ROWS)
    if options.project is not None:
        with workdir("log-volume") as work:
            return measure(options.project.resolve(), work, size, options)
    with template_workdir("log-volume") as (work, template):
        project = work / "level-3"
        render_project(template, project, 3)
        sh(["make", "install"], project, timeout=900)
        return measure(project, work, size, options)


if __name__ == "__main__":
    child(sys.argv[1:])
