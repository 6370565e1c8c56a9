"""Which 429/503 answers to a write are refusals (sent again after the wait) and which leave it open
whether the write was applied (AmbiguousWriteError, never sent again): core's rule, applied to each
vendor's own error mapper.

Core's rule (``core/http.py``): a 429/503 to a non-idempotent write is a refusal only where the vendor
documents that a request answered so was not processed; the mapper says so with
``RateLimitedError(refused=True)``. Documented:

* AFAS Profit, 503: "Service unavailable; retry at a later time" on every UpdateConnector call
  (``sandbox/specs/afas/Mutaties.json``, ``components.responses.503``, body with ``retry_after``).
* Tripletex, 429: "Once the rate limit is hit, all requests will return HTTP status code 429 for
  the remainder of the current period" (``sandbox/specs/tripletex/openapi-2.72.00.json``, info).

Not documented: Alasco (no 429 or 503 in the FinCon OpenAPI; rate limits "exist", unpublished),
CASH (the seed says nothing about a rate limit; the 100-a-minute figure comes from a third-party
client), CloudPOS (the V1 reference documents its daily limit as errorcode 1003, no HTTP status),
Tripletex 503 and AFAS 429.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.core.errors import AmbiguousWriteError, LedgerLinkError
from airflow_provider_ledgerlink.core.http import HttpClient, RetryPolicy
from airflow_provider_ledgerlink.hooks import afas, alasco, cash, cloudpos, tripletex

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)
AFAS_MAINTENANCE = {
    "error": {"code": "503", "message": "Service temporarily unavailable due to scheduled maintenance."},
    "retry_after": 0,
}
TRIPLETEX_429 = {"status": 429, "code": 429, "message": "For mange forespørsler.", "requestId": "r-1"}
SOAP_FAULT = (
    '<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
    "<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>Too many "
    "requests</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
)


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def post(
    mapper: Callable[[httpx.Response, str], LedgerLinkError], answer: httpx.Response, vendor: str
) -> tuple[int, Any]:
    """POST once through the shared client with ``mapper``: (requests sent, response or error)."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        return httpx.Response(201, json={"ok": True})

    client = HttpClient(
        vendor=vendor,
        base_url="http://vendor.test",
        error_mapper=mapper,
        retry=FAST,
        transport=httpx.MockTransport(handler),
    )
    outcome: Any
    try:
        outcome = client.request("POST", "/write", operation="write", content=b"{}")
    except LedgerLinkError as exc:
        outcome = exc
    finally:
        client.close()
    return calls, outcome


REFUSALS = {
    "afas-503-maintenance": (afas.map_error, httpx.Response(503, json=AFAS_MAINTENANCE), afas.VENDOR),
    "tripletex-429": (tripletex.map_error, httpx.Response(429, json=TRIPLETEX_429), tripletex.VENDOR),
}
AMBIGUOUS = {
    "afas-429": (afas.map_error, httpx.Response(429), afas.VENDOR),
    "tripletex-503": (tripletex.map_error, httpx.Response(503), tripletex.VENDOR),
    "alasco-503": (alasco.map_error, httpx.Response(503), alasco.VENDOR),
    "alasco-429": (
        alasco.map_error,
        httpx.Response(429, json={"errors": [{"title": "Too Many Requests"}]}, headers={"Retry-After": "0"}),
        alasco.VENDOR,
    ),
    "cash-429-fault": (
        cash.map_http_error,
        httpx.Response(429, text=SOAP_FAULT, headers={"Content-Type": "text/xml", "Retry-After": "0"}),
        cash.VENDOR,
    ),
    "cash-503": (cash.map_http_error, httpx.Response(503), cash.VENDOR),
    "cloudpos-503": (cloudpos.map_error, httpx.Response(503), cloudpos.VENDOR),
    "cloudpos-429": (cloudpos.map_error, httpx.Response(429), cloudpos.VENDOR),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_documented_refusal_of_a_write_is_sent_again_after_the_wait(case):
    mapper, answer, vendor = case
    calls, outcome = post(mapper, answer, vendor)
    assert isinstance(outcome, httpx.Response) and outcome.status_code == 201
    assert calls == 2


@pytest.mark.parametrize("case", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_an_undocumented_429_or_503_to_a_write_is_ambiguous_and_not_sent_again(case):
    mapper, answer, vendor = case
    calls, outcome = post(mapper, answer, vendor)
    assert calls == 1
    assert isinstance(outcome, AmbiguousWriteError)
    assert f"HTTP {answer.status_code}" in str(outcome)
    assert "does not document that a write answered so was not processed" in str(outcome)
    assert "Check at the vendor" in str(outcome)


@pytest.mark.parametrize("case", [*REFUSALS.values(), *AMBIGUOUS.values()], ids=[*REFUSALS, *AMBIGUOUS])
def test_a_read_answered_429_or_503_is_retried_for_every_vendor(case):
    mapper, answer, vendor = case
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        return httpx.Response(200, json={"ok": True})

    with HttpClient(
        vendor=vendor, base_url="http://vendor.test", error_mapper=mapper, retry=FAST,
        transport=httpx.MockTransport(handler),
    ) as client:  # fmt: skip
        assert client.request("GET", "/read", operation="read").status_code == 200
    assert calls == 2
