"""The Alasco account's data: ids that encode their row number, value formats, text pools, and
the datasets (one generator per resource type, with the filters its endpoint allows)."""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from typing import Any

from airflow_provider_ledgerlink.sandbox.data import MASK64, RowRandom, derive_key, mix64

ANCHOR = datetime(2026, 11, 20, tzinfo=timezone.utc)
"""End of the generated timelines and start of the sandbox clock (UTC)."""


PAGE_SIZE = 100
REPORTING_PAGE_SIZE = 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY = 86400
_ANCHOR_MICROS = int((ANCHOR - _EPOCH).total_seconds()) * 1_000_000
_ANCHOR_DAY = _ANCHOR_MICROS // (_DAY * 1_000_000)


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
