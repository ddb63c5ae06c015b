"""Checks of the network addresses a command is given, made before anything starts.

``--dashboard`` must be an address this machine can listen on, and ``--scheduler`` must
answer as a Dask scheduler. Dask's own failures come late (after storage was opened) and
badly: a tcp:// address of a web server makes distributed read the server's reply as a
message length and fail with "Unable to allocate 3.07 EiB"; a server that never answers
holds the command for Dask's 30 s connect timeout. These checks take seconds at most.
"""

from __future__ import annotations

import socket
import struct

from supervisor.errors import UserError

DEFAULT_DASHBOARD = "127.0.0.1:8787"  # loopback: reach it through an ssh tunnel
CONNECT_TIMEOUT = 5.0  # seconds for a TCP connection and for the scheduler's greeting
# The scheduler's handshake is a few hundred bytes; a length beyond this is another protocol.
MAX_GREETING = 1 << 20


def dashboard_problem(address: str, *, bind: bool = True) -> str | None:
    """What is wrong with a dashboard address ([HOST]:PORT), or None. With ``bind``, the
    host must be one this machine can listen on (the port itself may be taken: Dask then
    picks another)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535 or any(c.isspace() for c in host):
        return "expected [HOST]:PORT, e.g. 127.0.0.1:8787 or :0 (any free port)"
    if not bind:
        return None
    host = host.strip("[]")
    try:
        family, kind, proto, _, where = socket.getaddrinfo(
            host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(where)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"cannot listen on {host or 'all interfaces'} ({reason})"
    return None


def on_loopback(address: str) -> str:
    """A dashboard address without a host (``:0``, ``:8787``) on 127.0.0.1: Dask would bind
    it on every interface, where the dashboard (workers, their folders, memory) is open to
    the network; a host given (``0.0.0.0:8787``) is the user's choice."""
    host, sep, port = address.rpartition(":")
    return f"127.0.0.1:{port}" if sep and not host else address


def check_dashboard(address: str, flag: str = "--dashboard", *, bind: bool = True) -> None:
    problem = dashboard_problem(address, bind=bind)
    if problem:
        raise UserError(f"{flag} {address!r}: {problem}")


def check_scheduler(address: str, flag: str = "--scheduler") -> None:
    """A one-line UserError unless ``address`` is reachable and greets like a Dask
    scheduler (tcp://; other protocols are checked for reachability only)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    hint = "expected a scheduler address such as tcp://host:8786"
    try:
        scheme, location = parse_address(address)
        if scheme not in ("tcp", "tls"):
            return  # inproc, ucx, ws...: Dask's own connect reports on them
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise UserError(f"{flag} {address!r}: {hint} ({exc})") from None
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as conn:
            if scheme == "tls":  # its greeting comes after a TLS handshake
                return
            conn.settimeout(CONNECT_TIMEOUT)
            greeting = _read(conn, 8)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UserError(f"{flag} {address!r}: cannot connect ({reason or 'timed out'})") from None
    if len(greeting) < 8 or not 0 < struct.unpack("<Q", greeting)[0] < MAX_GREETING:
        said = "said nothing" if not greeting else f"answered {greeting[:8]!r}"
        raise UserError(
            f"{flag} {address!r}: not a Dask scheduler (it {said} within"
            f" {CONNECT_TIMEOUT:g} s; a Dask scheduler greets at once)"
        )


def _read(conn: socket.socket, count: int) -> bytes:
    """Up to ``count`` bytes; fewer when the peer closes or goes quiet."""
    data = b""
    try:
        while len(data) < count:
            chunk = conn.recv(count - len(data))
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data


def tunnel(link: str) -> str | None:
    """How to open, from another machine, a dashboard that listens on this one's
    loopback: an ssh tunnel to this host on the port it got. 8787 is only the default:
    on a shared login node another user's dashboard often holds it, Dask then takes
    another port, and a tunnel to 8787 showed the other user's campaign as if it were
    this one. None for a dashboard elsewhere (MPI rank 0's node, another host)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(link)
        port = parts.port
    except ValueError:
        return None
    if parts.hostname not in ("127.0.0.1", "localhost", "::1") or not port or " " in link:
        return None
    return (
        f"from another machine: ssh -L {port}:127.0.0.1:{port} {socket.gethostname()},"
        f" then open http://127.0.0.1:{port}{parts.path}"
    )


def dashboard_lines(link: str | None) -> list[str]:
    """What a command that starts a cluster says of its dashboard: the link, and the
    tunnel to it where it listens on this machine's loopback."""
    if not link:
        return []
    hint = tunnel(link)
    return [f"Dask dashboard: {link}", *([f"  {hint}"] if hint else [])]
