"""The prediction service: ``uvicorn --factory <package>.serving.app:create_app``.

Models are loaded once at start-up (lifespan); a request does no registry lookup, and for the
linear family no DataFrame either. Every prediction is queued to the prediction log. The predict
endpoints read their JSON body in one pydantic-core pass (``bodies.py``): same validation, same
422s, same OpenAPI schema as declared parameters, a fraction of the per-request cost.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from itertools import count
from operator import attrgetter
from time import perf_counter
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from .. import __version__
from ..contract import FEATURES
from .bodies import document, json_body, json_response, parse, request_id
from .limits import ERROR_RESPONSES, BodySizeLimit
from .metrics import PREDICT, PREDICT_BATCH, ServiceMetrics
from .models import ModelSet, ServedModel, load_models, load_until_ready
from .predictor import Row
from .schemas import (
    BatchRequest,
    BatchResponse,
    GroundTruthBatch,
    Health,
    Info,
    Invalid,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    Trip,
)
from .settings import ServingSettings
from .store import LoggedBatch, LoggedPrediction, PredictionLog, make_engine, upsert_ground_truth

log = logging.getLogger(__name__)
Loader = Callable[[ServingSettings], ModelSet]
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "No model is loaded", "model": Health}
}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_READY,
    422: {"description": "Validation Error", "model": Invalid},
}
_features: Callable[[Trip], Any] = attrgetter(*FEATURES)  # a tuple in FEATURES order


class ServiceState:
    """The live parts of the service. ``swap`` replaces the models atomically."""

    def __init__(
        self, settings: ServingSettings, models: ModelSet, engine: Engine, metrics: ServiceMetrics
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.log = PredictionLog(engine, flush_interval=settings.log_flush_interval)
        metrics.watch_log(self.log)
        self.models = models
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._id_prefix = uuid4().hex[:16]  # per process (made in the lifespan, after any fork)
        self._ids = count()
        self.swap(models)

    def new_request_id(self) -> str:
        """A unique id: this process's random prefix and a counter (a uuid4 costs more)."""
        return f"{self._id_prefix}{next(self._ids):08x}"

    def swap(self, models: ModelSet) -> None:
        """Serve ``models`` from the next request on (requests in flight keep theirs)."""
        self.models = models
        self.metrics.model_loaded.clear()
        for model in models.by_variant.values():
            self.metrics.model_loaded.labels(model.variant, str(model.version)).set(1)

    def observe(self, endpoint: str, model: ServedModel, count: int, seconds: float) -> None:
        key = (endpoint, model.variant, model.version)
        children = self._children.get(key)
        if children is None:
            labels = (endpoint, model.variant, str(model.version))
            children = (
                self.metrics.requests.labels(*labels, "ok"),
                self.metrics.latency.labels(*labels),
                self.metrics.predictions.labels(model.variant, str(model.version)),
            )
            self._children[key] = children
        requests, latency, predictions = children
        requests.inc()
        latency.observe(seconds)
        predictions.inc(count)

    def close(self) -> None:
        self.log.close()
        self.engine.dispose()


def _rows(trips: Sequence[Trip]) -> list[Row]:
    if len(FEATURES) == 1:  # attrgetter of one name returns the value, not a tuple
        return [(_features(trip),) for trip in trips]
    return [_features(trip) for trip in trips]


async def _predict(model: ServedModel, rows: list[Row]) -> list[float]:
    if model.predictor.fast_path:
        return model.predictor.predict_rows(rows)
    return await run_in_threadpool(model.predictor.predict_rows, rows)  # keep the loop free


def _too_many(count: int, limit: int) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "too_long",
                "loc": ("body", "trips"),
                "msg": f"at most {limit} trips per request (SERVING_MAX_BATCH_SIZE), got {count}",
                "input": None,
            }
        ]
    )


