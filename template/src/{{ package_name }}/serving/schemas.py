"""Request and response bodies, built from the contract (``problem.PROBLEM``).

A request row has one field per feature, typed and bounded as ``contract.py`` declares it:
numbers with their bounds, categories with their allowed values, nullable features optional.
The contract's event time and identifier may come along (optional; logged with the row).
Answers name the target: ``predicted_<target>``, as batch scoring does; a classifier's answer
is its predicted class (``Problem.decide``), with ``probabilities`` holding one field per
declared class. Ground truth is a value within the target's range, or one of the declared
classes, sent one at a time (``{"request_id": ..., "<target>": ...}``) or as a batch
(``{"items": [...]}``). ``/docs`` and ``openapi.json`` show exactly these fields: change
``contract.py`` and they follow.
:func:`api_models` builds them for any problem (``API``: for ``problem.PROBLEM``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    WithJsonSchema,
    create_model,
)

from ..problem import PROBLEM, Column, Problem

#: The caller's ``X-Request-ID``: no ``/``, which separates a batch id from a row's index.
REQUEST_ID_PATTERN = r"^[^/]+$"
MAX_REQUEST_ID = 200
MAX_GROUND_TRUTH = 100_000
CallerKey = Annotated[str, Field(min_length=1, max_length=200)]
Row = tuple[Any, ...]


def _whole_number(value: Any) -> Any:
    """``43.0`` is the integer 43 in JSON (and in the OpenAPI schema); ``43.5`` stays invalid."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _integer_category(value: Any) -> Any:
    """An integer category is a whole number: ``true`` is not 1 (a Literal would take it)."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    return _whole_number(value)


def _date_time_text(value: Any) -> Any:
    """A date-time is text like ``2024-01-01T08:30:00``: a number is not read as Unix time."""
    if not isinstance(value, str | datetime):
        raise ValueError("expected a date-time string like 2024-01-01T08:30:00")
    return value


def _plain(value: Any) -> Any:
    """A category as JSON has it (numpy scalars from the contract become Python values)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _bounds(column: Column) -> dict[str, Any]:
    """``ge``/``le`` of the declared bounds (whole numbers for an integer column)."""
    found: dict[str, Any] = {}
    for key, bound in (("ge", column.minimum), ("le", column.maximum)):
        if bound is not None and math.isfinite(bound):
            found[key] = int(bound) if column.kind == "integer" and bound.is_integer() else bound
    return found


def field_type(column: Column) -> Any:
    """The type of ``column``'s request field: its kind, bounds or allowed values, nullability.

    Strict: text is not a number and a boolean is neither (nor an integer category); a
    whole-number float is an integer; a date-time is text, never a number.
    """
    kind: Any
    if column.categories is not None:
        kind = Literal[tuple(_plain(value) for value in column.categories)]
        if column.kind == "integer":
            kind = Annotated[kind, BeforeValidator(_integer_category)]
    elif column.kind == "integer":
        kind = Annotated[int, Field(strict=True, **_bounds(column)), BeforeValidator(_whole_number)]
    elif column.kind == "number":
        kind = Annotated[float, Field(strict=True, allow_inf_nan=False, **_bounds(column))]
    elif column.kind == "string":
        kind = Annotated[str, Field(strict=True, max_length=1_000)]
    elif column.kind == "boolean":
        kind = Annotated[bool, Field(strict=True)]
    else:
        kind = Annotated[datetime, BeforeValidator(_date_time_text)]
    return kind | None if column.nullable else kind


def decision(problem: Problem) -> str:
    """How a classifier's class is chosen from its probabilities, in words."""
    if problem.task == "binary":
        return f"{problem.positive_class!r} from a probability of {problem.decision_threshold} on"
    return "the most probable"


def describe(column: Column) -> str:
    text = column.description or column.name
    return f"{text} ({column.unit})" if column.unit else text


