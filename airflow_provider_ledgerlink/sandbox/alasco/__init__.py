"""An offline Alasco public API (FinCon 1.0) for tests, demos and benchmarks.

Mounted at ``/alasco``: the base URL is ``http://127.0.0.1:PORT/alasco/fincon/v1`` (the spec's); the
published SDKs' ``…/alasco/v1`` answers the same. What it follows
from the vendor's OpenAPI and "Get Started" page:

- ``X-API-KEY`` + ``X-API-TOKEN`` on every call; several tokens may be valid for one key.
- JSON:API documents ``{"data", "included", "links", "errors"}``; resource types in UPPER_SNAKE;
  foreign keys both as attributes and as ``relationships``; money as decimal strings with 12
  decimals (``{"currency": "EUR", "net": "1190.000000000000", "tax": …}``); dates ``YYYY-MM-DD``;
  date-times ISO 8601 in UTC with ``Z``.
- Lists page by an opaque cursor: the first page is the call without ``cursor[position]``, every
  further page is the absolute URL in ``links.next``; 100 per page, 1,000 on ``/reporting/…``.
- ``filter[<attribute>.<operation>]`` with the attributes and operations each endpoint's table in
  the OpenAPI allows (others give 422), values comma-separated (``%2C`` counts as a comma); ``include=`` on contracts, invoices
  and budget shifts.
- Every path ends with ``/``; a path without it answers 307 to the one with it, except
  ``/cost_elements/{id}``, which has none (``…/{id}/`` answers 307 to it).
- Request validation answers 422 with FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``.
- Writes: ``POST /invoices/{id}/register-payment/``, ``POST /invoices/{id}/update-new/``,
  ``POST /contracts/``, ``PATCH /contracts/{id}/`` (JSON bodies checked against the spec's request
  schemas), ``POST /projects/{id}/submit-invoice/`` (multipart ``file``, PDF) and
  ``POST /{invoices|contracts|change_orders}/{id}/documents/`` (multipart ``document_type`` +
  ``upload``).
- A document download answers 302 to a temporary pre-signed URL under ``/alasco/_files/`` (the
  sandbox's object storage). That URL ignores the API headers (as presigned storage ignores headers
  it does not sign), refuses an ``Authorization`` header, and expires after 300 s of sandbox time.
- ``Accept-Encoding: gzip`` compresses larger answers.

Where the vendor documents nothing, the choices are ours (and listed in docs/alasco.md): 401 with a
JSON:API ``errors`` body for bad credentials, 403 when the account has no API access, 404 with
FastAPI's ``{"detail": "Not Found"}`` for unknown paths and JSON:API ``errors`` for unknown ids, 400
JSON:API errors for malformed filter keys, a foreign cursor, or a write the invoice's state does not
allow, a cursor bound to its query (following a ``next`` link with other filters gives 400), 429 with
``Retry-After`` when a rate limit is set through the control endpoint (none by default), and an
``x-request-id`` header on error answers.

Generated data is a pure function of ``(seed, dataset, row number)``: nothing is held in memory,
and ids encode their row number, so any page or id is served in O(page size) at any scale
(``scale={"alasco:invoices": 1_000_000}``). Contracts and invoices are created along a timeline
that ends at the anchor 2026-11-20T00:00:00Z, so ranges on ``date_created`` are binary searches;
other filters scan. The sandbox clock starts at the anchor; objects created at runtime are newer
than every generated one.

The package's modules, in import order (each imports only from the ones before it):

- :mod:`~airflow_provider_ledgerlink.sandbox.alasco.errors`: the 422 validation body and JSON:API errors.
- :mod:`~airflow_provider_ledgerlink.sandbox.alasco.data`: the account's data (ids, value formats,
  text pools, one dataset per resource type).
- :mod:`~airflow_provider_ledgerlink.sandbox.alasco.query`: filters, ``include=`` and the cursor.
- :mod:`~airflow_provider_ledgerlink.sandbox.alasco.writes`: request bodies of the writes (multipart
  forms, PDF parts, money objects).
- :mod:`~airflow_provider_ledgerlink.sandbox.alasco.app`: the HTTP app (:class:`AlascoEmulator`:
  routes, access checks, lists and details, documents and storage, the writes) and the credentials.
"""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.alasco.app import (
    AlascoEmulator,
    alasco_connection_definition,
    sandbox_alasco_api_key,
    sandbox_alasco_api_token,
)
from airflow_provider_ledgerlink.sandbox.alasco.data import ANCHOR, DATASETS, IdCodec, Stamps, parse_instant
from airflow_provider_ledgerlink.sandbox.alasco.data import _pdf as _pdf
from airflow_provider_ledgerlink.sandbox.alasco.query import decode_cursor, encode_cursor
from airflow_provider_ledgerlink.sandbox.alasco.writes import parse_multipart

__all__ = [
    "ANCHOR",
    "DATASETS",
    "AlascoEmulator",
    "IdCodec",
    "Stamps",
    "alasco_connection_definition",
    "decode_cursor",
    "encode_cursor",
    "parse_instant",
    "parse_multipart",
    "sandbox_alasco_api_key",
    "sandbox_alasco_api_token",
]
