"""The AFAS sandbox environment's data: GetConnector definitions, reference tables and the
deterministic row generators, and the tables (generated plus inserted rows) the queries read."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_ledgerlink.sandbox.afas.errors import _field_not_found
from airflow_provider_ledgerlink.sandbox.data import (
    RowRandom,
    Timeline,
    company_name,
    compile_row_encoder,
    derive_key,
    format_day,
    format_wallclock,
    iban,
    person_name,
    phone_number,
    row_hash,
    street_address,
    wallclock_seconds,
)

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


_UNITS = (1, 2, 3)


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
