"""How the web server faces the network: who may connect, which headers every answer carries, what is never
served as a page, how much a request may send, how fast passwords may be guessed, and whether the port is free
before anything is touched.

- Bound to a loopback address, the Host header must name the loopback too (a web page elsewhere cannot reach
  the app through DNS rebinding).
- Every answer says: no framing by other sites, no MIME sniffing, no referrer to other sites. The guard wraps
  the whole application (outside Gradio's CORS layer and Starlette's error handler), so CORS preflights and
  500 answers carry the headers too.
- Files are served as data, never as pages: an HTML, SVG or XML file reached through Gradio's file route (a
  planted file in outputs/, say) goes out as a download.
- A request body is limited as a whole (Content-Length and the bytes actually streamed): 413 beyond the limit.
  Uploads are accepted only from the app's own origin (a foreign Origin header gets 403).
- Failed logins are throttled per client address: after a few, the client is refused with 429 and Retry-After
  for a window that doubles with each further failure; a successful login resets it.
- Binding beyond the loopback needs --auth USER:PASSWORD (or I2V_AUTH): refused otherwise.
A pure ASGI middleware (not Starlette's BaseHTTPMiddleware), so Gradio's event streams pass untouched.
"""
from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from python_multipart.exceptions import MultipartParseError

from i2v.core.words import render
from i2v.serving_port import (PortHolder, ServingError, bind_address, busy_port_message, port_holder,  # noqa: F401
                              port_in_use)

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-frame-options", b"SAMEORIGIN"),
)
SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)
ACTIVE_CONTENT_TYPES = (b"text/html", b"image/svg", b"text/xml", b"application/xml", b"application/xhtml")
FILE_ROUTE_MARK = "/file="
GUARD_MARK = "i2v.guarded"                # set in the scope by the outer guard; RequireGuard checks it
LOGIN_PATH = "/login"                  # Gradio's login form posts here (also "/login/")
UPLOAD_PATH = "/gradio_api/upload"     # Gradio's upload route (the page and gradio_client both use it)
MIB = 1024 * 1024
BODY_SLACK_BYTES = 64 * 1024           # a multipart form's own framing: a file of exactly the limit still fits
DRAIN_TIMEOUT_S = 10.0                 # after a refusal, read the rest of the body so the client sees the answer
LOGIN_FREE_FAILURES = 3                # failures answered without delay
LOGIN_FIRST_WAIT_S = 1.0               # the window after the first failure beyond those, doubling each time
LOGIN_MAX_WAIT_S = 30.0
LOGIN_FORGET_S = 3600.0                # a client not seen for this long starts afresh
LOGIN_MAX_CLIENTS = 10_000             # bounded memory: the oldest clients are forgotten first


class BodyTooLarge(MultipartParseError):
    """Raised into the application when a request body passes the limit. A MultipartParseError, so Gradio's
    upload parser removes the partial files it wrote before giving up."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """The host as written in a URL: '::1' -> '[::1]'; names and IPv4 addresses unchanged."""
    host = bind_address(host)
    return f"[{host}]" if ":" in host else host


def host_name(header: str) -> str:
    """The host part of a Host header ('[::1]:7860' -> '::1', 'localhost:7860' -> 'localhost')."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """'user:password' -> (user, password); None for none; ServingError for anything else."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ServingError("auth_bad_form")
    return user, password


def check_bind(host: str, auth: tuple[str, str] | None) -> None:
    """Refuse to serve beyond this machine without a password."""
    if not is_loopback(host) and auth is None:
        raise ServingError("serve_needs_password", host=host)


