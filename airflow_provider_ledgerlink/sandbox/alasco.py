"""An offline Alasco public API (FinCon 1.0) for tests, demos and benchmarks.

Mounted at ``/alasco``: the base URL is ``http://127.0.0.1:PORT/alasco/fincon/v1`` (the spec's); the
published SDKs' ``…/alasco/v1`` answers the same. What it follows
from the vendor's OpenAPI and "Get Started" page:

- ``X-API-KEY`` + ``X-API-TOKEN`` on every call; several tokens may be valid for one key.
- JSON:API documents ``{"data", "included", "links", "errors"}``; resource types in UPPER_SNAKE;
  foreign keys both as attributes and as ``relationships``; money as decimal strings with 12
  decimals (``{"currency": "EUR", "net": "1190.000000000000", "tax": …}``); dates ``YYYY-MM-DD``;
  date-times ISO 8601 in UTC with ``Z``.
- Lists page by an opaque cursor: the first page is the call without ``cursor[position]``, every
  further page is the absolute URL in ``links.next``; 100 per page, 1,000 on ``/reporting/…``.
- ``filter[<attribute>.<operation>]`` with the attributes and operations each endpoint's table in
  the OpenAPI allows (others give 422), values comma-separated (``%2C`` counts as a comma); ``include=`` on contracts, invoices
  and budget shifts.
- Every path ends with ``/``; a path without it answers 307 to the one with it, except
  ``/cost_elements/{id}``, which has none (``…/{id}/`` answers 307 to it).
- Request validation answers 422 with FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``.
- Writes: ``POST /invoices/{id}/register-payment/``, ``POST /invoices/{id}/update-new/``,
  ``POST /contracts/``, ``PATCH /contracts/{id}/`` (JSON bodies checked against the spec's request
  schemas), ``POST /projects/{id}/submit-invoice/`` (multipart ``file``, PDF) and
  ``POST /{invoices|contracts|change_orders}/{id}/documents/`` (multipart ``document_type`` +
  ``upload``).
- A document download answers 302 to a temporary pre-signed URL under ``/alasco/_files/`` (the
  sandbox's object storage). That URL ignores the API headers (as presigned storage ignores headers
  it does not sign), refuses an ``Authorization`` header, and expires after 300 s of sandbox time.
- ``Accept-Encoding: gzip`` compresses larger answers.

Where the vendor documents nothing, the choices are ours (and listed in docs/alasco.md): 401 with a
JSON:API ``errors`` body for bad credentials, 403 when the account has no API access, 404 with
FastAPI's ``{"detail": "Not Found"}`` for unknown paths and JSON:API ``errors`` for unknown ids, 400
JSON:API errors for malformed filter keys, a foreign cursor, or a write the invoice's state does not
allow, a cursor bound to its query (following a ``next`` link with other filters gives 400), 429 with
``Retry-After`` when a rate limit is set through the control endpoint (none by default), and an
``x-request-id`` header on error answers.

Generated data is a pure function of ``(seed, dataset, row number)``: nothing is held in memory,
and ids encode their row number, so any page or id is served in O(page size) at any scale
(``scale={"alasco:invoices": 1_000_000}``). Contracts and invoices are created along a timeline
that ends at the anchor 2026-11-20T00:00:00Z, so ranges on ``date_created`` are binary searches;
other filters scan. The sandbox clock starts at the anchor; objects created at runtime are newer
than every generated one.
"""

from __future__ import annotations

import base64
import bisect
import gzip
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from urllib.parse import unquote_plus

from airflow_provider_ledgerlink.sandbox.data import MASK64, RowRandom, derive_key, mix64
from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response
from airflow_provider_ledgerlink.sandbox.spec_validation import request_schema, validate
from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json

__all__ = [
    "ANCHOR",
    "DATASETS",
    "AlascoEmulator",
    "alasco_connection_definition",
    "sandbox_alasco_api_key",
    "sandbox_alasco_api_token",
]

ANCHOR = datetime(2026, 11, 20, tzinfo=timezone.utc)
"""End of the generated timelines and start of the sandbox clock (UTC)."""
API_PREFIX = "/fincon/v1"
# The spec's servers name ``/fincon/v1``; both published SDKs (``alasco`` on PyPI and its httpx
# rewrite) use ``https://api.alasco.de/v1``. The emulator answers under both, and every link it
# writes keeps the base the client used.
API_PREFIXES = (API_PREFIX, "/v1")


def api_prefix(subpath: str) -> str | None:
    """The API base ``subpath`` starts with (``/fincon/v1`` or ``/v1``), or None."""
    for prefix in API_PREFIXES:
        if subpath.startswith(prefix + "/"):
            return prefix
    return None


def _split_values(raw: str) -> list[str]:
    """Comma-separated query values; a percent-encoded comma (``%2C``, what httpx and requests
    send for ``a,b``) separates values exactly as a literal one does."""
    return unquote_plus(raw).split(",")


FILES_PREFIX = "/_files/"
PAGE_SIZE = 100
REPORTING_PAGE_SIZE = 1000
LINK_TTL_SECONDS = 300
GZIP_MIN_BYTES = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY = 86400
_ANCHOR_MICROS = int((ANCHOR - _EPOCH).total_seconds()) * 1_000_000
_ANCHOR_DAY = _ANCHOR_MICROS // (_DAY * 1_000_000)


# ==================================================================================================
# Credentials
# ==================================================================================================
def _digest(seed: int | str, label: str, length: int) -> str:
    return hashlib.sha256(f"ledgerlink-sandbox:{seed}:{label}".encode()).hexdigest()[:length]


def sandbox_alasco_api_key(seed: int | str = 42, generation: int = 0) -> str:
    """The sandbox account's API key (40 characters, as Alasco's are)."""
    return _digest(seed, f"alasco-key-{generation}", 40)


def sandbox_alasco_api_token(seed: int | str = 42, generation: int = 0) -> str:
    """The sandbox account's API token (64 characters)."""
    return _digest(seed, f"alasco-token-{generation}", 64)


def alasco_connection_definition(url: str, seed: int | str = 42) -> dict[str, Any]:
    """The ``alasco_default`` connection (Airflow's JSON form) for the emulator mounted at ``url``."""
    return {
        "conn_type": "ledgerlink_alasco",
        "host": url.rstrip("/"),
        "login": sandbox_alasco_api_key(seed),
        "password": sandbox_alasco_api_token(seed),
        "extra": {"api": "fincon"},
    }


# ==================================================================================================
# Identifiers: random-looking UUIDs that encode their row number
# ==================================================================================================
_LOW_BITS = 48
_LOW_MASK = (1 << _LOW_BITS) - 1
_MULTIPLIER = 0x9E3779B97F4B  # odd: a bijection modulo 2**48
_MULTIPLIER_INVERSE = pow(_MULTIPLIER, -1, 1 << _LOW_BITS)


class IdCodec:
    """UUIDs (version 4 layout) for row ``i`` of one dataset, and back.

    The low 48 bits are ``i`` scrambled by an invertible affine map; the other 80 bits are a hash of
    them keyed by the dataset, so an id of one dataset is not taken for another's (a chance of one
    in 2**74).
    """

    def __init__(self, key: int) -> None:
        self.key = key
        self.offset = key & _LOW_MASK

    def _compose(self, low: int) -> int:
        mixed = mix64((low ^ self.key) & MASK64)
        high = (mixed << 16) | (mix64((mixed ^ self.key ^ 0xA5A5) & MASK64) & 0xFFFF)
        value = (high << _LOW_BITS) | low
        value &= ~(0xF << 76)
        value |= 0x4 << 76
        value &= ~(0x3 << 62)
        value |= 0x2 << 62
        return value

    def id(self, i: int) -> str:
        low = (i * _MULTIPLIER + self.offset) & _LOW_MASK
        return str(uuid.UUID(int=self._compose(low)))

    def index(self, text: str) -> int | None:
        try:
            value = uuid.UUID(str(text)).int
        except ValueError:
            return None
        low = value & _LOW_MASK
        if self._compose(low) != value:
            return None
        return ((low - self.offset) * _MULTIPLIER_INVERSE) & _LOW_MASK


# ==================================================================================================
# Formatting helpers
# ==================================================================================================


def money_text(cents: int) -> str:
    """Cents as Alasco writes amounts: a decimal string with 12 decimals."""
    return f"{Decimal(cents) / 100:.12f}"


def money(net_cents: int, tax_cents: int) -> dict[str, str]:
    return {"currency": "EUR", "net": money_text(net_cents), "tax": money_text(tax_cents)}


def gross_money(cents: int) -> dict[str, str]:
    return {"currency": "EUR", "amount": money_text(cents)}


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=timezone.utc)


def iso_instant(micros: int) -> str:
    """Microseconds since the epoch as an ISO 8601 UTC instant with ``Z``."""
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_day(day_number: int) -> str:
    """Days since the epoch as ``YYYY-MM-DD``."""
    return (_EPOCH + timedelta(days=day_number)).date().isoformat()


def parse_instant(text: str) -> int | None:
    """Microseconds since the epoch of an ISO date or date-time; no zone means UTC."""
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time())
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * _DAY + delta.seconds) * 1_000_000 + delta.microseconds


class Stamps:
    """Increasing instants (microseconds) for ``n`` events spread over ``[start, end)``.

    Event ``i`` lies in its own slot of the span, at a hashed offset inside it, so instants look
    irregular but never decrease: a range on them is a binary search over ``i``.
    """

    def __init__(self, start: datetime, end: datetime, n: int, key: int) -> None:
        self.start = int((start - _EPOCH).total_seconds()) * 1_000_000
        self.span = int((end - start).total_seconds()) * 1_000_000
        self.n = max(1, n)
        self.slot = max(1, self.span // self.n)
        self.key = key

    def __call__(self, i: int) -> int:
        return self.start + i * self.span // self.n + mix64((self.key + i) & MASK64) % self.slot


def _tax(net_cents: int, reverse_charge: bool) -> int:
    return 0 if reverse_charge else (net_cents * 19 + 50) // 100


def _pdf(title: str, lines: Sequence[str] = ()) -> bytes:
    """A small, valid one-page PDF showing ``title`` and ``lines``."""
    text = [f"BT /F1 16 Tf 56 780 Td ({_pdf_escape(title)}) Tj ET"]
    for n, line in enumerate(lines):
        text.append(f"BT /F1 11 Tf 56 {750 - 16 * n} Td ({_pdf_escape(line)}) Tj ET")
    stream = "\n".join(text).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


# ==================================================================================================
# Text pools (German construction projects)
# ==================================================================================================
_CITIES = (
    ("10115", "Berlin", "BERLIN"),
    ("20095", "Hamburg", "HAMBURG"),
    ("80331", "München", "BAVARIA"),
    ("50667", "Köln", "NORTH_RHINE_WESTPHALIA"),
    ("60311", "Frankfurt am Main", "HESSE"),
    ("70173", "Stuttgart", "BADEN_WUERTTEMBERG"),
    ("40213", "Düsseldorf", "NORTH_RHINE_WESTPHALIA"),
    ("04109", "Leipzig", "SAXONY"),
    ("28195", "Bremen", "BREMEN"),
    ("55116", "Mainz", "RHEINLAND_PALATINATE"),
)
_STREETS = (
    "Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Lindenallee", "Am Hafen",
    "Industriestraße", "Hunsrückstraße", "Mühlenweg", "Kastanienallee", "Friedrichstraße", "Uferweg",
)  # fmt: skip
_PROJECT_NAMES = (
    "Wohnquartier Hunsrück Mitte", "Bürocampus Am Hafen", "Schule Lindenallee", "Stadthaus Mühlenweg",
    "Logistikzentrum Süd", "Seniorenresidenz Uferweg", "Hotel am Markt", "Gewerbehof Nord",
    "Kita Sonnenblume", "Wohnpark Kastanienallee", "Ärztehaus Zentrum", "Quartier Alte Brauerei",
)  # fmt: skip
_COMPANY_ROOTS = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt",
)  # fmt: skip
_TRADES = (
    "Rohbau", "Elektrotechnik", "Haustechnik", "Fassadenbau", "Dachdeckerei", "Fensterbau", "Estrich",
    "Trockenbau", "Malerbetrieb", "Bodenbeläge", "Aufzugstechnik", "Garten- und Landschaftsbau",
    "Ingenieurbüro", "Architekten", "Gerüstbau", "Tiefbau",
)  # fmt: skip
_LEGAL_FORMS = ("GmbH", "GmbH & Co. KG", "AG", "GmbH", "KG", "e.K.")
_FIRST_NAMES = ("Anna", "Jonas", "Lena", "Lukas", "Marie", "Felix", "Sophie", "Paul", "Jörg", "Björn", "Änne")
_CONTRACT_TRADES = (
    ("Rohbauarbeiten", "320"), ("Erdarbeiten", "310"), ("Fassade", "330"), ("Innenwände Trockenbau", "340"),
    ("Deckenarbeiten", "350"), ("Dachabdichtung", "360"), ("Sanitärinstallation", "410"),
    ("Heizungsanlage", "420"), ("Lüftungsanlage", "430"), ("Elektroinstallation", "440"),
    ("Kommunikationstechnik", "450"), ("Aufzugsanlage", "460"), ("Gebäudeautomation", "480"),
    ("Außenanlagen", "500"), ("Ausstattung", "600"), ("Objektplanung", "730"), ("Tragwerksplanung", "740"),
    ("Projektsteuerung", "710"),
)  # fmt: skip
_UNIT_NAMES = (
    "VE 300 Rohbau", "VE 310 Baugrube", "VE 330 Fassade", "VE 340 Ausbau", "VE 360 Dach", "VE 410 Sanitär",
    "VE 420 Heizung", "VE 430 Lüftung", "VE 440 Elektro", "VE 500 Außenanlagen", "VE 700 Planung",
    "VE 790 Reserve",
)  # fmt: skip

