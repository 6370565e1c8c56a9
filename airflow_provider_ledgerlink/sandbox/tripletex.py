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
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_ledgerlink.sandbox.data import (
    RowRandom,
    Timeline,
    derive_key,
    row_hash,
    wallclock_seconds,
)
from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response, Router
from airflow_provider_ledgerlink.sandbox.tripletex_model import (
    complete,
    field_names,
    missing_defaults,
    references,
)

__all__ = [
    "ANCHOR",
    "COMPANY_ID",
    "TripletexEmulator",
    "sandbox_tripletex_consumer_token",
    "sandbox_tripletex_employee_token",
    "tripletex_connection_definition",
]

OSLO = ZoneInfo("Europe/Oslo")
ANCHOR = date(2026, 11, 20)
"""End (exclusive) of the generated history, an Oslo date; also where the sandbox clock starts."""
HISTORY_DAYS = 60
URL_BASE = "tripletex.no/v2"
ERROR_LINK = "https://www.tripletex.no/tripletex-api-2-0/"
NO_DIGEST = "'If-None-Match' header not specified"

COMPANY_ID = 9_100_001
CLIENT_COMPANY_IDS = (9_100_002, 9_100_003)
"""Companies the sandbox employee may reach as an accountant (Basic user = company id)."""
EMPLOYEE_ID = 18_301
NOK_ID = 1
NORWAY_ID = 161

DEFAULT_SCALE = {"postings": 5_000, "customers": 200, "suppliers": 40, "products": 60, "orders": 240}
SCALE_PREFIX = "tripletex."
DEFAULT_RATE_LIMIT = 1_000
DEFAULT_RATE_PERIOD = 60
DEFAULT_PAGE_COUNT = 1_000
MAX_WINDOW_ROWS = 100_000
CUSTOMER_SERIES_START = 100_000
"""Where the company's own customer numbers start: the webshop set-up ("Gå til Kunde – innstillinger,
sett kundenummer til 100000") is done, so a shop's customers keep their numbers below it."""
INVOICE_SERIES_START = 50_000
"""Where Tripletex's invoice series starts: kept clear of the shop's, which starts at 6000 ("Om du er
usikker sett denne til f.eks 50000")."""
MAX_SORT_ROWS = 100_000

# Postings come in blocks of four vouchers with 2, 3, 3 and 2 postings: posting ``i`` belongs to
# voucher ``4 * (i // 10) + _VOUCHER_OF[i % 10]``. No table per row is needed at any scale.
_BLOCK_POSTINGS = (2, 3, 3, 2)
_BLOCK_SIZE = sum(_BLOCK_POSTINGS)
_FIRST_OF = (0, 2, 5, 8)
_VOUCHER_OF = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3)

_ACCOUNT_ID_BASE = 3_000_000
_CUSTOMER_ID_BASE = 21_000_000
_SUPPLIER_ID_BASE = 22_000_000
_PRODUCT_ID_BASE = 23_000_000
_ORDER_ID_BASE = 24_000_000
_ORDER_LINE_ID_BASE = 25_000_000
_INVOICE_ID_BASE = 26_000_000
_VOUCHER_ID_BASE = 27_000_000
_POSTING_ID_BASE = 28_000_000
_ADDRESS_ID_BASE = 29_000_000
_RUNTIME_ID_BASE = 90_000_000
_VOUCHER_TYPE_IDS = {"payment": 9_001, "invoice": 9_002, "supplier": 9_003, "bank": 9_004, "manual": 9_005}

# (number, name, type, vat type id, bank account)
_ACCOUNTS: tuple[tuple[int, str, str, int, bool], ...] = (
    (1200, "Maskiner og anlegg", "ASSETS", 0, False),
    (1500, "Kundefordringer", "ASSETS", 0, False),
    (1900, "Kontanter", "ASSETS", 0, False),
    (1920, "Bankinnskudd", "ASSETS", 0, True),
    (2050, "Annen egenkapital", "EQUITY", 0, False),
    (2400, "Leverandørgjeld", "LIABILITIES", 0, False),
    (2700, "Utgående merverdiavgift, høy sats", "LIABILITIES", 0, False),
    (2710, "Inngående merverdiavgift, høy sats", "LIABILITIES", 0, False),
    (2740, "Oppgjørskonto merverdiavgift", "LIABILITIES", 0, False),
    (3000, "Salgsinntekt, avgiftspliktig", "OPERATING_REVENUES", 3, False),
    (3100, "Salgsinntekt, avgiftsfri", "OPERATING_REVENUES", 5, False),
    (4000, "Innkjøp av råvarer og halvfabrikata", "OPERATING_EXPENSES", 1, False),
    (4300, "Innkjøp av varer for videresalg", "OPERATING_EXPENSES", 1, False),
    (5000, "Lønn til ansatte", "OPERATING_EXPENSES", 0, False),
    (6300, "Leie lokale", "OPERATING_EXPENSES", 0, False),
    (6340, "Lys, varme", "OPERATING_EXPENSES", 1, False),
    (6540, "Inventar", "OPERATING_EXPENSES", 1, False),
    (6800, "Kontorrekvisita", "OPERATING_EXPENSES", 1, False),
    (6900, "Telefon", "OPERATING_EXPENSES", 1, False),
    (7140, "Reisekostnad, ikke oppgavepliktig", "OPERATING_EXPENSES", 0, False),
    (7320, "Reklamekostnad", "OPERATING_EXPENSES", 1, False),
    (7770, "Bank- og kortgebyrer", "OPERATING_EXPENSES", 0, False),
    (8040, "Renteinntekt", "INVESTMENT_INCOME", 0, False),
    (8150, "Annen rentekostnad", "COST_OF_CAPITAL", 0, False),
)
_ACCOUNT_BY_NUMBER = {number: (_ACCOUNT_ID_BASE + number, name) for number, name, *_ in _ACCOUNTS}
_EXPENSE_ACCOUNTS = (4000, 4300, 6340, 6540, 6800, 6900, 7320)
_BANK_EXPENSE_ACCOUNTS = (6300, 7140, 7770, 8150)

# id: (name, number, percentage)
_VAT_TYPES: dict[int, tuple[str, str, float]] = {
    0: ("Ingen avgiftsbehandling", "0", 0.0),
    1: ("Fradrag inngående avgift, høy sats", "1", 25.0),
    3: ("Utgående avgift, høy sats", "3", 25.0),
    5: ("Ingen utgående avgift (innenfor mva-loven)", "5", 0.0),
    6: ("Ingen utgående avgift (utenfor mva-loven)", "6", 0.0),
    31: ("Utgående avgift, middels sats", "31", 15.0),
    33: ("Utgående avgift, lav sats", "33", 12.0),
}

_NAME_ROOTS = (
    "Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg",
    "Haugen", "Hagen", "Bakken", "Lie", "Dahl", "Solberg", "Strand", "Fjell", "Lunde", "Sæther",
    "Økland", "Åsen", "Vik", "Moen", "Brekke",
)  # fmt: skip
_TRADES = (
    "Bygg", "Elektro", "Transport", "Regnskap", "Rør", "Maskin", "Handel", "Bakeri", "Blomster",
    "Snekkeri", "Eiendom", "Fisk", "Sport", "Data", "Maling",
)  # fmt: skip
_FORMS = ("AS", "AS", "AS", "ASA", "ENK", "DA")
_CITIES = (
    ("0150", "OSLO"), ("5003", "BERGEN"), ("7010", "TRONDHEIM"), ("4006", "STAVANGER"),
    ("9008", "TROMSØ"), ("3015", "DRAMMEN"), ("1606", "FREDRIKSTAD"), ("4610", "KRISTIANSAND"),
    ("6002", "ÅLESUND"), ("2317", "HAMAR"),
)  # fmt: skip
_STREETS = ("Storgata", "Kirkegata", "Strandveien", "Skolegata", "Industriveien", "Havnegata", "Fjordgata")
_PRODUCTS = (
    "Kaffe 500 g", "Termokopp", "Regnjakke", "Ullsokker", "Sykkellykt", "Turbag 30 l", "Brødboks",
    "Skjærebrett eik", "Lommelykt", "Ostehøvel", "Kaffetrakter", "Ullpledd", "Strikkelue",
)  # fmt: skip
_MONTHS = ("januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september",
           "oktober", "november", "desember")  # fmt: skip

# The schema of the Tripletex specification each kind of object follows (its fields, in order, and
# which of them refer to other objects come from the specification: see ``tripletex_model``).
_SCHEMAS: dict[str, str] = {
    "posting": "Posting", "voucher": "Voucher", "account": "Account", "customer": "Customer",
    "supplier": "Supplier", "product": "Product", "order": "Order", "orderLine": "OrderLine",
    "invoice": "Invoice", "address": "Address", "employee": "Employee", "company": "Company",
    "client": "Client", "whoAmI": "LoggedInUserInfo", "vatType": "VatType", "currency": "Currency",
    "country": "Country", "voucherType": "VoucherType", "session": "SessionToken",
    "paymentType": "PaymentType", "productUnit": "ProductUnit", "accountingPeriod": "AccountingPeriod",
    "change": "Change",
}  # fmt: skip
_KIND_OF_SCHEMA = {schema: kind for kind, schema in _SCHEMAS.items() if kind != "client"}
_PATHS = {
    "posting": "ledger/posting", "voucher": "ledger/voucher", "account": "ledger/account",
    "customer": "customer", "supplier": "supplier", "product": "product", "order": "order",
    "orderLine": "order/orderline", "invoice": "invoice", "address": "address", "employee": "employee",
    "company": "company", "vatType": "ledger/vatType", "currency": "currency", "country": "country",
    "voucherType": "ledger/voucherType", "project": "project", "department": "department",
    "closeGroup": "ledger/closeGroup", "document": "document", "paymentType": "invoice/paymentType",
    "productUnit": "product/unit", "accountingPeriod": "ledger/accountingPeriod",
}  # fmt: skip


def _ref(kind: str, ident: int | None) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {"id": ident, "url": f"{URL_BASE}/{_PATHS[kind]}/{ident}"}


def _ref_json(kind: str, ident: int) -> str:
    return json.dumps(_ref(kind, ident), separators=(",", ":"))


# References that recur in every posting, written once.
_ACCOUNT_JSON = {number: _ref_json("account", _ACCOUNT_ID_BASE + number) for number, *_ in _ACCOUNTS}
_VAT_JSON = {ident: _ref_json("vatType", ident) for ident in _VAT_TYPES}
_NOK_JSON = _ref_json("currency", NOK_ID)


def _token(seed: int | str, label: str) -> str:
    """A token shaped like Tripletex's (base64 of a small JSON), without ``+``, ``/`` or ``-``."""
    nonce = 0
    while True:
        digest = hashlib.blake2b(f"{seed}:{label}:{nonce}".encode(), digest_size=16).hexdigest()
        raw = json.dumps({"tokenId": int(digest[:7], 16), "token": digest}, separators=(",", ":"))
        text = base64.b64encode(raw.encode()).decode()
        if "+" not in text and "/" not in text:
            return text
        nonce += 1


def sandbox_tripletex_consumer_token(seed: int | str = 42) -> str:
    """The consumer token the emulator accepts for ``seed``."""
    return _token(seed, "tripletex-consumer")


def sandbox_tripletex_employee_token(seed: int | str = 42) -> str:
    """The employee token the emulator accepts for ``seed``."""
    return _token(seed, "tripletex-employee")


