"""Level 2, automated training: a Prefect flow, MLflow tracking and the model registry.

Importing this package sets quiet, offline defaults (see ``environment``) before MLflow or
Prefect is imported.
"""

from .environment import set_offline_defaults

set_offline_defaults()
