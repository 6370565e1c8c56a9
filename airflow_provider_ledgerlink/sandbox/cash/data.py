"""The CASH world the sandbox serves: the API user, the administrations, the chart of accounts and
journals, the recorded delivery addresses, and relations and journal lines generated from the seed.

Nothing here changes while the sandbox runs and nothing is held in memory per row: relation ``i`` and
journal entry ``k`` are pure functions of the seed and their number.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from airflow_provider_ledgerlink.sandbox.cash.records import Fields, cash_amount
from airflow_provider_ledgerlink.sandbox.data import (
    RowRandom,
    Timeline,
    company_name,
    derive_key,
    iban,
    person_name,
    phone_number,
    street_address,
)

RELATION_NUMBER = "25583"
API_EMAIL = "api@ledgerlink.example"
API_USER = "271363"
ANCHOR = datetime(2026, 11, 20)
"""End of the generated history and the sandbox clock's start (Amsterdam wall-clock time)."""
HISTORY_DAYS = 60


def sandbox_cash_password(seed: int | str = 42) -> str:
    """The API user's password the sandbox accepts."""
    return "Cw-" + hashlib.sha256(f"ledgerlink-sandbox:{seed}:cash-password".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Administration:
    code: str
    map: str
    name: str
    offline: bool  # kept in CASHWin: imports wait for the CASHWin process


ADMINISTRATIONS = (
    Administration("DEMO", "1570", "DEMO (kept offline in CASHWin)", offline=True),
    Administration("x001", "1571", "x001 (online in CASHWeb)", offline=False),
)

#: Records enabled under "Instellen CashWeb API" unless a test changes it.
DEFAULT_ENABLED_RECORDS = frozenset({"0101", "0201", "0301", "0901", "2229"})

LEDGER_ACCOUNTS = (
    ("1100", "Bank", "B", ""),
    ("1300", "Debiteuren", "B", ""),
    ("1600", "Af te dragen btw hoog", "B", ""),
    ("1610", "Af te dragen btw laag", "B", ""),
    ("4000", "Lonen en salarissen", "W", ""),
    ("4500", "Huisvestingskosten", "W", "H"),
    ("8000", "Omzet hoog", "W", "H"),
    ("8010", "Omzet laag", "W", "L"),
)
JOURNALS = (
    ("VK", "Verkoopboek", "V", "1300"),
    ("BK", "Bankboek", "B", "1100"),
    ("MM", "Memoriaal", "M", ""),
)

#: The delivery addresses recorded from CASH (relation 000100), served byte for byte.
RECORDED_DELIVERY_ADDRESSES: tuple[tuple[tuple[str, str], ...], ...] = tuple(
    (
        ("0101", "000100"),
        ("0103", "Test B.V."),
        ("0104", "John Doe"),
        ("0105", "Teststraat 12"),
        ("0107", "1234AB TEST"),
        ("0108", "0612345678"),
        ("0115", "Dit is een test"),
        ("0125", "NEDERLAND"),
        ("0130", "NL"),
        ("0438", "1234 AB"),
        ("1833", "Teststraat"),
        ("1834", "12"),
        ("1837", "TEST"),
        ("2228", number),
        ("2229", "This is a test delivery address."),
        ("2306", changed),
        ("2888", "ABCDEFGHIJKLM"),
    )
    for number, changed in (("1", "06-12-2021"), ("ABCDEF", "17-12-2021"))
)


class Relations:
    """Relations 000100, 000101 …; relation i changed at ``timeline.seconds(i)`` (never decreasing)."""

    def __init__(self, seed: int, count: int) -> None:
        self.count = count
        self.key = derive_key(seed, "cash", "0101")
        start = ANCHOR - timedelta(days=HISTORY_DAYS)
        self.timeline = Timeline(start, ANCHOR, count, self.key)

    def number(self, i: int) -> str:
        return f"{100 + i:06d}"

    def fields(self, i: int) -> Fields:
        rng = RowRandom(self.key, i)
        name = company_name(rng)
        street, place = street_address(rng)
        postcode, city = place.split("  ", 1)
        street_name, _, house = street.rpartition(" ")
        search = re.sub(r"[^A-Z0-9]", "", name.upper())[:10]
        return (
            ("0101", self.number(i)),
            ("0102", search),
            ("0103", name[:30]),
            ("0104", person_name(rng)[:25]),
            ("0105", street[:30]),
            ("0107", f"{postcode.replace(' ', '')} {city}"[:30]),
            ("0108", phone_number(rng)),
            ("0110", iban(rng)),
            ("0120", f"administratie@{search.lower() or 'relatie'}.example"),
            ("0125", "NEDERLAND"),
            ("0130", "NL"),
            ("0438", postcode),
            ("1833", street_name),
            ("1834", house),
            ("1837", city),
        )

    def changed_since(self, seconds: int) -> range:
        """Relations changed at or after ``seconds`` (wall clock)."""
        lo = bisect.bisect_left(range(self.count), seconds, key=self.timeline.seconds)
        return range(lo, self.count)


class JournalLines:
    """Balanced sales entries in journal VK: a debtor line, a revenue line and a VAT line each."""

    LINES = 3

    def __init__(self, seed: int, entries: int, relations: int) -> None:
        self.entries = entries
        self.relations = relations
        self.key = derive_key(seed, "cash", "0301")
        start = ANCHOR - timedelta(days=HISTORY_DAYS)
        self.timeline = Timeline(start, ANCHOR, entries, self.key)

    def booking_date(self, k: int) -> date:
        return (datetime(1970, 1, 1) + timedelta(seconds=self.timeline.seconds(k))).date()

    def period(self, k: int) -> str:
        return self.booking_date(k).strftime("%y%m")

    def entry(self, k: int) -> list[Fields]:
        rng = RowRandom(self.key, k)
        booked = self.booking_date(k).strftime("%y%m%d")
        period = booked[:4]
        document = f"{k + 1:06d}"
        invoice = f"{(260000 + k + 1) % 1_000_000:06d}"
        relation = f"{100 + rng.below(max(self.relations, 1)):06d}"
        net = rng.between(1_000, 500_000)
        vat = (net * 21 + 50) // 100
        text = f"Factuur {invoice}"
        common = (("0301", period), ("0302", booked), ("0303", document), ("0901", "VK"))
        return [
            (*common, ("0201", "1300"), ("0101", relation), ("0309", invoice), ("0701", "DEB"),
             ("0306", text), ("0307", cash_amount(net + vat))),
            (*common, ("0201", "8000"), ("0306", text), ("0307", cash_amount(-net))),
            (*common, ("0201", "1600"), ("0306", f"Btw {invoice}"), ("0307", cash_amount(-vat))),
        ]  # fmt: skip

    def in_periods(self, first: str | None, last: str | None) -> range:
        keys = range(self.entries)
        lo = 0 if not first else bisect.bisect_left(keys, first, key=self.period)
        hi = self.entries if not last else bisect.bisect_right(keys, last, key=self.period)
        return range(lo, max(lo, hi))
