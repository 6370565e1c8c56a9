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
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_provider_ledgerlink.sandbox.data import (
    AMSTERDAM,
    RowRandom,
    Timeline,
    company_name,
    compile_row_encoder,
    derive_key,
    format_day,
    format_wallclock,
    iban,
    parse_wallclock,
    person_name,
    phone_number,
    row_hash,
    street_address,
    wallclock_seconds,
    wallclock_z,
)
from airflow_provider_ledgerlink.sandbox.faults import FaultRule, status_fault
from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response, Router

__all__ = [
    "ANCHOR",
    "ENVIRONMENT_ID",
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

ENVIRONMENT_ID = "12345"
#: The AFAS user the sandbox's one-time passwords are "e-mailed" to (read them at ``/_sandbox/afas/otp``).
OTP_USER_ID = "12345.ledgerlink"
ENVIRONMENT_NAME = f"O{ENVIRONMENT_ID}AA"
APP_NAME = "LedgerLink Sandbox"
AUTHORIZATION_GROUP = f"AuthorizationGroup 1 ({ENVIRONMENT_ID}.LEDGERLINK)"
PROFIT_VERSION = "25.3.1"
ANCHOR = datetime(2026, 11, 20)
"""End of the generated timeline and start of the sandbox clock (Amsterdam wall-clock time)."""
HISTORY_DAYS = 60
MAX_QUERY_LENGTH = 2049
MAX_RESULT_ROWS = 200_000
"""More rows than this in one response, or to sort in memory, gives the AFAS "Out of memory" 500."""

GENERIC_ERROR_NUMBER = -2147180999
VALUE_ERROR_NUMBER = -2147220469
OUT_OF_MEMORY_ERROR_NUMBER = -2147024882
UPDATE_NOT_SUPPORTED_ERROR_NUMBER = -2147180996

_XML = "application/xml; charset=utf-8"
_UNITS = (1, 2, 3)


# ==================================================================================================
# Credentials
# ==================================================================================================
def _hex(seed: int | str, label: str, length: int) -> str:
    return hashlib.sha256(f"ledgerlink-sandbox:{seed}:{label}".encode()).hexdigest().upper()[:length]


def sandbox_afas_token_data(seed: int | str = 42) -> str:
    """The 64-hex ``data`` part of the sandbox's valid token for environment 12345."""
    return _hex(seed, "afas-token", 64)


def sandbox_afas_token(seed: int | str = 42) -> str:
    """The full token XML, as an AFAS administrator would hand it out."""
    return f"<token><version>1</version><data>{sandbox_afas_token_data(seed)}</data></token>"


def sandbox_afas_api_key(seed: int | str = 42) -> str:
    """The App connector's API key (API-sleutel) used by the OTP flow."""
    return _hex(seed, "afas-api-key", 32)


def sandbox_afas_environment_key(seed: int | str = 42) -> str:
    """The App connector's environment key (Omgevingssleutel), sent as ``apiToken`` in the OTP flow."""
    return _hex(seed, "afas-environment-key", 32)


def afas_authorization_header(token_xml: str) -> str:
    """``AfasToken <base64(token XML)>``, the value of the ``Authorization`` header."""
    return "AfasToken " + base64.b64encode(token_xml.encode()).decode()


def afas_maintenance_fault(
    retry_after: int = 7200,
    *,
    path: str | None = None,
    method: str | None = None,
    nth: Iterable[int] | None = None,
    every: int | None = None,
    times: int | None = None,
    probability: float | None = None,
) -> FaultRule:
    """A fault rule answering AFAS requests with the 503 scheduled-maintenance body."""
    body = {
        "error": {
            "code": "503",
            "message": "Service temporarily unavailable due to scheduled maintenance. "
            "Please check afasstatus.nl for details.",
        },
        "retry_after": retry_after,
    }
    return status_fault(
        503,
        body,
        vendor="afas",
        path=path,
        method=method,
        nth=nth,
        every=every,
        times=times,
        probability=probability,
        name="afas-maintenance",
    )


# ==================================================================================================
# Errors
# ==================================================================================================
class AfasError(Exception):
    """A functional error: HTTP 500 with the AFAS error triple."""

    def __init__(self, message: str, error_number: int = GENERIC_ERROR_NUMBER) -> None:
        super().__init__(message)
        self.message = message
        self.error_number = error_number

    def response(self) -> Response:
        return _error_response(self.message, self.error_number)


def _error_response(message: str, error_number: int = GENERIC_ERROR_NUMBER) -> Response:
    body = {
        "externalMessage": message,
        "errorNumber": error_number,
        "profitLogReference": uuid.uuid4().hex.upper(),
    }
    return Response.json(body, 500)


def _unexpected() -> AfasError:
    return AfasError("An unexpected error has occurred.")


def _field_not_found(name: str) -> AfasError:
    return AfasError(f"Connector field '{name}' not found")


def _out_of_memory() -> AfasError:
    return AfasError("Out of memory", OUT_OF_MEMORY_ERROR_NUMBER)


def _unauthorized() -> Response:
    return Response.empty(401, _XML)


# ==================================================================================================
# Connector definitions
# ==================================================================================================
_CONTROL_TYPES = {"string": 1, "boolean": 3, "date": 4, "int": 5, "decimal": 6}
_ENCODER_KINDS = {"string": "string", "int": "int", "decimal": "number", "date": "ascii", "boolean": "bool"}


@dataclass(frozen=True)
class ConnectorField:
    """A GetConnector field: what ``/metainfo/get/{id}`` reports and how rows are typed."""

    id: str
    label: str
    data_type: str = "string"
    length: int = 0
    nullable: bool = False

    def metainfo(self, position: int) -> dict[str, Any]:
        decimals = 2 if self.data_type == "decimal" else 0
        return {
            "id": self.id,
            "fieldId": f"U{position:03d}",
            "dataType": self.data_type,
            "label": self.label,
            "length": self.length,
            "controlType": _CONTROL_TYPES[self.data_type],
            "decimals": decimals,
            "decimalsFieldId": "",
        }


def _f(
    id: str, label: str, data_type: str = "string", length: int = 0, nullable: bool = False
) -> ConnectorField:
    if not length:
        length = {"int": 9, "decimal": 15, "date": 10, "boolean": 1}.get(data_type, 80)
    return ConnectorField(id, label, data_type, length, nullable)


@dataclass(frozen=True)
class GetConnectorSpec:
    """A GetConnector of the sandbox's App connector.

    ``monotonic``: fields whose value never decreases with the generated row number, so range
    filters on them are binary searches. ``ordered``: ordering on these fields equals row order,
    also for inserted records; the value lists the fields that must come earlier in
    ``orderbyfieldids`` for that to hold (``SeqNo`` only orders rows within one ``EntryNo``).
    ``unique``: fields that identify a row; ordering fields after them cannot change the order.
    ``partition``: rows are spread over administrations in a fixed rotation, so ordering by this
    field first, or filtering on one value of it, is still O(page size).
    """

    id: str
    description: str
    fields: tuple[ConnectorField, ...]
    default_rows: int
    monotonic: frozenset[str] = frozenset()
    ordered: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unique: tuple[str, ...] = ()
    partition: str | None = None


_TRANSACTION_FIELDS = (
    _f("UnitId", "Administration", "int", 3),
    _f("EntryNo", "Journal entry number", "int"),
    _f("SeqNo", "Journal entry sequence number", "int"),
    _f("Year", "Year", "int", 4),
    _f("Period", "Periodenummer", "int", 3),
    _f("JournalId", "Journal code", "string", 6),
    _f("AccountNo", "Account number", "string", 16),
)
_TRANSACTION_TAIL = (
    _f("EntryDate", "Date entry", "date"),
    _f("InvoiceId", "Invoice number", "string", 12, nullable=True),
    _f("VoucherDate", "Voucher date", "date"),
    _f("VoucherNo", "Entry number", "string", 32),
    _f("VatCode", "VAT code", "string", 3, nullable=True),
    _f("VatAmt", "VAT amount", "decimal", nullable=True),
    _f("Description", "Description entry", "string", 255),
    _f("Created", "Date created", "date"),
    _f("Modified", "Date changed", "date"),
)
_AMOUNTS = (_f("AmtDebit", "Amount debit", "decimal"), _f("AmtCredit", "Amount credit", "decimal"))
_TRANSACTION_ORDER: Mapping[str, tuple[str, ...]] = {
    "EntryNo": (),
    "SeqNo": ("EntryNo",),
    "Created": (),
    "Modified": (),
}
_TRANSACTION_MONOTONIC = frozenset({"EntryNo", "Created", "Modified", "EntryDate", "Year"})

GET_CONNECTORS: dict[str, GetConnectorSpec] = {
    spec.id: spec
    for spec in (
        GetConnectorSpec(
            "Profit_Administrations",
            "Administrations (Profit)",
            (
                _f("AdminId", "Administration", "int", 3),
                _f("AdminNm", "Administration name", "string", 80),
                _f("AdminCd", "Administration code", "string", 10),
            ),
            default_rows=3,
            monotonic=frozenset({"AdminId"}),
            ordered={"AdminId": ()},
            unique=("AdminId",),
        ),
        GetConnectorSpec(
            "Profit_Accounts",
            "Ledger accounts (Financial)",
            (
                _f("Account", "Account number", "string", 16),
                _f("Description", "Description", "string", 80),
                _f("Type", "Type rekeningcode", "string", 1),
                _f("Sort", "Soort rekening code", "string", 1),
                _f("Blocked", "Blocked", "boolean"),
                _f("CollectAccount", "Summary account", "boolean"),
                _f("CollectAccountType", "Type verzamelrekening code", "string", 1, nullable=True),
                _f("Feature", "Kenmerk rekening code", "string", 1, nullable=True),
                _f("CollectOn", "Collect on", "string", 16, nullable=True),
                _f("VatAllowed", "Allow VAT", "boolean"),
                _f("VatCode", "Preferred VAT code", "string", 3, nullable=True),
                _f("Budget", "Budgetteren code", "string", 1),
                _f("ToProject", "Doorboeken projecten code", "string", 1),
                *(
                    _f(f"DimAx{n}", f"Verbijzonderingsas {n} code", "string", 1, nullable=True)
                    for n in range(1, 6)
                ),
            ),
            default_rows=32,
            monotonic=frozenset({"Account"}),
            ordered={"Account": ()},
            unique=("Account",),
        ),
        GetConnectorSpec(
            "Profit_Accounts_ChangedDescription",
            "Ledger accounts with a changed description",
            (
                _f("Account", "Account number", "string", 16),
                _f("Description", "Description", "string", 80),
                _f("PreviousDescription", "Previous description", "string", 80),
                _f("ModifiedDate", "Changed on", "date"),
                _f("ModifiedBy", "Changed by", "string", 40),
            ),
            default_rows=12,
            monotonic=frozenset({"ModifiedDate"}),
            ordered={"ModifiedDate": ()},
        ),
        GetConnectorSpec(
            "Profit_Journals",
            "Journals",
            (
                _f("UnitId", "Administration", "int", 3),
                _f("JournalId", "Journal code", "string", 6),
                _f("Description", "Description", "string", 40),
                _f("JournalType", "Dagboeksoort code", "string", 1),
                _f("Blocked", "Blocked", "boolean"),
            ),
            default_rows=24,
            monotonic=frozenset({"UnitId"}),
            ordered={"UnitId": (), "JournalId": ("UnitId",)},
            unique=("UnitId", "JournalId"),
        ),
        GetConnectorSpec(
            "Profit_Debtor",
            "Debtors",
            (
                _f("DebtorId", "Debtor number", "string", 16),
                _f("DebtorName", "Debtor name", "string", 255),
                _f("BcCo", "Nummer org./pers.", "string", 15),
                _f("SearchName", "Search name", "string", 10),
                _f("AdressLine1", "Address line 1 (street - house number)", "string", 255),
                _f("AdressLine3", "Address line 3 (postcode - city)", "string", 255),
                _f("AdressLine4", "Address line 4 (country)", "string", 255),
                _f("TelNr", "Work phone no.", "string", 30, nullable=True),
                _f("Email", "Work e-mail", "string", 255, nullable=True),
                _f("IBAN", "IBAN number", "string", 40, nullable=True),
                _f("VatNr", "VAT identification number", "string", 20, nullable=True),
                _f("ChOfCommNr", "COC number", "string", 30, nullable=True),
                _f("CollectAccount", "Summary account", "string", 16),
                _f("PayCon", "Payment condition", "string", 5),
                _f("VatDuty", "VAT duty", "string", 1),
                _f("Blocked", "Blocked for delivery", "boolean"),
                _f("CreditLimit", "Credit limit", "decimal"),
                _f("CurrencyId", "Currency", "string", 3),
                _f("AutoPayment", "Automatically collect", "boolean"),
                _f("CreateDate", "Created on", "date"),
                _f("ModifiedDate", "Changed on", "date"),
            ),
            default_rows=250,
            monotonic=frozenset({"DebtorId", "ModifiedDate"}),
            ordered={"DebtorId": (), "ModifiedDate": ()},
            unique=("DebtorId",),
        ),
        GetConnectorSpec(
            "Profit_Creditor",
            "Creditors",
            (
                _f("CreditorId", "Creditor number", "string", 16),
                _f("CreditorName", "Creditor name", "string", 255),
                _f("BcCo", "Org nr.", "string", 15),
                _f("SearchName", "Search name", "string", 10),
                _f("Adressline1", "Address line 1 (street - house number)", "string", 255),
                _f("Adressline3", "Address line 3 (postcode - city)", "string", 255),
                _f("Adressline4", "Address line 4 (country)", "string", 255),
                _f("TelNr", "Work phone no.", "string", 30, nullable=True),
                _f("Email", "Work e-mail", "string", 255, nullable=True),
                _f("IBAN", "IBAN number", "string", 40, nullable=True),
                _f("Btw-nummer", "VAT identification number", "string", 20, nullable=True),
                _f("ChOfCommNr", "COC number", "string", 30, nullable=True),
                _f("PaymentCondition", "Betalingsvoorwaarde", "string", 5),
                _f("CreditLimit", "Credit limit", "decimal"),
                _f("TempBlocked", "Block temporarily", "boolean"),
                _f("VatDuty", "VAT duty", "string", 1),
                _f("AutoPayment", "Automatic payment", "boolean"),
                _f("Blocked", "Block completely, no longer visible", "boolean"),
                _f("CreateDate", "Created on", "date"),
                _f("ModifiedDate", "Changed on", "date"),
            ),
            default_rows=150,
            monotonic=frozenset({"CreditorId", "ModifiedDate"}),
            ordered={"CreditorId": (), "ModifiedDate": ()},
            unique=("CreditorId",),
        ),
        GetConnectorSpec(
            "Profit_Debtor_Invoices",
            "Outstanding items debtor",
            (
                _f("UnitId", "Administration", "int", 3),
                _f("DebtorId", "Debiteurennummer", "string", 16),
                _f("InvoiceNr", "Invoice number", "string", 12),
                _f("NookPieceDate", "Voucher date", "date"),
                _f("ExpDate", "Expiry date", "date"),
                _f("CurrencyId", "Currency", "string", 3),
                _f("AmtInvoice", "Total invoice amount", "decimal"),
                _f("AmtInvoiceCurr", "Total invoice amount foreign currency", "decimal"),
                _f("Balance", "Balance", "decimal"),
                _f("BalanceCurr", "Balance (currency)", "decimal"),
                _f("Description", "Invoice description", "string", 255),
            ),
            default_rows=400,
            monotonic=frozenset({"InvoiceNr", "NookPieceDate"}),
            ordered={"InvoiceNr": (), "NookPieceDate": ()},
            unique=("InvoiceNr",),
        ),
        GetConnectorSpec(
            "Profit_Creditor_Invoices",
            "Outstanding items creditor",
            (
                _f("UnitId", "Administration", "int", 3),
                _f("CreditorId", "Crediteurnr", "string", 16),
                _f("InvoiceNr", "Invoice number", "string", 32),
                _f("BookPiecrNr", "Entry number", "string", 32),
                _f("BookPieceDate", "Factuurdatum", "date"),
                _f("CurrencyId", "Currency", "string", 3),
                _f("AmtInvoice", "Total invoice amount", "decimal"),
                _f("AmtInvoiceCurr", "Total invoice amount foreign currency", "decimal"),
                _f("ExpDate", "Expiry date", "date"),
                _f("Description", "Invoice description", "string", 255),
                _f("Blocked", "Blocked for payment/collection", "boolean"),
            ),
            default_rows=300,
            monotonic=frozenset({"BookPiecrNr", "BookPieceDate"}),
            ordered={"BookPiecrNr": (), "BookPieceDate": ()},
            unique=("BookPiecrNr",),
        ),
        GetConnectorSpec(
            "Profit_Transactions",
            "Financial entries",
            (*_TRANSACTION_FIELDS, *_AMOUNTS, *_TRANSACTION_TAIL),
            default_rows=5000,
            monotonic=_TRANSACTION_MONOTONIC,
            ordered=_TRANSACTION_ORDER,
            unique=("EntryNo", "SeqNo"),
            partition="UnitId",
        ),
        GetConnectorSpec(
            "Profit_Transactions_Allocated",
            "Financial entries (allocated)",
            (
                *_TRANSACTION_FIELDS,
                _f("Omschrijving", "Description", "string", 80),
                *_AMOUNTS,
                *_TRANSACTION_TAIL,
                _f("Type", "Type rekening", "string", 1),
                _f("Collect_On", "Type verzamelrekening", "string", 1, nullable=True),
                *(
                    _f(f"DimAx{n}", f"Exception axis code {n}", "string", 16, nullable=True)
                    for n in range(1, 6)
                ),
            ),
            default_rows=2000,
            monotonic=_TRANSACTION_MONOTONIC,
            ordered=_TRANSACTION_ORDER,
            unique=("EntryNo", "SeqNo"),
            partition="UnitId",
        ),
        GetConnectorSpec(
            "Profit_Fin_ChangedEntrydate",
            "Changed entry day entries",
            (_f("EntryDate", "Entry date", "date"), _f("Modified", "Date changed", "date")),
            default_rows=HISTORY_DAYS,
            monotonic=frozenset({"EntryDate", "Modified"}),
            ordered={"Modified": ()},
        ),
        GetConnectorSpec(
            "Profit_Period_balance",
            "Ledger book (real, budg. reserv. and obl.) /pr.)",
            (
                _f("UnitId", "Administration", "int", 3),
                _f("Year", "Financial year", "int", 4),
                _f("Period", "Period", "int", 3),
                _f("AccountNr", "Account number", "string", 16),
                _f("AccountDesc", "Description", "string", 80),
                _f("Credit", "Credit", "decimal"),
                _f("Debit", "Debit", "decimal"),
                _f("Balance", "Balance", "decimal"),
                _f("Budget", "Bedrag budget", "decimal"),
            ),
            default_rows=len(_UNITS) * (ANCHOR.month) * 32,
            monotonic=frozenset({"UnitId"}),
            ordered={
                "UnitId": (),
                "Year": ("UnitId",),
                "Period": ("UnitId", "Year"),
                "AccountNr": ("UnitId", "Year", "Period"),
            },
            unique=("UnitId", "Year", "Period", "AccountNr"),
        ),
        GetConnectorSpec(
            "Profit_periods_per_administration",
            "Blocked periods per administration",
            (
                _f("Unit", "Admin. without admin. filter", "int", 3),
                _f("Year", "Financial year", "int", 4),
                _f("Period", "Period", "int", 3),
                _f("PeriodDesc", "Description", "string", 40),
                _f("DateFrom", "Date from", "date"),
                _f("DateTo", "Date up to and incl", "date"),
                _f("Blocked", "Blocked", "boolean"),
                _f("Periodtable", "Period table", "int", 3),
                _f("TableDesc", "Description", "string", 40),
            ),
            default_rows=len(_UNITS) * 24,
            monotonic=frozenset({"Unit"}),
            ordered={"Unit": (), "Year": ("Unit",), "Period": ("Unit", "Year")},
            unique=("Unit", "Year", "Period"),
        ),
        GetConnectorSpec(
            "Profit_Allocation_Assigments",
            "Allocation assignment",
            (
                _f("Unit", "Administration", "int", 3),
                _f("Account", "Account number", "string", 16),
                _f("DimAx", "Allocation axis", "string", 2),
                _f("AxDescription", "Description", "string", 40),
                _f("DimCode", "Allocation code", "string", 16),
                _f("CodeDescription", "Description", "string", 40),
            ),
            default_rows=len(_UNITS) * 8 * 2,
            monotonic=frozenset({"Unit"}),
            ordered={"Unit": ()},
        ),
        GetConnectorSpec(
            "Profit_VAT_code",
            "VAT code",
            (
                _f("VatCode", "VAT code", "string", 3),
                _f("Description", "Description", "string", 40),
                _f("AccountNr", "Account", "string", 16, nullable=True),
                _f("VatPerc", "Rate", "decimal"),
                _f("VatDuty", "VAT duty", "string", 1),
                _f("Blocked", "Blocked", "boolean"),
                _f("VatMethod", "Berekeningsmethode", "string", 1),
                _f("VatType", "Code inkoop/verkoop code", "string", 1),
            ),
            default_rows=6,
        ),
        GetConnectorSpec(
            "Profit_DossierItems",
            "Dossier items",
            (
                _f("DossierItemId", "Dossier item", "int"),
                _f("TypeId", "Type dossier item", "int", 4),
                _f("TypeDescription", "Type dossier item description", "string", 40),
                _f("Subject", "Subject", "string", 255),
                _f("UnitId", "Administration", "int", 3),
                _f("DebtorId", "Debtor number", "string", 16, nullable=True),
                _f("CreditorId", "Creditor number", "string", 16, nullable=True),
                _f("InvoiceId", "Invoice number", "string", 12, nullable=True),
                _f("CreatedBy", "Created by", "string", 40),
                _f("Created", "Date created", "date"),
                _f("Modified", "Date changed", "date"),
                _f("Attachment", "Attachment file name", "string", 255, nullable=True),
            ),
            default_rows=500,
            monotonic=frozenset({"DossierItemId", "Modified"}),
            ordered={"DossierItemId": (), "Modified": ()},
            unique=("DossierItemId",),
        ),
    )
}


# ==================================================================================================
# Reference data
# ==================================================================================================
# (code, description, type B/W, sort, collect type, VAT code)
_CHART: tuple[tuple[str, str, str, str, str | None, str | None], ...] = (
    ("0100", "Gebouwen", "B", "A", None, None),
    ("0200", "Inventaris", "B", "A", None, None),
    ("0250", "Vervoermiddelen", "B", "A", None, None),
    ("0300", "Afschrijving inventaris", "B", "A", None, None),
    ("0500", "Eigen vermogen", "B", "P", None, None),
    ("0700", "Langlopende lening", "B", "P", None, None),
    ("1000", "Kas", "B", "A", None, None),
    ("1100", "Bank ING", "B", "A", None, None),
    ("1110", "Bank Rabobank", "B", "A", None, None),
    ("1300", "Debiteuren", "B", "A", "D", None),
    ("1400", "Te vorderen btw", "B", "A", None, None),
    ("1500", "Af te dragen btw hoog", "B", "P", None, None),
    ("1510", "Af te dragen btw laag", "B", "P", None, None),
    ("1600", "Crediteuren", "B", "P", "C", None),
    ("1700", "Te betalen nettolonen", "B", "P", None, None),
    ("1800", "Vraagposten", "B", "A", None, None),
    ("2000", "Tussenrekening", "B", "A", None, None),
    ("3000", "Voorraad", "B", "A", None, None),
    ("4000", "Lonen en salarissen", "W", "K", None, None),
    ("4100", "Sociale lasten", "W", "K", None, None),
    ("4200", "Huisvestingskosten", "W", "K", None, "2"),
    ("4300", "Autokosten", "W", "K", None, "2"),
    ("4400", "Kantoorkosten", "W", "K", None, "2"),
    ("4500", "Verkoopkosten", "W", "K", None, "2"),
    ("4600", "Algemene kosten", "W", "K", None, "2"),
    ("4900", "Afschrijvingen", "W", "K", None, None),
    ("7000", "Inkoopwaarde van de omzet", "W", "K", None, "2"),
    ("8000", "Omzet hoog", "W", "O", None, "2"),
    ("8010", "Omzet laag", "W", "O", None, "1"),
    ("8100", "Omzet diensten", "W", "O", None, "2"),
    ("9000", "Rentebaten", "W", "O", None, None),
    ("9100", "Rentelasten", "W", "K", None, None),
)
_ACCOUNT_NAMES = {code: description for code, description, *_ in _CHART}
_ACCOUNT_TYPES = {code: kind for code, _, kind, *_ in _CHART}
_COLLECT_TYPES = {code: collect for code, _, _, _, collect, _ in _CHART}
_COST_ACCOUNTS = ("4000", "4100", "4200", "4300", "4400", "4500", "4600", "7000")
_ADMINISTRATIONS = (
    (1, "LedgerLink Holding B.V.", "LLH"),
    (2, "LedgerLink Nederland B.V.", "LLNL"),
    (3, "LedgerLink België BV", "LLBE"),
)
# (code, description, type): K = cash, B = bank, I = purchase, V = sales, M = memorial
_JOURNALS = (
    ("10", "Kas", "K"),
    ("20", "Verkoop import", "V"),
    ("50", "Bank ING", "B"),
    ("51", "Bank Rabobank", "B"),
    ("60", "Inkoopboek", "I"),
    ("70", "Verkoopboek", "V"),
    ("90", "Memoriaal", "M"),
    ("95", "Voorraadmutaties", "M"),
)
_JOURNAL_CODES = frozenset(code for code, _, _ in _JOURNALS)
_VAT_CODES = (
    ("0", "Geen btw", None, 0.0, "0", "N", "N"),
    ("1", "Btw laag 9%", "1510", 9.0, "1", "E", "V"),
    ("2", "Btw hoog 21%", "1500", 21.0, "1", "E", "V"),
    ("3", "Btw verlegd", "1500", 21.0, "3", "E", "I"),
    ("4", "Btw export buiten EU", None, 0.0, "4", "N", "V"),
    ("5", "Voorbelasting hoog 21%", "1400", 21.0, "1", "E", "I"),
)
_COST_CENTRES = (("K100", "Directie"), ("K200", "Verkoop"), ("K300", "Uitvoering"), ("K400", "Administratie"))
_COST_CARRIERS = (("D10", "Projecten"), ("D20", "Onderhoud"), ("D30", "Advies"))
_DOSSIER_TYPES = {1: "Algemeen", 2: "Factuur", 3: "Correspondentie", 4: "Contract", 5: "Notitie"}
_USERS = ("12345.LEDGERLINK", "12345.ANNA", "12345.BRAM", "12345.SOPHIE")
_MONTHS = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)  # fmt: skip

