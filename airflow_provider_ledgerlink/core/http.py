"""The one HTTP layer every vendor hook uses: httpx (sync and async) plus a tenacity retry policy.

What it guarantees, for every vendor alike:

* timeouts on every request and connection reuse (one client per hook, a bounded pool);
* transient faults are retried with exponential backoff and jitter, bounded in attempts and in total
  time: connection failures, 5xx answers, 429 and 503 (waiting what ``Retry-After`` or the vendor's
  own ``retry_after`` says);
* 400, 401, 403, 404 and 422 are never retried;
* a non-idempotent write is never sent twice blindly: it is re-sent only when the connection was
  never made, or when the vendor answered 429/503 *and documents* that a request answered so was not
  processed (the error mapper says so with ``RateLimitedError(refused=True)``: AFAS's maintenance
  503, Tripletex's 429). When the answer leaves it open whether the write was applied (a read
  timeout, a reset, a 502/504 from a proxy, a 429/503 the vendor does not document as "not
  processed", any other 5xx that the vendor's error mapper does not recognise as a refusal),
  :class:`AmbiguousWriteError` is raised so the caller can check before sending again (see
  :mod:`.once`);
* logged URLs and messages are redacted;
* every attempt, retries and followed redirects included, passes the client's *gates* (:class:`Gate`):
  rate limits, request budgets, login guards and credentials that only the wire copy of a request
  carries all plug in there, the same way for every vendor.

Each vendor supplies an *error mapper*: a function turning a non-2xx response into one of the
errors of :mod:`airflow_provider_ledgerlink.core.errors`, with the vendor's reference.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timezone
from typing import Any, Protocol

import httpx
import tenacity

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    TransportError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.redaction import redact_url

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

ErrorMapper = Callable[[httpx.Response, str], LedgerLinkError]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up. All durations are seconds."""

    max_attempts: int = 6
    max_elapsed: float = 300.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    #: A vendor asking us to wait longer than this (``Retry-After``) gets an error instead of a wait.
    max_retry_after: float = 300.0

    def with_overrides(self, **changes: Any) -> RetryPolicy:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


#: Retry policy that never retries; used where the caller handles waiting itself.
NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 120.0
    write: float = 60.0
    pool: float = 60.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


# ------------------------------------------------------------------------------------------------
# Gates: what every attempt passes on its way out and on its way back
# ------------------------------------------------------------------------------------------------
class Gate(Protocol):
    """One per-request rule of a vendor: a rate limit, a request budget, a login guard, credentials.

    A client applies its gates (``HttpClient(gates=[...])``) in its transport, so *every attempt*
    passes them: the first, each retry of the retry policy, each redirect httpx follows.

    The contract:

    * :meth:`admit` runs before the attempt is sent, gates in list order, each getting what the one
      before returned. It may wait (a rate limit). It may return a *copy* of the request carrying
      what only the wire may see (a token): httpx logs, and hands to the response and our errors,
      the request it built, never the copy. It must not change the request it was given.
    * A gate that raises in :meth:`admit` means nothing was sent: the gates already passed are
      observed with ``None`` (so they release what they took), the gate that raised cleans up after
      itself, and the error leaves the transport unchanged (the retry policy judges it like any
      other: only a retryable :class:`LedgerLinkError` is tried again).
    * :meth:`observe` runs once per attempt for every gate that admitted it, in reverse order, with
      the request that gate's :meth:`admit` returned and the answer (status and headers; the body
      is not read yet), or ``None`` when sending failed (connection error, timeout, cancellation).
      It releases what :meth:`admit` took and reads what the answer says (rate-limit headers). It
      runs on the event loop in the async client, so it must not wait; it should not raise (an
      error there is logged after a failed attempt, raised after an answered one).
    * :meth:`aadmit` is the asyncio twin of :meth:`admit`: same effect, and it never blocks the loop.
    """

    def admit(self, request: httpx.Request) -> httpx.Request: ...

    async def aadmit(self, request: httpx.Request) -> httpx.Request: ...

    def observe(self, request: httpx.Request, response: httpx.Response | None) -> None: ...


def wire_copy(
    request: httpx.Request, *, url: httpx.URL | None = None, headers: httpx.Headers | None = None
) -> httpx.Request:
    """A copy of ``request`` for the wire only (other URL or headers, same body and extensions):
    what a gate returns to add credentials the logged request never carries."""
    return httpx.Request(
        request.method,
        url if url is not None else request.url,
        headers=headers if headers is not None else httpx.Headers(request.headers),
        stream=request.stream,
        extensions=request.extensions,
    )