def tripletex_connection_definition(tripletex_url: str, seed: int | str = 42, **extra: Any) -> dict[str, Any]:
    """Airflow's JSON form of a ``ledgerlink_tripletex`` connection to the emulator at ``tripletex_url``
    (``sandbox.tripletex_url``); ``extra`` adds or overrides connection extras."""
    return {
        "conn_type": "ledgerlink_tripletex",
        "host": tripletex_url.rstrip("/"),
        "password": sandbox_tripletex_employee_token(seed),
        "extra": {
            "consumer_token": sandbox_tripletex_consumer_token(seed),
            "environment": "production",
            "company_id": 0,
            **extra,
        },
    }


# ==================================================================================================
# Errors
# ==================================================================================================
class ApiError(Exception):
    """A Tripletex error answer; rendered with the request id by the emulator."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        validation: list[tuple[str, str]] | None = None,
        developer: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation = validation
        self.developer = developer
        self.headers = dict(headers or {})

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "link": ERROR_LINK,
            "developerMessage": self.developer,
            "validationMessages": [
                {"field": name, "message": text, "path": name, "rootId": None}
                for name, text in self.validation
            ]
            if self.validation is not None
            else None,
            "requestId": request_id,
        }


def _invalid(field_name: str, message: str, code: int = 18000) -> ApiError:
    return ApiError(422, code, "Validering feilet.", validation=[(field_name, message)])


def _not_found(kind: str, ident: Any) -> ApiError:
    return ApiError(
        404, 6000, "Objektet ble ikke funnet.", developer=f"{kind} with id {ident} does not exist"
    )


# ==================================================================================================
# Time: Oslo wall clock
# ==================================================================================================
@lru_cache(maxsize=65536)
def _oslo_offset(hour_key: int) -> str:
    """``+01:00`` or ``+02:00`` for an Oslo wall-clock hour (seconds // 3600 since 1970)."""
    local = datetime(1970, 1, 1) + timedelta(hours=hour_key)
    offset = local.replace(tzinfo=OSLO).utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def oslo_timestamp(seconds: int) -> str:
    """Oslo wall-clock seconds as Tripletex writes change timestamps: ``2026-11-19T14:03:22+01:00``."""
    moment = datetime(1970, 1, 1) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds") + _oslo_offset(seconds // 3600)


@lru_cache(maxsize=4096)
def _day_text(day_number: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day_number)).isoformat()


def _day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _parse_date(text: str | None, name: str, *, required: bool = False) -> date | None:
    if text is None or text == "":
        if required:
            raise _invalid(name, "Kan ikke være null.", code=15000)
        return None
    try:
        return date.fromisoformat(text.strip()[:10]) if "T" in text else date.fromisoformat(text.strip())
    except ValueError:
        raise _invalid(name, f"Ugyldig dato: {text}. Format er yyyy-MM-dd.", code=15000) from None


