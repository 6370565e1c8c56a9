"""What CloudPOS does with a request, without the wire: the licences with their daily quota and the
bad-login block, the V1 functions over the generated data, the V2 selects, and weborders with
their confirmation.

V1 functions take the call's filters (a mapping of names to strings) and answer a list of records,
a single answer (a dict of fields beside ``success``) or nothing (2000); a :class:`Refusal` is an
error answer with the reference's code and message.
:mod:`~airflow_provider_ledgerlink.sandbox.cloudpos.app` reads requests and writes the envelopes.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from airflow_provider_ledgerlink.sandbox.cloudpos.data import (
    ANCHOR,
    BRUSSELS,
    CONFIRMED_WEBORDER,
    DEFAULT_SCALE,
    LABOUR_EVERY,
    LABOUR_OFFSET,
    LICENCE,
    PENDING_WEBORDER,
    CloudPosData,
    sandbox_cloudpos_token,
    unix_timestamp,
)
from airflow_provider_ledgerlink.sandbox.data import parse_wallclock

DAILY_LIMIT = 500
BAD_LOGINS_TO_BLOCK = 5
BLOCK_MINUTES = 30
MAX_ROWS_PER_CALL = 500
FIRST_CREATED_WEBORDER = 8001

Function = Callable[[Mapping[str, str]], Any]
"""A V1 function: filters in; a list of records, a single answer (dict) or nothing out."""

#: The reference's 2000 messages (functions it gives none for answer 2000 without one).
NOTHING_FOUND = {
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
V2_SELECTS = {
    "product.select": "No products found",
    "category.select": "No categories found",
    "customer.select": "No customers found",
}
#: Drinks (Frisdranken, Bieren, Warme dranken) and the alcoholic ones (Bieren), by category id.
_DRINK_CATEGORIES = frozenset({5, 6, 7})
_ALCOHOL_CATEGORIES = frozenset({6})


class Refusal(Exception):
    """An error answer: the reference's code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ==================================================================================================
# Dated lists
# ==================================================================================================
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