def _observe(admitted: list[tuple[Gate, httpx.Request]], response: httpx.Response | None) -> None:
    """Tell every gate that admitted the attempt how it ended, last gate first."""
    first: Exception | None = None
    for gate, request in reversed(admitted):
        try:
            gate.observe(request, response)
        except Exception as error:
            if response is None:
                log.error("A request gate failed to observe a failed attempt", exc_info=True)
            first = first or error
    if first is not None and response is not None:
        response.close()
        raise first


class GatedTransport(httpx.BaseTransport):
    """Passes every request through ``gates`` (see :class:`Gate`) around the ``inner`` transport."""

    def __init__(self, gates: Sequence[Gate], inner: httpx.BaseTransport) -> None:
        self.gates = tuple(gates)
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        admitted: list[tuple[Gate, httpx.Request]] = []
        try:
            for gate in self.gates:
                request = gate.admit(request)
                admitted.append((gate, request))
            response = self.inner.handle_request(request)
        except BaseException:
            _observe(admitted, None)
            raise
        _observe(admitted, response)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncGatedTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`GatedTransport` (gates admit with :meth:`Gate.aadmit`)."""

    def __init__(self, gates: Sequence[Gate], inner: httpx.AsyncBaseTransport) -> None:
        self.gates = tuple(gates)
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        admitted: list[tuple[Gate, httpx.Request]] = []
        try:
            for gate in self.gates:
                request = await gate.aadmit(request)
                admitted.append((gate, request))
            response = await self.inner.handle_async_request(request)
        except BaseException:
            _observe(admitted, None)
            raise
        _observe(admitted, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def environment_proxy(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``NO_PROXY``…) names for ``url``, or ``None``.

    httpx reads the environment's proxies only for the transport it builds itself; a client given
    a transport of ours must be given the proxy explicitly.
    """
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def parse_retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; the asctime form carries no zone at all
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


def default_error(
    vendor: str, response: httpx.Response, operation: str, message: str | None = None
) -> LedgerLinkError:
    """The generic mapping of an HTTP status to our errors; vendors refine it."""
    status = response.status_code
    text = message or _short_body(response) or response.reason_phrase or "no details"
    kwargs: dict[str, Any] = {"status_code": status}
    if status == 401:
        return AuthenticationError(vendor, operation, text, **kwargs)
    if status == 403:
        return PermissionDeniedError(
            vendor, operation, text, hint="The credentials are valid but lack the rights for this", **kwargs
        )
    if status == 404:
        return NotFoundError(vendor, operation, text, hint="Check the resource name or id", **kwargs)
    if status in (400, 409, 413, 422):
        return ValidationError(vendor, operation, text, hint="Correct the request data", **kwargs)
    if status == 429:
        return RateLimitedError(
            vendor, operation, text, retry_after=parse_retry_after(response), hint="Slow down", **kwargs
        )
    if status == 503:
        return ServiceUnavailableError(
            vendor, operation, text, retry_after=parse_retry_after(response), hint="Try again later", **kwargs
        )
    return VendorError(vendor, operation, text, retryable=status >= 500, **kwargs)


