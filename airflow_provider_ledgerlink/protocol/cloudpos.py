"""The wire protocol of CloudPOS (cloudpos.be), API V1 plus the V2 ``weborder.insert`` call: the V1
function table, Brussels wall-clock times, V1 requests, answer envelopes, weborder states, error codes.

Sources: CloudPOS's JSON API V1 reference (the seed ``003_822423adf79286b0.txt``: the URL shape, 500
requests a day, 5 bad logins block the IP, the global error codes 1001-1005, every get-function with
its filters, response fields and error codes); open questions in the CloudPOS page of the docs. Wire
facts:

* V1: ``https://cloudpos.be/api/?licname=<licence>&token=<token>&get-products``: the credentials
  in the query string, the function as a bare flag; filters of the reading functions go in a POST
  body. HTTPS is required;
* answers carry ``"success": 1`` or an ``"errorcode"``: 1001/1002 bad credentials, 1003 the daily
  limit ("next request possible '…'"), 1004 the IP is blocked ("till '…'"), 1005 no licence for the
  module, 2000 nothing found, 2001-2003 the function's own meaning;
* 500 requests a day per licence; 5 bad logins block the caller's IP for 30 minutes;
* V2 (as one public client uses it, not from the vendor's documentation): ``POST …/api/v2/weborder.insert``
  with the headers ``Licensename`` and ``Token`` and a JSON body; the answer carries ``weborderid``.

Nothing here needs Airflow, a connection or a hook: ``hooks/cloudpos.py`` holds the connection, the
shared daily budget and bad-login guard, the gated transports and the calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import httpx

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    BudgetExhaustedError,
    LedgerLinkError,
    PermissionDeniedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import default_error

# ==================================================================================================
# Shapes: the V1 functions, answer envelopes, weborder states and V1 requests
# ==================================================================================================
VENDOR = "CloudPOS"


DEFAULT_BASE_URL = "https://cloudpos.be/api/"


BRUSSELS = ZoneInfo("Europe/Brussels")


DEFAULT_DAILY_LIMIT = 500


DOCS = "docs/cloudpos.md"


@dataclass(frozen=True)
class Function:
    """One V1 reading function, as CloudPOS's V1 reference documents it.

    :param flag: the bare query flag (``get-products``).
    :param label: human words for messages.
    :param filters: the reference's "Post filter" fields (form body).
    :param url_filters: the reference's "Url filter" parameters (``&start=1``); ``clockinclockout``
        is a bare flag.
    :param window: how an extract selects a window: ``date`` (by day with ``&date=YYYY-MM-DD``,
        continued by id range with ``&start=``/``&end=``, each record checked on ``date_field``),
        ``modtime`` (client-side on the unix ``modtime``), or ``None`` (a full copy every time).
    :param sensitive: fields left out unless asked for (a national register number).
    :param codes: the function's own error codes (2001…) with what they mean.
    :param writes: the function creates something (a VAT ticket), so it is not retried.
    """

    flag: str
    label: str
    filters: tuple[str, ...] = ()
    url_filters: tuple[str, ...] = ()
    window: str | None = None
    date_field: str = "date"
    sensitive: tuple[str, ...] = ()
    codes: Mapping[int, str] = field(default_factory=dict)
    #: it creates something at CloudPOS (a VAT ticket): never sent twice blindly.
    writes: bool = False


#: The flag-only URL filter of get-orders ("enkel arbeid in en uit": only labour in and out).
FLAG_FILTERS = ("clockinclockout",)


_SIGNED_CODES = {2001: "Document nr can not be empty", 2002: "Document nr already in use"}


FUNCTIONS: dict[str, Function] = {
    "categories": Function("get-categories", "categories"),
    "products": Function("get-products", "products", window="modtime"),
    "subproducts": Function("get-subproducts", "subproducts", window="modtime"),
    "customers": Function("get-customers", "customers", window="modtime"),
    "users": Function("get-users", "users", sensitive=("secnr",)),
    "tables": Function("get-tables", "tables"),
    "payment": Function("get-payment", "payment methods"),
    "printers": Function("get-printers", "printers"),
    "orders": Function(
        "get-orders",
        "orders",
        url_filters=("start", "end", "date", "clockinclockout"),
        window="date",
        date_field="ordertime",
    ),
    "invoices": Function("get-invoices", "invoices", url_filters=("start", "end", "date"), window="date"),
    "confirmed_weborder": Function(
        "get-confirmedweborder",
        "confirmed weborder",
        filters=("weborderid",),
        # The reference: 2001 "weborder not confirmed", 2002 "weborderid can not be empty",
        # 2003 "weborderid does not exist".
        codes={2001: "pending", 2002: "no_weborderid", 2003: "not_found"},
    ),
    "invoice_signed": Function(
        "get-invoicesigned", "signed invoice", filters=("documentnr",), codes=_SIGNED_CODES, writes=True
    ),
    "offer_signed": Function(
        "get-offersigned", "signed offer", filters=("documentnr",), codes=_SIGNED_CODES, writes=True
    ),
    "creditnote_signed": Function(
        "get-creditnotesigned",
        "signed credit note",
        filters=("documentnr",),
        codes=_SIGNED_CODES,
        writes=True,
    ),
    "reservation_persons": Function(
        "get-reservationpersons",
        "reservation persons",
        filters=("date",),
        codes={2001: "Date can not be empty"},
    ),
    "reservation_hours": Function(
        "get-reservationhours",
        "reservation hours",
        filters=("date", "persons"),
        codes={2001: "Date can not be empty", 2002: "Persons can not be empty"},
    ),
    "gift_vouchers": Function("get-giftvoucher", "gift vouchers", window="modtime"),
    "coupons": Function("get-coupon", "coupons", url_filters=("start", "end")),
    "customer_credits": Function("get-customercredits", "customer credits", url_filters=("customerid",)),
}


_BY_FLAG = {function.flag: name for name, function in FUNCTIONS.items()}


@dataclass(frozen=True)
class Envelope:
    """A V1/V2 answer, read tolerantly: ``code`` is ``None`` on success."""

    code: int | None
    message: str
    records: list[dict[str, Any]]


_MESSAGE_KEYS = ("message", "error", "errormessage", "error_message", "msg")


_CONTROL_KEYS = {"success", "errorcode", "error_code", *_MESSAGE_KEYS}


@dataclass(frozen=True)
class WeborderStatus:
    """What ``get-confirmedweborder`` said about one weborder.

    ``state`` is ``confirmed``, ``pending`` (2001, not confirmed yet), ``no_weborderid`` (2002, the
    weborderid reached CloudPOS empty) or ``not_found`` (2003, the weborderid does not exist).
    """

    weborder_id: str
    state: str
    message: str = ""
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def confirmed_time(self) -> datetime | None:
        """``webordertime``: the pick-up or delivery time the restaurant confirmed (Brussels time)."""
        moment = parse_vendor_time(self.record.get("webordertime"))
        return moment.astimezone(BRUSSELS) if moment is not None else None

    def as_event(self) -> dict[str, Any]:
        """A JSON-safe summary (for XCom and trigger events)."""
        moment = self.confirmed_time
        return {
            "weborder_id": self.weborder_id,
            "state": self.state,
            "message": self.message,
            "confirmed_time": moment.isoformat() if moment else None,
            "confirmed_time_utc": moment.astimezone(timezone.utc).isoformat() if moment else None,
            "record": self.record,
        }


class _Licensed(Protocol):
    """What building a V1 request needs from the connection's settings (``CloudPosSettings``)."""

    @property
    def v1_query_prefix(self) -> str:
        """``licname=<licence>``, URL-encoded: the start of every V1 query string."""
        ...


