"""Load the registry's champion and challenger once, by alias, into ready-to-call predictors."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fastapi.concurrency import run_in_threadpool

from ..training.registry import (
    CHALLENGER,
    CHAMPION,
    ModelNotFoundError,
    get_version_by_alias,
    load_model_by_alias,
)
from ..training.tracking import configure_tracking
from .predictor import Predictor, make_predictor
from .router import CHALLENGER_VARIANT, CHAMPION_VARIANT, ABRouter
from .settings import ServingSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """A model in service: which variant it answers for, its alias and registry version."""

    variant: str
    alias: str
    version: int
    predictor: Predictor


@dataclass(frozen=True)
class ModelSet:
    """What the service answers with; replaced as a whole, never mutated (safe to swap)."""

    champion: ServedModel | None
    challenger: ServedModel | None
    router: ABRouter
    problem: str | None = None
    by_variant: dict[str, ServedModel] = field(init=False)

    def __post_init__(self) -> None:
        models = {m.variant: m for m in (self.champion, self.challenger) if m is not None}
        object.__setattr__(self, "by_variant", models)

    @property
    def ready(self) -> bool:
        return self.champion is not None

    def pick(self, key: str) -> ServedModel | None:
        """The model that answers caller ``key`` (None when nothing is loaded)."""
        return self.by_variant.get(self.router.variant(key), self.champion)


def empty_model_set(problem: str) -> ModelSet:
    """No model: the service is alive but not ready."""
    return ModelSet(None, None, ABRouter(0.0, has_challenger=False), problem=problem)


def _load(alias: str, variant: str) -> ServedModel:
    pipeline, version = load_model_by_alias(alias)
    return ServedModel(variant, alias, version, make_predictor(pipeline))


def load_models(settings: ServingSettings) -> ModelSet:
    """Load ``champion`` (required) and ``challenger`` (optional) from the configured registry."""
    if settings.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = settings.tracking_uri  # configure_tracking reads it
    try:
        configure_tracking()  # reaches the tracking server: may fail like the load itself
        champion = _load(CHAMPION, CHAMPION_VARIANT)
    except ModelNotFoundError as exc:
        return empty_model_set(f"no '{CHAMPION}' model in the registry: {exc}")
    except Exception as exc:  # registry unreachable, broken artifact: alive but not ready
        log.exception("loading the champion failed")
        return empty_model_set(f"loading the '{CHAMPION}' model failed: {exc}")
    challenger = None
    try:
        if settings.load_challenger and get_version_by_alias(CHALLENGER) is not None:
            challenger = _load(CHALLENGER, CHALLENGER_VARIANT)
    except Exception:  # serve the champion alone rather than not at all
        log.exception("loading the challenger failed; serving the champion only")
    router = ABRouter(settings.challenger_share, has_challenger=challenger is not None)
    return ModelSet(champion, challenger, router)


class Swappable(Protocol):
    """What ``load_until_ready`` needs of the service: its models and a way to replace them."""

    models: ModelSet

    def swap(self, models: ModelSet) -> None: ...


def _ready(state: Swappable) -> bool:
    return state.models.ready


async def load_until_ready(
    loader: Callable[[ServingSettings], ModelSet], settings: ServingSettings, state: Swappable
) -> None:
    """Retry ``loader`` every ``load_retry_interval`` seconds until a champion is loaded.

    A service started while the registry is down is alive but not ready; it becomes ready by
    itself once the registry is back, without a restart.
    """
    attempt = 0
    while not _ready(state):
        await asyncio.sleep(settings.load_retry_interval)
        attempt += 1
        try:
            models = await run_in_threadpool(loader, settings)
        except Exception as exc:  # a loader that raises instead of reporting
            models = empty_model_set(f"loading the models failed: {exc}")
        if _ready(state):  # loaded meanwhile by someone else (a reload)
            return
        state.swap(models)  # a ready set, or the latest reason why not
        if models.ready:
            log.warning("models loaded after %d retries", attempt)
        else:
            log.warning("still no model after %d retries: %s", attempt, models.problem)
