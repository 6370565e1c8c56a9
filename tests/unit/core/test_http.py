"""The shared HTTP client: what is retried, what never is, and what a write may do after a failure.

Every test talks to an ``httpx.MockTransport``; nothing leaves the process. Waits are observed by
replacing ``time.sleep`` (which tenacity sleeps with), never by measuring wall-clock time.
"""

from __future__ import annotations

import email.utils
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.core import http as http_module
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    TransportError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import AsyncHttpClient, HttpClient, RetryPolicy
from airflow_provider_ledgerlink.core.redaction import register_secret

BASE_URL = "http://acme.test"
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.01)

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A fake vendor that answers each request with the next item of a script.

    An item is a status code, an ``httpx.Response``, a function making one, or an exception class
    from httpx to raise; the last item repeats once the script runs out. ``calls`` counts the
    requests that reached it.
    """

    def __init__(self, *steps: int | httpx.Response | Callable[[], httpx.Response] | type[Exception]) -> None:
        self.steps = list(steps)
        self.calls = 0
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        self.requests.append(request)
        if isinstance(step, type) and issubclass(step, Exception):
            raise step("simulated network failure", request=request)
        if isinstance(step, httpx.Response):
            return step
        if callable(step):
            return step()
        return httpx.Response(step, json={"ok": step < 400})


def corrupt_gzip_body() -> httpx.Response:
    """A 200 whose gzip body cannot be decoded (a truncated or mangled answer)."""
    return httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"\x1f\x8b\x08\x00mangled body")
    )


def make_client(handler: Handler, retry: RetryPolicy = FAST, **kwargs: Any) -> HttpClient:
    return HttpClient(
        vendor="Acme", base_url=BASE_URL, retry=retry, transport=httpx.MockTransport(handler), **kwargs
    )


def make_async_client(handler: Handler, retry: RetryPolicy = FAST) -> AsyncHttpClient:
    return AsyncHttpClient(
        vendor="Acme", base_url=BASE_URL, retry=retry, transport=httpx.MockTransport(handler)
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the client asked for, in order; nothing actually sleeps."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def unique_secret() -> str:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    register_secret(secret, airflow_mask=False)
    return secret


# ------------------------------------------------------------------------------------------------
# Success and the transient faults that are retried
# ------------------------------------------------------------------------------------------------
def test_a_successful_call_returns_the_response_after_one_attempt() -> None:
    vendor = Script(200)
    with make_client(vendor) as client:
        response = client.request("GET", "/things", operation="list things")

    assert response.json() == {"ok": True}
    assert vendor.calls == 1
    assert client.requests == 1
    assert client.retries == 0


def test_requests_go_to_the_base_url() -> None:
    vendor = Script(200)
    with make_client(vendor) as client:
        client.request("GET", "/things?page=2", operation="list things")

    assert str(vendor.requests[0].url) == "http://acme.test/things?page=2"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_a_transient_status_is_retried_until_success(status: int, sleeps: list[float]) -> None:
    vendor = Script(status, status, 200)
    with make_client(vendor) as client:
        response = client.request("GET", "/things", operation="list things")

    assert response.status_code == 200
    assert vendor.calls == 3
    assert client.retries == 2
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.RemoteProtocolError]
)
def test_a_network_failure_on_a_read_is_retried_until_success(
    failure: type[Exception], sleeps: list[float]
) -> None:
    vendor = Script(failure, 200)
    with make_client(vendor) as client:
        response = client.request("GET", "/things", operation="list things")

    assert response.status_code == 200
    assert vendor.calls == 2


def test_a_corrupt_body_on_a_read_is_retried_until_success(sleeps: list[float]) -> None:
    vendor = Script(corrupt_gzip_body, 200)
    with make_client(vendor) as client:
        response = client.request("GET", "/things", operation="list things")

    assert response.status_code == 200
    assert vendor.calls == 2


def test_a_corrupt_body_that_persists_raises_transport_error_naming_the_vendor(sleeps: list[float]) -> None:
    vendor = Script(corrupt_gzip_body)
    with make_client(vendor) as client, pytest.raises(TransportError) as caught:
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == FAST.max_attempts
    assert str(caught.value).startswith("Acme list things failed: DecodingError")


def test_backoff_grows_between_attempts_and_stays_under_the_maximum(sleeps: list[float]) -> None:
    policy = RetryPolicy(max_attempts=6, initial_backoff=1.0, max_backoff=4.0)
    with make_client(Script(500), retry=policy) as client, pytest.raises(VendorError):
        client.request("GET", "/things", operation="list things")

    # "equal jitter": each wait lies between half and all of min(max_backoff, initial * 2**n)
    for n, wait in enumerate(sleeps):
        ceiling = min(4.0, 1.0 * 2**n)
        assert ceiling / 2 <= wait <= ceiling


# ------------------------------------------------------------------------------------------------
# Retry-After
# ------------------------------------------------------------------------------------------------
def test_retry_after_in_seconds_is_the_wait(sleeps: list[float]) -> None:
    vendor = Script(httpx.Response(429, headers={"Retry-After": "7"}), 200)
    with make_client(vendor) as client:
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == 2
    assert sleeps == [pytest.approx(7.0, abs=0.01)]


def test_retry_after_as_an_http_date_is_the_wait(sleeps: list[float]) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=60)
    header = email.utils.format_datetime(when, usegmt=True)
    vendor = Script(httpx.Response(503, headers={"Retry-After": header}), 200)
    with make_client(vendor) as client:
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == 2
    assert len(sleeps) == 1
    assert 55.0 <= sleeps[0] <= 61.0  # the header has whole seconds


@pytest.fixture
def local_time_in_tokyo() -> Iterator[None]:
    """Run with the process's local time zone nine hours ahead of UTC."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.mark.usefixtures("local_time_in_tokyo")