@dataclass(frozen=True)
class _V1Request:
    method: str
    url: str
    operation: str
    record_key: str
    kwargs: dict[str, Any]


# ==================================================================================================
# Requests: function names, Brussels wall-clock times, V1 requests, windows, weborders
# ==================================================================================================
def function_named(name: str) -> tuple[str, Function]:
    """``("products", …)`` from ``products``, ``get-products`` or ``get_products``."""
    key = name.strip().lower().replace("_", "-")
    if key in _BY_FLAG:
        return _BY_FLAG[key], FUNCTIONS[_BY_FLAG[key]]
    short = key.removeprefix("get-").replace("-", "_")
    if short in FUNCTIONS:
        return short, FUNCTIONS[short]
    known = ", ".join(sorted(FUNCTIONS))
    raise ValidationError(VENDOR, f"call {name!r}", f"unknown function {name!r}", hint=f"Use one of: {known}")


def to_vendor_time(moment: datetime) -> str:
    """A filter value: Brussels wall-clock time, ``YYYY-MM-DD HH:MM:SS``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M:%S")


def _filter_text(key: str, value: Any) -> str:
    """A filter value as CloudPOS reads it: ``date`` as ``YYYY-MM-DD`` (the reference's
    ``&date=2016-01-01``, a Brussels day), other datetimes as Brussels wall clock."""
    if key == "date" and isinstance(value, datetime):
        return value.astimezone(BRUSSELS).date().isoformat() if value.tzinfo else value.date().isoformat()
    if isinstance(value, datetime):
        return to_vendor_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _v1_request(
    settings: _Licensed, name: str, spec: Function, filters: Mapping[str, Any] | None
) -> _V1Request:
    """The request for one V1 function: its "Url filter"s in the URL after the function flag, its
    "Post filter"s in a form body (a GET when there are none)."""
    operation = f"V1 {spec.flag}"
    body: dict[str, str] = {}
    query = ""
    for key, value in (filters or {}).items():
        if key not in spec.filters and key not in spec.url_filters:
            allowed = ", ".join((*spec.url_filters, *spec.filters)) or "none"
            raise ValidationError(
                VENDOR, operation, f"{spec.flag} does not take the filter {key!r}", hint=f"Filters: {allowed}"
            )
        if value is None or value is False:
            continue
        if key in spec.url_filters:
            if key in FLAG_FILTERS:
                query += f"&{key}"  # a bare flag, as the function itself
            else:
                query += f"&{key}={quote(_filter_text(key, value), safe='')}"
        else:
            body[key] = _filter_text(key, value)
    # The transport inserts ``token=…`` right after the licence name; this URL never holds it.
    url = f"/?{settings.v1_query_prefix}&{spec.flag}{query}"
    if not body:
        return _V1Request("GET", url, operation, name, {})
    return _V1Request(
        "POST",
        url,
        operation,
        name,
        {
            "content": urlencode(body).encode("ascii"),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            # a reading function: sending it again changes nothing; signing makes a VAT ticket
            "idempotent": not spec.writes,
        },
    )


def window_days(start: datetime, end: datetime) -> Iterator[tuple[date, datetime, datetime]]:
    """The Brussels days that ``[start, end)`` touches: ``(day, its start, its end)`` (aware)."""
    if end <= start:
        return
    day = start.astimezone(BRUSSELS).date()
    while True:
        day_start = datetime.combine(day, datetime.min.time(), tzinfo=BRUSSELS)
        if day_start >= end:
            return
        following = day + timedelta(days=1)
        yield day, day_start, datetime.combine(following, datetime.min.time(), tzinfo=BRUSSELS)
        day = following


def window_chunks(start: datetime, end: datetime, chunk: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive pieces of at most ``chunk``."""
    if chunk <= timedelta(0):
        raise ValueError("chunk must be positive")
    cursor = start
    while cursor < end:
        upper = min(end, cursor + chunk)
        yield cursor, upper
        cursor = upper


