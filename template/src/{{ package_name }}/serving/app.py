"""The prediction service: ``<project> serve`` (uvicorn, the factory ``create_app``).

Request and response bodies are built from the contract (``schemas.py``) and taken through
FastAPI's own models, so every endpoint refuses bad input the same way (422, each bad field
named) and ``/docs`` shows the real fields. Models are loaded once at start-up (lifespan); a
request does no registry lookup. A regressor's predictions are held to the target's declared
range; a classifier answers its predicted class and every class's probability. Every
prediction is queued to the prediction log under a request id used once: the caller's
``X-Request-ID`` (a reused one gets 409) or one the service makes; batch row ``i`` is
``<id>/<i>``. ``create_app`` serves the contract's problem (``problem.PROBLEM``) unless told
another.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from itertools import count
from time import perf_counter
from typing import Annotated, Any, TypeVar
from uuid import uuid4

from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..problem import PROBLEM, DataValidationError, Problem
from .limits import ERROR_RESPONSES, BodySizeLimit, unreadable_body
from .metrics import PREDICT, PREDICT_BATCH, ServiceMetrics
from .models import ModelSet, ServedModel, load_models, load_until_ready
from .predictor import Probabilities, Row, decided
from .schemas import (
    MAX_REQUEST_ID,
    REQUEST_ID_PATTERN,
    Attached,
    BatchRequest,
    GroundTruthBody,
    Health,
    Info,
    Invalid,
    Message,
    ModelInfo,
    PredictRequest,
    api_models,
    decision,
    truth_pairs,
)
from .settings import ServingSettings
from .store import (
    TABLES,
    LoggedBatch,
    LoggedPrediction,
    LogTables,
    PredictionLog,
    attach_ground_truth,
    log_tables,
    make_engine,
)

log = logging.getLogger(__name__)
Loader = Callable[[ServingSettings], ModelSet]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "No model is loaded", "model": Health}
}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_READY,
    409: {"description": "This X-Request-ID was used before", "model": Message},
    422: {"description": "Validation Error", "model": Invalid},
}
RequestId = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=MAX_REQUEST_ID,
        pattern=REQUEST_ID_PATTERN,
        description="Your id for this request, used once, without '/' (default: a new one)",
    ),
]
#: Seconds ``/ground-truth`` waits for predictions still queued to reach the log.
TRUTH_FLUSH_SECONDS = 10.0


class ServiceState:
    """The live parts of the service. ``swap`` replaces the models atomically."""

    def __init__(
        self,
        settings: ServingSettings,
        models: ModelSet,
        engine: Engine,
        metrics: ServiceMetrics,
        tables: LogTables = TABLES,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.tables = tables
        self.log = PredictionLog(
            engine,
            flush_interval=settings.log_flush_interval,
            dead_letter=settings.dead_letter_path,
            tables=tables,
        )
        metrics.watch_log(self.log)
        self.models = models
        self._children: dict[tuple[str, str, int], tuple[Any, ...]] = {}
        self._id_prefix = uuid4().hex[:16]  # per process (made in the lifespan, after any fork)
        self._ids = count()
        self.swap(models)

    def new_request_id(self) -> str:
        """A unique id: this process's random prefix and a counter (a uuid4 costs more)."""
        return f"{self._id_prefix}{next(self._ids):08x}"

    async def request_id(self, given: str | None, endpoint: str) -> tuple[str, str | None]:
        """The id to log under, and the caller's id claimed for it (released once logged).

        409 when the caller's id is queued or logged already: a prediction is never logged
        twice under one id, nor silently left out.
        """
        if given is None:
            return self.new_request_id(), None
        if self.log.claim(given):
            if not await run_in_threadpool(self.log.logged, given):
                return given, given
            self.log.release(given)
        self.metrics.rejected.labels(endpoint, "409").inc()
        raise HTTPException(
            409,
            detail=f"X-Request-ID {given!r} was used before; send a new id per request "
            "(or none: the service makes one)",
        )

    def swap(self, models: ModelSet) -> None:
        """Serve ``models`` from the next request on (requests in flight keep theirs)."""
        self.models = models
        self.metrics.model_loaded.clear()
        for model in models.by_variant.values():
            self.metrics.model_loaded.labels(model.variant, str(model.version)).set(1)

    def observe(
        self, endpoint: str, model: ServedModel, count: int, clipped: int, seconds: float
    ) -> None:
        key = (endpoint, model.variant, model.version)
        children = self._children.get(key)
        if children is None:
            labels = (endpoint, model.variant, str(model.version))
            children = (
                self.metrics.requests.labels(*labels, "ok"),
                self.metrics.latency.labels(*labels),
                self.metrics.predictions.labels(model.variant, str(model.version)),
                self.metrics.clipped.labels(model.variant, str(model.version)),
            )
            self._children[key] = children
        requests, latency, predictions, held = children
        requests.inc()
        latency.observe(seconds)
        predictions.inc(count)
        if clipped:
            held.inc(clipped)

    def close(self) -> None:
        self.log.close()
        self.engine.dispose()