def test_retry_after_as_an_asctime_date_is_read_as_gmt_whatever_the_local_zone(sleeps: list[float]) -> None:
    # The obsolete asctime form ("Sun Nov  6 08:49:37 1994") is GMT too, though it names no zone.
    when = datetime.now(timezone.utc) + timedelta(seconds=60)
    header = when.strftime("%a %b %d %H:%M:%S %Y")
    vendor = Script(httpx.Response(503, headers={"Retry-After": header}), 200)
    with make_client(vendor) as client:
        client.request("GET", "/things", operation="list things")

    assert 55.0 <= sleeps[0] <= 61.0


def test_retry_after_that_is_not_a_number_or_date_falls_back_to_backoff(sleeps: list[float]) -> None:
    vendor = Script(httpx.Response(429, headers={"Retry-After": "soon"}), 200)
    with make_client(vendor) as client:
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == 2
    assert sleeps[0] <= FAST.initial_backoff


def test_retry_after_in_the_past_means_no_wait(sleeps: list[float]) -> None:
    header = "Wed, 01 Jan 2020 00:00:00 GMT"
    vendor = Script(httpx.Response(503, headers={"Retry-After": header}), 200)
    with make_client(vendor) as client:
        client.request("GET", "/things", operation="list things")

    assert sleeps == [pytest.approx(0.0, abs=0.01)]


def test_a_retry_after_longer_than_max_retry_after_fails_at_once(sleeps: list[float]) -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_retry_after=60.0)
    vendor = Script(httpx.Response(503, headers={"Retry-After": "3600"}), 200)
    with make_client(vendor, retry=policy) as client, pytest.raises(ServiceUnavailableError) as caught:
        client.request("GET", "/things", operation="list things")

    assert caught.value.retry_after == pytest.approx(3600.0)
    assert vendor.calls == 1
    assert sleeps == []


# ------------------------------------------------------------------------------------------------
# What is never retried
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (422, ValidationError),
    ],
)
def test_a_client_error_is_never_retried(status: int, error_class: type[Exception]) -> None:
    vendor = Script(status, 200)
    with make_client(vendor) as client, pytest.raises(error_class) as caught:
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == 1
    assert caught.value.http_status == status
    assert client.retries == 0


