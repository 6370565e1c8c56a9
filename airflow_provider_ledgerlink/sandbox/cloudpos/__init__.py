"""An offline CloudPOS API (V1, and V2 ``weborder.insert``) for tests and demos.

Mounted at ``/cloudpos``, so the API base is ``http://127.0.0.1:PORT/cloudpos/api/``. What it does,
following CloudPOS's V1 page where it says something and LedgerLink's documented choices where not:

- V1: ``GET|POST /api/?licname=<licence>&token=<token>&get-products``. The function is a bare flag;
  every function of CloudPOS's V1 reference, with its fields and codes. "Url filter"s are read from
  the query string only (``&start=``, ``&end=``, ``&date=YYYY-MM-DD``, ``&clockinclockout``,
  ``&customerid=``), "Post filter"s from a form (or JSON) body only (``weborderid``, ``documentnr``,
  ``date``, ``persons``). Answers are HTTP 200 with ``{"success": 1, "data": [...]}`` (lists),
  ``{"success": 1, "<field>": …}`` (single answers: ``webordertime``, ``vatticket``, ``persons``,
  ``hours``) or ``{"success": 0, "errorcode": N, "message": "…"}``.
- Credentials: one licence (``LICENCE``, token :func:`sandbox_cloudpos_token`); more can be added
  through ``POST /_sandbox/cloudpos/licences``. 1001 for empty credentials, 1002 for wrong ones.
- **Quota**: ``daily_limit`` (500) accepted requests per licence per Europe/Brussels day, then 1003
  ``Limit of '500' requests per day reached, next request possible '2026-11-21 00:00:00'``.
  Rejected logins and 1003 answers are not counted.
- **IP block**: the 5th bad login in a row from one address blocks it for 30 minutes; every
  request from it then gets 1004 ``5 bad logins reached, your ip adress is blocked till '…'`` (the
  vendor's spelling). The address is ``X-Forwarded-For`` when sent, else ``127.0.0.1``.
- 1005 for functions switched off with ``POST /_sandbox/cloudpos/config {"unlicensed": [...]}``;
  2000 ``No … found`` for an empty result.
- Weborders (the reference's ``get-confirmedweborder``, Post filter ``weborderid``): 2001 ``weborder
  not confirmed``, 2002 ``weborderid can not be empty``, 2003 ``weborderid does not exist``, or
  ``{"success": 1, "webordertime": "YYYY-MM-DD HH:MM:SS"}``, the confirmed pick-up or delivery time.
  Weborders created through V2 are confirmed ``confirm_after_seconds`` after creation (0 by default;
  ``null``: never), or, when ``confirm_on_poll`` is N, from the N-th ``get-confirmedweborder`` for
  it on (earlier polls get 2001; tests use this to be independent of timing);
  ``/_sandbox/cloudpos/weborders/<id>`` forces ``confirmed`` or ``pending``.
  Fixtures: 7001 confirmed, 7002 never confirmed.
- V2 ``POST /api/v2/weborder.insert`` with the ``Licensename`` and ``Token`` headers and a JSON body;
  answers ``{"weborderid": N}``, errors as ``{"error_code": N, "message": "…"}`` with a 4xx status.
  V2 ``product.select``, ``category.select`` and ``customer.select`` (the same headers; bodies
  ``{"show_deleted": false}``, ``{}``, ``{"email": …}``) answer bare JSON arrays, or 2000 "No …
  found" in the V1 envelope when nothing matches.

Times are Brussels wall clock (``YYYY-MM-DD HH:MM:SS``); ``modtime`` is a unix timestamp. The data
covers the 60 days before 2026-11-20 and is a pure function of the seed and the row number: orders
(40 a day by default, ``scale={"cloudpos_orders": N}``), their invoices, products, customers and the
reference lists. Date and id filters on orders and invoices are answered by binary search, so any
scale costs the same per answer. An answer holds at most ``max_rows_per_call`` (500) rows, lowest ids
first; the rest is read by id range (``&start=``).

The modules, from the bottom up:

- :mod:`.data`: the world: the licence, the weborder fixtures and every generated list;
- :mod:`.engine`: licences with their quota and bad-login block, the V1 functions, the V2 selects,
  weborders and their confirmation;
- :mod:`.app`: V1 and V2 requests and envelopes and the control endpoints, on the sandbox's shared
  router.
"""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.cloudpos.app import CloudPosEmulator, cloudpos_connection_definition
from airflow_provider_ledgerlink.sandbox.cloudpos.data import (
    ANCHOR,
    CONFIRMED_WEBORDER,
    LICENCE,
    PENDING_WEBORDER,
    sandbox_cloudpos_token,
)

__all__ = [
    "ANCHOR",
    "CONFIRMED_WEBORDER",
    "LICENCE",
    "PENDING_WEBORDER",
    "CloudPosEmulator",
    "cloudpos_connection_definition",
    "sandbox_cloudpos_token",
]
