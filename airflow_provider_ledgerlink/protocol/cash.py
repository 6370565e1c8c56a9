"""The wire protocol of CASH (CASH Software, NL) "CASH API 3.0", SOAP on CASHWeb: what the records,
imports and transactions look like, how requests are built, how answers are read and how errors map.

Sources: CASH's set-up guide "Instellen CASH API 3.0 voor CASHWin gebruikers" (the seed
``000_b4289cdecb029b81.txt``) and the recorded answers in ``sandbox/specs/cash/``; more in the CASH
page of the docs. Wire facts:

* the service description (WSDL) is read from the connection's host (CASHWeb's
  ``https://www.cashweb.nl/?api/3.0/wsdl`` by default), so the operations, parameter names and the
  endpoint address are the real service's;
* operations ``Cash.export`` and ``Cash.import`` take named parameters: ``token`` (empty),
  ``relatie`` (relation number), ``email``, ``pass``, ``export``/``import``, ``administration``
  (``admCode``, ``admMap``) and ``formaat`` (``0``);
* every answer has ``response.code``: 1 success, 2 login error, others are errors with a code;
* an export's result is XML inside a string, prefixed with ``Content-type: text/xml ``:
  ``<cash><R0101><F0101>000100</F0101>…</R0101>…</cash>``;
* an import answers with a ``transaction`` (status 1 pending, 2 success, 3 error with per-line errors
  in ``err``): administrations kept offline in CASHWin are processed later, when the CASHWin process of
  the API user (function S0067 "Inlezen berichten", which "elke 30 seconde" looks for instructions)
  picks the instruction up;
* CASH API 3.0 documents no operation that reads a transaction later. The outcome of a pending import
  is therefore learned by reading back what was imported (``Cash.export`` of the records by their
  keys, journal lines by journal, document number and year); a status operation is used only when
  the service description really offers one (``Cash.getTransaction`` and the like);
* at most 100 requests a minute.

Nothing here needs Airflow, a connection or a hook: ``hooks/cash.py`` holds the connection, the SOAP
transports and the calls. zeep and defusedxml are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    ConfigurationError,
    LedgerLinkError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import default_error, parse_retry_after

# ==================================================================================================
# Shapes: CASH's fields and records, imports, read-backs and transactions
# ==================================================================================================
VENDOR = "CASH"


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


DEFAULT_WSDL = "https://www.cashweb.nl/?api/3.0/wsdl"


WSDL_PATH = "/?api/3.0/wsdl"


#: CASH accepts at most this many requests a minute per API user.
REQUESTS_PER_MINUTE = 100


#: The biggest SOAP answer LedgerLink accepts (an export comes as one answer).
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024


EXPORT_PAGE_SIZE = 1000


#: How the status of a transaction is read later, by operation name (case-insensitive), best first.
#: API 3.0 does not document one (the older CASH SOAP API had ``GetTransaction``): one is used only when
#: the service description offers it; otherwise an import is followed by reading it back.
STATUS_OPERATION_NAMES = (
    "Cash.getTransaction",
    "Cash.transaction",
    "Cash.transactionStatus",
    "Cash.getTransactionStatus",
    "GetTransaction",
    "getTransaction",
)


_TRANSACTION_ID_PARAMS = ("id", "transaction", "transactionid", "transaction_id", "transactieid")


#: Where a failed wait most likely went wrong, in the order of CASH's set-up guide.
CASHWIN_DIAGNOSIS = (
    "CASHWin has not processed the import. Most likely: (1) the CASHWin process for the API user is not "
    "running: start 'cashwin.exe API' (and at server start) with the API user's code, whose start "
    "function is S0067 'Inlezen berichten'; (2) the record is not enabled under 'Instellen CashWeb API'; "
    "(3) the administration is not enabled under 'Synchronisatie offline'; (4) CASH rejected it: CASH "
    "mails the API's error messages to the address under 'Foutmeldingen naar' (the API user's e-mail); "
    "(5) the CASH Connect licence, which S0067 and API 3.0 need, is missing"
)


#: How often CASHWin's S0067 looks for instructions ("elke 30 seconde", CASH's set-up guide).
CASHWIN_INTERVAL = 30.0


@dataclass(frozen=True)
class FieldSpec:
    """One CASH field ("rubriek"). Field codes are global: F0101 is the relation number everywhere.

    ``fmt``: ``N`` number (zero-padded to ``length``), ``S`` upper-case text, ``L`` text, ``I``
    decimal with ``decimals`` places, ``D`` date ``YYMMDD``, ``Y4`` period ``YYMM``. ``length`` is
    the maximum length where CASH documents one (``None``: not checked).
    """

    code: str
    name: str
    fmt: str
    length: int | None = None
    decimals: int = 0


def _spec(code: str, name: str, fmt: str, length: int | None = None, decimals: int = 0) -> FieldSpec:
    return FieldSpec(code, name, fmt, length, decimals)


FIELDS: dict[str, FieldSpec] = {
    s.code: s
    for s in (
        _spec("0101", "relation_number", "N", 6),
        _spec("0102", "search_name", "S"),
        _spec("0103", "name", "L"),
        _spec("0104", "attention", "L"),
        _spec("0105", "address", "L"),
        _spec("0107", "postcode_city", "L"),
        _spec("0108", "phone", "L"),
        _spec("0110", "iban", "S"),
        _spec("0115", "remark", "L"),
        _spec("0120", "email", "L"),
        _spec("0125", "country", "L"),
        _spec("0130", "country_code", "S"),
        _spec("0201", "ledger_account", "S", 6),
        _spec("0203", "description", "L"),
        _spec("0204", "account_kind", "S"),
        _spec("0242", "vat_code", "S"),
        _spec("0301", "period", "Y4", 4),
        _spec("0302", "booking_date", "D", 6),
        _spec("0303", "document_number", "N", 6),
        _spec("0305", "quantity", "I", 12, 2),
        _spec("0306", "description", "L", 25),
        _spec("0307", "amount", "I", 12, 2),
        _spec("0309", "invoice_number", "N", 6),
        _spec("0350", "bic", "S"),
        _spec("0438", "postcode", "S"),
        _spec("0701", "subadministration", "S", 6),
        _spec("0711", "reference", "S", 13),
        _spec("0901", "journal", "S", 6),
        _spec("0902", "journal_name", "L"),
        _spec("0903", "journal_kind", "S"),
        _spec("0911", "cost_centre", "S", 3),
        _spec("1197", "mobile", "L"),
        _spec("1479", "chamber_of_commerce_number", "L"),
        _spec("1829", "initials", "L"),
        _spec("1831", "surname", "L"),
        _spec("1833", "street", "L"),
        _spec("1834", "house_number", "L"),
        _spec("1837", "city", "L"),
        _spec("2228", "delivery_address_code", "S"),
        _spec("2229", "delivery_address_description", "L"),
        # A date in the recorded API 3.0 export of delivery addresses (06-12-2021, 17-12-2021); CASH
        # names no meaning for it, so the name says only what it is.
        _spec("2306", "date_2306", "D"),
    )
}


FIELDS_BY_NAME: dict[str, FieldSpec] = {}
for _field_spec in FIELDS.values():
    FIELDS_BY_NAME.setdefault(_field_spec.name, _field_spec)
del _field_spec


@dataclass(frozen=True)
class RecordSpec:
    code: str
    name: str
    fields: tuple[str, ...]
    required: tuple[str, ...] = ()


RECORDS: dict[str, RecordSpec] = {
    r.code: r
    for r in (
        RecordSpec(
            "0101",
            "relations",
            ("0101", "0102", "0103", "0104", "0105", "0107", "0108", "0110", "0120", "0125", "0130",
             "0350", "0438", "1197", "1479", "1829", "1831", "1833", "1834", "1837"),
            ("0101",),
        ),
        RecordSpec("0201", "ledger accounts", ("0201", "0203", "0204", "0242"), ("0201",)),
        RecordSpec(
            "0301",
            "journal lines",
            ("0101", "0201", "0301", "0302", "0303", "0305", "0306", "0307", "0309", "0701", "0711",
             "0901", "0911"),
            ("0302", "0901", "0303", "0201", "0307"),
        ),
        RecordSpec("0901", "journals", ("0901", "0902", "0903", "0201"), ("0901",)),
        RecordSpec(
            "2229",
            "delivery addresses",
            ("0101", "2228", "2229", "0103", "0104", "0105", "0107", "0108", "0115", "0125", "0130",
             "0438", "1833", "1834", "1837"),
            ("0101", "2228"),
        ),
    )
}  # fmt: skip


#: Field names that differ per record (F0203 is a ledger account's description, F0306 a line's).
_RECORD_NAMES: dict[tuple[str, str], str] = {("0201", "0203"): "description", ("0301", "0306"): "description"}


def normalize_record_code(code: Any) -> str:
    """``"101"``, ``101``, ``"R0101"`` → ``"0101"``."""
    text = str(code).strip().upper().removeprefix("R")
    if not re.fullmatch(r"\d{1,4}", text):
        raise ValueError(f"record code {code!r} is not a CASH record number such as 0101 or 0301")
    return text.zfill(4)


@dataclass(frozen=True)
class ImportPayload:
    """An import ready to send: the XML, how many records it holds, its SHA-256 (the same rows always
    give the same XML) and, where LedgerLink can find the records again, what to read back."""

    record_code: str
    xml: str
    records: int
    expectation: ImportExpectation | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.xml.encode("utf-8")).hexdigest()

    @property
    def content_key(self) -> str:
        """What makes two imports the same import, for the duplicate guard: the record and the keys
        of what it books (journal lines: journal, document number and year), else the XML's hash."""
        if self.expectation is not None:
            return f"R{self.record_code} " + ",".join(sorted(self.expectation.entries))
        return f"R{self.record_code} sha256 {self.sha256}"

    @property
    def label(self) -> str:
        """How messages name the import's records (``journal MM document 000001 (2026), …``)."""
        if self.expectation is not None:
            return self.expectation.describe(sorted(self.expectation.entries))
        return f"{self.records} record(s) R{self.record_code} (SHA-256 {self.sha256[:12]})"


