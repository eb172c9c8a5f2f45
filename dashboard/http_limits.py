"""A cap on the size of request bodies, for every route of the app.

Gradio caps ``/gradio_api/upload`` (``max_file_size``), but an image can also travel base64-encoded
inside the JSON of ``/gradio_api/call/<api>`` or ``/gradio_api/queue/join``: those bodies are read
whole into memory by the framework before any component sees them. This ASGI middleware refuses a
body larger than the cap with HTTP 413, from its Content-Length header when there is one and
otherwise while it streams in, before the application reads it. Written by hand because neither
Starlette nor Gradio offers a body-size limit for JSON routes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_OVERHEAD = 256 * 1024  # the rest of a request around one base64 image (event data, ids)


def body_cap(max_file_bytes: int) -> int:
    """The largest body that can carry one file of ``max_file_bytes`` as base64 in JSON."""
    return (max_file_bytes + 2) // 3 * 4 + JSON_OVERHEAD


class BodySizeLimit:
    """Refuse request bodies over ``max_body`` bytes with 413 (multipart uploads excepted:
    Gradio's own upload route checks each file against max_file_size while it streams)."""

    def __init__(self, app: ASGIApp, max_body: int, exempt_paths: tuple[str, ...] = ("/gradio_api/upload",)):
        self.app = app
        self.max_body = max_body
        self.exempt = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS")
                or scope.get("path", "").rstrip("/").endswith(self.exempt)):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_body
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(send)
                return
        # No (or a lying) Content-Length: read the body here, counting, then replay it.
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_body:
                await self._refuse(send)
                return
            chunks.append(body)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        mb = self.max_body / 2**20
        body = json.dumps({"error": f"The request is larger than this server accepts ({mb:.1f} MB at "
                                    "most, an image included). Send a smaller image."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