def test_the_error_names_vendor_operation_and_status() -> None:
    vendor = Script(httpx.Response(404, text="no such thing"))
    with make_client(vendor) as client, pytest.raises(NotFoundError) as caught:
        client.request("GET", "/things/42", operation="get thing 42")

    message = str(caught.value)
    assert message.startswith("Acme get thing 42 failed: no such thing")
    assert "(HTTP 404)" in message


# ------------------------------------------------------------------------------------------------
# Bounds: attempts and total time
# ------------------------------------------------------------------------------------------------
def test_attempts_are_bounded_by_max_attempts(sleeps: list[float]) -> None:
    vendor = Script(503)
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)
    with make_client(vendor, retry=policy) as client, pytest.raises(ServiceUnavailableError):
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == 3
    assert len(sleeps) == 2


def test_a_policy_of_one_attempt_never_retries() -> None:
    vendor = Script(500, 200)
    with make_client(vendor, retry=http_module.NO_RETRY) as client, pytest.raises(VendorError):
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == 1


def test_total_time_is_bounded_by_max_elapsed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake clock that only moves when the client sleeps.
    clock = SimpleNamespace(now=1000.0)

    def fake_sleep(seconds: float) -> None:
        clock.now += seconds

    monkeypatch.setattr(time, "sleep", fake_sleep)
    monkeypatch.setattr(http_module, "time", SimpleNamespace(monotonic=lambda: clock.now, time=time.time))
    vendor = Script(httpx.Response(503, headers={"Retry-After": "4"}))
    policy = RetryPolicy(max_attempts=100, max_elapsed=10.0, initial_backoff=0.001)

    with make_client(vendor, retry=policy) as client, pytest.raises(ServiceUnavailableError):
        client.request("GET", "/things", operation="list things")

    # Tries at 0 s, 4 s and 8 s; a fourth at 12 s would pass the 10 s budget, so it gives up.
    assert vendor.calls == 3
    assert clock.now - 1000.0 <= 10.0


# ------------------------------------------------------------------------------------------------
# Writes: never sent twice blindly
# ------------------------------------------------------------------------------------------------
def test_a_post_answered_with_500_is_ambiguous_and_not_retried() -> None:
    vendor = Script(500, 201)
    with make_client(vendor) as client, pytest.raises(AmbiguousWriteError) as caught:
        client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert vendor.calls == 1
    assert caught.value.retryable is False
    assert "may or may not have been applied" in str(caught.value)


def test_a_post_500_the_vendor_mapper_knows_as_a_refusal_is_final() -> None:
    def mapper(response: httpx.Response, operation: str) -> LedgerLinkError:
        return VendorError("Acme", operation, "field X is required", status_code=500, refused=True)

    vendor = Script(500, 201)
    with make_client(vendor, error_mapper=mapper) as client, pytest.raises(VendorError) as caught:
        client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert vendor.calls == 1
    assert caught.value.retryable is False


def documented_refusal(response: httpx.Response, operation: str) -> LedgerLinkError:
    """A vendor whose documents say a 429/503 was not processed."""
    error = http_module.default_error("Acme", response, operation)
    assert isinstance(error, RateLimitedError)
    error.refused = True
    return error


@pytest.mark.parametrize("status", [429, 503])
def test_a_post_refused_with_429_or_503_as_the_vendor_documents_is_retried(
    status: int, sleeps: list[float]
) -> None:
    vendor = Script(status, 201)
    with make_client(vendor, error_mapper=documented_refusal) as client:
        response = client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert response.status_code == 201
    assert vendor.calls == 2


