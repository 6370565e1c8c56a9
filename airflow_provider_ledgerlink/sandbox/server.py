"""The vendor-neutral part of the sandbox: an HTTP/1.1 server that hosts emulators under path prefixes.

Standard library only. One :class:`SandboxServer` serves every emulator, each mounted under its own
prefix (``/afas``, ``/tripletex``, ...), plus the control endpoints under ``/_sandbox/``:

==========================  =========================================================================
``GET /_sandbox/health``    ``{"status": "ok", "vendors": [...]}``
``GET /_sandbox/stats``     per vendor: requests, in-flight high-water mark, counts per path/status
``POST /_sandbox/reset``    clear stats and faults (``?state=true``: also the emulators' runtime state)
``GET /_sandbox/faults``    the active fault rules with their match/hit counters
``POST /_sandbox/faults``   replace the fault rules (a JSON list of rules, or ``{"rules": [...]}``)
``POST /_sandbox/latency``  ``{"latency_ms": N}``: change the latency added to every vendor request
``/_sandbox/<vendor>/...``  vendor-specific helpers, e.g. reading the AFAS one-time-password mailbox
==========================  =========================================================================

Connections are kept alive (HTTP/1.1) and every connection gets a daemon thread, so a client with
several requests in flight is served concurrently.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from airflow_provider_ledgerlink.sandbox.faults import FaultPlan, FaultRule

__all__ = ["ANY_PATH", "Emulator", "Request", "Response", "Router", "SandboxServer", "Stats"]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


# --------------------------------------------------------------------------------------------------
# Request / Response
# --------------------------------------------------------------------------------------------------
@dataclass
class Request:
    """One HTTP request as an emulator sees it.

    ``path`` is the full, percent-decoded path; ``subpath`` is what follows the emulator's prefix.
    ``query_string`` is the raw query exactly as sent on the wire (without the ``?``).
    """

    method: str
    path: str
    query_string: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    subpath: str = ""

    @cached_property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    @cached_property
    def _query_lower(self) -> dict[str, list[str]]:
        merged: dict[str, list[str]] = {}
        for key, values in self.query.items():
            merged.setdefault(key.lower(), []).extend(values)
        return merged

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter, matching its name case-insensitively."""
        values = self._query_lower.get(name.lower())
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def target(self) -> str:
        """The vendor-relative path plus query string, as fault rules see it."""
        return f"{self.subpath}?{self.query_string}" if self.query_string else self.subpath

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` if it is not JSON."""
        return json.loads(self.body.decode("utf-8-sig") if self.body else "")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, body, JSON_CONTENT_TYPE, dict(headers or {}))

    @classmethod
    def raw_json(cls, text: str, status: int = 200) -> Response:
        """A response whose JSON text was already produced (e.g. by a row encoder)."""
        return cls(status, text.encode(), JSON_CONTENT_TYPE)

    @classmethod
    def empty(cls, status: int, content_type: str | None = None) -> Response:
        return cls(status, b"", content_type)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(status, text.encode(), content_type)


# --------------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------------
Handler = Callable[..., Response]

ANY_PATH = r"[\s\S]*"
"""A route pattern that matches every path (newlines included), for an emulator's catch-all route."""


class Router:
    """Maps ``(method, path regex)`` to handlers. Patterns match the whole path, case-insensitively
    unless ``case_sensitive``, and their named groups become keyword arguments of the handler.

    ``"*"`` as the method takes every method. ``query``, a regex matched against the whole raw query
    string (case-insensitively), is for APIs addressed by query string (CASHWeb's ``/?api/3.0``): a
    route with one matches only when both match, and its named groups are handler arguments too."""

    def __init__(self, *, case_sensitive: bool = False) -> None:
        self._routes: list[tuple[str, re.Pattern[str], re.Pattern[str] | None, Handler]] = []
        self._flags = 0 if case_sensitive else re.IGNORECASE

    def add(
        self, methods: str | Iterable[str], pattern: str, handler: Handler, *, query: str | None = None
    ) -> None:
        names = [methods] if isinstance(methods, str) else list(methods)
        compiled = re.compile(pattern, self._flags)
        compiled_query = None if query is None else re.compile(query, re.IGNORECASE)
        for method in names:
            self._routes.append((method.upper(), compiled, compiled_query, handler))

    def match(
        self, method: str, path: str, query_string: str = ""
    ) -> tuple[Handler | None, dict[str, str], bool]:
        """The handler for ``method path`` and its keyword arguments (``None`` and ``{}`` when no
        route has that method), and whether any route matches the path at all."""
        path_matched = False
        for route_method, pattern, query, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            arguments = match.groupdict()
            if query is not None:
                query_match = query.fullmatch(query_string)
                if query_match is None:
                    continue
                arguments.update(query_match.groupdict())
            path_matched = True
            if route_method in (method, "*"):
                return handler, arguments, True
        return None, {}, path_matched

    def dispatch(self, request: Request, path: str) -> Response | None:
        """Call the handler for ``path``; ``None`` when no route matches the path at all."""
        handler, arguments, path_matched = self.match(request.method, path, request.query_string)
        if handler is not None:
            return handler(request, **arguments)
        if path_matched:
            return Response.empty(405, None)
        return None


class Emulator:
    """Base class of a vendor emulator mounted under ``prefix`` (e.g. ``/afas``).

    ``handle`` gets every request whose path starts with the prefix (``request.subpath`` is the
    rest). ``handle_control`` gets ``/_sandbox/<name>/<path>`` requests, for test helpers that the
    vendor itself does not have. ``reset_state`` forgets what requests changed (inserted records,
    issued tokens); generated data never changes.
    """

    name: str = ""
    prefix: str = ""

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def handle_control(self, request: Request, path: str) -> Response:
        return Response.json({"error": f"unknown sandbox endpoint for {self.name}: {path}"}, 404)

    def reset_state(self) -> None:
        """Forget runtime changes. Subclasses with state override this."""

    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        """Take the row counts this emulator knows from ``scale``; return the keys it used."""
        return []


# --------------------------------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------------------------------
class _VendorStats:
    __slots__ = ("by_path", "in_flight", "max_in_flight", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.by_path: dict[str, dict[str, int]] = {}


class Stats:
    """Request counters per vendor. ``max_in_flight`` is the most requests ever handled at once."""

    def __init__(self, vendors: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._vendors: dict[str, _VendorStats] = {name: _VendorStats() for name in vendors}

    def _get(self, vendor: str) -> _VendorStats:
        stats = self._vendors.get(vendor)
        if stats is None:
            stats = self._vendors[vendor] = _VendorStats()
        return stats

    def begin(self, vendor: str) -> None:
        with self._lock:
            stats = self._get(vendor)
            stats.requests += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)

    def end(self, vendor: str, key: str, outcome: str) -> None:
        with self._lock:
            stats = self._get(vendor)
            stats.in_flight -= 1
            per_status = stats.by_path.setdefault(key, {})
            per_status[outcome] = per_status.get(outcome, 0) + 1

    def reset(self) -> None:
        with self._lock:
            for name in list(self._vendors):
                in_flight = self._vendors[name].in_flight
                self._vendors[name] = _VendorStats()
                self._vendors[name].in_flight = in_flight

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                name: {
                    "requests": stats.requests,
                    "in_flight": stats.in_flight,
                    "max_in_flight": stats.max_in_flight,
                    "by_path": {key: dict(value) for key, value in stats.by_path.items()},
                }
                for name, stats in self._vendors.items()
            }


# --------------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------------
class SandboxServer(ThreadingHTTPServer):
    """Hosts a list of emulators; owns the fault plan, the stats and the global latency."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        emulators: Sequence[Emulator],
        faults: FaultPlan | None = None,
        latency_ms: int = 0,
    ) -> None:
        self.emulators = list(emulators)
        # Longest prefix first, so "/afas2" would never be shadowed by "/afas".
        self._mounts = sorted(self.emulators, key=lambda e: len(e.prefix), reverse=True)
        self.faults = faults if faults is not None else FaultPlan()
        self.latency_ms = latency_ms
        self.stats = Stats(e.name for e in self.emulators)
        super().__init__(address, _SandboxRequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request is normal here (timeouts, fault tests); stay quiet.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)

    def mount_for(self, path: str) -> Emulator | None:
        lowered = path.lower()
        for emulator in self._mounts:
            prefix = emulator.prefix.lower()
            if lowered == prefix or lowered.startswith(prefix + "/"):
                return emulator
        return None

    # -- control endpoints -------------------------------------------------------------------------
    def control(self, request: Request) -> Response:
        path = request.path[len("/_sandbox/") :].strip("/")
        method = request.method
        if path == "health" and method == "GET":
            return Response.json({"status": "ok", "vendors": [e.name for e in self.emulators]})
        if path == "stats" and method == "GET":
            return Response.json(self.stats.snapshot())
        if path == "reset" and method == "POST":
            self.stats.reset()
            self.faults.clear()
            if (request.param("state") or "").lower() in ("1", "true", "yes"):
                for emulator in self.emulators:
                    emulator.reset_state()
            return Response.json({"status": "ok"})
        if path == "faults" and method == "GET":
            return Response.json(self.faults.to_list())
        if path == "faults" and method in ("POST", "PUT"):
            try:
                data = request.json()
                rules = data.get("rules", []) if isinstance(data, dict) else data
                if not isinstance(rules, list):
                    raise ValueError("expected a JSON list of fault rules")
                self.faults.replace(FaultRule.from_dict(rule) for rule in rules)
            except (ValueError, TypeError, re.error) as error:
                return Response.json({"error": str(error)}, 400)
            return Response.json(self.faults.to_list())
        if path == "faults" and method == "DELETE":
            self.faults.clear()
            return Response.json([])
        if path == "latency" and method in ("POST", "PUT"):
            try:
                self.latency_ms = max(0, int(request.json()["latency_ms"]))
            except (ValueError, TypeError, KeyError) as error:
                return Response.json({"error": f"expected {{'latency_ms': N}}: {error}"}, 400)
            return Response.json({"latency_ms": self.latency_ms})
        vendor, _, rest = path.partition("/")
        for emulator in self.emulators:
            if emulator.name == vendor:
                return emulator.handle_control(request, rest)
        return Response.json({"error": f"unknown sandbox endpoint: /_sandbox/{path}"}, 404)


_LINGER_RESET = struct.pack("ii", 1, 0)


class _SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LedgerLinkSandbox/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs would dominate the cost of serving pages; the stats endpoint counts instead."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing ----------------------------------------------------------------------------------
    def _read_request(self) -> Request:
        raw_path, _, query = self.path.partition("?")
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            body = self.rfile.read(length) if length > 0 else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        return Request(self.command, unquote(raw_path), query, headers, body)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _head(self, response: Response, content_length: int) -> bytes:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {formatdate(usegmt=True)}",
        ]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        lines.append(f"Content-Length: {content_length}")
        lines.extend(f"{key}: {value}" for key, value in response.headers.items())
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send(self, response: Response) -> None:
        body = b"" if self.command == "HEAD" else response.body
        self.wfile.write(self._head(response, len(response.body)) + body)

    def _send_truncated(self, response: Response) -> None:
        self.close_connection = True
        self.wfile.write(self._head(response, len(response.body)) + response.body[: len(response.body) // 2])
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reset_connection(self) -> None:
        """Close with RST instead of FIN: the client sees 'connection reset by peer'."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            self.connection.close()

    def _serve(self) -> None:
        server = self.server
        request = self._read_request()
        if request.path.startswith("/_sandbox/"):
            self._send(server.control(request))
            return
        emulator = server.mount_for(request.path)
        if emulator is None:
            self._send(Response.json({"error": f"no emulator is mounted at {request.path}"}, 404))
            return
        request.subpath = request.path[len(emulator.prefix) :] or "/"
        stats = server.stats
        stats.begin(emulator.name)
        recorded = False

        def record(outcome: str) -> None:
            # Called just before the client can see the outcome, so a client that reads the stats
            # right after its response always finds its request counted.
            nonlocal recorded
            if not recorded:
                recorded = True
                stats.end(emulator.name, f"{request.method} {request.subpath}", outcome)

        try:
            self._serve_vendor(emulator, request, record)
        finally:
            record("error")

    def _serve_vendor(self, emulator: Emulator, request: Request, record: Callable[[str], None]) -> None:
        server = self.server
        decision = server.faults.decide(emulator.name, request.method, request.target)
        delay = server.latency_ms + decision.latency_ms
        if delay > 0:
            time.sleep(delay / 1000)
        rule = decision.rule
        if rule is not None and rule.kind == "reset" and rule.when == "before":
            record("reset")
            self._reset_connection()
            return
        if rule is not None and rule.kind == "status" and rule.when == "before":
            response = Response(
                rule.status, rule.response_body(), rule.response_content_type(), dict(rule.headers)
            )
            record(str(rule.status))
            self._send(response)
            return
        try:
            response = emulator.handle(request)
        except Exception:
            # An emulator bug must not look like a network fault to the client under test.
            traceback.print_exc(file=sys.stderr)
            response = Response.json({"error": f"internal error in the {emulator.name} emulator"}, 500)
        if rule is not None and rule.kind == "reset":
            record("reset")
            self._reset_connection()
            return
        if rule is not None and rule.kind == "status":  # when="after": applied, then this answer instead
            response = Response(
                rule.status, rule.response_body(), rule.response_content_type(), dict(rule.headers)
            )
            record(f"{rule.status} after")
            self._send(response)
            return
        if rule is not None and rule.kind == "truncate":
            record("truncated")
            self._send_truncated(response)
            return
        record(str(response.status))
        self._send(response)
