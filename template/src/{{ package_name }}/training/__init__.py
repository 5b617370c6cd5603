"""Level 2, automated training: a Prefect flow, MLflow tracking and the model registry.

Entry points call ``environment.set_offline_defaults()`` before importing Prefect or MLflow
(``commands.py`` does, for ``<slug> train`` and ``<slug> predict``).
"""
