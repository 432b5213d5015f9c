"""How the web server faces the network: who may connect, which headers every answer carries, what is never
served as a page, and whether the port is free before anything is touched.

- Bound to a loopback address, the Host header must name the loopback too (a web page elsewhere cannot reach
  the app through DNS rebinding).
- Every answer says: no framing by other sites, no MIME sniffing, no referrer to other sites.
- Files are served as data, never as pages: an HTML, SVG or XML file reached through Gradio's file route (a
  planted file in outputs/, say) goes out as a download.
- Binding beyond the loopback needs --auth USER:PASSWORD (or I2V_AUTH): refused otherwise.
A pure ASGI middleware (not Starlette's BaseHTTPMiddleware), so Gradio's event streams pass untouched.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from i2v.core.errors import I2VError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-frame-options", b"SAMEORIGIN"),
)
ACTIVE_CONTENT_TYPES = (b"text/html", b"image/svg", b"text/xml", b"application/xml", b"application/xhtml")
FILE_ROUTE_MARK = "/file="


class ServingError(I2VError, ValueError):
    """A serving option that cannot be used; the message says what to do."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
        raise ServingError("--auth must look like USER:PASSWORD (both non-empty)")
    return user, password


def check_bind(host: str, auth: tuple[str, str] | None) -> None:
    """Refuse to serve beyond this machine without a password."""
    if not is_loopback(host) and auth is None:
        raise ServingError(f"refusing to serve on {host} without a password: anyone on the network could use "
                           f"this GPU and read or delete your videos. Add --auth USER:PASSWORD (or set I2V_AUTH), "
                           f"or keep the default --host 127.0.0.1.")


class GuardMiddleware:
    """Host check (loopback binds), security headers, files never served as active content."""

    def __init__(self, app, check_host: bool):
        self.app, self.check_host = app, check_host

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if self.check_host:
            headers = dict(scope.get("headers") or [])
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if not is_loopback(host):
                if scope["type"] == "websocket":
                    return await send({"type": "websocket.close", "code": 1008})
                return await _refuse(send, 400, b"Host not allowed: this app only answers to localhost")
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        file_route = FILE_ROUTE_MARK in scope.get("path", "") or FILE_ROUTE_MARK in scope.get("raw_path", b"").decode(
            "latin-1", "replace")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in
                           {name for name, _ in SECURITY_HEADERS}]
                headers += list(SECURITY_HEADERS)
                if file_route:
                    content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"").lower()
                    if content_type.startswith(ACTIVE_CONTENT_TYPES):
                        headers = [(k, v) for k, v in headers if k.lower() not in (b"content-type",
                                                                                   b"content-disposition")]
                        headers += [(b"content-type", b"application/octet-stream"),
                                    (b"content-disposition", b"attachment")]
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


async def _refuse(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def app_kwargs(host: str) -> dict:
    """FastAPI arguments for Gradio's app: our middleware (the Host check only when bound to the loopback)."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(GuardMiddleware, check_host=is_loopback(host))]}


@dataclass(frozen=True)
class PortHolder:
    pid: int | None
    command: str


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on (host, port): a bind test, no connection made."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def port_holder(port: int) -> PortHolder | None:
    """Who listens on the port (psutil), as far as this user may see; None when nobody or unknown."""
    import psutil

    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return PortHolder(None, "another program (not visible to this user)")
            try:
                command = " ".join(psutil.Process(conn.pid).cmdline()) or psutil.Process(conn.pid).name()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                command = "?"
            return PortHolder(conn.pid, command)
    return None


def busy_port_message(host: str, port: int) -> str:
    holder = port_holder(port)
    who = f"process {holder.pid} ({holder.command[:120]})" if holder and holder.pid else \
        (holder.command if holder else "another program")
    return (f"port {port} on {host} is already in use by {who}. Stop it (`bash start_app.sh stop` if it is this "
            f"app), or choose another port with --port.")
