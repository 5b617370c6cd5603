"""In-process one-row predict time of the registered champion (run in the project's venv).

``python floor.py PACKAGE ROW_JSON``: prints JSON with the median milliseconds of (a) MLflow's
pyfunc predict on a one-row DataFrame and (b) the service's own predictor on one row (a
classifier's: its class probabilities, as the service asks for them).
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable


def median_ms(call: Callable[[], object], n: int = 300) -> float:
    for _ in range(20):
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(package: str, row: dict[str, float]) -> dict[str, float]:
    import mlflow.pyfunc
    import pandas as pd

    tracking = importlib.import_module(f"{package}.training.tracking")
    registry = importlib.import_module(f"{package}.training.registry")
    predictor = importlib.import_module(f"{package}.serving.predictor")
    problem = importlib.import_module(f"{package}.problem").PROBLEM
    tracking.configure_tracking()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@{registry.CHAMPION}")
    frame = pd.DataFrame([row])
    pipeline, _ = registry.load_model_by_alias(registry.CHAMPION)
    served = predictor.make_predictor(pipeline)
    values = tuple(row[name] for name in problem.features)
    # what the service calls: a classifier's probabilities, a regressor's values
    answer = served.predict_proba_rows if problem.is_classifier else served.predict_rows
    return {
        "pyfunc_dataframe_ms": median_ms(lambda: pyfunc.predict(frame)),
        "service_predictor_ms": median_ms(lambda: answer([values])),
        "service_fast_path": float(bool(served.fast_path)),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