def same_origin(origin: str, headers: dict[bytes, bytes]) -> bool:
    """Whether an Origin header names this app: its host[:port] is the request's Host (or, behind a proxy,
    X-Forwarded-Host). 'null' and anything unparsable are foreign."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    own = {headers.get(b"host", b"").decode("latin-1").strip().lower()}
    own |= {h.strip().lower() for h in headers.get(b"x-forwarded-host", b"").decode("latin-1").split(",")}
    return parts.netloc.lower() in own - {""}


# --- login throttling -----------------------------------------------------------------------------------------
@dataclass
class _LoginRecord:
    failures: int = 0
    blocked_until: float = 0.0
    in_flight: bool = False
    last_seen: float = 0.0


def login_wait_s(failures: int) -> float:
    """The back-off window after this many failures in a row: none for the first few, then doubling to a cap."""
    if failures <= LOGIN_FREE_FAILURES:
        return 0.0
    return min(LOGIN_MAX_WAIT_S, LOGIN_FIRST_WAIT_S * 2 ** (failures - LOGIN_FREE_FAILURES - 1))


class LoginThrottle:
    """Failed logins per client address. `begin` says how long a client must still wait (0: go ahead, and its
    attempt is marked in flight: one password check at a time per client, so parallel guesses don't slip
    through before the first failure is counted); `finish` records the answer's status."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.clients: dict[str, _LoginRecord] = {}

    def begin(self, client: str) -> float:
        now = self.clock()
        record = self.clients.get(client)
        if record is not None and now - record.last_seen > LOGIN_FORGET_S and not record.in_flight:
            record = None
        if record is None:
            self._make_room(now)
            record = self.clients[client] = _LoginRecord()
        record.last_seen = now
        if record.in_flight:
            return 1.0
        if now < record.blocked_until:
            return record.blocked_until - now
        record.in_flight = True
        return 0.0

    def finish(self, client: str, status: int | None) -> None:
        record = self.clients.get(client)
        if record is None:
            return
        record.in_flight = False
        if status == 200:
            if record.failures:
                log.info("login from %s succeeded after %d failed attempts", client, record.failures)
            del self.clients[client]
        elif status in (400, 401, 403):      # Gradio answers a wrong user or password with 400
            record.failures += 1
            wait = login_wait_s(record.failures)
            record.blocked_until = self.clock() + wait
            log.warning("failed login from %s (%d in a row)%s", client, record.failures,
                        f"; further attempts refused for {wait:g} s" if wait else "")

    def _make_room(self, now: float) -> None:
        if len(self.clients) < LOGIN_MAX_CLIENTS:
            return
        for name, record in list(self.clients.items()):
            if now - record.last_seen > LOGIN_FORGET_S and not record.in_flight:
                del self.clients[name]
        while len(self.clients) >= LOGIN_MAX_CLIENTS:   # still full: forget the least recently seen
            del self.clients[min(self.clients, key=lambda name: self.clients[name].last_seen)]