def example(column: Column) -> JsonValue:
    """A valid value of ``column`` for the documentation's examples."""
    if column.categories:
        value: JsonValue = _plain(column.categories[0])
        return value
    low, high = column.minimum, column.maximum
    middle = 1.0
    if low is not None and high is not None:
        middle = (low + high) / 2
    elif low is not None:
        middle = low + 1
    elif high is not None:
        middle = high - 1
    if column.kind == "integer":
        return round(middle)
    if column.kind == "number":
        return middle
    if column.kind == "boolean":
        return True
    if column.kind == "datetime":
        return "2024-01-01T08:30:00"
    return "text"


def _python_name(index: int, name: str) -> str:
    """``name`` if it can be a pydantic field name, else a stand-in (the alias keeps ``name``)."""
    usable = name.isidentifier() and not name.startswith(("_", "model_"))
    return name if usable and not hasattr(BaseModel, name) else f"field_{index}"


def example_row(problem: Problem = PROBLEM) -> dict[str, JsonValue]:
    """A valid request row of ``problem``, for the documentation."""
    return {column.name: example(column) for column in problem.feature_columns}


def _examples(schema: dict[str, Any], model: type) -> None:
    schema["examples"] = [getattr(model, "example", {})]


class FeatureRow(BaseModel):
    """One row of model inputs; its fields are the contract's (see ``features_model``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, json_schema_extra=_examples)

    #: Python names of the features in model order, then of the optional extras.
    feature_fields: ClassVar[tuple[str, ...]] = ()
    extra_fields: ClassVar[tuple[str, ...]] = ()
    example: ClassVar[dict[str, JsonValue]] = {}

    def row(self) -> Row:
        """The features in model order (``PROBLEM.features``)."""
        values = self.__dict__
        return tuple([values[name] for name in self.feature_fields])

    def extras(self) -> Row:
        """The event time and identifier (None when not given), as ``extra_columns`` lists."""
        values = self.__dict__
        return tuple([values[name] for name in self.extra_fields])


def extra_columns(problem: Problem = PROBLEM) -> list[Column]:
    """The contract's event time and identifier: optional in a request, logged with the row."""
    return [c for c in problem.columns if c.role in ("event_time", "identifier")]


def features_model(problem: Problem = PROBLEM) -> type[FeatureRow]:
    """The request row model of ``problem``: its features, then optional time and id fields."""
    fields: dict[str, Any] = {}
    names: list[str] = []
    for index, column in enumerate([*problem.feature_columns, *extra_columns(problem)]):
        name = _python_name(index, column.name)
        names.append(name)
        kind = field_type(column)
        optional = column.nullable or column.role not in ("categorical", "numeric")
        info = Field(
            default=None if optional else ...,
            alias=None if name == column.name else column.name,
            description=describe(column),
        )
        fields[name] = (kind | None if optional else kind, info)
    model = create_model(
        "Features",
        __base__=FeatureRow,
        __doc__=f"One row to predict for ({problem.name}): the features contract.py declares.",
        **fields,
    )
    n = len(problem.features)
    model.feature_fields, model.extra_fields = tuple(names[:n]), tuple(names[n:])
    model.example = example_row(problem)
    return model


