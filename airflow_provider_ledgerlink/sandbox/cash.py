"""An offline CASH API 3.0 (SOAP on CASHWeb) with a simulated CASHWin, for tests and demos.

Mounted at ``/cash``. Like CASHWeb, the service description and the endpoint live on query-string
addresses:

- ``GET  /cash/?api/3.0/wsdl``: the WSDL, describing ``Cash.export`` and ``Cash.import`` (RPC style,
  literal), with the endpoint address of this server. These are the only operations CASH's documents
  and clients show; ``offers_transaction_status = True`` adds ``Cash.getTransaction`` (an operation no
  CASH document names, kept as an option for clients that look for one);
- ``POST /cash/?api/3.0``: the SOAP 1.1 endpoint.

Every call carries the credentials as named parameters (``token``, ``relatie``, ``email``,
``pass``) plus ``administration`` (``admCode``, ``admMap``) and answers with a ``response``
(``code``, ``message``) and the operation's result, shaped exactly like the recorded CASH answers:
``exportResult`` is XML inside a string with the literal ``Content-type: text/xml `` prefix, an import
answers with a ``transaction`` (``id``, ``status`` 1 pending / 2 success / 3 error, ``creation``,
``lastUpdate``, ``administration``, ``initiator``, ``err``), and a failed transaction's ``err`` holds
the ``<cash><errors><error><message/><line/><source/></error></errors></cash>`` document.

Response codes (from the older CASH SOAP API, which 3.0 follows for ``1``): 1 success, 2 login error,
800 export error (e.g. a record not enabled under "Instellen CashWeb API"), 900 import error,
902 transaction does not exist, 903 administration unknown or not enabled for synchronisation.
Going over 100 requests a minute per API user gives HTTP 429 with ``Retry-After`` and a SOAP fault
(CASH does not document what it does; this is the sandbox's choice).

**The simulated CASHWin.** Administration ``DEMO`` (map ``1570``) is kept offline in CASHWin: an
import there returns status 1 (pending). The CASHWin process of the API user ("Inlezen berichten")
looks for instructions every ``cashwin.interval`` seconds (30 by default); a pending import is
validated and applied at the first such moment after it arrived, or never while
``cashwin.running`` is false. Nothing runs in the background: the state of a transaction is worked
out from the clock whenever anything is asked, so the timing is exact and costs no thread.
Administration ``x001`` (map ``1571``, as in the recorded answers) is an online CASHWeb
administration: imports are processed at once and, as recorded, ``lastUpdate`` stays
``0000-00-00 00:00:00``; CASHWin's processing sets it to the moment of processing (our choice). An import is all or nothing: one bad line rejects the whole transaction (status 3).

Data is generated from the seed, never held in memory: relations (0101, with a change date for the
``W|N`` "changed in the last N days" selection), journal lines (0301, balanced sales entries over the
60 days before the anchor 2026-11-20, selectable by booking period with ``T|YYMM|YYMM``), ledger
accounts (0201), journals (0901), and the recorded delivery addresses (2229) of relation 000100.
Records CASHWin (or CASHWeb, online) processed are added to what the exports of their own
administration return, so a client can read an import back.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape

from airflow_provider_ledgerlink.sandbox.data import (
    RowRandom,
    Timeline,
    company_name,
    derive_key,
    iban,
    person_name,
    phone_number,
    street_address,
    wallclock_seconds,
)
from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response

__all__ = [
    "ADMINISTRATIONS",
    "ANCHOR",
    "API_EMAIL",
    "RELATION_NUMBER",
    "CashEmulator",
    "CashWinSimulator",
    "cash_connection_definition",
    "sandbox_cash_password",
]

RELATION_NUMBER = "25583"
API_EMAIL = "api@ledgerlink.example"
API_USER = "271363"
NAMESPACE = "urn:CashApi"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_QUERY = "api/3.0/wsdl"
ENDPOINT_QUERY = "api/3.0"
ANCHOR = datetime(2026, 11, 20)
"""End of the generated history and the sandbox clock's start (Amsterdam wall-clock time)."""
HISTORY_DAYS = 60
REQUESTS_PER_MINUTE = 100
EXPORT_PREFIX = 'Content-type: text/xml <?xml version="1.0" encoding="UTF-8"?>'
ERR_PREFIX = '<?xml version="1.0" encoding="UTF-8"?>\n'


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

