"""`contract draft`: a user's data file becomes a project that lints, tests and trains.

Quick: the generated package knows the shipped contract (so a draft replaces it unasked while it
is unedited). Slow: on an installed level-1 project, a CSV with a text identifier, a date, text
and whole-number categories and missing values is drafted into contract.py, then `make lint test
train` pass with no other edit (the other tasks are drafted by the project's own tests).
"""

from __future__ import annotations

import csv
import hashlib
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Installed, Render, copy_installed, git_status, run

PACKAGE = "taxi_trip_duration"  # the default answers' package name
SLUG = "taxi-trip-duration"


def test_the_package_knows_the_shipped_contract(render: Render) -> None:
    project = render(level=1)
    shipped = (project / "src" / PACKAGE / "contract.py").read_bytes()

    module = (project / "src" / PACKAGE / "contract_draft.py").read_text()

    assert f'SHIPPED_CONTRACT_SHA256 = "{hashlib.sha256(shipped).hexdigest()}"' in module


def _write_orders(path: Path, rows: int = 1_500) -> None:
    """A churn file as a user has one: ids, dates as text, categories (some missing), numbers."""
    rng = random.Random(3)
    start = datetime(2023, 1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "signed_up", "plan", "region", "monthly_fee", "churned"])
        for i in range(rows):
            plan = rng.choice(["basic", "plus", "pro", ""])  # "" is a missing value in CSV
            region = rng.randint(1, 6)
            fee = round(rng.gammavariate(2.0, 15.0), 2)
            risk = {"basic": 1.0, "plus": 0.0, "pro": -1.0, "": 0.0}[plan] + fee / 30 - region / 6
            churned = "yes" if risk + rng.gauss(0, 0.5) > 0.8 else "no"
            day = start + timedelta(hours=i * 5)
            writer.writerow([f"c{i:05d}", day.isoformat(sep=" "), plan, region, fee, churned])


@pytest.mark.slow
def test_a_drafted_contract_lints_tests_and_trains(installed: Installed, tmp_path: Path) -> None:
    project = copy_installed(installed(1), tmp_path / "project")
    _write_orders(project / "data" / "churn" / "customers.csv")

    drafted = run(
        [
            "uv",
            "run",
            "--frozen",
            SLUG,
            "contract",
            "draft",
            "data/churn/customers.csv",
            "--target",
            "churned",
        ],
        project,
    )

    assert "target 'churned': binary" in drafted.stdout
    assert "to review: the positive class: 'yes'" in drafted.stdout
    contract = (project / "src" / PACKAGE / "contract.py").read_text()
    assert 'TASK = "binary"' in contract
    run(["make", "lint"], project)
    run(["make", "test"], project)
    trained = run(["make", "train", "ARGS=--data data/churn/customers.csv"], project)
    assert "log_loss=" in trained.stdout
    assert git_status(project) == f" M src/{PACKAGE}/contract.py\n"  # data/ is ignored


@pytest.mark.slow
def test_make_format_formats_before_it_lints(installed: Installed, tmp_path: Path) -> None:
    project = copy_installed(installed(1), tmp_path / "project")
    long_line = "VALUES = (" + ", ".join(str(i) for i in range(60)) + ")\n"
    (project / "tests" / "values.py").write_text(long_line)  # E501 until it is formatted

    run(["make", "format"], project)

    run(["make", "lint"], project)