# (journal, label, debit account(s), credit account, VAT code, invoice prefix)
_ENTRY_KINDS: tuple[tuple[str, str, tuple[str, ...], str, str | None, str | None], ...] = (
    ("70", "Verkoopfactuur", ("1300",), "8000", "2", "V"),
    ("70", "Verkoopfactuur", ("1300",), "8100", "2", "V"),
    ("70", "Verkoopfactuur", ("1300",), "8010", "1", "V"),
    ("60", "Inkoopfactuur", ("4200", "4300", "4400", "4500", "4600", "7000"), "1600", "5", "I"),
    ("60", "Inkoopfactuur", ("7000",), "1600", "5", "I"),
    ("50", "Ontvangst debiteur", ("1100",), "1300", None, None),
    ("51", "Betaling crediteur", ("1600",), "1110", None, None),
    ("90", "Salarisjournaal", ("4000",), "1700", None, None),
    ("10", "Kasbon", ("4400",), "1000", "5", None),
    ("90", "Afschrijving", ("4900",), "0300", None, None),
)
_VAT_ACCOUNTS = frozenset(code for code, *_ in _CHART if code[0] in "48" or code == "7000")
# A fixed pool of counterparty names: picking from it is much cheaper than composing one per row.
_COUNTERPARTIES = tuple(company_name(RowRandom(0x5EED, n)) for n in range(509))