def _errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and why, without echoing the input (it may not even be valid JSON, like NaN)."""
    return [
        {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": error["type"]}
        for error in exc.errors()
    ]


def create_app(settings: ServingSettings | None = None, loader: Loader = load_models) -> FastAPI:
    """Build the app; ``loader`` returns the models (the registry by default, a stub in tests)."""
    settings = settings or ServingSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        models = await run_in_threadpool(loader, settings)
        if not models.ready:
            log.warning("serving without a model: %s", models.problem)
        engine = make_engine(settings.prediction_log_url)
        app.state.service = ServiceState(settings, models, engine, ServiceMetrics())
        gc.collect()  # then freeze: modules and models live on, full collections skip them
        gc.freeze()  # (a full collection over them paused requests for 100+ ms under load)
        retry = None
        if not models.ready and settings.load_retry_interval:  # registry down at start: retry
            retry = asyncio.create_task(load_until_ready(loader, settings, app.state.service))
        yield
        if retry is not None:
            retry.cancel()
            with suppress(asyncio.CancelledError):
                await retry
        app.state.service.close()

    app = FastAPI(
        title="Trip duration service",
        version=__version__,
        description="Predicts taxi trip durations (minutes) with the registry's champion, "
        "A/B testing a challenger on a sticky share of callers.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    def service() -> ServiceState:
        state: ServiceState = app.state.service
        return state

    def pick(key: str, endpoint: str) -> ServedModel:
        models = service().models
        model = models.pick(key)
        if model is None:
            service().metrics.rejected.labels(endpoint, "503").inc()
            raise HTTPException(503, detail=f"no model loaded: {models.problem}")
        return model

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        route = request.scope.get("route")  # its path, not the URL: one label per endpoint
        service().metrics.rejected.labels(getattr(route, "path", request.url.path), "422").inc()
        return JSONResponse({"detail": _errors(exc)}, status_code=422)

    @app.post(
        PREDICT,
        tags=["predict"],
        response_model=PredictResponse,
        responses=PREDICT_RESPONSES,
        openapi_extra=json_body(PredictRequest),
    )
    async def predict(request: Request) -> Response:
        """Predict one trip's duration."""
        start = perf_counter()
        body = parse(PredictRequest, request, await request.body())
        state = service()
        rid = request_id(request) or state.new_request_id()
        model = pick(body.key or rid, PREDICT)
        rows = _rows([body.trip])
        (value,) = await _predict(model, rows)
        seconds = perf_counter() - start
        state.observe(PREDICT, model, 1, seconds)
        state.log.record(
            LoggedPrediction(
                datetime.now(UTC),
                rid,
                body.key,
                model.variant,
                model.version,
                rows[0],
                value,
                seconds * 1000,
            )
        )
        return json_response(
            {
                "request_id": rid,
                "duration": value,
                "variant": model.variant,
                "model_version": model.version,
            }
        )

    @app.post(
        PREDICT_BATCH,
        tags=["predict"],
        response_model=BatchResponse,
        responses=PREDICT_RESPONSES,
        openapi_extra=json_body(BatchRequest),
    )
    async def predict_batch(request: Request) -> Response:
        """Predict several trips; each gets its own request id ``<batch id>-<index>``."""
        start = perf_counter()
        body = parse(BatchRequest, request, await request.body())
        if len(body.trips) > settings.max_batch_size:
            raise _too_many(len(body.trips), settings.max_batch_size)
        state = service()
        batch_id = request_id(request) or state.new_request_id()
        model = pick(body.key or batch_id, PREDICT_BATCH)
        rows = _rows(body.trips)
        values = await _predict(model, rows)
        seconds = perf_counter() - start
        state.observe(PREDICT_BATCH, model, len(rows), seconds)
        ids = tuple([f"{batch_id}-{i}" for i in range(len(rows))])
        state.log.record(  # one entry, of tuples: the collector untracks them while queued
            LoggedBatch(
                datetime.now(UTC),
                ids,
                body.key,
                model.variant,
                model.version,
                tuple(rows),
                tuple(values),
                seconds * 1000,
            )
        )
        return json_response(
            {
                "variant": model.variant,
                "model_version": model.version,
                "predictions": [
                    {"request_id": rid, "duration": value}
                    for rid, value in zip(ids, values, strict=True)
                ],
            }
        )

    @app.post("/ground-truth", tags=["monitoring"])
    def ground_truth(body: GroundTruthBatch) -> dict[str, int]:
        """Attach actual durations to served predictions by request id."""
        items = [(item.request_id, item.duration) for item in body.items]
        return {"attached": upsert_ground_truth(service().engine, items)}

    @app.get("/health/live", tags=["health"])
    async def live() -> Health:
        """The process is up."""
        return Health(status="ok", ready=service().models.ready)

    @app.get("/health/ready", responses=NOT_READY, tags=["health"], response_model=Health)
    async def ready() -> Any:
        """200 once a champion is loaded, 503 before."""
        models = service().models
        if not models.ready:
            body = Health(status="not ready", ready=False, detail=models.problem)
            return JSONResponse(body.model_dump(), status_code=503)
        return Health(status="ready", ready=True)

    @app.get("/info", tags=["health"])
    async def info() -> Info:
        """Loaded models (variant, alias, version) and the traffic split."""
        models = service().models
        return Info(
            models=[
                ModelInfo(
                    variant=m.variant,
                    alias=m.alias,
                    version=m.version,
                    fast_path=m.predictor.fast_path,
                )
                for m in models.by_variant.values()
            ],
            challenger_share=models.router.challenger_share,
            max_batch_size=settings.max_batch_size,
        )

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics."""
        registry = service().metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    document(app, PredictRequest, BatchRequest)
    return app