#: DIN 276 cost groups: (number, name, category, parent number)
_COST_ELEMENTS: tuple[tuple[str, str, str, str | None], ...] = (
    ("100", "Grundstück", "SITE", None),
    ("200", "Vorbereitende Maßnahmen", "CLEARANCE_AND_DEVELOPMENT", None),
    ("210", "Herrichten", "CLEARANCE_AND_DEVELOPMENT", "200"),
    ("220", "Öffentliche Erschließung", "CLEARANCE_AND_DEVELOPMENT", "200"),
    ("300", "Bauwerk – Baukonstruktionen", "STRUCTURE_CONSTRUCTION_WORKS", None),
    ("310", "Baugrube/Erdbau", "STRUCTURE_CONSTRUCTION_WORKS", "300"),
    ("320", "Gründung, Unterbau", "STRUCTURE_CONSTRUCTION_WORKS", "300"),
    ("330", "Außenwände/Vertikale Baukonstruktionen, außen", "STRUCTURE_CONSTRUCTION_WORKS", "300"),
    ("340", "Innenwände/Vertikale Baukonstruktionen, innen", "STRUCTURE_CONSTRUCTION_WORKS", "300"),
    ("350", "Decken/Horizontale Baukonstruktionen", "STRUCTURE_CONSTRUCTION_WORKS", "300"),
    ("360", "Dächer", "STRUCTURE_CONSTRUCTION_WORKS", "300"),
    ("390", "Sonstige Maßnahmen für Baukonstruktionen", "STRUCTURE_CONSTRUCTION_WORKS", "300"),
    ("400", "Bauwerk – Technische Anlagen", "STRUCTURE_SERVICES", None),
    ("410", "Abwasser-, Wasser-, Gasanlagen", "STRUCTURE_SERVICES", "400"),
    ("420", "Wärmeversorgungsanlagen", "STRUCTURE_SERVICES", "400"),
    ("430", "Raumlufttechnische Anlagen", "STRUCTURE_SERVICES", "400"),
    ("440", "Elektrische Anlagen", "STRUCTURE_SERVICES", "400"),
    ("450", "Kommunikationstechnische Anlagen", "STRUCTURE_SERVICES", "400"),
    ("460", "Förderanlagen", "STRUCTURE_SERVICES", "400"),
    ("480", "Gebäude- und Anlagenautomation", "STRUCTURE_SERVICES", "400"),
    ("500", "Außenanlagen und Freiflächen", "EXTERNAL_WORKS", None),
    ("600", "Ausstattung und Kunstwerke", "FURNISHINGS_FURNITURE_AND_ARTISTIC_APPOINTMENTS", None),
    ("700", "Baunebenkosten", "INCIDENTAL_BUILDING_COSTS", None),
    ("710", "Bauherrenaufgaben", "INCIDENTAL_BUILDING_COSTS", "700"),
    ("730", "Objektplanung", "INCIDENTAL_BUILDING_COSTS", "700"),
    ("740", "Fachplanung", "INCIDENTAL_BUILDING_COSTS", "700"),
    ("760", "Allgemeine Baunebenkosten", "INCIDENTAL_BUILDING_COSTS", "700"),
    ("800", "Finanzierung", "FINANCING", None),
)
_COST_ELEMENT_INDEX = {number: n for n, (number, *_rest) in enumerate(_COST_ELEMENTS)}
_INVOICE_TYPES = (
    ("SINGLE", 40), ("INSTALLMENT", 35), ("FINAL", 10), ("ADVANCE", 5), ("PARTIAL_FINAL", 5),
    ("RECURRING", 3), ("RETAINAGE_PAYOUT", 2),
)  # fmt: skip


# ==================================================================================================
# Datasets
# ==================================================================================================
@dataclass(frozen=True)
class FilterSpec:
    """What one ``filter[<attribute>.…]`` accepts: the value kind and the operations."""

    kind: str  # id, uuid, text, date, datetime, decimal, money, enum, bool, list
    operations: frozenset[str]


def _filters(**specs: str) -> dict[str, FilterSpec]:
    """``name="kind op op …"`` → filter specs (``__`` in a name stands for a dot)."""
    result = {}
    for name, text in specs.items():
        kind, *ops = text.split()
        result[name.replace("__", ".")] = FilterSpec(kind, frozenset(ops))
    return result


_IN = "in not_in"
_TEXT = "exact contains"
_RANGE = "less_than_equal greater_than_equal range"
_RANGE_IS = f"{_RANGE} is"


class Dataset:
    """One list endpoint's generated objects. Subclasses define the attributes of row ``i``."""

    name = ""
    path = ""
    type = ""
    default_count = 0
    page_size = PAGE_SIZE
    scalable = True
    #: Relationship → dataset of the object whose id the attribute of the same name holds.
    to_one: Mapping[str, str] = {}
    #: Relationships given as a link to a list (``…/<id>/<name>/``) only.
    to_many: tuple[str, ...] = ()
    #: To-one relationships rendered as ``links.related`` (as the spec shows them) instead of ``data``.
    linked_to_one = False
    includes: tuple[str, ...] = ()
    filters: Mapping[str, FilterSpec] = {}
    #: The attribute whose value never decreases with the row number (ranges are binary searches).
    monotonic: str | None = None
    #: Rows share the ids of another dataset (reporting rows of a project carry the project's id).
    id_source: str | None = None

    def __init__(self, world: World) -> None:
        self.world = world
        self.key = derive_key(world.seed, "alasco", self.name)

    @property
    def count(self) -> int:
        return self.world.counts[self.name]

    def rng(self, i: int) -> RowRandom:
        return RowRandom(self.key, i)

    def attributes(self, i: int) -> dict[str, Any]:
        raise NotImplementedError

    def stamp(self, i: int) -> int:
        """The monotonic attribute of generated row ``i`` in microseconds."""
        raise NotImplementedError

    def ref(self, name: str, i: int | None) -> str | None:
        return None if i is None else self.world.id(name, i)

    def derived(self, attribute: str) -> Callable[[str, Mapping[str, Any]], Any] | None:
        """A filter attribute that is not an attribute of the object (``project`` of a contract)."""
        return None


class World:
    """The seed, the row counts and the id codecs every dataset shares."""

    def __init__(self, seed: int, counts: Mapping[str, int]) -> None:
        self.seed = seed
        self.counts: dict[str, int] = {}
        self.codecs = {name: IdCodec(derive_key(seed, "alasco-id", name)) for name in DATASETS}
        self.datasets: dict[str, Dataset] = {name: cls(self) for name, cls in DATASETS.items()}
        base = {name: cls.default_count for name, cls in DATASETS.items() if cls.scalable}
        base.update(counts)
        self.counts.update(base)
        for name, dataset in self.datasets.items():  # derived counts after the base ones
            if not dataset.scalable:
                self.counts[name] = dataset.derived_count()  # type: ignore[attr-defined]

    def id(self, name: str, i: int) -> str:
        source = self.datasets[name].id_source or name
        return self.codecs[source].id(i)

    def index(self, name: str, text: str) -> int | None:
        source = self.datasets[name].id_source or name
        return self.codecs[source].index(text)


def _units_of_project(world: World, project: int) -> list[int]:
    n_projects = world.counts["projects"]
    return list(range(project, world.counts["contract_units"], n_projects))


def _german_iban(rng: RowRandom) -> str:
    bank = rng.digits(8)
    account = rng.digits(10)
    check = 98 - int(bank + account + "131400") % 97
    return f"DE{check:02d}{bank}{account}"


def _address(rng: RowRandom) -> tuple[str, str, str, str]:
    zip_code, city, authority = _CITIES[rng.below(len(_CITIES))]
    return f"{rng.choice(_STREETS)} {rng.between(1, 180)}", zip_code, city, authority


class Properties(Dataset):
    name = path = "properties"
    type = "PROPERTY"
    default_count = 6
    to_many = ("projects",)
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", description=f"text {_TEXT}", address=f"text {_TEXT}",
        zip_code=f"text {_TEXT}", city=f"text {_TEXT}", country=f"enum {_IN}", date_created=f"datetime {_RANGE}",
    )  # fmt: skip
    monotonic = "date_created"

    @cached_property
    def stamp(self) -> Stamps:  # type: ignore[override]
        return Stamps(_utc(2023, 1, 1), _utc(2024, 6, 1), self.count, self.key)

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        address, zip_code, city, _authority = _address(rng)
        return {
            "name": f"Liegenschaft {city} {address}",
            "description": f"Grundstück {i + 1} in {city}",
            "address": address,
            "zip_code": zip_code,
            "city": city,
            "country": "DE",
            "date_created": iso_instant(self.stamp(i)),
        }


class ContractingEntities(Dataset):
    name = path = "contracting_entities"
    type = "CONTRACTING_ENTITY"
    default_count = 3
    to_many = ("contracts", "projects")
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", address=f"text {_TEXT}", city=f"text {_TEXT}",
        zip_code=f"text {_TEXT}", tax_authority=f"enum {_IN}", tax_id=f"text {_TEXT}",
    )  # fmt: skip

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        address, zip_code, city, authority = _address(rng)
        slug = city.lower().replace("ü", "ue").replace("ö", "oe").replace(" ", "-")
        return {
            "name": f"Projektgesellschaft {city} {i + 1} GmbH",
            "address": address,
            "zip_code": zip_code,
            "city": city,
            "tax_id": f"{rng.digits(3)}/{rng.digits(3)}/{rng.digits(5)}",
            "managing_directors": f"{rng.choice(_FIRST_NAMES)} {rng.choice(_COMPANY_ROOTS)}",
            "commercial_register_type": "HRB",
            "commercial_register_number": str(rng.between(10000, 299999)),
            "register_court": f"Amtsgericht {city}",
            "vat_id": f"DE{rng.digits(9)}",
            "email": f"buchhaltung@pg-{slug}-{i + 1}.de",
            "website": f"https://pg-{slug}-{i + 1}.de",
            "tax_authority": authority,
        }


class Contractors(Dataset):
    name = path = "contractors"
    type = "CONTRACTOR"
    default_count = 80
    to_many = ("contracts",)
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", iban=f"text {_TEXT}", bic=f"text {_TEXT}", vat_id=f"text {_TEXT}",
        contact_person_name=f"text {_TEXT}", contact_person_phone_number=f"text {_TEXT}",
        contact_person_email=f"text {_TEXT}", address=f"text {_TEXT}", tax_id=f"text {_TEXT}",
        tax_authority=f"enum {_IN}", identifier=f"text {_TEXT}", project=f"uuid {_IN}",
    )  # fmt: skip

    @cached_property
    def projects_of(self) -> dict[str, frozenset[str]]:
        """Contractor id → ids of the projects it has contracts in (built once, on first use)."""
        contracts = self.world.datasets["contracts"]
        assert isinstance(contracts, Contracts)
        found: dict[str, set[str]] = {}
        for i in range(contracts.count):
            attributes = contracts.attributes(i)
            if attributes["contractor"]:
                project = self.ref("projects", contracts.project_of(i))
                found.setdefault(attributes["contractor"], set()).add(str(project))
        return {key: frozenset(value) for key, value in found.items()}

    def derived(self, attribute: str) -> Callable[[str, Mapping[str, Any]], Any] | None:
        if attribute != "project":
            return None
        return lambda rid, attributes: self.projects_of.get(rid, frozenset())

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        root, trade, form = rng.choice(_COMPANY_ROOTS), rng.choice(_TRADES), rng.choice(_LEGAL_FORMS)
        address, zip_code, city, authority = _address(rng)
        person = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_COMPANY_ROOTS)}"
        waiver = None
        if rng.chance(40):
            waiver = {
                "security_number": f"S{rng.digits(9)}",
                "valid_until": iso_day(_ANCHOR_DAY + rng.between(-30, 700)),
                "filename": None,
            }
        return {
            "name": f"{root} {trade} {form}",
            "iban": _german_iban(rng),
            "bic": f"{rng.choice(('COBA', 'DEUT', 'GENO', 'HELA', 'BYLA'))}DE{rng.hex(2)}XXX".upper(),
            "vat_id": f"DE{rng.digits(9)}",
            "contact_person_name": person,
            "contact_person_phone_number": f"+49 {rng.between(30, 991)} {rng.digits(7)}",
            "contact_person_email": f"kontakt{i + 1}@{root.lower().replace('ü', 'ue').replace('ä', 'ae').replace('ö', 'oe')}-{i + 1}.de",
            "tax_id": f"{rng.digits(3)}/{rng.digits(3)}/{rng.digits(5)}",
            "address": address,
            "zip_code": zip_code,
            "city": city,
            "country": "DE",
            "identifier": f"K-{i + 1:05d}",
            "accounts_payable_number": 70001 + i,
            "tax_authority": authority,
            "tax_waiver": waiver,
        }


class CostElementTreeTemplates(Dataset):
    name = path = "cost_element_tree_templates"
    type = "COST_ELEMENT_TREE_TEMPLATE"
    default_count = 1
    scalable = False
    to_many = ("cost_elements",)
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", description=f"text {_TEXT}", created_at=f"datetime {_RANGE}"
    )

    def derived_count(self) -> int:
        return 1

    def attributes(self, i: int) -> dict[str, Any]:
        return {
            "name": "DIN 276 (2018)",
            "description": "Kostengruppen nach DIN 276:2018-12",
            "created_at": iso_instant(parse_instant("2023-01-02T09:00:00Z") or 0),
        }


class CostElements(Dataset):
    name = path = "cost_elements"
    type = "COST_ELEMENT"
    default_count = len(_COST_ELEMENTS)
    scalable = False
    to_one = {"parent": "cost_elements", "cost_element_tree_template": "cost_element_tree_templates"}
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", description=f"text {_TEXT}", cost_category=f"enum {_IN}",
        parent=f"uuid {_IN}", cost_element_tree_template=f"uuid {_IN}",
    )  # fmt: skip

    def derived_count(self) -> int:
        return len(_COST_ELEMENTS)

    def attributes(self, i: int) -> dict[str, Any]:
        number, label, category, parent = _COST_ELEMENTS[i]
        return {
            "name": f"{number} {label}",
            "description": f"DIN 276 Kostengruppe {number}",
            "cost_category": category,
            "parent": self.ref("cost_elements", _COST_ELEMENT_INDEX[parent]) if parent else None,
            "cost_element_tree_template": self.ref("cost_element_tree_templates", 0),
        }


