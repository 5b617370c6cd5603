"""The prediction service: ``uvicorn --factory <package>.serving.app:create_app``.

Models are loaded once at start-up (lifespan); a request does no registry lookup, and for the
linear family no DataFrame either. Every prediction is queued to the prediction log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from time import perf_counter
from typing import Annotated, Any
from uuid import uuid4

from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from .. import __version__
from ..contract import FEATURES
from .metrics import ServiceMetrics
from .models import ModelSet, ServedModel, load_models
from .predictor import Row
from .schemas import (
    BatchRequest,
    BatchResponse,
    GroundTruthBatch,
    Health,
    Info,
    ModelInfo,
    Prediction,
    PredictRequest,
    PredictResponse,
    Trip,
)
from .settings import ServingSettings
from .store import LoggedPrediction, PredictionLog, make_engine, upsert_ground_truth

log = logging.getLogger(__name__)
Loader = Callable[[ServingSettings], ModelSet]
RequestId = Annotated[
    str | None, Header(max_length=200, description="Your id for this request (default: new)")
]
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "No model is loaded", "model": Health}
}


class ServiceState:
    """The live parts of the service. ``swap`` replaces the models atomically."""

    def __init__(
        self, settings: ServingSettings, models: ModelSet, engine: Engine, metrics: ServiceMetrics
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.log = PredictionLog(engine, flush_interval=settings.log_flush_interval)
        self.models = models
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self.swap(models)

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
    return [tuple(getattr(trip, name) for name in FEATURES) for trip in trips]


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
        yield
        app.state.service.close()

    app = FastAPI(
        title="Trip duration service",
        version=__version__,
        description="Predicts taxi trip durations (minutes) with the registry's champion, "
        "A/B testing a challenger on a sticky share of callers.",
        lifespan=lifespan,
    )

    def service() -> ServiceState:
        state: ServiceState = app.state.service
        return state

    def pick(key: str) -> ServedModel:
        models = service().models
        model = models.pick(key)
        if model is None:
            service().metrics.rejected.labels("predict", "503").inc()
            raise HTTPException(503, detail=f"no model loaded: {models.problem}")
        return model

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        service().metrics.rejected.labels(request.url.path, "422").inc()
        return JSONResponse({"detail": _errors(exc)}, status_code=422)

    @app.post("/predict", responses=NOT_READY, tags=["predict"])
    async def predict(body: PredictRequest, x_request_id: RequestId = None) -> PredictResponse:
        """Predict one trip's duration."""
        start = perf_counter()
        request_id = x_request_id or uuid4().hex
        model = pick(body.key or request_id)
        rows = _rows([body.trip])
        (value,) = await _predict(model, rows)
        seconds = perf_counter() - start
        state = service()
        state.observe("predict", model, 1, seconds)
        state.log.record(
            LoggedPrediction(
                datetime.now(UTC),
                request_id,
                body.key,
                model.variant,
                model.version,
                rows[0],
                value,
                seconds * 1000,
            )
        )
        return PredictResponse(
            request_id=request_id,
            duration=value,
            variant=model.variant,
            model_version=model.version,
        )

    @app.post("/predict/batch", responses=NOT_READY, tags=["predict"])
    async def predict_batch(body: BatchRequest, x_request_id: RequestId = None) -> BatchResponse:
        """Predict several trips; each gets its own request id ``<batch id>-<index>``."""
        start = perf_counter()
        if len(body.trips) > settings.max_batch_size:
            raise _too_many(len(body.trips), settings.max_batch_size)
        batch_id = x_request_id or uuid4().hex
        model = pick(body.key or batch_id)
        rows = _rows(body.trips)
        values = await _predict(model, rows)
        seconds = perf_counter() - start
        state = service()
        state.observe("predict_batch", model, len(rows), seconds)
        now, ids = datetime.now(UTC), [f"{batch_id}-{i}" for i in range(len(rows))]
        state.log.record_many(
            LoggedPrediction(
                now,
                rid,
                body.key,
                model.variant,
                model.version,
                row,
                value,
                seconds * 1000,
            )
            for rid, row, value in zip(ids, rows, values, strict=True)
        )
        return BatchResponse(
            variant=model.variant,
            model_version=model.version,
            predictions=[
                Prediction(request_id=rid, duration=value)
                for rid, value in zip(ids, values, strict=True)
            ],
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
        state = service()
        state.metrics.log_queue.set(state.log.pending())
        state.metrics.log_errors.set(state.log.errors)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