#: Predictions of some rows: values or classes, whether each was held to the target's range,
#: and a classifier's class probabilities (empty for a regressor).
Answers = tuple[list[Any], list[bool], list[Probabilities]]


def held(values: Sequence[float], problem: Problem = PROBLEM) -> Answers:
    """``values`` held to the target's declared range, and which of them were outside it."""
    low, high = problem.target_range
    out, clipped = [], []
    for value in values:
        outside = not low <= value <= high
        out.append(min(max(value, low), high) if outside else value)
        clipped.append(outside)
    return out, clipped, []


def classified(probabilities: list[Probabilities], problem: Problem) -> Answers:
    """The predicted class of each row (``Problem.decide``), and its probabilities (nothing is
    held)."""
    labels = decided(problem, probabilities)
    return labels, [False] * len(labels), probabilities


def _answers(model: ServedModel, rows: list[Row], problem: Problem) -> Answers:
    if problem.is_classifier:
        return classified(model.predictor.predict_proba_rows(rows), problem)
    return held(model.predictor.predict_rows(rows), problem)


async def _predict(model: ServedModel, rows: list[Row], problem: Problem) -> Answers:
    if model.predictor.fast_path:
        return _answers(model, rows, problem)
    return await run_in_threadpool(_answers, model, rows, problem)  # the loop stays free


def _body(model: type[Any]) -> Callable[[Endpoint], Endpoint]:
    """Give an endpoint's ``body`` the problem's request model (built at run time: FastAPI
    reads the parameter's annotation; mypy sees the base model the endpoint is written for)."""

    def bind(endpoint: Endpoint) -> Endpoint:
        endpoint.__annotations__ = {**endpoint.__annotations__, "body": model}
        return endpoint

    return bind


def _too_many(count: int, limit: int) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "type": "too_long",
                "loc": ("body", "rows"),
                "msg": f"at most {limit} rows per request (SERVING_MAX_BATCH_SIZE), got {count}",
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


def _endpoint(request: Request) -> str:
    """The route's path (one label per endpoint), else the URL's."""
    return str(getattr(request.scope.get("route"), "path", request.url.path))


