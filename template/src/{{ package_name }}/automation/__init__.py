"""Level 4, full MLOps automation: monitoring-triggered retraining, gated promotion, live swap.

Importing this package sets quiet, offline defaults before MLflow or Prefect is imported.
"""

from ..training.environment import set_offline_defaults

set_offline_defaults()
