"""A small, generic kit for attacking LedgerLink as a misbehaving vendor would.

* :class:`HostileProxy`: a localhost HTTP proxy in front of any emulator (or nothing) that may rewrite
  each request's path/query and each answer. ``proxy.url_for(emulator_url)`` gives the URL to put in a
  connection's host.
* :func:`echo_request`: an answer rewriter that sends back everything the client sent (method, URL,
  headers, body) in the answer's body, in JSON and as the raw text, with the status of your choice.
* :func:`assert_no_secret`: fails when any registered secret (or any of its encoded forms) appears in
  the given texts or nested values (logs, trigger events, XCom, rendered fields, exceptions).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_ledgerlink.core.redaction import encoded_forms, known_secrets


@dataclass
class Seen:
    """One request as the proxy received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


RewritePath = Callable[[str], str]
RewriteAnswer = Callable[[Seen, Answer], Answer]


@dataclass
class HostileProxy:
    upstream: str | None = None
    rewrite_path: RewritePath | None = None
    rewrite_answer: RewriteAnswer | None = None
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self) -> HostileProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                proxy.seen.append(seen)
                answer = Answer(404, {"Content-Type": "text/plain"}, b"no upstream")
                if proxy.upstream:
                    path = proxy.rewrite_path(seen.path) if proxy.rewrite_path else seen.path
                    headers = {
                        k: v for k, v in seen.headers.items() if k.lower() not in ("host", "content-length")
                    }
                    upstream = httpx.request(
                        seen.method, proxy.upstream + path, headers=headers, content=seen.body, timeout=60
                    )
                    answer = Answer(
                        upstream.status_code,
                        {
                            k: v
                            for k, v in upstream.headers.items()
                            if k.lower()
                            not in ("content-length", "transfer-encoding", "content-encoding", "connection")
                        },
                        upstream.content,
                    )
                if proxy.rewrite_answer:
                    answer = proxy.rewrite_answer(seen, answer)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def url_for(self, emulator_url: str) -> str:
        """``emulator_url`` with its origin replaced by the proxy's (the path is kept)."""
        parts = urlsplit(emulator_url)
        if self.upstream is None:
            self.upstream = f"{parts.scheme}://{parts.netloc}"
        return self.url + parts.path


def echo_request(status: int = 500, content_type: str = "application/json") -> RewriteAnswer:
    """An answer rewriter that echoes the request back: every header, the URL and the body."""

    def rewrite(seen: Seen, _answer: Answer) -> Answer:
        text = seen.body.decode("utf-8", "replace")
        echoed = {
            "message": f"cannot handle {seen.method} {seen.path} with headers {seen.headers!r}: {text}",
            "request": {"method": seen.method, "url": seen.path, "headers": seen.headers, "body": text},
            "raw": repr(seen.body),
        }
        return Answer(status, {"Content-Type": content_type}, json.dumps(echoed).encode())

    return rewrite


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, BaseException):
        current: BaseException | None = value
        while current is not None:
            yield repr(current)
            yield str(current)
            current = current.__cause__ or current.__context__
    elif value is not None:
        yield repr(value)


def assert_no_secret(*places: Any, secrets: Iterable[str] | None = None) -> None:
    """Fail when a secret, in any form :func:`encoded_forms` knows, appears in ``places``."""
    values = [s for s in (secrets if secrets is not None else known_secrets()) if s]
    assert values, "no secrets registered: the leak check would prove nothing"
    forms = {form: secret for secret in values for form in encoded_forms(secret) if len(form) >= 6}
    for text in (t for place in places for t in _texts(place)):
        for form in forms:
            assert form not in text, f"a secret leaked (as {form[:3]}…): {text[:200]}"
