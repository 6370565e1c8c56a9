"""Credential headers that are only ever sent to the vendor's own API.

Some vendors authenticate with custom headers (Alasco's ``X-API-KEY`` / ``X-API-TOKEN``) and answer
some requests with a redirect to somewhere else: a pre-signed object-storage URL for a document
download. httpx strips only ``Authorization`` when it follows a redirect to another origin; custom
headers would travel along and hand the vendor's credentials to a third party.

:class:`ScopedCredentials` therefore never puts the credentials into the client's default headers,
nor into the request httpx logs. It is a request gate (:class:`~airflow_provider_ledgerlink.core.http.Gate`)
that runs for every request the client sends, redirects and retries included: when the URL lies under
the API base URL (same scheme, host, port and path prefix) it hands the wire a copy carrying the
headers; otherwise a copy without them. A redirect to a storage bucket, to another path on the same
host, or to a look-alike host (``api.example.com.evil.net``) goes out without them.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from airflow_provider_ledgerlink.core.http import wire_copy


def within_scope(url: httpx.URL, scope: httpx.URL) -> bool:
    """Whether ``url`` is ``scope`` itself or lies below it (path prefix on a segment boundary)."""
    if (url.scheme, url.host, url.port) != (scope.scheme, scope.host, scope.port):
        return False
    prefix = scope.path.rstrip("/")
    return url.path == prefix or url.path.startswith(prefix + "/")


class ScopedCredentials:
    """A request gate sending ``headers`` only on requests under ``scope`` (e.g. the API base URL).

    ``headers`` is read at every request, so a hook that swaps a rotated credential into the same
    mapping changes what the next request sends, in every thread using the client.
    """

    def __init__(self, headers: Mapping[str, str], scope: str) -> None:
        self.headers = headers
        self.scope = httpx.URL(scope)

    def admit(self, request: httpx.Request) -> httpx.Request:
        if within_scope(request.url, self.scope):
            headers = httpx.Headers(request.headers)
            headers.update(self.headers)
            return wire_copy(request, headers=headers)
        if not any(name in request.headers for name in self.headers):
            return request
        headers = httpx.Headers(request.headers)
        for name in self.headers:
            headers.pop(name, None)
        return wire_copy(request, headers=headers)

    async def aadmit(self, request: httpx.Request) -> httpx.Request:
        return self.admit(request)

    def observe(self, request: httpx.Request, response: httpx.Response | None) -> None:
        """Nothing to release."""