@pytest.mark.parametrize("status", [429, 503])
def test_a_post_answered_429_or_503_without_a_documented_refusal_is_ambiguous(
    status: int, sleeps: list[float]
) -> None:
    vendor = Script(status, 201)
    with make_client(vendor) as client, pytest.raises(AmbiguousWriteError) as caught:
        client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert vendor.calls == 1
    assert f"HTTP {status}" in str(caught.value) and "Check at the vendor" in str(caught.value)


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.WriteError])
def test_a_post_whose_answer_was_lost_raises_ambiguous_write_after_one_attempt(
    failure: type[Exception],
) -> None:
    vendor = Script(failure, 201)
    with make_client(vendor) as client, pytest.raises(AmbiguousWriteError) as caught:
        client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert vendor.calls == 1
    assert "may or may not have been applied" in str(caught.value)
    assert "Check at the vendor" in str(caught.value)


@pytest.mark.parametrize("status", [502, 504])
def test_a_post_answered_by_a_gateway_error_raises_ambiguous_write(status: int) -> None:
    vendor = Script(status, 201)
    with make_client(vendor) as client, pytest.raises(AmbiguousWriteError) as caught:
        client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert vendor.calls == 1
    assert f"HTTP {status}" in str(caught.value)


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout])
def test_a_post_that_never_connected_is_retried(failure: type[Exception], sleeps: list[float]) -> None:
    vendor = Script(failure, 201)
    with make_client(vendor) as client:
        response = client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert response.status_code == 201
    assert vendor.calls == 2


def test_a_post_marked_idempotent_is_retried_like_a_read(sleeps: list[float]) -> None:
    vendor = Script(httpx.ReadTimeout, 500, 201)
    with make_client(vendor) as client:
        response = client.request("POST", "/otp-request", operation="request otp", json={}, idempotent=True)

    assert response.status_code == 201
    assert vendor.calls == 3


def test_a_post_whose_answer_arrived_corrupt_raises_ambiguous_write() -> None:
    vendor = Script(corrupt_gzip_body, 201)
    with make_client(vendor) as client, pytest.raises(AmbiguousWriteError):
        client.request("POST", "/invoices", operation="create invoice", json={"n": 1})

    assert vendor.calls == 1


def test_a_put_is_idempotent_by_default(sleeps: list[float]) -> None:
    vendor = Script(httpx.ReadTimeout, 200)
    with make_client(vendor) as client:
        client.request("PUT", "/invoices/1", operation="update invoice", json={"n": 1})

    assert vendor.calls == 2


def test_a_get_marked_not_idempotent_is_treated_as_a_write() -> None:
    vendor = Script(httpx.ReadTimeout, 200)
    with make_client(vendor) as client, pytest.raises(AmbiguousWriteError):
        client.request("GET", "/side-effect", operation="trigger", idempotent=False)

    assert vendor.calls == 1


def test_a_read_that_keeps_failing_on_the_network_raises_transport_error(sleeps: list[float]) -> None:
    vendor = Script(httpx.ConnectError)
    with make_client(vendor) as client, pytest.raises(TransportError) as caught:
        client.request("GET", "/things", operation="list things")

    assert vendor.calls == FAST.max_attempts
    assert "ConnectError" in str(caught.value)
    assert "The vendor could not be reached" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# Secrets stay out of errors
# ------------------------------------------------------------------------------------------------
def test_a_registered_secret_echoed_by_the_vendor_is_scrubbed_from_the_error() -> None:
    secret = unique_secret()
    vendor = Script(httpx.Response(400, text=f"bad value {secret} in field X"))
    with make_client(vendor) as client, pytest.raises(ValidationError) as caught:
        client.request("GET", "/things", operation="list things")

    assert secret not in str(caught.value)
    assert "bad value *** in field X" in str(caught.value)


def test_a_token_in_the_query_string_is_not_in_a_transport_error(sleeps: list[float]) -> None:
    vendor = Script(httpx.ConnectError)
    with make_client(vendor) as client, pytest.raises(TransportError) as caught:
        client.request("GET", "/api?licname=shop&token=abcdef123456&get-products", operation="products")

    message = str(caught.value)
    assert "abcdef123456" not in message
    assert "token=***" in message
    assert "&get-products" in message


