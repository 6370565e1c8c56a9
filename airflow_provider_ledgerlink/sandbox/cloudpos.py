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
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from airflow_provider_ledgerlink.sandbox.data import (
    RowRandom,
    Timeline,
    derive_key,
    format_wallclock,
    parse_wallclock,
    person_name,
    phone_number,
    wallclock_seconds,
)
from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response

__all__ = [
    "ANCHOR",
    "CONFIRMED_WEBORDER",
    "LICENCE",
    "PENDING_WEBORDER",
    "CloudPosEmulator",
    "cloudpos_connection_definition",
    "sandbox_cloudpos_token",
]

BRUSSELS = ZoneInfo("Europe/Brussels")
LICENCE = "ledgerlink-sandbox"
ANCHOR = datetime(2026, 11, 20)
"""End of the generated history (Brussels wall clock)."""
HISTORY_DAYS = 60
DAILY_LIMIT = 500
BAD_LOGINS_TO_BLOCK = 5
BLOCK_MINUTES = 30
MAX_ROWS_PER_CALL = 500
#: Order ``k`` is a labour clock-in/out record when ``k % LABOUR_EVERY == LABOUR_OFFSET``.
LABOUR_EVERY = 20
LABOUR_OFFSET = 19
CONFIRMED_WEBORDER = 7001
PENDING_WEBORDER = 7002
FIRST_CREATED_WEBORDER = 8001
DEFAULT_SCALE = {"cloudpos_orders": 40 * HISTORY_DAYS, "cloudpos_customers": 300, "cloudpos_products": 120}

_CATEGORIES = (
    "Frieten",
    "Snacks",
    "Burgers",
    "Sauzen",
    "Frisdranken",
    "Bieren",
    "Warme dranken",
    "Desserts",
    "Menu's",
    "Kindermenu's",
    "Salades",
    "Extra's",
)
_PRODUCT_NAMES = (
    "Friet",
    "Frikandel",
    "Bitterballen",
    "Cheeseburger",
    "Stoofvleessaus",
    "Mayonaise",
    "Cola",
    "Pils",
    "Koffie",
    "Wafel",
    "Menu klassiek",
    "Kipnuggets",
    "Salade",
    "Curryworst",
    "Bicky",
    "Loempia",
)
_SIZES = ("klein", "medium", "groot", "XL")
_CITIES = (
    ("1000", "Brussel"),
    ("2000", "Antwerpen"),
    ("9000", "Gent"),
    ("3000", "Leuven"),
    ("8000", "Brugge"),
    ("3500", "Hasselt"),
    ("2800", "Mechelen"),
    ("8500", "Kortrijk"),
)
_PAYMENTS = ("Cash", "Bancontact", "Visa", "Mastercard", "Payconiq", "Cadeaubon")
#: The payment fields of a get-orders record, as the reference names them.
_PAYMENT_FIELDS = (
    "cashpayment",
    "bancontactpayment",
    "voucherpayment",
    "transferpayment",
    "visapayment",
    "chargecardpayment",
    "luncheoncardpayment",
    "americanexpresspayment",
    "mastercardpayment",
)


def sandbox_cloudpos_token(seed: int | str = 42, licence: str = LICENCE) -> str:
    """The token the emulator accepts for ``licence`` (32 hexadecimal characters)."""
    return hashlib.sha256(f"ledgerlink-sandbox:{seed}:cloudpos:{licence}".encode()).hexdigest()[:32]


