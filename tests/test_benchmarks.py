"""The benchmark harness runs and writes its outputs; no figure is asserted (docs/benchmarks.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import run
from benchmarks.common import Result, percentile


def test_docs_section_is_replaced_between_markers_not_duplicated(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nintro\n")
    info = {"date": "d", "cores": "2", "cpu": "c", "memory": "m", "os": "o", "python": "p"}
    first = Result("demo", "Demo", ["a", "b"], rows=[["x", "1"]], chart=[("x", 2.0)])
    run.write_docs(first, info, page)
    run.write_docs(Result("demo", "Demo", ["a", "b"], rows=[["y", "3"]]), info, page)
    text = page.read_text()
    assert text.count("<!-- bench:demo -->") == 1
    assert "| y | 3 |" in text
    assert "| x | 1 |" not in text
    assert text.startswith("# Benchmarks\n\nintro\n")


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99


@pytest.mark.slow
def test_generation_benchmark_runs_with_a_minimal_budget(tmp_path: Path) -> None:
    code = run.main(
        ["generation", "--quick", "--levels", "1,2", "--no-docs", "--results", str(tmp_path)]
    )
    assert code == 0
    saved = json.loads((tmp_path / "generation.json").read_text())
    assert [row[0] for row in saved["rows"]] == ["copy level 1", "copy level 2", "update 1->2"]


def test_chart_is_redrawn_from_every_result_and_embedded_once(tmp_path: Path) -> None:
    page, results = tmp_path / "docs" / "benchmarks.md", tmp_path / "results"
    page.parent.mkdir()
    other = "<!-- bench:other -->\nx\n<!-- /bench:other -->\n"
    page.write_text(f"# Benchmarks\n\n## Results\n\n{other}")
    info = {"date": "d", "cores": "2", "cpu": "c", "memory": "m", "os": "o", "python": "p"}
    for name, value in [("alpha", 0.5), ("beta", 31.8)]:
        result = Result(name, name, ["a"], chart=[(f"{name} -> ratio", value)], chart_title="t")
        run.write_json(result, info, results)
        run.write_docs(result, info, page, results)
    text = page.read_text()
    assert text.count(run.CHART_BEGIN) == 1
    assert text.index(run.CHART_BEGIN) < text.index("<!-- bench:other -->")
    svg = (page.parent / run.CHART).read_text()
    assert svg.startswith("<svg")
    assert "alpha -&gt; ratio" in svg
    assert "31.80" in svg


@pytest.mark.slow
@pytest.mark.parametrize(("name", "level"), [("pipeline", 2), ("monitoring", 3), ("log_volume", 3)])
def test_pipeline_and_monitoring_benchmarks_run_in_quick_mode(
    tmp_path: Path, installed_copy: Callable[[int], Path], name: str, level: int
) -> None:
    # On the run's installed project (`--project`), not one of their own: the same code
    # measured, one install fewer each.
    project = installed_copy(level)
    results = tmp_path / "results"
    code = run.main(
        [name, "--quick", "--no-docs", "--results", str(results), "--project", str(project)]
    )
    assert code == 0
    saved = json.loads((results / f"{name}.json").read_text())
    assert saved["rows"]
    assert saved["chart"]


def test_everyday_reports_each_command_over_the_floor_and_the_ready_ratio() -> None:
    from benchmarks import everyday

    assert run.BENCHMARKS["everyday"] == "benchmarks.everyday"
    seconds = {"floor": [4.0, 4.2], "predict": [6.1, 6.3], "score": [20.0, 22.0]}
    seconds |= {"attach-truth": [5.0, 5.0], "monitor": [30.0, 31.0], "promote": [9.0, 9.0]}
    result = Result("everyday", "t", ["command", "rows", "s", "floor", "over", "met"])
    ready = {"service": [4.0, 5.0], "mlflow": [15.0, 15.0]}
    everyday.report(result, {1000: seconds}, ready, tests=[140.0, 95.0])
    rows = {row[0]: row for row in result.rows}
    assert list(rows) == [*everyday.COMMANDS, "service ready", "make test"]
    assert rows["make test"][2:] == ["95.0", "", "", "no"]  # the second run counts
    assert rows["predict"][4:] == ["2.1", "yes"]
    assert rows["monitor"][4:] == ["26.4", "no"]
    assert rows["service ready"][4:] == ["0.30x", "yes"]