# ==================================================================================================
# Row generators
# ==================================================================================================
class _World:
    """Everything generators share: seed, timeline bounds, and the other datasets' sizes."""

    def __init__(self, seed: int, counts: Mapping[str, int], anchor: datetime) -> None:
        self.seed = seed
        self.counts = counts
        self.anchor = anchor
        self.start = anchor - timedelta(days=HISTORY_DAYS)
        self.generators: dict[str, _Generator] = {}

    def key(self, name: str) -> int:
        return derive_key(self.seed, "afas", name)

    def generator(self, connector_id: str) -> _Generator:
        return self.generators[connector_id]


class _Generator:
    """Produces row ``i`` of one GetConnector as a tuple in field order."""

    block = 1  # rows per partition block (see _Lane)

    def __init__(self, world: _World, count: int) -> None:
        self.world = world
        self.count = count

    def row(self, i: int) -> tuple[Any, ...]:
        raise NotImplementedError


def _cents(value: int) -> float:
    return value / 100


def _padded(base: int, i: int, count: int) -> str:
    """Zero-padded numbers of one width, so string order equals numeric order."""
    width = max(len(str(base + count)), len(str(base)))
    return str(base + i).zfill(width)


class _Administrations(_Generator):
    def row(self, i: int) -> tuple[Any, ...]:
        if i < len(_ADMINISTRATIONS):
            return _ADMINISTRATIONS[i]
        return (i + 1, f"Administratie {i + 1}", f"ADM{i + 1}")


class _Accounts(_Generator):
    def row(self, i: int) -> tuple[Any, ...]:
        if i < len(_CHART):
            code, description, kind, sort, collect, vat = _CHART[i]
        else:
            code, description, kind, sort, collect, vat = (
                f"99{i:04d}",
                f"Rekening {i}",
                "W",
                "K",
                None,
                None,
            )
        cost = code in _COST_ACCOUNTS
        return (
            code,
            description,
            kind,
            sort,
            False,
            collect is not None,
            collect,
            None,
            None,
            vat is not None,
            vat,
            "J" if kind == "W" else "N",
            "N",
            "K" if cost else None,
            "D" if cost else None,
            None,
            None,
            None,
        )


class _ChangedAccountDescriptions(_Generator):
    def __init__(self, world: _World, count: int) -> None:
        super().__init__(world, count)
        self.key = world.key("Profit_Accounts_ChangedDescription")
        self.timeline = Timeline(world.start, world.anchor, count, self.key)

    def row(self, i: int) -> tuple[Any, ...]:
        code, description, *_ = _CHART[(i * 7) % len(_CHART)]
        rng = RowRandom(self.key, i)
        previous = description.lower() if rng.chance(50) else f"{description} (oud)"
        return (
            code,
            description,
            previous,
            format_wallclock(self.timeline.seconds(i)),
            rng.choice(_USERS),
        )


class _Journals(_Generator):
    def row(self, i: int) -> tuple[Any, ...]:
        unit = i // len(_JOURNALS) + 1
        code, description, kind = _JOURNALS[i % len(_JOURNALS)]
        return (unit, code, description, kind, code == "20")


class _Relations(_Generator):
    """Debtors (``creditor=False``) or creditors; ids are numbered from 10000 / 50000."""

    def __init__(self, world: _World, count: int, creditor: bool) -> None:
        super().__init__(world, count)
        self.creditor = creditor
        self.base = 50000 if creditor else 10000
        self.key = world.key("Profit_Creditor" if creditor else "Profit_Debtor")
        self.timeline = Timeline(world.start, world.anchor, count, self.key)

    def relation_id(self, i: int) -> str:
        return _padded(self.base, i, self.count)

    def row(self, i: int) -> tuple[Any, ...]:
        rng = RowRandom(self.key, i)
        name = company_name(rng)
        street, city = street_address(rng)
        modified = self.timeline.seconds(i)
        created = modified - rng.between(1, 1500) * 86400 - rng.between(0, 86399)
        email = f"administratie@{re.sub(r'[^a-z]', '', name.lower())[:20]}.nl" if rng.chance(85) else None
        vat = f"NL{rng.digits(9)}B01" if rng.chance(90) else None
        coc = rng.digits(8) if rng.chance(90) else None
        account = iban(rng) if rng.chance(92) else None
        search = re.sub(r"[^A-Z]", "", name.upper())[:10]
        common = (
            self.relation_id(i),
            name,
            str(100000 + i),
            search,
            street,
            city,
            "Nederland",
            phone_number(rng) if rng.chance(80) else None,
            email,
            account,
            vat,
            coc,
        )
        limit = _cents(rng.between(0, 50) * 100_000)
        blocked = rng.chance(3)
        auto = rng.chance(30)
        if self.creditor:
            return (
                *common,
                rng.choice(("14", "30", "30", "60")),
                limit,
                rng.chance(2),
                "1",
                auto,
                blocked,
                format_wallclock(created),
                format_wallclock(modified),
            )
        return (
            *common,
            "1300",
            rng.choice(("14", "30", "30", "60")),
            "1",
            blocked,
            limit,
            "EUR",
            auto,
            format_wallclock(created),
            format_wallclock(modified),
        )


class _OpenItems(_Generator):
    """Outstanding receivables (``creditor=False``) or payables, dated over the last 120 days."""

    def __init__(self, world: _World, count: int, creditor: bool) -> None:
        super().__init__(world, count)
        self.creditor = creditor
        name = "Profit_Creditor_Invoices" if creditor else "Profit_Debtor_Invoices"
        self.key = world.key(name)
        self.timeline = Timeline(world.anchor - timedelta(days=120), world.anchor, count, self.key)

    def row(self, i: int) -> tuple[Any, ...]:
        rng = RowRandom(self.key, i)
        relations = self.world.generator("Profit_Creditor" if self.creditor else "Profit_Debtor")
        assert isinstance(relations, _Relations)
        relation = relations.relation_id(rng.below(max(relations.count, 1)))
        day = self.timeline.seconds(i) // 86400
        expiry = day + (14, 30, 30, 60)[rng.below(4)]
        unit = _UNITS[rng.below(len(_UNITS))]
        foreign = rng.chance(5)
        amount = rng.between(2500, 2_500_000)
        rate = 1.0 if not foreign else 1.08
        if self.creditor:
            return (
                unit,
                relation,
                f"F{rng.digits(2)}-{rng.digits(5)}",
                _padded(700000, i, self.count),
                format_day(day),
                "USD" if foreign else "EUR",
                _cents(amount),
                round(amount * rate) / 100,
                format_day(expiry),
                f"Inkoopfactuur {company_name(rng)}",
                rng.chance(4),
            )
        paid = rng.between(0, amount) if rng.chance(25) else 0
        return (
            unit,
            relation,
            _padded(26_000_000, i, self.count),
            format_day(day),
            format_day(expiry),
            "USD" if foreign else "EUR",
            _cents(amount),
            round(amount * rate) / 100,
            _cents(amount - paid),
            round((amount - paid) * rate) / 100,
            f"Factuur {_MONTHS[(day % 365) // 31 % 12]} {rng.choice(('diensten', 'levering', 'onderhoud', 'advies'))}",
        )


class _Transactions(_Generator):
    """Journal entries of two lines (debit, credit) each, spread over the administrations.

    Row ``i`` is line ``i % 2`` of entry ``i // 2``. Entries are numbered in time order and rotate
    over the administrations, so ``EntryNo``, ``Created``, ``Modified`` and ``EntryDate`` never
    decrease with ``i``, and the rows of one administration form a regular lane.
    """

    block = 2
    entry_base = 100_000

    def __init__(self, world: _World, count: int, name: str = "Profit_Transactions") -> None:
        super().__init__(world, count + count % 2)
        self.entries = self.count // 2
        self.key = world.key(name)
        self.timeline = Timeline(world.start, world.anchor, self.entries, self.key)
        self._days: dict[int, tuple[str, int, int]] = {}
        self._last: tuple[int, tuple[Any, ...]] = (-1, ())

    def _day(self, day: int) -> tuple[str, int, int]:
        cached = self._days.get(day)
        if cached is None:
            text = format_day(day)
            cached = (text, int(text[:4]), int(text[5:7]))
            if len(self._days) < 100_000:
                self._days[day] = cached
        return cached

    def last_entry_before(self, seconds: int) -> int:
        """The number of entries with a timestamp before ``seconds``."""
        return bisect.bisect_left(range(self.entries), seconds, key=self.timeline.seconds)

    def _entry(self, k: int) -> tuple[Any, ...]:
        """Values shared by both lines of entry ``k``; the last one is kept, as lines come in pairs."""
        last = self._last
        if last[0] == k:
            return last[1]
        h = row_hash(self.key, k)
        seconds = self.timeline.seconds(k)
        day = seconds // 86400
        entry_date, year, period = self._day(day)
        journal, label, debit_accounts, credit_account, vat_code, prefix = _ENTRY_KINDS[h % len(_ENTRY_KINDS)]
        cents = 500 + (h >> 8) % 2_500_000
        if cents > 500_000 and (h >> 40) & 3:
            cents //= 10  # most entries are small, a few are large
        if prefix:
            invoice: str | None = f"{prefix}{26_000_000 + k}"
            description = f"{label} {invoice} {_COUNTERPARTIES[(h >> 52) % len(_COUNTERPARTIES)]}"
        else:
            invoice = None
            description = f"{label} {_MONTHS[period - 1]} {year}"
        if vat_code is not None:
            rate = 9 if vat_code == "1" else 21
            vat_amount: float | None = round(cents * rate / (100 + rate)) / 100
        else:
            vat_amount = None
        entry = (
            _UNITS[k % len(_UNITS)],
            self.entry_base + k,
            year,
            period,
            journal,
            debit_accounts[(h >> 32) % len(debit_accounts)],
            credit_account,
            cents / 100,
            entry_date,
            invoice,
            self._day(day - (h >> 48) % 10)[0],
            f"{journal}-{k:07d}",
            vat_code,
            vat_amount,
            description,
            format_wallclock(seconds),
        )
        self._last = (k, entry)
        return entry

    def _line(self, i: int) -> tuple[Any, ...]:
        k, line = divmod(i, 2)
        (
            unit,
            number,
            year,
            period,
            journal,
            debit_account,
            credit_account,
            amount,
            entry_date,
            invoice,
            voucher_date,
            voucher_no,
            vat_code,
            vat_amount,
            description,
            stamp,
        ) = self._entry(k)
        if line == 0:
            account, debit, credit = debit_account, amount, 0.0
        else:
            account, debit, credit = credit_account, 0.0, amount
        if vat_code is None or account not in _VAT_ACCOUNTS:
            vat_code = vat_amount = None
        return (
            unit,
            number,
            line + 1,
            year,
            period,
            journal,
            account,
            debit,
            credit,
            entry_date,
            invoice,
            voucher_date,
            voucher_no,
            vat_code,
            vat_amount,
            description,
            stamp,
            stamp,
        )

    def row(self, i: int) -> tuple[Any, ...]:
        return self._line(i)


