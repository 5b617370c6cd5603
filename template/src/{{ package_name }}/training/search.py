"""Hyperparameter search spaces per model family and task, the trials sampled from them, and
which trial won."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from scipy.stats import loguniform, randint
from sklearn.model_selection import ParameterSampler

from ..features import ESTIMATORS
from ..model import is_better
from ..problem import PROBLEM, Problem

_TREES: Final[dict[str, Any]] = {
    "n_estimators": [30, 60, 100],
    "max_depth": [8, 12, 16, 24],
    "min_samples_leaf": randint(1, 20),
}
_BOOSTING: Final[dict[str, Any]] = {
    "learning_rate": loguniform(0.02, 0.3),
    "max_iter": [100, 200, 300],
    "max_leaf_nodes": [15, 31, 63],
    "min_samples_leaf": randint(10, 60),
}
#: Default search space of each model family, for regression and for classification
#: (``search.space`` in the config replaces it). Ridge's knob is ``alpha``, the logistic
#: regression's is ``C``; the tree families take the same parameters for both tasks.
SPACES: Final[dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {
    "linear": ({"alpha": loguniform(1e-3, 1e2)}, {"C": loguniform(1e-3, 1e2)}),
    "random_forest": (_TREES, _TREES),
    "hist_gradient_boosting": (_BOOSTING, _BOOSTING),
}


def default_space(family: str, problem: Problem = PROBLEM) -> dict[str, Any]:
    """The search space of ``family`` for ``problem``'s task."""
    return SPACES[family][problem.is_classifier]


def space_problems(family: str, space: dict[str, Any], problem: Problem = PROBLEM) -> list[str]:
    """Why ``space`` cannot be searched with ``family`` for ``problem`` (empty: it can)."""
    estimator = ESTIMATORS[family][problem.is_classifier]
    known = set(estimator().get_params())
    unknown = sorted(set(space) - known)
    if not unknown:
        return []
    hint = ", ".join(sorted(default_space(family, problem)))
    return [
        f"{estimator.__name__} ({family}, {problem.task} task) has no parameter(s) {unknown}; "
        f"its default space searches {hint}"
    ]


def sample_trials(
    family: str,
    budget: int,
    seed: int,
    space: dict[str, list[Any]] | None = None,
    problem: Problem = PROBLEM,
) -> list[dict[str, Any]]:
    """``budget`` distinct parameter sets drawn from ``space`` (default: the family's space)."""
    sampler = ParameterSampler(
        space or default_space(family, problem), n_iter=budget, random_state=seed
    )
    trials: list[dict[str, Any]] = []
    for params in sampler:
        clean = {
            name: value.item() if hasattr(value, "item") else value
            for name, value in params.items()
        }
        if clean not in trials:
            trials.append(clean)
    return trials


def best_trial(metric: str, scores: Sequence[float]) -> int:
    """Index of the best of ``scores`` in ``metric``'s direction: the first of equal ones.

    A NaN score never wins over a number (all NaN: the first trial).
    """
    if not scores:
        raise ValueError("no trial was scored")
    best = 0
    for index, score in enumerate(scores):
        if math.isnan(score):
            continue
        strictly = score != scores[best] and is_better(metric, score, scores[best])
        if math.isnan(scores[best]) or strictly:
            best = index
    return best
