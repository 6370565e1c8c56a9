"""Request gates: every attempt of a request passes them, retries included, in a fixed order.

No socket: the vendor is an ``httpx.MockTransport`` that records what reached it.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from airflow_provider_ledgerlink.core.errors import AuthenticationError, TransportError
from airflow_provider_ledgerlink.core.http import (
    AsyncHttpClient,
    Gate,
    GatedTransport,
    HttpClient,
    RetryPolicy,
    environment_proxy,
    wire_copy,
)

BASE_URL = "http://acme.test"
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.002)
TOKEN = "wire-only-token-5d1f"


class Refused(Exception):
    """What a gate raises when it refuses to let a request go."""


class Recording:
    """A gate that writes down what it sees in a shared journal; may refuse or add a token."""

    def __init__(self, name: str, journal: list[str], *, refuse: bool = False, token: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.refuse = refuse
        self.token = token

    def admit(self, request: httpx.Request) -> httpx.Request:
        self.journal.append(f"admit {self.name}")
        if self.refuse:
            raise Refused(self.name)
        if not self.token:
            return request
        headers = httpx.Headers(request.headers)
        headers["X-Token"] = TOKEN
        return wire_copy(request, url=request.url.copy_add_param("wire", TOKEN), headers=headers)

    async def aadmit(self, request: httpx.Request) -> httpx.Request:
        return self.admit(request)

    def observe(self, request: httpx.Request, response: httpx.Response | None) -> None:
        outcome = "failed" if response is None else str(response.status_code)
        self.journal.append(f"observe {self.name} {outcome}")


class Vendor:
    """Answers each request with the next step (a status, or an httpx exception class to raise)."""

    def __init__(self, *steps: int | type[Exception]) -> None:
        self.steps = steps
        self.received: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        step = self.steps[min(len(self.received), len(self.steps) - 1)]
        self.received.append(request)
        if isinstance(step, type):
            raise step("simulated network failure", request=request)
        return httpx.Response(step, json={"ok": step < 400})


def client_with(vendor: Vendor, gates: list[Gate]) -> HttpClient:
    return HttpClient(
        vendor="Acme", base_url=BASE_URL, retry=FAST, transport=httpx.MockTransport(vendor), gates=gates
    )


def async_client_with(vendor: Vendor, gates: list[Gate]) -> AsyncHttpClient:
    return AsyncHttpClient(
        vendor="Acme", base_url=BASE_URL, retry=FAST, transport=httpx.MockTransport(vendor), gates=gates
    )


def test_every_attempt_passes_every_gate_admitted_in_order_and_observed_in_reverse() -> None:
    journal: list[str] = []
    vendor = Vendor(503, 500, 200)
    with client_with(vendor, [Recording("limit", journal), Recording("credentials", journal)]) as client:
        client.request("GET", "/things", operation="list things")

    one_attempt = ["admit limit", "admit credentials", "observe credentials {}", "observe limit {}"]
    assert journal == [line.format(status) for status in (503, 500, 200) for line in one_attempt]
    assert len(vendor.received) == 3


def test_a_failed_attempt_is_observed_without_an_answer_and_retried_through_the_gates() -> None:
    journal: list[str] = []
    vendor = Vendor(httpx.ConnectError, 200)
    with client_with(vendor, [Recording("limit", journal)]) as client:
        client.request("GET", "/things", operation="list things")

    assert journal == ["admit limit", "observe limit failed", "admit limit", "observe limit 200"]


def test_an_attempt_that_never_gets_an_answer_is_observed_as_failed_on_every_try() -> None:
    journal: list[str] = []
    vendor = Vendor(httpx.ConnectError)
    with client_with(vendor, [Recording("limit", journal)]) as client, pytest.raises(TransportError):
        client.request("GET", "/things", operation="list things")

    assert journal == ["admit limit", "observe limit failed"] * FAST.max_attempts


def test_a_gate_refusing_sends_nothing_and_the_gates_before_it_are_released() -> None:
    journal: list[str] = []
    vendor = Vendor(200)
    gates = [
        Recording("limit", journal),
        Recording("budget", journal, refuse=True),
        Recording("last", journal),
    ]
    with client_with(vendor, gates) as client, pytest.raises(Refused):
        client.request("GET", "/things", operation="list things")

    assert vendor.received == []
    assert journal == ["admit limit", "admit budget", "observe limit failed"]


def test_a_refusal_is_observed_too_and_not_retried() -> None:
    journal: list[str] = []
    with (
        client_with(Vendor(401, 200), [Recording("limit", journal)]) as client,
        pytest.raises(AuthenticationError),
    ):
        client.request("GET", "/things", operation="list things")

    assert journal == ["admit limit", "observe limit 401"]


def test_what_a_gate_adds_goes_on_the_wire_only(caplog: pytest.LogCaptureFixture) -> None:
    journal: list[str] = []
    vendor = Vendor(503, 200)
    caplog.set_level(logging.INFO, logger="httpx")
    with client_with(vendor, [Recording("credentials", journal, token=True)]) as client:
        response = client.request("GET", "/things", operation="list things", params={"page": 2})

    for sent in vendor.received:  # both attempts carried the token
        assert sent.headers["X-Token"] == TOKEN
        assert sent.url.params["wire"] == TOKEN
        assert sent.url.params["page"] == "2"
    assert "X-Token" not in response.request.headers
    assert TOKEN not in str(response.request.url)
    assert "/things?page=2" in caplog.text  # httpx logged the request it built ...
    assert TOKEN not in caplog.text  # ... which never carried the token


def test_a_gate_changes_only_its_copy_of_a_request_with_a_body() -> None:
    journal: list[str] = []
    vendor = Vendor(200)
    with client_with(vendor, [Recording("credentials", journal, token=True)]) as client:
        response = client.request("POST", "/things", operation="add a thing", json={"name": "x"})

    assert vendor.received[0].read() == b'{"name":"x"}'
    assert vendor.received[0].headers["Content-Type"] == "application/json"
    assert "X-Token" not in response.request.headers


async def test_async_every_attempt_passes_every_gate_in_the_same_order() -> None:
    journal: list[str] = []
    vendor = Vendor(503, httpx.ReadTimeout, 200)
    client = async_client_with(
        vendor, [Recording("limit", journal), Recording("credentials", journal, token=True)]
    )
    async with client:
        response = await client.request("GET", "/things", operation="list things")

    assert journal == [
        *["admit limit", "admit credentials", "observe credentials 503", "observe limit 503"],
        *["admit limit", "admit credentials", "observe credentials failed", "observe limit failed"],
        *["admit limit", "admit credentials", "observe credentials 200", "observe limit 200"],
    ]
    assert all(sent.headers["X-Token"] == TOKEN for sent in vendor.received)
    assert "X-Token" not in response.request.headers


async def test_async_a_gate_refusing_sends_nothing_and_releases_the_gates_before_it() -> None:
    journal: list[str] = []
    vendor = Vendor(200)
    client = async_client_with(
        vendor, [Recording("limit", journal), Recording("budget", journal, refuse=True)]
    )
    async with client:
        with pytest.raises(Refused):
            await client.request("GET", "/things", operation="list things")

    assert vendor.received == []
    assert journal == ["admit limit", "admit budget", "observe limit failed"]


async def test_async_open_builds_the_gated_transport_off_the_loop() -> None:
    journal: list[str] = []
    vendor = Vendor(200)
    client = await AsyncHttpClient.open(
        vendor="Acme",
        base_url=BASE_URL,
        retry=FAST,
        transport=lambda: httpx.MockTransport(vendor),
        gates=[Recording("limit", journal)],
    )
    async with client:
        await client.request("GET", "/things", operation="list things")

    assert journal == ["admit limit", "observe limit 200"]


def test_without_a_transport_the_gates_wrap_httpx_own_with_the_environments_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")

    assert environment_proxy("https://vendor.example/api") == "http://proxy.internal:3128"
    assert environment_proxy("https://direct.example/api") is None

    client = HttpClient(vendor="Acme", base_url="https://vendor.example/api", gates=[Recording("limit", [])])
    with client:
        transport = client._http._transport
        assert isinstance(transport, GatedTransport)
        assert isinstance(transport.inner, httpx.HTTPTransport)
        assert type(transport.inner._pool).__name__ == "HTTPProxy"