#: The fields that identify a record for reading it back, per record (journal lines: see _identity).
READ_BACK_KEYS: dict[str, tuple[str, ...]] = {
    "0101": ("0101",),
    "0201": ("0201",),
    "0901": ("0901",),
    "2229": ("0101", "2228"),
}


#: Up to this many keys are read back one by one (``0101|000100``); more read the whole record.
READ_BACK_KEYED_EXPORTS = 10


@dataclass(frozen=True)
class ImportExpectation:
    """What an import leaves in CASH once processed, and the exports that find it again.

    ``entries`` maps each identity (``MM/000001/2026``: journal, document number, year; ``000100``: a
    relation) to a digest of its lines. JSON-safe through :meth:`as_dict` (trigger kwargs, XCom).
    """

    record_code: str
    exports: tuple[str, ...]
    entries: Mapping[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"record_code": self.record_code, "exports": list(self.exports), "entries": dict(self.entries)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImportExpectation:
        try:
            record = normalize_record_code(data["record_code"])
            exports = tuple(str(e) for e in data["exports"])
            entries = {str(k): str(v) for k, v in dict(data["entries"]).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                VENDOR,
                "reading an import back",
                f"the read-back description is not usable ({type(exc).__name__}: {exc})",
                hint="Pass the 'expectation' that CashImportOperator returns (its XCom) unchanged",
            ) from None
        if not exports or not entries:
            raise ConfigurationError(VENDOR, "reading an import back", "the read-back description is empty")
        return cls(record, exports, entries)

    def describe(self, identities: Sequence[str], limit: int = 5) -> str:
        """``journal MM document 000001 (2026), …`` for messages."""
        shown = []
        for identity in identities[:limit]:
            if self.record_code == "0301":
                journal, document, year = identity.split("/")
                shown.append(f"journal {journal} document {document} ({year})")
            else:
                shown.append(f"R{self.record_code} {identity}")
        more = len(identities) - limit
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class ReadBack:
    """What reading an import back found: identities booked as imported, missing, or booked with
    other lines (another import holds the same document number)."""

    booked: tuple[str, ...]
    missing: tuple[str, ...]
    different: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "booked": len(self.booked),
            "missing": list(self.missing[:20]),
            "different": list(self.different[:20]),
            "missing_count": len(self.missing),
        }