# ==================================================================================================
# Weborders
# ==================================================================================================
@dataclass
class Weborder:
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
# The engine
# ==================================================================================================
class CloudPosEngine:
    """CloudPOS's licences, functions and weborders (see the package docs).

    :param clock: seconds since the epoch (tests replace it to cross midnight or a block's end).
    """

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
        self._data = CloudPosData(seed, self._scale, anchor)
        self.reset_state()

    # -- set-up and state ----------------------------------------------------------------------------
    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        known = {key: int(value) for key, value in scale.items() if key in DEFAULT_SCALE}
        if known:
            if any(value < 1 for value in known.values()):
                raise ValueError("CloudPOS row counts must be at least 1")
            self._scale.update(known)
            self._data = CloudPosData(self.seed, self._scale, self.anchor)
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
            self.vattickets: dict[str, int] = {}
            self.refusals: dict[int, int] = {}
            now = self.clock()
            self.weborders: dict[int, Weborder] = {
                CONFIRMED_WEBORDER: Weborder(
                    CONFIRMED_WEBORDER,
                    now,
                    {"plannedorder": True, "plannedorderdatetime": "2026-11-19 18:30:00", "delivery": 0},
                    state="confirmed",
                ),
                PENDING_WEBORDER: Weborder(PENDING_WEBORDER, now, state="pending"),
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

    # -- login -------------------------------------------------------------------------------------
    def login(self, address: str, licence: str, token: str) -> Refusal | None:
        """Apply the IP block, the credential check and the quota; count the request."""
        refusal = self._check_login(address, licence, token)
        if refusal is not None:
            with self._lock:
                self.refusals[refusal.code] = self.refusals.get(refusal.code, 0) + 1
        return refusal

    def _check_login(self, address: str, licence: str, token: str) -> Refusal | None:
        now = self.clock()
        with self._lock:
            until = self.blocked_until.get(address)
            if until is not None and until > now:
                stamp = datetime.fromtimestamp(until, tz=BRUSSELS).strftime("%Y-%m-%d %H:%M:%S")
                return Refusal(
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
                    return Refusal(1001, "Token and name can not be empty")
                return Refusal(1002, "Token or name not valid")
            self.bad_logins.pop(address, None)
            today = datetime.fromtimestamp(now, tz=BRUSSELS).date()
            used = self.usage.get((licence, today.isoformat()), 0)
            limit = self.limit_of(licence)
            if used >= limit:
                stamp = f"{today + timedelta(days=1):%Y-%m-%d} 00:00:00"
                return Refusal(
                    1003, f"Limit of '{limit}' requests per day reached, next request possible '{stamp}'"
                )
            self.usage[(licence, today.isoformat())] = used + 1
        return None

    # -- V1 functions ------------------------------------------------------------------------------
    def functions(self) -> dict[str, Function]:
        """Every function of the V1 reference, by its flag name."""
        data = self._data
        limit = self.max_rows_per_call

        def listed(source: Callable[[], Iterator[dict[str, Any]]]) -> Function:
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
            raise Refusal(2001, "Document nr can not be empty")
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
                raise Refusal(2002, "Document nr already in use")
            self.vattickets[number] = 70_000 + len(self.vattickets) + 1
            return {"vatticket": self.vattickets[number]}

    def _reservation_persons(self, filters: Mapping[str, str]) -> dict[str, Any]:
        """The reference: Post ``date``; answer ``persons`` (the party sizes still bookable)."""
        day = (filters.get("date") or "").strip()
        if not day:
            raise Refusal(2001, "Date can not be empty")
        if parse_wallclock(day) is None:
            return {}
        return {"persons": list(range(1, 9))}

    def _reservation_hours(self, filters: Mapping[str, str]) -> dict[str, Any]:
        """The reference: Post ``date`` and ``persons``; answer ``hours`` (the free hours)."""
        day = (filters.get("date") or "").strip()
        if not day:
            raise Refusal(2001, "Date can not be empty")
        persons = (filters.get("persons") or "").strip()
        if not persons:
            raise Refusal(2002, "Persons can not be empty")
        if parse_wallclock(day) is None or not persons.isdigit() or not 1 <= int(persons) <= 8:
            return {}
        return {"hours": ["18:00", "18:30", "19:00", "19:30", "20:00", "20:30", "21:00"][int(persons) % 3 :]}

    def _confirmed_weborder(self, filters: Mapping[str, str]) -> dict[str, Any]:
        # The reference: Post filter "weborderid"; 2001 weborder not confirmed, 2002 weborderid can
        # not be empty, 2003 weborderid does not exist; success carries "webordertime".
        raw = (filters.get("weborderid") or "").strip()
        if not raw:
            raise Refusal(2002, "weborderid can not be empty")
        try:
            weborder_id = int(raw)
        except ValueError:
            raise Refusal(2003, "weborderid does not exist") from None
        with self._lock:
            weborder = self.weborders.get(weborder_id)
            if weborder is None:
                raise Refusal(2003, "weborderid does not exist")
            weborder.polls += 1
            state = self._state_of(weborder)
        if state != "confirmed":
            raise Refusal(2001, "weborder not confirmed")
        confirmed = weborder.created + (weborder.confirm_after or 0.0)
        confirmed_at = datetime.fromtimestamp(confirmed, tz=BRUSSELS)
        planned = weborder.body.get("plannedorderdatetime") if weborder.body.get("plannedorder") else None
        delivery = (
            str(planned) if planned else (confirmed_at + timedelta(minutes=20)).strftime("%Y-%m-%d %H:%M:%S")
        )
        return {"webordertime": delivery}

    def _state_of(self, weborder: Weborder) -> str:
        if weborder.state is not None:
            return weborder.state
        if weborder.confirm_on_poll is not None:
            return "confirmed" if weborder.polls >= weborder.confirm_on_poll else "pending"
        if weborder.confirm_after is None:
            return "pending"
        return "confirmed" if self.clock() >= weborder.created + weborder.confirm_after else "pending"

    # -- V2 ----------------------------------------------------------------------------------------
    def select(self, action: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``product.select`` (body ``{"show_deleted": false}``), ``category.select`` and
        ``customer.select`` (optionally ``{"email": …}``), as CloudPOS's V2 clients call them. The
        sandbox has no deleted products, so ``show_deleted`` changes nothing; other body keys are
        ignored."""
        data = self._data
        if action == "product.select":
            return [_v2_product(data.product(i)) for i in range(data.products)]
        if action == "category.select":
            return [
                {**category, "modtime": unix_timestamp(data.start + 3600 * category["id"])}
                for category in data.categories()
            ]
        rows = [_v2_customer(data.customer(i)) for i in range(data.customers)]
        email = str(body.get("email") or "").strip().lower()
        if email:
            rows = [row for row in rows if row["email"].lower() == email]
        return rows

    def insert_weborder(self, body: dict[str, Any]) -> int:
        """``weborder.insert``: the new weborder's id, or a :class:`Refusal` for a bad body."""
        self._check_weborder(body)
        with self._lock:
            weborder_id = self.next_weborder
            self.next_weborder += 1
            confirm_after = 0.0 if body.get("autoconfirmation") else self.confirm_after_seconds
            confirm_on_poll = None if body.get("autoconfirmation") else self.confirm_on_poll
            self.weborders[weborder_id] = Weborder(
                weborder_id, self.clock(), body, confirm_after=confirm_after, confirm_on_poll=confirm_on_poll
            )
        return weborder_id

    def _check_weborder(self, body: Mapping[str, Any]) -> None:
        lines = body.get("weborderdetail")
        if not isinstance(lines, list) or not lines:
            raise Refusal(2001, "No weborderdetail given")
        products = range(1000, 1000 + self._data.products)
        for line in lines:
            if not isinstance(line, dict):
                raise Refusal(2001, "Invalid weborderdetail line")
            try:
                product = int(line["productid"])
                quantity = float(line.get("quantity", 0))
            except (KeyError, TypeError, ValueError):
                raise Refusal(2001, "Invalid productid or quantity") from None
            if product not in products:
                raise Refusal(2002, f"Product {product} does not exist")
            if quantity <= 0:
                raise Refusal(2001, "Quantity must be above 0")
        customer = body.get("customerid")
        if customer not in (None, "", 0) and not 1 <= int(customer) <= self._data.customers:
            raise Refusal(2003, f"Customer {customer} does not exist")


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