class _AllocatedTransactions(_Transactions):
    def __init__(self, world: _World, count: int) -> None:
        super().__init__(world, count, "Profit_Transactions_Allocated")

    def row(self, i: int) -> tuple[Any, ...]:
        base = self._line(i)
        account = base[6]
        kind = _ACCOUNT_TYPES.get(account, "W")
        if kind == "W":
            h = row_hash(self.key, i, salt=1)
            centre: str | None = _COST_CENTRES[h % len(_COST_CENTRES)][0]
            carrier: str | None = _COST_CARRIERS[(h >> 8) % len(_COST_CARRIERS)][0]
        else:
            centre = carrier = None
        return (
            *base[:7],
            _ACCOUNT_NAMES.get(account, account),
            *base[7:],
            kind,
            _COLLECT_TYPES.get(account),
            centre,
            carrier,
            None,
            None,
            None,
        )


class _ChangedEntryDates(_Generator):
    """One row per day of the transaction timeline: the day and the last change on it."""

    def __init__(self, world: _World, count: int) -> None:
        super().__init__(world, count)
        self.first_day = wallclock_seconds(world.anchor) // 86400 - count

    def row(self, i: int) -> tuple[Any, ...]:
        transactions = self.world.generator("Profit_Transactions")
        assert isinstance(transactions, _Transactions)
        day = self.first_day + i
        last = transactions.last_entry_before((day + 1) * 86400) - 1
        seconds = transactions.timeline.seconds(last) if last >= 0 else -1
        if seconds // 86400 != day:
            seconds = day * 86400 + 17 * 3600  # nothing booked that day: a late-afternoon change
        return (format_day(day), format_wallclock(seconds))