PENDING, SUCCESS, ERROR = 1, 2, 3


STATUS_NAMES = {PENDING: "pending", SUCCESS: "success", ERROR: "error"}


@dataclass(frozen=True)
class CashTransaction:
    """An import's transaction. ``status``: 1 pending, 2 success, 3 error (see ``errors``)."""

    id: str
    status: int
    creation: str = ""
    last_update: str = ""
    administration: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: When the status was learned by reading the import back: what was found (see :class:`ReadBack`).
    read_back: dict[str, Any] = field(default_factory=dict)

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"unknown ({self.status})")

    @property
    def finished(self) -> bool:
        return self.status in (SUCCESS, ERROR)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe, for XCom and trigger events (holds no secret)."""
        return {
            "id": self.id,
            "status": self.status,
            "status_name": self.status_name,
            "creation": self.creation,
            "last_update": self.last_update,
            "administration": dict(self.administration),
            "errors": list(self.errors),
            **({"read_back": dict(self.read_back)} if self.read_back else {}),
        }

    @classmethod
    def from_answer(cls, data: Mapping[str, Any], operation: str) -> CashTransaction:
        status = data.get("status")
        try:
            status_code = int(status)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise VendorError(
                VENDOR, operation, f"the transaction has no readable status ({status!r})"
            ) from None
        administration = data.get("administration") or {}
        return cls(
            id=str(data.get("id") or ""),
            status=status_code,
            creation=str(data.get("creation") or ""),
            last_update=str(data.get("lastUpdate") or ""),
            administration={k: str(v) for k, v in dict(administration).items() if v is not None},
            errors=parse_error_document(data.get("err"), operation=operation) if status_code == ERROR else [],
        )

    def describe_errors(self, limit: int = 10) -> str:
        shown = [
            f"line {e['line']}: {e['message']}" + (f" [{e['source']}]" if e.get("source") else "")
            if e.get("line") is not None
            else str(e.get("message"))
            for e in self.errors[:limit]
        ]
        more = len(self.errors) - limit
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


# ==================================================================================================
# Requests: export commands, export windows and import XML
# ==================================================================================================
def export_command(record_code: Any, params: Any = None, *, key: str | None = None) -> str:
    """The ``export`` parameter: the record code, then its properties (``0101W|7``) or a key
    (``2229|000100``)."""
    try:
        record = normalize_record_code(record_code)
    except ValueError as exc:
        raise ValidationError(VENDOR, "Cash.export", str(exc)) from None
    if key is not None:
        return f"{record}|{str(key).strip()}"
    if params is None or params == "" or params == []:
        return record
    text = params.strip() if isinstance(params, str) else "|".join(str(p).strip() for p in params)
    if not re.fullmatch(r"[A-Za-z|][^<>&]*", text):
        raise ValidationError(
            VENDOR,
            f"Cash.export {record}",
            f"export properties {params!r} must start with a property letter or '|', e.g. 'W|7'",
        )
    return record + text


def changed_within_days(
    window_start: datetime, now: datetime | None = None, window_end: datetime | None = None
) -> int:
    """N for ``W|N`` ("changed in the last N days"): enough calendar days, in CASH's time zone, to
    reach back from today to the window's start (one day of margin: CASH does not say whether today
    counts). A window in the future (a clock behind the data) falls back to the window's own length."""
    now = now or datetime.now(timezone.utc)
    if window_end is not None and now < window_end:
        now = window_end
    today = now.astimezone(AMSTERDAM).date()
    first = window_start.astimezone(AMSTERDAM).date()
    return max(1, (today - first).days + 1)