class TruthItem(BaseModel):
    """An actual target value; its value field is the contract's target (``truth_model``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    request_id: str = Field(min_length=1, max_length=MAX_REQUEST_ID + 20)
    value_field: ClassVar[str] = ""

    def pair(self) -> tuple[str, Any]:
        """(request id, actual value or class)."""
        return self.request_id, self.__dict__[self.value_field]


def class_lookup(problem: Problem) -> dict[Any, Any]:
    """Each declared class by itself and, for integer classes, by its text ("1" is 1)."""
    found = {_plain(label): _plain(label) for label in problem.classes}
    if problem.target.kind == "integer":
        found |= {str(label): label for label in list(found)}
    return found


def class_checker(problem: Problem) -> Any:
    """A validator taking a label to its declared class; an unknown one is refused by name."""
    lookup = class_lookup(problem)
    declared = list(lookup.values())

    def known(value: Any) -> Any:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value in lookup:
            return lookup[value]
        raise ValueError(
            f"unknown {problem.target.name} {value!r}: not one of the declared classes "
            f"{list(dict.fromkeys(declared))}"
        )

    return BeforeValidator(known)


def truth_type(problem: Problem) -> Any:
    """A regression target's value within its range, or one of a classifier's classes."""
    target = problem.target
    if problem.is_classifier:
        classes = [_plain(label) for label in problem.classes]
        return Annotated[Any, class_checker(problem), WithJsonSchema({"enum": classes})]
    return Annotated[float, Field(strict=True, allow_inf_nan=False, **_bounds(target))]


def truth_model(problem: Problem = PROBLEM) -> type[TruthItem]:
    """An actual target value of a served prediction: within the target's declared range, or
    one of the declared classes (an unknown class is refused, named)."""
    target = problem.target
    name = _python_name(0, target.name)
    alias = None if name == target.name else target.name
    fields: dict[str, Any] = {
        name: (truth_type(problem), Field(alias=alias, description=describe(target)))
    }
    model = create_model(
        "GroundTruth",
        __base__=TruthItem,
        __doc__=f"The actual {target.name} of a served prediction, known later.",
        **fields,
    )
    model.value_field = name
    return model


def predicted_field(problem: Problem = PROBLEM) -> str:
    """The answer's field of a prediction, as batch scoring names its column."""
    return f"predicted_{problem.target.name}"


def probabilities_model(problem: Problem) -> type[BaseModel]:
    """A classifier's probabilities: one field per declared class, named by the class."""
    fields: dict[str, Any] = {}
    for index, label in enumerate(problem.classes):
        text = str(_plain(label))
        name = _python_name(index, text)
        fields[name] = (
            Annotated[float, Field(ge=0.0, le=1.0)],
            Field(alias=None if name == text else text, description=f"Probability of {text}"),
        )
    return create_model(
        "Probabilities",
        __config__=ConfigDict(populate_by_name=True),
        __doc__="The probability of each declared class (they sum to 1).",
        **fields,
    )


def prediction_model(problem: Problem = PROBLEM) -> type[BaseModel]:
    """A prediction as the service answers it: ``predicted_<target>`` and its request id, and
    a classifier's class probabilities."""
    target = problem.target
    fields: dict[str, Any] = {"request_id": (str, ...)}
    if problem.is_classifier:
        classes = tuple(_plain(label) for label in problem.classes)
        described = (
            f"The predicted {describe(target)}, one of the declared classes ({decision(problem)})."
        )
        fields[predicted_field(problem)] = (Literal[classes], Field(description=described))
        fields["probabilities"] = (probabilities_model(problem), ...)
    else:
        described = f"Predicted {describe(target)}, within its declared range."
        fields[predicted_field(problem)] = (float, Field(description=described))
    return create_model(
        "Prediction",
        __doc__="A prediction, and the request id to attach the actual value to later.",
        **fields,
    )


class PredictRequest(BaseModel):
    """One row to predict for; ``key`` (a user or session id) keeps the caller on one variant.

    ``features`` is the problem's row model in the models :func:`api_models` builds.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_examples)
    example: ClassVar[dict[str, JsonValue]] = {}

    features: FeatureRow
    key: CallerKey | None = None


class BatchRequest(BaseModel):
    """Several rows from one caller, answered by one variant."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_examples)
    example: ClassVar[dict[str, JsonValue]] = {}

    rows: list[FeatureRow] = Field(min_length=1)
    key: CallerKey | None = None


class GroundTruthBatch(BaseModel):
    """Actual target values to attach by request id."""

    model_config = ConfigDict(extra="forbid")

    items: list[TruthItem] = Field(min_length=1, max_length=MAX_GROUND_TRUTH)


#: ``/ground-truth``'s body: one actual value, or a batch of them.
GroundTruthBody = TruthItem | GroundTruthBatch


def truth_pairs(body: GroundTruthBody) -> list[tuple[str, Any]]:
    """(request id, actual value or class) of the one value, or of each item of a batch."""
    items = [body] if isinstance(body, TruthItem) else body.items
    return [item.pair() for item in items]