def validate_weborder(weborder: Any) -> dict[str, Any]:
    """Check a ``weborder.insert`` body before sending; returns it as a plain dict.

    The client this is based on sends ``weborderdetail`` lines with ``productid``, ``quantity`` and
    the prices, and up to 10 sub-products per line (``sub1id``…``sub10id``).
    """
    if isinstance(weborder, str):
        try:
            weborder = json.loads(weborder)
        except ValueError:
            raise ValidationError(VENDOR, "V2 weborder.insert", "the weborder is not JSON") from None
    if not isinstance(weborder, Mapping):
        raise ValidationError(
            VENDOR, "V2 weborder.insert", f"the weborder must be an object, not {type(weborder).__name__}"
        )
    body = dict(weborder)
    lines = body.get("weborderdetail")
    problems: list[str] = []
    if not isinstance(lines, list) or not lines:
        problems.append("weborderdetail must be a non-empty list of order lines")
    else:
        for number, line in enumerate(lines, start=1):
            if not isinstance(line, Mapping):
                problems.append(f"line {number} is not an object")
                continue
            if line.get("productid") in (None, ""):
                problems.append(f"line {number} has no productid")
            try:
                if float(line.get("quantity", 0)) <= 0:
                    problems.append(f"line {number} needs a quantity above 0")
            except (TypeError, ValueError):
                problems.append(f"line {number} has a quantity that is not a number")
            spaced = [key for key in line if re.fullmatch(r"sub\d+ \w+", str(key))]
            if spaced:
                problems.append(
                    f"line {number} has keys with a space ({spaced[0]!r}); write sub1id, not 'sub1 id'"
                )
    if body.get("delivery") not in (None, 0, 1, 2, "0", "1", "2"):
        problems.append("delivery must be 0 (takeaway), 1 (delivery) or 2 (dine-in)")
    if problems:
        raise ValidationError(
            VENDOR, "V2 weborder.insert", "; ".join(problems), hint="Correct the weborder before it is sent"
        )
    return body


