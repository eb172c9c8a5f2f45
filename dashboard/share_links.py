"""Bounds on Gradio's deep links (the share links), for every route of the app.

Gradio 6.31 serves ``GET /gradio_api/deep_link?session_hash=...``: it writes a snapshot of that
session's component values to ``<upload folder>/deep_links/<hash>/state.json`` and answers the
hash; ``/?deep_link=<hash>`` (and ``/config?deep_link=``) serves the page with those values. It
never deletes a snapshot and never limits one's size: any visitor can fill the disk by asking
for links in a loop, each as large as the values their session last sent (a request body).
The snapshot's image and CSV are files in the upload folder, which the cache sweep
(``delete_cache``) deletes after an hour, so an old link would restore a broken image.

This ASGI middleware bounds all of that: a snapshot larger than ``max_bytes`` is deleted at once
and refused with HTTP 413; snapshots older than ``ttl`` seconds, beyond the newest
``max_links``, or naming a file that no longer exists are deleted, so Gradio then answers that
the link is invalid. Written by hand because Gradio offers no limit on deep links.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CREATE_PATH = "/gradio_api/deep_link"
STATE_FILE = "state.json"
MAX_LINK_BYTES = 1 * 2**20  # a full snapshot of this dashboard is about 200 kB
MAX_LINKS = 200


def snapshot_files(state: object) -> Iterator[str]:
    """The paths of the files (Gradio FileData values) that a snapshot refers to."""
    if isinstance(state, dict):
        path = state.get("path")
        if isinstance(path, str) and isinstance(state.get("meta"), dict) \
                and state["meta"].get("_type") == "gradio.FileData":
            yield path
        for value in state.values():
            yield from snapshot_files(value)
    elif isinstance(state, list):
        for value in state:
            yield from snapshot_files(value)


def is_usable(link_dir: Path, ttl: float, now: float | None = None) -> bool:
    """Whether a snapshot is younger than ``ttl`` and every file it shows from the upload folder
    (the parent of the links' folder, swept by ``delete_cache``) still exists."""
    state_file = link_dir / STATE_FILE
    try:
        age = (time.time() if now is None else now) - state_file.stat().st_mtime
        if age > ttl:
            return False
        state = json.loads(state_file.read_bytes())
    except (OSError, ValueError):
        return False
    uploads = os.path.join(os.path.abspath(link_dir.parent.parent), "")
    return all(os.path.isfile(path) for path in snapshot_files(state)
               if os.path.abspath(path).startswith(uploads))


def prune(directory: Path, ttl: float, max_links: int, now: float | None = None) -> int:
    """Delete the snapshots older than ``ttl`` seconds and all but the newest ``max_links``.
    Returns how many were deleted. Cheap: one stat per link, no file is read."""
    now = time.time() if now is None else now
    links = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        try:
            links.append((os.stat(os.path.join(entry.path, STATE_FILE)).st_mtime, entry.path))
        except OSError:
            links.append((0.0, entry.path))  # a half-written or foreign entry: expired
    links.sort(reverse=True)
    doomed = [path for i, (mtime, path) in enumerate(links) if i >= max_links or now - mtime > ttl]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return len(doomed)


class DeepLinkLimits:
    """Bounded size, number and lifetime for the snapshots behind Gradio's deep links."""

    def __init__(self, app: ASGIApp, directory: str | Path, ttl: float,
                 max_links: int = MAX_LINKS, max_bytes: int = MAX_LINK_BYTES):
        self.app = app
        self.directory = Path(directory)
        self.ttl, self.max_links, self.max_bytes = ttl, max_links, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "").rstrip("/")
        if path == CREATE_PATH:
            prune(self.directory, self.ttl, self.max_links - 1)  # room for the one being made
            await self._create(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        for name in query.get("deep_link", [])[:1]:
            link_dir = self.directory / name
            # only a plain name can be a link (gradio refuses the rest itself)
            if name.replace("-", "").replace("_", "").isalnum() and link_dir.is_dir() \
                    and not is_usable(link_dir, self.ttl):
                shutil.rmtree(link_dir, ignore_errors=True)
        await self.app(scope, receive, send)

    async def _create(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let gradio write the snapshot, then check its size before the link is answered."""
        start: Message | None = None
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            return
        try:
            name = json.loads(bytes(body)) if start["status"] == 200 else ""
        except ValueError:
            name = ""
        if isinstance(name, str) and name:
            link_dir = self.directory / name
            try:
                size = (link_dir / STATE_FILE).stat().st_size
            except OSError:
                size = 0
            if size > self.max_bytes:
                shutil.rmtree(link_dir, ignore_errors=True)
                await self._refuse(send, size)
                return
        await send(start)
        await send({"type": "http.response.body", "body": bytes(body)})

    async def _refuse(self, send: Send, size: int) -> None:
        detail = (f"This page holds too much to share as a link ({size / 2**20:.1f} MB; "
                  f"{self.max_bytes / 2**20:g} MB at most).")
        payload = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
