"""What every live socket of the hub does at its handshake: the origin check, a small buffer."""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import urlsplit

from aiohttp import web

from ops.http.errors import ApiError

#: Kernel send buffer of a live socket (the kernel doubles it for bookkeeping): a client that
#: stops reading is noticed within a few hundred kilobytes, not after megabytes.
SEND_BUFFER = 64 * 1024


def refuse_cross_origin(request: web.Request) -> None:
    """Browsers send cookies on cross-site WebSocket handshakes; only our pages may connect.

    A handshake without ``Origin`` is not a browser's and passes. A reverse proxy in front of
    the hub must pass the ``Host`` header through.

    Raises:
        ApiError: 403 for a page of another origin.
    """
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        raise ApiError(403, "forbidden", "live connections are accepted only from this hub's pages")


def shrink_send_buffer(request: web.Request, size: int = SEND_BUFFER) -> None:
    """Keep the kernel's send buffer of the request's socket small."""
    transport = request.transport
    sock = None if transport is None else transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
