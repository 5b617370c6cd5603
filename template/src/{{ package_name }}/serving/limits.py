"""Request limits: a cap on the body size, enforced before the body is read or parsed, and
what is wrong with a body that cannot be read as JSON.

A pure ASGI middleware (no per-request overhead beyond a header lookup): a declared
``Content-Length`` over the cap is refused at once, and a streamed body is counted as it
arrives, so neither kind can make the service buffer more than ``max_bytes``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Problem(BaseModel):
    """An error the service answers before it looks at the request's content."""

    detail: str


# Documented on every operation (FastAPI(responses=...)): what any route may answer.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body could not be read as JSON", "model": Problem},
    413: {"description": "The body is larger than SERVING_MAX_BODY_BYTES", "model": Problem},
}


class BodySizeLimit:
    """Answer 413 to any request whose body is larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # FastAPI passes an HTTPException through as is
                    raise HTTPException(413, detail=self._detail)
            return message

        await self.app(scope, counted_receive, send)

    @property
    def _detail(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": self._detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def unreadable_body(exc: Exception) -> str | None:
    """What is wrong with a body FastAPI could not parse (its 400 says only that it could
    not): not UTF-8, or JSON nested deeper than the parser goes. None for other errors."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return (
            f"the body is not valid UTF-8: byte 0x{cause.object[cause.start]:02x} at "
            f"position {cause.start}"
        )
    if isinstance(cause, RecursionError):
        return "the body's JSON is nested too deeply to read"
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
