"""The Tripletex world's data: one company's chart of accounts, VAT and voucher types, customers,
suppliers, products, orders with their invoices, and postings grouped into vouchers over the 60 days
before the anchor date (Oslo dates), plus the tokens the company accepts and its number series.

Everything is a pure function of ``(seed, dataset, row number)``: ``scale={"tripletex.postings":
1_000_000}`` costs no memory; a date window is found by binary search (``_voucher_range``) and a page
of postings is produced in O(page size), straight to JSON on the hot path (``_posting_json``).
Objects created through the API are kept apart, by ``TripletexStore`` (``store.py``).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from airflow_provider_ledgerlink.sandbox.data import (
    RowRandom,
    Timeline,
    derive_key,
    row_hash,
    wallclock_seconds,
)
from airflow_provider_ledgerlink.sandbox.tripletex.model import (
    URL_BASE,
    missing_defaults,
    object_ref,
    object_ref_json,
)
from airflow_provider_ledgerlink.sandbox.tripletex.values import (
    day_number,
    day_text,
    dumps,
    money,
    money_text,
    oslo_timestamp,
)

__all__ = [
    "ANCHOR",
    "COMPANY_ID",
    "TripletexData",
    "posting_object",
    "sandbox_tripletex_consumer_token",
    "sandbox_tripletex_employee_token",
    "tripletex_connection_definition",
]

ANCHOR = date(2026, 11, 20)
"""End (exclusive) of the generated history, an Oslo date; also where the sandbox clock starts."""
HISTORY_DAYS = 60

COMPANY_ID = 9_100_001
CLIENT_COMPANY_IDS = (9_100_002, 9_100_003)
"""Companies the sandbox employee may reach as an accountant (Basic user = company id)."""
EMPLOYEE_ID = 18_301
NOK_ID = 1
NORWAY_ID = 161

DEFAULT_SCALE = {"postings": 5_000, "customers": 200, "suppliers": 40, "products": 60, "orders": 240}
SCALE_PREFIX = "tripletex."
CUSTOMER_SERIES_START = 100_000
"""Where the company's own customer numbers start: the webshop set-up ("Gå til Kunde – innstillinger,
sett kundenummer til 100000") is done, so a shop's customers keep their numbers below it."""
INVOICE_SERIES_START = 50_000
"""Where Tripletex's invoice series starts: kept clear of the shop's, which starts at 6000 ("Om du er
usikker sett denne til f.eks 50000")."""

# Postings come in blocks of four vouchers with 2, 3, 3 and 2 postings: posting ``i`` belongs to
# voucher ``4 * (i // 10) + _VOUCHER_OF[i % 10]``. No table per row is needed at any scale.
_BLOCK_POSTINGS = (2, 3, 3, 2)
_BLOCK_SIZE = sum(_BLOCK_POSTINGS)
_FIRST_OF = (0, 2, 5, 8)
_VOUCHER_OF = (0, 0, 1, 1, 1, 2, 2, 2, 3, 3)

ACCOUNT_ID_BASE = 3_000_000
_CUSTOMER_ID_BASE = 21_000_000
_SUPPLIER_ID_BASE = 22_000_000
_PRODUCT_ID_BASE = 23_000_000
_ORDER_ID_BASE = 24_000_000
_ORDER_LINE_ID_BASE = 25_000_000
_INVOICE_ID_BASE = 26_000_000
_VOUCHER_ID_BASE = 27_000_000
_POSTING_ID_BASE = 28_000_000
_ADDRESS_ID_BASE = 29_000_000
RUNTIME_ID_BASE = 90_000_000
VOUCHER_TYPE_IDS = {"payment": 9_001, "invoice": 9_002, "supplier": 9_003, "bank": 9_004, "manual": 9_005}

