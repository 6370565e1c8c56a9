"""Parsing large JSON answers fast, with the standard library as the fallback.

A page of a thousand ledger rows is most of a megabyte of JSON, and with several pages in flight
the client's parsing, not the network, becomes what limits a read. ``msgspec`` (a dependency of
Airflow itself since 3.0) parses such documents two to three times faster than :func:`json.loads`
and gives the same Python values; where it is missing, :func:`json.loads` is used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

try:
    from msgspec import DecodeError as _DecodeError
    from msgspec.json import decode as _decode
except ImportError:  # pragma: no cover - Airflow installs msgspec
    _decode = None  # type: ignore[assignment]
    _DecodeError = ValueError  # type: ignore[assignment,misc]


def loads(data: bytes | str) -> Any:
    """Parse a JSON document; raises :class:`ValueError` when it is not JSON."""
    if _decode is None:
        return json.loads(data)
    try:
        return _decode(data)
    except _DecodeError as exc:
        raise ValueError(str(exc)) from None


def json_answer(
    vendor: str,
    response: httpx.Response,
    operation: str,
    *,
    parse: Callable[[bytes], Any] = loads,
    reference: str | None = None,
) -> Any:
    """The parsed body of ``response``; a :class:`VendorError` naming the content type and the start
    of the body when it is not JSON (a proxy's or a maintenance page, most often)."""
    from airflow_provider_ledgerlink.core.errors import VendorError

    try:
        return parse(response.content)
    except (ValueError, UnicodeDecodeError):
        snippet = " ".join(response.text[:160].split())
        raise VendorError(
            vendor,
            operation,
            f"the answer is not JSON (content-type {response.headers.get('content-type', '?')}): {snippet!r}",
            hint="A proxy or a maintenance page may be in the way; check the host of the connection",
            status_code=response.status_code,
            reference=reference,
        ) from None


def error_body(response: httpx.Response) -> dict[str, Any]:
    """The JSON object of an error answer, or ``{}`` when it has none (an empty or non-JSON body,
    or JSON that is not an object): error mappers read the vendor's fields from it."""
    try:
        parsed = loads(response.content) if response.content else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