class Projects(Dataset):
    name = path = "projects"
    type = "PROJECT"
    default_count = 18
    to_one = {"property": "properties", "default_contracting_entity": "contracting_entities",
              "cost_element_tree_template": "cost_element_tree_templates"}  # fmt: skip
    to_many = ("custom_fields",)
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", identifier=f"text {_TEXT}", description=f"text {_TEXT}",
        default_tax_rate=f"decimal {_RANGE_IS}", use_cost_elements="bool is",
        default_contracting_entity=f"uuid {_IN}", property=f"uuid {_IN}", cost_element_tree_template=f"uuid {_IN}",
        is_active="bool is", estimated_start_date=f"date {_RANGE_IS}", estimated_end_date=f"date {_RANGE_IS}",
        gross_floor_area=f"decimal {_RANGE_IS}", effective_floor_area=f"decimal {_RANGE_IS}",
        residential_area=f"decimal {_RANGE_IS}", commercial_area=f"decimal {_RANGE_IS}",
        rental_area=f"decimal {_RANGE_IS}", gross_volume=f"decimal {_RANGE_IS}",
        commercial_usage_ratio=f"decimal {_RANGE_IS}", project_usage=f"enum {_IN}",
    )  # fmt: skip

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        world = self.world
        base = _PROJECT_NAMES[i % len(_PROJECT_NAMES)]
        start_day = _ANCHOR_DAY - rng.between(200, 900)
        gross = rng.between(2_000, 40_000)
        usage = rng.choice(("COMMERCIAL_USAGE", "NON_COMMERCIAL_USAGE", "MIXED_USAGE"))
        residential = 0 if usage == "COMMERCIAL_USAGE" else gross * rng.between(40, 80) // 100
        commercial = gross * 85 // 100 - residential if usage != "NON_COMMERCIAL_USAGE" else 0
        return {
            "name": base if i < len(_PROJECT_NAMES) else f"{base} {i // len(_PROJECT_NAMES) + 1}",
            "identifier": f"P-{2024 + i % 3}-{i + 1:03d}",
            "description": f"Neubau {base}",
            "default_tax_rate": "19.00",
            "default_contracting_entity": self.ref(
                "contracting_entities", i % world.counts["contracting_entities"]
            ),
            "property": self.ref("properties", i % world.counts["properties"]),
            "is_active": i % 7 != 6,
            "use_cost_elements": True,
            "cost_element_tree_template": self.ref("cost_element_tree_templates", 0),
            "estimated_start_date": iso_day(start_day),
            "estimated_end_date": iso_day(start_day + rng.between(500, 1100)),
            "gross_floor_area": f"{gross}.00",
            "effective_floor_area": f"{gross * 80 // 100}.00",
            "residential_area": f"{residential}.00" if residential else None,
            "commercial_area": f"{commercial}.00" if commercial else None,
            "rental_area": f"{gross * 75 // 100}.00",
            "gross_volume": f"{gross * 3}.00",
            "commercial_usage_ratio": f"{commercial * 100 // max(1, residential + commercial)}.00",
            "project_usage": usage,
        }


class ContractUnits(Dataset):
    name = path = "contract_units"
    type = "CONTRACT_UNIT"
    default_count = 180
    to_one = {"project": "projects"}
    to_many = ("contracts",)
    filters = _filters(id=f"id {_IN}", name=f"text {_TEXT}", state=f"enum {_IN}", project=f"uuid {_IN}")

    def project_of(self, i: int) -> int:
        return i % self.world.counts["projects"]

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        label = _UNIT_NAMES[(i // self.world.counts["projects"]) % len(_UNIT_NAMES)]
        if "Reserve" in label:
            state = "CONTINGENCY"
        else:
            state = rng.choice(("BUDGETED", "FULLY_AWARDED", "FULLY_AWARDED", "FULLY_AWARDED", "FINALIZED"))
        return {
            "name": label,
            "description": f"Vergabeeinheit {label[3:]}",
            "project": self.ref("projects", self.project_of(i)),
            "state": state,
        }


class Contracts(Dataset):
    name = path = "contracts"
    type = "CONTRACT"
    default_count = 900
    to_one = {
        "contract_unit": "contract_units",
        "contractor": "contractors",
        "contracting_entity": "contracting_entities",
    }
    to_many = ("invoices", "change_orders", "custom_fields", "documents")
    includes = (
        "contractor",
        "contracting_entity",
        "contract_unit",
        "contract_unit.project",
        "contract_unit.project.property",
    )
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", contract_number=f"text {_TEXT}", cost_center=f"text {_TEXT}",
        status=f"enum {_IN}", contracting_entity=f"uuid {_IN}", contractor=f"uuid {_IN}", project=f"uuid {_IN}",
        date_created=f"datetime {_RANGE}", date_contract=f"date {_RANGE_IS}", contract_type=f"enum {_IN}",
        is_reverse_charge="bool is", contract_unit=f"uuid {_IN}",
    )  # fmt: skip
    monotonic = "date_created"

    @cached_property
    def stamp(self) -> Stamps:  # type: ignore[override]
        return Stamps(_utc(2024, 6, 1), ANCHOR, self.count, self.key)

    def count_before(self, micros: int) -> int:
        """How many generated contracts were created before ``micros``."""
        return bisect.bisect_left(range(self.count), micros, key=self.stamp)

    def derived(self, attribute: str) -> Callable[[str, Mapping[str, Any]], Any] | None:
        if attribute != "project":
            return None
        units = self.world.datasets["contract_units"]

        def project(rid: str, attributes: Mapping[str, Any]) -> Any:
            unit = self.world.index("contract_units", str(attributes.get("contract_unit")))
            return None if unit is None else units.attributes(unit)["project"]

        return project

    def reverse_charge_of(self, i: int) -> bool:
        """Construction work under §13b UStG: the client, not the contractor, owes the VAT."""
        return mix64((self.key ^ (i * 31 + 7)) & MASK64) % 100 < 35

    def unit_of(self, i: int) -> int:
        return self.rng(i).below(self.world.counts["contract_units"])

    def trade_of(self, i: int) -> tuple[str, str]:
        return _CONTRACT_TRADES[mix64((self.key ^ i) & MASK64) % len(_CONTRACT_TRADES)]

    def project_of(self, i: int) -> int:
        units = self.world.datasets["contract_units"]
        assert isinstance(units, ContractUnits)
        return units.project_of(self.unit_of(i))

    def attributes(self, i: int) -> dict[str, Any]:
        world = self.world
        rng = self.rng(i)
        unit = rng.below(world.counts["contract_units"])
        project = unit % world.counts["projects"]
        created = self.stamp(i)
        age_days = (_ANCHOR_MICROS - created) // (_DAY * 1_000_000)
        contractor = rng.below(world.counts["contractors"])
        reverse_charge = self.reverse_charge_of(i)
        net = rng.between(20_000_00, 2_500_000_00)
        reserve = net * rng.between(0, 10) // 100
        contract_day = created // (_DAY * 1_000_000) - rng.between(0, 20)
        kind = rng.between(1, 100)
        late_status = rng.choice(("PARTIAL_COMPLETED", "COMPLETED"))
        no_contractor = rng.chance(30)
        trade, cost_group = self.trade_of(i)
        if age_days < 14:
            status = "DRAFT"
        elif age_days > 420:
            status = late_status
        else:
            status = "ORDERED"
        year = (_EPOCH + timedelta(microseconds=created)).year
        return {
            "name": f"{trade} {_PROJECT_NAMES[project % len(_PROJECT_NAMES)]}",
            "contract_number": f"V-{year % 100:02d}-{i + 1:05d}",
            "cost_center": f"KST-{project + 1:03d}",
            "description": f"Auftrag {trade} (KG {cost_group})",
            "status": status,
            "contract_type": "STANDARD" if kind <= 85 else ("MULTIPART" if kind <= 95 else "RECURRING"),
            "is_reverse_charge": reverse_charge,
            "date_contract": None if status == "DRAFT" else iso_day(contract_day),
            "date_created": iso_instant(created),
            "contract_unit": self.ref("contract_units", unit),
            "contractor": None
            if status == "DRAFT" and no_contractor
            else self.ref("contractors", contractor),
            "contracting_entity": self.ref(
                "contracting_entities", project % world.counts["contracting_entities"]
            ),
            "amount": money(net, _tax(net, reverse_charge)),
            "reserve_amount": money(reserve, _tax(reserve, reverse_charge)),
            "booking_account_number": 3000 + int(cost_group),
        }


_CHANGE_ORDER_NAMES = (
    "Mehrmengen Beton", "Zusätzliche Brandschutzklappen", "Geänderte Fensterformate", "Wasserhaltung",
    "Schadstoffsanierung", "Zusätzliche Steckdosen", "Bauzeitverlängerung", "Stundenlohnarbeiten",
    "Geänderte Bodenbeläge", "Nachtrag Gerüststandzeit",
)  # fmt: skip
_BASES = ("QUANTITY_CHANGE", "PRICE_CHANGE", "SERVICE_CHANGE", "ADDITIONAL_SERVICE", "DIRECT_LABOR_WORK",
          "PERFORMANCE_PERIOD_EXTENSION", "OTHER")  # fmt: skip
_TRIGGERS = ("CONTRACTING_ENTITY_BUILDING_OWNER", "USER_TENANT", "PLANNING", "CONSTRUCTION_SUPERVISION",
             "UNFORESEEABLE_EVENTS", "OTHER")  # fmt: skip


class ChangeOrders(Dataset):
    name = path = "change_orders"
    type = "CHANGE_ORDER"
    default_count = 600
    to_one = {"contract": "contracts"}
    to_many = ("documents",)
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", identifier=f"text {_TEXT}", contract=f"uuid {_IN}",
        project=f"uuid {_IN}", acknowledged_at=f"datetime {_RANGE}", declined_at=f"datetime {_RANGE}",
        approved_amount=f"money {_RANGE_IS}", audited_amount=f"money {_RANGE_IS}",
        claimed_amount=f"money {_RANGE_IS}", change_order_date=f"date {_RANGE_IS}", state=f"enum {_IN}",
        basis_of_claim=f"enum {_IN}", other_basis_of_claim=f"text {_TEXT}", trigger=f"enum {_IN}",
        other_trigger=f"text {_TEXT}",
    )  # fmt: skip

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        contract = rng.below(self.world.counts["contracts"])
        day = _ANCHOR_DAY - rng.between(1, 600)
        claimed = rng.between(500_00, 150_000_00)
        audited = claimed * rng.between(70, 100) // 100
        state = rng.choice(("OPEN", "DETAILS_ENTERED", "ACKNOWLEDGED", "ACKNOWLEDGED", "REJECTED"))
        reverse = rng.chance(35)
        decided = (day + rng.between(3, 40)) * _DAY * 1_000_000 + rng.between(8, 17) * 3_600_000_000
        weighting = rng.choice(("", "0.25", "0.5", "0.75", "1.0"))
        return {
            "identifier": f"NT-{rng.between(1, 60):03d}",
            "name": rng.choice(_CHANGE_ORDER_NAMES),
            "contract": self.ref("contracts", contract),
            "change_order_date": iso_day(day),
            "state": state,
            "claimed_amount": money(claimed, _tax(claimed, reverse)),
            "audited_amount": money(audited, _tax(audited, reverse)) if state != "OPEN" else None,
            "approved_amount": money(audited, _tax(audited, reverse)) if state == "ACKNOWLEDGED" else None,
            "acknowledged_at": iso_instant(decided) if state == "ACKNOWLEDGED" else None,
            "declined_at": iso_instant(decided) if state == "REJECTED" else None,
            "basis_of_claim": rng.choice(_BASES),
            "other_basis_of_claim": "",
            "trigger": rng.choice(_TRIGGERS),
            "other_trigger": "",
            "weighting_factor": float(weighting) if weighting else None,
        }

    def derived(self, attribute: str) -> Callable[[str, Mapping[str, Any]], Any] | None:
        if attribute != "project":
            return None
        contracts = self.world.datasets["contracts"]
        assert isinstance(contracts, Contracts)

        def project(rid: str, attributes: Mapping[str, Any]) -> Any:
            index = self.world.index("contracts", str(attributes.get("contract")))
            return None if index is None else self.ref("projects", contracts.project_of(index))

        return project