def client_address(scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


# --- the middleware ---------------------------------------------------------------------------------------
class GuardMiddleware:
    """Host check (loopback binds), security headers, files never served as active content, request bodies
    within the limit, uploads from the app's own origin only, failed logins throttled. Installed around the
    whole application by `app_kwargs`' lifespan; it marks each request so `RequireGuard` can tell."""

    def __init__(self, app, check_host: bool, max_body_bytes: int | None = None,
                 throttle: LoginThrottle | None = None):
        self.app, self.check_host = app, check_host
        self.max_body_bytes, self.throttle = max_body_bytes, throttle

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        scope[GUARD_MARK] = True
        headers = dict(scope.get("headers") or [])
        if self.check_host:
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if not is_loopback(host):
                if scope["type"] == "websocket":
                    return await send({"type": "websocket.close", "code": 1008})
                return await _refuse(send, 400, b"Host not allowed: this app only answers to localhost")
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        return await _Exchange(self, scope, receive, send, headers).run()


class _Exchange:
    """One HTTP request through the guard."""

    def __init__(self, guard: GuardMiddleware, scope, receive, send, headers: dict[bytes, bytes]):
        self.guard, self.scope, self.receive, self.send, self.headers = guard, scope, receive, send, headers
        self.path = scope.get("path", "")
        self.file_route = FILE_ROUTE_MARK in self.path or FILE_ROUTE_MARK in scope.get("raw_path", b"").decode(
            "latin-1", "replace")
        self.received = 0
        self.body_done = scope.get("method") in ("GET", "HEAD", "OPTIONS") and b"content-length" not in headers \
            and b"transfer-encoding" not in headers
        self.too_large = False
        self.started = False
        self.status: int | None = None

    async def run(self):
        guard, method, route = self.guard, self.scope.get("method"), self.path.rstrip("/")
        if method == "POST" and route == UPLOAD_PATH:
            origin = self.headers.get(b"origin")
            if origin is not None and not same_origin(origin.decode("latin-1"), self.headers):
                log.warning("upload from another site refused (Origin %s, client %s)",
                            origin.decode("latin-1", "replace")[:200], client_address(self.scope))
                return await self._refuse(403, b"Uploads are accepted only from this app's own page")
        if guard.max_body_bytes is not None:
            length = self.headers.get(b"content-length", b"").strip()
            if length.isdigit() and int(length) > guard.max_body_bytes:
                return await self._refuse(413, self._too_large_text())
        if guard.throttle is not None and method == "POST" and route == LOGIN_PATH:
            client = client_address(self.scope)
            wait = guard.throttle.begin(client)
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                return await self._refuse(429, render("http_too_many_logins", "en", seconds=seconds).encode(),
                                          [(b"retry-after", str(seconds).encode())])
            try:
                return await self._forward()
            finally:
                guard.throttle.finish(client, self.status)
        return await self._forward()

    def _too_large_text(self) -> bytes:
        mib = (self.guard.max_body_bytes - BODY_SLACK_BYTES) / MIB
        return render("http_too_large", "en", mib=f"{mib:g}").encode()

    async def _forward(self):
        try:
            await self.guard.app(self.scope, self._receive, self._send)
        except Exception:
            if not self.too_large:
                raise
        if self.too_large and not self.started:
            await self._refuse(413, self._too_large_text())

    async def _receive(self):
        if self.too_large:
            raise BodyTooLarge("request body over the limit")
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.body_done = not message.get("more_body", False)
            limit = self.guard.max_body_bytes
            if limit is not None and self.received > limit:
                self.too_large = True
                raise BodyTooLarge("request body over the limit")
        elif message["type"] == "http.disconnect":
            self.body_done = True
        return message

    async def _send(self, message):
        if self.too_large and not self.started:
            return                       # the application's answer to a cut-off body: replaced by our 413
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message.get("status")
            message = {**message, "headers": self._secure(message.get("headers", []))}
        await self.send(message)

    def _secure(self, headers) -> list:
        headers = [(k, v) for k, v in headers if k.lower() not in SECURITY_HEADER_NAMES]
        headers += list(SECURITY_HEADERS)
        if self.file_route:
            content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"").lower()
            if content_type.startswith(ACTIVE_CONTENT_TYPES):
                headers = [(k, v) for k, v in headers if k.lower() not in (b"content-type", b"content-disposition")]
                headers += [(b"content-type", b"application/octet-stream"), (b"content-disposition", b"attachment")]
        return headers

    async def _refuse(self, status: int, body: bytes, extra: list | None = None):
        """Answer now. When the client is still sending, the answer goes out first and the rest of the body is
        read and dropped before the answer ends (bounded in time; nothing is stored), so the client gets the
        answer instead of a reset connection."""
        self.status = status
        self.started = True
        if self.received == 0 and b"100-continue" in self.headers.get(b"expect", b"").lower():
            self.body_done = True        # the client waits for our go-ahead before sending: nothing to drain
        await self.send({"type": "http.response.start", "status": status,
                         "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS,
                                     (b"connection", b"close"), *(extra or [])]})
        if self.body_done:
            return await self.send({"type": "http.response.body", "body": body})
        await self.send({"type": "http.response.body", "body": body, "more_body": True})

        async def drain():
            while True:
                message = await self.receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return

        with contextlib.suppress(asyncio.TimeoutError, OSError):
            await asyncio.wait_for(drain(), DRAIN_TIMEOUT_S)
        await self.send({"type": "http.response.body", "body": b""})


async def _refuse(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})



class RequireGuard:
    """Inside the application (Gradio's middleware list): refuses any request that did not pass through the
    outer GuardMiddleware, so if the wrapping ever fails to happen the app fails closed instead of serving
    unguarded."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and not scope.get(GUARD_MARK):
            log.error("a request reached the app without the guard; refused")
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1011})
            return await _refuse(send, 503, b"Server not ready")
        return await self.app(scope, receive, send)


def app_kwargs(host: str, max_body_bytes: int | None = None, login_throttle: bool = False) -> dict:
    """FastAPI arguments for Gradio's app. Gradio adds its CORS and compression layers outside any middleware
    given here, and Starlette's error handler sits outside those, so the guard is put around the whole built
    stack instead, when the server starts (the lifespan runs before the socket accepts connections)."""
    from starlette.middleware import Middleware

    throttle = LoginThrottle() if login_throttle else None

    @contextlib.asynccontextmanager
    async def guard_whole_app(app):
        stack = app.middleware_stack or app.build_middleware_stack()
        if not isinstance(stack, GuardMiddleware):
            app.middleware_stack = GuardMiddleware(stack, check_host=is_loopback(host),
                                                   max_body_bytes=max_body_bytes, throttle=throttle)
        yield

    return {"middleware": [Middleware(RequireGuard)], "lifespan": guard_whole_app}


def body_limit_bytes(max_upload_mib: float) -> int:
    """The largest request body: the upload limit for all files of a request together, plus form framing."""
    return int(max_upload_mib * MIB) + BODY_SLACK_BYTES