def create_app(
    settings: ServingSettings | None = None,
    loader: Loader = load_models,
    problem: Problem = PROBLEM,
) -> FastAPI:
    """Build the app; ``loader`` returns the models (the registry by default, a stub in tests).

    ``problem``: what the models predict and the log holds (the contract's by default).
    """
    settings = settings or ServingSettings()
    api = api_models(problem)
    predicted = api.predicted
    tables = TABLES if problem is PROBLEM else log_tables(problem)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # a log made for another contract is refused here
        engine = make_engine(settings.prediction_log_url, tables)
        models = await run_in_threadpool(loader, settings)
        if not models.ready:
            log.warning("serving without a model: %s", models.problem)
        app.state.service = ServiceState(settings, models, engine, ServiceMetrics(), tables)
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

    target = problem.target
    unit = f" ({target.unit})" if target.unit else ""
    answers = (
        f"answers one of the classes {list(problem.classes)} ({decision(problem)}) and the "
        "probability of each."
        if problem.is_classifier
        else "predictions are held to the target's declared range."
    )
    app = FastAPI(
        title=f"{problem.name} service",
        version=__version__,
        description=f"Predicts {target.name}{unit} with the registry's champion, A/B testing a "
        f"challenger on a sticky share of callers; {answers}",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    def service() -> ServiceState:
        state: ServiceState = app.state.service
        return state

    def pick(endpoint: str, key: str) -> ServedModel:
        models = service().models
        model = models.pick(key)
        if model is None:
            service().metrics.rejected.labels(endpoint, "503").inc()
            raise HTTPException(503, detail=f"no model loaded: {models.problem}")
        return model

    async def answer(
        endpoint: str, key: str | None, given: str | None, rows: list[Row]
    ) -> tuple[ServedModel, str, str | None, Answers]:
        """The model, request id (and caller's id claimed) and predictions for ``rows``."""
        state = service()
        rid, claim = await state.request_id(given, endpoint)
        try:
            model = pick(endpoint, key or rid)
            found = await _predict(model, rows, problem)
        except BaseException:
            if claim is not None:
                state.log.release(claim)
            raise
        return model, rid, claim, found

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        service().metrics.rejected.labels(_endpoint(request), "422").inc()
        return JSONResponse({"detail": _errors(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        reason = unreadable_body(exc) if exc.status_code == 400 else None
        if reason is None:
            return await http_exception_handler(request, exc)
        service().metrics.rejected.labels(_endpoint(request), "400").inc()
        return JSONResponse({"detail": reason}, status_code=400)

    @app.exception_handler(DataValidationError)
    async def off_contract(request: Request, exc: DataValidationError) -> JSONResponse:
        service().metrics.rejected.labels(_endpoint(request), "422").inc()
        detail = [{"loc": ["body"], "msg": str(exc), "type": "contract"}]
        return JSONResponse({"detail": detail}, status_code=422)

    def probabilities(odds: Probabilities) -> dict[str, float]:
        return dict(zip(class_names, odds, strict=True))

    class_names = [str(label) for label in problem.classes]

    def prediction(rid: str, value: Any, odds: list[Probabilities], i: int) -> dict[str, Any]:
        """One prediction as answered: its id, value and, for a classifier, probabilities."""
        if odds:
            return {"request_id": rid, predicted: value, "probabilities": probabilities(odds[i])}
        return {"request_id": rid, predicted: value}

    @app.post(
        PREDICT,
        tags=["predict"],
        response_model=api.predict_response,
        responses=PREDICT_RESPONSES,
    )
    @_body(api.predict_request)
    async def predict(body: PredictRequest, x_request_id: RequestId = None) -> Any:
        """Predict for one row of features."""
        start = perf_counter()
        state = service()
        rows = [body.features.row()]
        model, rid, claim, ((value,), (clipped,), odds) = await answer(
            PREDICT, body.key, x_request_id, rows
        )
        seconds = perf_counter() - start
        state.observe(PREDICT, model, 1, int(clipped), seconds)
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
                clipped,
                body.features.extras(),
                claim,
                odds[0] if odds else (),
            )
        )
        return {
            **prediction(rid, value, odds, 0),
            "variant": model.variant,
            "model_version": model.version,
        }

    @app.post(
        PREDICT_BATCH,
        tags=["predict"],
        response_model=api.batch_response,
        responses=PREDICT_RESPONSES,
    )
    @_body(api.batch_request)
    async def predict_batch(body: BatchRequest, x_request_id: RequestId = None) -> Any:
        """Predict for several rows; row ``i`` gets the request id ``<batch id>/<i>``."""
        start = perf_counter()
        if len(body.rows) > settings.max_batch_size:
            raise _too_many(len(body.rows), settings.max_batch_size)
        state = service()
        rows = [features.row() for features in body.rows]
        model, batch_id, claim, (values, clipped, odds) = await answer(
            PREDICT_BATCH, body.key, x_request_id, rows
        )
        seconds = perf_counter() - start
        state.observe(PREDICT_BATCH, model, len(rows), sum(clipped), seconds)
        ids = tuple([f"{batch_id}/{i}" for i in range(len(rows))])
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
                tuple(clipped),
                tuple(features.extras() for features in body.rows),
                claim,
                tuple(odds),
            )
        )
        return {
            "variant": model.variant,
            "model_version": model.version,
            "predictions": [
                prediction(rid, value, odds, i)
                for i, (rid, value) in enumerate(zip(ids, values, strict=True))
            ],
        }

    @app.post(
        "/ground-truth",
        tags=["monitoring"],
        responses={503: {"description": "The prediction log is unreachable", "model": Message}},
    )
    @_body(api.ground_truth)
    def ground_truth(body: GroundTruthBody) -> Attached:
        """Attach actual target values (a classifier's classes) to served predictions by
        request id: one (``{"request_id": ..., "<target>": ...}``) or a batch
        (``{"items": [...]}``); an unknown class is refused (422) by name.

        Says how many were attached, and lists a sample of the ids the log does not hold.
        """
        state = service()
        state.log.flush(TRUTH_FLUSH_SECONDS)  # predictions served a moment ago count too
        try:
            done = attach_ground_truth(state.engine, truth_pairs(body), tables=state.tables)
        except SQLAlchemyError as exc:
            log.exception("attaching ground truth failed")
            detail = f"prediction log unreachable: {type(exc).__name__}"
            raise HTTPException(503, detail=detail) from None
        return Attached(
            attached=done.attached,
            unknown=done.unknown,
            unknown_ids=done.unknown_ids,
            repeated=done.repeated,
        )

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

    return app
