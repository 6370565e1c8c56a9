"""Deterministic data helpers shared by the emulators.

Every generated row is a pure function of ``(seed, dataset, row number)``: an emulator never keeps
generated rows in memory, so a dataset of a million rows costs nothing until a page of it is
asked for, and any page can be produced in O(page size).

The helpers here are deliberately cheap. Serving a 1000-row page must take a few milliseconds, so
row generators draw their values from 64-bit hashes (no ``random.Random`` per row), timestamps are
plain integers of wall-clock seconds, and rows are turned into JSON by a per-dataset encoder
(:func:`compile_row_encoder`) instead of building a dict per row.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

__all__ = [
    "AMSTERDAM",
    "RowRandom",
    "Timeline",
    "company_name",
    "compile_row_encoder",
    "derive_key",
    "format_day",
    "format_wallclock",
    "iban",
    "mix64",
    "parse_wallclock",
    "person_name",
    "phone_number",
    "row_hash",
    "street_address",
    "wallclock_seconds",
    "wallclock_z",
]

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15

AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# Wall-clock times are handled as integer seconds since this naive epoch.
_EPOCH = datetime(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()


# --------------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------------
def derive_key(seed: int | str, *labels: object) -> int:
    """A 64-bit key for one dataset, stable across Python versions and processes.

    Use it once per dataset (it costs a blake2b call), then :func:`row_hash` per row.
    """
    text = ":".join([str(seed), *map(str, labels)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def mix64(x: int) -> int:
    """The splitmix64 finaliser: a fast, well-spread bijection on 64-bit integers."""
    x = (x + _GOLDEN) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def row_hash(key: int, i: int, salt: int = 0) -> int:
    """64 pseudo-random bits for row ``i`` of the dataset identified by ``key``."""
    return mix64((key + i * _GOLDEN + salt * 0xD6E8FEB86659FD93) & MASK64)


class RowRandom:
    """A tiny random source for one row: draws come from successive 64-bit hashes.

    It is much cheaper than ``random.Random`` (no seeding cost) and, unlike a shared generator,
    row ``i`` always gets the same values whatever else was generated before.
    """

    __slots__ = ("_bits", "_counter", "_key", "_word")

    def __init__(self, key: int, i: int) -> None:
        self._key = mix64((key + i * _GOLDEN) & MASK64)
        self._counter = 0
        self._word = 0
        self._bits = 0

    def bits(self, n: int) -> int:
        """``n`` (at most 32) fresh random bits."""
        if self._bits < n:
            self._counter += 1
            self._word = mix64((self._key + self._counter * _GOLDEN) & MASK64)
            self._bits = 64
        value = self._word & ((1 << n) - 1)
        self._word >>= n
        self._bits -= n
        return value

    def below(self, n: int) -> int:
        """An integer in ``[0, n)``. The modulo bias is below 1e-4 for n < 4096."""
        return self.bits(24) % n if n > 1 else 0

    def between(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return lo + self.bits(32) % (hi - lo + 1)

    def chance(self, percent: int) -> bool:
        return self.bits(7) % 100 < percent

    def choice(self, options: Sequence[str]) -> str:
        return options[self.below(len(options))]

    def digits(self, n: int) -> str:
        return "".join(str(self.bits(8) % 10) for _ in range(n))

    def hex(self, n: int) -> str:
        return "".join("0123456789ABCDEF"[self.bits(4)] for _ in range(n))


# --------------------------------------------------------------------------------------------------
# Wall-clock time
# --------------------------------------------------------------------------------------------------
def wallclock_seconds(moment: datetime) -> int:
    """Seconds since 1970-01-01 of a naive wall-clock datetime (no time zone arithmetic)."""
    delta = moment.replace(tzinfo=None) - _EPOCH
    return delta.days * 86400 + delta.seconds


_DAY_CACHE: dict[int, str] = {}


def _day_text(day_number: int) -> str:
    text = _DAY_CACHE.get(day_number)
    if text is None:
        text = date.fromordinal(_EPOCH_ORDINAL + day_number).isoformat()
        if len(_DAY_CACHE) < 200_000:
            _DAY_CACHE[day_number] = text
    return text


def format_wallclock(seconds: int, suffix: str = "Z") -> str:
    """``YYYY-MM-DDTHH:MM:SS`` + suffix for wall-clock seconds. About half a microsecond."""
    day, rest = divmod(seconds, 86400)
    return f"{_day_text(day)}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}{suffix}"


def format_day(day_number: int, suffix: str = "T00:00:00Z") -> str:
    """A date-only value (days since 1970-01-01), by default in the AFAS ``T00:00:00Z`` form."""
    return _day_text(day_number) + suffix


_WALLCLOCK_RE = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(?:Z|[+-]\d{2}:?\d{2})?\s*$",
    re.IGNORECASE,
)


def parse_wallclock(text: str) -> int | None:
    """Parse ``YYYY-MM-DD[THH:MM[:SS[.fff]]]`` into wall-clock seconds; ``None`` if it is not a date.

    A trailing ``Z`` or offset is tolerated and ignored: the value is taken as wall-clock time, which
    is how vendors that mark local time with ``Z`` treat it.
    """
    match = _WALLCLOCK_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    return wallclock_seconds(moment)


def wallclock_z(moment: datetime, zone: ZoneInfo = AMSTERDAM) -> str:
    """Render an aware datetime as wall-clock time in ``zone``, marked with a (misleading) ``Z``.

    AFAS does this: ``2026-07-01T10:00:00+00:00`` is sent as ``2026-07-01T12:00:00Z``.
    """
    if moment.tzinfo is None:
        raise ValueError("wallclock_z needs an aware datetime")
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


class Timeline:
    """Non-decreasing wall-clock timestamps for ``n`` events spread over ``[start, end)``.

    Event ``k`` lands in its own slot of width ``(end - start) / n`` with a hashed offset inside
    the slot, so timestamps look irregular but never go backwards. That property lets a range
    filter on the timestamp be answered by binary search over the event number.
    """

    __slots__ = ("_key", "_slot", "_span", "_start", "n")

    def __init__(self, start: datetime, end: datetime, n: int, key: int) -> None:
        self._start = wallclock_seconds(start)
        self._span = wallclock_seconds(end) - self._start
        if self._span <= 0:
            raise ValueError("timeline end must be after its start")
        self.n = max(n, 1)
        self._slot = self._span // self.n
        self._key = key

    @property
    def start(self) -> int:
        return self._start

    @property
    def end(self) -> int:
        return self._start + self._span

    def seconds(self, k: int) -> int:
        base = self._start + k * self._span // self.n
        if self._slot:
            base += mix64((self._key + k) & MASK64) % self._slot
        return base


# --------------------------------------------------------------------------------------------------
# Names, addresses, identifiers
# --------------------------------------------------------------------------------------------------
_COMPANY_ROOTS = (
    "Jansen",
    "De Vries",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "De Boer",
    "Mulder",
    "De Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "Van Leeuwen",
    "Dekker",
    "Brouwer",
    "De Wit",
    "Dijkstra",
    "Verhoeven",
    "Kok",
    "Van Dam",
    "Willems",
    "Maes",
    "Claes",
    "Schouten",
    "Hoekstra",
    "Koster",
    "Prins",
    "Huisman",
    "Kuipers",
    "Van der Linden",
    "Postma",
    "Groen",
    "Blom",
    "Vermeulen",
)
_COMPANY_TRADES = (
    "Bouw",
    "Installatietechniek",
    "Transport",
    "Groothandel",
    "Advies",
    "Techniek",
    "Logistiek",
    "Metaal",
    "Schilderwerken",
    "Elektro",
    "Automatisering",
    "Catering",
    "Drukkerij",
    "Interieur",
    "Bloemen",
    "Bakkerij",
    "Hoveniers",
    "Klimaattechniek",
    "Verhuur",
    "Zonwering",
)
_COMPANY_FORMS = ("B.V.", "B.V.", "B.V.", "V.O.F.", "BV", "N.V.", "Holding B.V.", "& Zn.", "Groep")
_FIRST_NAMES = (
    "Anna",
    "Bram",
    "Daan",
    "Emma",
    "Eva",
    "Fleur",
    "Jesse",
    "Julia",
    "Lars",
    "Lisa",
    "Lotte",
    "Luuk",
    "Mila",
    "Noah",
    "Sanne",
    "Sem",
    "Sophie",
    "Thijs",
    "Tim",
    "Zoë",
    "Renée",
    "Joël",
    "Chloé",
)
_CITIES = (
    ("1012 AB", "Amsterdam"),
    ("3011 AD", "Rotterdam"),
    ("2511 CV", "Den Haag"),
    ("3511 LX", "Utrecht"),
    ("5611 AZ", "Eindhoven"),
    ("9711 LM", "Groningen"),
    ("6811 KS", "Arnhem"),
    ("8011 PK", "Zwolle"),
    ("4811 XP", "Breda"),
    ("7511 JM", "Enschede"),
    ("6211 CK", "Maastricht"),
    ("2011 HG", "Haarlem"),
    ("5211 HA", "'s-Hertogenbosch"),
    ("3811 BB", "Amersfoort"),
    ("1211 EX", "Hilversum"),
)
_STREETS = (
    "Kerkstraat",
    "Dorpsstraat",
    "Stationsweg",
    "Industrieweg",
    "Havenstraat",
    "Molenweg",
    "Schoolstraat",
    "Nieuwstraat",
    "Julianalaan",
    "Marktplein",
    "Energieweg",
    "Handelskade",
)
_BANKS = ("INGB", "RABO", "ABNA", "TRIO", "SNSB", "BUNQ")


def company_name(rng: RowRandom) -> str:
    root = rng.choice(_COMPANY_ROOTS)
    if rng.chance(60):
        return f"{root} {rng.choice(_COMPANY_TRADES)} {rng.choice(_COMPANY_FORMS)}"
    return f"{root} {rng.choice(_COMPANY_FORMS)}"


def person_name(rng: RowRandom) -> str:
    return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_COMPANY_ROOTS)}"


def street_address(rng: RowRandom) -> tuple[str, str]:
    """``(street + number, postcode + city)``."""
    postcode, city = _CITIES[rng.below(len(_CITIES))]
    return f"{rng.choice(_STREETS)} {rng.between(1, 250)}", f"{postcode}  {city.upper()}"


def phone_number(rng: RowRandom) -> str:
    return f"0{rng.between(10, 79)}-{rng.digits(7)}"


def iban(rng: RowRandom) -> str:
    """A Dutch-looking IBAN. The check digits are computed, so validators accept it."""
    bank = rng.choice(_BANKS)
    account = rng.digits(10)
    numeric = "".join(str(int(c, 36)) for c in bank + account + "NL00")
    check = 98 - int(numeric) % 97
    return f"NL{check:02d}{bank}{account}"


# --------------------------------------------------------------------------------------------------
# JSON rows
# --------------------------------------------------------------------------------------------------
FieldKind = str  # "int" | "number" | "string" | "ascii" | "bool"
_KINDS = ("int", "number", "string", "ascii", "bool")


def compile_row_encoder(fields: Sequence[tuple[str, FieldKind, bool]]) -> Callable[[Sequence[object]], str]:
    """Build a function that turns one row tuple into a JSON object string.

    ``fields`` lists ``(name, kind, nullable)`` in row order. Kinds: ``int``, ``number`` (float),
    ``string`` (any text, escaped), ``ascii`` (text known to need no escaping, e.g. formatted dates)
    and ``bool``. Only nullable fields pay for a ``None`` check.

    Why not ``json.dumps`` on a dict per row: for row-shaped data CPython's encoder spends most of
    its time on the keys. A format string with the keys already in it is about twice as fast, which
    matters when a page holds 1000 rows. The output is identical to
    ``json.dumps(dict(zip(names, row)), separators=(",", ":"), ensure_ascii=False)``.
    """
    parts: list[str] = []
    exprs: list[str] = []
    for index, (name, kind, nullable) in enumerate(fields):
        if kind not in _KINDS:
            raise ValueError(f"unknown field kind {kind!r} for {name!r}")
        key = json.dumps(name, ensure_ascii=False).replace("%", "%%")
        value = f"r[{index}]"
        if kind == "int" and not nullable:
            parts.append(f"{key}:%d")
            exprs.append(value)
            continue
        if kind == "ascii" and not nullable:
            parts.append(f'{key}:"%s"')
            exprs.append(value)
            continue
        if kind == "number" and not nullable:
            parts.append(f"{key}:%r")
            exprs.append(value)
            continue
        parts.append(f"{key}:%s")
        if kind == "int":
            text = f"'%d' % {value}"
        elif kind == "number":
            text = f"repr({value})"
        elif kind == "bool":
            text = f"('true' if {value} else 'false')"
        elif kind == "ascii":
            text = f"'\"' + {value} + '\"'"
        else:
            text = f"enc({value})"
        if kind == "bool" and not nullable:
            exprs.append(text)
        elif nullable:
            exprs.append(f"('null' if {value} is None else {text})")
        else:
            exprs.append(text)
    template = "{" + ",".join(parts) + "}"
    if not exprs:
        return lambda r: "{}"
    # Generated code only ever contains the field indexes and literal kinds above; names are
    # embedded in the template constant, never in the source text.
    source = f"def encode(r):\n    return TEMPLATE % ({', '.join(exprs)},)\n"
    namespace: dict[str, object] = {"TEMPLATE": template, "enc": json.encoder.encode_basestring}
    assert not any(keyword.iskeyword(k) for k in namespace)
    exec(compile(source, "<row encoder>", "exec"), namespace)
    encoder = namespace["encode"]
    assert callable(encoder)
    return encoder  # type: ignore[return-value]