class Invoices(Dataset):
    name = path = "invoices"
    type = "INVOICE"
    default_count = 4000
    to_one = {"contract": "contracts"}
    to_many = ("documents", "tags")
    includes = ("contract", "contract.contractor", "contract.contract_unit", "contract.contract_unit.project",
                "contract.contract_unit.project.property")  # fmt: skip
    filters = _filters(
        id=f"id {_IN}", external_identifier=f"text {_TEXT}", internal_identifier=f"text {_TEXT}",
        date_posted=f"date exact {_RANGE}", date_due=f"date exact {_RANGE}", date_received=f"date exact {_RANGE}",
        date_approved=f"datetime {_RANGE}", payment_created=f"datetime {_RANGE}", date_created=f"datetime {_RANGE}",
        invoice_type=f"enum {_IN}", invoice_process_state=f"enum {_IN}", payment_date=f"date exact {_RANGE}",
        unaudited_amount=f"money {_RANGE}", discounted_approved_amount=f"money {_RANGE}",
        undiscounted_approved_amount=f"money {_RANGE}", cash_discount=f"money {_RANGE}",
        audited_amount=f"money {_RANGE}", tags=f"list {_IN}", contract=f"uuid {_IN}",
    )  # fmt: skip
    monotonic = "date_created"

    @cached_property
    def stamp(self) -> Stamps:  # type: ignore[override]
        return Stamps(_utc(2025, 1, 1), ANCHOR, self.count, self.key)

    def attributes(self, i: int) -> dict[str, Any]:
        world = self.world
        contracts = world.datasets["contracts"]
        assert isinstance(contracts, Contracts)
        rng = self.rng(i)
        created = self.stamp(i)
        contract = rng.below(max(1, contracts.count_before(created)))
        reverse = contracts.reverse_charge_of(contract)
        created_day = created // (_DAY * 1_000_000)
        received_day = created_day - rng.between(0, 4)
        posted_day = received_day - rng.between(1, 12)
        due_day = posted_day + (14 if rng.chance(60) else 30)
        hour = 3_600_000_000
        checked = created + rng.between(1, 4) * _DAY * 1_000_000 + rng.between(0, 8) * hour
        approved = (
            checked
            + rng.between(1, 5) * _DAY * 1_000_000
            + rng.between(0, 8) * hour
            + rng.between(0, 3_599_999_999)
        )
        pay_day = approved // (_DAY * 1_000_000) + rng.between(3, 30)
        payment_created = pay_day * _DAY * 1_000_000 + 10 * hour + rng.between(0, 3_599_999_999)
        net = rng.between(500_00, 250_000_00)
        audited_net = net * rng.between(95, 100) // 100
        discount_pct = rng.choice(("0", "0", "0", "2", "3"))
        kind_draw = rng.between(1, 100)
        installment = rng.between(1, 12)
        external = f"RE-{(_EPOCH + timedelta(microseconds=created)).year}-{rng.between(1, 9999):04d}"
        if approved < _ANCHOR_MICROS:
            state = "PAID" if payment_created < _ANCHOR_MICROS else "APPROVED"
        elif checked < _ANCHOR_MICROS:
            state = "CHECKED"
        elif created + _DAY * 1_000_000 < _ANCHOR_MICROS:
            state = "DETAILS_ENTERED"
        else:
            state = "NEW"
        invoice_type = _weighted(_INVOICE_TYPES, kind_draw)
        step = ("NEW", "DETAILS_ENTERED", "CHECKED", "APPROVED", "PAID").index(state)
        discount_net = audited_net * int(discount_pct) // 100
        approved_net = audited_net - discount_net
        internal = f"R{(_EPOCH + timedelta(microseconds=created)).year % 100:02d}-{i + 1:06d}"
        return {
            "external_identifier": external if step >= 1 else None,
            "internal_identifier": internal,
            "invoice_type": invoice_type if step >= 1 else None,
            "installment_number": installment if invoice_type == "INSTALLMENT" and step >= 1 else None,
            "invoice_process_state": state,
            "is_reverse_charge": reverse,
            "contract": self.ref("contracts", contract) if step >= 1 else None,
            "date_created": iso_instant(created),
            "date_received": iso_day(received_day),
            "date_posted": iso_day(posted_day) if step >= 1 else None,
            "date_due": iso_day(due_day) if step >= 1 else None,
            "date_discount": iso_day(posted_day + 10) if discount_net and step >= 3 else None,
            "date_approved": iso_instant(approved) if step >= 3 else None,
            "unaudited_amount": money(net, _tax(net, reverse)) if step >= 1 else None,
            "audited_amount": money(audited_net, _tax(audited_net, reverse)) if step >= 2 else None,
            "undiscounted_approved_amount": money(audited_net, _tax(audited_net, reverse))
            if step >= 3
            else None,
            "cash_discount": money(discount_net, _tax(discount_net, reverse))
            if step >= 3 and discount_net
            else None,
            "discounted_approved_amount": money(approved_net, _tax(approved_net, reverse))
            if step >= 3
            else None,
            "payment_amount_gross": gross_money(approved_net + _tax(approved_net, reverse))
            if step == 4
            else None,
            "payment_date": iso_day(pay_day) if step == 4 else None,
            "payment_created": iso_instant(payment_created) if step == 4 else None,
            "payment_comment": f"Überweisung {internal}" if step == 4 else None,
        }


def _weighted(options: Sequence[tuple[str, int]], draw: int) -> str:
    total = 0
    for value, weight in options:
        total += weight
        if draw <= total:
            return value
    return options[-1][0]


class BudgetShifts(Dataset):
    name = path = "budget_shifts"
    type = "BUDGET_SHIFT"
    default_count = 150
    to_one = {
        "project": "projects",
        "source_contract_unit": "contract_units",
        "target_contract_unit": "contract_units",
    }
    linked_to_one = True
    includes = ("project", "source_contract_unit", "target_contract_unit")
    filters = _filters(
        id=f"id {_IN}",
        source_contract_unit=f"uuid {_IN}",
        target_contract_unit=f"uuid {_IN}",
        project=f"uuid {_IN}",
    )

    @cached_property
    def stamp(self) -> Stamps:  # type: ignore[override]
        return Stamps(_utc(2024, 9, 1), ANCHOR, self.count, self.key)

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        project = rng.below(self.world.counts["projects"])
        units = _units_of_project(self.world, project) or [0]
        target = units[rng.below(len(units))]
        source = units[rng.below(len(units))]
        draw = rng.between(1, 100)
        kind = "SHIFT" if draw <= 60 else ("INCREASE" if draw <= 85 else "DECREASE")
        net = rng.between(1_000_00, 400_000_00)
        reasons = (
            "Umschichtung aus Reserve",
            "Mehrkosten Gründung",
            "Einsparung Ausschreibung",
            "Indexanpassung",
        )
        return {
            "project": self.ref("projects", project),
            "source_contract_unit": self.ref("contract_units", source) if kind == "SHIFT" else None,
            "target_contract_unit": self.ref("contract_units", target),
            "budget_change_type": kind,
            "reason": rng.choice(reasons),
            "amount": money(net, _tax(net, False)),
            "date_created": iso_instant(self.stamp(i)),
        }


# -- the reporting API (read-only roll-ups, 1,000 per page) ------------------------------------------
_FINANCIALS = (
    "approved_amount", "change_orders_amount", "contract_amount_in_draft", "contract_budget_deviation_real_case",
    "contract_budget_deviation_worst_case", "contract_cost_forecast_real_case", "contract_cost_forecast_worst_case",
    "contract_planned_receivables_amount", "contract_realised_receivables_amount", "contractual_cost_allocations",
    "contractual_discounts", "contractual_retentions", "current_budget", "initial_budget", "main_contract_amount",
    "manual_retentions", "open_change_orders_amount", "open_change_orders_amount_unweighted", "paid_amount",
    "progress_reported", "project_budget_deviation_real_case", "project_budget_deviation_worst_case",
    "project_cost_forecast_real_case", "project_cost_forecast_worst_case", "realised_cash_discount",
    "reserves_amount", "risk_amount", "undistributed_budget",
)  # fmt: skip
_BUDGET_ONLY = frozenset({
    "contract_budget_deviation_real_case", "contract_budget_deviation_worst_case", "current_budget",
    "initial_budget", "project_budget_deviation_real_case", "project_budget_deviation_worst_case",
    "project_cost_forecast_real_case", "project_cost_forecast_worst_case", "undistributed_budget",
})  # fmt: skip


def _financials(rng: RowRandom, base_cents: int, fields: Sequence[str]) -> dict[str, Any]:
    """Money roll-ups that hang together: paid ≤ approved ≤ contracted + change orders, and the
    forecasts and deviations follow from them and the budget."""
    main = base_cents
    changes = main * rng.between(0, 18) // 100
    open_changes = main * rng.between(0, 8) // 100
    approved = (main + changes) * rng.between(20, 95) // 100
    paid = approved * rng.between(80, 100) // 100
    initial = main * rng.between(95, 125) // 100
    current = initial + main * rng.between(-5, 10) // 100
    forecast = main + changes + open_changes
    values = {
        "main_contract_amount": main,
        "change_orders_amount": changes,
        "open_change_orders_amount": open_changes * rng.between(40, 100) // 100,
        "open_change_orders_amount_unweighted": open_changes,
        "approved_amount": approved,
        "paid_amount": paid,
        "progress_reported": approved * rng.between(100, 115) // 100,
        "initial_budget": initial,
        "current_budget": current,
        "undistributed_budget": current - forecast if current > forecast else 0,
        "contract_cost_forecast_real_case": forecast,
        "contract_cost_forecast_worst_case": forecast + open_changes,
        "project_cost_forecast_real_case": forecast,
        "project_cost_forecast_worst_case": forecast + open_changes,
        "contract_budget_deviation_real_case": current - forecast,
        "contract_budget_deviation_worst_case": current - forecast - open_changes,
        "project_budget_deviation_real_case": current - forecast,
        "project_budget_deviation_worst_case": current - forecast - open_changes,
        "realised_cash_discount": approved * rng.between(0, 2) // 100,
        "realised_cash_discount_paid": paid * rng.between(0, 2) // 100,
        "contractual_retentions": approved * 5 // 100,
        "manual_retentions": approved * rng.between(0, 3) // 100,
        "contractual_discounts": main * rng.between(0, 3) // 100,
        "contractual_cost_allocations": main * rng.between(0, 2) // 100,
        "contract_amount_in_draft": main * rng.between(0, 10) // 100,
        "reserves_amount": main * rng.between(0, 10) // 100,
        "risk_amount": main * rng.between(0, 5) // 100,
        "contract_planned_receivables_amount": None,
        "contract_realised_receivables_amount": None,
    }
    result: dict[str, Any] = {}
    for name in fields:
        amount = values.get(name)
        result[name] = None if amount is None else money(amount, _tax(amount, False))
    return result