def periods_of_window(start: datetime, end: datetime) -> tuple[str, str]:
    """The booking periods (``YYMM``) a window ``[start, end)`` touches, in CASH's time zone."""
    first = start.astimezone(AMSTERDAM).date()
    last = (end - timedelta(microseconds=1)).astimezone(AMSTERDAM).date()
    return first.strftime("%y%m"), max(first, last).strftime("%y%m")


def _field_key(record: str, key: str) -> str | None:
    text = str(key).strip()
    match = re.fullmatch(r"[Ff]?(\d{4})", text)
    if match:
        return match.group(1)
    for (rec, code), name in _RECORD_NAMES.items():
        if rec == record and name == text:
            return code
    spec = FIELDS_BY_NAME.get(text)
    return spec.code if spec else None


def format_field(spec: FieldSpec | None, value: Any) -> str:
    """A Python value as CASH wants it in an import; raises ``ValueError`` saying what is wrong."""
    if value is None:
        return ""
    if spec is None:
        return str(value)
    if spec.fmt == "N":
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit():
            raise ValueError(f"{value!r} is not a whole number")
        text = text.zfill(spec.length) if spec.length else text
    elif spec.fmt == "I":
        amount = value if isinstance(value, Decimal) else parse_cash_decimal(str(value))
        if isinstance(value, int | float) and not isinstance(value, bool):
            amount = Decimal(str(value))
        if amount is None:
            raise ValueError(f"{value!r} is not a number")
        quantum = Decimal(1).scaleb(-spec.decimals)
        rounded = amount.quantize(quantum)
        if rounded != amount:
            raise ValueError(f"{value!r} has more than {spec.decimals} decimals")
        text = f"{rounded:f}".replace(".", ",")
    elif spec.fmt == "D":
        day = _as_date(value)
        if day is None:
            raise ValueError(f"{value!r} is not a date (date, YYYY-MM-DD or YYMMDD)")
        text = day.strftime("%y%m%d")
    elif spec.fmt == "Y4":
        text = _as_period(value)
    else:
        text = str(value).strip()
        if spec.fmt == "S":
            text = text.upper()
    if spec.length is not None and len(text) > spec.length:
        raise ValueError(f"{text!r} is longer than {spec.length} characters")
    return text


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parse_cash_date(str(value))


def _as_period(value: Any) -> str:
    if isinstance(value, date):
        return value.strftime("%y%m")
    text = str(value).strip()
    match = re.fullmatch(r"(\d{4})-(\d{2})", text)
    if match:
        text = match.group(1)[2:] + match.group(2)
    if not re.fullmatch(r"\d{4}", text) or not 1 <= int(text[2:]) <= 12:
        raise ValueError(f"{value!r} is not a period (YYYY-MM or YYMM)")
    return text