def _short_body(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except Exception:
        return ""
    text = " ".join(text.split())
    if text.lstrip().startswith("<") and "html" in text[:200].lower():
        return f"the server answered with an HTML page instead of data ({response.reason_phrase})"
    return text[:limit]


class _Attempt:
    """What happened on one try: shared by the sync and async loops so both decide identically."""

    def __init__(
        self,
        client: _BaseClient,
        policy: RetryPolicy,
        method: str,
        url: str,
        operation: str,
        idempotent: bool,
    ) -> None:
        self.client = client
        self.policy = policy
        self.method = method
        self.url = url
        self.operation = operation
        self.idempotent = idempotent
        self.started = time.monotonic()

    def transport_error(self, exc: httpx.TransportError | httpx.DecodingError) -> LedgerLinkError:
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        text = f"{type(exc).__name__}: {exc} while calling {redact_url(self.url)}"
        if self.idempotent or never_sent:
            return TransportError(
                self.client.vendor, self.operation, text, hint="The vendor could not be reached"
            )
        return self._ambiguous(text)

    def response_error(self, response: httpx.Response) -> LedgerLinkError:
        error = self.client.error_mapper(response, self.operation)
        if self.idempotent:
            return error
        if isinstance(error, RateLimitedError):
            if error.refused:
                # The vendor documents that it did not process a request answered so: sent again
                # after the wait it asks for.
                return error
            # A 429/503 the vendor does not document as "not processed": a server may answer it
            # after it applied the write (an overloaded backend, a proxy in front of it).
            return self._ambiguous(
                f"{error.message} (HTTP {response.status_code} from {redact_url(self.url)}; "
                f"{self.client.vendor} does not document that a write answered so was not processed)"
            )
        unexplained = isinstance(error, VendorError) and not error.refused
        if response.status_code in (502, 504) or (response.status_code >= 500 and unexplained):
            # A proxy that lost the answer, or a server error the vendor's mapper does not know as a
            # refusal: the write may have been applied before the failure.
            return self._ambiguous(
                f"{error.message} (HTTP {response.status_code} from {redact_url(self.url)})"
            )
        # A refusal (4xx, or a 5xx the vendor's mapper recognised as a verdict) is final: not retried.
        error.retryable = False
        return error

    def _ambiguous(self, text: str) -> AmbiguousWriteError:
        return AmbiguousWriteError(
            self.client.vendor,
            self.operation,
            f"{text}; the write may or may not have been applied",
            hint="It was not sent again. Check at the vendor whether it exists before retrying",
        )

    def should_retry(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        error = outcome.exception()
        if not isinstance(error, LedgerLinkError) or not error.retryable:
            return False
        policy = self.policy
        if state.attempt_number >= policy.max_attempts:
            return False
        wait = self.wait_for(state)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None and retry_after > policy.max_retry_after:
            return False
        return time.monotonic() - self.started + wait <= policy.max_elapsed

    def wait_for(self, state: tenacity.RetryCallState) -> float:
        policy = self.policy
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(retry_after) + random.uniform(0, 0.1 * policy.initial_backoff)
        backoff = min(policy.max_backoff, policy.initial_backoff * 2 ** (state.attempt_number - 1))
        return random.uniform(backoff / 2, backoff)  # "equal jitter": never zero, never synchronised

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        self.client.retries += 1
        log.warning(
            "%s %s: attempt %d of %d failed (%s); retrying in %.1f s",
            self.client.vendor,
            self.operation,
            state.attempt_number,
            self.policy.max_attempts,
            error,
            state.next_action.sleep if state.next_action else 0.0,
        )

    def tenacity_kwargs(self) -> dict[str, Any]:
        return {
            "retry": self.should_retry,
            "wait": self.wait_for,
            "stop": tenacity.stop_never,  # should_retry enforces attempts and elapsed time
            "before_sleep": self.before_sleep,
            "reraise": True,
        }


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    import ipaddress

    name = host.strip("[]").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_base_url(
    vendor: str, url: str, *, refuse: Callable[[str, str], ConfigurationError] | None = None
) -> str:
    """``url`` when it is a usable vendor address; else a :class:`ConfigurationError` saying the fix.

    Credentials travel in every request, so plain ``http://`` is allowed only to a loopback host (a
    local emulator or a tunnel); anything else must be ``https://``. User-info in the URL is refused:
    it would replace the vendor's own authorization header. ``refuse(problem, fix)`` builds the error
    (a hook passes one that names its connection and the form's label of the field).
    """
    from urllib.parse import urlsplit

    if refuse is None:

        def refuse(problem: str, hint: str) -> ConfigurationError:
            return ConfigurationError(
                vendor, "connecting", problem, hint=f"Edit the connection's Host: {hint}"
            )

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise refuse(
            f"the host {redact_url(url)!r} is not a valid URL ({exc})", "give it as https://name"
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise refuse(f"the host {redact_url(url)!r} is not an http(s) URL", "give it as https://name")
    if "@" in parts.netloc:
        raise refuse(
            f"the host {redact_url(url)!r} carries a user name or password",
            "remove 'user:password@' and put the credentials in the connection's login/password fields",
        )
    if not host:
        raise refuse(f"the host {redact_url(url)!r} names no server", "give it as https://name")
    if parts.scheme.lower() == "http" and not is_loopback(host):
        raise refuse(
            f"plain http to {host} would send the credentials unencrypted",
            "use https:// (plain http is allowed only to localhost/127.0.0.1/::1)",
        )
    return url


class _BaseClient:
    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        error_mapper: ErrorMapper | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 10,
        gates: Sequence[Gate] = (),
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """:param gates: applied to every attempt (see :class:`Gate`), around ``transport``.
        :param transport: what sends the requests (a test's ``httpx.MockTransport``, a custom
            proxy); default: httpx's own, with the environment's proxy settings.
        """
        self.vendor = vendor
        if transport is None:  # a transport given in code (a test's mock, a proxy) is the caller's choice
            check_base_url(vendor, base_url)
        self.base_url = base_url.rstrip("/")
        self.error_mapper: ErrorMapper = error_mapper or (lambda r, op: default_error(vendor, r, op))
        self.retry = retry or RetryPolicy()
        self.gates = tuple(gates)
        self.requests = 0
        self.retries = 0
        self._client_kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            "headers": headers or {},
            "auth": auth,
            "timeout": (timeouts or Timeouts()).to_httpx(),
            "limits": httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            "follow_redirects": False,
            "event_hooks": {"request": [], "response": []},
        }
        if self.gates:
            transport = self._gated(transport)
        if transport is not None:  # e.g. ``httpx.MockTransport`` in tests, or a custom proxy transport
            self._client_kwargs["transport"] = transport

    def _gated(self, inner: object) -> httpx.BaseTransport | httpx.AsyncBaseTransport:
        """The gates around ``inner``; when ``None``, around the transport httpx would have built
        (same pool limits, the environment's proxy for the base URL)."""
        raise NotImplementedError

    def _attempt(
        self, method: str, url: str, operation: str, idempotent: bool | None, retry: RetryPolicy | None
    ) -> _Attempt:
        if idempotent is None:
            idempotent = method.upper() in IDEMPOTENT_METHODS
        return _Attempt(self, retry or self.retry, method.upper(), url, operation, idempotent)

    _http: Any  # httpx.Client or httpx.AsyncClient, set by the subclass

    @property
    def headers(self) -> httpx.Headers:
        return self._http.headers

    def _check(self, attempt: _Attempt, response: httpx.Response) -> httpx.Response:
        self.requests += 1
        if response.is_success:
            _release_body(response)
            return response
        raise attempt.response_error(response)


class HttpClient(_BaseClient):
    """Synchronous client; safe to share between threads (paging runs several at once)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._http = httpx.Client(**self._client_kwargs)

    def _gated(self, inner: object) -> httpx.BaseTransport:
        if inner is None:
            limits = self._client_kwargs["limits"]
            inner = httpx.HTTPTransport(proxy=environment_proxy(self.base_url), limits=limits)
        if not isinstance(inner, httpx.BaseTransport):
            raise TypeError(f"HttpClient needs a synchronous httpx transport, not {type(inner).__name__}")
        return GatedTransport(self.gates, inner)

    def request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request with the retry policy; returns a 2xx response or raises our error.

        :param operation: human words for what this request does, used in errors and logs.
        :param idempotent: override the method's default (POST is not idempotent; PUT is).
        """
        attempt = self._attempt(method, url, operation, idempotent, retry)

        def send() -> httpx.Response:
            try:
                response = self._http.request(method, url, **kwargs)
            except (httpx.TransportError, httpx.DecodingError) as exc:  # a corrupt body counts too
                raise attempt.transport_error(exc) from None
            return self._check(attempt, response)

        return tenacity.Retrying(**attempt.tenacity_kwargs())(send)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncHttpClient(_BaseClient):
    """The asyncio twin of :class:`HttpClient`, for triggers (no blocking call on the event loop)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._http = httpx.AsyncClient(**self._client_kwargs)

    def _gated(self, inner: object) -> httpx.AsyncBaseTransport:
        if inner is None:
            limits = self._client_kwargs["limits"]
            inner = httpx.AsyncHTTPTransport(proxy=environment_proxy(self.base_url), limits=limits)
        if not isinstance(inner, httpx.AsyncBaseTransport):
            raise TypeError(f"AsyncHttpClient needs an asyncio httpx transport, not {type(inner).__name__}")
        return AsyncGatedTransport(self.gates, inner)

    @classmethod
    async def open(
        cls, *, transport: Callable[[], httpx.AsyncBaseTransport] | None = None, **kwargs: Any
    ) -> AsyncHttpClient:
        """The client, built off the event loop: making an httpx transport reads the CA bundle into
        an SSL context, a blocking call a triggerer reports as a blocked loop. ``transport`` is a
        factory, called in that thread too; the gated transport around it is built there as well."""

        def build() -> AsyncHttpClient:
            return cls(**kwargs, **({"transport": transport()} if transport is not None else {}))

        return await asyncio.to_thread(build)

    async def request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        idempotent: bool | None = None,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        attempt = self._attempt(method, url, operation, idempotent, retry)

        async def send() -> httpx.Response:
            try:
                response = await self._http.request(method, url, **kwargs)
            except (httpx.TransportError, httpx.DecodingError) as exc:  # a corrupt body counts too
                raise attempt.transport_error(exc) from None
            return self._check(attempt, response)

        return await tenacity.AsyncRetrying(**attempt.tenacity_kwargs())(send)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncHttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _release_body(response: httpx.Response) -> None:
    """Let a read response's body be freed as soon as the response is dropped.

    httpx 0.28 links a response and its body stream in a reference cycle, so a response is freed
    only by the cyclic garbage collector, which rarely runs a full collection during an extract in
    a worker with Airflow loaded: page bodies piled up (about 40 MB per million AFAS rows). Swapping
    the spent stream for a plain one over the same bytes (what httpx does for requests) breaks the
    cycle. Streamed responses are left alone.
    """
    if response.is_closed and not isinstance(response.stream, httpx.ByteStream):
        response.stream = httpx.ByteStream(response.content)
