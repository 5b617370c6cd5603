"""Level 4, full MLOps automation: monitoring-triggered retraining, gated promotion, live swap.

The entry points (``<slug> monitor|retrain|rollback|simulate|...``, the Prefect flows) set quiet,
offline defaults for MLflow and Prefect themselves; importing this package changes nothing.
"""

from pathlib import Path

#: The retraining policy the commands and flows read unless told otherwise.
DEFAULT_POLICY = Path("configs/retraining.yaml")
