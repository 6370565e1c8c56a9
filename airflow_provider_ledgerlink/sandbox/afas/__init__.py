"""An offline AFAS Profit REST API ("Profit REST Services", App connector) for tests and demos.

Mounted at ``/afas``, so the base URL is ``http://127.0.0.1:PORT/afas/ProfitRestServices``. It
follows the documented wire format:

- ``Authorization: AfasToken <base64 of the token XML>``. A missing or unknown token gives 401 with
  an empty body; a token sent as raw XML (not base64) gives 500, as AFAS does since Profit 6.
- GetConnectors ``GET /connectors/{id}`` with ``skip``/``take`` (default 0/100, ``skip=-1`` = all),
  ``orderbyfieldids``, the simple filters (``,`` = AND, ``;`` = OR, operators 1-15) and
  ``filterjson``. A query string longer than 2049 characters gives 404.
- ``/metainfo``, ``/metainfo/get/{id}``, ``/metainfo/update/{id}``, ``/ProfitVersion``.
- UpdateConnectors ``FiEntries`` (journal entries) and ``KnSubject`` (dossier items): POST inserts,
  PUT updates, DELETE with the key in the URL. Inserted records show up in the GetConnectors.
- The one-time-password flow ``/otprequest`` + ``/otpvalidation``; the "e-mail" with the code is
  read from ``GET /_sandbox/afas/otp?user=...``.
- Errors use the AFAS body ``{"externalMessage", "errorNumber", "profitLogReference"}`` with a fresh
  32-hex reference every time. Maintenance (503 + ``retry_after``) is a fault:
  :func:`afas_maintenance_fault`.

Times are Europe/Amsterdam wall-clock time marked with ``Z`` (the AFAS convention), date-only
values end in ``T00:00:00Z``, and date filter values are read as wall-clock time.

Generated data is a pure function of ``(seed, connector, row number)``; nothing is held in
memory, so ``scale={"Profit_Transactions": 1_000_000}`` costs no memory. Row order is chosen so
that each connector's key and its modification timestamp never decrease with the row number:
ordering on those fields and range filters on them are answered by binary search, which keeps every
page O(page size) at any scale. Other filters and orderings fall back to scanning (fine at the
default sizes); sorting more than 200,000 rows on a non-monotonic field gives the AFAS 500 "Out of
memory" error instead of materialising them. The generated timeline covers the 60 days before the
anchor date 2026-11-20 (Amsterdam time); the sandbox clock starts at the anchor when the emulator is
created, so records inserted later are always newer than generated ones.

The package's modules, in import order (each imports only from the ones before it):

- :mod:`~airflow_provider_ledgerlink.sandbox.afas.errors`: the AFAS error body and the 401.
- :mod:`~airflow_provider_ledgerlink.sandbox.afas.data`: the environment's data (GetConnector
  definitions, reference tables, row generators, the tables the queries read).
- :mod:`~airflow_provider_ledgerlink.sandbox.afas.query`: the GetConnector query engine (filters,
  ordering, paging).
- :mod:`~airflow_provider_ledgerlink.sandbox.afas.writes`: the UpdateConnectors (metainfo, body and
  key validation).
- :mod:`~airflow_provider_ledgerlink.sandbox.afas.app`: the HTTP app (:class:`AfasEmulator`:
  routes, authentication, the OTP flow, bookkeeping of writes) and the sandbox credentials.
"""

from __future__ import annotations

from airflow_provider_ledgerlink.sandbox.afas.app import (
    AfasEmulator,
    afas_authorization_header,
    afas_maintenance_fault,
    sandbox_afas_api_key,
    sandbox_afas_environment_key,
    sandbox_afas_token,
    sandbox_afas_token_data,
)
from airflow_provider_ledgerlink.sandbox.afas.data import (
    ANCHOR,
    ENVIRONMENT_ID,
    ENVIRONMENT_NAME,
    GET_CONNECTORS,
    OTP_USER_ID,
    ConnectorField,
    GetConnectorSpec,
)
from airflow_provider_ledgerlink.sandbox.afas.writes import UPDATE_CONNECTORS, UpdateConnectorSpec

__all__ = [
    "ANCHOR",
    "ENVIRONMENT_ID",
    "ENVIRONMENT_NAME",
    "GET_CONNECTORS",
    "OTP_USER_ID",
    "UPDATE_CONNECTORS",
    "AfasEmulator",
    "ConnectorField",
    "GetConnectorSpec",
    "UpdateConnectorSpec",
    "afas_authorization_header",
    "afas_maintenance_fault",
    "sandbox_afas_api_key",
    "sandbox_afas_environment_key",
    "sandbox_afas_token",
    "sandbox_afas_token_data",
]
