"""The audit trail: every decision, with its inputs and numbers, in a JSONL log and in MLflow.

A record counts once its line ends with a newline. It is appended with one ``write``, so a process
killed while writing leaves at most an unfinished last line: readers skip it, the next append
cuts it off.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from mlflow import MlflowClient

from ..training import tracking

PROMOTED = "promoted"
REFUSED = "refused"
FAILED = "failed"
SKIPPED = "skipped"
ROLLED_BACK = "rolled back"
NO_TRAFFIC = "no traffic"
#: Retrainings that ran to a verdict: only these start the cool-down (a failure does not).
COMPLETED = (PROMOTED, REFUSED)

log = logging.getLogger(__name__)


def complete_lines(path: Path) -> list[str]:
    """The non-empty, newline-terminated lines of ``path`` (none when it does not exist)."""
    if not path.is_file():
        return []
    return [line for line in path.read_text().split("\n")[:-1] if line.strip()]


def append_line(path: Path, line: str) -> None:
    """Append ``line`` whole: drop an unfinished last line left by a kill, then write once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        content = path.read_bytes()
        if content and not content.endswith(b"\n"):
            log.warning("%s: dropping an unfinished last line (a write was cut short)", path)
            os.truncate(path, content.rfind(b"\n") + 1)
    data = (line + "\n").encode()
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while data:
            data = data[os.write(handle, data) :]
    finally:
        os.close(handle)


@dataclass(frozen=True)
class DecisionRecord:
    """One decision of the loop: what was decided, why, with which numbers, and what changed."""

    ts: datetime
    kind: str  # "retraining", "rollback" or "monitoring"
    action: str  # "retrain", "skip", "rollback" or "monitor"
    outcome: str  # skipped, promoted, refused, failed, rolled back, no traffic
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)
    period: str | None = None
    champion_before: int | None = None
    champion_after: int | None = None
    challenger_version: int | None = None
    mlflow_run_id: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["ts"] = self.ts.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> DecisionRecord:
        data = json.loads(line)
        data["ts"] = datetime.fromisoformat(data["ts"])
        return cls(**data)


def read_log(path: Path) -> list[DecisionRecord]:
    """Every decision recorded in ``path``, oldest first."""
    return [DecisionRecord.from_json(line) for line in complete_lines(path)]


def last_retraining(path: Path) -> datetime | None:
    """When the loop last completed a retraining (promoted or refused by the gate): a failed
    attempt is in the log but does not hold the next one back."""
    times = [
        record.ts
        for record in read_log(path)
        if record.action == "retrain" and record.outcome in COMPLETED
    ]
    return max(times) if times else None


def log_to_mlflow(record: DecisionRecord) -> str:
    """Record ``record`` as an MLflow run of the training experiment; return the run id."""
    tracking.configure_tracking()
    client = MlflowClient()
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT_NAME)
    assert experiment is not None, "configure_tracking() creates the experiment"
    tags = {
        "automation.kind": record.kind,
        "automation.action": record.action,
        "automation.outcome": record.outcome,
        "automation.reason": record.reason[:5000],
    }
    run = client.create_run(
        experiment.experiment_id, run_name=f"{record.kind}-{record.outcome}", tags=tags
    )
    run_id = str(run.info.run_id)
    params = {
        "period": record.period,
        "champion_before": record.champion_before,
        "champion_after": record.champion_after,
        "challenger_version": record.challenger_version,
    }
    for key, value in params.items():
        if value is not None:
            client.log_param(run_id, key, value)
    timestamp = int(record.ts.timestamp() * 1000)
    for key, number in record.numbers.items():
        client.log_metric(run_id, key, number, timestamp=timestamp)
    client.log_dict(run_id, json.loads(record.to_json()), "decision.json")
    client.set_terminated(run_id, "FINISHED")
    return run_id


def record(path: Path, decision: DecisionRecord, mlflow: bool = True) -> DecisionRecord:
    """Write ``decision`` to MLflow (when asked) and append it to the decision log."""
    if mlflow:
        decision = DecisionRecord(**{**asdict(decision), "mlflow_run_id": log_to_mlflow(decision)})
    append_line(path, decision.to_json())
    return decision
