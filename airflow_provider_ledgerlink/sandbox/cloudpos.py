"""An offline CloudPOS API (V1, and V2 ``weborder.insert``) for tests and demos.

Mounted at ``/cloudpos``, so the API base is ``http://127.0.0.1:PORT/cloudpos/api/``. What it does,
following CloudPOS's V1 page where it says something and LedgerLink's documented choices where not:

- V1: ``GET|POST /api/?licname=<licence>&token=<token>&get-products``. The function is a bare flag;
  filters (``datefrom``, ``dateto``, ``idfrom``, ``idto``, ``weborderid``) are read from a form body
  (a JSON body and the query string are accepted too). Answers are HTTP 200 with
  ``{"success": 1, "data": [...]}`` or ``{"success": 0, "errorcode": N, "message": "…"}``.
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
  ``null``: never); ``/_sandbox/cloudpos/weborders/<id>`` forces ``confirmed`` or ``pending``.
  Fixtures: 7001 confirmed, 7002 never confirmed.
- V2 ``POST /api/v2/weborder.insert`` with the ``Licensename`` and ``Token`` headers and a JSON body;
  answers ``{"weborderid": N}``, errors as ``{"error_code": N, "message": "…"}`` with a 4xx status.

Times are Brussels wall clock (``YYYY-MM-DD HH:MM:SS``); ``modtime`` is a unix timestamp. The data
covers the 60 days before 2026-11-20 and is a pure function of the seed and the row number: orders
(40 a day by default, ``scale={"cloudpos_orders": N}``), their invoices, products, customers and the
reference lists. Date and id filters on orders and invoices are answered by binary search, so any
scale costs the same per answer. An answer holds at most ``max_rows_per_call`` (500) rows, lowest ids
first; the rest is read with ``idfrom``.
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

    def customer(self, i: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["customer"], i)
        first, _, last = person_name(rng).partition(" ")
        postcode, city = _CITIES[rng.below(len(_CITIES))]
        return {
            "id": 1 + i,
            "firstname": first,
            "name": last or first,
            "email": f"klant{i + 1}@example.be",
            "phone": phone_number(rng).replace("+31", "+32"),
            "street": f"Kerkstraat {rng.between(1, 180)}",
            "zip": postcode,
            "city": city,
            "vatnumber": f"BE0{rng.digits(9)}" if rng.chance(20) else "",
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
                "name": person_name(rng),
                "secnr": f"{birth:%y.%m.%d}-{serial:03d}.{check:02d}",
                "active": 1,
            }

    def tables(self) -> Iterator[dict[str, Any]]:
        for i in range(24):
            yield {
                "id": 1 + i,
                "name": f"Tafel {i + 1}",
                "zone": "Terras" if i >= 16 else "Zaal",
                "seats": 2 + i % 4 * 2,
            }

    def payments(self) -> Iterator[dict[str, Any]]:
        for number, name in enumerate(_PAYMENTS, start=1):
            yield {"id": number, "name": name}

    def printers(self) -> Iterator[dict[str, Any]]:
        for number, (name, kind) in enumerate(
            (("Kassa", "ticket"), ("Keuken", "kitchen"), ("Bar", "bar")), 1
        ):
            yield {"id": number, "name": name, "type": kind}

    def gift_vouchers(self) -> Iterator[dict[str, Any]]:
        for i in range(25):
            rng = RowRandom(self.keys["misc"], 30_000 + i)
            yield {
                "id": 1 + i,
                "code": f"GV{rng.hex(8)}",
                "amount": _money(500 * rng.between(2, 10)),
                "used": int(rng.chance(40)),
            }

    def coupons(self) -> Iterator[dict[str, Any]]:
        for i in range(8):
            yield {
                "id": 1 + i,
                "code": f"PROMO{i + 1}",
                "discountpercent": 5 * (1 + i % 4),
                "active": int(i % 3 != 0),
            }

    def customer_credits(self) -> Iterator[dict[str, Any]]:
        for i in range(0, self.customers, 10):
            rng = RowRandom(self.keys["misc"], 40_000 + i)
            yield {"customerid": 1 + i, "credit": _money(rng.between(0, 5000))}

    # -- dated lists: orders, invoices, signed documents, reservations -------------------------------
    def order_seconds(self, k: int) -> int:
        return self.order_times.seconds(k)

    def order(self, k: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["order"], k)
        lines = []
        total = 0
        for _ in range(1 + rng.below(4)):
            product = self.product(rng.below(self.products))
            quantity = 1 + rng.below(3)
            price = int(product["price"].replace(".", ""))
            total += price * quantity
            lines.append(
                {
                    "productid": product["id"],
                    "name": product["name"],
                    "quantity": quantity,
                    "price": product["price"],
                    "tax": 6 if product["categorylink"] not in (5, 6) else 21,
                }
            )
        seconds = self.order_seconds(k)
        return {
            "id": 100_000 + k,
            "date": format_wallclock(seconds, suffix="").replace("T", " "),
            "tableid": 1 + rng.below(24),
            "userid": 1 + rng.below(6),
            "customerid": 1 + rng.below(self.customers) if rng.chance(25) else 0,
            "paymentid": 1 + rng.below(len(_PAYMENTS)),
            "total": _money(total),
            "lines": lines,
            "modtime": _unix(seconds),
        }

    def invoice(self, j: int) -> dict[str, Any]:
        order = self.order(3 * j)
        seconds = self.order_seconds(3 * j) + 120
        total = int(order["total"].replace(".", ""))
        return {
            "id": 500_000 + j,
            "invoicenumber": f"F{j + 1:06d}",
            "orderid": order["id"],
            "date": format_wallclock(seconds, suffix="").replace("T", " "),
            "customerid": order["customerid"] or 1 + j % self.customers,
            "total": order["total"],
            "vat": _money(total - total * 100 // 106),
            "modtime": _unix(seconds),
        }

    def signed_document(self, j: int) -> dict[str, Any]:
        invoice = self.invoice(j)
        digest = hashlib.sha256(f"{self.seed}:signed:{invoice['id']}".encode()).hexdigest()
        return {"id": 900_000 + j, "invoiceid": invoice["id"], "date": invoice["date"], "signature": digest}

    def reservation_seconds(self, r: int) -> int:
        return self.start + (r // 3) * 86400 + (18 + r % 3) * 3600

    def reservation(self, r: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["misc"], 50_000 + r)
        seconds = self.reservation_seconds(r)
        return {
            "id": 1 + r,
            "date": format_wallclock(seconds, suffix="").replace("T", " "),
            "name": person_name(rng),
            "persons": 2 + rng.below(6),
            "tableid": 1 + rng.below(24),
        }


@dataclass
class _Dated:
    """A dated list answered by binary search: row ``k`` has id ``id_base + k`` and a time that
    never decreases with ``k``."""

    count: int
    id_base: int
    seconds: Callable[[int], int]
    row: Callable[[int], dict[str, Any]]

    def select(self, filters: Mapping[str, str], limit: int) -> list[dict[str, Any]]:
        lo, hi = 0, self.count
        date_from = parse_wallclock(filters["datefrom"]) if filters.get("datefrom") else None
        date_to = parse_wallclock(filters["dateto"]) if filters.get("dateto") else None
        if (filters.get("datefrom") and date_from is None) or (filters.get("dateto") and date_to is None):
            raise _Refusal(2001, "Invalid date, use YYYY-MM-DD HH:MM:SS")
        if date_from is not None:
            lo = max(lo, _first_at_or_after(self.seconds, self.count, date_from))
        if date_to is not None:  # inclusive, as a date filter reads
            hi = min(hi, _first_at_or_after(self.seconds, self.count, date_to + 1))
        try:
            if filters.get("idfrom"):
                lo = max(lo, int(filters["idfrom"]) - self.id_base)
            if filters.get("idto"):
                hi = min(hi, int(filters["idto"]) - self.id_base + 1)
        except ValueError:
            raise _Refusal(2002, "Invalid id range") from None
        lo = max(lo, 0)
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
            self.unlicensed: set[str] = set()
            self.usage: dict[tuple[str, str], int] = {}
            self.bad_logins: dict[str, int] = {}
            self.blocked_until: dict[str, float] = {}
            self.calls: list[dict[str, Any]] = []
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
        flags = [
            key
            for key, values in parse_qs(request.query_string, keep_blank_values=True).items()
            if values == [""]
        ]
        function = next((flag.lower() for flag in flags if flag.lower() in self._functions()), None)
        with self._lock:
            self.calls.append({"function": function, "licence": licence, "method": request.method})
        if function is None:
            return _v1_error(_Refusal(1000, "No valid function given"))
        if function in self.unlicensed:
            return _v1_error(_Refusal(1005, "No license for this module"))
        try:
            filters = _filters(request)
            records = self._functions()[function](filters)
        except _Refusal as problem:
            return _v1_error(problem)
        if not records:
            label = function.removeprefix("get-")
            return _v1_error(_Refusal(2000, f"No {label} found"))
        if isinstance(records, dict):  # a single answer (webordertime): its fields beside "success"
            return Response.json({"success": 1, **records})
        return Response.json({"success": 1, "data": records})

    def _functions(self) -> dict[str, Callable[[Mapping[str, str]], Any]]:
        data = self._data
        limit = self.max_rows_per_call

        def listed(source: Callable[[], Iterator[dict[str, Any]]]) -> Callable[[Mapping[str, str]], Any]:
            return lambda _filters: list(source())

        orders = _Dated(data.orders, 100_000, data.order_seconds, data.order)
        invoices = _Dated(data.orders // 3, 500_000, lambda j: data.order_seconds(3 * j) + 120, data.invoice)
        signed = _Dated(
            data.orders // 3, 900_000, lambda j: data.order_seconds(3 * j) + 120, data.signed_document
        )
        reservations = _Dated(3 * HISTORY_DAYS, 1, data.reservation_seconds, data.reservation)
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
            "get-invoicesigned": lambda f: signed.select(f, limit),
            "get-reservations": lambda f: reservations.select(f, limit),
            "get-giftvouchers": listed(data.gift_vouchers),
            "get-coupons": listed(data.coupons),
            "get-customercredits": listed(data.customer_credits),
            "get-confirmedweborder": self._confirmed_weborder,
        }

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
        if weborder.confirm_after is None:
            return "pending"
        return "confirmed" if self.clock() >= weborder.created + weborder.confirm_after else "pending"

    # -- V2 ----------------------------------------------------------------------------------------
    def _v2(self, request: Request, action: str) -> Response:
        refusal = self._login(request, request.header("licensename") or "", request.header("token") or "")
        if refusal is not None:
            status = {1001: 401, 1002: 401, 1003: 429, 1004: 403}.get(refusal.code, 400)
            return Response.json({"error_code": refusal.code, "message": refusal.message}, status)
        with self._lock:
            self.calls.append(
                {"function": action, "licence": request.header("licensename"), "method": "POST"}
            )
        if action != "weborder.insert":
            return Response.json({"error_code": 404, "message": f"Unknown function {action}"}, 404)
        try:
            body = request.json() if request.body else {}
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return Response.json({"error_code": 400, "message": "Body must be a JSON object"}, 400)
        try:
            self._check_weborder(body)
        except _Refusal as problem:
            return Response.json({"error_code": problem.code, "message": problem.message}, 400)
        with self._lock:
            weborder_id = self.next_weborder
            self.next_weborder += 1
            confirm_after = 0.0 if body.get("autoconfirmation") else self.confirm_after_seconds
            self.weborders[weborder_id] = _Weborder(
                weborder_id, self.clock(), body, confirm_after=confirm_after
            )
        return Response.json({"weborderid": weborder_id})

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


def _v1_error(refusal: _Refusal) -> Response:
    return Response.json({"success": 0, "errorcode": refusal.code, "message": refusal.message})


def _filters(request: Request) -> dict[str, str]:
    """Filters from a form body (what LedgerLink sends), a JSON body, or the query string."""
    found: dict[str, str] = {}
    for key in ("datefrom", "dateto", "idfrom", "idto", "weborderid"):
        value = request.param(key)
        if value:
            found[key] = value
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