def cloudpos_connection_definition(
    cloudpos_url: str, seed: int | str = 42, *, licence: str = LICENCE, token: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``ledgerlink_cloudpos`` connection (Airflow's JSON form) for the emulator at ``cloudpos_url``;
    ``extra`` adds connection extras (``daily_request_limit=40``)."""
    return {
        "conn_type": "ledgerlink_cloudpos",
        "host": f"{cloudpos_url.rstrip('/')}/api/",
        "login": licence,
        "password": token or sandbox_cloudpos_token(seed, licence),
        "extra": {"daily_request_limit": DAILY_LIMIT, **extra},
    }


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _unix(wallclock: int) -> int:
    """Brussels wall-clock seconds as a unix timestamp."""
    moment = datetime(1970, 1, 1) + timedelta(seconds=wallclock)
    return int(moment.replace(tzinfo=BRUSSELS).timestamp())


# ==================================================================================================
# Generated data
# ==================================================================================================
class _Data:
    """Every generated list, each row a pure function of (seed, list, row number)."""

    def __init__(self, seed: int, scale: Mapping[str, int], anchor: datetime) -> None:
        self.seed = seed
        self.orders = int(scale["cloudpos_orders"])
        self.customers = int(scale["cloudpos_customers"])
        self.products = int(scale["cloudpos_products"])
        start = anchor - timedelta(days=HISTORY_DAYS)
        self.order_times = Timeline(start, anchor, self.orders, derive_key(seed, "cloudpos", "order-times"))
        self.change_times = Timeline(
            start, anchor, max(self.customers, self.products), derive_key(seed, "mod")
        )
        self.start = wallclock_seconds(start)
        self.keys = {
            name: derive_key(seed, "cloudpos", name) for name in ("order", "customer", "product", "misc")
        }

    def _change_seconds(self, i: int, count: int) -> int:
        """When row ``i`` of a list of ``count`` last changed: spread over the whole history."""
        return self.change_times.seconds(i * self.change_times.n // max(1, count))

    # -- reference lists ---------------------------------------------------------------------------
    def categories(self) -> Iterator[dict[str, Any]]:
        for number, name in enumerate(_CATEGORIES, start=1):
            yield {"id": number, "name": name}

    def product(self, i: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["product"], i)
        name = f"{_PRODUCT_NAMES[i % len(_PRODUCT_NAMES)]} {_SIZES[(i // len(_PRODUCT_NAMES)) % len(_SIZES)]}"
        return {
            "id": 1000 + i,
            "name": name,
            "categorylink": 1 + i % len(_CATEGORIES),
            "price": _money(rng.between(150, 1450)),
            "quantity": rng.between(0, 400),
            "popup": int(rng.chance(30)),
            "menupopup": int(rng.chance(10)),
            "openprice": int(rng.chance(3)),
            "modtime": _unix(self._change_seconds(i, self.products)),
        }

    def subproduct(self, i: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["misc"], 10_000 + i)
        return {
            "id": 5000 + i,
            "name": f"Extra {('kaas', 'ui', 'saus', 'bacon', 'ei')[i % 5]} {i + 1}",
            "price": _money(rng.between(20, 150)),
            "quantity": rng.between(0, 200),
            "productlink": sorted({1000 + rng.below(self.products) for _ in range(3)}),
            "modtime": _unix(self._change_seconds(i, 40)),
        }

    # Field names below are the V1 reference's, with its spellings ("fistname").
    def customer(self, i: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["customer"], i)
        first, _, last = person_name(rng).partition(" ")
        postcode, city = _CITIES[rng.below(len(_CITIES))]
        tagged = rng.chance(30)
        return {
            "id": 1 + i,
            "name": last or first,
            "fistname": first,
            "companyname": f"{last or first} bv" if rng.chance(15) else "",
            "street_number": f"Kerkstraat {rng.between(1, 180)}",
            "phone": phone_number(rng).replace("+31", "+32"),
            "zipcode": postcode,
            "town": city,
            "vatnumber": f"BE0{rng.digits(9)}" if rng.chance(20) else "",
            "email": f"klant{i + 1}@example.be",
            "tagid": rng.digits(10) if tagged else "",
            "tagtype": ("barcode", "rfid")[rng.below(2)] if tagged else "",
            "tagfamid": rng.below(5) if tagged else 0,
            "modtime": _unix(self._change_seconds(i, self.customers)),
        }

    def users(self) -> Iterator[dict[str, Any]]:
        for i in range(6):
            rng = RowRandom(self.keys["misc"], 20_000 + i)
            birth = date(1970 + rng.below(35), 1 + rng.below(12), 1 + rng.below(28))
            serial = rng.between(1, 997)
            base = int(f"{birth:%y%m%d}{serial:03d}")
            check = 97 - base % 97
            yield {
                "id": 1 + i,
                "username": person_name(rng),
                "admin": int(i == 0),
                "secnr": f"{birth:%y.%m.%d}-{serial:03d}.{check:02d}",
            }

    def tables(self) -> Iterator[dict[str, Any]]:
        for i in range(24):
            yield {"id": 1 + i, "table": i + 1, "status": (0, 0, 1, 2)[i % 4]}

    def payments(self) -> Iterator[dict[str, Any]]:
        for number, name in enumerate(_PAYMENTS, start=1):
            yield {"id": number, "payment": name}

    def printers(self) -> Iterator[dict[str, Any]]:
        for number, name in enumerate(("Kassa", "Keuken", "Bar"), 1):
            yield {"id": number, "printername": name}

    def gift_vouchers(self) -> Iterator[dict[str, Any]]:
        for i in range(25):
            rng = RowRandom(self.keys["misc"], 30_000 + i)
            seconds = self._change_seconds(i, 25)
            yield {
                "id": 1 + i,
                "barcode": rng.digits(13),
                "value": _money(500 * rng.between(2, 10)),
                "validfrom": format_wallclock(seconds, suffix="")[:10],
                "validuntil": format_wallclock(seconds + 365 * 86400, suffix="")[:10],
                "modtime": _unix(seconds),
            }

    def coupons(self) -> Iterator[dict[str, Any]]:
        for i in range(8):
            rng = RowRandom(self.keys["misc"], 35_000 + i)
            money = i % 2 == 0
            yield {
                "id": 1 + i,
                "barcode": rng.digits(13),
                "value": _money(500 * (1 + i % 4)) if money else str(5 * (1 + i % 4)),
                "valuetype": 1 if money else 2,
                "validfrom": "2026-01-01",
                "validuntil": "2026-12-31",
                "used": int(i % 3 == 0),
            }

    def customer_credits(self) -> Iterator[dict[str, Any]]:
        for i in range(0, self.customers, 10):
            yield from self._credits(i, detail=False)

    def customer_credit_detail(self, customer_id: int) -> list[dict[str, Any]]:
        i = customer_id - 1
        if i < 0 or i >= self.customers or i % 10:
            return []
        return list(self._credits(i, detail=True))

    def _credits(self, i: int, *, detail: bool) -> Iterator[dict[str, Any]]:
        rng = RowRandom(self.keys["misc"], 40_000 + i)
        customer = self.customer(i)
        base = {"customerid": 1 + i, "tagid": customer["tagid"], "tagtype": customer["tagtype"]}
        if not detail:
            yield {**base, "value": _money(rng.between(0, 5000))}
            return
        for n in range(1 + rng.below(3)):  # each addition of credit, with the extra fields
            yield {
                **base,
                "value": _money(rng.between(100, 2000)),
                "id": 100 * (1 + i) + n,
                "productid": 1000 + rng.below(self.products),
                "categoryid": 1 + rng.below(len(_CATEGORIES)),
            }

    # -- dated lists: orders, invoices -----------------------------------------------------------
    def order_seconds(self, k: int) -> int:
        return self.order_times.seconds(k)

    def is_labour(self, k: int) -> bool:
        """Every 20th order is a labour clock-in or clock-out (the reference's clockin/clockout)."""
        return k % LABOUR_EVERY == LABOUR_OFFSET

    def order(self, k: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["order"], k)
        seconds = self.order_seconds(k)
        payments = dict.fromkeys(_PAYMENT_FIELDS, "0.00")
        record: dict[str, Any] = {
            "id": 100_000 + k,
            "customerid": 1 + rng.below(self.customers) if rng.chance(25) else 0,
            "kassaid": 1 + rng.below(2),
            "totalprice": "0.00",
            "user": 1 + rng.below(6),
            "ordertime": format_wallclock(seconds, suffix="").replace("T", " "),
            "clockin": 0,
            "clockout": 0,
            "orderdetail": [],
        }
        if self.is_labour(k):
            record["clockin" if (k // 20) % 2 == 0 else "clockout"] = 1
            return {**record, **payments}
        total = 0
        for _ in range(1 + rng.below(4)):
            product = self.product(rng.below(self.products))
            quantity = 1 + rng.below(3)
            price = int(product["price"].replace(".", ""))
            tax = 6 if product["categorylink"] not in (5, 6) else 21
            line: dict[str, Any] = {
                "quantity": quantity,
                "productid": product["id"],
                "productprice": product["price"],
                "producttax": tax,
            }
            for n in range(1, 11):  # subproduct1id … subproduct10id, price and tax
                used = n <= rng.below(3)
                sub = self.subproduct(rng.below(40)) if used else None
                line[f"subproduct{n}id"] = sub["id"] if sub else 0
                line[f"subproduct{n}price"] = sub["price"] if sub else "0.00"
                line[f"subproduct{n}tax"] = tax if sub else 0
                if sub:
                    price += int(sub["price"].replace(".", ""))
            total += price * quantity
            record["orderdetail"].append(line)
        record["totalprice"] = _money(total)
        payments[_PAYMENT_FIELDS[rng.below(len(_PAYMENT_FIELDS))]] = record["totalprice"]
        return {**record, **payments}

    def invoice(self, j: int) -> dict[str, Any]:
        order = self.order(3 * j)
        seconds = self.order_seconds(3 * j) + 120
        day = format_wallclock(seconds, suffix="").replace("T", " ")
        doctype = (1, 1, 1, 2, 3)[j % 5]
        return {
            "id": 500_000 + j,
            "customerid": order["customerid"] or 1 + j % self.customers,
            "totalprice": order["totalprice"],
            "date": day,
            "expirationdate": format_wallclock(seconds + 30 * 86400, suffix="")[:10],
            "number": f"{('F', 'O', 'C')[doctype - 1]}{j + 1:06d}",
            "doctype": doctype,
            "note": "",
            "invoicedetail": [
                {
                    "quantity": line["quantity"],
                    "productname": self.product(line["productid"] - 1000)["name"],
                    "productprice": line["productprice"],
                    "producttax": line["producttax"],
                }
                for line in order["orderdetail"]
            ],
            "docfromvatticket": int(j % 4 == 0),
        }


@dataclass
class _Dated:
    """A dated list answered by binary search: row ``k`` has id ``id_base + k`` and a time that
    never decreases with ``k``."""

    count: int
    id_base: int
    seconds: Callable[[int], int]
    row: Callable[[int], dict[str, Any]]

    labour: bool = False

    def select(self, filters: Mapping[str, str], limit: int) -> list[dict[str, Any]]:
        """The reference's URL filters: ``start``/``end`` (id range, both inclusive), ``date``
        (``YYYY-MM-DD``, one Brussels day) and, for orders, ``clockinclockout`` (labour only).
        A date or id the emulator cannot read matches nothing (2000): the reference is silent."""
        lo, hi = 0, self.count
        if filters.get("date"):
            day = parse_wallclock(filters["date"]) if len(filters["date"]) == 10 else None
            if day is None:
                return []
            lo = max(lo, _first_at_or_after(self.seconds, self.count, day))
            hi = min(hi, _first_at_or_after(self.seconds, self.count, day + 86400))
        try:
            if filters.get("start"):
                lo = max(lo, int(filters["start"]) - self.id_base)
            if filters.get("end"):
                hi = min(hi, int(filters["end"]) - self.id_base + 1)
        except ValueError:
            return []
        lo = max(lo, 0)
        if self.labour and "clockinclockout" in filters:
            first = lo + (LABOUR_OFFSET - lo) % LABOUR_EVERY
            return [self.row(k) for k in range(first, hi, LABOUR_EVERY)][:limit]
        return [self.row(k) for k in range(lo, min(hi, lo + limit))]


def _first_at_or_after(seconds: Callable[[int], int], count: int, target: int) -> int:
    keys = _KeyView(seconds, count)
    return bisect.bisect_left(keys, target)


class _KeyView:
    """A read-only sequence over ``seconds(k)`` for :mod:`bisect`, without materialising it."""

    def __init__(self, seconds: Callable[[int], int], count: int) -> None:
        self._seconds = seconds
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, k: int) -> int:
        return self._seconds(k)


class _Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ==================================================================================================
# Weborders
# ==================================================================================================
@dataclass
class _Weborder:
    id: int
    created: float
    body: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    """Forced state (``confirmed``, ``pending``); ``None`` follows the confirm delay."""
    confirm_after: float | None = 0.0
    confirm_on_poll: int | None = None
    """Confirmed from the ``confirm_on_poll``-th ``get-confirmedweborder`` for it (deterministic)."""
    polls: int = 0


# ==================================================================================================
# The emulator
# ==================================================================================================
class CloudPosEmulator(Emulator):
    """CloudPOS V1 and V2 ``weborder.insert``. See the module docstring for what it covers.

    :param clock: seconds since the epoch (tests replace it to cross midnight or a block's end).
    """

    name = "cloudpos"
    prefix = "/cloudpos"

    def __init__(
        self,
        seed: int = 42,
        scale: Mapping[str, int] | None = None,
        anchor: datetime = ANCHOR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.seed = seed
        self.anchor = anchor
        self.clock = clock
        self.licence = LICENCE
        self.token = sandbox_cloudpos_token(seed)
        self._lock = threading.RLock()
        self._scale = dict(DEFAULT_SCALE)
        self._data = _Data(seed, self._scale, anchor)
        self.reset_state()

    # -- set-up and state ----------------------------------------------------------------------------
    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        known = {key: int(value) for key, value in scale.items() if key in DEFAULT_SCALE}
        if known:
            if any(value < 1 for value in known.values()):
                raise ValueError("CloudPOS row counts must be at least 1")
            self._scale.update(known)
            self._data = _Data(self.seed, self._scale, self.anchor)
        return list(known)

    def reset_state(self) -> None:
        with self._lock:
            self.licences: dict[str, str] = {self.licence: self.token}
            self.daily_limits: dict[str, int] = {}
            self.default_daily_limit = DAILY_LIMIT
            self.max_rows_per_call = MAX_ROWS_PER_CALL
            self.confirm_after_seconds: float | None = 0.0
            self.confirm_on_poll: int | None = None
            self.unlicensed: set[str] = set()
            self.usage: dict[tuple[str, str], int] = {}
            self.bad_logins: dict[str, int] = {}
            self.blocked_until: dict[str, float] = {}
            self.calls: list[dict[str, Any]] = []
            self.vattickets: dict[str, int] = {}
            self.refusals: dict[int, int] = {}
            now = self.clock()
            self.weborders: dict[int, _Weborder] = {
                CONFIRMED_WEBORDER: _Weborder(
                    CONFIRMED_WEBORDER,
                    now,
                    {"plannedorder": True, "plannedorderdatetime": "2026-11-19 18:30:00", "delivery": 0},
                    state="confirmed",
                ),
                PENDING_WEBORDER: _Weborder(PENDING_WEBORDER, now, state="pending"),
            }
            self.next_weborder = FIRST_CREATED_WEBORDER

    def add_licence(self, licence: str, token: str | None = None, daily_limit: int | None = None) -> str:
        """Accept another licence (each has its own quota); returns its token."""
        token = token or sandbox_cloudpos_token(self.seed, licence)
        with self._lock:
            self.licences[licence] = token
            if daily_limit is not None:
                self.daily_limits[licence] = int(daily_limit)
        return token

    def new_token(self, licence: str = LICENCE) -> str:
        """A new token for ``licence``, as CloudPOS support issues one; the old token stops working."""
        with self._lock:
            self._token_generation = getattr(self, "_token_generation", 0) + 1
            token = sandbox_cloudpos_token(f"{self.seed}:{self._token_generation}", licence)
            self.licences[licence] = token
            return token

    def limit_of(self, licence: str) -> int:
        return self.daily_limits.get(licence, self.default_daily_limit)

    def brussels_now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), tz=BRUSSELS)

    def used_today(self, licence: str = LICENCE) -> int:
        with self._lock:
            return self.usage.get((licence, self.brussels_now().date().isoformat()), 0)

    # -- HTTP --------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.subpath.rstrip("/").lower()
        if path == "/api":
            return self._v1(request)
        if path.startswith("/api/v2/") and request.method == "POST":
            return self._v2(request, path[len("/api/v2/") :])
        return Response.json({"success": 0, "errorcode": 404, "message": "Not found"}, 404)

    def _address(self, request: Request) -> str:
        forwarded = (request.header("x-forwarded-for") or "").split(",")[0].strip()
        return forwarded or "127.0.0.1"

    def _login(self, request: Request, licence: str, token: str) -> _Refusal | None:
        """Apply the IP block, the credential check and the quota; count the request."""
        refusal = self._check_login(request, licence, token)
        if refusal is not None:
            with self._lock:
                self.refusals[refusal.code] = self.refusals.get(refusal.code, 0) + 1
        return refusal

    def _check_login(self, request: Request, licence: str, token: str) -> _Refusal | None:
        address = self._address(request)
        now = self.clock()
        with self._lock:
            until = self.blocked_until.get(address)
            if until is not None and until > now:
                stamp = datetime.fromtimestamp(until, tz=BRUSSELS).strftime("%Y-%m-%d %H:%M:%S")
                return _Refusal(
                    1004,
                    f"{BAD_LOGINS_TO_BLOCK} bad logins reached, your ip adress is blocked till '{stamp}'",
                )
            if not licence or not token or self.licences.get(licence) != token:
                count = self.bad_logins.get(address, 0) + 1
                self.bad_logins[address] = count
                if count >= BAD_LOGINS_TO_BLOCK:
                    self.blocked_until[address] = now + BLOCK_MINUTES * 60
                    self.bad_logins[address] = 0
                if not licence or not token:
                    return _Refusal(1001, "Token and name can not be empty")
                return _Refusal(1002, "Token or name not valid")
            self.bad_logins.pop(address, None)
            today = datetime.fromtimestamp(now, tz=BRUSSELS).date()
            used = self.usage.get((licence, today.isoformat()), 0)
            limit = self.limit_of(licence)
            if used >= limit:
                stamp = f"{today + timedelta(days=1):%Y-%m-%d} 00:00:00"
                return _Refusal(
                    1003, f"Limit of '{limit}' requests per day reached, next request possible '{stamp}'"
                )
            self.usage[(licence, today.isoformat())] = used + 1
        return None

    # -- V1 ----------------------------------------------------------------------------------------
    def _v1(self, request: Request) -> Response:
        licence = request.param("licname") or ""
        token = request.param("token") or ""
        refusal = self._login(request, licence, token)
        if refusal is not None:
            return _v1_error(refusal)
        query = parse_qs(request.query_string, keep_blank_values=True)
        flags = [key for key, values in query.items() if values == [""]]
        function = next((flag.lower() for flag in flags if flag.lower() in self._functions()), None)
        url = {k: v[0] for k, v in query.items() if k not in ("licname", "token") and k.lower() != function}
        with self._lock:
            self.calls.append(
                {"function": function, "licence": licence, "method": request.method, "url": url}
            )
        if function is None:
            return _v1_error(_Refusal(1000, "No valid function given"))
        if function in self.unlicensed:
            return _v1_error(_Refusal(1005, "No license for this module"))
        try:
            filters = _filters(request, function)
            records = self._functions()[function](filters)
        except _Refusal as problem:
            return _v1_error(problem)
        if not records:
            return _v1_error(_Refusal(2000, _NOTHING_FOUND.get(function, "")))
        if isinstance(records, dict):  # a single answer (webordertime): its fields beside "success"
            return Response.json({"success": 1, **records})
        return Response.json({"success": 1, "data": records})

    def _functions(self) -> dict[str, Callable[[Mapping[str, str]], Any]]:
        data = self._data
        limit = self.max_rows_per_call

        def listed(source: Callable[[], Iterator[dict[str, Any]]]) -> Callable[[Mapping[str, str]], Any]:
            return lambda _filters: list(source())

        orders = _Dated(data.orders, 100_000, data.order_seconds, data.order, labour=True)
        invoices = _Dated(data.orders // 3, 500_000, lambda j: data.order_seconds(3 * j) + 120, data.invoice)
        coupons = _Dated(8, 1, lambda i: 0, lambda i: list(data.coupons())[i])

        def credits(filters: Mapping[str, str]) -> list[dict[str, Any]]:
            if "customerid" in filters:
                try:
                    return data.customer_credit_detail(int(filters["customerid"]))
                except ValueError:
                    return []
            return list(data.customer_credits())

        return {
            "get-categories": listed(data.categories),
            "get-products": lambda _f: [data.product(i) for i in range(data.products)],
            "get-subproducts": lambda _f: [data.subproduct(i) for i in range(40)],
            "get-customers": lambda _f: [data.customer(i) for i in range(data.customers)],
            "get-users": listed(data.users),
            "get-tables": listed(data.tables),
            "get-payment": listed(data.payments),
            "get-printers": listed(data.printers),
            "get-orders": lambda f: orders.select(f, limit),
            "get-invoices": lambda f: invoices.select(f, limit),
            "get-confirmedweborder": self._confirmed_weborder,
            "get-invoicesigned": lambda f: self._sign(f, 1),
            "get-offersigned": lambda f: self._sign(f, 2),
            "get-creditnotesigned": lambda f: self._sign(f, 3),
            "get-reservationpersons": self._reservation_persons,
            "get-reservationhours": self._reservation_hours,
            "get-giftvoucher": listed(data.gift_vouchers),
            "get-coupon": lambda f: coupons.select(f, limit),
            "get-customercredits": credits,
        }

    def _sign(self, filters: Mapping[str, str], doctype: int) -> dict[str, Any]:
        """The reference: Post ``documentnr``; answer ``vatticket``; 2001 Document nr can not be
        empty, 2002 Document nr already in use; 2000 (no message given: here, no such document)."""
        number = (filters.get("documentnr") or "").strip()
        if not number:
            raise _Refusal(2001, "Document nr can not be empty")
        try:
            j = int(number[1:]) - 1
        except ValueError:
            return {}
        if not 0 <= j < self._data.orders // 3 or self._data.invoice(j)["number"] != number:
            return {}
        if self._data.invoice(j)["doctype"] != doctype:
            return {}
        with self._lock:
            if number in self.vattickets:
                raise _Refusal(2002, "Document nr already in use")
            self.vattickets[number] = 70_000 + len(self.vattickets) + 1
            return {"vatticket": self.vattickets[number]}

    def _reservation_persons(self, filters: Mapping[str, str]) -> dict[str, Any]:
        """The reference: Post ``date``; answer ``persons`` (the party sizes still bookable)."""
        day = (filters.get("date") or "").strip()
        if not day:
            raise _Refusal(2001, "Date can not be empty")
        if parse_wallclock(day) is None:
            return {}
        return {"persons": list(range(1, 9))}

    def _reservation_hours(self, filters: Mapping[str, str]) -> dict[str, Any]:
        """The reference: Post ``date`` and ``persons``; answer ``hours`` (the free hours)."""
        day = (filters.get("date") or "").strip()
        if not day:
            raise _Refusal(2001, "Date can not be empty")
        persons = (filters.get("persons") or "").strip()
        if not persons:
            raise _Refusal(2002, "Persons can not be empty")
        if parse_wallclock(day) is None or not persons.isdigit() or not 1 <= int(persons) <= 8:
            return {}
        return {"hours": ["18:00", "18:30", "19:00", "19:30", "20:00", "20:30", "21:00"][int(persons) % 3 :]}

    def _confirmed_weborder(self, filters: Mapping[str, str]) -> dict[str, Any]:
        # The reference: Post filter "weborderid"; 2001 weborder not confirmed, 2002 weborderid can
        # not be empty, 2003 weborderid does not exist; success carries "webordertime".
        raw = (filters.get("weborderid") or "").strip()
        if not raw:
            raise _Refusal(2002, "weborderid can not be empty")
        try:
            weborder_id = int(raw)
        except ValueError:
            raise _Refusal(2003, "weborderid does not exist") from None
        with self._lock:
            weborder = self.weborders.get(weborder_id)
            if weborder is None:
                raise _Refusal(2003, "weborderid does not exist")
            weborder.polls += 1
            state = self._state_of(weborder)
        if state != "confirmed":
            raise _Refusal(2001, "weborder not confirmed")
        confirmed = weborder.created + (weborder.confirm_after or 0.0)
        confirmed_at = datetime.fromtimestamp(confirmed, tz=BRUSSELS)
        planned = weborder.body.get("plannedorderdatetime") if weborder.body.get("plannedorder") else None
        delivery = (
            str(planned) if planned else (confirmed_at + timedelta(minutes=20)).strftime("%Y-%m-%d %H:%M:%S")
        )
        return {"webordertime": delivery}

    def _state_of(self, weborder: _Weborder) -> str:
        if weborder.state is not None:
            return weborder.state
        if weborder.confirm_on_poll is not None:
            return "confirmed" if weborder.polls >= weborder.confirm_on_poll else "pending"
        if weborder.confirm_after is None:
            return "pending"
        return "confirmed" if self.clock() >= weborder.created + weborder.confirm_after else "pending"

    # -- V2 ----------------------------------------------------------------------------------------
    def _v2(self, request: Request, action: str) -> Response:
        refusal = self._login(request, request.header("licensename") or "", request.header("token") or "")
        if refusal is not None:
            status = {1001: 401, 1002: 401, 1003: 429, 1004: 403}.get(refusal.code, 400)
            return Response.json({"error_code": refusal.code, "message": refusal.message}, status)
        call: dict[str, Any] = {
            "function": action,
            "licence": request.header("licensename"),
            "method": "POST",
        }
        with self._lock:
            self.calls.append(call)
        if action != "weborder.insert" and action not in _V2_SELECTS:
            return Response.json({"error_code": 404, "message": f"Unknown function {action}"}, 404)
        try:
            body = request.json() if request.body else {}
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return Response.json({"error_code": 400, "message": "Body must be a JSON object"}, 400)
        call["body"] = body
        if action in _V2_SELECTS:
            return self._v2_select(action, body)
        try:
            self._check_weborder(body)
        except _Refusal as problem:
            return Response.json({"error_code": problem.code, "message": problem.message}, 400)
        with self._lock:
            weborder_id = self.next_weborder
            self.next_weborder += 1
            confirm_after = 0.0 if body.get("autoconfirmation") else self.confirm_after_seconds
            confirm_on_poll = None if body.get("autoconfirmation") else self.confirm_on_poll
            self.weborders[weborder_id] = _Weborder(
                weborder_id, self.clock(), body, confirm_after=confirm_after, confirm_on_poll=confirm_on_poll
            )
        return Response.json({"weborderid": weborder_id})

    def _v2_select(self, action: str, body: Mapping[str, Any]) -> Response:
        """``product.select`` (body ``{"show_deleted": false}``), ``category.select`` and
        ``customer.select`` (optionally ``{"email": …}``), as CloudPOS's V2 clients call them: a bare
        JSON array, or the V1-style 2000 "No … found" when there is nothing (what those clients
        handle as an empty list). The sandbox has no deleted products, so ``show_deleted`` changes
        nothing; other body keys are ignored."""
        data = self._data
        if action == "product.select":
            rows = [_v2_product(data.product(i)) for i in range(data.products)]
        elif action == "category.select":
            rows = [
                {**category, "modtime": _unix(data.start + 3600 * category["id"])}
                for category in data.categories()
            ]
        else:
            rows = [_v2_customer(data.customer(i)) for i in range(data.customers)]
            email = str(body.get("email") or "").strip().lower()
            if email:
                rows = [row for row in rows if row["email"].lower() == email]
        if not rows:
            return Response.json({"success": 0, "errorcode": 2000, "message": _V2_SELECTS[action]})
        return Response.json(rows)

    def _check_weborder(self, body: Mapping[str, Any]) -> None:
        lines = body.get("weborderdetail")
        if not isinstance(lines, list) or not lines:
            raise _Refusal(2001, "No weborderdetail given")
        products = range(1000, 1000 + self._data.products)
        for line in lines:
            if not isinstance(line, dict):
                raise _Refusal(2001, "Invalid weborderdetail line")
            try:
                product = int(line["productid"])
                quantity = float(line.get("quantity", 0))
            except (KeyError, TypeError, ValueError):
                raise _Refusal(2001, "Invalid productid or quantity") from None
            if product not in products:
                raise _Refusal(2002, f"Product {product} does not exist")
            if quantity <= 0:
                raise _Refusal(2001, "Quantity must be above 0")
        customer = body.get("customerid")
        if customer not in (None, "", 0) and not 1 <= int(customer) <= self._data.customers:
            raise _Refusal(2003, f"Customer {customer} does not exist")

    # -- control endpoints ------------------------------------------------------------------------------
    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        if path == "credentials" and request.method == "GET":
            return Response.json({"licence": self.licence, "token": self.licences.get(self.licence)})
        if path == "credentials" and request.method == "POST":
            try:
                licence = str((request.json() if request.body else {}).get("licence") or self.licence)
            except (ValueError, AttributeError):
                return Response.json({"error": "expected {'licence'?: …}"}, 400)
            return Response.json({"licence": licence, "token": self.new_token(licence)})
        if path == "usage" and request.method == "GET":
            with self._lock:
                return Response.json(
                    {
                        "usage": {f"{lic}@{day}": n for (lic, day), n in self.usage.items()},
                        "bad_logins": dict(self.bad_logins),
                        "blocked_until": dict(self.blocked_until),
                        "calls": len(self.calls),
                        "refusals": {str(code): n for code, n in self.refusals.items()},
                    }
                )
        if path == "config" and request.method == "POST":
            return self._configure(request)
        if path == "licences" and request.method == "POST":
            try:
                data = request.json()
                token = self.add_licence(str(data["licence"]), data.get("token"), data.get("daily_limit"))
            except (ValueError, KeyError, TypeError):
                return Response.json(
                    {"error": "expected {'licence': …, 'token'?: …, 'daily_limit'?: N}"}, 400
                )
            return Response.json({"licence": data["licence"], "token": token})
        if path.startswith("weborders/") and request.method == "POST":
            return self._force_weborder(request, path.split("/", 1)[1])
        return super().handle_control(request, path)

    def _configure(self, request: Request) -> Response:
        try:
            data = request.json()
            with self._lock:
                if "daily_limit" in data:
                    self.default_daily_limit = int(data["daily_limit"])
                if "max_rows_per_call" in data:
                    self.max_rows_per_call = max(1, int(data["max_rows_per_call"]))
                if "confirm_after_seconds" in data:
                    value = data["confirm_after_seconds"]
                    self.confirm_after_seconds = None if value is None else float(value)
                if "confirm_on_poll" in data:
                    value = data["confirm_on_poll"]
                    self.confirm_on_poll = None if value is None else max(1, int(value))
                if "unlicensed" in data:
                    self.unlicensed = {str(name).lower() for name in data["unlicensed"]}
        except (ValueError, TypeError, AttributeError) as error:
            return Response.json({"error": f"bad configuration: {error}"}, 400)
        return Response.json({"status": "ok"})

    def _force_weborder(self, request: Request, raw_id: str) -> Response:
        try:
            weborder_id = int(raw_id)
            state = str(request.json()["state"])
            if state not in ("confirmed", "pending"):
                raise ValueError(state)
        except (ValueError, KeyError, TypeError):
            return Response.json({"error": "expected {'state': 'confirmed'|'pending'}"}, 400)
        with self._lock:
            weborder = self.weborders.setdefault(weborder_id, _Weborder(weborder_id, self.clock()))
            weborder.state = state
        return Response.json({"weborderid": weborder_id, "state": state})


#: The reference's 2000 messages (functions it gives none for answer 2000 without one).
_NOTHING_FOUND = {
    "get-categories": "No categories found",
    "get-products": "No products found",
    "get-subproducts": "No subproducts found",
    "get-customers": "No customers found",
    "get-users": "No users found",
    "get-tables": "No tables found",
    "get-payment": "No payment found",
    "get-printers": "No printers found",
    "get-orders": "No orders found",
    "get-invoices": "No invoices found",
    "get-giftvoucher": "No vouchers found",
    "get-coupon": "No coupons found",
    "get-customercredits": "No customercredits found",
}


#: The V2 selects and their "nothing found" message.
_V2_SELECTS = {
    "product.select": "No products found",
    "category.select": "No categories found",
    "customer.select": "No customers found",
}
#: Drinks (Frisdranken, Bieren, Warme dranken) and the alcoholic ones (Bieren), by category id.
_DRINK_CATEGORIES = frozenset({5, 6, 7})
_ALCOHOL_CATEGORIES = frozenset({6})


def _v2_product(product: Mapping[str, Any]) -> dict[str, Any]:
    """A V1 ``get-products`` record under the names V2 clients read (``category_id``, ``tax`` taken
    away, ``tax_table`` eaten in). VAT as a Belgian frituur charges it: 6 % taken away (21 % for
    alcohol), 12 % for food and 21 % for drinks on site (a sandbox assumption)."""
    category = product["categorylink"]
    return {
        "id": product["id"],
        "name": product["name"],
        "category_id": category,
        "price": product["price"],
        "tax": 21 if category in _ALCOHOL_CATEGORIES else 6,
        "tax_table": 21 if category in _DRINK_CATEGORIES else 12,
        "quantity": str(product["quantity"]),
        "modtime": product["modtime"],
    }


def _v2_customer(customer: Mapping[str, Any]) -> dict[str, Any]:
    """A V1 ``get-customers`` record as V2 clients read it: ``firstname`` (V1 spells ``fistname``)."""
    return {
        "id": customer["id"],
        "firstname": customer["fistname"],
        "name": customer["name"],
        "email": customer["email"],
        "phone": customer["phone"],
        "modtime": customer["modtime"],
    }


def _v1_error(refusal: _Refusal) -> Response:
    return Response.json({"success": 0, "errorcode": refusal.code, "message": refusal.message})


#: Functions the reference gives "Post filter"s; the others read "Url filter"s only.
_POST_FUNCTIONS = frozenset(
    {
        "get-confirmedweborder",
        "get-invoicesigned",
        "get-offersigned",
        "get-creditnotesigned",
        "get-reservationpersons",
        "get-reservationhours",
    }
)


def _filters(request: Request, function: str) -> dict[str, str]:
    """The reference's Post filters from a form (or JSON) body for the functions that take them;
    for the others its URL filters from the query string (``&start=1``, ``&date=…``, the bare flag
    ``&clockinclockout``)."""
    found: dict[str, str] = {}
    if function not in _POST_FUNCTIONS:
        query = parse_qs(request.query_string, keep_blank_values=True)
        for key in ("start", "end", "date", "customerid"):
            if query.get(key, [""])[0]:
                found[key] = query[key][0]
        if "clockinclockout" in query:
            found["clockinclockout"] = ""
        return found
    if not request.body:
        return found
    content_type = (request.header("content-type") or "").lower()
    if "json" in content_type:
        try:
            body = request.json()
        except ValueError:
            raise _Refusal(2001, "Invalid body") from None
        if isinstance(body, dict):
            found.update({str(k).lower(): str(v) for k, v in body.items() if v is not None})
        return found
    form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=False)
    found.update({key.lower(): values[0] for key, values in form.items()})
    return found