class _PeriodBalances(_Generator):
    def row(self, i: int) -> tuple[Any, ...]:
        accounts = len(_CHART)
        periods = ANCHOR.month
        code, description, kind, *_ = _CHART[i % accounts]
        period = (i // accounts) % periods + 1
        unit = i // (accounts * periods) + 1
        h = row_hash(self.world.key("Profit_Period_balance"), i)
        debit = (h % 5_000_000) if kind == "W" or h & 1 else 0
        credit = ((h >> 24) % 5_000_000) if kind == "B" or h & 2 else 0
        budget = round((debit - credit) * (0.8 + ((h >> 48) % 40) / 100) / 100) * 100
        return (
            unit,
            ANCHOR.year,
            period,
            code,
            description,
            credit / 100,
            debit / 100,
            (debit - credit) / 100,
            budget / 100,
        )


class _Periods(_Generator):
    def row(self, i: int) -> tuple[Any, ...]:
        unit = i // 24 + 1
        year = ANCHOR.year - 1 + (i // 12) % 2
        period = i % 12 + 1
        first = datetime(year, period, 1)
        last = (datetime(year + (period == 12), period % 12 + 1, 1)) - timedelta(days=1)
        blocked = (year, period) < (ANCHOR.year, ANCHOR.month - 1)
        return (
            unit,
            year,
            period,
            f"{_MONTHS[period - 1].capitalize()} {year}",
            format_day(wallclock_seconds(first) // 86400),
            format_day(wallclock_seconds(last) // 86400),
            blocked,
            1,
            "Kalendermaanden",
        )


class _AllocationAssignments(_Generator):
    def row(self, i: int) -> tuple[Any, ...]:
        unit = i // (len(_COST_ACCOUNTS) * 2) + 1
        account = _COST_ACCOUNTS[(i // 2) % len(_COST_ACCOUNTS)]
        h = row_hash(self.world.key("Profit_Allocation_Assigments"), i)
        if i % 2 == 0:
            code, description = _COST_CENTRES[h % len(_COST_CENTRES)]
            return (unit, account, "01", "Kostenplaats", code, description)
        code, description = _COST_CARRIERS[h % len(_COST_CARRIERS)]
        return (unit, account, "02", "Kostendrager", code, description)


class _VatCodes(_Generator):
    def row(self, i: int) -> tuple[Any, ...]:
        code, description, account, rate, duty, method, kind = _VAT_CODES[i % len(_VAT_CODES)]
        if i >= len(_VAT_CODES):
            code = f"{code}{i // len(_VAT_CODES)}"
        return (code, description, account, rate, duty, False, method, kind)


class _DossierItems(_Generator):
    id_base = 1000

    def __init__(self, world: _World, count: int) -> None:
        super().__init__(world, count)
        self.key = world.key("Profit_DossierItems")
        self.timeline = Timeline(world.start, world.anchor, count, self.key)

    def row(self, i: int) -> tuple[Any, ...]:
        rng = RowRandom(self.key, i)
        type_id = rng.between(1, len(_DOSSIER_TYPES))
        modified = self.timeline.seconds(i)
        created = modified - rng.between(0, 30) * 86400 - rng.between(0, 3600)
        debtors = self.world.generator("Profit_Debtor")
        creditors = self.world.generator("Profit_Creditor")
        assert isinstance(debtors, _Relations) and isinstance(creditors, _Relations)
        debtor = creditor = invoice = None
        if rng.chance(50):
            debtor = debtors.relation_id(rng.below(max(debtors.count, 1)))
            invoice = f"V{26_000_000 + rng.below(100_000)}" if type_id == 2 else None
        elif rng.chance(60):
            creditor = creditors.relation_id(rng.below(max(creditors.count, 1)))
        subject = {
            1: "Afspraak over betalingsregeling",
            2: "Factuur verzonden per e-mail",
            3: "Brief inzake openstaande posten",
            4: "Raamovereenkomst",
            5: "Telefoonnotitie",
        }[type_id]
        attachment = f"{type_id}-{self.id_base + i}.pdf" if type_id in (2, 3, 4) else None
        return (
            self.id_base + i,
            type_id,
            _DOSSIER_TYPES[type_id],
            f"{subject} ({person_name(rng)})",
            _UNITS[rng.below(len(_UNITS))],
            debtor,
            creditor,
            invoice,
            rng.choice(_USERS),
            format_wallclock(created),
            format_wallclock(modified),
            attachment,
        )


_GENERATORS: dict[str, Callable[[_World, int], _Generator]] = {
    "Profit_Administrations": _Administrations,
    "Profit_Accounts": _Accounts,
    "Profit_Accounts_ChangedDescription": _ChangedAccountDescriptions,
    "Profit_Journals": _Journals,
    "Profit_Debtor": lambda world, count: _Relations(world, count, creditor=False),
    "Profit_Creditor": lambda world, count: _Relations(world, count, creditor=True),
    "Profit_Debtor_Invoices": lambda world, count: _OpenItems(world, count, creditor=False),
    "Profit_Creditor_Invoices": lambda world, count: _OpenItems(world, count, creditor=True),
    "Profit_Transactions": _Transactions,
    "Profit_Transactions_Allocated": _AllocatedTransactions,
    "Profit_Fin_ChangedEntrydate": _ChangedEntryDates,
    "Profit_Period_balance": _PeriodBalances,
    "Profit_periods_per_administration": _Periods,
    "Profit_Allocation_Assigments": _AllocationAssignments,
    "Profit_VAT_code": _VatCodes,
    "Profit_DossierItems": _DossierItems,
}


class _Inserted(tuple[Any, ...]):
    """A row that came in through an UpdateConnector (encoded the careful way: any field may be null)."""

    __slots__ = ()


class _Dataset:
    """One GetConnector: its generator, the rows inserted at runtime, and its JSON encoder."""

    def __init__(self, spec: GetConnectorSpec, generator: _Generator) -> None:
        self.spec = spec
        self.generator = generator
        self.count = generator.count
        self.row = generator.row
        self.names = [f.id for f in spec.fields]
        self.positions = {f.id.lower(): (n, f) for n, f in enumerate(spec.fields)}
        self.inserted: list[_Inserted] = []
        #: Keys (first column) of generated rows an UpdateConnector changed or deleted: the changed
        #: version lives in ``inserted``, the generated one is no longer served.
        self.hidden: set[Any] = set()
        self._fast = compile_row_encoder(
            [(f.id, _ENCODER_KINDS[f.data_type], f.nullable) for f in spec.fields]
        )
        self._safe = compile_row_encoder([(f.id, _ENCODER_KINDS[f.data_type], True) for f in spec.fields])

    def lookup(self, name: str) -> tuple[int, ConnectorField]:
        found = self.positions.get(name.strip().lower())
        if found is None:
            raise _field_not_found(name.strip())
        return found

    def encode(self, row: tuple[Any, ...]) -> str:
        return self._safe(row) if type(row) is _Inserted else self._fast(row)


# ==================================================================================================
# Query engine: filters, ordering, paging
# ==================================================================================================
_OPERATORS = range(1, 16)
_RANGE_OPERATORS = (1, 2, 3, 4, 5)
_TEXT_OPERATORS = (6, 10, 11, 12, 13, 14, 15)


def _comparable(data_type: str, value: Any) -> Any:
    """A row value in the form filters compare it in."""
    if data_type == "string":
        return value.casefold()
    if data_type == "date":
        return value[:19]
    return value


def _filter_value(spec_field: ConnectorField, raw: str) -> Any:
    text = raw.strip()
    data_type = spec_field.data_type
    try:
        if data_type == "int":
            number = float(text.replace(",", "."))
            if number != int(number):
                raise ValueError(text)
            return int(number)
        if data_type == "decimal":
            return float(text.replace(",", "."))
        if data_type == "boolean":
            lowered = text.lower()
            if lowered in ("1", "true", "ja", "yes", "-1"):
                return True
            if lowered in ("0", "false", "nee", "no"):
                return False
            raise ValueError(text)
        if data_type == "date":
            seconds = parse_wallclock(text)
            if seconds is None:
                raise ValueError(text)
            return format_wallclock(seconds, "")
    except ValueError:
        raise AfasError(
            f"The value '{raw}' is not valid for field '{spec_field.id}' ({spec_field.label}).",
            VALUE_ERROR_NUMBER,
        ) from None
    return text.casefold()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


@dataclass
class _Condition:
    index: int
    field: ConnectorField
    operator: int
    raw: str

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise _unexpected()
        raw = self.raw
        if raw in ('""', "''"):
            raw = ""
        if self.operator in _TEXT_OPERATORS:
            self.value: Any = raw.strip().strip("%").casefold()
        elif self.operator in (8, 9):
            self.value = None
        else:
            self.value = _filter_value(self.field, raw)

    def test(self) -> Callable[[Sequence[Any]], bool]:
        """A fast predicate on row tuples."""
        index, value, data_type = self.index, self.value, self.field.data_type
        op = self.operator

        def key(row: Sequence[Any]) -> Any:
            cell = row[index]
            return None if cell is None else _comparable(data_type, cell)

        if op == 1:
            return lambda row: key(row) == value
        if op == 2:
            return lambda row: (k := key(row)) is not None and k >= value
        if op == 3:
            return lambda row: (k := key(row)) is not None and k <= value
        if op == 4:
            return lambda row: (k := key(row)) is not None and k > value
        if op == 5:
            return lambda row: (k := key(row)) is not None and k < value
        if op == 7:
            return lambda row: key(row) != value
        if op == 8:
            return lambda row: row[index] is None or row[index] == ""
        if op == 9:
            return lambda row: not (row[index] is None or row[index] == "")
        if op in (6, 15):
            return lambda row: row[index] is not None and value in _text(row[index])
        if op == 11:
            return lambda row: row[index] is None or value not in _text(row[index])
        if op == 10:
            return lambda row: row[index] is not None and _text(row[index]).startswith(value)
        if op == 12:
            return lambda row: row[index] is None or not _text(row[index]).startswith(value)
        if op == 13:
            return lambda row: row[index] is not None and _text(row[index]).endswith(value)
        return lambda row: row[index] is None or not _text(row[index]).endswith(value)


Predicate = Callable[[Sequence[Any]], bool]


def _predicate(groups: Sequence[Sequence[_Condition]]) -> Predicate | None:
    """OR over groups of AND-ed conditions; ``None`` when there is nothing to test."""
    compiled = [[condition.test() for condition in group] for group in groups if group]
    if not compiled:
        return None
    if len(compiled) == 1:
        tests = compiled[0]
        if len(tests) == 1:
            return tests[0]
        return lambda row: all(test(row) for test in tests)
    return lambda row: any(all(test(row) for test in tests) for tests in compiled)


def _split(text: str | None, separator: str) -> list[str]:
    return [] if text is None else text.split(separator)


def _parse_simple_filters(dataset: _Dataset, request: Request) -> list[list[_Condition]]:
    ids = request.param("filterfieldids")
    if ids is None or ids == "":
        return []
    values = request.param("filtervalues")
    operators = request.param("operatortypes")
    id_groups = [group.split(",") for group in ids.split(";")]
    value_groups = [group.split(",") for group in values.split(";")] if values is not None else None
    operator_groups = [group.split(",") for group in operators.split(";")] if operators is not None else None
    groups: list[list[_Condition]] = []
    for g, names in enumerate(id_groups):
        group: list[_Condition] = []
        for n, name in enumerate(names):
            index, spec_field = dataset.lookup(name)
            try:
                raw = value_groups[g][n] if value_groups is not None else ""
                op_text = operator_groups[g][n] if operator_groups is not None else "1"
                operator = int(op_text)
            except (IndexError, ValueError):
                raise _unexpected() from None
            group.append(_Condition(index, spec_field, operator, raw))
        groups.append(group)
    return groups


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _parse_json_filters(dataset: _Dataset, text: str) -> list[list[_Condition]]:
    try:
        document = json.loads(text)
        filters = _as_list(document["Filters"]["Filter"])
    except (ValueError, KeyError, TypeError):
        raise AfasError("The filter (filterjson) is not valid.") from None
    groups: list[list[_Condition]] = []
    for item in filters:
        if not isinstance(item, dict):
            raise AfasError("The filter (filterjson) is not valid.")
        group: list[_Condition] = []
        for spec in _as_list(item.get("Field")):
            if not isinstance(spec, dict) or "@FieldId" not in spec:
                raise AfasError("The filter (filterjson) is not valid.")
            index, spec_field = dataset.lookup(str(spec["@FieldId"]))
            try:
                operator = int(spec.get("@OperatorType", 1))
            except (TypeError, ValueError):
                raise _unexpected() from None
            raw = spec.get("#text", "")
            group.append(_Condition(index, spec_field, operator, "" if raw is None else str(raw)))
        groups.append(group)
    return groups


def _parse_order(dataset: _Dataset, text: str | None) -> list[tuple[str, int, bool]]:
    """``[(field id, tuple index, descending)]`` from ``orderbyfieldids``."""
    order: list[tuple[str, int, bool]] = []
    for item in _split(text, ","):
        name = item.strip()
        if not name:
            continue
        descending = name.startswith("-")
        index, spec_field = dataset.lookup(name.lstrip("-"))
        order.append((spec_field.id, index, descending))
    return order


class _Lane:
    """Generated rows ``i`` in ``[lo, hi)`` whose block ``i // block`` is ``phase`` modulo ``stride``.

    With ``stride == 1`` this is just ``range(lo, hi)``. With ``stride == 3`` and ``block == 2`` it is
    the rows of one administration in a rotation of three: counting and indexing stay O(1).
    """

    __slots__ = ("block", "phase", "start", "stop", "stride")

    def __init__(self, block: int, stride: int, phase: int, lo: int, hi: int) -> None:
        self.block, self.stride, self.phase = block, stride, phase
        self.start = self._rank(lo)
        self.stop = max(self.start, self._rank(hi))

    def _rank(self, x: int) -> int:
        """How many lane rows have a row number below ``x``."""
        if self.stride == 1:
            return x
        full, rest = divmod(x, self.block * self.stride)
        return full * self.block + min(max(rest - self.phase * self.block, 0), self.block)

    def __len__(self) -> int:
        return self.stop - self.start

    def row_numbers(self, first: int, last: int, descending: bool) -> Iterable[int]:
        """Row numbers of lane positions ``[first, last)`` (counted from the end when descending)."""
        if descending:
            first, last = len(self) - last, len(self) - first
        if self.stride == 1:
            numbers: Iterable[int] = range(self.start + first, self.start + last)
        else:
            block, stride, phase = self.block, self.stride, self.phase
            numbers = (
                (phase + (q // block) * stride) * block + q % block
                for q in range(self.start + first, self.start + last)
            )
        return reversed(list(numbers)) if descending else numbers


@dataclass
class _Segment:
    """A run of result candidates in output order: a lane of generated rows or a list of rows."""

    dataset: _Dataset
    predicate: Predicate | None
    lane: _Lane | None = None
    descending: bool = False
    rows: list[tuple[Any, ...]] | None = None

    def __len__(self) -> int:
        return len(self.lane) if self.lane is not None else len(self.rows or ())

    def slice(self, first: int, last: int) -> Iterator[tuple[Any, ...]]:
        if self.lane is None:
            yield from (self.rows or [])[first:last]
            return
        row = self.dataset.row
        for i in self.lane.row_numbers(first, last, self.descending):
            yield row(i)


def _range_bounds(dataset: _Dataset, conditions: Iterable[_Condition], lo: int, hi: int) -> tuple[int, int]:
    """Narrow ``[lo, hi)`` with range conditions on fields that never decrease with the row number."""
    row = dataset.row
    for condition in conditions:
        index, data_type = condition.index, condition.field.data_type

        def key(i: int, index: int = index, data_type: str = data_type) -> Any:
            return _comparable(data_type, row(i)[index])

        value, op = condition.value, condition.operator
        if op in (1, 2):
            lo = max(lo, bisect.bisect_left(range(dataset.count), value, lo, hi, key=key))
        if op == 4:
            lo = max(lo, bisect.bisect_right(range(dataset.count), value, lo, hi, key=key))
        if op in (1, 3):
            hi = min(hi, bisect.bisect_right(range(dataset.count), value, lo, hi, key=key))
        if op == 5:
            hi = min(hi, bisect.bisect_left(range(dataset.count), value, lo, hi, key=key))
        if hi <= lo:
            return lo, lo
    return lo, hi


def _order_shape(spec: GetConnectorSpec, order: Sequence[tuple[str, int, bool]]) -> str:
    """``natural`` (row order), ``partition`` (per administration, then row order) or ``sort``.

    Fields after a complete unique key are ignored: they cannot break ties that do not exist.
    """
    if not order:
        return "natural"
    items = list(order)
    shape = "natural"
    direction = items[0][2]
    if spec.partition and items[0][0] == spec.partition:
        items = items[1:]
        shape = "partition"
    seen: set[str] = set()
    for name, _, descending in items:
        if spec.unique and set(spec.unique) <= seen:
            break
        needs = spec.ordered.get(name)
        if descending != direction or needs is None or not set(needs) <= seen:
            return "sort"
        seen.add(name)
    return shape


def _sort_key(data_type: str, index: int) -> Callable[[Sequence[Any]], Any]:
    def key(row: Sequence[Any]) -> Any:
        value = row[index]
        return (0, 0) if value is None else (1, _comparable(data_type, value))

    return key


def _sort(rows: list[tuple[Any, ...]], dataset: _Dataset, order: Sequence[tuple[str, int, bool]]) -> None:
    for name, index, descending in reversed(order):
        data_type = dataset.positions[name.lower()][1].data_type
        rows.sort(key=_sort_key(data_type, index), reverse=descending)


def _run_get_connector(
    dataset: _Dataset,
    groups: list[list[_Condition]],
    order: list[tuple[str, int, bool]],
    skip: int,
    take: int | None,
) -> list[tuple[Any, ...]]:
    """Rows ``skip .. skip+take`` of the filtered, ordered connector (``take=None``: all of them)."""
    spec = dataset.spec
    inserted: list[tuple[Any, ...]] = list(dataset.inserted)
    lo, hi = 0, dataset.count
    units: Sequence[int] | None = None
    generated_groups = groups
    if len(groups) == 1:
        rest: list[_Condition] = []
        bisectable: list[_Condition] = []
        for condition in groups[0]:
            name = condition.field.id
            if name in spec.monotonic and condition.operator in _RANGE_OPERATORS:
                bisectable.append(condition)
            elif name == spec.partition and condition.operator == 1:
                units = [u for u in (units if units is not None else _UNITS) if u == condition.value]
            else:
                rest.append(condition)
        lo, hi = _range_bounds(dataset, bisectable, lo, hi)
        generated_groups = [rest] if rest else []
    generated_predicate = _without_hidden(_predicate(generated_groups), dataset.hidden)
    inserted_predicate = _predicate(groups)
    # A changed generated row sits among the inserted ones, out of the generated order: sort.
    shape = "sort" if dataset.hidden else _order_shape(spec, order)
    descending = bool(order) and order[0][2]
    block, stride = dataset.generator.block, len(_UNITS)

    if shape == "sort":
        if hi - lo + len(inserted) > MAX_RESULT_ROWS:
            raise _out_of_memory()
        if units is not None and spec.partition:
            lanes = [_Lane(block, stride, _UNITS.index(u), lo, hi) for u in units]
        else:
            lanes = [_Lane(1, 1, 0, lo, hi)]
        candidates = [row for lane in lanes for row in _Segment(dataset, None, lane).slice(0, len(lane))]
        if dataset.hidden:
            candidates = [row for row in candidates if row[0] not in dataset.hidden]
        candidates += inserted
        if inserted_predicate is not None:
            candidates = [row for row in candidates if inserted_predicate(row)]
        _sort(candidates, dataset, order)
        end = len(candidates) if take is None else skip + take
        return candidates[skip:end]

    if inserted and order:
        # Inserted records always come after the generated ones on the ordered fields (they get
        # higher numbers and later timestamps); among themselves they still need sorting.
        _sort(inserted, dataset, [(name, index, False) for name, index, _ in order])
    segments: list[_Segment] = []
    if shape == "partition" or (units is not None and spec.partition):
        partition_index = dataset.positions[spec.partition.lower()][0] if spec.partition else 0
        for unit in units if units is not None else _UNITS:
            lane = _Lane(block, stride, _UNITS.index(unit), lo, hi)
            segments.append(_Segment(dataset, generated_predicate, lane, descending))
            mine = [row for row in inserted if row[partition_index] == unit]
            segments.append(_Segment(dataset, inserted_predicate, rows=mine[::-1] if descending else mine))
    else:
        segments.append(_Segment(dataset, generated_predicate, _Lane(1, 1, 0, lo, hi), descending))
        segments.append(
            _Segment(dataset, inserted_predicate, rows=inserted[::-1] if descending else inserted)
        )
    if descending:
        segments.reverse()
    return _collect(segments, skip, take)


def _without_hidden(predicate: Predicate | None, hidden: set[Any]) -> Predicate | None:
    """``predicate``, also refusing generated rows whose key an UpdateConnector replaced."""
    if not hidden:
        return predicate
    if predicate is None:
        return lambda row: row[0] not in hidden
    return lambda row: row[0] not in hidden and predicate(row)


def _collect(segments: Sequence[_Segment], skip: int, take: int | None) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    remaining = take
    for segment in segments:
        if remaining == 0:
            break
        size = len(segment)
        if segment.predicate is None:
            if skip >= size:
                skip -= size
                continue
            last = size if remaining is None else min(size, skip + remaining)
            if len(out) + last - skip > MAX_RESULT_ROWS:
                raise _out_of_memory()
            out.extend(segment.slice(skip, last))
            if remaining is not None:
                remaining -= last - skip
            skip = 0
            continue
        predicate = segment.predicate
        for row in segment.slice(0, size):
            if not predicate(row):
                continue
            if skip:
                skip -= 1
                continue
            out.append(row)
            if len(out) > MAX_RESULT_ROWS:
                raise _out_of_memory()
            if remaining is not None:
                remaining -= 1
                if remaining == 0:
                    break
    return out


# ==================================================================================================
# UpdateConnectors
# ==================================================================================================
@dataclass(frozen=True)
class UpdateField:
    id: str
    label: str
    data_type: str = "string"
    length: int = 0
    mandatory: bool = False
    primary_key: bool = False

    def metainfo(self) -> dict[str, Any]:
        return {
            "fieldId": self.id,
            "primaryKey": self.primary_key,
            "dataType": self.data_type,
            "label": self.label,
            "mandatory": self.mandatory,
            "length": self.length,
            "controlType": _CONTROL_TYPES[self.data_type],
            "decimals": 2 if self.data_type == "decimal" else 0,
            "decimalsFieldId": "",
            "notzero": False,
            "values": [],
        }


@dataclass(frozen=True)
class UpdateObject:
    """An object of an UpdateConnector (``FiEntryPar`` with its sub-object ``FiEntries``)."""

    name: str
    description: str
    fields: tuple[UpdateField, ...]
    objects: tuple[UpdateObject, ...] = ()

    def field(self, name: str) -> UpdateField | None:
        for item in self.fields:
            if item.id.lower() == name.lower():
                return item
        return None

    def metainfo(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "fields": [item.metainfo() for item in self.fields],
            "objects": [item.metainfo() for item in self.objects],
        }


@dataclass(frozen=True)
class UpdateConnectorSpec:
    id: str
    root: UpdateObject
    methods: tuple[str, ...]
    key_fields: tuple[str, ...]


def _u(
    id: str,
    label: str,
    data_type: str = "string",
    length: int = 0,
    mandatory: bool = False,
    key: bool = False,
) -> UpdateField:
    if not length:
        length = {"int": 9, "decimal": 15, "date": 10, "boolean": 1}.get(data_type, 80)
    return UpdateField(id, label, data_type, length, mandatory, key)


UPDATE_CONNECTORS: dict[str, UpdateConnectorSpec] = {
    spec.id: spec
    for spec in (
        UpdateConnectorSpec(
            "FiEntries",
            UpdateObject(
                "FiEntryPar",
                "Financiële mutatie",
                (
                    _u("Year", "Financial year", "int", 4, mandatory=True),
                    _u("Peri", "Period", "int", 3, mandatory=True),
                    _u("UnId", "Administration number", "int", 3, mandatory=True),
                    _u("JoCo", "Journal", "string", 6, mandatory=True),
                    _u("AdDc", "Maak verbijzonderingscode", "boolean"),
                    _u("AdDa", "Maak verbijzonderingstoewijzing", "boolean"),
                    _u("PrTp", "Entry type", "int"),
                    _u("AuNu", "Autonummering factuur", "boolean"),
                ),
                (
                    UpdateObject(
                        "FiEntries",
                        "Boekingsregels",
                        (
                            _u("EnNo", "Journal entry number", "int"),
                            _u("VaAs", "Account feature", "string", 10, mandatory=True),
                            _u("AcNr", "Account number", "string", 16, mandatory=True),
                            _u("EnDa", "Date entry", "date", mandatory=True),
                            _u("BpDa", "Voucher date", "date"),
                            _u("BpNr", "Entry number", "string", 32),
                            _u("InId", "Invoice number", "string", 12),
                            _u("Ds", "Description entry", "string", 255),
                            _u("AmDe", "Amount debit", "decimal"),
                            _u("AmCr", "Amount credit", "decimal"),
                            _u("VaId", "VAT code", "string", 3),
                            _u("CoVc", "VAT reclaim", "string", 16),
                            _u("CuId", "Currency", "string", 3),
                            _u("Rate", "Exchange rate", "decimal"),
                            _u("AmDc", "Debit currency amount", "decimal"),
                            _u("AmCc", "Credit currency amount", "decimal"),
                            _u("DaEx", "Expiry date", "date"),
                            _u("PaId", "Payment reference", "string", 32),
                            _u("Judg", "Reviewer", "string", 15),
                            _u("BlPa", "Block for payment", "boolean"),
                            _u("PaCd", "Payment condition", "string", 5),
                            _u("AuPa", "Automatic payment/collection", "boolean"),
                            _u("OrNu", "Sales order number", "string", 12),
                            _u("Mref", "Reconciliation reference", "string", 32),
                            _u("Fref", "Invoice reference", "string", 32),
                            _u("PrId", "Project", "string", 15),
                        ),
                        (
                            UpdateObject(
                                "FiDimEntries",
                                "Verbijzondering",
                                (
                                    *(
                                        _u(f"DiC{n}", f"Exception axis code {n}", "string", 16)
                                        for n in range(1, 6)
                                    ),
                                    _u("AmDe", "Amount debit", "decimal"),
                                    _u("AmCr", "Amount credit", "decimal"),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
            methods=("POST",),
            key_fields=("Year", "UnId", "EnNo"),
        ),
        UpdateConnectorSpec(
            "KnSubject",
            UpdateObject(
                "KnSubject",
                "Dossieritem",
                (
                    _u("SbId", "Dossier item", "int", key=True),
                    _u("StId", "Type dossier item", "int", 4, mandatory=True),
                    _u("Ds", "Subject", "string", 255, mandatory=True),
                    _u("SbTx", "Comment", "string", 4000),
                    _u("Da", "Date", "date"),
                    _u("EmId", "Employee", "string", 15),
                    _u("St", "Done", "boolean"),
                ),
                (
                    UpdateObject(
                        "KnSubjectLink",
                        "Bestemming",
                        (
                            _u("UnId", "Administration", "int", 3),
                            _u("SfTp", "Destination type (2 = debtor, 3 = creditor)", "int", 2),
                            _u("SfId", "Destination", "string", 16),
                            _u("InId", "Invoice number", "string", 12),
                        ),
                    ),
                    UpdateObject(
                        "KnSubjectAttachment",
                        "Bijlage",
                        (
                            _u("FileName", "File name", "string", 255),
                            _u("FileStream", "File (base64)", "string", 0),
                        ),
                    ),
                ),
            ),
            methods=("POST", "PUT"),
            key_fields=("SbId",),
        ),
    )
}


#: The sub-objects an UpdateConnector takes a POST on (``/connectors/{id}/{SubObject}``), as AFAS's
#: OAS lists them: ``POST /connectors/KnSubject/KnSubjectAttachment`` (Dossiers, bijlagen en workflows).
#: FiEntries has none: Mutaties.json lists only ``POST /connectors/FiEntries`` and the delete.
SUB_OBJECT_POSTS: dict[str, tuple[str, ...]] = {"KnSubject": ("KnSubjectAttachment",)}


def _elements(container: Any, where: str) -> list[dict[str, Any]]:
    """``{"Element": {...}}`` or ``{"Element": [...]}`` as a list of element objects."""
    if not isinstance(container, dict) or "Element" not in container:
        raise AfasError(f"Object '{where}' has no 'Element'.")
    elements = _as_list(container["Element"])
    if not elements or not all(isinstance(item, dict) for item in elements):
        raise AfasError(f"Object '{where}' has no valid 'Element'.")
    return elements


def _body_elements(body: Any, root_name: str) -> list[dict[str, Any]]:
    """The elements of an UpdateConnector body ``{"<root>": {"Element": ...}}`` (name in any case)."""
    root = None
    if isinstance(body, dict):
        root = next((value for key, value in body.items() if key.lower() == root_name.lower()), None)
    if root is None:
        raise AfasError(f"The body must contain object '{root_name}'.")
    return _elements(root, root_name)


def _sub_objects(element: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Elements of sub-object ``name``; ``Objects`` may be an object or a list of objects."""
    found: list[dict[str, Any]] = []
    for holder in _as_list(element.get("Objects")):
        if not isinstance(holder, dict):
            raise AfasError("'Objects' must contain objects.")
        for key, value in holder.items():
            if key.lower() == name.lower():
                found.extend(_elements(value, key))
    return found


def _check_fields(obj: UpdateObject, element: dict[str, Any], require: bool = True) -> dict[str, Any]:
    """Validate one element's ``Fields`` (and ``@Key`` attributes) against the metainfo."""
    values: dict[str, Any] = {}
    for key, value in element.items():
        if key.startswith("@"):
            values[key[1:]] = value
    raw_fields = element.get("Fields", {})
    if not isinstance(raw_fields, dict):
        raise AfasError(f"'Fields' of object '{obj.name}' must be an object.")
    values.update(raw_fields)
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key == "@Action":
            continue
        spec_field = obj.field(key)
        if spec_field is None:
            raise AfasError(f"Field '{key}' does not exist in object '{obj.name}'.")
        checked[spec_field.id] = _convert_update_value(spec_field, value)
    if require:
        for spec_field in obj.fields:
            if spec_field.mandatory and checked.get(spec_field.id) in (None, ""):
                raise AfasError(
                    f"Mandatory field '{spec_field.id}' ({spec_field.label}) of object '{obj.name}' is not filled in.",
                    VALUE_ERROR_NUMBER,
                )
    return checked


def _convert_update_value(spec_field: UpdateField, value: Any) -> Any:
    if value is None or value == "":
        return value
    text = str(value).strip()
    try:
        if spec_field.data_type == "int":
            if isinstance(value, bool):
                raise ValueError(text)
            return int(text)
        if spec_field.data_type == "decimal":
            if isinstance(value, bool):
                raise ValueError(text)
            return Decimal(text.replace(",", "."))
        if spec_field.data_type == "boolean":
            if isinstance(value, bool):
                return value
            if text.lower() in ("1", "true", "-1"):
                return True
            if text.lower() in ("0", "false"):
                return False
            raise ValueError(text)
        if spec_field.data_type == "date":
            seconds = parse_wallclock(text)
            if seconds is None:
                raise ValueError(text)
            return seconds
    except (ValueError, InvalidOperation):
        raise AfasError(
            f"The value '{value}' is not valid for field '{spec_field.id}' ({spec_field.label}).",
            VALUE_ERROR_NUMBER,
        ) from None
    return text


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


# ==================================================================================================
# The emulator
# ==================================================================================================
class AfasEmulator(Emulator):
    """AFAS Profit REST for environment 12345. See the module docstring for what it covers.

    ``token_xml`` is the valid token; ``authorization_header`` the matching header value;
    ``api_key`` and ``environment_key`` are what the OTP flow needs.
    """

    name = "afas"
    prefix = "/afas"

    def __init__(
        self,
        seed: int = 42,
        scale: Mapping[str, int] | None = None,
        anchor: datetime = ANCHOR,
    ) -> None:
        self.seed = seed
        self.anchor = anchor
        self.environment_id = ENVIRONMENT_ID
        self.token_data = sandbox_afas_token_data(seed)
        self.token_xml = sandbox_afas_token(seed)
        self.authorization_header = afas_authorization_header(self.token_xml)
        self.api_key = sandbox_afas_api_key(seed)
        self.environment_key = sandbox_afas_environment_key(seed)
        self._lock = threading.RLock()
        self._anchor_utc = anchor.replace(tzinfo=AMSTERDAM).astimezone(timezone.utc)
        self._started = time.monotonic()
        self._counts = {connector_id: spec.default_rows for connector_id, spec in GET_CONNECTORS.items()}
        self._datasets: dict[str, _Dataset] = {}
        self._build(scale or {})
        self._tokens: dict[str, str] = {}
        self._otp: dict[str, tuple[str, int]] = {}
        self._otp_requests: dict[str, int] = {}
        self.updates: list[dict[str, Any]] = []
        self.reset_state()
        self._router = Router()
        self._routes()

    # -- set-up ------------------------------------------------------------------------------------
    @property
    def api_token(self) -> str:
        """Alias of ``environment_key``: the OTP requests call it ``apiToken``."""
        return self.environment_key

    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        known = {key: value for key, value in scale.items() if key in GET_CONNECTORS}
        if known:
            self._build(known)
            self.reset_state()
        return list(known)

    def _build(self, scale: Mapping[str, int]) -> None:
        unknown = sorted(set(scale) - set(GET_CONNECTORS))
        if unknown:
            raise ValueError(f"unknown AFAS GetConnector(s) in scale: {', '.join(unknown)}")
        for connector_id, rows in scale.items():
            if int(rows) < 0:
                raise ValueError(f"row count for {connector_id} must not be negative")
            self._counts[connector_id] = int(rows)
        world = _World(self.seed, self._counts, self.anchor)
        # Generators look each other up only when producing rows (open items and dossier items
        # refer to relations, the changed entry dates to the transactions), so order is free here.
        for connector_id, factory in _GENERATORS.items():
            world.generators[connector_id] = factory(world, self._counts[connector_id])
        self._datasets = {cid: _Dataset(GET_CONNECTORS[cid], world.generators[cid]) for cid in GET_CONNECTORS}
        self._datasets_ci = {cid.lower(): dataset for cid, dataset in self._datasets.items()}

    def reset_state(self) -> None:
        with self._lock:
            self._tokens = {self.token_xml: f"{ENVIRONMENT_ID}.LEDGERLINK"}
            self._otp.clear()
            self._otp_requests.clear()
            self.updates.clear()
            for dataset in self._datasets.values():
                dataset.inserted.clear()
                dataset.hidden.clear()
            transactions = self._datasets["Profit_Transactions"].generator
            assert isinstance(transactions, _Transactions)
            self._next_entry = transactions.entry_base + transactions.entries
            self._next_dossier_item = _DossierItems.id_base + self._datasets["Profit_DossierItems"].count

    def row_count(self, connector_id: str) -> int:
        """How many generated rows a GetConnector has (inserted records not included)."""
        return self._datasets[connector_id].count

    def rows(self, connector_id: str, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Generated rows as dicts, exactly as the GetConnector returns them (for tests)."""
        dataset = self._datasets[connector_id]
        stop = dataset.count if stop is None else min(stop, dataset.count)
        return [json.loads(dataset.encode(dataset.row(i))) for i in range(start, stop)]

    def inserted_rows(self, connector_id: str) -> list[dict[str, Any]]:
        """Rows that UpdateConnectors added or changed, as the GetConnector returns them (for tests:
        what the environment holds, whatever a client was told)."""
        dataset = self._datasets[connector_id]
        with self._lock:
            return [json.loads(dataset.encode(row)) for row in dataset.inserted]

    def register_token(self, token_xml: str, user: str = f"{ENVIRONMENT_ID}.LEDGERLINK") -> None:
        with self._lock:
            self._tokens[token_xml.strip()] = user

    def revoke_token(self, token: str) -> bool:
        """Delete a token, as an administrator would in the App connector. Accepts XML or data part."""
        token = token.strip()
        with self._lock:
            for known in list(self._tokens):
                if token in (known, _token_data(known)):
                    del self._tokens[known]
                    return True
        return False

    def now(self) -> str:
        """The sandbox clock (starts at the anchor) as AFAS renders it: Amsterdam wall clock + Z."""
        elapsed = timedelta(seconds=time.monotonic() - self._started)
        return wallclock_z(self._anchor_utc + elapsed)

    # -- routing -----------------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self._router.add
        add("GET", r"/connectors/(?P<connector>[^/]+)", self._authenticated(self._get_connector))
        add(("POST", "PUT"), r"/connectors/(?P<connector>[^/]+)", self._authenticated(self._update))
        add("POST", r"/connectors/(?P<connector>[^/]+)/(?P<sub>[^/]+)", self._authenticated(self._update_sub))
        add(
            "DELETE",
            r"/connectors/(?P<connector>[^/]+)/(?P<obj>[^/]+)/(?P<keys>.+)",
            self._authenticated(self._delete),
        )
        add("GET", r"/metainfo", self._authenticated(self._metainfo))
        add(
            "GET",
            r"/metainfo/(?P<kind>get|update)/(?P<connector>[^/]+)",
            self._authenticated(self._metainfo_of),
        )
        add("GET", r"/profitversion", self._authenticated(self._version))
        add("POST", r"/otprequest", self._otp_request)
        add("POST", r"/otpvalidation", self._otp_validation)

    def handle(self, request: Request) -> Response:
        match = re.fullmatch(r"/profitrestservices(/.*)?", request.subpath, re.IGNORECASE)
        if match is None:
            return Response.empty(404, _XML)
        if len(request.query_string) > MAX_QUERY_LENGTH:
            return Response.empty(404, _XML)
        path = (match.group(1) or "/").rstrip("/") or "/"
        try:
            response = self._router.dispatch(request, path)
        except AfasError as error:
            return error.response()
        if response is None:
            return Response.empty(404, _XML)
        return response

    def _authenticated(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def guarded(request: Request, **kwargs: str) -> Response:
            failure = self._check_token(request)
            return failure if failure is not None else handler(request, **kwargs)

        return guarded

    def _check_token(self, request: Request) -> Response | None:
        header = request.header("authorization")
        if not header:
            return _unauthorized()
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "afastoken" or not value.strip():
            return _unauthorized()
        value = value.strip()
        if value.startswith("<"):
            return _error_response(
                "The token in the Authorization header is not Base64-encoded. "
                "Send 'AfasToken ' followed by the Base64 encoding of the complete token XML."
            )
        try:
            token = base64.b64decode(value, validate=True).decode("utf-8").strip()
        except (binascii.Error, ValueError):
            return _unauthorized()
        with self._lock:
            known = token in self._tokens
        return None if known else _unauthorized()

    # -- GetConnectors -----------------------------------------------------------------------------
    def _dataset(self, connector: str) -> _Dataset | None:
        return self._datasets_ci.get(connector.lower())

    def _get_connector(self, request: Request, connector: str) -> Response:
        dataset = self._dataset(connector)
        if dataset is None:
            return _unauthorized()
        skip_text = request.param("skip")
        take_text = request.param("take")
        try:
            skip = int(skip_text) if skip_text not in (None, "") else 0
        except ValueError:
            skip = 0
        if skip < -1:
            skip = 0
        take: int | None
        try:
            take = int(take_text) if take_text not in (None, "") else None
        except ValueError:
            if skip != -1:
                raise _unexpected() from None
            take = -1
        if skip == -1:
            # Everything; take is not even validated. The response echoes what was asked for.
            echo_take = -1 if take is None else take
            take = None
        else:
            take = 100 if take is None else take
            if take <= 0:
                raise _unexpected()
            echo_take = take
        filter_json = request.param("filterjson")
        if filter_json:
            groups = _parse_json_filters(dataset, filter_json)
        else:
            groups = _parse_simple_filters(dataset, request)
        order = _parse_order(dataset, request.param("orderbyfieldids"))
        rows = _run_get_connector(dataset, groups, order, max(skip, 0), take)
        encode = dataset.encode
        body = f'{{"skip":{skip},"take":{echo_take},"rows":[{",".join([encode(row) for row in rows])}]}}'
        return Response.raw_json(body)

    # -- metainfo ----------------------------------------------------------------------------------
    def _metainfo(self, request: Request) -> Response:
        return Response.json(
            {
                "updateConnectors": [
                    {"id": spec.id, "description": spec.root.description}
                    for spec in UPDATE_CONNECTORS.values()
                ],
                "getConnectors": [
                    {"id": spec.id, "description": spec.description} for spec in GET_CONNECTORS.values()
                ],
                "info": {
                    "envid": ENVIRONMENT_NAME,
                    "appName": APP_NAME,
                    "group": AUTHORIZATION_GROUP,
                    "tokenExpiry": "0",
                },
            }
        )

    def _metainfo_of(self, request: Request, kind: str, connector: str) -> Response:
        if kind.lower() == "get":
            dataset = self._dataset(connector)
            if dataset is None:
                return _unauthorized()
            spec = dataset.spec
            return Response.json(
                {
                    "name": spec.id,
                    "description": spec.description,
                    "fields": [item.metainfo(n) for n, item in enumerate(spec.fields, start=1)],
                }
            )
        update = _update_spec(connector)
        if update is None:
            return _unauthorized()
        return Response.json(update.root.metainfo())

    def _version(self, request: Request) -> Response:
        return Response.json({"version": PROFIT_VERSION})

    # -- UpdateConnectors --------------------------------------------------------------------------
    def _update(self, request: Request, connector: str) -> Response:
        spec = _update_spec(connector)
        if spec is None:
            return _unauthorized()
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return self._log(request, spec.id, Response.json({"message": "Invalid json"}, 400), None)
        try:
            if request.method not in spec.methods:
                raise AfasError(
                    f"Deze UpdateConnector ondersteunt geen {request.method} ({spec.id}).",
                    UPDATE_NOT_SUPPORTED_ERROR_NUMBER,
                )
            elements = _body_elements(body, spec.root.name)
            with self._lock:
                if spec.id == "FiEntries":
                    prepared = [self._prepare_entry(element) for element in elements]
                    results = [self._book_entry(entry) for entry in prepared]
                else:
                    results = self._apply_subjects(elements, request.method)
        except AfasError as error:
            return self._log(request, spec.id, error.response(), body)
        payload = {"results": {spec.id: results[0] if len(results) == 1 else results}}
        return self._log(request, spec.id, Response.json(payload, 201), body)

    def _update_sub(self, request: Request, connector: str, sub: str) -> Response:
        """AFAS's "POST on SubObject": update the main record named by its key, insert the sub-object.

        Offered where AFAS documents the endpoint (``SUB_OBJECT_POSTS``); others are refused."""
        spec = _update_spec(connector)
        if spec is None:
            return _unauthorized()
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return self._log(request, spec.id, Response.json({"message": "Invalid json"}, 400), None)
        try:
            documented = next(
                (name for name in SUB_OBJECT_POSTS.get(spec.id, ()) if name.lower() == sub.lower()), None
            )
            if documented is None:
                raise AfasError(
                    f"Deze UpdateConnector ondersteunt geen POST op subobject '{sub}' ({spec.id}).",
                    UPDATE_NOT_SUPPORTED_ERROR_NUMBER,
                )
            elements = _body_elements(body, spec.root.name)
            with self._lock:
                results = self._apply_subjects(elements, "POST", sub_object=documented)
        except AfasError as error:
            return self._log(request, spec.id, error.response(), body)
        payload = {"results": {spec.id: results[0] if len(results) == 1 else results}}
        return self._log(request, spec.id, Response.json(payload, 201), body)

    def _delete(self, request: Request, connector: str, obj: str, keys: str) -> Response:
        spec = _update_spec(connector)
        if spec is None:
            return _unauthorized()
        try:
            key = _delete_key(spec, obj, keys)
            with self._lock:
                if spec.id == "FiEntries":
                    self._delete_entry(key)
                else:
                    self._delete_subject(key)
        except AfasError as error:
            return self._log(request, spec.id, error.response(), None)
        return self._log(request, spec.id, Response.empty(200, _XML), None)

    def _log(self, request: Request, connector: str, response: Response, body: Any) -> Response:
        with self._lock:
            self.updates.append(
                {
                    "method": request.method,
                    "path": request.subpath,
                    "connector": connector,
                    "request": body,
                    "status": response.status,
                    "response": json.loads(response.body) if response.body else None,
                }
            )
            del self.updates[:-1000]
        return response

    # FiEntries ----------------------------------------------------------------------------------
    def _prepare_entry(self, element: dict[str, Any]) -> dict[str, Any]:
        root = UPDATE_CONNECTORS["FiEntries"].root
        header = _check_fields(root, element)
        if header["UnId"] not in _UNITS:
            raise AfasError(
                f"The entered value for 'Administration number' does not exist: {header['UnId']}.",
                VALUE_ERROR_NUMBER,
            )
        if str(header["JoCo"]) not in _JOURNAL_CODES:
            raise AfasError(
                f"The entered value for 'Journal' does not exist: {header['JoCo']}.", VALUE_ERROR_NUMBER
            )
        if not 1 <= header["Peri"] <= 13:
            raise AfasError(
                f"The entered value for 'Period' does not exist: {header['Peri']}.", VALUE_ERROR_NUMBER
            )
        line_object = root.objects[0]
        lines = [_check_fields(line_object, line) for line in _sub_objects(element, "FiEntries")]
        if not lines:
            raise AfasError("A journal entry needs at least one line (object 'FiEntries').")
        debit = credit = Decimal(0)
        for line in lines:
            if str(line["VaAs"]) not in ("1", "2", "3"):
                raise AfasError(
                    f"The entered value for 'Account feature' does not exist: {line['VaAs']}.",
                    VALUE_ERROR_NUMBER,
                )
            if str(line["VaAs"]) == "1" and line["AcNr"] not in _ACCOUNT_NAMES:
                raise AfasError(
                    f"The entered value for 'Account number' does not exist: {line['AcNr']}.",
                    VALUE_ERROR_NUMBER,
                )
            debit += line.get("AmDe") or Decimal(0)
            credit += line.get("AmCr") or Decimal(0)
        if debit != credit:
            raise AfasError(
                f"The journal entry is not in balance: debit {_money(debit)} and credit {_money(credit)} "
                f"differ by {_money(abs(debit - credit))}."
            )
        numbers = {line["EnNo"] for line in lines if line.get("EnNo") not in (None, "")}
        if len(numbers) > 1:
            raise AfasError("All lines of one journal entry must have the same 'EnNo'.")
        return {"header": header, "lines": lines, "number": numbers.pop() if numbers else None}

    def _book_entry(self, entry: dict[str, Any]) -> dict[str, str]:
        header, lines = entry["header"], entry["lines"]
        number = entry["number"]
        transactions = self._datasets["Profit_Transactions"]
        if number is None:
            number = self._next_entry
        elif number < self._next_entry or any(
            row[0] == header["UnId"] and row[1] == number for row in transactions.inserted
        ):
            raise AfasError(f"Journal entry number {number} is already in use.", VALUE_ERROR_NUMBER)
        self._next_entry = max(self._next_entry, number) + 1
        stamp = self.now()
        days: set[int] = set()
        for seq, line in enumerate(lines, start=1):
            day = line["EnDa"] // 86400
            days.add(day)
            voucher_day = (line.get("BpDa") or line["EnDa"]) // 86400
            row = (
                header["UnId"],
                number,
                seq,
                header["Year"],
                header["Peri"],
                str(header["JoCo"]),
                str(line["AcNr"]),
                float(line.get("AmDe") or 0),
                float(line.get("AmCr") or 0),
                format_day(day),
                line.get("InId") or None,
                format_day(voucher_day),
                line.get("BpNr") or None,
                line.get("VaId") or None,
                None,
                line.get("Ds") or None,
                stamp,
                stamp,
            )
            transactions.inserted.append(_Inserted(row))
        changed = self._datasets["Profit_Fin_ChangedEntrydate"]
        for day in sorted(days):
            changed.inserted.append(_Inserted((format_day(day), stamp)))
        invoice = next((str(line["InId"]) for line in lines if line.get("InId")), "")
        return {"EnNo": str(number), "UnId": str(header["UnId"]), "InID": invoice}

    def _delete_entry(self, key: dict[str, str]) -> None:
        try:
            unit, number = int(key["unid"]), int(key["enno"])
        except KeyError as missing:
            raise AfasError(f"Key field '{missing.args[0]}' is missing in the URL.") from None
        except ValueError:
            raise AfasError("The key in the URL is not valid.") from None
        transactions = self._datasets["Profit_Transactions"]
        year = key["year"]
        matching = [
            row
            for row in transactions.inserted
            if row[0] == unit and row[1] == number and str(row[3]) == year
        ]
        if not matching:
            generated = transactions.generator
            assert isinstance(generated, _Transactions)
            if generated.entry_base <= number < generated.entry_base + generated.entries:
                raise AfasError(f"Journal entry {number} cannot be deleted: the period is closed.")
            raise AfasError(f"Journal entry {number} does not exist in administration {unit}.")
        transactions.inserted[:] = [row for row in transactions.inserted if row not in matching]
        changed = self._datasets["Profit_Fin_ChangedEntrydate"]
        stamp = self.now()
        for day in sorted({row[9] for row in matching}):
            changed.inserted.append(_Inserted((day, stamp)))

    # KnSubject ----------------------------------------------------------------------------------
    def _dossier_item(self, item_id: Any) -> tuple[Any, ...] | None:
        """The current row of dossier item ``item_id``: changed or inserted, else generated."""
        items = self._datasets["Profit_DossierItems"]
        for row in items.inserted:
            if row[0] == item_id:
                return row
        index = item_id - _DossierItems.id_base if isinstance(item_id, int) else -1
        if 0 <= index < items.count and item_id not in items.hidden:
            return items.row(index)
        return None

    def _store_dossier_item(self, row: tuple[Any, ...]) -> None:
        """Keep ``row`` as the item's current version, in place of an inserted or generated one."""
        items = self._datasets["Profit_DossierItems"]
        items.inserted[:] = [other for other in items.inserted if other[0] != row[0]]
        if 0 <= row[0] - _DossierItems.id_base < items.count:
            items.hidden.add(row[0])
        items.inserted.append(_Inserted(row))

    def _apply_subjects(
        self, elements: list[dict[str, Any]], method: str, sub_object: str | None = None
    ) -> list[dict[str, str]]:
        """KnSubject: POST inserts; PUT updates an existing item (generated or inserted) named by
        ``@SbId``; POST on the sub-object ``sub_object`` updates the item and inserts the sub-object."""
        root = UPDATE_CONNECTORS["KnSubject"].root
        prepared = []
        for element in elements:
            fields = _check_fields(root, element, require=method == "POST" and sub_object is None)
            links = [
                _check_fields(root.objects[0], link, require=False)
                for link in _sub_objects(element, "KnSubjectLink")
            ]
            files = [
                _check_fields(root.objects[1], item, require=False)
                for item in _sub_objects(element, "KnSubjectAttachment")
            ]
            if sub_object is not None and not _sub_objects(element, sub_object):
                raise AfasError(f"The request contains no '{sub_object}' to insert.")
            if "StId" in fields and fields["StId"] not in _DOSSIER_TYPES:
                raise AfasError(
                    f"The entered value for 'Type dossier item' does not exist: {fields['StId']}.",
                    VALUE_ERROR_NUMBER,
                )
            existing = method == "PUT" or sub_object is not None
            if existing:
                if fields.get("SbId") in (None, ""):
                    raise AfasError(
                        "Mandatory field 'SbId' (Dossier item) of object 'KnSubject' is not filled in."
                    )
                if self._dossier_item(fields["SbId"]) is None:
                    raise AfasError(f"Dossier item {fields['SbId']} does not exist or cannot be changed.")
            prepared.append((fields, links[-1] if links else {}, files[-1] if files else {}, existing))
        results = []
        stamp = self.now()
        for fields, link, attachment, existing in prepared:
            previous = self._dossier_item(fields["SbId"]) if existing else None
            if previous is None:
                item_id = self._next_dossier_item
                self._next_dossier_item += 1
                previous = (
                    item_id,
                    1,
                    _DOSSIER_TYPES[1],
                    "",
                    1,
                    None,
                    None,
                    None,
                    _USERS[0],
                    stamp,
                    stamp,
                    None,
                )
            item_id = previous[0]
            type_id = fields.get("StId", previous[1])
            destination_type = link.get("SfTp")
            row = (
                item_id,
                type_id,
                _DOSSIER_TYPES[type_id],
                fields.get("Ds", previous[3]),
                link.get("UnId", previous[4]),
                link.get("SfId") if destination_type == 2 else previous[5],
                link.get("SfId") if destination_type == 3 else previous[6],
                link.get("InId", previous[7]),
                fields.get("EmId") or previous[8],
                previous[9],
                stamp,
                attachment.get("FileName", previous[11]),
            )
            self._store_dossier_item(row)
            results.append({"SbId": str(item_id)})
        return results

    def _delete_subject(self, key: dict[str, str]) -> None:
        items = self._datasets["Profit_DossierItems"]
        try:
            item_id = int(key["sbid"])
        except ValueError:
            raise AfasError("The key in the URL is not valid.") from None
        if self._dossier_item(item_id) is None:
            raise AfasError(f"Dossier item {key['sbid']} does not exist or cannot be deleted.")
        items.inserted[:] = [row for row in items.inserted if row[0] != item_id]
        if 0 <= item_id - _DossierItems.id_base < items.count:
            items.hidden.add(item_id)

    # -- one-time passwords ------------------------------------------------------------------------
    def _otp_fields(self, request: Request) -> dict[str, str] | Response:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return Response.json({"message": "Invalid json"}, 400)
        if not isinstance(body, dict):
            return Response.json({"message": "Invalid json"}, 400)
        lowered = {str(key).lower(): "" if value is None else str(value) for key, value in body.items()}
        return lowered

    def _otp_request(self, request: Request) -> Response:
        fields = self._otp_fields(request)
        if isinstance(fields, Response):
            return fields
        user = fields.get("userid", "").strip()
        keys_ok = fields.get("apikey") == self.api_key and fields.get("apitoken") == self.environment_key
        if user and keys_ok:
            # The real service e-mails the code; tests read it from GET /_sandbox/afas/otp.
            with self._lock:
                count = self._otp_requests.get(user.lower(), 0) + 1
                self._otp_requests[user.lower()] = count
                code = str(
                    int(_hex(self.seed, f"afas-otp:{user.lower()}:{count}", 12), 16) % 100_000_000
                ).zfill(8)
                self._otp[user.lower()] = (code, count)
        # 200 and an empty body whether or not the keys were right, like the real service.
        return Response.empty(200, _XML)

    def _otp_validation(self, request: Request) -> Response:
        fields = self._otp_fields(request)
        if isinstance(fields, Response):
            return fields
        user = fields.get("userid", "").strip()
        for name in ("apikey", "apitoken", "userid", "otp"):
            if not fields.get(name, "").strip():
                return _error_response(f"Mandatory field '{name}' is missing.")
        if fields["apikey"] != self.api_key or fields["apitoken"] != self.environment_key:
            return _error_response("The API key or environment key is not valid.")
        with self._lock:
            pending = self._otp.get(user.lower())
            if pending is None or pending[0] != fields["otp"].strip():
                return _error_response("The one-time password is not valid or has expired.")
            del self._otp[user.lower()]
            data = _hex(self.seed, f"afas-otp-token:{user.lower()}:{pending[1]}", 64)
            token = f"<token><version>1</version><data>{data}</data></token>"
            self._tokens[token] = user
        return Response.json({"token": token + "\r\n"})

    # -- sandbox control ---------------------------------------------------------------------------
    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        if path == "otp" and request.method == "GET":
            user = (request.param("user") or "").strip().lower()
            with self._lock:
                pending = self._otp.get(user)
            if pending is None:
                return Response.json({"error": f"no one-time password was sent to {user!r}"}, 404)
            return Response.json({"user": user, "otp": pending[0]})
        if path == "updates" and request.method == "GET":
            with self._lock:
                return Response.json(list(self.updates))
        if path == "credentials" and request.method == "GET":
            return Response.json(
                {
                    "environment_id": self.environment_id,
                    "token": self.token_xml,
                    "token_data": self.token_data,
                    "authorization": self.authorization_header,
                    "api_key": self.api_key,
                    "environment_key": self.environment_key,
                }
            )
        if path == "datasets" and request.method == "GET":
            return Response.json(
                {cid: {"rows": ds.count, "inserted": len(ds.inserted)} for cid, ds in self._datasets.items()}
            )
        if path == "tokens/revoke" and request.method == "POST":
            try:
                token = str(request.json()["token"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'token': '<token XML or data part>'}"}, 400)
            return Response.json({"revoked": self.revoke_token(token)})
        return super().handle_control(request, path)


def _delete_key(spec: UpdateConnectorSpec, obj: str, path: str) -> dict[str, str]:
    """The record key of a DELETE URL ``/connectors/{id}/{Object}/@Key/value[/@Key/value…]``.

    AFAS's OAS writes the key fields with ``@`` (``/connectors/FiEntries/FiEntryPar/@Year/{Year}``,
    ``/connectors/KnCustomK01/KnCustomK01/@SqNo/{SqNo}``); its UpdateConnector page and help pages
    write them without (``/connectors/KnAppointment/KnAppointment/ApId/123``,
    ``…/FbSalesQuotation/FbSalesQuotation/OrNu/50000004/FbSalesQuotationLines/GuLi/{…}``): both are
    read. The main object's full key is required ("include the full key of the main element"); a
    sub-object segment after it addresses a nested row.
    """
    if obj.lower() != spec.root.name.lower():
        raise AfasError(f"Object '{obj}' does not exist in UpdateConnector '{spec.id}'.")
    parts = [urllib.parse.unquote(part) for part in path.split("/")]
    if any(not part for part in parts):
        raise AfasError("The URL contains an empty segment.")
    key_names = {name.lower(): name for name in spec.key_fields}
    key: dict[str, str] = {}
    position = 0
    while position < len(parts):
        name = parts[position]
        bare = name[1:] if name.startswith("@") else name
        sub = next((o for o in spec.root.objects if o.name.lower() == bare.lower()), None)
        if sub is not None and not name.startswith("@"):
            # A nested row: none of the emulated sub-objects has key fields of its own.
            raise AfasError(
                f"Object '{sub.name}' of '{spec.root.name}' cannot be deleted separately; "
                "delete the whole record."
            )
        if bare.lower() not in key_names:
            raise AfasError(f"'{bare}' is not a key field of object '{spec.root.name}'.")
        if position + 1 >= len(parts):
            raise AfasError(f"Key field '{bare}' has no value in the URL.")
        canonical = key_names[bare.lower()]
        if canonical.lower() in key:
            raise AfasError(f"Key field '{canonical}' appears twice in the URL.")
        key[canonical.lower()] = parts[position + 1]
        position += 2
    missing = [name for name in spec.key_fields if name.lower() not in key]
    if missing:
        raise AfasError(
            f"Key field '{missing[0]}' is missing in the URL: give the full key of '{spec.root.name}' "
            f"({', '.join('@' + name for name in spec.key_fields)})."
        )
    return key


def _update_spec(connector: str) -> UpdateConnectorSpec | None:
    return next((spec for spec in UPDATE_CONNECTORS.values() if spec.id.lower() == connector.lower()), None)


def _token_data(token_xml: str) -> str:
    match = re.search(r"<data>([^<]*)</data>", token_xml)
    return match.group(1) if match else token_xml