_WSDL_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<definitions name="CashApi30" targetNamespace="urn:CashApi"
    xmlns="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:tns="urn:CashApi"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <types>
    <xsd:schema targetNamespace="urn:CashApi">
      <xsd:complexType name="Administration">
        <xsd:sequence>
          <xsd:element name="admCode" type="xsd:string"/>
          <xsd:element name="admMap" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Response">
        <xsd:sequence>
          <xsd:element name="code" type="xsd:int"/>
          <xsd:element name="message" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Initiator">
        <xsd:sequence>
          <xsd:element name="relation" type="xsd:string"/>
          <xsd:element name="user" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="Transaction">
        <xsd:sequence>
          <xsd:element name="id" type="xsd:string"/>
          <xsd:element name="status" type="xsd:int"/>
          <xsd:element name="creation" type="xsd:string"/>
          <xsd:element name="lastUpdate" type="xsd:string"/>
          <xsd:element name="administration" type="tns:Administration"/>
          <xsd:element name="initiator" type="tns:Initiator"/>
          <xsd:element name="err" type="xsd:string"/>
        </xsd:sequence>
      </xsd:complexType>
    </xsd:schema>
  </types>
{messages}
  <portType name="CashPortType">
{port_operations}
  </portType>
  <binding name="CashBinding" type="tns:CashPortType">
    <soap:binding style="rpc" transport="http://schemas.xmlsoap.org/soap/http"/>
{binding_operations}
  </binding>
  <service name="CashApi">
    <port name="CashPort" binding="tns:CashBinding">
      <soap:address location="{location}"/>
    </port>
  </service>
</definitions>
"""

_CREDENTIALS = (
    ("token", "xsd:string"),
    ("relatie", "xsd:string"),
    ("email", "xsd:string"),
    ("pass", "xsd:string"),
)
_ADMINISTRATION = (("administration", "tns:Administration"),)
_FORMAT = (("formaat", "xsd:string"),)
_RESPONSE = (("response", "tns:Response"),)
#: Operation → (input parts, output parts), in the order CASH's clients send them.
_OPERATIONS: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {
    "Cash.export": (
        (*_CREDENTIALS, ("export", "xsd:string"), *_ADMINISTRATION, *_FORMAT),
        (*_RESPONSE, ("exportResult", "xsd:string")),
    ),
    "Cash.import": (
        (*_CREDENTIALS, ("import", "xsd:string"), *_ADMINISTRATION, *_FORMAT),
        (*_RESPONSE, ("transaction", "tns:Transaction")),
    ),
    "Cash.getTransaction": (
        (*_CREDENTIALS, ("id", "xsd:string"), *_ADMINISTRATION),
        (*_RESPONSE, ("transaction", "tns:Transaction")),
    ),
}


def _message(name: str, parts: tuple[tuple[str, str], ...]) -> str:
    lines = "".join(f'\n    <part name="{part}" type="{kind}"/>' for part, kind in parts)
    return f'  <message name="{name}">{lines}\n  </message>'


def _port_operation(name: str) -> str:
    return (
        f'    <operation name="{name}">\n      <input message="tns:{name}Request"/>\n'
        f'      <output message="tns:{name}Response"/>\n    </operation>'
    )


_BINDING_OPERATION = """    <operation name="{name}">
      <soap:operation soapAction="urn:CashApi#{name}" style="rpc"/>
      <input><soap:body use="literal" namespace="urn:CashApi"/></input>
      <output><soap:body use="literal" namespace="urn:CashApi"/></output>
    </operation>"""


def sandbox_cash_password(seed: int | str = 42) -> str:
    """The API user's password the sandbox accepts."""
    return "Cw-" + hashlib.sha256(f"ledgerlink-sandbox:{seed}:cash-password".encode()).hexdigest()[:20]


