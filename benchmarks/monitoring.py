"""Monitoring cost: the level-3 drift check on 10k, 100k and 1M logged predictions.

One generated, installed level-3 project (or ``--project``). Its own code fills a prediction
log (SQLite, the service's table) with synthetic trips of a drifted month scored by
a model trained on the reference month, with ground truth for a tenth of them. Then, per size
and round, each contender runs in a fresh process of the project's interpreter, alternated:

- ``drift check``: the project's check as ``make monitor`` runs it once the champion and the
  reference are loaded: ``read_window`` (the log joined with ground truth) and ``check_window``
  (Evidently drift, missing values, RMSE per variant, metrics stored, HTML report written);
- ``Evidently direct``: what a user would write instead: ``pandas.read_sql`` of the same rows
  and ``Report([DataDriftPreset()])`` on the same frames (same column types), no report file;
- ``scipy KS``: the same read and a two-sample Kolmogorov-Smirnov test per column.

Each process reports its own time (imports and the reference excluded, the same for all) and
its peak resident memory (``ru_maxrss``, imports included).
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

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000,)
TARGET_SECONDS = 10.0  # 1M rows, issue 8
TARGET_BYTES = 2 * 2**30
REFERENCE_ROWS = 100_000  # one synthetic training month
CURRENT_DRIFT = 0.3
LABELLED_SHARE = 0.1
CONTENDERS = ("drift check", "Evidently direct", "scipy KS")
MODES = {"drift check": "ours", "Evidently direct": "evidently", "scipy KS": "scipy"}
SPAN_HOURS = 24.0


# --- the child: runs inside the generated project's environment ------------------------------


def _package() -> str:
    return os.environ["BENCH_PACKAGE"]


def _span() -> tuple[Any, Any]:
    from datetime import UTC, datetime, timedelta

    until = datetime(2024, 2, 15, tzinfo=UTC)
    return until - timedelta(hours=SPAN_HOURS), until


def _config(work: Path, db: Path, rows: int, every_row: bool = False) -> Any:
    """The monitoring configuration of the benchmark; ``every_row``: no drift sample."""
    from importlib import import_module

    config = import_module(f"{_package()}.monitoring.config")
    tree: dict[str, Any] = {
        "prediction_log_url": f"sqlite:///{db}",
        "reports_dir": str(work / "reports"),
        "window": {"hours": SPAN_HOURS, "max_rows": rows},
        "training_config": None,
        "reference": {"source": str(work / "data")},
    }
    if every_row:
        tree["drift"] = {"sample_rows": 10**9}  # more than either side has
    return config.MonitoringConfig.model_validate(tree)


def child_prepare(work: Path) -> None:
    """Reference month, a model trained on it, and the reference frame the check compares with."""
    from importlib import import_module

    pkg = _package()
    synthetic = import_module(f"{pkg}.synthetic")
    datasets = import_module(f"{pkg}.datasets")
    model_mod = import_module(f"{pkg}.model")
    data = import_module(f"{pkg}.monitoring.data")
    synthetic.write_month(work / "data", 2024, 1, REFERENCE_ROWS, seed=1)
    model = model_mod.train(datasets.load(work / "data")[0])
    model_mod.save_model(model, work / "model.joblib")
    config = _config(work, work / "unused.db", 1)
    frame = data.load_reference(config.reference, str(work / "data"))
    data.with_predictions(frame, model).to_parquet(work / "reference.parquet", index=False)


def child_fill(work: Path, db: Path, rows: int) -> None:
    """``rows`` drifted trips, scored and inserted into the service's prediction-log table."""
    from datetime import timedelta
    from importlib import import_module

    import numpy as np
    from sqlalchemy import insert

    pkg = _package()
    synthetic = import_module(f"{pkg}.synthetic")
    problem = import_module(f"{pkg}.problem").PROBLEM
    store = import_module(f"{pkg}.serving.store")
    model = import_module(f"{pkg}.model").load_model(work / "model.joblib")
    # prepare drops trips outside the target's range: generate a few more than needed.
    raw = synthetic.generate_trips(2024, 2, rows + rows // 10 + 100, seed=7, drift=CURRENT_DRIFT)
    trips = problem.prepare(raw, "generated trips").head(rows).reset_index(drop=True)
    features = problem.feature_frame(trips)
    raw_predictions = np.asarray(model.predict(features), dtype="float64")
    predicted, _ = problem.clip(raw_predictions)
    low, high = problem.target_range
    start, _ = _span()
    step = SPAN_HOURS * 3600 / max(len(features), 1)
    engine = store.make_engine(f"sqlite:///{db}")
    columns = set(store.predictions.c.keys())
    records = features.to_dict("records")
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for i, (row, value, original) in enumerate(
            zip(records, predicted.tolist(), raw_predictions.tolist(), strict=True)
        ):
            logged = {
                **row,
                "ts": start + timedelta(seconds=i * step),
                "request_id": f"r{i}",
                "variant": "champion" if i % 10 else "challenger",
                "model_version": 1 if i % 10 else 2,
                "prediction": value,
                "clipped": not low <= original <= high,
                "latency_ms": 1.0,
            }
            batch.append({name: logged[name] for name in logged if name in columns})
            if len(batch) == 20_000:
                conn.execute(insert(store.predictions), batch)
                batch = []
        if batch:
            conn.execute(insert(store.predictions), batch)
    every = round(1 / LABELLED_SHARE)
    target = problem.target.name
    truth = [(f"r{i}", float(v)) for i, v in enumerate(trips[target]) if i % every == 0]
    store.upsert_ground_truth(engine, truth)
    print(json.dumps({"rows": len(records), "labelled": len(truth)}))


def _read_plain(db: Path, columns: list[str]) -> Any:
    import sqlite3

    import pandas as pd

    since, until = (t.strftime("%Y-%m-%d %H:%M:%S.%f") for t in _span())
    with sqlite3.connect(db) as conn:
        return pd.read_sql_query(
            f"SELECT {', '.join(columns)} FROM predictions WHERE ts >= ? AND ts < ?",
            conn,
            params=(since, until),
        )


def child_measure(mode: str, work: Path, db: Path, rows: int) -> None:
    """Time one contender on the log in ``db``; print seconds, rows and peak memory as JSON."""
    import resource
    import warnings
    from importlib import import_module

    pkg = _package()
    import_module(f"{pkg}.training.environment").set_offline_defaults()
    problem = import_module(f"{pkg}.problem").PROBLEM
    columns = [*problem.features, "prediction"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
        from scipy.stats import ks_2samp
    flow = import_module(f"{pkg}.monitoring.flow") if mode.startswith("ours") else None
    reference, _ = import_module(f"{pkg}.datasets").read_file(work / "reference.parquet")
    out: dict[str, Any] = {}
    start = time.perf_counter()
    if flow is not None:
        config = _config(work, db, rows, every_row=mode == "ours-every-row")
        engine = import_module(f"{pkg}.serving.store").make_engine(config.log_url())
        span = _span()
        window = flow.window_task.fn(config.log_url(), span[0], span[1], rows)
        out["read"] = time.perf_counter() - start
        report = work / "reports" / f"check-{rows}-{os.getpid()}.html"
        result = flow.check_window(config, engine, reference, window, "bench", span, report)
        out["rows"] = result.rows
        out["drift_share"] = result.drift.share if result.drift else None
        out["scores"] = result.drift.scores if result.drift else {}
        out["prediction_score"] = result.drift.prediction_score if result.drift else None
        out["report_bytes"] = report.stat().st_size if report.exists() else 0
        if report.exists():
            report.unlink()
    else:
        current = _read_plain(db, columns)
        out["read"] = time.perf_counter() - start
        out["rows"] = len(current)
        if mode == "evidently":
            definition = DataDefinition(
                categorical_columns=list(problem.categorical),
                numerical_columns=[*problem.numeric, "prediction"],
            )
            snapshot = Report([DataDriftPreset()]).run(
                current_data=Dataset.from_pandas(current, data_definition=definition),
                reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
            )
            out["drift_share"] = snapshot.dict()["metrics"][0]["value"]["share"]
        else:
            pvalues = {c: float(ks_2samp(reference[c], current[c]).pvalue) for c in columns}
            out["drift_share"] = sum(p < 0.05 for p in pvalues.values()) / len(pvalues)
    out["seconds"] = time.perf_counter() - start
    out["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps(out))


def child(argv: list[str]) -> None:
    command, work = argv[0], Path(argv[1])
    if command == "prepare":
        child_prepare(work)
    elif command == "fill":
        child_fill(work, Path(argv[2]), int(argv[3]))
    else:
        child_measure(command, work, Path(argv[2]), int(argv[3]))


# --- the harness ------------------------------------------------------------------------------


def _project_python(project: Path) -> Path:
    return project / ".venv" / "bin" / "python"


def _call(project: Path, args: list[str], timeout: float = 900) -> dict[str, Any]:
    import subprocess

    from benchmarks.common import env

    proc = subprocess.run(
        [str(_project_python(project)), str(Path(__file__).resolve()), *args],
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


def measure(project: Path, work: Path, sizes: tuple[int, ...], options: Options) -> Result:
    result = Result(
        name="monitoring",
        title="Monitoring cost: level-3 drift check vs Evidently and scipy called directly",
        columns=[
            "logged rows",
            "contender",
            "median s",
            "read s",
            "peak MiB",
            "time ratio to drift check",
            "drift share",
        ],
    )
    print("   preparing the reference and the model", flush=True)
    _call(project, ["prepare", str(work)])
    samples: dict[int, dict[str, list[dict[str, Any]]]] = {}
    every_row: dict[int, dict[str, Any]] = {}
    rounds = 1 if options.quick else max(1, options.rounds)
    for size in sizes:
        deadline = Deadline(options.budget, rounds, default=600)  # per size
        db = work / f"log-{size}.db"
        start = time.monotonic()
        filled = _call(project, ["fill", str(work), str(db), str(size)])
        print(f"   {size} rows logged in {time.monotonic() - start:.0f} s: {filled}", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
        for i in deadline.rounds():
            order = CONTENDERS[i % 3 :] + CONTENDERS[: i % 3]
            for name in order:
                runs[name].append(_call(project, [MODES[name], str(work), str(db), str(size)]))
                print(
                    f"   {size} round {i} {name}: {runs[name][-1]['seconds']:.2f} s "
                    f"{runs[name][-1]['maxrss'] / 2**20:.0f} MiB",
                    flush=True,
                )
        samples[size] = runs
        if not options.quick:  # the same check without the drift sample: do the scores move?
            every_row[size] = _call(project, ["ours-every-row", str(work), str(db), str(size)])
            print(f"   {size} every row: {every_row[size]['seconds']:.2f} s", flush=True)
        db.unlink(missing_ok=True)
    for size, runs in samples.items():
        ours = median([r["seconds"] for r in runs["drift check"]])
        for name in CONTENDERS:
            seconds = median([r["seconds"] for r in runs[name]])
            peak = max(r["maxrss"] for r in runs[name])
            share = runs[name][-1].get("drift_share")
            result.rows.append(
                [
                    f"{size:,}",
                    name,
                    fmt(seconds),
                    fmt(median([r["read"] for r in runs[name]])),
                    f"{peak / 2**20:.0f}",
                    f"{fmt(ratio(seconds, ours))}x",
                    "-" if share is None else f"{share:.2f}",
                ]
            )
    largest = max(samples)
    runs = samples[largest]
    ours_s = median([r["seconds"] for r in runs["drift check"]])
    ours_peak = max(r["maxrss"] for r in runs["drift check"])
    direct = median([r["seconds"] for r in runs["Evidently direct"]])
    result.chart = [
        (f"{largest:,} rows: time / {TARGET_SECONDS:g} s target", ratio(ours_s, TARGET_SECONDS)),
        (f"{largest:,} rows: peak memory / 2 GiB target", ratio(ours_peak, TARGET_BYTES)),
        (f"{largest:,} rows: drift check / Evidently direct", ratio(ours_s, direct)),
    ]
    result.chart_title = "largest size, to the targets and to Evidently direct (< 1 is better)"
    counted = len(runs["drift check"])
    result.notes += [
        f"{counted} alternating round(s) at the largest size (`--budget` applies to each "
        "size), each contender a fresh process of the "
        "project's interpreter; times exclude imports and loading the reference "
        f"({REFERENCE_ROWS:,} synthetic trips of the training month, sampled to the "
        "configured 50,000 rows, with the model's predictions), which every contender shares. "
        "Peak memory is the process's ru_maxrss, imports included.",
        f"The log holds the given number of predictions of a drifted month (drift "
        f"{CURRENT_DRIFT}) within the {SPAN_HOURS:g}-hour window, {LABELLED_SHARE:.0%} of them "
        "with ground truth; `window.max_rows` is set to the size so the check reads them all. "
        "The drift check also computes missing shares and RMSE per variant, stores its metrics "
        "and writes the HTML report; the direct contenders do none of that.",
        f"Target (issue 8): {largest:,} rows in under {TARGET_SECONDS:g} s and under 2 GiB: "
        f"measured {fmt(ours_s)} s and {ours_peak / 2**30:.2f} GiB "
        f"({'met' if ours_s < TARGET_SECONDS and ours_peak < TARGET_BYTES else 'missed'}).",
    ]
    for size, full in every_row.items():
        sampled = samples[size]["drift check"][-1]
        if not full.get("scores") or not sampled.get("scores"):
            continue
        moved = max(abs(full["scores"][k] - sampled["scores"][k]) for k in full["scores"])
        moved = max(moved, abs(full["prediction_score"] - sampled["prediction_score"]))
        result.notes.append(
            f"{size:,} rows, drift tests on every row instead of the seeded sample: "
            f"{fmt(full['seconds'])} s, {full['maxrss'] / 2**20:.0f} MiB; the largest score "
            f"moved by {moved:.4f} (thresholds 0.1-0.15), drift share "
            f"{full['drift_share']:.2f} vs {sampled['drift_share']:.2f}."
        )
    result.data = {
        "every_row": {str(k): v for k, v in every_row.items()},
        "samples": {str(k): v for k, v in samples.items()},
        "targets": {"seconds": TARGET_SECONDS, "bytes": TARGET_BYTES},
    }
    return result


def run(options: Options) -> Result:
    sizes = QUICK_SIZES if options.quick else SIZES
    if options.project is not None:
        with workdir("monitoring") as work:
            return measure(options.project.resolve(), work, sizes, options)
    with template_workdir("monitoring") as (work, template):
        project = work / "level-3"
        render_project(template, project, 3)
        sh(["make", "install"], project, timeout=900)
        return measure(project, work, sizes, options)


if __name__ == "__main__":
    child(sys.argv[1:])
