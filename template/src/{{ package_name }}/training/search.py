"""Hyperparameter search spaces and the trials sampled from them."""

from __future__ import annotations

from typing import Any, Final

from scipy.stats import loguniform, randint
from sklearn.model_selection import ParameterSampler

#: Default search space of each model family (``search.space`` in the config replaces it).
SPACES: Final[dict[str, dict[str, Any]]] = {
    "linear": {"alpha": loguniform(1e-3, 1e2)},
    "random_forest": {
        "n_estimators": [30, 60, 100],
        "max_depth": [8, 12, 16, 24],
        "min_samples_leaf": randint(1, 20),
    },
    "hist_gradient_boosting": {
        "learning_rate": loguniform(0.02, 0.3),
        "max_iter": [100, 200, 300],
        "max_leaf_nodes": [15, 31, 63],
        "min_samples_leaf": randint(10, 60),
    },
}


def sample_trials(
    family: str, budget: int, seed: int, space: dict[str, list[Any]] | None = None
) -> list[dict[str, Any]]:
    """``budget`` distinct parameter sets drawn from ``space`` (default: the family's space)."""
    sampler = ParameterSampler(space or SPACES[family], n_iter=budget, random_state=seed)
    trials: list[dict[str, Any]] = []
    for params in sampler:
        clean = {
            name: value.item() if hasattr(value, "item") else value
            for name, value in params.items()
        }
        if clean not in trials:
            trials.append(clean)
    return trials
