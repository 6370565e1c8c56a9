"""Credential headers that are only ever sent to the vendor's own API.

Some vendors authenticate with custom headers (Alasco's ``X-API-KEY`` / ``X-API-TOKEN``) and answer
some requests with a redirect to somewhere else: a pre-signed object-storage URL for a document
download. httpx strips only ``Authorization`` when it follows a redirect to another origin; custom
headers would travel along and hand the vendor's credentials to a third party.

:func:`scope_credentials` therefore does not put the credentials into the client's default headers.
It installs a request hook that runs for every request the client sends, redirects included, and
sets the headers when the URL lies under the API base URL (same scheme, host, port and path prefix)
and removes them otherwise. A redirect to a storage bucket, to another path on the same host, or to
a look-alike host (``api.example.com.evil.net``) goes out without them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import httpx

from airflow_provider_ledgerlink.core.http import AsyncHttpClient, HttpClient


def within_scope(url: httpx.URL, scope: httpx.URL) -> bool:
    """Whether ``url`` is ``scope`` itself or lies below it (path prefix on a segment boundary)."""
    if (url.scheme, url.host, url.port) != (scope.scheme, scope.host, scope.port):
        return False
    prefix = scope.path.rstrip("/")
    return url.path == prefix or url.path.startswith(prefix + "/")


def _apply(request: httpx.Request, headers: Mapping[str, str], scope: httpx.URL) -> None:
    if within_scope(request.url, scope):
        request.headers.update(headers)
    else:
        for name in headers:
            request.headers.pop(name, None)


def credential_hook(headers: Mapping[str, str], scope: str) -> Callable[[httpx.Request], None]:
    """A synchronous httpx request hook adding ``headers`` inside ``scope`` only."""
    scope_url = httpx.URL(scope)

    def hook(request: httpx.Request) -> None:
        _apply(request, headers, scope_url)

    return hook


def async_credential_hook(
    headers: Mapping[str, str], scope: str
) -> Callable[[httpx.Request], Awaitable[None]]:
    """The asyncio twin of :func:`credential_hook` (httpx awaits the hooks of an async client)."""
    scope_url = httpx.URL(scope)

    async def hook(request: httpx.Request) -> None:
        _apply(request, headers, scope_url)

    return hook


def scope_credentials(
    client: HttpClient | AsyncHttpClient, headers: Mapping[str, str], *, scope: str | None = None
) -> None:
    """Send ``headers`` on ``client``'s requests under ``scope`` (default: its base URL) only.

    Call it once, right after creating the client; the headers never become default headers.
    ``headers`` is read at every request, so a hook that swaps a rotated credential into the same
    mapping changes what the next request sends, in every thread using the client.
    """
    target = scope or client.base_url
    http = client._http
    hook = (
        async_credential_hook(headers, target)
        if isinstance(client, AsyncHttpClient)
        else credential_hook(headers, target)
    )
    http.event_hooks = {
        "request": [*http.event_hooks.get("request", []), hook],
        "response": list(http.event_hooks.get("response", [])),
    }