def test_a_token_in_the_query_string_is_not_in_an_ambiguous_write_error() -> None:
    vendor = Script(502)
    with make_client(vendor) as client, pytest.raises(AmbiguousWriteError) as caught:
        client.request("POST", "/api?licname=shop&token=abcdef123456&set-order", operation="order")

    assert "abcdef123456" not in str(caught.value)
    assert "token=***" in str(caught.value)


def test_a_registered_secret_in_the_path_is_not_in_a_transport_error(sleeps: list[float]) -> None:
    secret = unique_secret()
    vendor = Script(httpx.ConnectError)
    with make_client(vendor) as client, pytest.raises(TransportError) as caught:
        client.request("GET", f"/sessions/{secret}", operation="whoami")

    assert secret not in str(caught.value)


# ------------------------------------------------------------------------------------------------
# The async client decides exactly like the sync one
# ------------------------------------------------------------------------------------------------
async def test_async_a_successful_call_returns_the_response() -> None:
    vendor = Script(200)
    async with make_async_client(vendor) as client:
        response = await client.request("GET", "/things", operation="list things")

    assert response.json() == {"ok": True}
    assert vendor.calls == 1


@pytest.mark.parametrize("step", [500, 503, 429, httpx.ConnectError, httpx.ReadTimeout])
async def test_async_a_transient_fault_is_retried_until_success(step: int | type[Exception]) -> None:
    vendor = Script(step, step, 200)
    async with make_async_client(vendor) as client:
        response = await client.request("GET", "/things", operation="list things")

    assert response.status_code == 200
    assert vendor.calls == 3


@pytest.mark.parametrize(("status", "error_class"), [(401, AuthenticationError), (404, NotFoundError)])
async def test_async_a_client_error_is_never_retried(status: int, error_class: type[Exception]) -> None:
    vendor = Script(status, 200)
    async with make_async_client(vendor) as client:
        with pytest.raises(error_class):
            await client.request("GET", "/things", operation="list things")

    assert vendor.calls == 1


async def test_async_attempts_are_bounded_by_max_attempts() -> None:
    vendor = Script(500)
    async with make_async_client(vendor) as client:
        with pytest.raises(VendorError):
            await client.request("GET", "/things", operation="list things")

    assert vendor.calls == FAST.max_attempts


async def test_async_a_retry_after_longer_than_max_retry_after_fails_at_once() -> None:
    vendor = Script(httpx.Response(429, headers={"Retry-After": "3600"}), 200)
    async with make_async_client(vendor) as client:
        with pytest.raises(RateLimitedError):
            await client.request("GET", "/things", operation="list things")

    assert vendor.calls == 1


async def test_async_a_post_whose_answer_was_lost_raises_ambiguous_write() -> None:
    vendor = Script(httpx.ReadTimeout, 201)
    async with make_async_client(vendor) as client:
        with pytest.raises(AmbiguousWriteError):
            await client.request("POST", "/invoices", operation="create invoice", json={})

    assert vendor.calls == 1


async def test_async_a_post_answered_with_500_is_ambiguous_and_not_retried() -> None:
    vendor = Script(500, 201)
    async with make_async_client(vendor) as client:
        with pytest.raises(AmbiguousWriteError):
            await client.request("POST", "/invoices", operation="create invoice", json={})

    assert vendor.calls == 1


async def test_async_a_post_that_never_connected_is_retried() -> None:
    vendor = Script(httpx.ConnectError, 201)
    async with make_async_client(vendor) as client:
        response = await client.request("POST", "/invoices", operation="create invoice", json={})

    assert response.status_code == 201
    assert vendor.calls == 2


async def test_async_a_token_in_the_query_string_is_not_in_the_error() -> None:
    vendor = Script(httpx.ConnectError)
    async with make_async_client(vendor) as client:
        with pytest.raises(TransportError) as caught:
            await client.request("GET", "/api?licname=shop&token=abcdef123456", operation="products")

    assert "abcdef123456" not in str(caught.value)
