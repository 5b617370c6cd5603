"""Run the benchmarks: ``python -m benchmarks [name ...]`` or ``python benchmarks/run.py``.

Each benchmark alternates its contenders within one run and reports medians and ratios. The
table is printed, the figures go to benchmarks/results/<name>.json and into docs/benchmarks.md
between ``<!-- bench:<name> -->`` markers, so a re-run replaces its own section only.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import chart as svg_chart
from benchmarks.common import ROOT, Options, Result, machine

# name -> module; each module has run(options) -> Result. Order = the order of `all`.
BENCHMARKS = {
    "generation": "benchmarks.generation",
    "time_to_green": "benchmarks.time_to_green",
    "serving": "benchmarks.serving",
    "pipeline": "benchmarks.pipeline",
    "monitoring": "benchmarks.monitoring",
    "log_volume": "benchmarks.log_volume",
    "everyday": "benchmarks.everyday",
}
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
CHART = "assets/benchmarks.svg"  # relative to the page; drawn from every result
CHART_BEGIN, CHART_END = "<!-- bench-chart -->", "<!-- /bench-chart -->"


def table(result: Result) -> str:
    lines = [
        "| " + " | ".join(result.columns) + " |",
        "|" + "|".join("---" for _ in result.columns) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in result.rows]
    return "\n".join(lines)


def chart(result: Result, width: int = 40) -> str:
    """A text bar chart of ratios (1.0 marked), readable anywhere, offline."""
    if not result.chart:
        return ""
    finite = [v for _, v in result.chart if v == v]
    top = max([*finite, 1.0])
    label_w = max(len(label) for label, _ in result.chart)
    one = round(width / top)
    lines = [f"{result.chart_title} (| marks 1.0)"]
    for label, value in result.chart:
        n = 0 if value != value else max(1, round(value / top * width))
        bar = "#" * n + " " * (width - n)
        bar = bar[:one] + "|" + bar[one + 1 :] if one < width and bar[one] == " " else bar
        lines.append(f"{label.ljust(label_w)}  {bar}  {value:.2f}")
    return "\n".join(lines)


def section(result: Result, info: dict[str, str]) -> str:
    parts = [
        f"### {result.title}",
        "",
        f"Measured {info['date']} on {info['cores']} cores ({info['cpu']}, {info['memory']}), "
        f"{info['os']}, Python {info['python']}; the run took {result.seconds:.0f} s.",
        "",
        table(result),
        "",
    ]
    if result.chart:
        parts += ["```text", chart(result), "```", ""]
    parts += [f"- {note}" for note in result.notes]
    return "\n".join(parts).rstrip() + "\n"


def _replace(text: str, begin: str, end: str, block: str, before: str | None = None) -> str:
    """``text`` with ``block`` between ``begin`` and ``end`` (inserted before the first
    ``before``, else appended, when the markers are missing)."""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    if before and before in text:
        head, _, tail = text.partition(before)
        return f"{head}{block}\n\n{before}{tail}"
    return f"{text}\n{block}\n"


def write_chart(text: str, page: Path, results: Path) -> str:
    """Redraw the SVG chart from every result in ``results``; ``text`` with its image."""
    if svg_chart.write(results, page.parent / CHART) is None:
        return text
    block = (
        f"{CHART_BEGIN}\n"
        f"![Every benchmark's ratios, drawn from benchmarks/results/*.json]({CHART})\n"
        f"{CHART_END}"
    )
    return _replace(text, CHART_BEGIN, CHART_END, block, before="<!-- bench:")


def write_docs(
    result: Result, info: dict[str, str], path: Path = DOCS, results: Path = RESULTS
) -> None:
    """Replace this benchmark's section between its markers (append it if missing), and
    redraw the chart of all results."""
    begin, end = f"<!-- bench:{result.name} -->", f"<!-- /bench:{result.name} -->"
    block = f"{begin}\n{section(result, info)}{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    text = _replace(text, begin, end, block)
    path.write_text(write_chart(text, path, results))


def write_json(result: Result, info: dict[str, str], directory: Path = RESULTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.name}.json"
    path.write_text(json.dumps({"machine": info, **asdict(result)}, indent=2, default=str) + "\n")
    return path


def parse(argv: list[str] | None) -> tuple[list[str], Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"{', '.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--budget", type=float, help="seconds per benchmark (rounds stop after)")
    parser.add_argument("--rounds", type=int, default=5, help="at most this many rounds")
    parser.add_argument("--levels", help="comma-separated levels, e.g. 1,2 (default: all)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument(
        "--project",
        type=Path,
        help="serving (trained), pipeline, monitoring, log_volume: reuse this installed level-3 "
        "project; everyday: a level-4 one (trained unless it has a registry)",
    )
    parser.add_argument(
        "--rows", type=int, help="log_volume: logged predictions (default 1,000,000; 10M works)"
    )
    parser.add_argument("--quick", action="store_true", help="one short round: a smoke run")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where JSON results go")
    args = parser.parse_args(argv)
    for name in args.names:
        if name not in BENCHMARKS:
            parser.error(f"unknown benchmark {name!r}: choose from {', '.join(BENCHMARKS)}")
    options = Options(
        rounds=args.rounds,
        duration=args.duration,
        quick=args.quick,
        project=args.project,
        rows=args.rows,
    )
    if args.levels:
        options.levels = tuple(int(x) for x in args.levels.split(","))
    if args.quick:
        options.rounds, options.duration = 1, min(args.duration, 1.0)
    if args.budget is not None:
        options.budget = args.budget
    return args.names or list(BENCHMARKS), options, args


def main(argv: list[str] | None = None) -> int:
    names, options, args = parse(argv)
    info = machine()
    failed = 0
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        budget = "default" if options.budget is None else f"{options.budget:.0f} s"
        print(f"== {name} (budget: {budget})", flush=True)
        start = time.monotonic()
        try:
            result: Result = module.run(options)
        except Exception as exc:  # one failing benchmark does not stop the others
            failed += 1
            print(f"   failed: {exc}", file=sys.stderr, flush=True)
            continue
        result.seconds = time.monotonic() - start
        print(table(result))
        if result.chart:
            print(chart(result))
        for note in result.notes:
            print(f"  - {note}")
        print(f"   results: {write_json(result, info, args.results)}", flush=True)
        if not args.no_docs:
            write_docs(result, info, results=args.results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
