"""The CloudPOS world the sandbox serves: the licence, the reference lists (categories, products,
subproducts, customers, users, tables, payments, printers, gift vouchers, coupons, customer credits)
and the dated lists (orders, their invoices), generated from the seed.

Every row is a pure function of (seed, list, row number): nothing is held in memory per row, and the
data never changes while the sandbox runs. Field names are the V1 reference's, with its spellings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_ledgerlink.sandbox.data import (
    RowRandom,
    Timeline,
    derive_key,
    format_wallclock,
    person_name,
    phone_number,
    wallclock_seconds,
)

BRUSSELS = ZoneInfo("Europe/Brussels")
LICENCE = "ledgerlink-sandbox"
ANCHOR = datetime(2026, 11, 20)
"""End of the generated history (Brussels wall clock)."""
HISTORY_DAYS = 60
#: Order ``k`` is a labour clock-in/out record when ``k % LABOUR_EVERY == LABOUR_OFFSET``.
LABOUR_EVERY = 20
LABOUR_OFFSET = 19
#: The weborders every sandbox starts with: one confirmed (for 2026-11-19 18:30), one never confirmed.
CONFIRMED_WEBORDER = 7001
PENDING_WEBORDER = 7002
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


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def unix_timestamp(wallclock: int) -> int:
    """Brussels wall-clock seconds as a unix timestamp."""
    moment = datetime(1970, 1, 1) + timedelta(seconds=wallclock)
    return int(moment.replace(tzinfo=BRUSSELS).timestamp())


class CloudPosData:
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
            "modtime": unix_timestamp(self._change_seconds(i, self.products)),
        }

    def subproduct(self, i: int) -> dict[str, Any]:
        rng = RowRandom(self.keys["misc"], 10_000 + i)
        return {
            "id": 5000 + i,
            "name": f"Extra {('kaas', 'ui', 'saus', 'bacon', 'ei')[i % 5]} {i + 1}",
            "price": _money(rng.between(20, 150)),
            "quantity": rng.between(0, 200),
            "productlink": sorted({1000 + rng.below(self.products) for _ in range(3)}),
            "modtime": unix_timestamp(self._change_seconds(i, 40)),
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
            "modtime": unix_timestamp(self._change_seconds(i, self.customers)),
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
                "modtime": unix_timestamp(seconds),
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
