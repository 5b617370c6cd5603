"""The benchmark harness runs and writes its outputs; no figure is asserted (docs/benchmarks.md)."""

from __future__ import annotations

import json
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
