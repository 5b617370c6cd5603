"""Request and response bodies: strict, ranged, documented with examples.

Field names follow the data contract (``contract.FEATURES``); change both together.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue

from ..contract import ZONE_MAX, ZONE_MIN


def _whole_number(value: Any) -> Any:
    """``43.0`` is the integer 43 in JSON (and in the OpenAPI schema); ``43.5`` stays invalid."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict: "161" (text) and true (a bool) are refused, not coerced.
Zone = Annotated[int, Field(ge=ZONE_MIN, le=ZONE_MAX, strict=True), BeforeValidator(_whole_number)]
CallerKey = Annotated[str, Field(min_length=1, max_length=200)]
MAX_DISTANCE = 500.0

TRIP_EXAMPLE: dict[str, JsonValue] = {
    "PULocationID": 161,
    "DOLocationID": 236,
    "trip_distance": 2.1,
}


class Trip(BaseModel):
    """One trip to price: pickup and drop-off TLC zones and the distance in miles."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [TRIP_EXAMPLE]})

    PULocationID: Zone
    DOLocationID: Zone
    trip_distance: float = Field(ge=0.0, le=MAX_DISTANCE, allow_inf_nan=False, strict=True)


class PredictRequest(BaseModel):
    """A single prediction; ``key`` (a rider or session id) keeps the caller on one variant."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"key": "rider-42", "trip": TRIP_EXAMPLE}]},
    )

    trip: Trip
    key: CallerKey | None = None


class BatchRequest(BaseModel):
    """Several trips from one caller, answered by one variant."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"key": "fleet-7", "trips": [TRIP_EXAMPLE] * 2}]},
    )

    trips: list[Trip] = Field(min_length=1)
    key: CallerKey | None = None


class Prediction(BaseModel):
    """A predicted duration and the id to attach the actual duration to later."""

    request_id: str
    duration: float = Field(description="Predicted trip duration in minutes.")


class PredictResponse(Prediction):
    """Which variant and model version answered."""

    variant: str
    model_version: int


class BatchResponse(BaseModel):
    """One prediction per trip, in order."""

    variant: str
    model_version: int
    predictions: list[Prediction]


class GroundTruth(BaseModel):
    """The actual duration of a served trip, known later."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    duration: float = Field(ge=0.0, le=24 * 60, allow_inf_nan=False, strict=True)


class GroundTruthBatch(BaseModel):
    """Actual durations to attach by request id."""

    model_config = ConfigDict(extra="forbid")

    items: list[GroundTruth] = Field(min_length=1, max_length=100_000)


class ModelInfo(BaseModel):
    """A loaded model."""

    variant: str
    alias: str
    version: int
    fast_path: bool


class Info(BaseModel):
    """What the service is serving."""

    models: list[ModelInfo]
    challenger_share: float
    max_batch_size: int


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    ready: bool
    detail: str | None = None


class FieldError(BaseModel):
    """One reason a request was refused: where (``["body", "trip", "PULocationID"]``) and why."""

    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """A request refused before prediction (422), one entry per bad field."""

    detail: list[FieldError]
