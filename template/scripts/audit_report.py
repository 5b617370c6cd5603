"""Read pip-audit's JSON report (`make audit`) and fail unless it really checked something.

pip-audit prints "No known vulnerabilities found" even when it could audit none of the
packages (offline, or a private index it cannot look up): this report says how many it
audited and fails when that is none, or when any has a known vulnerability.
Standard library only. Usage: python3 scripts/audit_report.py REPORT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def load(report: Path) -> list[dict[str, Any]]:
    """The report's dependencies; ValueError with one line when it is missing or malformed."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"no pip-audit report in {report}: {error}") from error
    dependencies = data.get("dependencies") if isinstance(data, dict) else None
    if not isinstance(dependencies, list):
        raise ValueError(f"{report} is not a pip-audit JSON report (no 'dependencies' list)")
    return [d for d in dependencies if isinstance(d, dict)]


def summarize(dependencies: list[dict[str, Any]]) -> tuple[list[str], int]:
    """Lines to print and the exit code: 1 for a vulnerability or an audit of nothing."""
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = [d for d in dependencies if "skip_reason" not in d]
    found = [(d, v) for d in audited for v in d.get("vulns") or []]
    lines = [
        f"{d.get('name')} {d.get('version')}: {v.get('id')} "
        f"(fixed in {', '.join(v.get('fix_versions') or []) or 'no release yet'})"
        for d, v in found
    ]
    if skipped:
        example = skipped[0]["skip_reason"]
        lines.append(f"{len(skipped)} of {len(dependencies)} packages not audited, e.g. {example}")
    if not audited:
        lines.append(
            f"audit checked nothing: none of the {len(dependencies)} packages could be audited "
            "(pip-audit needs network access to https://pypi.org)"
        )
        return lines, 1
    lines.append(
        f"audited {len(audited)} of {len(dependencies)} packages: "
        f"{len(found)} known vulnerabilit{'y' if len(found) == 1 else 'ies'}"
    )
    return lines, 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("report", type=Path, help="pip-audit --format json --output REPORT")
    args = parser.parse_args(argv)
    try:
        lines, status = summarize(load(args.report))
    except ValueError as error:
        lines, status = [str(error)], 1
    for line in lines:
        print(f"audit: {line}")
    return status


if __name__ == "__main__":
    sys.exit(main())