class _Reporting(Dataset):
    page_size = REPORTING_PAGE_SIZE
    scalable = False
    money_fields: tuple[str, ...] = _FINANCIALS
    #: The dataset whose count this one follows (and, with ``id_source``, whose ids it shares).
    follows = ""
    per_follow = 1

    def derived_count(self) -> int:
        return self.world.counts[self.follows] * self.per_follow

    def figures(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        return _financials(rng, rng.between(50_000_00, 3_000_000_00), self.money_fields)


class ReportingProjects(_Reporting):
    name = path = "reporting/projects"
    type = "PROJECT_FINANCIALS"
    follows = id_source = "projects"
    filters = _filters(id=f"id {_IN}")

    def attributes(self, i: int) -> dict[str, Any]:
        name = self.world.datasets["projects"].attributes(i)["name"]
        rng = self.rng(i)
        return {"name": name, **_financials(rng, rng.between(5_000_000_00, 80_000_000_00), self.money_fields)}


class ReportingContracts(_Reporting):
    name = path = "reporting/contracts"
    type = "CONTRACT_FINANCIALS"
    follows = id_source = "contracts"
    money_fields = tuple(f for f in (*_FINANCIALS, "realised_cash_discount_paid") if f not in _BUDGET_ONLY)
    filters = _filters(project=f"uuid {_IN}")

    def attributes(self, i: int) -> dict[str, Any]:
        contract = self.world.datasets["contracts"].attributes(i)
        units = self.world.datasets["contract_units"]
        unit = self.world.index("contract_units", contract["contract_unit"]) or 0
        rng = self.rng(i)
        net = Decimal(contract["amount"]["net"]) * 100
        return {
            "name": contract["name"],
            "contract_unit": contract["contract_unit"],
            "project": units.attributes(unit)["project"],
            **_financials(rng, int(net), self.money_fields),
        }


class ReportingContractUnits(_Reporting):
    name = path = "reporting/contract_units"
    type = "CONTRACT_UNIT_FINANCIALS"
    follows = id_source = "contract_units"
    money_fields = tuple(
        f for f in (*_FINANCIALS, "realised_cash_discount_paid") if f != "undistributed_budget"
    )
    filters = _filters(project=f"uuid {_IN}")

    def attributes(self, i: int) -> dict[str, Any]:
        unit = self.world.datasets["contract_units"].attributes(i)
        return {"name": unit["name"], "project": unit["project"], **self.figures(i)}


class ReportingCostElements(_Reporting):
    name = path = "reporting/cost_elements"
    type = "COST_ELEMENT_FINANCIALS"
    follows = "projects"
    per_follow = len(_COST_ELEMENTS)
    filters = _filters(project="uuid in")

    def attributes(self, i: int) -> dict[str, Any]:
        project, element = divmod(i, len(_COST_ELEMENTS))
        return {
            "cost_element": self.ref("cost_elements", element),
            "cost_element_tree_template": self.ref("cost_element_tree_templates", 0),
            "project": self.ref("projects", project),
            **self.figures(i),
        }


class ReportingCostElementsContracts(_Reporting):
    name = path = "reporting/cost_elements/contracts"
    type = "COST_ELEMENT_CONTRACT_FINANCIALS"
    follows = "contracts"
    money_fields = tuple(f for f in _FINANCIALS if f != "undistributed_budget")
    filters = _filters(project="uuid in")

    def attributes(self, i: int) -> dict[str, Any]:
        contracts = self.world.datasets["contracts"]
        assert isinstance(contracts, Contracts)
        _trade, group = contracts.trade_of(i)
        return {
            "contract": self.ref("contracts", i),
            "contract_unit": self.ref("contract_units", contracts.unit_of(i)),
            "cost_element": self.ref("cost_elements", _COST_ELEMENT_INDEX[group]),
            "cost_element_tree_template": self.ref("cost_element_tree_templates", 0),
            "project": self.ref("projects", contracts.project_of(i)),
            **self.figures(i),
        }


class ReportingCostElementsContractUnits(_Reporting):
    name = path = "reporting/cost_elements/contract_units"
    type = "COST_ELEMENT_CONTRACT_UNIT_FINANCIALS"
    follows = "contract_units"
    money_fields = tuple(f for f in _FINANCIALS if f != "undistributed_budget")
    filters = _filters(project="uuid in")

    def attributes(self, i: int) -> dict[str, Any]:
        units = self.world.datasets["contract_units"]
        assert isinstance(units, ContractUnits)
        group = ("300", "310", "330", "340", "360", "410", "420", "430", "440", "500", "700", "800")
        return {
            "contract_unit": self.ref("contract_units", i),
            "cost_element": self.ref(
                "cost_elements",
                _COST_ELEMENT_INDEX[group[(i // max(1, self.world.counts["projects"])) % len(group)]],
            ),
            "cost_element_tree_template": self.ref("cost_element_tree_templates", 0),
            "project": self.ref("projects", units.project_of(i)),
            **self.figures(i),
        }


_NODE_TYPES = ("COST_ELEMENT", "COST_ELEMENT", "CONTRACT_UNIT", "CONTRACT", "CONTRACT", "FINANCING_CONTRACT_UNIT",
               "UNASSIGNED", "UNDISTRIBUTED_COST_ELEMENT_BUDGET")  # fmt: skip


class ReportingCashOutflow(_Reporting):
    name = path = "reporting/cash_outflow/cost_elements"
    type = "CASH_OUTFLOW_NODE"
    follows = "projects"
    per_follow = len(_NODE_TYPES)
    filters = _filters(project="uuid exact")

    def attributes(self, i: int) -> dict[str, Any]:
        project, k = divmod(i, len(_NODE_TYPES))
        rng = self.rng(i)
        node_type = _NODE_TYPES[k]
        total = rng.between(100_000_00, 5_000_000_00)
        start = total * rng.between(0, 30) // 100
        months = []
        for n in range(3):
            month_day = _ANCHOR_DAY - 31 * (2 - n)
            month = iso_day(month_day)[:7]
            months.append(
                {"month": month, "amount": money(total // 20, _tax(total // 20, False)), "type": "ACTUAL"}
            )
        months.append(
            {
                "month": iso_day(_ANCHOR_DAY + 31)[:7],
                "amount": money(total // 15, _tax(total // 15, False)),
                "type": "PLANNED",
            }
        )
        children = [self.ref(self.name, project * len(_NODE_TYPES) + k + 1)] if k in (0, 2) else []
        return {
            "node_type": node_type,
            "label": f"{node_type.replace('_', ' ').title()} {k + 1}",
            "start_amount": money(start, _tax(start, False)),
            "total_amount": money(total, _tax(total, False)),
            "children": children,
            "project": self.ref("projects", project),
            "amounts": months,
            "contract": None,
            "contract_unit": None,
            "cost_element": self.ref("cost_elements", k % len(_COST_ELEMENTS))
            if node_type == "COST_ELEMENT"
            else None,
            "cost_element_tree_template": self.ref("cost_element_tree_templates", 0),
            "financing_contract": None,
        }


class RentUnits(Dataset):
    name = path = "reporting/rent_units"
    type = "RENT_UNIT_FINANCIALS"
    default_count = 60
    page_size = REPORTING_PAGE_SIZE
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", status=f"enum {_IN}", payment_start_date=f"date {_RANGE_IS}",
        payment_end_date=f"date {_RANGE_IS}", real_case_total__net=f"decimal {_RANGE_IS}",
        real_case_total__tax=f"decimal {_RANGE_IS}", recorded_payments_total=f"money {_RANGE_IS}",
        overdue_payments_total=f"money {_RANGE_IS}", project=f"uuid {_IN}",
    )  # fmt: skip

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        start = _ANCHOR_DAY - rng.between(0, 500)
        total = rng.between(50_000_00, 900_000_00)
        recorded = total * rng.between(0, 60) // 100
        return {
            "name": f"Mieteinheit {i + 1:03d}",
            "status": rng.choice(("PLANNED", "RENTED", "RENTED", "COMPLETED")),
            "payment_start_date": iso_day(start),
            "payment_end_date": iso_day(start + 365 * rng.between(3, 10)),
            "real_case_total": money(total, _tax(total, False)),
            "recorded_payments_total": gross_money(recorded),
            "overdue_payments_total": gross_money(recorded * rng.between(0, 5) // 100),
            "project": self.ref("projects", rng.below(self.world.counts["projects"])),
        }


class SalesUnits(Dataset):
    name = path = "reporting/sales_units"
    type = "SALES_UNIT_FINANCIALS"
    default_count = 40
    page_size = REPORTING_PAGE_SIZE
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", status=f"enum {_IN}", selling_date=f"date {_RANGE_IS}",
        sold_price=f"money {_RANGE_IS}", listed_price=f"money {_RANGE_IS}", project=f"uuid {_IN}",
    )  # fmt: skip

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        listed = rng.between(250_000_00, 1_500_000_00)
        sold = listed * rng.between(92, 105) // 100
        return {
            "name": f"Wohnung {i + 1:03d}",
            "status": rng.choice(("OPEN", "RESERVED", "SOLD", "SOLD")),
            "selling_date": iso_day(_ANCHOR_DAY - rng.between(0, 400)),
            "sold_price": money(sold, 0),
            "listed_price": money(listed, 0),
            "project": self.ref("projects", rng.below(self.world.counts["projects"])),
        }


class OutrightSales(Dataset):
    name = path = "reporting/outright_sales"
    type = "OUTRIGHT_SALE_FINANCIALS"
    default_count = 12
    page_size = REPORTING_PAGE_SIZE
    filters = _filters(
        id=f"id {_IN}", name=f"text {_TEXT}", identifier=f"text {_TEXT}",
        total_planned_revenues__net=f"decimal {_RANGE_IS}", total_planned_revenues__tax=f"decimal {_RANGE_IS}",
        total_recorded_payments__net=f"decimal {_RANGE_IS}", total_recorded_payments__tax=f"decimal {_RANGE_IS}",
        project=f"uuid {_IN}",
    )  # fmt: skip

    def attributes(self, i: int) -> dict[str, Any]:
        rng = self.rng(i)
        planned = rng.between(2_000_000_00, 30_000_000_00)
        recorded = planned * rng.between(0, 100) // 100
        return {
            "name": f"Globalverkauf {i + 1:02d}",
            "total_planned_revenues": money(planned, _tax(planned, False)),
            "total_recorded_payments": money(recorded, _tax(recorded, False)),
            "project": self.ref("projects", i % self.world.counts["projects"]),
        }


DATASETS: dict[str, type[Dataset]] = {
    cls.name: cls
    for cls in (
        Properties, ContractingEntities, Contractors, CostElementTreeTemplates, CostElements, Projects,
        ContractUnits, Contracts, ChangeOrders, Invoices, BudgetShifts, ReportingProjects, ReportingContracts,
        ReportingContractUnits, ReportingCostElements, ReportingCostElementsContracts,
        ReportingCostElementsContractUnits, ReportingCashOutflow, RentUnits, SalesUnits, OutrightSales,
    )
}  # fmt: skip


# ==================================================================================================
# Queries: filters, include, the cursor
# ==================================================================================================
OPERATIONS = frozenset(
    {"exact", "contains", "less_than_equal", "greater_than_equal", "range", "in", "not_in", "is"}
)
_MULTI = frozenset({"in", "not_in", "range"})
_FILTER_KEY = re.compile(r"filter\[(?P<attribute>[^\]]+)\.(?P<operation>[a-z_]+)\]")


class AlascoError(Exception):
    """Raised inside a handler; carries the finished error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def validation_error(
    loc: Sequence[Any], msg: str, kind: str = "value_error", value: Any = None
) -> AlascoError:
    """FastAPI's 422 body: ``{"detail": [{"type", "loc", "msg", "input"}]}``."""
    detail: dict[str, Any] = {"type": kind, "loc": list(loc), "msg": msg}
    if value is not None:
        detail["input"] = value
    return AlascoError(Response.json({"detail": [detail]}, 422))


def jsonapi_error(
    status: int, title: str, detail: str, source: Mapping[str, str] | None = None
) -> AlascoError:
    error: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
    if source:
        error["source"] = dict(source)
    return AlascoError(Response.json({"data": None, "errors": [error]}, status))


def _query_items(query_string: str) -> list[tuple[str, str]]:
    """``(decoded key, raw value)`` pairs in the order sent."""
    items = []
    for part in query_string.split("&"):
        if part:
            raw_key, _, raw_value = part.partition("=")
            items.append((unquote_plus(raw_key), raw_value))
    return items


@dataclass
class Condition:
    attribute: str
    operation: str
    kind: str
    values: list[Any]
    derive: Callable[[str, Mapping[str, Any]], Any] | None = None

    def getter(self) -> Callable[[str, Mapping[str, Any]], Any]:
        if self.derive is not None:
            return self.derive
        if self.kind == "id":
            return lambda rid, attrs: rid
        parts = self.attribute.split(".")
        if self.kind == "money" and len(parts) == 1:
            parts.append("net")  # a bare money attribute compares its net amount

        def get(rid: str, attrs: Mapping[str, Any]) -> Any:
            value: Any = attrs
            for part in parts:
                if not isinstance(value, Mapping):
                    return None
                value = value.get(part)
            return value

        return get


def _convert(kind: str, text: str, key: str) -> Any:
    """A filter value in the form rows are compared in; a bad value is FastAPI's 422."""
    if kind in ("id", "uuid"):
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise validation_error(
                ["query", key], "Input should be a valid UUID", "uuid_parsing", text
            ) from None
    if kind in ("date", "datetime"):
        value = parse_instant(text)
        if value is None:
            raise validation_error(["query", key], f"Input should be a valid {kind}", f"{kind}_parsing", text)
        return value
    if kind in ("decimal", "money"):
        try:
            return Decimal(text)
        except InvalidOperation:
            raise validation_error(
                ["query", key], "Input should be a valid decimal", "decimal_parsing", text
            ) from None
    return text


def _comparable(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind in ("date", "datetime"):
        return parse_instant(str(value))
    if kind in ("decimal", "money"):
        return Decimal(str(value))
    if kind in ("id", "uuid"):
        return str(value).lower()
    return value


def _test(condition: Condition) -> Callable[[str, Mapping[str, Any]], bool]:
    get = condition.getter()
    kind, op, values = condition.kind, condition.operation, condition.values
    if op == "is":
        wanted = values[0].lower()

        def test_is(rid: str, attrs: Mapping[str, Any]) -> bool:
            value = get(rid, attrs)
            if wanted == "null":
                return value is None
            return value is (wanted == "true") if isinstance(value, bool) else False

        return test_is
    if kind == "list":  # tags: the sandbox's invoices carry none
        return (lambda rid, attrs: op == "not_in") if op in ("in", "not_in") else (lambda rid, attrs: False)

    def test(rid: str, attrs: Mapping[str, Any]) -> bool:
        raw = get(rid, attrs)
        if isinstance(raw, frozenset):  # a derived attribute with several values
            hit = bool(raw & set(values))
            return hit if op == "in" else not hit
        value = _comparable(kind, raw)
        if op == "not_in":
            return value is None or value not in values
        if value is None:
            return False
        if op == "exact":
            return bool(value == values[0])
        if op == "contains":
            return str(values[0]).lower() in str(value).lower()
        if op == "in":
            return value in values
        if op == "greater_than_equal":
            return bool(value >= values[0])
        if op == "less_than_equal":
            return bool(value <= values[0])
        return bool(values[0] <= value <= values[1])  # range

    return test


def parse_filters(dataset: Dataset, items: Sequence[tuple[str, str]]) -> list[Condition]:
    conditions = []
    for key, raw in items:
        if not key.startswith("filter"):
            continue
        match = _FILTER_KEY.fullmatch(key)
        if match is None:
            raise jsonapi_error(
                400,
                "Bad Request",
                f"Invalid filter parameter '{key}': use filter[<attribute>.<operation>]",
                {"parameter": key},
            )
        attribute, operation = match.group("attribute"), match.group("operation")
        if operation not in OPERATIONS:
            raise validation_error(["query", key], f"Unsupported filter operation '{operation}'", value=raw)
        spec = dataset.filters.get(attribute)
        base, _, sub = attribute.rpartition(".")
        if spec is None and sub in ("net", "tax") and base in dataset.filters:
            spec = dataset.filters[base]
        if spec is None and attribute.startswith("custom_fields.") and dataset.name == "contracts":
            spec = FilterSpec("text", OPERATIONS)
        if spec is None:
            raise validation_error(["query", key], f"Filtering on '{attribute}' is not supported", value=raw)
        if operation not in spec.operations:
            raise validation_error(
                ["query", key], f"Operation '{operation}' is not supported for '{attribute}'", value=raw
            )
        texts = _split_values(raw) if operation in _MULTI else [unquote_plus(raw)]
        if operation == "range" and len(texts) != 2:
            raise validation_error(["query", key], "A range filter expects two values", value=raw)
        if operation == "is":
            if texts[0].lower() not in ("true", "false", "null"):
                raise validation_error(["query", key], "Expected true, false or null", value=raw)
            values: list[Any] = texts
        else:
            values = [_convert(spec.kind, text, key) for text in texts]
        conditions.append(Condition(attribute, operation, spec.kind, values, dataset.derived(attribute)))
    return conditions


def parse_include(dataset: Dataset, items: Sequence[tuple[str, str]]) -> list[str]:
    names: list[str] = []
    for key, raw in items:
        if key != "include":
            continue
        for name in (part.strip() for part in _split_values(raw)):
            if not name:
                continue
            if name not in dataset.includes:
                raise validation_error(["query", "include"], f"Invalid include path '{name}'", value=raw)
            names.append(name)
    return names


def _query_hash(scope: str, items: Sequence[tuple[str, str]]) -> str:
    canonical = sorted((key, unquote_plus(value)) for key, value in items if key != "cursor[position]")
    return hashlib.sha256(json.dumps([scope, canonical]).encode()).hexdigest()[:16]


def encode_cursor(position: int, query_hash: str) -> str:
    return base64.urlsafe_b64encode(f"{position}:{query_hash}".encode()).decode().rstrip("=")


def decode_cursor(text: str, query_hash: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        position_text, _, owner = raw.partition(":")
        position = int(position_text)
    except (ValueError, UnicodeDecodeError):
        raise jsonapi_error(400, "Bad Request", "Invalid cursor", {"parameter": "cursor[position]"}) from None
    if owner != query_hash or position < 0:
        raise jsonapi_error(
            400,
            "Bad Request",
            "The cursor does not belong to this query: follow links.next exactly as given",
            {"parameter": "cursor[position]"},
        )
    return position


# ==================================================================================================
# Multipart bodies (the upload endpoints)
# ==================================================================================================
@dataclass
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, FormPart]:
    """The parts of a ``multipart/form-data`` body by field name; raises ``ValueError``."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise ValueError("expected a multipart/form-data body")
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: dict[str, FormPart] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no header block")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        field_name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if field_name is None:
            raise ValueError("a part has no field name")
        parts[field_name.group(1)] = FormPart(
            field_name.group(1),
            filename.group(1) if filename else None,
            headers.get("content-type"),
            data[:-2] if data.endswith(b"\r\n") else data,
        )
    return parts


# ==================================================================================================
# The emulator
# ==================================================================================================
_DOCUMENT_TYPES: dict[str, tuple[str, frozenset[str], bool]] = {
    # parent dataset: (document type, document types accepted on upload, has an annotated download)
    "invoices": (
        "INVOICE_DOCUMENT",
        frozenset({"INVOICE", "ATTACHMENT", "COVERSHEET_EXTERNAL", "AUDITED_INVOICE", "INTERNAL_CORRESPONDENCE",
                   "EXTERNAL_CORRESPONDENCE", "VALUATIONS", "PLANS", "REVISED_INVOICE", "PAYMENT_CERTIFICATE",
                   "PROTOCOL", "OTHER"}),
        True,
    ),
    "contracts": ("CONTRACT_DOCUMENT", frozenset({"CONTRACT", "ATTACHMENT"}), False),
    "change_orders": (
        "CHANGE_ORDER_DOCUMENT",
        frozenset({"CHANGE_ORDER_OFFER", "ATTACHMENT", "COVERSHEET_EXTERNAL", "AUDITED_CHANGE_ORDER",
                   "INTERNAL_CORRESPONDENCE", "EXTERNAL_CORRESPONDENCE", "VALUATIONS", "PLANS", "CHANGE_ORDER",
                   "PROTOCOL", "OTHER"}),
        True,
    ),
}  # fmt: skip
_PARENT_TYPES = {"invoices": "INVOICE", "contracts": "CONTRACT", "change_orders": "CHANGE_ORDER"}
_SINGULAR = {"invoices": "invoice", "contracts": "contract", "change_orders": "change_order"}
#: Sub-lists: (parent dataset, segment) → (child dataset, attribute of the child holding the parent id)
_SUB_LISTS: dict[tuple[str, str], tuple[str, str]] = {
    ("properties", "projects"): ("projects", "property"),
    ("contract_units", "contracts"): ("contracts", "contract_unit"),
    ("contracting_entities", "contracts"): ("contracts", "contracting_entity"),
    ("contracting_entities", "projects"): ("projects", "default_contracting_entity"),
    ("contractors", "contracts"): ("contracts", "contractor"),
    ("contracts", "invoices"): ("invoices", "contract"),
    ("contracts", "change_orders"): ("change_orders", "contract"),
    ("cost_element_tree_templates", "cost_elements"): ("cost_elements", "cost_element_tree_template"),
}
#: Detail routes (``/<path>/{id}/``); the reporting API has them only for these three.
_DETAILS = frozenset({
    "properties", "projects", "contract_units", "contracts", "change_orders", "invoices", "contractors",
    "contracting_entities", "cost_element_tree_templates", "reporting/rent_units", "reporting/sales_units",
    "reporting/outright_sales",
})  # fmt: skip
_CONTRACT_RELATIONS = {
    "contract_unit": "contract_units",
    "contractor": "contractors",
    "contracting_entity": "contracting_entities",
}
_DECIMAL_RE = re.compile(r"[+-]?\d{1,16}(\.\d{0,12})?")
_UUID = r"[0-9A-Za-z-]+"


@dataclass
class _Document:
    id: str
    parent: str
    parent_id: str
    filename: str
    document_type: str
    uploaded_at: str
    content: bytes


class AlascoEmulator(Emulator):
    """The Alasco FinCon API of one account. See the module docstring for what it covers.

    ``api_key`` / ``api_token`` are the valid credentials; ``payments``, ``contract_updates``,
    ``submissions``, ``uploads`` and ``downloads`` record the writes and the storage fetches.
    """

    name = "alasco"
    prefix = "/alasco"

    def __init__(self, seed: int = 42, scale: Mapping[str, int] | None = None) -> None:
        self.seed = seed
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self._secret = hashlib.sha256(f"alasco-storage:{seed}".encode()).digest()
        self._counts: dict[str, int] = {}
        self.world = World(seed, self._counts)
        self._document_codec = IdCodec(derive_key(seed, "alasco-id", "invoice_documents"))
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = []
        self._add_routes()
        self.reset_state()

    # -- set-up ------------------------------------------------------------------------------------
    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        known = {}
        for key, value in scale.items():
            vendor, _, dataset = key.partition(":")
            if vendor != "alasco":
                continue
            cls = DATASETS.get(dataset)
            if cls is None or not cls.scalable:
                scalable = sorted(name for name, c in DATASETS.items() if c.scalable)
                raise ValueError(
                    f"alasco has no scalable dataset {dataset!r}; scalable: {', '.join(scalable)}"
                )
            if int(value) < 0:
                raise ValueError(f"row count for {key} must not be negative")
            known[dataset] = int(value)
        if known:
            self._counts.update(known)
            self.world = World(self.seed, self._counts)
            self.reset_state()
        return [f"alasco:{name}" for name in known]

    def reset_state(self) -> None:
        with self._lock:
            self._overrides: dict[tuple[str, int], dict[str, Any]] = {}
            self._inserted: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            self._private: dict[str, dict[str, Any]] = {}
            self._documents: dict[str, _Document] = {}
            self._documents_of: dict[tuple[str, str], list[str]] = {}
            self._credentials: dict[str, set[str]] = {
                sandbox_alasco_api_key(self.seed): {sandbox_alasco_api_token(self.seed)}
            }
            self._generation = 0
            self.api_key = sandbox_alasco_api_key(self.seed)
            self.api_token = sandbox_alasco_api_token(self.seed)
            self.access_enabled = True
            self.rate_limit: tuple[int, float] | None = None
            self._recent: list[float] = []
            self.payments: list[dict[str, Any]] = []
            self.contract_updates: list[dict[str, Any]] = []
            self.contract_creations: list[dict[str, Any]] = []
            self.submissions: list[dict[str, Any]] = []
            self.uploads: list[dict[str, Any]] = []
            self.downloads: list[dict[str, Any]] = []

    def now_micros(self) -> int:
        """The sandbox clock: the anchor plus the time since the emulator started."""
        return _ANCHOR_MICROS + int((time.monotonic() - self._started) * 1_000_000)

    def dataset(self, name: str) -> Dataset:
        return self.world.datasets[name]

    def row_count(self, name: str) -> int:
        """Generated rows of a dataset (objects created at runtime not included)."""
        return self.dataset(name).count

    def resources(self, name: str, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Generated objects as the list endpoint renders them (relationship links on localhost)."""
        dataset = self.dataset(name)
        stop = dataset.count if stop is None else min(stop, dataset.count)
        base = f"http://localhost{self.prefix}{API_PREFIX}"
        return [self._resource(dataset, *self._row(dataset, i), base) for i in range(start, stop)]

    def mint_credentials(self, *, replace: bool = True) -> tuple[str, str]:
        """A new credential set, as an Admin creates under "Integrationen": the account's API key
        stays the same, the token is new; ``replace`` invalidates the previous token at once (one
        credential set per account), otherwise both tokens work until one is revoked."""
        with self._lock:
            self._generation += 1
            key = self.api_key
            token = sandbox_alasco_api_token(self.seed, self._generation)
            if replace:
                self._credentials.clear()
            self._credentials.setdefault(key, set()).add(token)
            self.api_key, self.api_token = key, token
            return key, token

    def revoke_token(self, token: str) -> bool:
        with self._lock:
            for tokens in self._credentials.values():
                if token in tokens:
                    tokens.discard(token)
                    return True
        return False

    # -- rows --------------------------------------------------------------------------------------
    def _total(self, dataset: Dataset) -> int:
        return dataset.count + len(self._inserted.get(dataset.name, ()))

    def _row(self, dataset: Dataset, i: int) -> tuple[str, dict[str, Any]]:
        if i < dataset.count:
            attributes = dataset.attributes(i)
            override = self._overrides.get((dataset.name, i))
            if override:
                attributes = {**attributes, **override}
            return self.world.id(dataset.name, i), attributes
        return self._inserted[dataset.name][i - dataset.count]

    def _find(self, dataset: Dataset, text: str) -> int | None:
        index = self.world.index(dataset.name, text)
        if index is None or index >= self._total(dataset):
            return None
        return index

    def _stamp(self, dataset: Dataset, i: int) -> int:
        if i < dataset.count:
            return dataset.stamp(i)
        value = self._inserted[dataset.name][i - dataset.count][1].get(dataset.monotonic or "")
        return parse_instant(str(value)) or 0

    def _update(self, dataset: Dataset, i: int, changes: Mapping[str, Any]) -> None:
        if i < dataset.count:
            self._overrides.setdefault((dataset.name, i), {}).update(changes)
        else:
            self._inserted[dataset.name][i - dataset.count][1].update(changes)

    def _insert(self, dataset: Dataset, attributes: dict[str, Any]) -> tuple[str, int]:
        rows = self._inserted.setdefault(dataset.name, [])
        index = dataset.count + len(rows)
        rid = self.world.id(dataset.name, index)
        rows.append((rid, attributes))
        return rid, index

    # -- rendering ---------------------------------------------------------------------------------
    def _base(self, request: Request) -> str:
        host = request.header("host") or "localhost"
        return f"http://{host}{self.prefix}{api_prefix(request.subpath) or API_PREFIX}"

    def _resource(self, dataset: Dataset, rid: str, attributes: dict[str, Any], base: str) -> dict[str, Any]:
        relationships: dict[str, Any] = {}
        for name, target in dataset.to_one.items():
            value = attributes.get(name)
            target_set = self.world.datasets[target]
            if dataset.linked_to_one:
                related = f"{base}/{target_set.path}/{value}/" if value else None
                relationships[name] = {"links": {"related": related}}
            else:
                relationships[name] = {"data": {"id": value, "type": target_set.type} if value else None}
        for name in dataset.to_many:
            relationships[name] = {"links": {"related": f"{base}/{dataset.path}/{rid}/{name}/"}}
        return {
            "id": rid,
            "type": dataset.type,
            "attributes": attributes,
            "relationships": relationships or None,
        }

    def _included(
        self, dataset: Dataset, rows: Sequence[tuple[str, dict[str, Any]]], paths: Sequence[str], base: str
    ) -> list[dict[str, Any]]:
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for _rid, attributes in rows:
            for path in paths:
                current, values = dataset, attributes
                for relation in path.split("."):
                    target = self.world.datasets[current.to_one[relation]]
                    value = values.get(relation)
                    index = self._find(target, str(value)) if value else None
                    if index is None:
                        break
                    rid, values = self._row(target, index)
                    if (target.type, rid) not in seen:
                        seen[(target.type, rid)] = self._resource(target, rid, values, base)
                    current = target
        return list(seen.values())

    def _document_resource(self, document: _Document, base: str) -> dict[str, Any]:
        kind, _types, annotated = _DOCUMENT_TYPES[document.parent]
        own = f"{base}/{document.parent}/{document.parent_id}/documents/{document.id}/"
        links = {"self": own, "download": own + "download/"}
        if annotated:
            links["download_annotated"] = own + "download-annotated/"
        parent_type = _PARENT_TYPES[document.parent]
        return {
            "id": document.id,
            "type": kind,
            "attributes": {
                "filename": document.filename,
                "uploaded_at": document.uploaded_at,
                "document_type": document.document_type,
            },
            "links": links,
            "relationships": {
                _SINGULAR[document.parent]: {"data": {"id": document.parent_id, "type": parent_type}}
            },
        }

    # -- routing -----------------------------------------------------------------------------------
    def _add_routes(self) -> None:
        def add(methods: str, pattern: str, handler: Callable[..., Response]) -> None:
            for method in methods.split():
                self._routes.append((method, re.compile(pattern), handler))

        for name, cls in DATASETS.items():
            add("GET", rf"/{re.escape(cls.path)}/", self._list_route(name))
            if name in _DETAILS:
                add("GET", rf"/{re.escape(cls.path)}/(?P<rid>{_UUID})/", self._detail_route(name))
        add("GET", rf"/cost_elements/(?P<rid>{_UUID})", self._detail_route("cost_elements"))
        for (parent, segment), _child in _SUB_LISTS.items():
            add("GET", rf"/{parent}/(?P<rid>{_UUID})/{segment}/", self._sub_list_route(parent, segment))
        for parent in _DOCUMENT_TYPES:
            base = rf"/{parent}/(?P<rid>{_UUID})/documents/"
            add("GET", base, self._documents_route(parent))
            add("POST", base, self._upload_route(parent))
            add("GET", base + rf"(?P<doc>{_UUID})/", self._document_route(parent, "detail"))
            add("GET", base + rf"(?P<doc>{_UUID})/download/", self._document_route(parent, "download"))
            if _DOCUMENT_TYPES[parent][2]:
                add(
                    "GET",
                    base + rf"(?P<doc>{_UUID})/download-annotated/",
                    self._document_route(parent, "annotated"),
                )
        add("POST", r"/contracts/", self._create_contract)
        add("PATCH", rf"/contracts/(?P<rid>{_UUID})/", self._patch_contract)
        add("POST", rf"/invoices/(?P<rid>{_UUID})/register-payment/", self._register_payment)
        add("POST", rf"/invoices/(?P<rid>{_UUID})/update-new/", self._update_new)
        add("POST", rf"/projects/(?P<rid>{_UUID})/submit-invoice/", self._submit_invoice)

    def _match(self, method: str, path: str) -> tuple[Callable[..., Response] | None, dict[str, str], bool]:
        """The handler for ``method path``, its path arguments, and whether the path exists at all."""
        exists = False
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            exists = True
            if route_method == method:
                return handler, match.groupdict(), True
        return None, {}, exists

    def handle(self, request: Request) -> Response:
        try:
            response = self._handle(request)
        except AlascoError as error:
            response = error.response
        if response.status >= 400:
            response.headers.setdefault("x-request-id", uuid.uuid4().hex)
        return _compress(request, response)

    def _handle(self, request: Request) -> Response:
        if request.subpath.startswith(FILES_PREFIX):
            return self._storage(request, request.subpath[len(FILES_PREFIX) :])
        prefix = api_prefix(request.subpath)
        if prefix is None:
            return Response.json({"detail": "Not Found"}, 404)
        path = request.subpath[len(prefix) :]
        handler, arguments, exists = self._match(request.method, path)
        if not exists:
            # Starlette's redirect_slashes: the same path with (or without) the trailing slash.
            other = path[:-1] if path.endswith("/") else path + "/"
            if self._match(request.method, other)[2]:
                return self._redirect(request, prefix + other, 307)
            return Response.json({"detail": "Not Found"}, 404)
        if handler is None:
            return Response.json({"detail": "Method Not Allowed"}, 405)
        failure = self._check_access(request)
        if failure is not None:
            return failure
        for name, value in arguments.items():
            try:
                uuid.UUID(value)
            except ValueError:
                loc = "id" if name == "rid" else "document_id"
                raise validation_error(
                    ["path", loc], "Input should be a valid UUID", "uuid_parsing", value
                ) from None
        return handler(request, **arguments)

    def _redirect(self, request: Request, subpath: str, status: int) -> Response:
        host = request.header("host") or "localhost"
        location = f"http://{host}{self.prefix}{subpath}"
        if request.query_string:
            location += "?" + request.query_string
        return Response(status, b"", None, {"Location": location})

    def _check_access(self, request: Request) -> Response | None:
        key = request.header("x-api-key")
        token = request.header("x-api-token")
        with self._lock:
            valid = bool(key and token and token in self._credentials.get(key, ()))
        if not valid:
            return jsonapi_error(401, "Unauthorized", "Invalid or missing API key or API token.").response
        if not self.access_enabled:
            return jsonapi_error(
                403, "Forbidden", "The account is not activated for public API access."
            ).response
        limit = self.rate_limit
        if limit is not None:
            requests, seconds = limit
            now = time.monotonic()
            with self._lock:
                self._recent = [t for t in self._recent if now - t < seconds]
                if len(self._recent) >= requests:
                    wait = max(1, int(seconds - (now - self._recent[0])) + 1)
                    response = jsonapi_error(429, "Too Many Requests", "Rate limit exceeded.").response
                    response.headers["Retry-After"] = str(wait)
                    return response
                self._recent.append(now)
        return None

    # -- lists and details -------------------------------------------------------------------------
    def _list_route(self, name: str) -> Callable[..., Response]:
        def list_all(request: Request) -> Response:
            return self._list(request, self.world.datasets[name])

        return list_all

    def _sub_list_route(self, parent: str, segment: str) -> Callable[..., Response]:
        child, attribute = _SUB_LISTS[(parent, segment)]

        def sub_list(request: Request, rid: str) -> Response:
            self._require(parent, rid)
            return self._list(request, self.world.datasets[child], parent=(attribute, rid.lower()))

        return sub_list

    def _require(self, name: str, rid: str) -> int:
        dataset = self.world.datasets[name]
        index = self._find(dataset, rid)
        if index is None:
            raise jsonapi_error(
                404, "Not Found", f"{dataset.type.replace('_', ' ').title()} {rid} does not exist."
            )
        return index

    def _list(self, request: Request, dataset: Dataset, parent: tuple[str, str] | None = None) -> Response:
        items = _query_items(request.query_string)
        conditions = parse_filters(dataset, items)
        include = parse_include(dataset, items)
        base = self._base(request)
        with self._lock:
            total = self._total(dataset)
            lo, hi, rest = self._bounds(dataset, conditions, total)
            tests = [_test(condition) for condition in rest]
            if parent is not None:
                attribute, wanted = parent
                tests.append(lambda rid, attrs: str(attrs.get(attribute) or "").lower() == wanted)
            query_hash = _query_hash(request.subpath, items)
            start = lo
            for key, raw in items:
                if key == "cursor[position]":
                    start = max(lo, decode_cursor(unquote_plus(raw), query_hash))
            rows: list[tuple[str, dict[str, Any]]] = []
            i = start
            while i < hi and len(rows) < dataset.page_size:
                rid, attributes = self._row(dataset, i)
                if all(test(rid, attributes) for test in tests):
                    rows.append((rid, attributes))
                i += 1
            next_position = None
            if len(rows) == dataset.page_size:
                for j in range(i, hi):
                    if not tests or all(test(*self._row(dataset, j)) for test in tests):
                        next_position = j
                        break
            data = [self._resource(dataset, rid, attributes, base) for rid, attributes in rows]
            included = self._included(dataset, rows, include, base) if include else None
        next_link = None
        if next_position is not None:
            kept = [part for part in request.query_string.split("&") if part and not _is_cursor(part)]
            kept.append(f"cursor%5Bposition%5D={encode_cursor(next_position, query_hash)}")
            next_link = (
                f"{base}{request.subpath[len(api_prefix(request.subpath) or API_PREFIX) :]}?{'&'.join(kept)}"
            )
        return Response.json(
            {"data": data, "included": included, "links": {"next": next_link}, "errors": None}
        )

    def _bounds(
        self, dataset: Dataset, conditions: Sequence[Condition], total: int
    ) -> tuple[int, int, list[Condition]]:
        """Rows ``[lo, hi)`` that can match the ranges on the monotonic attribute; the other
        conditions are left to test row by row."""
        lo, hi = 0, total
        rest = []
        for condition in conditions:
            if condition.attribute != dataset.monotonic or condition.operation not in (
                "greater_than_equal",
                "less_than_equal",
                "range",
            ):
                rest.append(condition)
                continue

            def key(i: int) -> int:
                return self._stamp(dataset, i)

            if condition.operation in ("greater_than_equal", "range"):
                lo = max(lo, bisect.bisect_left(range(total), condition.values[0], key=key))
            if condition.operation in ("less_than_equal", "range"):
                hi = min(hi, bisect.bisect_right(range(total), condition.values[-1], key=key))
        return lo, max(lo, hi), rest

    def _detail_route(self, name: str) -> Callable[..., Response]:
        def detail(request: Request, rid: str) -> Response:
            dataset = self.world.datasets[name]
            items = _query_items(request.query_string)
            include = parse_include(dataset, items)
            base = self._base(request)
            with self._lock:
                index = self._require(name, rid)
                found, attributes = self._row(dataset, index)
                document = {
                    "data": self._resource(dataset, found, attributes, base),
                    "included": self._included(dataset, [(found, attributes)], include, base)
                    if include
                    else None,
                    "links": None,
                    "errors": None,
                }
            return Response.json(document)

        return detail

    # -- documents ---------------------------------------------------------------------------------
    def _documents_for(self, parent: str, rid: str) -> list[_Document]:
        documents = [self._documents[doc] for doc in self._documents_of.get((parent, rid.lower()), [])]
        if parent == "invoices":
            index = self._require("invoices", rid)
            dataset = self.world.datasets["invoices"]
            if index < dataset.count:
                documents.insert(0, self._generated_document(index))
        return documents

    def _generated_document(self, index: int) -> _Document:
        rid, attributes = self._row(self.world.datasets["invoices"], index)
        return _Document(
            id=self._document_codec.id(index),
            parent="invoices",
            parent_id=rid,
            filename=f"{attributes['internal_identifier']}.pdf",
            document_type="INVOICE",
            uploaded_at=attributes["date_created"],
            content=b"",
        )

    def _document_content(self, document: _Document) -> bytes:
        if document.content:
            return document.content
        _rid, attributes = self._row(
            self.world.datasets["invoices"], self._require("invoices", document.parent_id)
        )
        amount = attributes.get("unaudited_amount") or {}
        return _pdf(
            f"Rechnung {attributes['internal_identifier']}",
            [f"Rechnungsnummer: {attributes.get('external_identifier') or '-'}",
             f"Netto: {amount.get('net', '-')} EUR", f"Steuer: {amount.get('tax', '-')} EUR"],
        )  # fmt: skip

    def _documents_route(self, parent: str) -> Callable[..., Response]:
        def documents(request: Request, rid: str) -> Response:
            base = self._base(request)
            with self._lock:
                self._require(parent, rid)
                data = [self._document_resource(doc, base) for doc in self._documents_for(parent, rid)]
            items = _query_items(request.query_string)
            for key, raw in items:
                if key == "filter[document_type.in]":
                    wanted = set(_split_values(raw))
                    data = [doc for doc in data if doc["attributes"]["document_type"] in wanted]
            return Response.json({"data": data, "included": None, "links": {"next": None}, "errors": None})

        return documents

    def _document_route(self, parent: str, action: str) -> Callable[..., Response]:
        def document(request: Request, rid: str, doc: str) -> Response:
            with self._lock:
                self._require(parent, rid)
                found = next((d for d in self._documents_for(parent, rid) if d.id == doc.lower()), None)
                if found is None:
                    raise jsonapi_error(404, "Not Found", f"Document {doc} does not exist.")
                if action == "detail":
                    return Response.json(
                        {"data": self._document_resource(found, self._base(request)), "errors": None}
                    )
                content = self._document_content(found)
            if action == "annotated":
                return Response(200, content, "application/pdf", {})
            expires = self.now_micros() // 1_000_000 + LINK_TTL_SECONDS
            token = (
                base64.urlsafe_b64encode(f"{parent}/{rid.lower()}/{found.id}".encode()).decode().rstrip("=")
            )
            signature = self._sign(token, expires)
            host = request.header("host") or "localhost"
            location = (
                f"http://{host}{self.prefix}{FILES_PREFIX}{token}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                f"&X-Amz-Expires={LINK_TTL_SECONDS}&X-Amz-Date={expires}&X-Amz-Signature={signature}"
            )
            return Response(302, b"", None, {"Location": location})

        return document

    def _sign(self, token: str, expires: int) -> str:
        return hmac.new(self._secret, f"{token}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _storage(self, request: Request, token: str) -> Response:
        """The object storage behind the pre-signed links: the signature in the URL is the only
        authority. Like presigned object storage (S3 and the like), it ignores headers it does not
        know, the API's ``X-API-KEY``/``X-API-TOKEN`` included, so a client that leaks them there
        gets its file all the same; only an ``Authorization`` header is refused, as S3 refuses a
        second authentication mechanism. Every fetch is recorded with the headers it carried, so
        tests can see what a client sent to a host that is not Alasco."""
        carried = sorted(
            name for name in ("x-api-key", "x-api-token", "authorization") if request.header(name)
        )
        record = {
            "path": token,
            "credentials_sent": carried,
            "headers": dict(request.headers),
            "status": 200,
        }
        try:
            expires = int(request.param("X-Amz-Date") or "")
        except ValueError:
            expires = -1
        signature = request.param("X-Amz-Signature") or ""
        if request.header("authorization"):
            response = _storage_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Signature query parameter or the "
                "Authorization header should be specified",
            )
        elif expires < 0 or not hmac.compare_digest(signature, self._sign(token, expires)):
            response = _storage_error(403, "SignatureDoesNotMatch", "The request signature does not match")
        elif self.now_micros() // 1_000_000 > expires:
            response = _storage_error(403, "AccessDenied", "Request has expired")
        else:
            try:
                parent, rid, doc = (
                    base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("/")
                )
                with self._lock:
                    found = next(d for d in self._documents_for(parent, rid) if d.id == doc)
                    content = self._document_content(found)
                response = Response(200, content, "application/pdf", {})
            except (ValueError, StopIteration, KeyError, AlascoError):
                response = _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        record["status"] = response.status
        with self._lock:
            self.downloads.append(record)
        return response

    def _upload_route(self, parent: str) -> Callable[..., Response]:
        def upload(request: Request, rid: str) -> Response:
            parts = _form(request)
            _kind, accepted, _annotated = _DOCUMENT_TYPES[parent]
            document_type = parts.get("document_type")
            if document_type is None:
                raise validation_error(["body", "document_type"], "Field required", "missing")
            type_text = document_type.data.decode("utf-8", "replace").strip()
            if type_text not in accepted:
                raise validation_error(
                    ["body", "document_type"],
                    f"Input should be one of {', '.join(sorted(accepted))}",
                    "enum",
                    type_text,
                )
            upload_part = _pdf_part(parts, "upload")
            with self._lock:
                self._require(parent, rid)
                document = self._store_document(parent, rid.lower(), upload_part, type_text)
                self.uploads.append(
                    {
                        "parent": parent,
                        "id": rid.lower(),
                        "document": document.id,
                        "filename": document.filename,
                    }
                )
                body = {"data": self._document_resource(document, self._base(request)), "errors": None}
            return Response.json(body, 201)

        return upload

    def _store_document(self, parent: str, rid: str, part: FormPart, document_type: str) -> _Document:
        document = _Document(
            id=str(
                uuid.UUID(
                    bytes=hashlib.sha256(f"{self.seed}:{len(self._documents)}:{rid}".encode()).digest()[:16],
                    version=4,
                )
            ),
            parent=parent,
            parent_id=rid,
            filename=part.filename or "document.pdf",
            document_type=document_type,
            uploaded_at=iso_instant(self.now_micros()),
            content=part.data,
        )
        self._documents[document.id] = document
        self._documents_of.setdefault((parent, rid), []).append(document.id)
        return document

    # -- writes ------------------------------------------------------------------------------------
    def _checked_body(self, request: Request, path: str, method: str) -> dict[str, Any]:
        """The JSON body, checked against the spec's request schema of ``method path`` (422 as
        FastAPI answers when it does not conform)."""
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise validation_error(["body"], "JSON decode error", "json_invalid") from None
        spec = load_json("alasco", "fincon-openapi.json")
        problems = validate(spec, request_schema(spec, path, method), body)
        if problems:
            raise AlascoError(Response.json({"detail": problems}, 422))
        return dict(body)

    def _relationship_ids(self, data: Mapping[str, Any]) -> dict[str, str | None]:
        """``relationships.<name>.data.id`` of a body, each checked to exist (422 otherwise)."""
        found: dict[str, str | None] = {}
        for name, value in (data.get("relationships") or {}).items():
            dataset = _CONTRACT_RELATIONS.get(name)
            if dataset is None:
                continue
            if value is None:
                found[name] = None
                continue
            rid = str(value["data"]["id"]).lower()
            if self.world.index(dataset, rid) is None and not self._is_inserted(dataset, rid):
                raise validation_error(
                    ["body", "data", "relationships", name, "data", "id"],
                    f"{name.replace('_', ' ').capitalize()} {rid} does not exist",
                    value=rid,
                )
            found[name] = rid
        return found

    def _is_inserted(self, dataset: str, rid: str) -> bool:
        return any(found == rid for found, _ in self._inserted.get(dataset, ()))

    def _create_contract(self, request: Request) -> Response:
        # CreateContractRequestFincon: name and is_reverse_charge required, contract_unit and
        # contracting_entity required relationships, contractor optional. The spec answers 200.
        body = self._checked_body(request, "/contracts/", "post")
        data = body["data"]
        attributes = data["attributes"]
        relations = self._relationship_ids(data)
        amount = attributes.get("amount")
        reverse_charge = bool(attributes["is_reverse_charge"])
        dataset = self.world.datasets["contracts"]
        now = self.now_micros()
        row = {
            "name": attributes["name"],
            # The read schema (ReadContractAttributesFincon) requires these as strings, never null:
            # one the request leaves out (or sends as null) reads back as "" (our assumption).
            "contract_number": attributes.get("contract_number") or "",
            "cost_center": attributes.get("cost_center") or "",
            "description": attributes.get("description") or "",
            "status": "DRAFT",
            "contract_type": "STANDARD",
            "is_reverse_charge": reverse_charge,
            "date_contract": attributes.get("date_contract"),
            "date_created": iso_instant(now),
            "contract_unit": relations["contract_unit"],
            "contractor": relations.get("contractor"),
            "contracting_entity": relations["contracting_entity"],
            "amount": _money_body(amount, ["body", "data", "attributes", "amount"])
            if amount
            else money(0, 0),
            "reserve_amount": money(0, 0),
            "booking_account_number": attributes.get("booking_account_number"),
        }
        with self._lock:
            found, index = self._insert(dataset, row)
            self.contract_creations.append({"contract": found, "attributes": dict(row)})
            resource = self._resource(dataset, found, self._row(dataset, index)[1], self._base(request))
        return Response.json({"data": resource, "errors": None})

    def _patch_contract(self, request: Request, rid: str) -> Response:
        body = self._checked_body(request, "/contracts/{id}/", "patch")
        data = body["data"]
        attributes = data["attributes"]
        if str(data["id"]).lower() != rid.lower():
            raise validation_error(
                ["body", "data", "id"], "The id in the body does not match the URL", value=data.get("id")
            )
        relations = self._relationship_ids(data)
        # Only what the request names changes: the schema's default DRAFT for status is not applied
        # to a PATCH without status (it would reopen every contract a client renames).
        changes: dict[str, Any] = {}
        for name in (
            "name",
            "contract_number",
            "cost_center",
            "description",
            "date_contract",
            "booking_account_number",
        ):
            if name in attributes:
                changes[name] = attributes[name]
        for name in _CONTRACT_TEXTS:
            if name in changes and changes[name] is None:
                changes[name] = ""  # a null clears the text; the read schema has no null for it
        if "amount" in attributes:
            amount = attributes["amount"]
            changes["amount"] = (
                None if amount is None else _money_body(amount, ["body", "data", "attributes", "amount"])
            )
        changes.update(relations)
        dataset = self.world.datasets["contracts"]
        status_loc = ["body", "data", "attributes", "status"]
        with self._lock:
            index = self._require("contracts", rid)
            current = self._row(dataset, index)[1]
            before = current["status"]
            if "status" in attributes and attributes["status"] != before:
                status = attributes["status"]
                # UpdateContractAttributes.status: "Multipart contracts cannot change status via the
                # API, and a contractor must be set before the status can be anything other than DRAFT."
                if current["contract_type"] == "MULTIPART":
                    raise validation_error(
                        status_loc, "Multipart contracts cannot change status via the API", value=status
                    )
                changes["status"] = status
            status = changes.get("status", before)
            contractor = changes.get("contractor", current["contractor"])
            if status != "DRAFT" and not contractor:
                raise validation_error(
                    status_loc,
                    "A contractor must be set before the status can be anything other than DRAFT",
                    value=status,
                )
            self._update(dataset, index, changes)
            found, after = self._row(dataset, index)
            self.contract_updates.append(
                {"contract": found, "before": before, "after": after["status"], "changes": changes}
            )
            body = {"data": self._resource(dataset, found, after, self._base(request)), "errors": None}
        return Response.json(body)

    def _register_payment(self, request: Request, rid: str) -> Response:
        # InvoicePayment: payment_date (date), payment_amount_gross (number or decimal string) and
        # payment_comment (string) are all required.
        attributes = self._checked_body(request, "/invoices/{id}/register-payment/", "post")["data"][
            "attributes"
        ]
        loc = ["body", "data", "attributes"]
        amount = attributes["payment_amount_gross"]
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float | str)
            or not _DECIMAL_RE.fullmatch(str(amount))
        ):
            raise validation_error(
                [*loc, "payment_amount_gross"], "Input should be a valid decimal", "decimal_parsing", amount
            )
        if (
            not isinstance(attributes["payment_date"], str)
            or parse_instant(attributes["payment_date"]) is None
        ):
            raise validation_error(
                [*loc, "payment_date"],
                "Input should be a valid date",
                "date_parsing",
                attributes["payment_date"],
            )
        if not isinstance(attributes["payment_comment"], str):
            raise validation_error([*loc, "payment_comment"], "Input should be a valid string", "string_type")
        dataset = self.world.datasets["invoices"]
        with self._lock:
            index = self._require("invoices", rid)
            found, current = self._row(dataset, index)
            state = current["invoice_process_state"]
            if state != "APPROVED":
                raise jsonapi_error(
                    400,
                    "Bad Request",
                    f"A payment can only be registered for an approved invoice (state {state}).",
                )
            gross = Decimal(str(amount))
            changes: dict[str, Any] = {
                "invoice_process_state": "PAID",
                "payment_amount_gross": {"currency": "EUR", "amount": f"{gross:.12f}"},
                "payment_date": attributes["payment_date"][:10],
                "payment_comment": attributes["payment_comment"],
                "payment_created": iso_instant(self.now_micros()),
            }
            self._update(dataset, index, changes)
            found, after = self._row(dataset, index)
            self.payments.append({"invoice": found, **{k: changes[k] for k in ("payment_date", "payment_comment")},
                                  "amount": changes["payment_amount_gross"]["amount"]})  # fmt: skip
            body = {"data": self._resource(dataset, found, after, self._base(request)), "errors": None}
        return Response.json(body, 201)

    def _update_new(self, request: Request, rid: str) -> Response:
        # UpdateNewInvoiceDetailsRequest: data.id required, attributes optional (null: nothing to change)
        attributes = (
            self._checked_body(request, "/invoices/{id}/update-new/", "post")["data"].get("attributes") or {}
        )
        allowed = ("date_discount", "date_due", "date_posted", "date_received", "external_identifier",
                   "internal_identifier", "invoice_type", "unaudited_amount")  # fmt: skip
        changes = {name: attributes[name] for name in allowed if name in attributes}
        if "unaudited_amount" in changes and changes["unaudited_amount"] is not None:
            changes["unaudited_amount"] = _money_body(
                changes["unaudited_amount"], ["body", "data", "attributes", "unaudited_amount"]
            )
        dataset = self.world.datasets["invoices"]
        with self._lock:
            index = self._require("invoices", rid)
            state = self._row(dataset, index)[1]["invoice_process_state"]
            if state != "NEW":
                raise jsonapi_error(
                    400, "Bad Request", f"Only invoices in status New can be updated (state {state})."
                )
            self._update(dataset, index, changes)
            found, after = self._row(dataset, index)
            body = {"data": self._resource(dataset, found, after, self._base(request)), "errors": None}
        return Response.json(body)

    def _submit_invoice(self, request: Request, rid: str) -> Response:
        part = _pdf_part(_form(request), "file")
        dataset = self.world.datasets["invoices"]
        with self._lock:
            self._require("projects", rid)
            now = self.now_micros()
            attributes: dict[str, Any] = {name: None for name in dataset.attributes(0)}
            attributes.update(
                invoice_process_state="NEW",
                is_reverse_charge=False,
                date_created=iso_instant(now),
                date_received=iso_instant(now)[:10],
            )
            invoice_id, _index = self._insert(dataset, attributes)
            self._private[invoice_id] = {"project": rid.lower()}
            document = self._store_document("invoices", invoice_id, part, "INVOICE")
            self.submissions.append({"project": rid.lower(), "invoice": invoice_id, "filename": document.filename,
                                     "bytes": len(part.data)})  # fmt: skip
        created = {
            "id": invoice_id,
            "type": "INVOICE",
            "attributes": {
                "date_created": attributes["date_created"],
                "date_received": attributes["date_received"],
                "invoice_process_state": "NEW",
            },
            "relationships": {
                "documents": {"links": {"related": f"{self._base(request)}/invoices/{invoice_id}/documents/"}}
            },
        }
        return Response.json({"data": created, "errors": None}, 201)

    # -- sandbox control ---------------------------------------------------------------------------
    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        method = request.method
        if path == "credentials" and method == "GET":
            return Response.json({"api_key": self.api_key, "api_token": self.api_token})
        if path == "credentials" and method == "POST":
            try:
                replace = bool((request.json() if request.body else {}).get("replace", True))
            except (ValueError, AttributeError):
                return Response.json({"error": "expected {'replace': true|false}"}, 400)
            key, token = self.mint_credentials(replace=replace)
            return Response.json({"api_key": key, "api_token": token})
        if path == "credentials/revoke" and method == "POST":
            try:
                token = str(request.json()["api_token"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'api_token': '...'}"}, 400)
            return Response.json({"revoked": self.revoke_token(token)})
        if path == "access" and method == "POST":
            try:
                self.access_enabled = bool(request.json()["enabled"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'enabled': true|false}"}, 400)
            return Response.json({"enabled": self.access_enabled})
        if path == "rate_limit" and method == "POST":
            try:
                data = request.json()
                requests = data.get("requests")
                self.rate_limit = (
                    None if requests is None else (int(requests), float(data.get("per_seconds", 1)))
                )
            except (ValueError, TypeError, AttributeError):
                return Response.json(
                    {"error": "expected {'requests': N, 'per_seconds': S} or {'requests': null}"}, 400
                )
            return Response.json({"rate_limit": self.rate_limit})
        if path == "datasets" and method == "GET":
            with self._lock:
                return Response.json(
                    {
                        name: {"rows": ds.count, "inserted": len(self._inserted.get(name, ()))}
                        for name, ds in self.world.datasets.items()
                    }
                )
        logs = {"payments": self.payments, "contract_updates": self.contract_updates,
                "contract_creations": self.contract_creations,
                "submissions": self.submissions, "uploads": self.uploads, "downloads": self.downloads}  # fmt: skip
        if path in logs and method == "GET":
            with self._lock:
                return Response.json(list(logs[path]))
        return super().handle_control(request, path)


def _is_cursor(part: str) -> bool:
    return unquote_plus(part.partition("=")[0]) == "cursor[position]"


def _storage_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(status, body.encode(), "application/xml", {})


def _compress(request: Request, response: Response) -> Response:
    accepted = (request.header("accept-encoding") or "").lower()
    if (
        "gzip" in accepted
        and len(response.body) >= GZIP_MIN_BYTES
        and (response.content_type or "").startswith("application/json")
    ):
        response.body = gzip.compress(response.body, compresslevel=1, mtime=0)
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
    return response


#: Contract attributes the read schema requires as strings (a PATCH may send null for them).
_CONTRACT_TEXTS = ("contract_number", "cost_center", "description")


def _money_body(value: Any, loc: list[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        raise validation_error(loc, "Input should be a valid dictionary", "dict_type", value)
    result = {"currency": str(value.get("currency") or "EUR")}
    for part in ("net", "tax"):
        text = str(value.get(part, "0"))
        if not _DECIMAL_RE.fullmatch(text):
            raise validation_error(
                [*loc, part], "Input should be a valid decimal", "decimal_parsing", value.get(part)
            )
        result[part] = f"{Decimal(text):.12f}"
    return result


def _form(request: Request) -> dict[str, FormPart]:
    try:
        return parse_multipart(request.header("content-type") or "", request.body)
    except ValueError as error:
        raise validation_error(["body"], f"Invalid multipart body: {error}", "value_error") from None


def _pdf_part(parts: Mapping[str, FormPart], name: str) -> FormPart:
    part = parts.get(name)
    if part is None:
        raise validation_error(["body", name], "Field required", "missing")
    if not part.data.startswith(b"%PDF-"):
        raise validation_error(["body", name], "The file must be a valid PDF.", "value_error")
    return part