def _parse_instant_wall(text: str, name: str) -> int:
    """``changedSince`` as Oslo wall-clock seconds: a value with ``Z`` or an offset is converted;
    a bare ``YYYY-MM-DD[THH:MM[:SS]]`` is taken as Oslo time (Tripletex is Norwegian)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise _invalid(name, f"Ugyldig tidspunkt: {text}", code=21000) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(OSLO).replace(tzinfo=None)
    return wallclock_seconds(moment)


def _money(cents: int) -> float:
    return cents / 100


def _money_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _to_cents(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(name, "Må være et tall.", code=15000)
    try:
        return round(float(value) * 100)
    except ValueError:
        raise _invalid(name, "Må være et tall.", code=15000) from None


# ==================================================================================================
# ``fields`` and ``sorting``
# ==================================================================================================
FieldTree = dict[str, "FieldTree | None"]


def parse_fields(text: str | None) -> FieldTree | None:
    """``*,account(number,name),changes`` → ``{"*": None, "account": {...}, "changes": None}``.

    ``None`` (no ``fields``) means the default: every field, references as ``{id, url}``.
    """
    if text is None or not text.strip():
        return None
    tree: FieldTree = {}
    stack: list[FieldTree] = [tree]
    name = ""
    for char in text:
        if char == "(":
            child: FieldTree = {}
            stack[-1][name.strip()] = child
            stack.append(child)
            name = ""
        elif char == ")":
            if name.strip():
                stack[-1][name.strip()] = None
            name = ""
            if len(stack) == 1:
                raise ApiError(
                    400, 11000, "Ugyldig filter.", developer=f"Unbalanced parentheses in fields: {text}"
                )
            stack.pop()
        elif char == ",":
            if name.strip():
                stack[-1][name.strip()] = None
            name = ""
        else:
            name += char
    if name.strip():
        stack[-1][name.strip()] = None
    if len(stack) != 1:
        raise ApiError(400, 11000, "Ugyldig filter.", developer=f"Unbalanced parentheses in fields: {text}")
    return tree


def _parse_sorting(text: str | None) -> list[tuple[str, bool]]:
    items = []
    for part in (text or "").split(","):
        part = part.strip()
        if part:
            items.append((part.lstrip("-"), part.startswith("-")))
    return items


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, dict):
        return (1, value.get("id") or 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


# ==================================================================================================
# Sessions and rate limits
# ==================================================================================================
@dataclass
class _Session:
    token: str
    ident: int
    consumer: str
    employee: str
    expiration: date
    requests: int = 0
    revoked: bool = False


@dataclass
class _RateWindow:
    started: float
    used: int = 0


@dataclass
class RateLimitSettings:
    limit: int = DEFAULT_RATE_LIMIT
    period: float = DEFAULT_RATE_PERIOD
    omit_reset_on_429: bool = False


@dataclass
class _Counters:
    sessions_created: int = 0
    rate_limited: int = 0
    min_remaining: int | None = None
    invoices_sent: int = 0
    requests_by_session: dict[str, int] = field(default_factory=dict)


# ==================================================================================================
# The emulator
# ==================================================================================================
class TripletexEmulator(Emulator):
    """Tripletex API v2 for one company. See the module docstring for what it covers.

    ``consumer_token`` and ``employee_token`` are the valid tokens; ``rate_limit`` the live limit
    settings; ``session_max_requests`` (``None``: unlimited) ends every session after that many
    authenticated calls; ``session_now`` (``None``: the real clock) is the instant session expiry is
    judged at, settable to test the Oslo-midnight trap.
    """

    name = "tripletex"
    prefix = "/tripletex"

    def __init__(self, seed: int = 42, scale: Mapping[str, int] | None = None, anchor: date = ANCHOR) -> None:
        self.seed = seed
        self.anchor = anchor
        self.consumer_token = sandbox_tripletex_consumer_token(seed)
        self.employee_token = sandbox_tripletex_employee_token(seed)
        self.company_id = COMPANY_ID
        self.rate_limit = RateLimitSettings()
        self.max_window_rows = MAX_WINDOW_ROWS
        self.session_max_requests: int | None = None
        self.session_now: datetime | None = None
        self.echo_requests = False
        self._lock = threading.RLock()
        self._counts = dict(DEFAULT_SCALE)
        self._started = time.monotonic()
        self._anchor_wall = wallclock_seconds(datetime.combine(anchor, datetime.min.time()))
        self._build({key.removeprefix(SCALE_PREFIX): rows for key, rows in (scale or {}).items()})
        self.reset_state()
        self._router = Router()
        self._routes()

    # -- set-up ------------------------------------------------------------------------------------
    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        known = {key: value for key, value in scale.items() if key.startswith(SCALE_PREFIX)}
        if known:
            self._build({key[len(SCALE_PREFIX) :]: value for key, value in known.items()})
        return list(known)

    def _build(self, scale: Mapping[str, int]) -> None:
        unknown = sorted(set(scale) - set(DEFAULT_SCALE))
        if unknown:
            raise ValueError(
                f"unknown Tripletex dataset(s) in scale: {', '.join(SCALE_PREFIX + u for u in unknown)}; "
                f"known: {', '.join(SCALE_PREFIX + k for k in DEFAULT_SCALE)}"
            )
        for name, rows in scale.items():
            if int(rows) < 0:
                raise ValueError(f"row count for {SCALE_PREFIX}{name} must not be negative")
            self._counts[name] = int(rows)
        blocks = -(-self._counts["postings"] // _BLOCK_SIZE)
        self.postings = blocks * _BLOCK_SIZE
        self.vouchers = blocks * len(_BLOCK_POSTINGS)
        self.customers = max(1, self._counts["customers"])
        self.suppliers = max(1, self._counts["suppliers"])
        self.products = max(1, self._counts["products"])
        self.orders = self._counts["orders"]
        start = datetime.combine(self.anchor - timedelta(days=HISTORY_DAYS), datetime.min.time())
        end = datetime.combine(self.anchor, datetime.min.time())
        self._keys = {name: derive_key(self.seed, "tripletex", name) for name in DEFAULT_SCALE}
        self._keys["vouchers"] = derive_key(self.seed, "tripletex", "vouchers")
        self._voucher_times = Timeline(start, end, max(self.vouchers, 1), self._keys["vouchers"])
        self._order_times = Timeline(start, end, max(self.orders, 1), self._keys["orders"])
        self._change_times = {
            kind: Timeline(start, end, count, self._keys[kind + "s"])
            for kind, count in (
                ("customer", self.customers),
                ("supplier", self.suppliers),
                ("product", self.products),
            )
        }
        self._voucher_cache: tuple[int, tuple[Any, ...]] = (-1, ())
        self._fragment_cache: tuple[int, tuple[str, ...]] = (-1, ())

    def reset_state(self) -> None:
        """Forget created objects, sessions, revocations and rate-limit periods, and put the knobs
        (rate limit, session policy and clock, window limit) back to their defaults."""
        with self._lock:
            self.rate_limit = RateLimitSettings()
            self.max_window_rows = MAX_WINDOW_ROWS
            self.session_max_requests = None
            self.session_now = None
            self.echo_requests = False
            """When true, error answers repeat the request's URL (a hostile server, for leak tests)."""
            self._objects: dict[str, dict[int, dict[str, Any]]] = {
                kind: {}
                for kind in (
                    "customer",
                    "supplier",
                    "product",
                    "order",
                    "orderLine",
                    "invoice",
                    "voucher",
                    "posting",
                    "address",
                )
            }
            self._next_id = _RUNTIME_ID_BASE
            self.customer_series_start = CUSTOMER_SERIES_START
            self.invoice_series_start = INVOICE_SERIES_START
            self._next_invoice_number = INVOICE_SERIES_START + self.orders
            self._next_voucher_number = self.vouchers + 1
            self._sessions: dict[str, _Session] = {}
            self._revoked_employee_tokens: set[str] = set()
            self._rate: dict[tuple[str, str], _RateWindow] = {}
            self._mutations = 0
            self.counters = _Counters()
            self.sent_invoices: list[int] = []
            self.received: list[dict[str, Any]] = []
            """The write requests' bodies as received (raw bytes), oldest first."""
            self._started = time.monotonic()

    # -- clocks ------------------------------------------------------------------------------------
    def now_wall(self) -> int:
        """The data clock: Oslo wall-clock seconds, starting at the anchor when the state was reset."""
        return self._anchor_wall + int(time.monotonic() - self._started)

    def _session_clock(self) -> datetime:
        return self.session_now or datetime.now(timezone.utc)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # -- routing -----------------------------------------------------------------------------------
    def _routes(self) -> None:
        add = self._router.add
        add("PUT", r"/token/session/:create", self._create_session)
        add("GET", r"/token/session/>whoami", self._auth(self._who_am_i))
        add("DELETE", r"/token/session/(?P<token>[^/]+)", self._auth(self._delete_session))
        add("GET", r"/company/>withloginaccess", self._auth(self._login_access))
        add("GET", r"/ledger/posting", self._auth(self._list_postings))
        add("GET", r"/ledger/posting/(?P<ident>\d+)", self._auth(self._get_one("posting")))
        add("GET", r"/ledger/voucher", self._auth(self._list_vouchers))
        add("POST", r"/ledger/voucher", self._auth(self._create_voucher))
        add("GET", r"/ledger/voucher/(?P<ident>\d+)", self._auth(self._get_one("voucher")))
        add("GET", r"/ledger/account", self._auth(self._list_simple("account")))
        add("GET", r"/ledger/account/(?P<ident>\d+)", self._auth(self._get_one("account")))
        add("GET", r"/customer", self._auth(self._list_simple("customer")))
        add("POST", r"/customer", self._auth(self._create_customer))
        add("GET", r"/customer/(?P<ident>\d+)", self._auth(self._get_one("customer")))
        add("PUT", r"/customer/(?P<ident>\d+)", self._auth(self._update_customer))
        add("GET", r"/supplier", self._auth(self._list_simple("supplier")))
        add("GET", r"/supplier/(?P<ident>\d+)", self._auth(self._get_one("supplier")))
        add("GET", r"/product", self._auth(self._list_simple("product")))
        add("GET", r"/product/(?P<ident>\d+)", self._auth(self._get_one("product")))
        add("GET", r"/order", self._auth(self._list_simple("order")))
        add("POST", r"/order", self._auth(self._create_order))
        add("GET", r"/order/(?P<ident>\d+)", self._auth(self._get_one("order")))
        add("PUT", r"/order/(?P<ident>\d+)/:invoice", self._auth(self._invoice_order))
        add("GET", r"/invoice", self._auth(self._list_simple("invoice")))
        add("GET", r"/invoice/(?P<ident>\d+)", self._auth(self._get_one("invoice")))
        add("GET", r"/order/orderline/(?P<ident>\d+)", self._auth(self._get_one("orderLine")))
        add("GET", r"/ledger/voucher/>externalvouchernumber", self._auth(self._vouchers_by_external_number))
        for kind in ("vatType", "voucherType", "currency", "country"):
            add("GET", "/" + _PATHS[kind], self._auth(self._list_catalog(kind)))
            add("GET", "/" + _PATHS[kind] + r"/(?P<ident>\d+)", self._auth(self._get_one(kind)))
        add("GET", r"/employee/(?P<ident>\d+)", self._auth(self._get_one("employee")))
        add("GET", r"/company/(?P<ident>\d+)", self._auth(self._get_one("company")))

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        match = re.fullmatch(r"/v2(/.*)?", request.subpath, re.IGNORECASE)
        rate_headers: dict[str, str] = {}
        request.rate_headers = rate_headers  # type: ignore[attr-defined]
        try:
            if match is None:
                raise ApiError(
                    404, 6000, "Objektet ble ikke funnet.", developer=f"No such path: {request.subpath}"
                )
            path = (match.group(1) or "/").rstrip("/") or "/"
            response = self._router.dispatch(request, path)
            if response is None:
                raise ApiError(404, 6000, "Objektet ble ikke funnet.", developer=f"No such endpoint: {path}")
        except ApiError as error:
            body = error.body(request_id)
            if self.echo_requests:
                # A hostile answer for tests: the request as received (URL-encoded query included)
                # in the error's texts, as a server's diagnostics may show it.
                echo = f"{request.method} {request.path}?{request.query_string}"
                body["developerMessage"] = f"{body['developerMessage'] or ''} [request: {echo}]"
                for item in body["validationMessages"] or []:
                    item["message"] = f"{item['message']} ({echo})"
            response = Response.json(body, error.status, headers=error.headers)
        response.headers["x-tlx-request-id"] = request_id
        for key, value in rate_headers.items():
            response.headers.setdefault(key, value)
        return response

    # -- authentication and rate limits ------------------------------------------------------------
    def _auth(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def guarded(request: Request, **kwargs: str) -> Response:
            session, company = self._authenticate(request)
            self._count_request(request, session.consumer, session.employee)
            request.session = session  # type: ignore[attr-defined]
            request.company_id = company  # type: ignore[attr-defined]
            return handler(request, **kwargs)

        return guarded

    def _authenticate(self, request: Request) -> tuple[_Session, int]:
        header = request.header("authorization") or ""
        scheme, _, value = header.strip().partition(" ")
        unauthorized = ApiError(
            401,
            3000,
            "Ikke innlogget.",
            developer="Authentication failed: missing, unknown or expired session token",
        )
        if scheme.lower() != "basic" or not value:
            raise unauthorized
        try:
            user, sep, token = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise unauthorized from None
        if not sep:
            raise unauthorized
        with self._lock:
            session = self._sessions.get(token)
            if session is None or session.revoked or session.employee in self._revoked_employee_tokens:
                raise unauthorized
            expires = datetime.combine(session.expiration, datetime.min.time(), tzinfo=OSLO)
            if self._session_clock() >= expires:
                raise unauthorized
            limit = self.session_max_requests
            if limit is not None and session.requests >= limit:
                raise unauthorized
            session.requests += 1
        user = user.strip()
        if user in ("", "0"):
            return session, self.company_id
        if not user.isdigit():
            raise unauthorized
        company = int(user)
        if company != self.company_id and company not in CLIENT_COMPANY_IDS:
            raise ApiError(
                403,
                9000,
                "Du har ikke tilgang til denne funksjonen.",
                developer=f"No login access to company {company}",
            )
        return session, company

    def _count_request(self, request: Request, consumer: str, employee: str) -> None:
        settings = self.rate_limit
        now = time.monotonic()
        with self._lock:
            key = (consumer, employee)
            window = self._rate.get(key)
            if window is None or now - window.started >= settings.period:
                window = self._rate[key] = _RateWindow(now)
            reset = max(0, round(window.started + settings.period - now + 0.4999))
            if window.used >= settings.limit:
                self.counters.rate_limited += 1
                headers = {"X-Rate-Limit-Limit": str(settings.limit), "X-Rate-Limit-Remaining": "0"}
                if not settings.omit_reset_on_429:
                    headers["X-Rate-Limit-Reset"] = str(reset)
                raise ApiError(
                    429, 429, "For mange forespørsler.", developer="Rate limit exceeded", headers=headers
                )
            window.used += 1
            remaining = settings.limit - window.used
            low = self.counters.min_remaining
            self.counters.min_remaining = remaining if low is None else min(low, remaining)
        request.rate_headers.update(  # type: ignore[attr-defined]
            {
                "X-Rate-Limit-Limit": str(settings.limit),
                "X-Rate-Limit-Remaining": str(remaining),
                "X-Rate-Limit-Reset": str(reset),
            }
        )

    # -- sessions ----------------------------------------------------------------------------------
    def _create_session(self, request: Request) -> Response:
        consumer = request.param("consumerToken")
        employee = request.param("employeeToken")
        expiration_text = request.param("expirationDate")
        missing = [
            (f"arg:{name}", "Kan ikke være null.")
            for name, value in (
                ("consumerToken", consumer),
                ("employeeToken", employee),
                ("expirationDate", expiration_text),
            )
            if not value
        ]
        if missing:
            raise ApiError(422, 18000, "Validering feilet.", validation=missing)
        assert consumer and employee and expiration_text
        if consumer != self.consumer_token:
            raise _invalid("arg:consumerToken", "The consumer token is invalid or does not exist.")
        if employee != self.employee_token or employee in self._revoked_employee_tokens:
            raise _invalid("arg:employeeToken", "The employee token is invalid or does not exist.")
        try:
            expiration = date.fromisoformat(expiration_text.strip()[:10])
        except ValueError:
            raise _invalid("arg:expirationDate", f"Ugyldig dato: {expiration_text}") from None
        self._count_request(request, consumer, employee)
        with self._lock:
            ident = self._new_id()
            token = _token(self.seed, f"session:{ident}:{uuid.uuid4().hex}")
            self._sessions[token] = _Session(token, ident, consumer, employee, expiration)
            self.counters.sessions_created += 1
        value = {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/token/session/{ident}",
            "consumerToken": {"id": 501, "url": f"{URL_BASE}/token/consumer/501"},
            "employeeToken": {"id": 502, "url": f"{URL_BASE}/token/employee/502"},
            "expirationDate": expiration.isoformat(),
            "token": token,
        }
        return Response.json({"value": value})

    def _who_am_i(self, request: Request) -> Response:
        company = request.company_id  # type: ignore[attr-defined]
        value = {
            "employeeId": EMPLOYEE_ID,
            "actualEmployeeId": EMPLOYEE_ID,
            "employee": _ref("employee", EMPLOYEE_ID),
            "companyId": company,
            "company": _ref("company", company),
            "language": "no",
            "loggedInWithConnect": False,
            "employeeIsProxy": company != self.company_id,
        }
        tree = parse_fields(request.param("fields"))
        return Response.json({"value": self._project("whoAmI", value, tree)})

    def _delete_session(self, request: Request, token: str) -> Response:
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                raise _not_found("session token", "?")
            session.revoked = True
        return Response.empty(204, None)

    def _login_access(self, request: Request) -> Response:
        companies = [self._object("client", ident) for ident in (self.company_id, *CLIENT_COMPANY_IDS)]
        return self._list_response(request, "client", [c for c in companies if c is not None])

    # -- sandbox control ---------------------------------------------------------------------------
    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        if path == "credentials" and request.method == "GET":
            return Response.json(
                {
                    "consumer_token": self.consumer_token,
                    "employee_token": self.employee_token,
                    "company_id": self.company_id,
                    "client_company_ids": list(CLIENT_COMPANY_IDS),
                }
            )
        if path == "rate-limit" and request.method == "GET":
            settings = self.rate_limit
            return Response.json(
                {
                    "limit": settings.limit,
                    "period": settings.period,
                    "omit_reset_on_429": settings.omit_reset_on_429,
                    "rate_limited": self.counters.rate_limited,
                    "min_remaining": self.counters.min_remaining,
                }
            )
        if path == "rate-limit" and request.method in ("POST", "PUT"):
            try:
                data = request.json()
                self.configure_rate_limit(
                    **{k: data[k] for k in ("limit", "period", "omit_reset_on_429") if k in data}
                )
            except (ValueError, TypeError) as error:
                return Response.json(
                    {"error": f"expected {{'limit', 'period', 'omit_reset_on_429'}}: {error}"}, 400
                )
            return Response.json({"status": "ok"})
        if path == "number-series" and request.method in ("POST", "PUT"):
            try:
                data = request.json()
                self.configure_number_series(customer=data.get("customer"), invoice=data.get("invoice"))
            except (ValueError, TypeError, AttributeError) as error:
                return Response.json({"error": f"expected {{'customer', 'invoice'}}: {error}"}, 400)
            return Response.json(
                {"customer": self.customer_series_start, "invoice": self.invoice_series_start}
            )
        if path == "sessions/expire" and request.method == "POST":
            return Response.json({"expired": self.expire_sessions()})
        if path == "sessions" and request.method == "GET":
            return Response.json({"created": self.counters.sessions_created, "active": len(self._sessions)})
        if path == "tokens/revoke" and request.method == "POST":
            try:
                token = str(request.json()["employee_token"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'employee_token': '…'}"}, 400)
            with self._lock:
                self._revoked_employee_tokens.add(token)
            return Response.json({"revoked": True})
        if path == "objects" and request.method == "GET":
            with self._lock:
                return Response.json({kind: len(items) for kind, items in self._objects.items()})
        return super().handle_control(request, path)

    def configure_rate_limit(
        self, limit: int | None = None, period: float | None = None, omit_reset_on_429: bool | None = None
    ) -> None:
        """Change the rate limit; the current periods, and the 429 and lowest-remaining counters,
        start again."""
        with self._lock:
            if limit is not None:
                if int(limit) < 1:
                    raise ValueError("limit must be at least 1")
                self.rate_limit.limit = int(limit)
            if period is not None:
                if float(period) <= 0:
                    raise ValueError("period must be positive")
                self.rate_limit.period = float(period)
            if omit_reset_on_429 is not None:
                self.rate_limit.omit_reset_on_429 = bool(omit_reset_on_429)
            self._rate.clear()
            self.counters.rate_limited = 0
            self.counters.min_remaining = None

    def configure_number_series(self, customer: int | None = None, invoice: int | None = None) -> None:
        """Tripletex's settings "Kunde – innstillinger: kundenummer" and "Bilagstyper/nummerserier":
        where the next customer and invoice numbers Tripletex gives start (numbers already given
        stay as they are)."""
        with self._lock:
            if customer is not None:
                if int(customer) < 1:
                    raise ValueError("customer must be a positive number")
                self.customer_series_start = int(customer)
            if invoice is not None:
                if int(invoice) < 1:
                    raise ValueError("invoice must be a positive number")
                self.invoice_series_start = int(invoice)
                self._next_invoice_number = int(invoice)

    def expire_sessions(self) -> int:
        """End every session now, as if they all reached their expiration date."""
        with self._lock:
            live = [s for s in self._sessions.values() if not s.revoked]
            for session in live:
                session.revoked = True
            return len(live)

    def revoke_employee_token(self, token: str | None = None) -> None:
        with self._lock:
            self._revoked_employee_tokens.add(token or self.employee_token)

    def created(self, kind: str) -> list[dict[str, Any]]:
        """Objects of ``kind`` created through the API (copies), in creation order."""
        with self._lock:
            return [
                json.loads(json.dumps(obj))
                for ident, obj in sorted(self._objects[kind].items())
                if ident > _RUNTIME_ID_BASE
            ]

    # ==============================================================================================
    # Generated data
    # ==============================================================================================
    def _voucher_values(self, v: int) -> tuple[Any, ...]:
        """What the postings of voucher ``v`` share; the last one is cached (postings come in runs)."""
        cached = self._voucher_cache
        if cached[0] == v:
            return cached[1]
        key = self._keys["vouchers"]
        h = row_hash(key, v)
        amounts = row_hash(key, v, 1)
        kind = v % len(_BLOCK_POSTINGS)
        seconds = self._voucher_times.seconds(v)
        day = _day_text(seconds // 86400)
        customer = _CUSTOMER_ID_BASE + 1 + (h >> 8) % self.customers
        supplier = _SUPPLIER_ID_BASE + 1 + (h >> 24) % self.suppliers
        net = 10_000 + (amounts & 0xFFFFFF) % 2_500_000
        if net > 500_000 and (amounts >> 24) & 3:
            net //= 10  # most amounts are small, a few are large
        vat = net // 4
        invoice_number = str(10_000 + v)
        lines: tuple[tuple[Any, ...], ...]
        if kind == 0:  # a customer pays into the bank
            lines = (
                (1920, net, None, None, "INCOMING_PAYMENT_OPPOSITE", 0),
                (1500, -net, customer, None, "INCOMING_PAYMENT", 0),
            )
            description, voucher_type = f"Innbetaling faktura {10_000 + v - 3}", "payment"
            invoice_number = str(10_000 + v - 3)
        elif kind == 1:  # an outgoing invoice with 25 % VAT
            lines = (
                (1500, net + vat, customer, None, "OUTGOING_INVOICE_CUSTOMER_POSTING", 0),
                (3000, -net, None, None, None, 3),
                (2700, -vat, None, None, None, 3),
            )
            description, voucher_type = f"Faktura {invoice_number}", "invoice"
        elif kind == 2:  # a supplier invoice with deductible VAT
            account = _EXPENSE_ACCOUNTS[(h >> 40) % len(_EXPENSE_ACCOUNTS)]
            lines = (
                (account, net, None, None, "INVOICE_EXPENSE", 1),
                (2710, vat, None, None, None, 1),
                (2400, -(net + vat), None, supplier, "INCOMING_INVOICE_CUSTOMER_POSTING", 0),
            )
            name = _ACCOUNT_BY_NUMBER[account][1]
            description, voucher_type = f"Leverandørfaktura {name.lower()}", "supplier"
            invoice_number = str(70_000 + v)
        else:  # a bank payment of an expense
            account = _BANK_EXPENSE_ACCOUNTS[(h >> 40) % len(_BANK_EXPENSE_ACCOUNTS)]
            month = _MONTHS[int(day[5:7]) - 1]
            lines = ((account, net // 10, None, None, None, 0), (1920, -(net // 10), None, None, None, 0))
            description, voucher_type = f"{_ACCOUNT_BY_NUMBER[account][1]} {month}", "bank"
            invoice_number = ""
        values = (day, description, voucher_type, lines, invoice_number)
        self._voucher_cache = (v, values)
        return values

    def _first_posting(self, v: int) -> int:
        return (v // 4) * _BLOCK_SIZE + _FIRST_OF[v % 4]

    def _posting_parts(self, i: int) -> tuple[Any, ...]:
        block, offset = divmod(i, _BLOCK_SIZE)
        j = _VOUCHER_OF[offset]
        v = block * 4 + j
        row = offset - _FIRST_OF[j]
        day, description, _type, lines, invoice_number = self._voucher_values(v)
        account, cents, customer, supplier, posting_type, vat = lines[row]
        return v, row, day, description, account, cents, customer, supplier, posting_type, vat, invoice_number

    def _posting_fragments(self, v: int) -> tuple[str, ...]:
        """The JSON of voucher ``v``'s postings after ``"url"``, one string per posting (cached:
        the postings of one voucher are always asked for together)."""
        cached = self._fragment_cache
        if cached[0] == v:
            return cached[1]
        day, description, _type, lines, invoice_number = self._voucher_values(v)
        voucher = _VOUCHER_ID_BASE + v
        # Generated descriptions never hold quotes, backslashes or control characters.
        head = (
            f'"voucher":{{"id":{voucher},"url":"{URL_BASE}/ledger/voucher/{voucher}"}},'
            f'"date":"{day}","description":"{description}",'
        )
        fragments = []
        for row, (account, cents, customer, supplier, posting_type, vat) in enumerate(lines):
            amount = _money_text(cents)
            customer_json = (
                f'{{"id":{customer},"url":"{URL_BASE}/customer/{customer}"}}' if customer else "null"
            )
            supplier_json = (
                f'{{"id":{supplier},"url":"{URL_BASE}/supplier/{supplier}"}}' if supplier else "null"
            )
            type_json = f'"{posting_type}"' if posting_type else "null"
            system = "true" if row == 2 and vat == 3 else "false"
            fragments.append(
                f'{head}"account":{_ACCOUNT_JSON[account]},'
                f'"customer":{customer_json},"supplier":{supplier_json},"employee":null,"project":null,'
                f'"product":null,"department":null,"vatType":{_VAT_JSON[vat]},'
                f'"amount":{amount},"amountCurrency":{amount},"amountGross":{amount},"amountGrossCurrency":{amount},'
                f'"currency":{_NOK_JSON},"closeGroup":null,'
                f'"invoiceNumber":"{invoice_number}","termOfPayment":"{day}","row":{row + 1},"type":{type_json},'
                f'"externalRef":"","systemGenerated":{system},"matched":false{_posting_tail()}}}'
            )
        result = tuple(fragments)
        self._fragment_cache = (v, result)
        return result

    def _posting_json(self, i: int) -> str:
        """Posting ``i`` with the default fields, written straight to JSON (the hot path)."""
        block, offset = divmod(i, _BLOCK_SIZE)
        j = _VOUCHER_OF[offset]
        ident = _POSTING_ID_BASE + i
        fragment = self._posting_fragments(block * 4 + j)[offset - _FIRST_OF[j]]
        return f'{{"id":{ident},"version":0,"url":"{URL_BASE}/ledger/posting/{ident}",{fragment}'

    def _posting_dict(self, i: int) -> dict[str, Any]:
        v, row, day, description, account, cents, customer, supplier, posting_type, vat, invoice_number = (
            self._posting_parts(i)
        )
        posting = _posting(
            _POSTING_ID_BASE + i,
            voucher=_VOUCHER_ID_BASE + v,
            day=day,
            description=description,
            account=_ACCOUNT_ID_BASE + account,
            cents=cents,
            customer=customer,
            supplier=supplier,
            vat=vat,
            row=row + 1,
            invoice_number=invoice_number,
            posting_type=posting_type,
            system_generated=row == 2 and vat == 3,
        )
        posting["changes"] = [self._change("CREATE", self._voucher_times.seconds(v))]
        return posting

    def _voucher_dict(self, v: int) -> dict[str, Any]:
        day, description, voucher_type, lines, _invoice = self._voucher_values(v)
        first = self._first_posting(v)
        ident = _VOUCHER_ID_BASE + v
        number = v + 1
        return {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/ledger/voucher/{ident}",
            "date": day,
            "number": number,
            "tempNumber": 0,
            "year": int(day[:4]),
            "description": description,
            "voucherType": _ref("voucherType", _VOUCHER_TYPE_IDS[voucher_type]),
            "reverseVoucher": None,
            "postings": [_ref("posting", _POSTING_ID_BASE + first + n) for n in range(len(lines))],
            "document": None,
            "attachment": None,
            "externalVoucherNumber": "",
            "vendorInvoiceNumber": "",
            "numberAsString": f"{number}-{day[:4]}",
            "displayName": f"{number}-{day[:4]} {description}",
            "changes": [self._change("CREATE", self._voucher_times.seconds(v))],
        }

    def _change(self, change_type: str, wall_seconds: int) -> dict[str, Any]:
        return {
            "employeeId": EMPLOYEE_ID,
            "timestamp": oslo_timestamp(wall_seconds),
            "changeType": change_type,
        }

    def _changes_for(self, kind: str, k: int) -> tuple[list[dict[str, Any]], int]:
        last = self._change_times[kind].seconds(k)
        h = row_hash(self._keys[kind + "s"], k, 7)
        created = last - (h % 3) * ((h >> 8) % 200) * 86400
        changes = [self._change("CREATE", created)]
        if created != last:
            changes.append(self._change("UPDATE", last))
        return changes, len(changes)

    def _party_dict(self, kind: str, k: int) -> dict[str, Any]:
        key = self._keys[kind + "s"]
        rng = RowRandom(key, k)
        base = _CUSTOMER_ID_BASE if kind == "customer" else _SUPPLIER_ID_BASE
        ident = base + 1 + k
        root = _NAME_ROOTS[rng.below(len(_NAME_ROOTS))]
        trade = _TRADES[rng.below(len(_TRADES))]
        name = f"{root} {trade} {_FORMS[rng.below(len(_FORMS))]}"
        slug = re.sub(
            r"[^a-z0-9]+", "", f"{root}{trade}".lower().replace("ø", "o").replace("å", "a").replace("æ", "ae")
        )
        number = (CUSTOMER_SERIES_START if kind == "customer" else 50_001) + k
        changes, version = self._changes_for(kind, k)
        party = {
            "id": ident,
            "version": version,
            "url": f"{URL_BASE}/{kind}/{ident}",
            "name": name,
            "organizationNumber": f"9{rng.digits(8)}",
            "customerNumber": number if kind == "customer" else 0,
            "supplierNumber": number if kind == "supplier" else 0,
            "isCustomer": kind == "customer",
            "isSupplier": kind == "supplier",
            "isInactive": k % 37 == 36,
            "email": f"post@{slug}.no",
            "invoiceEmail": f"faktura@{slug}.no",
            "phoneNumber": f"+47 {rng.digits(8)}",
            "phoneNumberMobile": "",
            "description": "",
            "language": "NO",
            "displayName": f"{name} ({number})",
            "isPrivateIndividual": False,
            "postalAddress": _ref("address", _ADDRESS_ID_BASE + (0 if kind == "customer" else 500_000) + k),
            "physicalAddress": None,
            "currency": _ref("currency", NOK_ID),
            "ledgerAccount": _ref("account", _ACCOUNT_ID_BASE + (1500 if kind == "customer" else 2400)),
            "accountManager": None,
            "changes": changes,
        }
        if kind == "customer":
            party["invoicesDueIn"] = 14
            party["invoicesDueInType"] = "DAYS"
        return party

    def _address_dict(self, ident: int) -> dict[str, Any] | None:
        k = ident - _ADDRESS_ID_BASE
        kind = "customer"
        if k >= 500_000:
            kind, k = "supplier", k - 500_000
        limit = self.customers if kind == "customer" else self.suppliers
        if not 0 <= k < limit:
            return None
        rng = RowRandom(self._keys[kind + "s"], k + 1_000_003)
        postal_code, city = _CITIES[rng.below(len(_CITIES))]
        street = f"{_STREETS[rng.below(len(_STREETS))]} {rng.between(1, 120)}"
        return {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/address/{ident}",
            "addressLine1": street,
            "addressLine2": "",
            "postalCode": postal_code,
            "city": city,
            "country": _ref("country", NORWAY_ID),
        }

    def _product_dict(self, k: int) -> dict[str, Any]:
        rng = RowRandom(self._keys["products"], k)
        ident = _PRODUCT_ID_BASE + 1 + k
        name = _PRODUCTS[k % len(_PRODUCTS)]
        if k >= len(_PRODUCTS):
            name = f"{name} {k // len(_PRODUCTS) + 1}"
        price = 4_900 + rng.bits(16) % 150_000
        changes, version = self._changes_for("product", k)
        return {
            "id": ident,
            "version": version,
            "url": f"{URL_BASE}/product/{ident}",
            "name": name,
            "number": str(1_000 + k),
            "description": "",
            "ean": "",
            "costExcludingVatCurrency": _money(price * 55 // 100),
            "priceExcludingVatCurrency": _money(price),
            "priceIncludingVatCurrency": _money(price + price // 4),
            "isInactive": False,
            "isStockItem": k % 3 == 0,
            "vatType": _ref("vatType", 3),
            "currency": _ref("currency", NOK_ID),
            "account": _ref("account", _ACCOUNT_ID_BASE + 3000),
            "supplier": None,
            "changes": changes,
        }

    def _order_lines(self, k: int) -> list[tuple[int, int, int, int]]:
        """``(line id, product index, quantity, unit price cents)`` of generated order ``k``."""
        h = row_hash(self._keys["orders"], k, 3)
        lines = []
        for n in range(1 + h % 3):
            product = (h >> (8 + 8 * n)) % self.products
            price = 4_900 + RowRandom(self._keys["products"], product).bits(16) % 150_000
            lines.append((_ORDER_LINE_ID_BASE + 4 * k + n, product, 1 + (h >> (40 + 4 * n)) % 5, price))
        return lines

    def _order_totals(self, k: int) -> tuple[int, int]:
        net = sum(quantity * price for _i, _p, quantity, price in self._order_lines(k))
        return net, net + net // 4

    def _order_dict(self, k: int) -> dict[str, Any]:
        ident = _ORDER_ID_BASE + 1 + k
        seconds = self._order_times.seconds(k)
        day = _day_text(seconds // 86400)
        customer = _CUSTOMER_ID_BASE + 1 + row_hash(self._keys["orders"], k) % self.customers
        return {
            "id": ident,
            "version": 2,
            "url": f"{URL_BASE}/order/{ident}",
            "customer": _ref("customer", customer),
            "number": str(20_001 + k),
            "reference": "",
            "orderDate": day,
            "deliveryDate": day,
            "deliveryComment": "",
            "invoiceComment": "",
            "currency": _ref("currency", NOK_ID),
            "invoicesDueIn": 14,
            "invoicesDueInType": "DAYS",
            "isClosed": True,
            "isPrioritizeAmountsIncludingVat": False,
            "isSubscription": False,
            "status": "INVOICED",
            "orderLines": [_ref("orderLine", line[0]) for line in self._order_lines(k)],
            "changes": [self._change("CREATE", seconds), self._change("UPDATE", seconds + 600)],
        }

    def _order_line_dict(self, ident: int) -> dict[str, Any] | None:
        k, n = divmod(ident - _ORDER_LINE_ID_BASE, 4)
        if not 0 <= k < self.orders:
            return None
        lines = self._order_lines(k)
        if n >= len(lines):
            return None
        _ident, product, quantity, price = lines[n]
        return {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/order/orderline/{ident}",
            "product": _ref("product", _PRODUCT_ID_BASE + 1 + product),
            "description": self._product_dict(product)["name"],
            "count": float(quantity),
            "unitPriceExcludingVatCurrency": _money(price),
            "unitPriceIncludingVatCurrency": _money(price + price // 4),
            "vatType": _ref("vatType", 3),
            "currency": _ref("currency", NOK_ID),
            "discount": 0.0,
            "amountExcludingVatCurrency": _money(quantity * price),
            "amountIncludingVatCurrency": _money(quantity * (price + price // 4)),
            "order": _ref("order", _ORDER_ID_BASE + 1 + k),
        }

    def _invoice_dict(self, k: int) -> dict[str, Any]:
        ident = _INVOICE_ID_BASE + 1 + k
        order = self._order_dict(k)
        net, gross = self._order_totals(k)
        day = date.fromisoformat(order["orderDate"])
        paid = k % 4 != 0
        return {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/invoice/{ident}",
            "invoiceNumber": INVOICE_SERIES_START + k,
            "invoiceDate": day.isoformat(),
            "invoiceDueDate": (day + timedelta(days=14)).isoformat(),
            "customer": order["customer"],
            "orders": [_ref("order", order["id"])],
            "orderLines": order["orderLines"],
            "voucher": None,
            "kid": "",
            "comment": "",
            "amount": _money(gross),
            "amountCurrency": _money(gross),
            "amountExcludingVat": _money(net),
            "amountExcludingVatCurrency": _money(net),
            "amountOutstanding": 0.0 if paid else _money(gross),
            "amountCurrencyOutstanding": 0.0 if paid else _money(gross),
            "currency": _ref("currency", NOK_ID),
            "isCreditNote": False,
            "isCharged": True,
            "isApproved": True,
            "changes": [self._change("CREATE", self._order_times.seconds(k) + 900)],
        }

    def _account_dict(self, number: int) -> dict[str, Any] | None:
        for index, (n, name, account_type, vat, bank) in enumerate(_ACCOUNTS):
            if n == number:
                ident = _ACCOUNT_ID_BASE + n
                return {
                    "id": ident,
                    "version": 1,
                    "url": f"{URL_BASE}/ledger/account/{ident}",
                    "number": n,
                    "numberPretty": str(n),
                    "name": name,
                    "description": "",
                    "type": account_type,
                    "ledgerType": "GENERAL",
                    "vatType": _ref("vatType", vat),
                    "vatLocked": False,
                    "currency": _ref("currency", NOK_ID),
                    "isCloseable": n in (1500, 2400),
                    "isInactive": False,
                    "isBankAccount": bank,
                    "isInvoiceAccount": n == 1920,
                    "bankAccountNumber": "15032012345" if bank else "",
                    "requireReconciliation": bank,
                    "displayName": f"{n} {name}",
                    "changes": [self._change("CREATE", self._anchor_wall - 400 * 86400 + index * 60)],
                }
        return None

    # -- one object of any kind, generated or stored -----------------------------------------------
    def _object(self, kind: str, ident: int) -> dict[str, Any] | None:
        stored = self._objects.get(kind, {}).get(ident)
        if stored is not None:
            return stored
        if kind == "posting" and 0 <= ident - _POSTING_ID_BASE < self.postings:
            return self._posting_dict(ident - _POSTING_ID_BASE)
        if kind == "voucher" and 0 <= ident - _VOUCHER_ID_BASE < self.vouchers:
            return self._voucher_dict(ident - _VOUCHER_ID_BASE)
        if kind in ("customer", "supplier"):
            base, count = (
                (_CUSTOMER_ID_BASE, self.customers)
                if kind == "customer"
                else (_SUPPLIER_ID_BASE, self.suppliers)
            )
            k = ident - base - 1
            return self._party_dict(kind, k) if 0 <= k < count else None
        if kind == "product":
            k = ident - _PRODUCT_ID_BASE - 1
            return self._product_dict(k) if 0 <= k < self.products else None
        if kind == "order":
            k = ident - _ORDER_ID_BASE - 1
            return self._order_dict(k) if 0 <= k < self.orders else None
        if kind == "orderLine":
            return self._order_line_dict(ident)
        if kind == "invoice":
            k = ident - _INVOICE_ID_BASE - 1
            return self._invoice_dict(k) if 0 <= k < self.orders else None
        if kind == "account":
            return self._account_dict(ident - _ACCOUNT_ID_BASE)
        if kind == "address":
            return self._address_dict(ident)
        if kind == "vatType" and ident in _VAT_TYPES:
            name, number, percentage = _VAT_TYPES[ident]
            return {"id": ident, "version": 0, "url": f"{URL_BASE}/ledger/vatType/{ident}", "name": name,
                    "number": number, "displayName": f"{number} {name}", "percentage": percentage}  # fmt: skip
        if kind == "currency" and ident == NOK_ID:
            return {"id": NOK_ID, "version": 0, "url": f"{URL_BASE}/currency/{NOK_ID}", "code": "NOK",
                    "description": "Norske kroner", "factor": 1, "displayName": "NOK", "isDisabled": False}  # fmt: skip
        if kind == "country" and ident == NORWAY_ID:
            return {"id": NORWAY_ID, "version": 0, "url": f"{URL_BASE}/country/{NORWAY_ID}", "name": "Norge",
                    "displayName": "Norge", "isoAlpha2Code": "NO", "isoAlpha3Code": "NOR", "isoNumericCode": "578"}  # fmt: skip
        if kind == "voucherType" and ident in _VOUCHER_TYPE_IDS.values():
            name = {9_001: "Innbetaling", 9_002: "Utgående faktura", 9_003: "Leverandørfaktura",
                    9_004: "Bank", 9_005: "Memorialbilag"}[ident]  # fmt: skip
            return {"id": ident, "version": 0, "url": f"{URL_BASE}/ledger/voucherType/{ident}", "name": name,
                    "displayName": name}  # fmt: skip
        if kind == "employee" and ident == EMPLOYEE_ID:
            return {"id": EMPLOYEE_ID, "version": 3, "url": f"{URL_BASE}/employee/{EMPLOYEE_ID}",
                    "firstName": "Ola", "lastName": "Integrasjon", "displayName": "Ola Integrasjon",
                    "email": "ola.integrasjon@example.no", "companyId": self.company_id}  # fmt: skip
        if kind in ("company", "client") and ident in (self.company_id, *CLIENT_COMPANY_IDS):
            names = {self.company_id: "LedgerLink Sandkasse AS", CLIENT_COMPANY_IDS[0]: "Fjordklient AS",
                     CLIENT_COMPANY_IDS[1]: "Vidde Regnskapsklient AS"}  # fmt: skip
            company = {"id": ident, "version": 1, "url": f"{URL_BASE}/company/{ident}", "name": names[ident],
                       "displayName": names[ident], "organizationNumber": f"9{ident % 100_000_000:08d}",
                       "type": "AS", "currency": _ref("currency", NOK_ID)}  # fmt: skip
            if kind == "client":
                company["customerCompanyId"] = ident
            return company
        return None

    # -- field projection --------------------------------------------------------------------------
    def _project(self, kind: str, obj: Mapping[str, Any], tree: FieldTree | None) -> dict[str, Any]:
        """``obj`` with every field of its schema, cut down to ``fields`` (``tree``)."""
        schema = _SCHEMAS[kind]
        return self._project_schema(schema, complete(schema, obj), tree)

    def _project_schema(self, schema: str, obj: Mapping[str, Any], tree: FieldTree | None) -> dict[str, Any]:
        if tree is None:
            return {key: value for key, value in obj.items() if key != "changes"}
        result: dict[str, Any] = {}
        if "*" in tree:
            result.update((key, value) for key, value in obj.items() if key != "changes")
        known = field_names(schema)
        targets = references(schema)
        for name, sub in tree.items():
            if name == "*":
                continue
            if name not in known:
                raise ApiError(
                    400,
                    11000,
                    "Ugyldig felt i filteret.",
                    developer=f"Illegal field in fields filter: {name}. {name} does not match a field in the model: {schema}DTO",
                )
            value = obj.get(name, [] if name == "changes" else None)
            if sub is None or value is None:
                result[name] = value
                continue
            target = targets.get(name)
            if target is None:
                raise ApiError(
                    400,
                    11000,
                    "Ugyldig felt i filteret.",
                    developer=f"{name} is not an object and cannot be expanded",
                )
            if isinstance(value, list):
                result[name] = [self._expand(target, item, sub) for item in value]
            else:
                result[name] = self._expand(target, value, sub)
        return result

    def _expand(self, schema: str, value: Any, tree: FieldTree) -> Any:
        """A referenced object (``{id, url}``) looked up and projected, or an embedded one projected."""
        if not isinstance(value, dict):
            return value
        kind = _KIND_OF_SCHEMA.get(schema)
        found = None
        if kind is not None and "id" in value and set(value) <= {"id", "url"}:
            found = self._object(kind, int(value["id"]))
        return self._project_schema(schema, complete(schema, found if found is not None else value), tree)

    # ==============================================================================================
    # Lists
    # ==============================================================================================
    def _paging(self, request: Request) -> tuple[int, int]:
        try:
            start = int(request.param("from") or 0)
            count = int(request.param("count") or DEFAULT_PAGE_COUNT)
        except ValueError:
            raise _invalid("from/count", "Må være et heltall.", code=21000) from None
        if start < 0 or count < 0:
            raise _invalid("from/count", "Kan ikke være negativ.", code=21000)
        return start, count

    def _digest(self, request: Request) -> str:
        query = "&".join(sorted(request.query_string.split("&")))
        text = f"{self.company_id}|{request.subpath.lower()}|{query}|{self._mutations}"
        return hashlib.sha1(text.encode()).hexdigest()

    def _check_not_modified(self, request: Request) -> str:
        """The ``versionDigest`` to send, or raise a 304 when the client already has it."""
        sent = request.header("if-none-match")
        if not sent:
            return NO_DIGEST
        digest = self._digest(request)
        if sent.strip().strip('"') == digest:
            raise _NotModified()
        return digest

    def _envelope(self, start: int, values_json: list[str], total: int, count: int, digest: str) -> Response:
        full = min(total - start, count) + 1 if total - start > count else max(total - start, 0)
        text = (
            f'{{"fullResultSize":{max(full, 0)},"from":{start},"count":{len(values_json)},'
            f'"versionDigest":{json.dumps(digest)},"values":[{",".join(values_json)}]}}'
        )
        return Response.raw_json(text)

    def _list_response(self, request: Request, kind: str, items: list[dict[str, Any]]) -> Response:
        try:
            digest = self._check_not_modified(request)
        except _NotModified:
            return Response.empty(304, None)
        tree = parse_fields(request.param("fields"))
        items = self._sorted(kind, items, request.param("sorting"))
        start, count = self._paging(request)
        page = items[start : start + count]
        values = [_dumps(self._project(kind, item, tree)) for item in page]
        return self._envelope(start, values, len(items), count, digest)

    def _sorted(self, kind: str, items: list[dict[str, Any]], sorting: str | None) -> list[dict[str, Any]]:
        for name, descending in reversed(_parse_sorting(sorting)):
            top = name.split(".", 1)[0]
            if top not in field_names(_SCHEMAS[kind]):
                raise ApiError(422, 17000, "Ugyldig sortering.", developer=f"Illegal sorting field: {name}")

            path = name.split(".")

            def key(item: dict[str, Any], path: list[str] = path) -> tuple[int, Any]:
                value: Any = item
                for part in path:
                    value = value.get(part) if isinstance(value, dict) else None
                return _sort_key(value)

            items = sorted(items, key=key, reverse=descending)
        return items

    # -- postings: the hot path --------------------------------------------------------------------
    def _window(self, request: Request, names: tuple[str, str]) -> tuple[date, date]:
        start = _parse_date(request.param(names[0]), names[0], required=True)
        end = _parse_date(request.param(names[1]), names[1], required=True)
        assert start is not None and end is not None
        if end <= start:
            raise _invalid(
                names[1], f"{names[1]} må være etter {names[0]} (til og med er ekskludert).", code=15000
            )
        return start, end

    def _voucher_range(self, start: date, end: date) -> tuple[int, int]:
        times = self._voucher_times

        def day_of(v: int) -> int:
            return times.seconds(v) // 86400

        lo = bisect.bisect_left(range(self.vouchers), _day_number(start), key=day_of)
        hi = bisect.bisect_left(range(self.vouchers), _day_number(end), key=day_of)
        return lo, hi

    def _runtime(self, kind: str, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self._lock:
            return [obj for ident, obj in sorted(self._objects[kind].items()) if predicate(obj)]

    def _list_postings(self, request: Request) -> Response:
        start_day, end_day = self._window(request, ("dateFrom", "dateTo"))
        lo_v, hi_v = self._voucher_range(start_day, end_day)
        lo, hi = self._first_posting(lo_v), self._first_posting(hi_v)
        first, last = start_day.isoformat(), end_day.isoformat()
        extra = self._runtime("posting", lambda p: first <= p["date"] < last)
        total = hi - lo + len(extra)
        if total > self.max_window_rows:
            raise ApiError(
                422, 23000, "Resultatsettet er for stort.",
                developer=f"Result set too large ({total} rows): use a shorter date window",
            )  # fmt: skip
        filters = {
            name: request.param(name) or ""
            for name in ("accountId", "customerId", "supplierId", "type", "id")
            if request.param(name)
        }
        sorting = (request.param("sorting") or "").strip()
        if filters or sorting not in ("", "id"):
            # Filtering or another order needs the whole window, as a database would scan it.
            if total > MAX_SORT_ROWS:
                raise ApiError(
                    422,
                    23000,
                    "Resultatsettet er for stort.",
                    developer="Too many rows to filter or sort: use a shorter date window",
                )
            items = [self._posting_dict(i) for i in range(lo, hi)] + extra
            items = [item for item in items if _matches(item, filters)]
            return self._list_response(request, "posting", items)
        # In id order without filters a page is produced directly: O(page size) at any scale.
        try:
            digest = self._check_not_modified(request)
        except _NotModified:
            return Response.empty(304, None)
        offset, count = self._paging(request)
        fields = request.param("fields")
        tree = parse_fields(fields)
        default = tree is None or tree == {"*": None}
        end = min(hi, lo + offset + count)
        with self._lock:
            if default:
                values = [self._posting_json(i) for i in range(lo + offset, end)]
            else:
                values = [
                    _dumps(self._project("posting", self._posting_dict(i), tree))
                    for i in range(lo + offset, end)
                ]
        if len(values) < count:
            skip = max(0, offset - (hi - lo))
            for item in extra[skip : skip + count - len(values)]:
                values.append(_dumps(self._project("posting", item, tree)))
        return self._envelope(offset, values, total, count, digest)

    # -- other lists -------------------------------------------------------------------------------
    def _list_vouchers(self, request: Request) -> Response:
        start_day, end_day = self._window(request, ("dateFrom", "dateTo"))
        lo, hi = self._voucher_range(start_day, end_day)
        first, last = start_day.isoformat(), end_day.isoformat()
        extra = self._runtime("voucher", lambda v: first <= v["date"] < last)
        if hi - lo + len(extra) > self.max_window_rows:
            raise ApiError(
                422,
                23000,
                "Resultatsettet er for stort.",
                developer="Result set too large: use a shorter date window",
            )
        items = [self._voucher_dict(v) for v in range(lo, hi)] + extra
        filters = {name: request.param(name) or "" for name in ("id", "number") if request.param(name)}
        items = [item for item in items if _matches(item, filters)]
        return self._list_response(request, "voucher", items)

    def _list_catalog(self, kind: str) -> Callable[..., Response]:
        """The small fixed lists (VAT types, voucher types, currencies, countries), filtered on the
        query parameters the specification gives them that name a field (``id``, ``number``,
        ``code``, ``name``)."""
        idents = {
            "vatType": list(_VAT_TYPES),
            "voucherType": list(_VOUCHER_TYPE_IDS.values()),
            "currency": [NOK_ID],
            "country": [NORWAY_ID],
        }[kind]

        def handler(request: Request) -> Response:
            items = [obj for ident in idents if (obj := self._object(kind, ident)) is not None]
            filters = {
                name: request.param(name) or "" for name in ("id", "number", "code") if request.param(name)
            }
            items = [item for item in items if _matches(item, filters)]
            name = request.param("name")
            if name:
                items = [item for item in items if name.lower() in str(item.get("name", "")).lower()]
            return self._list_response(request, kind, items)

        return handler

    def _vouchers_by_external_number(self, request: Request) -> Response:
        """``GET /ledger/voucher/>externalVoucherNumber?externalVoucherNumber=…``: the vouchers
        created with that external number (generated vouchers have none)."""
        wanted = request.param("externalVoucherNumber")
        if not wanted:
            raise _invalid("externalVoucherNumber", "Kan ikke være null.", code=15000)
        items = self._runtime("voucher", lambda v: v.get("externalVoucherNumber") == wanted)
        return self._list_response(request, "voucher", items)

    def _list_simple(self, kind: str) -> Callable[..., Response]:
        def handler(request: Request) -> Response:
            return self._list_response(request, kind, self._candidates(kind, request))

        return handler

    def _candidates(self, kind: str, request: Request) -> list[dict[str, Any]]:
        """Every object of ``kind`` matching the request's filters, in id order."""
        if kind == "account":
            result = [a for n, *_ in _ACCOUNTS if (a := self._account_dict(n)) is not None]
            number = request.param("number")
            if number:
                wanted = {int(x) for x in number.split(",") if x.strip().isdigit()}
                result = [a for a in result if a["number"] in wanted]
            return result
        if kind in ("order", "invoice"):
            names = (
                ("orderDateFrom", "orderDateTo") if kind == "order" else ("invoiceDateFrom", "invoiceDateTo")
            )
            start, end = self._window(request, names)
            date_field = "orderDate" if kind == "order" else "invoiceDate"
            day_lo, day_hi = _day_number(start), _day_number(end)
            times = self._order_times

            def day_of(k: int) -> int:
                return times.seconds(k) // 86400

            lo = bisect.bisect_left(range(self.orders), day_lo, key=day_of)
            hi = bisect.bisect_left(range(self.orders), day_hi, key=day_of)
            make = self._order_dict if kind == "order" else self._invoice_dict
            generated = [make(k) for k in range(lo, hi)]
            with self._lock:
                overlay = self._objects[kind]
                generated = [overlay.get(obj["id"], obj) for obj in generated]
            first, last = start.isoformat(), end.isoformat()
            items = generated + self._runtime(
                kind, lambda o: o["id"] > _RUNTIME_ID_BASE and first <= o[date_field] < last
            )
            filters: dict[str, str] = {}
            for name in ("id", "number", "customerId", "invoiceNumber", "kid", "isClosed"):
                if request.param(name):
                    filters[name] = request.param(name) or ""
            return [item for item in items if _matches(item, filters)]
        count = {"customer": self.customers, "supplier": self.suppliers, "product": self.products}[kind]
        changed_since = request.param("changedSince")
        lo = 0
        since_wall: int | None = None
        if changed_since and kind in ("customer", "supplier"):
            since_wall = _parse_instant_wall(changed_since, "changedSince")
            lo = bisect.bisect_left(range(count), since_wall, key=self._change_times[kind].seconds)
        build: Callable[[int], dict[str, Any]] = (
            self._product_dict if kind == "product" else (lambda k: self._party_dict(kind, k))
        )
        with self._lock:
            overlay = dict(self._objects[kind])
        items = [obj for k in range(lo, count) if (obj := build(k))["id"] not in overlay]
        items += [obj for ident, obj in sorted(overlay.items())]
        if since_wall is not None:
            items = [obj for obj in items if _last_change_wall(obj) >= since_wall]
        items.sort(key=lambda obj: obj["id"])
        filters = {}
        for param, name in (
            ("id", "id"),
            ("customerAccountNumber", "customerNumber"),
            ("supplierNumber", "supplierNumber"),
            ("organizationNumber", "organizationNumber"),
            ("email", "email"),
            ("invoiceEmail", "invoiceEmail"),
            ("number", "number"),
            ("productNumber", "number"),
        ):
            if request.param(param):
                filters[name] = request.param(param) or ""
        inactive = request.param("isInactive")
        if inactive is not None:
            filters["isInactive"] = inactive
        elif kind in ("customer", "supplier"):  # the documented default for these two lists
            filters["isInactive"] = "false"
        name_filter = request.param("customerName") or (request.param("name") if kind == "product" else None)
        result = [item for item in items if _matches(item, filters)]
        if name_filter:
            result = [item for item in result if name_filter.lower() in str(item.get("name", "")).lower()]
        return result

    # -- single objects ----------------------------------------------------------------------------
    def _get_one(self, kind: str) -> Callable[..., Response]:
        def handler(request: Request, ident: str) -> Response:
            with self._lock:
                obj = self._object(kind, int(ident))
            if obj is None:
                raise _not_found(kind, ident)
            tree = parse_fields(request.param("fields"))
            return Response.json({"value": self._project(kind, obj, tree)})

        return handler

    # ==============================================================================================
    # Writes
    # ==============================================================================================
    def _body(self, request: Request) -> dict[str, Any]:
        with self._lock:
            self.received.append({"method": request.method, "path": request.subpath, "body": request.body})
        try:
            body = request.json()
        except ValueError:
            raise ApiError(
                422, 22000, "Ugyldig JSON.", developer="The request body is not valid JSON"
            ) from None
        if not isinstance(body, dict):
            raise ApiError(422, 16000, "Feil i mapping.", developer="Expected a JSON object")
        return body

    def _stamp(self, obj: dict[str, Any], change_type: str) -> None:
        obj.setdefault("changes", []).append(self._change(change_type, self.now_wall()))
        self._mutations += 1

    def _ref_id(self, body: Mapping[str, Any], name: str, kind: str, *, required: bool = False) -> int | None:
        value = body.get(name)
        if value is None:
            if required:
                raise _invalid(name, "Kan ikke være null.", code=15000)
            return None
        ident = value.get("id") if isinstance(value, dict) else None
        if not isinstance(ident, int) or self._object(kind, ident) is None:
            raise _invalid(f"{name}.id", f"Finner ikke objektet med id {ident}.", code=15000)
        return ident

    def _create_customer(self, request: Request) -> Response:
        body = self._body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("name", "Kan ikke være null.", code=15000)
        with self._lock:
            number = body.get("customerNumber")
            if number in (None, 0):
                number = self._next_customer_number()
            elif not isinstance(number, int) or number < 0:
                raise _invalid("customerNumber", "Må være et positivt heltall.", code=15000)
            elif self._customer_number_taken(number):
                raise _invalid("customerNumber", f"Kundenummeret {number} er allerede i bruk.", code=15000)
            ident = self._new_id()
            customer = self._new_party("customer", ident, body, number)
            self._objects["customer"][ident] = customer
            self._stamp(customer, "CREATE")
            return Response.json({"value": self._project("customer", customer, None)}, 201)

    def _customer_number_taken(self, number: int) -> bool:
        if CUSTOMER_SERIES_START <= number < CUSTOMER_SERIES_START + self.customers:
            return True
        return any(obj.get("customerNumber") == number for obj in self._objects["customer"].values())

    def _next_customer_number(self) -> int:
        used = [obj.get("customerNumber") or 0 for obj in self._objects["customer"].values()]
        # Tripletex numbers a customer sent without one from the company's own series.
        start = self.customer_series_start
        own = [n for n in used if n >= start]
        if start <= CUSTOMER_SERIES_START + self.customers - 1:
            own.append(CUSTOMER_SERIES_START + self.customers - 1)
        return max(own) + 1 if own else start

    def _new_party(self, kind: str, ident: int, body: Mapping[str, Any], number: int) -> dict[str, Any]:
        party: dict[str, Any] = {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/{kind}/{ident}",
            "name": body["name"].strip(),
            "organizationNumber": str(body.get("organizationNumber") or ""),
            "customerNumber": number,
            "supplierNumber": 0,
            "isCustomer": True,
            "isSupplier": bool(body.get("isSupplier", False)),
            "isInactive": bool(body.get("isInactive", False)),
            "email": str(body.get("email") or ""),
            "invoiceEmail": str(body.get("invoiceEmail") or ""),
            "phoneNumber": str(body.get("phoneNumber") or ""),
            "phoneNumberMobile": str(body.get("phoneNumberMobile") or ""),
            "description": str(body.get("description") or ""),
            "language": str(body.get("language") or "NO"),
            "displayName": f"{body['name'].strip()} ({number})",
            "isPrivateIndividual": bool(body.get("isPrivateIndividual", False)),
            "postalAddress": None,
            "physicalAddress": None,
            "currency": _ref("currency", NOK_ID),
            "ledgerAccount": _ref("account", _ACCOUNT_ID_BASE + 1500),
            "accountManager": None,
            "invoicesDueIn": int(body.get("invoicesDueIn") or 14),
            "invoicesDueInType": "DAYS",
        }
        address = body.get("postalAddress")
        if isinstance(address, dict) and any(address.get(k) for k in ("addressLine1", "postalCode", "city")):
            address_id = self._new_id()
            self._objects["address"][address_id] = {
                "id": address_id,
                "version": 1,
                "url": f"{URL_BASE}/address/{address_id}",
                "addressLine1": str(address.get("addressLine1") or ""),
                "addressLine2": str(address.get("addressLine2") or ""),
                "postalCode": str(address.get("postalCode") or ""),
                "city": str(address.get("city") or ""),
                "country": _ref("country", NORWAY_ID),
            }
            party["postalAddress"] = _ref("address", address_id)
        return party

    def _update_customer(self, request: Request, ident: str) -> Response:
        body = self._body(request)
        with self._lock:
            current = self._object("customer", int(ident))
            if current is None:
                raise _not_found("customer", ident)
            current = json.loads(json.dumps(current))
            version = body.get("version")
            if version is not None and version != current["version"]:
                raise ApiError(
                    409,
                    8000,
                    "Objektet er endret av en annen bruker siden det ble hentet.",
                    developer=f"RevisionException: version {version} is stale; the current version is {current['version']}",
                )
            number = body.get("customerNumber")
            if number not in (None, current.get("customerNumber")) and self._customer_number_taken(number):
                raise _invalid("customerNumber", f"Kundenummeret {number} er allerede i bruk.", code=15000)
            for key in ("name", "organizationNumber", "email", "invoiceEmail", "phoneNumber", "phoneNumberMobile",
                        "description", "customerNumber", "isInactive", "language", "invoicesDueIn"):  # fmt: skip
                if key in body and body[key] is not None:
                    current[key] = body[key]
            current["displayName"] = f"{current['name']} ({current['customerNumber']})"
            current["version"] += 1
            self._objects["customer"][int(ident)] = current
            self._stamp(current, "UPDATE")
            return Response.json({"value": self._project("customer", current, None)})

    def _create_order(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            customer = self._ref_id(body, "customer", "customer", required=True)
            order_date = _parse_date(body.get("orderDate"), "orderDate", required=True)
            delivery_date = _parse_date(body.get("deliveryDate"), "deliveryDate", required=True)
            assert order_date is not None and delivery_date is not None
            including = bool(body.get("isPrioritizeAmountsIncludingVat", False))
            ident = self._new_id()
            line_refs: list[dict[str, Any] | None] = []
            lines = body.get("orderLines") or []
            if not isinstance(lines, list):
                raise _invalid("orderLines", "Må være en liste.", code=16000)
            new_lines = []
            for index, line in enumerate(lines):
                new_lines.append(self._new_order_line(line, index, ident, including))
            order = {
                "id": ident,
                "version": 1,
                "url": f"{URL_BASE}/order/{ident}",
                "customer": _ref("customer", customer),
                "number": str(body.get("number") or 20_000 + self.orders + len(self._objects["order"]) + 1),
                "reference": str(body.get("reference") or ""),
                "orderDate": order_date.isoformat(),
                "deliveryDate": delivery_date.isoformat(),
                "deliveryComment": str(body.get("deliveryComment") or ""),
                "invoiceComment": str(body.get("invoiceComment") or ""),
                "currency": _ref("currency", NOK_ID),
                "invoicesDueIn": int(body.get("invoicesDueIn") or 14),
                "invoicesDueInType": "DAYS",
                "isClosed": False,
                "isPrioritizeAmountsIncludingVat": including,
                "isSubscription": False,
                "status": "NOT_CHOSEN",
                "orderLines": line_refs,
            }
            for line in new_lines:
                self._objects["orderLine"][line["id"]] = line
                line_refs.append(_ref("orderLine", line["id"]))
            self._objects["order"][ident] = order
            self._stamp(order, "CREATE")
            return Response.json({"value": self._project("order", order, None)}, 201)

    def _new_order_line(self, line: Any, index: int, order_id: int, including: bool) -> dict[str, Any]:
        where = f"orderLines[{index}]"
        if not isinstance(line, dict):
            raise _invalid(where, "Må være et objekt.", code=16000)
        vat = self._ref_id(line, "vatType", "vatType") or 3
        product = self._ref_id(line, "product", "product")
        rate = _VAT_TYPES[vat][2]
        excluding, including_price = (
            line.get("unitPriceExcludingVatCurrency"),
            line.get("unitPriceIncludingVatCurrency"),
        )
        if including:
            if including_price is None:
                raise _invalid(
                    f"{where}.unitPriceIncludingVatCurrency",
                    "Ordren prioriterer beløp inkl. mva: oppgi unitPriceIncludingVatCurrency.",
                    code=15000,
                )
            gross = _to_cents(including_price, f"{where}.unitPriceIncludingVatCurrency")
            net = round(gross * 100 / (100 + rate))
        else:
            if excluding is None and including_price is None:
                raise _invalid(f"{where}.unitPriceExcludingVatCurrency", "Kan ikke være null.", code=15000)
            if excluding is not None:
                net = _to_cents(excluding, f"{where}.unitPriceExcludingVatCurrency")
                gross = round(net * (100 + rate) / 100)
            else:
                gross = _to_cents(including_price, f"{where}.unitPriceIncludingVatCurrency")
                net = round(gross * 100 / (100 + rate))
        quantity = line.get("count", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
            raise _invalid(f"{where}.count", "Må være større enn 0.", code=15000)
        ident = self._new_id()
        return {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/order/orderline/{ident}",
            "product": _ref("product", product),
            "description": str(line.get("description") or ""),
            "count": float(quantity),
            "unitPriceExcludingVatCurrency": _money(net),
            "unitPriceIncludingVatCurrency": _money(gross),
            "vatType": _ref("vatType", vat),
            "currency": _ref("currency", NOK_ID),
            "discount": float(line.get("discount") or 0.0),
            "amountExcludingVatCurrency": _money(round(net * quantity)),
            "amountIncludingVatCurrency": _money(round(gross * quantity)),
            "order": _ref("order", order_id),
        }

    def _invoice_order(self, request: Request, ident: str) -> Response:
        invoice_date = _parse_date(request.param("invoiceDate"), "invoiceDate", required=True)
        assert invoice_date is not None
        send = (request.param("sendToCustomer") or "true").lower() != "false"
        with self._lock:
            order = self._object("order", int(ident))
            if order is None:
                raise _not_found("order", ident)
            lines = [
                line
                for ref in order.get("orderLines") or []
                if (line := self._object("orderLine", ref["id"])) is not None
            ]
            if not lines:
                raise _invalid("orderLines", "Ordren har ingen ordrelinjer å fakturere.", code=15000)
            net = sum(round(line["amountExcludingVatCurrency"] * 100) for line in lines)
            gross = sum(round(line["amountIncludingVatCurrency"] * 100) for line in lines)
            invoice_id = self._new_id()
            number = max(self._next_invoice_number, self.invoice_series_start)
            self._next_invoice_number = number + 1
            voucher = self._book_invoice_voucher(invoice_date, number, order["customer"]["id"], net, gross)
            invoice = {
                "id": invoice_id,
                "version": 1,
                "url": f"{URL_BASE}/invoice/{invoice_id}",
                "invoiceNumber": number,
                "invoiceDate": invoice_date.isoformat(),
                "invoiceDueDate": (
                    invoice_date + timedelta(days=int(order.get("invoicesDueIn") or 14))
                ).isoformat(),
                "customer": order["customer"],
                "orders": [_ref("order", order["id"])],
                "orderLines": [_ref("orderLine", line["id"]) for line in lines],
                "voucher": _ref("voucher", voucher),
                "kid": "",
                "comment": "",
                "amount": _money(gross),
                "amountCurrency": _money(gross),
                "amountExcludingVat": _money(net),
                "amountExcludingVatCurrency": _money(net),
                "amountOutstanding": _money(gross),
                "amountCurrencyOutstanding": _money(gross),
                "currency": _ref("currency", NOK_ID),
                "isCreditNote": False,
                "isCharged": True,
                "isApproved": True,
            }
            self._objects["invoice"][invoice_id] = invoice
            self._stamp(invoice, "CREATE")
            if send:
                self.sent_invoices.append(invoice_id)
                self.counters.invoices_sent += 1
            updated = json.loads(json.dumps(order))
            updated.update(isClosed=True, status="INVOICED", version=updated["version"] + 1)
            self._objects["order"][updated["id"]] = updated
            self._stamp(updated, "UPDATE")
            return Response.json({"value": self._project("invoice", invoice, None)})

    def _book_invoice_voucher(self, day: date, number: int, customer: int, net: int, gross: int) -> int:
        postings = [
            {"account": {"id": _ACCOUNT_ID_BASE + 1500}, "amountGross": _money(gross), "customer": {"id": customer},
             "row": 1, "description": f"Faktura {number}"},
            {"account": {"id": _ACCOUNT_ID_BASE + 3000}, "amountGross": _money(-net), "row": 2, "vatType": {"id": 3},
             "description": f"Faktura {number}"},
            {"account": {"id": _ACCOUNT_ID_BASE + 2700}, "amountGross": _money(net - gross), "row": 3,
             "description": f"Faktura {number}"},
        ]  # fmt: skip
        voucher = self._store_voucher(
            {"date": day.isoformat(), "description": f"Faktura {number}", "postings": postings}, "invoice"
        )
        for ref in voucher["postings"]:
            posting = self._objects["posting"][ref["id"]]
            posting["invoiceNumber"] = str(number)
            if posting["row"] == 1:
                posting["type"] = "OUTGOING_INVOICE_CUSTOMER_POSTING"
        return int(voucher["id"])

    def _create_voucher(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            voucher = self._store_voucher(body, "manual")
            return Response.json({"value": self._project("voucher", voucher, None)}, 201)

    def _store_voucher(self, body: Mapping[str, Any], voucher_type: str) -> dict[str, Any]:
        day = _parse_date(body.get("date"), "date", required=True)
        assert day is not None
        postings = body.get("postings")
        if not isinstance(postings, list) or len(postings) < 2:
            raise _invalid("postings", "Et bilag må ha minst to posteringer.", code=15000)
        total = 0
        prepared = []
        for index, posting in enumerate(postings):
            where = f"postings[{index}]"
            if not isinstance(posting, dict):
                raise _invalid(where, "Må være et objekt.", code=16000)
            account = self._ref_id(posting, "account", "account", required=True)
            # POST /ledger/voucher: "Only the gross amounts will be used" (OpenAPI 2.72); Tripletex's
            # own minimal example sends amountGross and amountGrossCurrency. A posting with only
            # ``amount`` is refused, never read as gross.
            gross = posting.get("amountGross")
            if gross is None:
                raise _invalid(f"{where}.amountGross", "Kan ikke være null.", code=15000)
            cents = _to_cents(gross, f"{where}.amountGross")
            currency_gross = posting.get("amountGrossCurrency")
            if (
                currency_gross is not None
                and _to_cents(currency_gross, f"{where}.amountGrossCurrency") != cents
            ):
                raise _invalid(
                    f"{where}.amountGrossCurrency",
                    "Beløp i valuta må være lik beløpet i NOK når posteringen er i NOK.",
                    code=15000,
                )
            total += cents
            prepared.append((posting, account, cents))
        if total != 0:
            raise _invalid(
                "postings", f"Bilaget er ikke i balanse (differanse {_money_text(total)}).", code=15000
            )
        ident = self._new_id()
        number = self._next_voucher_number
        self._next_voucher_number += 1
        refs = []
        for index, (posting, account, cents) in enumerate(prepared):
            posting_id = self._new_id()
            customer = self._ref_id(posting, "customer", "customer")
            supplier = self._ref_id(posting, "supplier", "supplier")
            vat = self._ref_id(posting, "vatType", "vatType") or 0
            stored = _posting(
                posting_id,
                voucher=ident,
                day=day.isoformat(),
                description=str(posting.get("description") or body.get("description") or ""),
                account=account,
                cents=cents,
                customer=customer,
                supplier=supplier,
                vat=vat,
                row=int(posting.get("row") or index + 1),
            )
            self._objects["posting"][posting_id] = stored
            self._stamp(stored, "CREATE")
            refs.append(_ref("posting", posting_id))
        voucher = {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/ledger/voucher/{ident}",
            "date": day.isoformat(),
            "number": number,
            "tempNumber": 0,
            "year": day.year,
            "description": str(body.get("description") or ""),
            "voucherType": _ref("voucherType", _VOUCHER_TYPE_IDS[voucher_type]),
            "reverseVoucher": None,
            "postings": refs,
            "document": None,
            "attachment": None,
            "externalVoucherNumber": str(body.get("externalVoucherNumber") or ""),
            "vendorInvoiceNumber": str(body.get("vendorInvoiceNumber") or ""),
            "numberAsString": f"{number}-{day.year}",
            "displayName": f"{number}-{day.year} {body.get('description') or ''}".strip(),
        }
        self._objects["voucher"][ident] = voucher
        self._stamp(voucher, "CREATE")
        return voucher


class _NotModified(Exception):
    pass


def _posting(
    ident: int,
    *,
    voucher: int,
    day: str,
    description: str,
    account: int | None,
    cents: int,
    customer: int | None,
    supplier: int | None,
    vat: int,
    row: int,
    invoice_number: str = "",
    posting_type: str | None = None,
    system_generated: bool = False,
) -> dict[str, Any]:
    """A posting with every field the emulator serves (references as ``{id, url}``)."""
    amount = _money(cents)
    return {
        "id": ident,
        "version": 0,
        "url": f"{URL_BASE}/ledger/posting/{ident}",
        "voucher": _ref("voucher", voucher),
        "date": day,
        "description": description,
        "account": _ref("account", account),
        "customer": _ref("customer", customer),
        "supplier": _ref("supplier", supplier),
        "employee": None,
        "project": None,
        "product": None,
        "department": None,
        "vatType": _ref("vatType", vat),
        "amount": amount,
        "amountCurrency": amount,
        "amountGross": amount,
        "amountGrossCurrency": amount,
        "currency": _ref("currency", NOK_ID),
        "closeGroup": None,
        "invoiceNumber": invoice_number,
        "termOfPayment": day,
        "row": row,
        "type": posting_type,
        "externalRef": "",
        "systemGenerated": system_generated,
        "matched": False,
    }


@lru_cache(maxsize=1)
def _posting_tail() -> str:
    """The JSON of the Posting fields the generator has no values for (``,"name":value…``), so that
    the hot path writes every field of the schema too."""
    present = frozenset(_posting(0, voucher=0, day="", description="", account=None, cents=0, customer=None,
                                 supplier=None, vat=0, row=1))  # fmt: skip
    extra = missing_defaults("Posting", present)
    return "".join(f",{json.dumps(name)}:{_dumps(value)}" for name, value in extra.items())


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _matches(item: Mapping[str, Any], filters: Mapping[str, str]) -> bool:
    """Tripletex's simple filters: a comma list of ids or values, compared as text."""
    for name, wanted in filters.items():
        target = "customer" if name == "customerId" else ("account" if name == "accountId" else name)
        if name == "supplierId":
            target = "supplier"
        value = item.get(target)
        if isinstance(value, dict):
            value = value.get("id")
        options = {part.strip().lower() for part in str(wanted).split(",")}
        text = str(value).lower() if not isinstance(value, bool) else ("true" if value else "false")
        if text not in options:
            return False
    return True


def _last_change_wall(obj: Mapping[str, Any]) -> int:
    changes = obj.get("changes") or []
    if not changes:
        return 0
    return max(_parse_instant_wall(str(change["timestamp"]), "timestamp") for change in changes)
