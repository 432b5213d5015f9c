"""Which clients' event streams ended before Gradio finished them: a client that went away.

Gradio sends every queued event's progress and result down one stream per session (`GET
/gradio_api/queue/data?session_hash=S`). When the client goes away, Gradio marks the session's running events
dead only if it notices the disconnect between two messages; when instead the next message's send fails (ASGI
2.4 servers raise then), the stream just ends and the event runs on. `StreamWatch`, an ASGI middleware, notes a
stream that ended without its final body; `ui/liveness.CallerWatch` reads `lost(session)`. A new stream of the
same session clears the mark.
"""
from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs

STREAM_PATH_END = "/queue/data"

_lost: dict[str, float] = {}           # session -> when its stream ended early (monotonic)
_lock = threading.Lock()


def lost(session: str | None) -> bool:
    """Whether this session's event stream ended before Gradio finished it (and no new one opened since)."""
    with _lock:
        return bool(session) and session in _lost


def _mark(session: str, gone: bool) -> None:
    with _lock:
        if gone:
            _lost[session] = time.monotonic()
        else:
            _lost.pop(session, None)


class StreamWatch:
    """ASGI middleware over Gradio's app: marks a session whose event stream ended without its last body."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").rstrip("/").endswith(STREAM_PATH_END):
            return await self.app(scope, receive, send)
        session = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash") or [""])[0]
        if not session:
            return await self.app(scope, receive, send)
        _mark(session, gone=False)
        finished = False

        async def watched_send(message):
            nonlocal finished
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True

        try:
            await self.app(scope, receive, watched_send)
        finally:
            if not finished:
                _mark(session, gone=True)
