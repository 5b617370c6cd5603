"""Register a classifier champion in a generated project whose contract classifies.

Run in the project's venv, in the project: ``python champion.py PACKAGE DATA ROWS_OUT``. Fits
the contract's linear classifier on DATA (labelled rows), logs it with MLflow as level 2 logs
models (skops), its pyfunc answering ``predict_proba`` (the service answers probabilities too),
registers it as the champion and writes 100 request rows (features, JSON records) to ROWS_OUT.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(package: str, data: str, rows_out: Path) -> None:
    import mlflow
    import mlflow.sklearn
    import skops.io

    problem = importlib.import_module(f"{package}.problem").PROBLEM
    datasets = importlib.import_module(f"{package}.datasets")
    model = importlib.import_module(f"{package}.model")
    registry = importlib.import_module(f"{package}.training.registry")
    tracking = importlib.import_module(f"{package}.training.tracking")
    if not problem.is_classifier:
        sys.exit(f"{package}: contract.py declares a {problem.task} problem, not a classifier")
    frame, _lineage = datasets.load(data)
    labelled = problem.prepare(frame, data)
    pipeline = model.train(labelled, "linear", None, problem)
    tracking.configure_tracking()
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            pipeline,
            name="model",
            pip_requirements=["scikit-learn", "skops"],
            skops_trusted_types=trusted,
            pyfunc_predict_fn="predict_proba",
        )
    registry.set_alias(registry.CHAMPION, registry.register_model(run.info.run_id))
    features = problem.feature_frame(labelled).head(100)
    rows_out.write_text(features.to_json(orient="records"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], Path(sys.argv[3]))