def build_import(record_code: Any, rows: Iterable[Mapping[str, Any]]) -> ImportPayload:
    """Check ``rows`` and build the import XML; raises :class:`ValidationError` listing every problem.

    A row maps fields to values, by code (``"F0307"``, ``"0307"``) or readable name (``"amount"``),
    with Python values (``date``, ``Decimal``, ``int``, ``str``); rows read back from an export work
    too (the ``record`` key and the typed duplicates are ignored). Checks: required fields, formats
    and documented lengths, and for journal lines (0301) that each entry (journal + document number)
    balances to zero and that sub-administration lines name a relation and an invoice.
    """
    try:
        record = normalize_record_code(record_code)
    except ValueError as exc:
        raise ValidationError(VENDOR, "Cash.import", str(exc)) from None
    spec = RECORDS.get(record)
    problems: list[str] = []
    built: list[dict[str, str]] = []
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            problems.append(f"row {index}: not a mapping of fields to values")
            continue
        fields = _row_fields(record, row, index, problems)
        for code in spec.required if spec else ():
            if not fields.get(code):
                problems.append(f"row {index}: F{code} ({FIELDS[code].name}) is required")
        built.append(fields)
    if not built and not problems:
        problems.append("there are no rows to import")
    if record == "0301":
        problems += _journal_problems(built)
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValidationError(
            VENDOR,
            f"Cash.import {record}",
            f"{len(problems)} problem(s) before sending: {shown}",
            hint="Nothing was sent to CASH. Correct the rows and run again",
        )
    order = {code: i for i, code in enumerate(spec.fields)} if spec else {}
    parts = []
    for fields in built:
        ordered = sorted(fields.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
        parts.append(
            f"<R{record}>"
            + "".join(f"<F{code}>{escape(value)}</F{code}>" for code, value in ordered if value != "")
            + f"</R{record}>"
        )
    xml = '<?xml version="1.0" encoding="UTF-8"?><CASH>' + "".join(parts) + "</CASH>"
    return ImportPayload(record, xml, len(built), expect_import(record, built))


def _row_fields(record: str, row: Mapping[str, Any], index: int, problems: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    by_code: dict[str, Any] = {}
    for key, value in row.items():
        if key == "record":
            continue
        code = _field_key(record, key)
        if code is None:
            problems.append(f"row {index}: unknown field {key!r} (use a 4-digit field code or a known name)")
            continue
        explicit = re.fullmatch(r"[Ff]?\d{4}", str(key).strip()) is not None
        if code in by_code and not explicit:
            continue  # the readable duplicate of a field also given by code (an exported row)
        by_code[code] = value
    for code, value in by_code.items():
        try:
            fields[code] = format_field(FIELDS.get(code), value)
        except ValueError as exc:
            problems.append(f"row {index}: F{code}: {exc}")
    return fields


def _journal_problems(lines: list[dict[str, str]]) -> list[str]:
    problems = []
    totals: dict[tuple[str, str], Decimal] = {}
    for index, fields in enumerate(lines, start=1):
        amount = parse_cash_decimal(fields.get("0307", "")) or Decimal(0)
        key = (fields.get("0901", ""), fields.get("0303", ""))
        totals[key] = totals.get(key, Decimal(0)) + amount
        if fields.get("0701") and not (fields.get("0101") and fields.get("0309")):
            problems.append(
                f"row {index}: a sub-administration line (F0701) needs a relation (F0101) and an invoice number (F0309)"
            )
    for (journal, document), total in totals.items():
        if total != 0:
            problems.append(f"entry {journal}/{document} does not balance to zero (off by {total})")
    return problems


def _normalized(code: str, value: str) -> str:
    """A field's value in one form, whichever way CASH or the caller wrote it."""
    spec = FIELDS.get(code)
    text = (value or "").strip()
    if spec is None or not text:
        return text
    if spec.fmt == "N" and text.isdigit():
        return str(int(text)).zfill(spec.length or 0)
    if spec.fmt == "I":
        amount = parse_cash_decimal(text)
        return format(amount.normalize(), "f") if amount is not None else text
    if spec.fmt == "D":
        day = parse_cash_date(text)
        return day.isoformat() if day else text
    return text.upper() if spec.fmt == "S" else text


def _identity(record: str, fields: Mapping[str, str]) -> str | None:
    """The key of what a record books: journal lines by journal, document number and the year of the
    booking date (a document number is unique per journal and year); other records by their key
    fields. ``None`` when the record cannot be found again."""
    if record == "0301":
        journal = _normalized("0901", fields.get("0901", ""))
        document = _normalized("0303", fields.get("0303", ""))
        day = parse_cash_date(fields.get("0302", ""))
        if not journal or not document.isdigit() or day is None:
            return None
        return f"{journal}/{document}/{day.year}"
    keys = READ_BACK_KEYS.get(record)
    if not keys:
        return None
    values = [_normalized(code, fields.get(code, "")) for code in keys]
    return "/".join(values) if all(values) else None


def _signature(record: str, fields: Mapping[str, str]) -> tuple[str, ...]:
    """What must match for a line read back to be this import's line: for journal lines the ledger
    account, the amount and the booking date; for other records the key alone (their free-text
    fields may come back shortened or reformatted, so only their presence is checked)."""
    if record == "0301":
        return tuple(_normalized(code, fields.get(code, "")) for code in ("0201", "0307", "0302"))
    return ()


def _digest(signatures: Iterable[tuple[str, ...]]) -> str:
    text = json.dumps(sorted(signatures), separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _grouped(record: str, rows: Iterable[Mapping[str, str]]) -> dict[str, list[tuple[str, ...]]] | None:
    groups: dict[str, list[tuple[str, ...]]] = {}
    for fields in rows:
        identity = _identity(record, fields)
        if identity is None:
            return None
        groups.setdefault(identity, []).append(_signature(record, fields))
    return groups


def expect_import(record: str, built: Sequence[Mapping[str, str]]) -> ImportExpectation | None:
    """What reading back must find after importing ``built`` (formatted fields by code), or ``None``
    when LedgerLink cannot find such records again (an unknown record, a line without its keys)."""
    groups = _grouped(record, built)
    if not groups:
        return None
    if record == "0301":
        periods = sorted({f.get("0301", "") for f in built if f.get("0301")} | {f["0302"][:4] for f in built})
        exports: tuple[str, ...] = (f"0301T|{periods[0]}|{periods[-1]}",)
    elif record in ("0101", "2229"):
        keys = sorted({_normalized("0101", f["0101"]) for f in built})
        keyed = len(keys) <= READ_BACK_KEYED_EXPORTS
        exports = tuple(f"{record}|{key}" for key in keys) if keyed else (record,)
    else:
        exports = (record,)
    return ImportExpectation(record, exports, {k: _digest(v) for k, v in groups.items()})


# ==================================================================================================
# Answers: typed values, export XML, error documents and transactions
# ==================================================================================================
def _yy_year(yy: int) -> int:
    return 1900 + yy if yy >= 80 else 2000 + yy


def parse_cash_date(text: str) -> date | None:
    """Every date form CASH sends, as a ``date``; ``None`` for an empty or zero date or none that fits.

    ``YYMMDD`` (the import/export format of date fields such as F0302), ``DD-MM-YYYY`` (the recorded
    API 3.0 export of delivery addresses, F2306: ``06-12-2021``), ``DD-MM-YY``, ``YYYYMMDD``,
    ``YYYY-MM-DD`` and a timestamp ``YYYY-MM-DD HH:MM:SS`` (a transaction's ``creation``, whose
    "never" is ``0000-00-00 00:00:00``). Two-digit years 80-99 are 19xx.
    """
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?", value):
        value = value[:10]
    if not value or set(value) <= {"0", "-", "/", "."}:
        return None
    try:
        if re.fullmatch(r"\d{6}", value):
            return date(_yy_year(int(value[:2])), int(value[2:4]), int(value[4:]))
        if re.fullmatch(r"\d{8}", value):
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        match = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})", value)
        if match:
            day, month, year = (int(g) for g in match.groups())
            return date(year if len(match.group(3)) == 4 else _yy_year(year), month, day)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
    except ValueError:
        return None
    return None


def parse_cash_decimal(text: str) -> Decimal | None:
    """``1264,50``, ``-1264,50``, ``1.264,50``, ``1264.50`` or ``1264,50-`` → ``Decimal``."""
    value = text.strip().replace(" ", "")
    if not value:
        return None
    negative = value.endswith("-")
    value = value.rstrip("-")
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return -amount if negative else amount


def typed_value(spec: FieldSpec, raw: str) -> Any:
    """A raw CASH value as a typed value; ``None`` when empty or not in the field's format."""
    value = raw.strip()
    if not value:
        return None
    if spec.fmt == "N":
        return int(value) if value.isdigit() else None
    if spec.fmt == "I":
        return parse_cash_decimal(value)
    if spec.fmt == "D":
        parsed = parse_cash_date(value)
        return parsed.isoformat() if parsed else None
    if spec.fmt == "Y4":
        if re.fullmatch(r"\d{4}", value) and 1 <= int(value[2:]) <= 12:
            return f"{_yy_year(int(value[:2]))}-{value[2:]}"
        return None
    return value


def readable_row(record: str, raw: Mapping[str, str]) -> dict[str, Any]:
    """The row as LedgerLink writes it: the record code, CASH's ``F…`` fields as sent, and typed
    values under readable names for the fields LedgerLink knows (see the docs' table)."""
    row: dict[str, Any] = {"record": record}
    row.update(raw)
    for key, value in raw.items():
        spec = FIELDS.get(key[1:])
        if spec is None:
            continue
        name = _RECORD_NAMES.get((record, spec.code), spec.name)
        row.setdefault(name, typed_value(spec, value))
    return row


_PREFIX = re.compile(r"^\s*content-type:[^<]*", re.IGNORECASE)


def strip_export_prefix(text: str | None) -> str:
    """The XML of an ``exportResult``, without CASH's ``Content-type: text/xml `` prefix."""
    return _PREFIX.sub("", text or "", count=1).strip()


class _RowTarget:
    """Receives parser events and turns ``<cash><Rxxxx><Fyyyy>…`` into rows, one at a time.

    Never builds a tree: memory holds the row being read and the rows parsed from one chunk.
    """

    MAX_FIELDS = 2000

    def __init__(self) -> None:
        self.depth = 0
        self.rows: list[tuple[str, dict[str, str]]] = []
        self.record: str | None = None
        self.fields: dict[str, str] = {}
        self.field: str | None = None
        self.text: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self._in_errors = False

    def start(self, tag: str, attrib: Any) -> None:
        self.depth += 1
        name = tag.rsplit("}", 1)[-1]
        if self.depth == 1:
            if name.lower() != "cash":
                raise ValueError(f"the root element is <{name}>, not <cash>")
        elif self.depth == 2:
            if name.lower() == "errors":
                self._in_errors = True
            self.record = name[1:] if re.fullmatch(r"R\d+", name) else name
            self.fields = {}
        elif self._in_errors:
            if self.depth == 3:
                self.errors.append({})
            self.field = name
            self.text = []
        elif self.depth == 3:
            self.field = name
            self.text = []
            if len(self.fields) >= self.MAX_FIELDS:
                raise ValueError(f"a record has more than {self.MAX_FIELDS} fields")
        else:
            raise ValueError(f"unexpected nesting: <{name}> inside field {self.field}")

    def data(self, text: str) -> None:
        if self.field is not None:
            self.text.append(text)

    def end(self, tag: str) -> None:
        if self._in_errors:
            if self.depth == 4 and self.errors and self.field:
                self.errors[-1][self.field] = "".join(self.text).strip()
            if self.depth == 2:
                self._in_errors = False
            self.field = None
        elif self.depth == 3 and self.field is not None:
            self.fields[self.field] = "".join(self.text)
            self.field = None
        elif self.depth == 2 and self.record is not None:
            self.rows.append((self.record, self.fields))
            self.record = None
        self.depth -= 1

    def close(self) -> None:
        return None


def _defused_parser(target: Any) -> Any:
    from defusedxml.ElementTree import DefusedXMLParser

    return DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def iter_export_rows(
    export_result: str | None,
    *,
    operation: str = "Cash.export",
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    chunk_chars: int = 64 * 1024,
) -> Iterator[tuple[str, dict[str, str]]]:
    """``(record code, {"F0101": "000100", …})`` for each record in an ``exportResult``, lazily.

    The XML is fed to the parser in chunks and rows are handed over as soon as they are complete.
    A DTD, an entity declaration or an external reference stops the parse at once
    (:class:`UnsafeXmlError`); so does a result over ``max_bytes``.
    """
    from defusedxml import DefusedXmlException

    text = strip_export_prefix(export_result)
    if not text:
        return
    if len(text) > max_bytes:
        raise _unsafe(operation, f"the export is {len(text):,} characters, over the limit of {max_bytes:,}")
    target = _RowTarget()
    parser = _defused_parser(target)
    try:
        for offset in range(0, len(text), chunk_chars):
            parser.feed(text[offset : offset + chunk_chars])
            yield from target.rows
            target.rows.clear()
        parser.close()
    except DefusedXmlException as exc:
        raise _unsafe(operation, f"{type(exc).__name__} ({exc})") from None
    except (ValueError, SyntaxError) as exc:  # ParseError is a SyntaxError
        raise VendorError(
            VENDOR,
            operation,
            f"the export result is not CASH's <cash><R…><F…> XML: {exc}",
            hint="Check that the connection's host is the CASH API 3.0 service description",
        ) from None
    yield from target.rows
    if target.errors:
        raise VendorError(
            VENDOR,
            operation,
            "CASH answered with errors: " + "; ".join(e.get("message", "?") for e in target.errors[:5]),
            hint="Check the record code and its parameters, and that the record is enabled under "
            "'Instellen CashWeb API'",
        )


def parse_error_document(err: str | None, *, operation: str = "transaction") -> list[dict[str, Any]]:
    """The per-line errors of a failed transaction: ``[{"line": 1, "message": …, "source": …}]``."""
    from defusedxml import DefusedXmlException

    text = strip_export_prefix(err)
    if not text:
        return []
    target = _RowTarget()
    parser = _defused_parser(target)
    try:
        parser.feed(text[:DEFAULT_MAX_RESPONSE_BYTES])
        parser.close()
    except DefusedXmlException as exc:
        raise _unsafe(operation, f"{type(exc).__name__} ({exc})") from None
    except (ValueError, SyntaxError):
        return [{"line": None, "message": " ".join(text.split())[:500], "source": ""}]
    errors = []
    for item in target.errors:
        line = item.get("line", "")
        errors.append(
            {
                "line": int(line) if str(line).isdigit() else None,
                "message": item.get("message", ""),
                "source": " ".join(str(item.get("source", "")).split()),
            }
        )
    return errors


def compare_read_back(
    expectation: ImportExpectation, rows: Iterable[tuple[str, Mapping[str, str]]]
) -> ReadBack:
    """Compare exported ``(record, fields)`` rows with what the import should have left."""
    wanted = expectation.entries
    found: dict[str, list[tuple[str, ...]]] = {}
    for record, fields in rows:
        if record != expectation.record_code:
            continue
        fields = {key.removeprefix("F"): value for key, value in fields.items()}  # F0303 → 0303
        identity = _identity(record, fields)
        if identity is not None and identity in wanted:
            found.setdefault(identity, []).append(_signature(record, fields))
    booked, missing, different = [], [], []
    for identity, digest in sorted(wanted.items()):
        if identity not in found:
            missing.append(identity)
        elif _digest(found[identity]) == digest:
            booked.append(identity)
        else:
            different.append(identity)
    return ReadBack(tuple(booked), tuple(missing), tuple(different))


def read_back_transaction(
    transaction_id: str, expectation: ImportExpectation, rows: Iterable[tuple[str, Mapping[str, str]]]
) -> CashTransaction:
    """An import's state from what reading it back found: success when every record is there as
    imported, error when a document number is booked with other lines (CASHWin refuses a number
    already booked in that journal and year), pending otherwise."""
    found = compare_read_back(expectation, rows)
    if found.different:
        errors = [
            {
                "line": None,
                "message": f"{expectation.describe([identity], limit=1)} is in CASH with other lines than "
                "this import: the document number is already booked, so CASHWin does not book this one",
                "source": "",
            }
            for identity in found.different
        ]
        return CashTransaction(id=transaction_id, status=ERROR, errors=errors, read_back=found.as_dict())
    status = PENDING if found.missing else SUCCESS
    return CashTransaction(id=transaction_id, status=status, read_back=found.as_dict())


def still_pending_message(
    transaction_id: str, waited_seconds: float, read_back: Mapping[str, Any] | None = None
) -> str:
    """Why an import may still be unprocessed after ``waited_seconds``: the CASHWin checklist; with
    what reading back found (``read_back``), which records are not in CASH."""
    turns = int(waited_seconds // CASHWIN_INTERVAL)
    if not read_back:
        return (
            f"transaction {transaction_id} is still pending after {waited_seconds:,.0f} s "
            f"({turns} turns of CASHWin's S0067, which looks every 30 s). {CASHWIN_DIAGNOSIS}"
        )
    missing = list(read_back.get("missing") or [])
    count = int(read_back.get("missing_count") or len(missing))
    shown = ", ".join(missing[:5]) + (f" and {count - 5} more" if count > 5 else "")
    return (
        f"the records of import {transaction_id} are not in CASH after {waited_seconds:,.0f} s "
        f"({turns} turns of CASHWin's S0067 'Inlezen berichten', which looks every 30 s): reading them "
        f"back with Cash.export found {read_back.get('booked', 0)} of {read_back.get('booked', 0) + count}; "
        f"not there: {shown}. {CASHWIN_DIAGNOSIS}"
    )


def find_status_operation(operation_names: Iterable[str]) -> str | None:
    """The operation that reads a transaction's status, among those the service offers."""
    by_lower = {name.lower(): name for name in operation_names}
    for candidate in STATUS_OPERATION_NAMES:
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    return None


def _answer_dict(answer: Any) -> dict[str, Any]:
    from zeep.helpers import serialize_object

    data = serialize_object(answer, dict)
    data = data if isinstance(data, dict) else {"result": data}
    # An empty string element deserializes to None in zeep and to "" in CASH's own clients.
    transaction = data.get("transaction")
    if isinstance(transaction, dict) and transaction.get("err") is None and "err" in transaction:
        transaction["err"] = ""
    return data


# ==================================================================================================
# Errors: CASH's response codes, SOAP faults and HTTP answers as LedgerLink errors
# ==================================================================================================
class UnsafeXmlError(VendorError):
    """CASH (or something in between) sent XML LedgerLink refuses to read: a DTD, entity
    declarations, external references, or more than the size limit."""


def _unsafe(operation: str, detail: str) -> UnsafeXmlError:
    return UnsafeXmlError(
        VENDOR,
        operation,
        f"the XML was refused unread: {detail}",
        hint=(
            "LedgerLink reads no DTDs, entities or external references and nothing over the size limit. "
            "Check that the connection's host is CASH itself and not a proxy or an attacker"
        ),
    )


class CashImportFailedError(ValidationError):
    """CASH processed the import and rejected it (transaction status 3); ``details`` holds the lines."""


class StatusOperationMissingError(ConfigurationError):
    """The service offers no operation to read a transaction's status later."""


class CashTransactionTimeoutError(LedgerLinkError):
    """A transaction was still pending when the wait ended; the message says what is likely wrong."""


_CODE_HINTS = {
    800: "Check the record code and its parameters, and that the record is enabled under 'Instellen CashWeb API'",
    900: "Check the import XML and that the record is enabled under 'Instellen CashWeb API'",
    901: "Check the import XML and that the record is enabled under 'Instellen CashWeb API'",
    903: "Check the connection's administration code and map, and that the administration is enabled "
    "under 'Synchronisatie offline' for the API user",
}


def map_response_code(code: Any, message: str, operation: str) -> LedgerLinkError:
    """A ``response.code`` other than 1 as a LedgerLink error."""
    reference = f"response code {code}"
    text = message or "no message"
    if code == 2:
        return AuthenticationError(
            VENDOR,
            operation,
            f"CASH refused the login ({text})",
            hint="Check the relation number (extra relation_number), the API user's e-mail (login) and "
            "password in the connection",
            reference=reference,
        )
    if code == 902:
        return NotFoundError(
            VENDOR, operation, text, hint="The transaction id is unknown to CASH", reference=reference
        )
    if code == 903:
        return ConfigurationError(VENDOR, operation, text, hint=_CODE_HINTS[903], reference=reference)
    if code in (800, 900, 901):
        return ValidationError(VENDOR, operation, text, hint=_CODE_HINTS[code], reference=reference)
    return VendorError(VENDOR, operation, text, reference=reference)


def _fault_string(response: httpx.Response) -> str | None:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(response.content[:65536], forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError):
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "faultstring":
            return (element.text or "").strip()
    return None


def map_http_error(response: httpx.Response, operation: str) -> LedgerLinkError:
    """A non-2xx answer: SOAP faults carry their ``faultstring``; 429 honours ``Retry-After``."""
    fault = _fault_string(response) if b"Fault" in response.content[:65536] else None
    status = response.status_code
    if status == 429 or (fault and re.search(r"too many requests|rate limit", fault, re.IGNORECASE)):
        return RateLimitedError(
            VENDOR,
            operation,
            fault or "too many requests",
            retry_after=parse_retry_after(response) or 60.0,
            hint="CASH accepts at most 100 requests a minute per API user",
            status_code=status,
        )
    if fault:
        return VendorError(
            VENDOR, operation, f"SOAP fault: {fault}", status_code=status, retryable=status in (502, 503, 504)
        )
    if status == 404:
        return NotFoundError(
            VENDOR,
            operation,
            f"not found (HTTP 404) at {response.request.url.copy_with(query=None)}",
            hint="Check the connection's host: it must be the CASH API 3.0 service description (WSDL)",
            status_code=status,
        )
    return default_error(VENDOR, response, operation)


def _zeep_error(exc: Exception, operation: str) -> LedgerLinkError:
    from zeep import exceptions as zeep_exceptions

    if isinstance(exc, zeep_exceptions.DTDForbidden | zeep_exceptions.EntitiesForbidden):
        return _unsafe(operation, f"{type(exc).__name__} in the SOAP answer")
    if isinstance(exc, zeep_exceptions.Fault):
        return VendorError(VENDOR, operation, f"SOAP fault: {exc.message}")
    text = str(exc)
    if "<html" in text[:2000].lower():
        text = "the server answered with an HTML page instead of SOAP"
    return VendorError(
        VENDOR,
        operation,
        f"the answer could not be read as SOAP ({type(exc).__name__}: {text[:300]})",
        hint="Check that the connection's host is the CASH API 3.0 service description (WSDL)",
    )