def cash_connection_definition(
    cash_url: str, seed: int | str = 42, administration: str = "DEMO"
) -> dict[str, Any]:
    """Airflow's JSON form of a ``ledgerlink_cash`` connection to the emulator at ``cash_url``
    (administration ``DEMO``: kept offline in CASHWin; ``x001``: online in CASHWeb)."""
    found = next(a for a in ADMINISTRATIONS if a.code == administration)
    return {
        "conn_type": "ledgerlink_cash",
        "host": f"{cash_url.rstrip('/')}/?{WSDL_QUERY}",
        "login": API_EMAIL,
        "password": sandbox_cash_password(seed),
        "extra": {
            "relation_number": RELATION_NUMBER,
            "administration_code": found.code,
            "administration_map": found.map,
        },
    }


def amsterdam_now_text(seconds: float) -> str:
    """Wall-clock seconds as CASH writes times: ``YYYY-MM-DD HH:MM:SS``."""
    return (datetime(1970, 1, 1) + timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


# ==================================================================================================
# Records as CASH writes them
# ==================================================================================================
Fields = tuple[tuple[str, str], ...]


def render_record(code: str, fields: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<F{f}>{escape(v)}</F{f}>" for f, v in fields)
    return f"<R{code}>{body}</R{code}>"


def render_export(records: Iterable[tuple[str, Fields]]) -> str:
    return EXPORT_PREFIX + "<cash>" + "".join(render_record(c, f) for c, f in records) + "</cash>"


def cash_amount(cents: int) -> str:
    """``-126450`` → ``-1264,50``: CASH writes decimals with a comma."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100},{cents % 100:02d}"


def parse_amount(text: str) -> Decimal | None:
    value = text.strip().replace(" ", "")
    negative = value.endswith("-")
    value = value.rstrip("-")
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return -amount if negative else amount


# ==================================================================================================
# Generated data
# ==================================================================================================
class _Relations:
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


class _JournalLines:
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


# ==================================================================================================
# Transactions and the CASHWin process
# ==================================================================================================
@dataclass
class Transaction:
    id: str
    administration: Administration
    records: list[tuple[str, Fields]]
    created: float  # sandbox wall-clock seconds
    status: int = 1
    updated: float | None = None
    err: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "creation": amsterdam_now_text(self.created),
            "lastUpdate": "0000-00-00 00:00:00" if self.updated is None else amsterdam_now_text(self.updated),
            "administration": {"admCode": self.administration.code, "admMap": self.administration.map},
            "initiator": {"relation": RELATION_NUMBER, "user": API_USER},
            "err": self.err,
        }


class CashWinSimulator:
    """The CASHWin process running function S0067 ("Inlezen berichten") for the API user.

    It looks for instructions every ``interval`` seconds from the moment it was (re)started; a
    pending import is processed at the first look after it arrived. ``running = False`` stops it.
    """

    def __init__(self, interval: float = 30.0, running: bool = True, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._interval = float(interval)
        self._running = running
        self._started = clock()

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        if value <= 0:
            raise ValueError("the CASHWin interval must be positive")
        self._interval = float(value)
        self._started = self._clock()

    @property
    def running(self) -> bool:
        return self._running

    @running.setter
    def running(self, value: bool) -> None:
        if value and not self._running:
            self._started = self._clock()
        self._running = bool(value)

    def pickup_after(self, arrived: float) -> float | None:
        """The monotonic time CASHWin picks up an instruction that arrived at ``arrived``."""
        if not self._running:
            return None
        since = max(0.0, arrived - self._started)
        cycles = int(since // self._interval) + 1
        return self._started + cycles * self._interval


# ==================================================================================================
# The emulator
# ==================================================================================================
class SoapFault(Exception):
    def __init__(self, message: str, code: str = "SOAP-ENV:Client", status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


@dataclass
class _Call:
    operation: str
    params: dict[str, Any] = field(default_factory=dict)


class CashEmulator(Emulator):
    """CASH API 3.0 on CASHWeb, with a CASHWin that processes offline imports (see the module docs)."""

    name = "cash"
    prefix = "/cash"

    def __init__(
        self,
        seed: int = 42,
        relations: int = 500,
        journal_entries: int = 1000,
        cashwin_interval: float = 30.0,
    ) -> None:
        self.seed = seed
        self.password = sandbox_cash_password(seed)
        self._relation_count = relations
        self._entry_count = journal_entries
        self._build_data()
        self.cashwin = CashWinSimulator(cashwin_interval)
        self.enabled_records: set[str] = set(DEFAULT_ENABLED_RECORDS)
        self.requests_per_minute: int | None = REQUESTS_PER_MINUTE
        #: The window the rate is counted over (60 s: "per minute"); tests shorten it.
        self.rate_window_seconds = 60.0
        self._lock = threading.RLock()
        self._clock_origin = time.monotonic()
        self.reset_state()

    def _build_data(self) -> None:
        self.relations = _Relations(self.seed, self._relation_count)
        self.journal = _JournalLines(self.seed, self._entry_count, self._relation_count)

    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        used = []
        if "CASH_0101" in scale:
            self._relation_count = int(scale["CASH_0101"])
            used.append("CASH_0101")
        if "CASH_0301" in scale:
            self._entry_count = int(scale["CASH_0301"])
            used.append("CASH_0301")
        if used:
            self._build_data()
        return used

    def reset_state(self) -> None:
        with getattr(self, "_lock", threading.RLock()):
            self.password = sandbox_cash_password(self.seed)
            self._password_generation = 0
            #: True also serves ``Cash.getTransaction`` (no CASH document names it; off by default).
            self.offers_transaction_status = False
            self.transactions: dict[str, Transaction] = {}
            #: Operations answered with a SOAP fault that quotes the whole request (tests of redaction).
            self.echo_request_in_fault: set[str] = set()
            #: Records imported, per (administration code, record): each administration has its own.
            self.imported: dict[tuple[str, str], list[Fields]] = {}
            #: (administration, journal, document number, YY) of every journal entry booked by import.
            self.booked_documents: set[tuple[str, str, str, str]] = set()
            self.requests: list[float] = []
            self.import_calls = 0

    # -- the sandbox clock -------------------------------------------------------------------------
    def now(self) -> float:
        """Amsterdam wall-clock seconds: the anchor when the emulator was created, then real time."""
        return wallclock_seconds(ANCHOR) + (time.monotonic() - self._clock_origin)

    def _wall(self, monotonic: float) -> float:
        return wallclock_seconds(ANCHOR) + (monotonic - self._clock_origin)

    # -- HTTP --------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        query = request.query_string.strip("/").lower()
        if request.method == "GET" and query in (WSDL_QUERY, "wsdl", f"{ENDPOINT_QUERY}&wsdl"):
            return Response(200, self.wsdl(self._location(request)).encode(), "text/xml; charset=utf-8")
        if request.method == "POST" and query == ENDPOINT_QUERY:
            return self._soap(request)
        return Response.text("Not found", 404, "text/html; charset=utf-8")

    def _location(self, request: Request) -> str:
        host = request.header("host") or "127.0.0.1"
        return f"http://{host}{self.prefix}/?{ENDPOINT_QUERY}"

    def wsdl(self, location: str) -> str:
        operations = [n for n in _OPERATIONS if self.offers_transaction_status or n != "Cash.getTransaction"]
        messages = [
            _message(f"{name}{suffix}", parts)
            for name in operations
            for suffix, parts in zip(("Request", "Response"), _OPERATIONS[name], strict=True)
        ]
        return _WSDL_TEMPLATE.format(
            location=escape(location, {'"': "&quot;"}),
            messages="\n".join(messages),
            port_operations="\n".join(_port_operation(n) for n in operations),
            binding_operations="\n".join(_BINDING_OPERATION.format(name=n) for n in operations),
        )

    def new_password(self) -> str:
        """A new password for the API user, as an administrator sets in CASHWeb; the old one stops
        working at once."""
        with self._lock:
            self._password_generation += 1
            self.password = sandbox_cash_password(f"{self.seed}:{self._password_generation}")
            return self.password

    def handle_control(self, request: Request, path: str) -> Response:
        """``POST /_sandbox/cash/cashwin`` ``{"running": false, "interval": 0.5,
        "offers_transaction_status": true}``; GET reads it.
        ``GET /_sandbox/cash/credentials`` reads the API user's password, ``POST`` sets a new one."""
        if path.strip("/") == "credentials":
            if request.method == "POST":
                self.new_password()
            return Response.json(
                {"email": API_EMAIL, "relation_number": RELATION_NUMBER, "password": self.password}
            )
        if path.strip("/") == "cashwin":
            if request.method in ("POST", "PUT"):
                try:
                    data = request.json()
                    if "interval" in data:
                        self.cashwin.interval = float(data["interval"])
                    if "running" in data:
                        self.cashwin.running = bool(data["running"])
                    if "offers_transaction_status" in data:
                        self.offers_transaction_status = bool(data["offers_transaction_status"])
                except (ValueError, TypeError, AttributeError) as error:
                    return Response.json({"error": str(error)}, 400)
            return Response.json(
                {
                    "running": self.cashwin.running,
                    "interval": self.cashwin.interval,
                    "offers_transaction_status": self.offers_transaction_status,
                }
            )
        return super().handle_control(request, path)

    # -- SOAP --------------------------------------------------------------------------------------
    def _soap(self, request: Request) -> Response:
        try:
            call = self._parse(request.body)
            limited = self._over_rate(call)
            if limited is not None:
                return limited
            if call.operation in self.echo_request_in_fault:
                # A hostile (or careless) server that quotes the request, credentials and all, in its
                # fault: what a client must never let reach a log, an event or an exception.
                text = request.body.decode("utf-8", "replace")
                raise SoapFault(f"Invalid request: {text}", code="SOAP-ENV:Server")
            body = self._dispatch(call)
        except SoapFault as fault:
            return _fault_response(fault)
        return _envelope(call.operation + "Response", body)

    def _parse(self, body: bytes) -> _Call:
        head = body[:2048].lower()
        if b"<!doctype" in head or b"<!entity" in body.lower():
            raise SoapFault("DTDs and entity declarations are not allowed")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as error:
            raise SoapFault(f"Bad Request: {error}") from None
        envelope_body = next((c for c in root if _local(c.tag) == "Body"), None)
        if envelope_body is None or not len(envelope_body):
            raise SoapFault("Bad Request: no SOAP body")
        element = envelope_body[0]
        params: dict[str, Any] = {}
        for child in element:
            name = _local(child.tag)
            if len(child):
                params[name] = {_local(c.tag): (c.text or "") for c in child}
            else:
                params[name] = child.text or ""
        return _Call(_local(element.tag), params)

    def _over_rate(self, call: _Call) -> Response | None:
        limit = self.requests_per_minute
        if not limit:
            return None
        now = time.monotonic()
        window = self.rate_window_seconds
        with self._lock:
            self.requests = [t for t in self.requests if t > now - window]
            if len(self.requests) >= limit:
                retry_after = max(1, int(self.requests[0] + window - now) + 1)
                fault = SoapFault(f"Too many requests: at most {limit} requests per minute", status=429)
                response = _fault_response(fault)
                response.headers["Retry-After"] = str(retry_after)
                return response
            self.requests.append(now)
        return None

    def _dispatch(self, call: _Call) -> list[tuple[str, Any]]:
        handlers = {"Cash.export": self._export, "Cash.import": self._import}
        if self.offers_transaction_status:
            handlers["Cash.getTransaction"] = self._get_transaction
        handler = handlers.get(call.operation)
        if handler is None:
            raise SoapFault(f"Function '{call.operation}' doesn't exist", code="SOAP-ENV:Server")
        params = call.params
        if (params.get("relatie"), params.get("email"), params.get("pass")) != (
            RELATION_NUMBER,
            API_EMAIL,
            self.password,
        ):
            return [_response(2, "Error during login")]
        administration = params.get("administration")
        found = None
        if isinstance(administration, Mapping):
            found = next(
                (
                    a
                    for a in ADMINISTRATIONS
                    if a.code.lower() == str(administration.get("admCode", "")).lower()
                    and a.map == str(administration.get("admMap", "")).strip()
                ),
                None,
            )
        if found is None:
            return [_response(903, "Administration not found or not enabled for synchronisation")]
        with self._lock:
            self._process_due()
            return handler(params, found)

    # -- Cash.export -------------------------------------------------------------------------------
    def _export(self, params: Mapping[str, Any], administration: Administration) -> list[tuple[str, Any]]:
        command = str(params.get("export") or "").strip()
        match = re.fullmatch(r"(\d{3,4})([A-Za-z]*)((?:\|[^|]*)*)", command)
        if not match:
            return [_response(800, f"Invalid export instruction '{command}'")]
        record = match.group(1).zfill(4)
        letters = match.group(2).upper().replace("X", "")
        args = [a for a in match.group(3).split("|")[1:]]
        if record not in self.enabled_records:
            return [_response(800, f"Record {record} is not enabled for the API")]
        try:
            records = list(self._records(record, letters, args, administration))
        except ValueError as error:
            return [_response(800, str(error))]
        return [_response(1, "Success"), ("exportResult", render_export(records))]

    def _records(
        self, record: str, letters: str, args: list[str], administration: Administration
    ) -> Iterator[tuple[str, Fields]]:
        imported = {
            code: rows for (admin, code), rows in self.imported.items() if admin == administration.code
        }
        key = args[0].strip() if args and not letters else None
        if record == "0101":
            indexes: Iterable[int] = range(self.relations.count)
            if letters == "W":
                days = int(args[0]) if args and args[0].strip().isdigit() else 0
                if days < 1:
                    raise ValueError("Property W needs the number of days (W|N)")
                today = int(self.now() // 86400) * 86400
                indexes = self.relations.changed_since(today - (days - 1) * 86400)
            elif letters:
                raise ValueError(f"Unknown property '{letters}' for record 0101")
            for i in indexes:
                fields = self.relations.fields(i)
                if key is None or fields[0][1] == key.zfill(6):
                    yield record, fields
            for fields in imported.get(record, []):
                if letters != "W" and (key is None or dict(fields).get("0101") == key.zfill(6)):
                    yield record, fields
        elif record == "0301":
            first = last = None
            if letters == "T":
                first, last = ([*args, "", ""])[:2]
                if not re.fullmatch(r"\d{4}", first) or not re.fullmatch(r"\d{4}", last):
                    raise ValueError("Property T needs a period range (T|YYMM|YYMM)")
            elif letters:
                raise ValueError(f"Unknown property '{letters}' for record 0301")
            for k in self.journal.in_periods(first, last):
                for fields in self.journal.entry(k):
                    yield record, fields
            for fields in imported.get(record, []):
                period = dict(fields).get("0301") or dict(fields).get("0302", "")[:4]
                if first is None or (last is not None and first <= period <= last):
                    yield record, fields
        elif record == "0201":
            for account, description, kind, vat in LEDGER_ACCOUNTS:
                yield record, (("0201", account), ("0203", description), ("0204", kind), ("0242", vat))
        elif record == "0901":
            for code, name, kind, account in JOURNALS:
                yield record, (("0901", code), ("0902", name), ("0903", kind), ("0201", account))
        elif record == "2229":
            stored = [*RECORDED_DELIVERY_ADDRESSES, *imported.get(record, [])]
            for fields in stored:
                if key is None or dict(fields).get("0101") == key.zfill(6):
                    yield record, fields
        else:
            yield from ((record, f) for f in imported.get(record, []))

    # -- Cash.import -------------------------------------------------------------------------------
    def _import(self, params: Mapping[str, Any], administration: Administration) -> list[tuple[str, Any]]:
        self.import_calls += 1
        text = str(params.get("import") or "")
        try:
            records = _parse_import(text)
        except ValueError as error:
            return [_response(900, f"Import error: {error}")]
        disabled = sorted({code for code, _ in records} - self.enabled_records)
        if disabled:
            return [_response(900, f"Record {disabled[0]} is not enabled for the API")]
        transaction = Transaction(
            id=uuid.uuid4().hex[:13], administration=administration, records=records, created=self.now()
        )
        self.transactions[transaction.id] = transaction
        if not administration.offline:
            self._apply(transaction, None)
        return [_response(1, "Success"), ("transaction", transaction.as_dict())]

    def _get_transaction(
        self, params: Mapping[str, Any], administration: Administration
    ) -> list[tuple[str, Any]]:
        transaction = self.transactions.get(str(params.get("id") or "").strip())
        if transaction is None or transaction.administration != administration:
            return [_response(902, "Transaction does not exist")]
        return [_response(1, "Success"), ("transaction", transaction.as_dict())]

    def _process_due(self) -> None:
        """Let CASHWin do the work it would have done by now (see the module docs)."""
        now = time.monotonic()
        for transaction in self.transactions.values():
            if transaction.status != 1:
                continue
            arrived = self._clock_origin + (transaction.created - wallclock_seconds(ANCHOR))
            pickup = self.cashwin.pickup_after(arrived)
            if pickup is not None and pickup <= now:
                self._apply(transaction, self._wall(pickup))

    def _apply(self, transaction: Transaction, at: float | None) -> None:
        errors = [
            (line, message, code, fields)
            for line, (code, fields) in enumerate(transaction.records, start=1)
            for message in self._validate(code, fields, transaction.administration)
        ]
        errors += self._balance_errors(transaction.records)
        errors += self._already_booked(transaction.administration, transaction.records)
        transaction.updated = at
        if errors:
            transaction.status = 3
            transaction.err = _error_document(errors)
            return
        transaction.status = 2
        for code, fields in transaction.records:
            self.imported.setdefault((transaction.administration.code, code), []).append(fields)
            values = dict(fields)
            if code == "0301" and values.get("0303"):
                self.booked_documents.add(
                    (
                        transaction.administration.code,
                        values.get("0901", ""),
                        values["0303"].zfill(6),
                        values.get("0302", "")[:2],
                    )
                )

    def _validate(self, code: str, fields: Fields, administration: Administration) -> Iterator[str]:
        values = dict(fields)
        relation = values.get("0101")
        if relation is not None and not self._relation_exists(relation, administration):
            yield f"Ongeldige waarde 0101={relation}"
        if code == "0301":
            for required in ("0302", "0901", "0303", "0201", "0307"):
                if not values.get(required, "").strip():
                    yield f"Rubriek {required} is verplicht"
            account = values.get("0201")
            if account and account not in {a[0] for a in LEDGER_ACCOUNTS}:
                yield f"Ongeldige waarde 0201={account}"
            journal = values.get("0901")
            if journal and journal not in {j[0] for j in JOURNALS}:
                yield f"Ongeldige waarde 0901={journal}"
            booked = values.get("0302", "")
            if booked and not _is_yymmdd(booked):
                yield f"Ongeldige waarde 0302={booked}"
            amount = values.get("0307")
            if amount and parse_amount(amount) is None:
                yield f"Ongeldige waarde 0307={amount}"
            if values.get("0701") and not (relation and values.get("0309")):
                yield "Subadministratie vereist relatienummer (0101) en factuurnummer (0309)"

    def _balance_errors(self, records: list[tuple[str, Fields]]) -> list[tuple[int, str, str, Fields]]:
        totals: dict[tuple[str, str], tuple[Decimal, int, Fields]] = {}
        for line, (code, fields) in enumerate(records, start=1):
            if code != "0301":
                continue
            values = dict(fields)
            amount = parse_amount(values.get("0307", "")) or Decimal(0)
            key = (values.get("0901", ""), values.get("0303", ""))
            total, first, first_fields = totals.get(key, (Decimal(0), line, fields))
            totals[key] = (total + amount, first, first_fields)
        return [
            (first, f"Boeking {journal}/{document} is niet in evenwicht ({total})", "0301", fields)
            for (journal, document), (total, first, fields) in totals.items()
            if total != 0
        ]

    def _document_booked(self, administration: str, journal: str, document: str, year: str) -> bool:
        """Whether journal ``journal`` already holds document number ``document`` in year ``YY``
        (a document number is unique per year and journal)."""
        number = document.strip().zfill(6)
        generated = journal == "VK" and number.isdigit() and 1 <= int(number) <= self.journal.entries
        if generated and self.journal.booking_date(int(number) - 1).strftime("%y") == year:
            return True
        return (administration, journal, number, year) in self.booked_documents

    def _already_booked(
        self, administration: Administration, records: list[tuple[str, Fields]]
    ) -> list[tuple[int, str, str, Fields]]:
        """CASHWin refuses a journal entry whose document number is already booked in that journal and
        year (the sandbox's wording of the refusal; see docs/sandbox.md)."""
        errors = []
        seen: set[tuple[str, str, str]] = set()
        for line, (code, fields) in enumerate(records, start=1):
            values = dict(fields)
            if code != "0301" or not values.get("0303"):
                continue
            key = (values.get("0901", ""), values["0303"].zfill(6), values.get("0302", "")[:2])
            if key in seen:
                continue
            seen.add(key)
            if self._document_booked(administration.code, *key):
                message = f"Stuknummer {key[1]} is al geboekt in dagboek {key[0]}"
                errors.append((line, message, code, fields))
        return errors

    def _relation_exists(self, number: str, administration: Administration) -> bool:
        if not number.isdigit():
            return False
        index = int(number) - 100
        if 0 <= index < self.relations.count:
            return True
        imported = self.imported.get((administration.code, "0101"), [])
        return any(dict(f).get("0101") == number.zfill(6) for f in imported)


# ==================================================================================================
# SOAP helpers
# ==================================================================================================
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _is_yymmdd(text: str) -> bool:
    if not re.fullmatch(r"\d{6}", text):
        return False
    try:
        datetime.strptime(text, "%y%m%d")
    except ValueError:
        return False
    return True


def _response(code: int, message: str) -> tuple[str, Any]:
    return ("response", {"code": code, "message": message})


def _xml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "".join(f"<{k}>{_xml_value(v)}</{k}>" for k, v in value.items())
    return escape(str(value))


def _envelope(wrapper: str, parts: list[tuple[str, Any]]) -> Response:
    inner = "".join(f"<{name}>{_xml_value(value)}</{name}>" for name, value in parts)
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:ns1="{NAMESPACE}">'
        f"<SOAP-ENV:Body><ns1:{wrapper}>{inner}</ns1:{wrapper}></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    )
    return Response(200, text.encode(), "text/xml; charset=utf-8")


def _fault_response(fault: SoapFault) -> Response:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body><SOAP-ENV:Fault>'
        f"<faultcode>{fault.code}</faultcode><faultstring>{escape(fault.message)}</faultstring>"
        "</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>\n"
    )
    return Response(fault.status, text.encode(), "text/xml; charset=utf-8")


def _parse_import(text: str) -> list[tuple[str, Fields]]:
    if "<!doctype" in text[:2048].lower() or "<!entity" in text.lower():
        raise ValueError("DTDs and entity declarations are not allowed")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as error:
        raise ValueError(f"the XML is not well-formed ({error})") from None
    if root.tag.upper() != "CASH":
        raise ValueError("the root element must be CASH")
    records = []
    for element in root:
        match = re.fullmatch(r"R?(\d{3,4})", element.tag)
        if not match:
            raise ValueError(f"unknown record element <{element.tag}>")
        fields = []
        for child in element:
            field_match = re.fullmatch(r"F(\d{4})", child.tag)
            if not field_match:
                raise ValueError(f"unknown field element <{child.tag}> in <{element.tag}>")
            fields.append((field_match.group(1), (child.text or "").strip()))
        records.append((match.group(1).zfill(4), tuple(fields)))
    if not records:
        raise ValueError("no records to import")
    return records


def _error_document(errors: list[tuple[int, str, str, Fields]]) -> str:
    items = "".join(
        f"<error><message>{escape(message)}</message><line>{line}</line>"
        f"<source>{escape(code + '|' + ''.join(f'{f}={v}|' for f, v in fields))}</source></error>"
        for line, message, code, fields in errors
    )
    return f"{ERR_PREFIX}<cash><errors>{items}</errors></cash>\n"