def truth_form(body: Any) -> str | None:
    """Which form a ground-truth body has: ``batch`` with ``items``, ``single`` with
    ``request_id``; neither is refused as a whole (:func:`ground_truth_body`)."""
    if isinstance(body, GroundTruthBatch) or (isinstance(body, dict) and "items" in body):
        return "batch"
    if isinstance(body, TruthItem) or (isinstance(body, dict) and "request_id" in body):
        return "single"
    return None


def ground_truth_body(
    truth: type[TruthItem], batch: type[GroundTruthBatch], problem: Problem
) -> Any:
    """The body type of ``/ground-truth``: one value or a batch, told apart by their keys, so
    a bad body gets the errors of the form it was meant to be (not of both)."""
    target = problem.target.name
    expected = f'{{"request_id": ..., "{target}": ...}} or {{"items": [those]}}'
    single: Any = truth  # models built at run time, as types
    several: Any = batch
    forms = Annotated[single, Tag("single")] | Annotated[several, Tag("batch")]
    return Annotated[
        forms,
        Discriminator(
            truth_form,
            custom_error_type="ground_truth_form",
            custom_error_message=f"expected a JSON object {expected}",
        ),
    ]


@dataclass(frozen=True)
class ApiModels:
    """The request and response bodies of one problem, and the name of its answer's field."""

    predicted: str
    predict_request: type[PredictRequest]
    batch_request: type[BatchRequest]
    predict_response: type[BaseModel]
    batch_response: type[BaseModel]
    #: One value (``truth_model``) or a batch of them (``GroundTruthBody`` at run time).
    ground_truth: Any


def _list_of(model: type[BaseModel]) -> Any:
    """``list[model]`` of a model built at run time."""
    return list.__class_getitem__(model)


def api_models(problem: Problem = PROBLEM) -> ApiModels:
    """The bodies of ``problem``'s endpoints, with its fields (see the module's docstring)."""
    features = features_model(problem)
    predict_request = create_model(
        "PredictRequest", __base__=PredictRequest, features=(features, ...)
    )
    predict_request.example = {"features": example_row(problem), "key": "user-42"}
    batch_request = create_model(
        "BatchRequest", __base__=BatchRequest, rows=(_list_of(features), Field(min_length=1))
    )
    batch_request.example = {"rows": [example_row(problem)] * 2, "key": "user-7"}
    prediction = prediction_model(problem)
    predict_response = create_model(
        "PredictResponse",
        __base__=prediction,
        __doc__="A prediction, and which variant and model version answered.",
        variant=(str, ...),
        model_version=(int, ...),
    )
    batch_response = create_model(
        "BatchResponse",
        __doc__="One prediction per row, in order; row ``i``'s request id is ``<batch id>/<i>``.",
        variant=(str, ...),
        model_version=(int, ...),
        predictions=(_list_of(prediction), ...),
    )
    truth = truth_model(problem)
    truth_batch = create_model(
        "GroundTruthBatch",
        __base__=GroundTruthBatch,
        items=(_list_of(truth), Field(min_length=1, max_length=MAX_GROUND_TRUTH)),
    )
    return ApiModels(
        predicted_field(problem),
        predict_request,
        batch_request,
        predict_response,
        batch_response,
        ground_truth_body(truth, truth_batch, problem),
    )


#: The bodies of ``problem.PROBLEM``, the contract's problem.
API = api_models(PROBLEM)
#: The answer's field of a prediction, as batch scoring names its column.
PREDICTED = API.predicted


class Attached(BaseModel):
    """What ``/ground-truth`` did: how many values it attached, and which ids it did not know."""

    attached: int
    unknown: int = Field(description="Request ids never served (or not logged yet).")
    unknown_ids: list[str] = Field(description="A sample of the unknown request ids.")
    repeated: int = Field(
        0, description="Values whose request id came again later in this body: the last is kept."
    )


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
    """One reason a request was refused: where (``["body", "features", "<name>"]``) and why."""

    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """A request refused before prediction (422), one entry per bad field."""

    detail: list[FieldError]


class Message(BaseModel):
    """A refusal explained in one line (409, 503)."""

    detail: str
