"""Telling "the network is unreachable" apart from other download failures, with the real reason."""

from __future__ import annotations

import socket
import urllib.error

_NETWORK_NAMES = ("ConnectError", "ConnectTimeout", "ProxyError", "ConnectionError", "NetworkError",
                  "ReadTimeout", "Timeout")


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_network_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failure to reach the host: refused, no route,
    DNS, proxy, timeout."""
    for e in _chain(exc):
        if isinstance(e, (ConnectionError, socket.gaierror, TimeoutError)):
            return True
        if isinstance(e, urllib.error.URLError) and isinstance(e.reason, (OSError, str)):
            return True
        if any(name in type(e).__name__ for name in _NETWORK_NAMES):
            return True
    return False


def reason(exc: BaseException) -> str:
    """The innermost cause's message, short (e.g. "[Errno 111] Connection refused")."""
    innermost = exc
    for e in _chain(exc):
        if str(e):
            innermost = e
    if isinstance(innermost, urllib.error.URLError):
        innermost_reason = innermost.reason
        text = str(innermost_reason)
    else:
        text = str(innermost)
    text = text.strip().splitlines()[0] if text.strip() else type(innermost).__name__
    return text[:200]
