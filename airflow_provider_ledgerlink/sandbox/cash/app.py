"""CASH API 3.0 on the wire: the WSDL, the SOAP 1.1 endpoint and the rate limit, routed on the
sandbox's shared :class:`~airflow_provider_ledgerlink.sandbox.server.Router`.

Like CASHWeb, the service description and the endpoint are addressed by query string, whatever the
path: ``GET ?api/3.0/wsdl`` (also ``?wsdl`` and ``?api/3.0&wsdl``) and ``POST ?api/3.0``; anything
else is CASHWeb's 404 page.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from airflow_provider_ledgerlink.sandbox.cash.data import (
    ADMINISTRATIONS,
    API_EMAIL,
    RELATION_NUMBER,
    sandbox_cash_password,
)
from airflow_provider_ledgerlink.sandbox.cash.engine import CashEngine, Parts
from airflow_provider_ledgerlink.sandbox.server import ANY_PATH, Emulator, Request, Response, Router

NAMESPACE = "urn:CashApi"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_QUERY = "api/3.0/wsdl"
ENDPOINT_QUERY = "api/3.0"
REQUESTS_PER_MINUTE = 100

_WSDL_ROUTE = r"/*(?:api/3\.0/wsdl|wsdl|api/3\.0&wsdl)/*"
_ENDPOINT_ROUTE = r"/*api/3\.0/*"


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


# ==================================================================================================
# The WSDL
# ==================================================================================================
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


class CashEmulator(CashEngine, Emulator):
    """CASH API 3.0 on CASHWeb, with a CASHWin that processes offline imports (see the package docs)."""

    name = "cash"
    prefix = "/cash"

    def __init__(
        self,
        seed: int = 42,
        relations: int = 500,
        journal_entries: int = 1000,
        cashwin_interval: float = 30.0,
    ) -> None:
        super().__init__(seed, relations, journal_entries, cashwin_interval)
        self.requests_per_minute: int | None = REQUESTS_PER_MINUTE
        #: The window the rate is counted over (60 s: "per minute"); tests shorten it.
        self.rate_window_seconds = 60.0
        self._router = Router()
        self._router.add("GET", ANY_PATH, self._serve_wsdl, query=_WSDL_ROUTE)
        self._router.add("POST", ANY_PATH, self._soap, query=_ENDPOINT_ROUTE)
        self._router.add("*", ANY_PATH, _not_found)  # every other address and method

    def reset_state(self) -> None:
        with self._lock:
            super().reset_state()
            #: Operations answered with a SOAP fault that quotes the whole request (tests of redaction).
            self.echo_request_in_fault: set[str] = set()
            self.requests: list[float] = []

    # -- HTTP --------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        return self._router.dispatch(request, request.subpath) or _not_found(request)

    def _serve_wsdl(self, request: Request) -> Response:
        return Response(200, self.wsdl(self._location(request)).encode(), "text/xml; charset=utf-8")

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
            operation = self.operations().get(call.operation)
            if operation is None:
                raise SoapFault(f"Function '{call.operation}' doesn't exist", code="SOAP-ENV:Server")
            body = self.call(operation, call.params)
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


# ==================================================================================================
# SOAP helpers
# ==================================================================================================
def _not_found(request: Request) -> Response:
    return Response.text("Not found", 404, "text/html; charset=utf-8")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return "".join(f"<{k}>{_xml_value(v)}</{k}>" for k, v in value.items())
    return escape(str(value))


def _envelope(wrapper: str, parts: Parts) -> Response:
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
