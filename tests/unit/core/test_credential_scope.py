"""Credential headers reach the API and nothing else, redirects included."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_ledgerlink.core.credential_scope import ScopedCredentials, within_scope
from airflow_provider_ledgerlink.core.http import AsyncHttpClient, HttpClient

SECRET = {"X-API-KEY": "key-123456", "X-API-TOKEN": "token-abcdef"}
API = "https://api.example.com/fincon/v1"


@pytest.mark.parametrize(
    ("url", "inside"),
    [
        ("https://api.example.com/fincon/v1", True),
        ("https://api.example.com/fincon/v1/invoices/?x=1", True),
        ("https://api.example.com/fincon/v10/invoices/", False),  # a prefix of a segment is not inside
        ("https://api.example.com/files/doc.pdf", False),
        ("http://api.example.com/fincon/v1/invoices/", False),
        ("https://api.example.com:8443/fincon/v1/", False),
        ("https://api.example.com.evil.net/fincon/v1/", False),
        ("https://bucket.s3.amazonaws.com/fincon/v1/doc", False),
    ],
)
def test_within_scope(url, inside):
    assert within_scope(httpx.URL(url), httpx.URL(API + "/")) is inside


def recording_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/fincon/v1/documents/1/download/":
            return httpx.Response(302, headers={"Location": "https://bucket.s3.amazonaws.com/doc?sig=1"})
        if request.url.path == "/fincon/v1/invoices":
            return httpx.Response(307, headers={"Location": API + "/invoices/"})
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handle)


def test_headers_go_to_the_api_and_its_same_origin_redirects_only():
    seen: list[httpx.Request] = []
    client = HttpClient(
        vendor="Test",
        base_url=API,
        transport=recording_transport(seen),
        gates=[ScopedCredentials(SECRET, API)],
    )

    client.request("GET", "/invoices", operation="list", follow_redirects=True)
    client.request("GET", "/documents/1/download/", operation="download", follow_redirects=True)

    hosts = [(r.url.host, r.url.path, r.headers.get("X-API-KEY")) for r in seen]
    assert hosts == [
        ("api.example.com", "/fincon/v1/invoices", "key-123456"),
        ("api.example.com", "/fincon/v1/invoices/", "key-123456"),
        ("api.example.com", "/fincon/v1/documents/1/download/", "key-123456"),
        ("bucket.s3.amazonaws.com", "/doc", None),
    ]
    assert "X-API-TOKEN" not in seen[-1].headers
    assert "X-API-KEY" not in client.headers  # never a default header
    response = client.request("GET", "/invoices/", operation="list")
    assert "X-API-KEY" not in response.request.headers  # nor on the request httpx logs


async def test_the_async_client_scopes_the_same_way():
    seen: list[httpx.Request] = []
    client = AsyncHttpClient(
        vendor="Test",
        base_url=API,
        transport=recording_transport(seen),
        gates=[ScopedCredentials(SECRET, API)],
    )

    await client.request("GET", "/documents/1/download/", operation="download", follow_redirects=True)
    await client.aclose()

    assert seen[0].headers["X-API-TOKEN"] == "token-abcdef"
    assert "X-API-TOKEN" not in seen[1].headers
