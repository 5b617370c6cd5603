"""JSON bodies on the prediction hot path, without FastAPI's per-request machinery.

A declared ``body: Model`` parameter costs a ``json.loads``, a dependency solve and a second,
Python-level validation per request; a returned model costs another validation before it is
serialized. The predict endpoints instead take the raw ``Request``: :func:`parse` parses and
validates the bytes in one pydantic-core pass (``model_validate_json``), raising the same
``RequestValidationError`` (422, field named) FastAPI would, and :func:`json_response` writes a
plain dict straight to JSON. :func:`json_body` and :func:`document` keep the OpenAPI schema as
it would be with declared parameters, so ``/docs`` and schema-driven clients see no difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

M = TypeVar("M", bound=BaseModel)
REF = "#/components/schemas/{model}"
REQUEST_ID = "x-request-id"
MAX_REQUEST_ID = 200


def _json_media(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def parse(model: type[M], request: Request, raw: bytes) -> M:
    """``raw`` as ``model``, or a 422 naming each bad field (``loc`` starts with ``body``)."""
    content_type = request.headers.get("content-type")
    if content_type is not None and not _json_media(content_type):
        raise RequestValidationError(
            [{"type": "json_type", "loc": ("body",), "msg": "expected a JSON body", "input": None}]
        )
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


def request_id(request: Request) -> str | None:
    """The caller's ``X-Request-ID`` (None when absent or empty), at most 200 characters."""
    value = request.headers.get(REQUEST_ID)
    if value is not None and len(value) > MAX_REQUEST_ID:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("header", REQUEST_ID),
                    "msg": f"String should have at most {MAX_REQUEST_ID} characters",
                    "input": None,
                }
            ]
        )
    return value or None


def json_response(content: Any) -> Response:
    """A 200 JSON answer from plain dicts, lists, strings and numbers."""
    return Response(to_json(content), media_type="application/json")


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of an endpoint that reads ``model`` and ``X-Request-ID`` itself."""
    schema = {"$ref": REF.format(model=model.__name__)}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "parameters": [
            {
                "name": REQUEST_ID,
                "in": "header",
                "required": False,
                "description": "Your id for this request (default: new)",
                "schema": {"type": "string", "maxLength": MAX_REQUEST_ID},
            }
        ],
    }


def document(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add ``models`` (bodies the endpoints parse themselves) to the OpenAPI components."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # caches it in app.openapi_schema
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                found = model.model_json_schema(ref_template=REF)
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
