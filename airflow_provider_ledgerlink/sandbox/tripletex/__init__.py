"""An offline Tripletex API v2 for tests, demos and benchmarks.

Mounted at ``/tripletex``, so the base URL is ``http://127.0.0.1:PORT/tripletex/v2``. It follows the
wire format of Tripletex's OpenAPI 2.72 and its documentation:

- ``PUT /token/session/:create?consumerToken=…&employeeToken=…&expirationDate=YYYY-MM-DD`` (query
  parameters, no body, no auth) returns ``{"value": SessionToken}``. A wrong consumer token gives the
  documented 422 / code 18000 body with ``validationMessages[].field == "arg:consumerToken"``; a wrong
  or revoked employee token the same with ``arg:employeeToken``.
- Every other call uses HTTP Basic ``<company id or 0>:<session token>``. A missing, unknown or expired
  session gives 401 / code 3000. A session is valid until the start of its ``expirationDate`` in
  Europe/Oslo, so a UTC host that stamps "today + 1" late in the UTC day creates a session that is
  already dead in Oslo (this trap is emulated on purpose). ``session_max_requests`` makes sessions
  die after N calls, to test renewal in the middle of a run.
- ``GET /token/session/>whoAmI``, ``DELETE /token/session/{token}`` (204), ``GET /company/>withLoginAccess``.
- Lists: ``{"fullResultSize", "from", "count", "versionDigest", "values"}`` with ``from``/``count``
  (default 1000), ``fields`` (``*``, ``changes``, ``name(sub,fields)`` expansions; an unknown field
  is 400 / code 11000) and ``sorting`` (``-`` for descending). ``fullResultSize`` is inexact, as
  documented: about ``min(total, count) + 1``. Without ``If-None-Match``, ``versionDigest`` is
  literally ``'If-None-Match' header not specified``; with it, a checksum, and sending the current
  checksum back gives 304 Not Modified with an empty body.
- Single objects: ``{"value": {...}}``; a missing id is 404 / code 6000. Every object has ``id``,
  ``version`` and a host-less ``url``; ``changes`` only when asked for in ``fields``.
- Date windows with an exclusive end: ``/ledger/posting`` and ``/ledger/voucher``
  (``dateFrom``/``dateTo``), ``/invoice`` (``invoiceDateFrom``/``invoiceDateTo``), ``/order``
  (``orderDateFrom``/``orderDateTo``). A window holding more than ``max_window_rows`` rows gives
  422 / code 23000 (result set too large). ``changedSince`` on ``/customer`` and ``/supplier``.
- Writes: ``POST /customer`` (unique ``customerNumber``), ``PUT /customer/{id}`` with optimistic
  locking (a stale ``version`` gives 409 / code 8000), ``POST /order`` with nested ``orderLines``,
  ``PUT /order/{id}/:invoice?invoiceDate=…`` returning ``{"value": Invoice}`` (``sendToCustomer``
  defaults to true, as at Tripletex; the emulator records whether an invoice was "sent"), and
  ``POST /ledger/voucher`` (balanced postings, ``externalVoucherNumber``). Tripletex has no
  idempotency key and neither has the emulator: the same order or voucher sent twice is created twice.
- Rate limiting per consumer and employee token: ``X-Rate-Limit-Limit``, ``X-Rate-Limit-Remaining``
  and ``X-Rate-Limit-Reset`` (seconds left in the period) on every response; once the period's
  budget is spent, every request gets 429 until the period ends. ``omit_reset_on_429`` leaves the
  reset header off 429 answers, as Tripletex sometimes does.
- Every response carries ``x-tlx-request-id``; error bodies repeat it as ``requestId``. Error
  messages are Norwegian, as Tripletex's are.

Data: postings and vouchers over the 60 days before 2026-11-20 (Oslo dates), plus customers,
suppliers, products, orders (all invoiced) and a Norwegian chart of accounts. Everything is a pure
function of ``(seed, dataset, row number)``: ``scale={"tripletex.postings": 1_000_000}`` costs no
memory; a date window is found by binary search and a page is produced in O(page size). Objects
created through the API live in memory until ``reset_state()``.

Where what lives (each module imports only the ones above it):

- ``model.py``: the object model read from the shipped OpenAPI file (fields in schema order, neutral
  values, references) and the ``{id, url}`` reference shape; ``errors.py``: the error answer;
  ``values.py``: Oslo dates, change timestamps, amounts.
- ``data.py``: the world's data: tables, tokens, number series and the generators (``TripletexData``).
- ``store.py``: objects created through the API beside the generated ones (``TripletexStore``).
- ``query.py``: ``fields=``, ``sorting``, paging, filters, date windows, 304 (``TripletexQuery``).
- One handler family per resource, each registering its routes: ``sessions.py`` (sessions, tokens,
  authentication, rate limit), ``ledger.py`` (postings, accounts, fixed lists), ``vouchers.py``,
  ``parties.py`` (customers, suppliers), ``products.py``, ``orders.py`` (orders, invoices).
- ``app.py``: ``TripletexEmulator``, which wires the families onto the shared ``Router`` of
  ``sandbox/server.py``, renders errors and serves ``/_sandbox/tripletex/...``.
"""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.tripletex.app import TripletexEmulator
from airflow_provider_ledgerlink.sandbox.tripletex.data import (
    ANCHOR,
    COMPANY_ID,
    sandbox_tripletex_consumer_token,
    sandbox_tripletex_employee_token,
    tripletex_connection_definition,
)
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError
from airflow_provider_ledgerlink.sandbox.tripletex.model import (
    SPEC_FILE,
    complete,
    field_names,
    list_parameters,
    missing_defaults,
    properties,
    references,
    specification,
)
from airflow_provider_ledgerlink.sandbox.tripletex.query import NO_DIGEST, FieldTree, parse_fields
from airflow_provider_ledgerlink.sandbox.tripletex.sessions import RateLimitSettings
from airflow_provider_ledgerlink.sandbox.tripletex.values import oslo_timestamp

__all__ = [
    "ANCHOR",
    "COMPANY_ID",
    "NO_DIGEST",
    "SPEC_FILE",
    "ApiError",
    "FieldTree",
    "RateLimitSettings",
    "TripletexEmulator",
    "complete",
    "field_names",
    "list_parameters",
    "missing_defaults",
    "oslo_timestamp",
    "parse_fields",
    "properties",
    "references",
    "sandbox_tripletex_consumer_token",
    "sandbox_tripletex_employee_token",
    "specification",
    "tripletex_connection_definition",
]
