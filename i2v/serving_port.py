"""Is the port free before the web server touches anything, and if not, who holds it (for the error message).
Split from i2v.serving (which re-exports these names); ServingError and bind_address live here so that this module
needs nothing from i2v.serving."""
from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from i2v.core.errors import I2VError


class ServingError(I2VError, ValueError):
    """A serving option that cannot be used; the message says what to do."""


def bind_address(host: str) -> str:
    """The address to bind: '[::1]' -> '::1' (brackets belong in URLs, not in bind calls)."""
    host = host.strip()
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@dataclass(frozen=True)
class PortHolder:
    pid: int | None
    command: str


def port_in_use(host: str, port: int) -> bool:
    """True when something already LISTENS on (host, port): a bind probe with SO_REUSEADDR on each address the
    host resolves to (the way the server itself binds), so connections left in TIME-WAIT or FIN-WAIT-2 by a
    stopped instance don't count. ServingError when the address cannot be bound at all (not this machine's,
    no IPv6, an unknown name)."""
    address = bind_address(host)
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServingError("serve_bad_host", host=host, reason=exc.strerror) from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:   # as asyncio binds it: an IPv6 address means IPv6 only
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
                raise ServingError("serve_bad_port", host=host, port=port, reason=exc.strerror) from None
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


def busy_port_message(host: str, port: int, lang: str = "en") -> str:
    from i2v.core.words import render

    holder = port_holder(port)
    who = render("port_holder_process", lang, pid=holder.pid, command=holder.command[:120]) if holder and holder.pid \
        else (holder.command if holder else render("port_holder_other", lang))
    return render("serve_port_busy", lang, port=port, host=host, who=who)