# ==================================================================================================
# Answers: vendor times, envelopes and their records, weborder states, id ranges
# ==================================================================================================
_QUOTED_TIME = re.compile(r"'?(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?)'?")


def parse_vendor_time(value: Any) -> datetime | None:
    """``2026-11-19 18:30:00`` (Brussels wall clock) as an aware datetime; ISO with an offset works
    too. ``None`` for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=BRUSSELS)


def time_in_message(message: str) -> datetime | None:
    """The time inside a 1003/1004 message ("next request possible '2026-11-21 00:00:00'")."""
    match = _QUOTED_TIME.search(message or "")
    return parse_vendor_time(match.group(1)) if match else None


def read_envelope(payload: Any, record_key: str = "") -> Envelope:
    """Every answer shape seen or plausible, as one :class:`Envelope`.

    Success: ``{"success": 1, "data": [...]}``, the data under the function's own key
    (``{"success": 1, "products": [...]}``), a single object instead of a list, objects keyed by id,
    or a bare JSON list (V2). Errors: ``{"errorcode": 1002, "message": "…"}`` with ``errorcode`` or
    ``error_code``, the text under ``message``/``error``, ``success`` as ``0`` or ``"0"``.
    """
    if isinstance(payload, list):
        return Envelope(None, "", [_as_record(item) for item in payload])
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object or list, got {type(payload).__name__}")
    raw_code = payload.get("errorcode", payload.get("error_code"))
    message = next((str(payload[k]) for k in _MESSAGE_KEYS if payload.get(k) not in (None, "")), "")
    if raw_code not in (None, "", 0, "0"):
        try:
            code = int(raw_code)
        except (TypeError, ValueError):
            raise ValueError(f"errorcode {raw_code!r} is not a number") from None
        return Envelope(code, message, [])
    success = payload.get("success")
    if success is not None and str(success).strip().lower() in ("0", "false"):
        raise ValueError(f"success is {success!r} but there is no errorcode ({message or 'no message'})")
    for key in ("data", record_key):
        if key and key in payload:
            return Envelope(None, message, _records(payload[key]))
    rest = {k: v for k, v in payload.items() if k not in _CONTROL_KEYS}
    containers = [v for v in rest.values() if isinstance(v, list | dict)]
    if len(rest) == 1 and len(containers) == 1:  # the data under a key of its own
        return Envelope(None, message, _records(containers[0]))
    return Envelope(None, message, [rest] if rest else [])  # the answer is the record itself


def _records(data: Any) -> list[dict[str, Any]]:
    if data is None or data == "":
        return []
    if isinstance(data, list):
        return [_as_record(item) for item in data]
    if isinstance(data, dict):
        values = list(data.values())
        if values and all(isinstance(v, dict) for v in values) and all(str(k).isdigit() for k in data):
            return [dict(v) for v in values]  # objects keyed by their id
        return [dict(data)]
    return [{"value": data}]


def _as_record(item: Any) -> dict[str, Any]:
    return dict(item) if isinstance(item, dict) else {"value": item}


def envelope_of(response: httpx.Response, operation: str, record_key: str = "") -> Envelope:
    """The envelope of a 2xx answer; a clear error for HTML pages and anything not JSON."""
    try:
        payload = response.json()
    except ValueError:
        snippet = " ".join(response.text[:160].split())
        looks_html = snippet.lstrip().startswith("<")
        raise VendorError(
            VENDOR,
            operation,
            "the answer is an HTML page, not JSON" if looks_html else f"the answer is not JSON: {snippet!r}",
            hint="A proxy, a maintenance page or a wrong base URL may be in the way; check the connection's host",
            status_code=response.status_code,
        ) from None
    try:
        return read_envelope(payload, record_key)
    except ValueError as exc:
        raise VendorError(
            VENDOR, operation, f"unexpected answer: {exc}", status_code=response.status_code
        ) from None


def _v1_records(envelope: Envelope, spec: Function, include_sensitive: bool) -> list[dict[str, Any]]:
    if envelope.code == 2000:
        return []
    records = envelope.records
    if spec.sensitive and not include_sensitive:
        for record in records:
            for key in spec.sensitive:
                record.pop(key, None)
    return records


def weborder_status(weborder_id: str, envelope: Envelope, operation: str) -> WeborderStatus:
    """Interpret ``get-confirmedweborder``: ``"success" = 1`` with ``webordertime``, or 2001/2002/2003."""
    if envelope.code is None:
        record = envelope.records[0] if envelope.records else {}
        return WeborderStatus(weborder_id, "confirmed", envelope.message, record)
    meaning = FUNCTIONS["confirmed_weborder"].codes.get(envelope.code)
    if meaning is not None:
        return WeborderStatus(weborder_id, meaning, envelope.message or meaning.replace("_", " "))
    raise error_for_code(envelope.code, envelope.message, operation)


def _within(value: Any, start: datetime, end: datetime) -> bool:
    moment = parse_vendor_time(value)
    return moment is None or start <= moment < end  # undated records are kept, never lost


def _after(value: Any, end: datetime) -> bool:
    moment = parse_vendor_time(value)
    return moment is not None and moment >= end


def _next_id(rows: list[dict[str, Any]], label: str) -> int:
    try:
        return max(int(row["id"]) for row in rows) + 1
    except (KeyError, TypeError, ValueError):
        raise VendorError(
            VENDOR,
            f"read {label}",
            "a full answer has records without a numeric id, so the rest cannot be read by id range",
            hint="Use a smaller chunk so each answer stays under the row limit",
        ) from None


# ==================================================================================================
# Errors: CloudPOS's error codes and HTTP answers as LedgerLink errors
# ==================================================================================================
class CloudPosFunctionError(ValidationError):
    """A function-level error (2001-2003) whose meaning depends on the function; ``code`` says which."""

    def __init__(self, *args: Any, code: int = 0, **kwargs: Any) -> None:
        self.code = code
        super().__init__(*args, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"code": self.code}


class CloudPosIpBlockedError(PermissionDeniedError):
    """CloudPOS blocked this IP address after bad logins (1004); ``blocked_until`` says until when."""

    def __init__(self, *args: Any, blocked_until: datetime | None = None, **kwargs: Any) -> None:
        self.blocked_until = blocked_until
        super().__init__(*args, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"blocked_until": self.blocked_until}


def error_for_code(
    code: int, message: str, operation: str, *, status_code: int | None = None
) -> LedgerLinkError:
    """A CloudPOS error code (any function, V1 or V2) as a LedgerLink error."""
    text = message or f"errorcode {code}"
    reference = f"errorcode {code}"
    kwargs: dict[str, Any] = {"reference": reference, "status_code": status_code}
    if code == 1001:
        return AuthenticationError(
            VENDOR,
            operation,
            text,
            hint="The licence name (login) or the token (password) of the Airflow connection is empty",
            **kwargs,
        )
    if code == 1002:
        return AuthenticationError(
            VENDOR,
            operation,
            text,
            hint=(
                "CloudPOS rejected the licence name or the token. Correct them in the Airflow connection "
                "(tokens come from info@cloudpos.be). LedgerLink makes no further login attempt with "
                "these credentials: 5 bad logins block this IP for 30 minutes"
            ),
            **kwargs,
        )
    if code == 1003:
        reset_at = time_in_message(text)
        return BudgetExhaustedError(
            VENDOR,
            operation,
            text,
            reset_at=reset_at,
            hint="CloudPOS's daily request limit is reached; requests resume at the time it gave",
            **kwargs,
        )
    if code == 1004:
        until = time_in_message(text)
        return CloudPosIpBlockedError(
            VENDOR,
            operation,
            text,
            blocked_until=until,
            hint=(
                "CloudPOS blocked this IP address after 5 bad logins. Find the system using wrong "
                "credentials from this address; LedgerLink sends nothing until the block ends"
            ),
            **kwargs,
        )
    if code == 1005:
        return PermissionDeniedError(
            VENDOR,
            operation,
            text,
            hint="The licence does not include this module; ask CloudPOS to enable it",
            **kwargs,
        )
    if 2001 <= code <= 2999:
        return CloudPosFunctionError(
            VENDOR, operation, text, code=code, hint="See the function's error codes in " + DOCS, **kwargs
        )
    return VendorError(
        VENDOR, operation, text, hint=f"An error code LedgerLink does not know; see {DOCS}", **kwargs
    )


def map_error(response: httpx.Response, operation: str) -> LedgerLinkError:
    """A non-2xx answer: its CloudPOS error code when the body has one, else the HTTP status."""
    try:
        envelope = read_envelope(response.json())
    except ValueError:
        envelope = None
    if envelope is not None and envelope.code is not None:
        return error_for_code(envelope.code, envelope.message, operation, status_code=response.status_code)
    return default_error(VENDOR, response, operation)
