"""`make audit` fails when pip-audit checked nothing, or found a vulnerability."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = "Dependency not found on PyPI and could not be audited: anyio (4.6.0)"


def report(tmp_path: Path, dependencies: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """Run the report script on a pip-audit JSON report holding `dependencies`."""
    path = tmp_path / "audit.json"
    path.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
    script = ROOT / "scripts" / "audit_report.py"
    return subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, check=False
    )


def test_an_audit_that_checked_nothing_says_so_and_fails(tmp_path: Path) -> None:
    # Given pip-audit offline: every package skipped, "No known vulnerabilities found" printed
    skipped = [{"name": f"p{i}", "skip_reason": SKIPPED} for i in range(46)]
    result = report(tmp_path, skipped)
    assert result.returncode == 1
    assert "46 of 46 packages not audited" in result.stdout
    assert "audit checked nothing" in result.stdout


def test_a_clean_audit_passes_and_counts_what_it_checked(tmp_path: Path) -> None:
    audited = [{"name": "anyio", "version": "4.6.0", "vulns": []}]
    result = report(tmp_path, [*audited, {"name": "x", "skip_reason": SKIPPED}])
    assert result.returncode == 0, result.stdout
    assert "audited 1 of 2 packages: 0 known vulnerabilities" in result.stdout
    assert "1 of 2 packages not audited" in result.stdout


def test_a_vulnerability_fails_and_names_the_fix(tmp_path: Path) -> None:
    vuln = {"id": "PYSEC-2024-1", "fix_versions": ["4.7.0"], "aliases": [], "description": ""}
    result = report(tmp_path, [{"name": "anyio", "version": "4.6.0", "vulns": [vuln]}])
    assert result.returncode == 1
    assert "anyio 4.6.0: PYSEC-2024-1 (fixed in 4.7.0)" in result.stdout


def test_a_missing_or_foreign_report_is_one_line_and_fails(tmp_path: Path) -> None:
    (tmp_path / "audit.json").write_text('{"not": "pip-audit"}')
    script = ROOT / "scripts" / "audit_report.py"
    for path in (tmp_path / "missing.json", tmp_path / "audit.json"):
        result = subprocess.run(
            [sys.executable, str(script), str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 1
        assert len(result.stdout.splitlines()) == 1, result.stdout
        assert "Traceback" not in result.stderr
