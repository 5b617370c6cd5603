"""The level-3 service plus a live model swap (``make serve`` runs ``create_app``).

A background task polls the registry's aliases every ``AUTOMATION_POLL_INTERVAL`` seconds and
``POST /admin/reload`` (bearer ``AUTOMATION_ADMIN_TOKEN``) reloads on demand. A new model set is
loaded off the event loop and swapped in with one assignment: requests in flight finish on the
model they started with, and a model that fails to load leaves the old one serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import Counter
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..serving.app import Loader, ServiceState
from ..serving.app import create_app as create_serving_app
from ..serving.models import ModelSet, load_models
from ..serving.settings import ServingSettings
from ..training.registry import CHALLENGER, CHAMPION, get_version_by_alias

log = logging.getLogger(__name__)
Versions = tuple[int | None, int | None]
BEARER = HTTPBearer(auto_error=False)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


class SwapSettings(BaseSettings):
    """Live swap settings, from ``AUTOMATION_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="AUTOMATION_", extra="ignore", frozen=True)

    poll_interval: float = Field(
        default=30.0, ge=0.0, description="Seconds between alias checks (0 turns polling off)."
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token of POST /admin/reload (unset: endpoint disabled)."
    )


class ReloadReport(BaseModel):
    """What a reload did."""

    swapped: bool
    champion_version: int | None
    challenger_version: int | None
    previous_champion_version: int | None = None
    error: str | None = None
    checked_at: datetime


def registry_versions(settings: ServingSettings) -> Versions:
    """Versions the registry's ``champion`` and ``challenger`` aliases point at (cheap)."""
    challenger = get_version_by_alias(CHALLENGER) if settings.load_challenger else None
    return get_version_by_alias(CHAMPION), challenger


def served_versions(models: ModelSet) -> Versions:
    """Versions the service answers with."""
    champion, challenger = models.champion, models.challenger
    return (
        champion.version if champion else None,
        challenger.version if challenger else None,
    )


class ModelSwapper:
    """Reloads the models when the registry moved, one reload at a time."""

    def __init__(
        self,
        app: FastAPI,
        settings: ServingSettings,
        loader: Loader,
        versions: Callable[[ServingSettings], Versions],
    ) -> None:
        self.app = app
        self.settings = settings
        self.loader = loader
        self.versions = versions
        self.lock = asyncio.Lock()
        self.last: ReloadReport | None = None
        self.swaps: Counter | None = None
        self._registry: object = None

    @property
    def state(self) -> ServiceState:
        state: ServiceState = self.app.state.service
        return state

    def _count(self, outcome: str) -> None:
        registry = self.state.metrics.registry
        if self.swaps is None or self._registry is not registry:
            self._registry = registry
            self.swaps = Counter(
                "model_reloads",
                "Model reloads by outcome (swapped, failed, unchanged).",
                ["outcome"],
                registry=registry,
            )
        self.swaps.labels(outcome).inc()

    async def reload(self, force: bool = False) -> ReloadReport:
        """Swap in the registry's current models if they changed (or ``force``)."""
        async with self.lock:
            current = self.state.models
            old = served_versions(current)
            try:
                wanted = await run_in_threadpool(self.versions, self.settings)
                if not force and wanted == old:
                    self._count("unchanged")
                    return self._report(False, old)
                models = await run_in_threadpool(self.loader, self.settings)
            except Exception as exc:  # registry unreachable: keep serving what we have
                return self._failed(old, f"{type(exc).__name__}: {exc}")
            if not models.ready:
                return self._failed(old, models.problem or "the champion did not load")
            self.state.swap(models)  # one assignment: new requests get the new set
            self._count("swapped")
            new = served_versions(models)
            log.warning("swapped models %s -> %s", old, new)
            return self._report(True, new, previous=old[0])

    def _report(
        self, swapped: bool, versions: Versions, previous: int | None = None
    ) -> ReloadReport:
        self.last = ReloadReport(
            swapped=swapped,
            champion_version=versions[0],
            challenger_version=versions[1],
            previous_champion_version=previous,
            checked_at=datetime.now(UTC),
        )
        return self.last

    def _failed(self, versions: Versions, problem: str) -> ReloadReport:
        log.error("model reload failed, still serving %s: %s", versions, problem)
        self._count("failed")
        report = self._report(False, versions)
        self.last = report.model_copy(update={"error": problem})
        return self.last

    async def poll(self, interval: float) -> None:
        """Check the aliases every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reload()
            except Exception:  # never let the poller die
                log.exception("alias poll failed")


def create_app(
    settings: ServingSettings | None = None,
    loader: Loader = load_models,
    swap: SwapSettings | None = None,
    versions: Callable[[ServingSettings], Versions] = registry_versions,
) -> FastAPI:
    """The level-3 app, with alias polling and ``POST /admin/reload`` added."""
    settings = settings or ServingSettings()
    swap = swap or SwapSettings()
    app = create_serving_app(settings, loader)
    swapper = ModelSwapper(app, settings, loader, versions)
    app.state.swapper = swapper
    serving_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with serving_lifespan(app) as state:
            task = (
                asyncio.create_task(swapper.poll(swap.poll_interval))
                if swap.poll_interval
                else None
            )
            try:
                yield state
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan

    def authorised(credentials: Credentials) -> None:
        if swap.admin_token is None:
            raise HTTPException(503, detail="admin endpoint disabled: set AUTOMATION_ADMIN_TOKEN")
        expected = swap.admin_token.get_secret_value().encode()
        given = (credentials.credentials if credentials else "").encode()
        if not secrets.compare_digest(given, expected):
            raise HTTPException(401, detail="bad or missing bearer token")

    @app.post(
        "/admin/reload",
        tags=["admin"],
        dependencies=[Depends(authorised)],
        responses={502: {"model": ReloadReport, "description": "The new model failed to load"}},
    )
    async def reload(force: bool = False) -> Any:
        """Load the registry's current champion and challenger now (bearer token required)."""
        report = await swapper.reload(force=force)
        if report.error:
            return JSONResponse(report.model_dump(mode="json"), status_code=502)
        return report

    return app