# (number, name, type, vat type id, bank account)
ACCOUNTS: tuple[tuple[int, str, str, int, bool], ...] = (
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
_ACCOUNT_BY_NUMBER = {number: (ACCOUNT_ID_BASE + number, name) for number, name, *_ in ACCOUNTS}
_EXPENSE_ACCOUNTS = (4000, 4300, 6340, 6540, 6800, 6900, 7320)
_BANK_EXPENSE_ACCOUNTS = (6300, 7140, 7770, 8150)

# id: (name, number, percentage)
VAT_TYPES: dict[int, tuple[str, str, float]] = {
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

# References that recur in every posting, written once.
_ACCOUNT_JSON = {number: object_ref_json("account", ACCOUNT_ID_BASE + number) for number, *_ in ACCOUNTS}
_VAT_JSON = {ident: object_ref_json("vatType", ident) for ident in VAT_TYPES}
_NOK_JSON = object_ref_json("currency", NOK_ID)


def make_token(seed: int | str, label: str) -> str:
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
    return make_token(seed, "tripletex-consumer")


def sandbox_tripletex_employee_token(seed: int | str = 42) -> str:
    """The employee token the emulator accepts for ``seed``."""
    return make_token(seed, "tripletex-employee")


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


def posting_object(
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
    amount = money(cents)
    return {
        "id": ident,
        "version": 0,
        "url": f"{URL_BASE}/ledger/posting/{ident}",
        "voucher": object_ref("voucher", voucher),
        "date": day,
        "description": description,
        "account": object_ref("account", account),
        "customer": object_ref("customer", customer),
        "supplier": object_ref("supplier", supplier),
        "employee": None,
        "project": None,
        "product": None,
        "department": None,
        "vatType": object_ref("vatType", vat),
        "amount": amount,
        "amountCurrency": amount,
        "amountGross": amount,
        "amountGrossCurrency": amount,
        "currency": object_ref("currency", NOK_ID),
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
    present = frozenset(posting_object(0, voucher=0, day="", description="", account=None, cents=0, customer=None,
                                 supplier=None, vat=0, row=1))  # fmt: skip
    extra = missing_defaults("Posting", present)
    return "".join(f",{json.dumps(name)}:{dumps(value)}" for name, value in extra.items())


class TripletexData:
    """The generated data of one company for ``seed``, ``scale`` (row counts, keys as in
    ``DEFAULT_SCALE`` with or without the ``tripletex.`` prefix) and ``anchor`` (end of the history).

    ``_generated(kind, ident)`` gives any object by id; the ``_<kind>_dict`` methods give it by row
    number. Nothing here changes after set-up except through ``apply_scale``.
    """

    def __init__(self, seed: int = 42, scale: Mapping[str, int] | None = None, anchor: date = ANCHOR) -> None:
        self.seed = seed
        self.anchor = anchor
        self.company_id = COMPANY_ID
        self._counts = dict(DEFAULT_SCALE)
        self._anchor_wall = wallclock_seconds(datetime.combine(anchor, datetime.min.time()))
        self._build({key.removeprefix(SCALE_PREFIX): rows for key, rows in (scale or {}).items()})

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

    # -- postings and vouchers ---------------------------------------------------------------------
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
        day = day_text(seconds // 86400)
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
            amount = money_text(cents)
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
        posting = posting_object(
            _POSTING_ID_BASE + i,
            voucher=_VOUCHER_ID_BASE + v,
            day=day,
            description=description,
            account=ACCOUNT_ID_BASE + account,
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
            "voucherType": object_ref("voucherType", VOUCHER_TYPE_IDS[voucher_type]),
            "reverseVoucher": None,
            "postings": [object_ref("posting", _POSTING_ID_BASE + first + n) for n in range(len(lines))],
            "document": None,
            "attachment": None,
            "externalVoucherNumber": "",
            "vendorInvoiceNumber": "",
            "numberAsString": f"{number}-{day[:4]}",
            "displayName": f"{number}-{day[:4]} {description}",
            "changes": [self._change("CREATE", self._voucher_times.seconds(v))],
        }

    def _voucher_range(self, start: date, end: date) -> tuple[int, int]:
        times = self._voucher_times

        def day_of(v: int) -> int:
            return times.seconds(v) // 86400

        lo = bisect.bisect_left(range(self.vouchers), day_number(start), key=day_of)
        hi = bisect.bisect_left(range(self.vouchers), day_number(end), key=day_of)
        return lo, hi

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

    # -- registers: customers, suppliers, addresses, products ------------------------------------
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
            "postalAddress": object_ref(
                "address", _ADDRESS_ID_BASE + (0 if kind == "customer" else 500_000) + k
            ),
            "physicalAddress": None,
            "currency": object_ref("currency", NOK_ID),
            "ledgerAccount": object_ref("account", ACCOUNT_ID_BASE + (1500 if kind == "customer" else 2400)),
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
            "country": object_ref("country", NORWAY_ID),
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
            "costExcludingVatCurrency": money(price * 55 // 100),
            "priceExcludingVatCurrency": money(price),
            "priceIncludingVatCurrency": money(price + price // 4),
            "isInactive": False,
            "isStockItem": k % 3 == 0,
            "vatType": object_ref("vatType", 3),
            "currency": object_ref("currency", NOK_ID),
            "account": object_ref("account", ACCOUNT_ID_BASE + 3000),
            "supplier": None,
            "changes": changes,
        }

    # -- orders and invoices -----------------------------------------------------------------------
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
        day = day_text(seconds // 86400)
        customer = _CUSTOMER_ID_BASE + 1 + row_hash(self._keys["orders"], k) % self.customers
        return {
            "id": ident,
            "version": 2,
            "url": f"{URL_BASE}/order/{ident}",
            "customer": object_ref("customer", customer),
            "number": str(20_001 + k),
            "reference": "",
            "orderDate": day,
            "deliveryDate": day,
            "deliveryComment": "",
            "invoiceComment": "",
            "currency": object_ref("currency", NOK_ID),
            "invoicesDueIn": 14,
            "invoicesDueInType": "DAYS",
            "isClosed": True,
            "isPrioritizeAmountsIncludingVat": False,
            "isSubscription": False,
            "status": "INVOICED",
            "orderLines": [object_ref("orderLine", line[0]) for line in self._order_lines(k)],
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
            "product": object_ref("product", _PRODUCT_ID_BASE + 1 + product),
            "description": self._product_dict(product)["name"],
            "count": float(quantity),
            "unitPriceExcludingVatCurrency": money(price),
            "unitPriceIncludingVatCurrency": money(price + price // 4),
            "vatType": object_ref("vatType", 3),
            "currency": object_ref("currency", NOK_ID),
            "discount": 0.0,
            "amountExcludingVatCurrency": money(quantity * price),
            "amountIncludingVatCurrency": money(quantity * (price + price // 4)),
            "order": object_ref("order", _ORDER_ID_BASE + 1 + k),
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
            "orders": [object_ref("order", order["id"])],
            "orderLines": order["orderLines"],
            "voucher": None,
            "kid": "",
            "comment": "",
            "amount": money(gross),
            "amountCurrency": money(gross),
            "amountExcludingVat": money(net),
            "amountExcludingVatCurrency": money(net),
            "amountOutstanding": 0.0 if paid else money(gross),
            "amountCurrencyOutstanding": 0.0 if paid else money(gross),
            "currency": object_ref("currency", NOK_ID),
            "isCreditNote": False,
            "isCharged": True,
            "isApproved": True,
            "changes": [self._change("CREATE", self._order_times.seconds(k) + 900)],
        }

    # -- the chart of accounts ------------------------------------------------------------------------
    def _account_dict(self, number: int) -> dict[str, Any] | None:
        for index, (n, name, account_type, vat, bank) in enumerate(ACCOUNTS):
            if n == number:
                ident = ACCOUNT_ID_BASE + n
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
                    "vatType": object_ref("vatType", vat),
                    "vatLocked": False,
                    "currency": object_ref("currency", NOK_ID),
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

    # -- one object of any kind ---------------------------------------------------------------------
    def _generated(self, kind: str, ident: int) -> dict[str, Any] | None:
        """Generated object ``ident`` of ``kind``, or ``None`` when the world has no such object."""
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
            return self._account_dict(ident - ACCOUNT_ID_BASE)
        if kind == "address":
            return self._address_dict(ident)
        if kind == "vatType" and ident in VAT_TYPES:
            name, number, percentage = VAT_TYPES[ident]
            return {"id": ident, "version": 0, "url": f"{URL_BASE}/ledger/vatType/{ident}", "name": name,
                    "number": number, "displayName": f"{number} {name}", "percentage": percentage}  # fmt: skip
        if kind == "currency" and ident == NOK_ID:
            return {"id": NOK_ID, "version": 0, "url": f"{URL_BASE}/currency/{NOK_ID}", "code": "NOK",
                    "description": "Norske kroner", "factor": 1, "displayName": "NOK", "isDisabled": False}  # fmt: skip
        if kind == "country" and ident == NORWAY_ID:
            return {"id": NORWAY_ID, "version": 0, "url": f"{URL_BASE}/country/{NORWAY_ID}", "name": "Norge",
                    "displayName": "Norge", "isoAlpha2Code": "NO", "isoAlpha3Code": "NOR", "isoNumericCode": "578"}  # fmt: skip
        if kind == "voucherType" and ident in VOUCHER_TYPE_IDS.values():
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
                       "type": "AS", "currency": object_ref("currency", NOK_ID)}  # fmt: skip
            if kind == "client":
                company["customerCompanyId"] = ident
            return company
        return None
