"""CloudPOS (cloudpos.be) through its API V1, plus the V2 ``weborder.insert`` call.

Wire facts this hook relies on (sources and open questions in the CloudPOS page of the docs):

* V1: ``https://cloudpos.be/api/?licname=<licence>&token=<token>&get-products``: the credentials
  in the query string, the function as a bare flag; filters of the reading functions go in a POST
  body. HTTPS is required;
* answers carry ``"success": 1`` or an ``"errorcode"``: 1001/1002 bad credentials, 1003 the daily
  limit ("next request possible '…'"), 1004 the IP is blocked ("till '…'"), 1005 no licence for the
  module, 2000 nothing found, 2001-2003 the function's own meaning;
* 500 requests a day per licence; 5 bad logins block the caller's IP for 30 minutes;
* V2 (as one public client uses it, not from the vendor's documentation): ``POST …/api/v2/weborder.insert``
  with the headers ``Licensename`` and ``Token`` and a JSON body; the answer carries ``weborderid``.

Because of the daily limit and the IP block, every request this hook sends goes through a shared
daily budget (:mod:`~airflow_provider_ledgerlink.core.budget`) and a shared bad-login guard
(:mod:`~airflow_provider_ledgerlink.core.login_guard`), both kept in Airflow Variables, retries
included. The token is added to the URL at the last moment by the transport, so the URLs httpx logs
and the ones in our errors never carry it; it is also registered as a secret.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import httpx

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError, DailyBudget, task_holder_id
from airflow_provider_ledgerlink.core.compat import AirflowFailException, aget_connection, to_thread
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook
from airflow_provider_ledgerlink.core.http import (
    AsyncHttpClient,
    HttpClient,
    RetryPolicy,
    default_error,
    wire_copy,
)
from airflow_provider_ledgerlink.core.login_guard import (
    LoginGuard,
    LoginRefusedError,
    credentials_fingerprint,
)
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState, SharedState

VENDOR = "CloudPOS"
DEFAULT_BASE_URL = "https://cloudpos.be/api/"
BRUSSELS = ZoneInfo("Europe/Brussels")
DEFAULT_DAILY_LIMIT = 500
DEFAULT_BLOCK_SIZE = 10
DEFAULT_SENSOR_RESERVE_PERCENT = 20
#: A reading function returning this many rows may have been cut off: the rest is read by id range.
DEFAULT_MAX_ROWS_PER_CALL = 500
#: Each retry is a request of the day's 500; try less hard than other vendors.
CLOUDPOS_RETRY = RetryPolicy(max_attempts=3, max_elapsed=120.0)
DOCS = "docs/cloudpos.md"


# ------------------------------------------------------------------------------------------------
# The V1 functions
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# Times: CloudPOS speaks Brussels wall-clock time
# ------------------------------------------------------------------------------------------------
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


def to_vendor_time(moment: datetime) -> str:
    """A filter value: Brussels wall-clock time, ``YYYY-MM-DD HH:MM:SS``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------------------------------------
# Envelopes and errors
# ------------------------------------------------------------------------------------------------
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


class WeborderNotFoundError(NotFoundError, AirflowFailException):
    """The weborder does not exist at CloudPOS; waiting longer cannot help (no task retry)."""


class WeborderIdMissingError(ConfigurationError, AirflowFailException):
    """CloudPOS received no weborderid (2002): a configuration error, waiting cannot help (no retry)."""


@dataclass(frozen=True)
class Envelope:
    """A V1/V2 answer, read tolerantly: ``code`` is ``None`` on success."""

    code: int | None
    message: str
    records: list[dict[str, Any]]


_MESSAGE_KEYS = ("message", "error", "errormessage", "error_message", "msg")
_CONTROL_KEYS = {"success", "errorcode", "error_code", *_MESSAGE_KEYS}


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


# ------------------------------------------------------------------------------------------------
# Settings from the connection
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CloudPosSettings:
    """What the hook needs from its Airflow connection (validated)."""

    conn_id: str
    licence: str
    token: str
    base_url: str
    daily_limit: int = DEFAULT_DAILY_LIMIT
    block_size: int = DEFAULT_BLOCK_SIZE
    on_budget_exhausted: str = "fail"
    bad_login_cooldown: timedelta | None = None
    sensor_reserve_fraction: float = DEFAULT_SENSOR_RESERVE_PERCENT / 100

    @property
    def account_key(self) -> str:
        """What the budget and the guard belong to: the licence at this API (never secret)."""
        host = urlsplit(self.base_url).netloc.lower()
        return f"cloudpos:{host}:{self.licence}"

    @property
    def fingerprint(self) -> str:
        return credentials_fingerprint(self.licence, self.token)

    @property
    def v1_query_prefix(self) -> str:
        return f"licname={quote(self.licence, safe='')}"


def _extra(extras: Mapping[str, Any], key: str, default: Any = None) -> Any:
    for name in (key, f"extra__ledgerlink_cloudpos__{key}"):
        value = extras.get(name)
        if value not in (None, ""):
            return value
    return default


def settings_from_connection(conn: Any, conn_id: str) -> CloudPosSettings:
    """Validate a connection into :class:`CloudPosSettings`; errors name the field to fix."""

    def problem(message: str, field_name: str) -> ConfigurationError:
        return ConfigurationError(
            VENDOR,
            f"reading connection '{conn_id}'",
            message,
            hint=f"Edit the Airflow connection '{conn_id}' and correct: {field_name}",
        )

    licence = (conn.login or "").strip()
    token = (conn.password or "").strip()
    if not licence:
        raise problem("the licence name is empty (sending it would count as a bad login)", "Licence name")
    if not token:
        raise problem("the token is empty (sending it would count as a bad login)", "Token")
    register_secret(token)
    register_secret(quote(token, safe=""))
    try:
        extras = conn.extra_dejson
    except Exception:
        raise problem("the extra field is not valid JSON", "Extra") from None
    extras = extras if isinstance(extras, dict) else {}

    base_url = _base_url(conn.host, problem)

    def integer(key: str, default: int, minimum: int) -> int:
        value = _extra(extras, key, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise problem(f"{key} must be a whole number, not {value!r}", key) from None
        if number < minimum:
            raise problem(f"{key} must be at least {minimum}", key)
        return number

    mode = str(_extra(extras, "on_budget_exhausted", "fail")).strip().lower()
    if mode not in ("fail", "wait"):
        raise problem(f"on_budget_exhausted must be 'fail' or 'wait', not {mode!r}", "on_budget_exhausted")
    cooldown = integer("bad_login_cooldown_minutes", 0, 0)
    reserve = integer("sensor_reserve_percent", DEFAULT_SENSOR_RESERVE_PERCENT, 0)
    if reserve > 100:
        raise problem("sensor_reserve_percent must be between 0 and 100", "sensor_reserve_percent")
    return CloudPosSettings(
        conn_id=conn_id,
        licence=licence,
        token=token,
        base_url=base_url,
        daily_limit=integer("daily_request_limit", DEFAULT_DAILY_LIMIT, 1),
        block_size=integer("budget_block_size", DEFAULT_BLOCK_SIZE, 1),
        on_budget_exhausted=mode,
        bad_login_cooldown=timedelta(minutes=cooldown) if cooldown else None,
        sensor_reserve_fraction=reserve / 100,
    )


def _base_url(host: str | None, problem: Callable[[str, str], ConfigurationError]) -> str:
    text = (host or "").strip() or DEFAULT_BASE_URL
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if not parts.hostname:
        raise problem(f"{text!r} is not a URL", "Host")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise problem(
            "plain http would send the token in clear text (CloudPOS requires https)", "Host (use https://)"
        )
    if parts.scheme not in ("http", "https"):
        raise problem(f"unsupported scheme {parts.scheme!r}", "Host")
    path = parts.path if parts.path not in ("", "/") else "/api/"
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}/"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------------
# What every request goes through: the guard, the budget, and the credentials
# ------------------------------------------------------------------------------------------------
class _Gate:
    """The request gate of every request that leaves the process (every attempt, retries included):
    the login guard, then one request of the budget; the wire copy carries the token."""

    def __init__(self, settings: CloudPosSettings, guard: LoginGuard, budget: DailyBudget) -> None:
        self.settings = settings
        self.guard = guard
        self.budget = budget

    def admit(self, request: httpx.Request) -> httpx.Request:
        self.guard.check(self.settings.fingerprint)
        try:
            self.budget.acquire(1)
        except BaseException:
            self.guard.inconclusive()  # nothing was sent: another holder may try the credentials
            raise
        return self.wire_request(request)

    async def aadmit(self, request: httpx.Request) -> httpx.Request:
        await self.guard.acheck(self.settings.fingerprint)
        try:
            await self.budget.aacquire(1)
        except BaseException:
            await self.guard.ainconclusive()
            raise
        return self.wire_request(request)

    def observe(self, request: httpx.Request, response: httpx.Response | None) -> None:
        """Nothing to give back: a request of the budget is spent once it leaves the process, and
        the guard hears the outcome from the hook, which reads CloudPOS's error codes."""

    def wire_request(self, request: httpx.Request) -> httpx.Request:
        """A copy of ``request`` carrying the token; the original (which httpx logs) never does."""
        headers = httpx.Headers(request.headers)
        url = request.url
        if "/v2/" in url.path:
            headers["Token"] = self.settings.token
        else:
            prefix = self.settings.v1_query_prefix
            query = url.query.decode("ascii")
            if not query.startswith(prefix):
                raise ValueError("a V1 request must start with the licence name")
            rest = query[len(prefix) :]
            token = quote(self.settings.token, safe="")
            url = url.copy_with(query=f"{prefix}&token={token}{rest}".encode("ascii"))
        return wire_copy(request, url=url, headers=headers)


# ------------------------------------------------------------------------------------------------
# Weborder status
# ------------------------------------------------------------------------------------------------
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


def weborder_status(weborder_id: str, envelope: Envelope, operation: str) -> WeborderStatus:
    """Interpret ``get-confirmedweborder``: ``"success" = 1`` with ``webordertime``, or 2001/2002/2003."""
    if envelope.code is None:
        record = envelope.records[0] if envelope.records else {}
        return WeborderStatus(weborder_id, "confirmed", envelope.message, record)
    meaning = FUNCTIONS["confirmed_weborder"].codes.get(envelope.code)
    if meaning is not None:
        return WeborderStatus(weborder_id, meaning, envelope.message or meaning.replace("_", " "))
    raise error_for_code(envelope.code, envelope.message, operation)


# ------------------------------------------------------------------------------------------------
# The hook
# ------------------------------------------------------------------------------------------------
class CloudPosHook(LedgerLinkHook):
    """CloudPOS API V1 (reading) and V2 ``weborder.insert``, within the licence's daily budget.

    The connection (type ``ledgerlink_cloudpos``): login = the licence name; password = the token;
    host, when set, replaces ``https://cloudpos.be/api/``; extras ``daily_request_limit`` (default
    500), ``on_budget_exhausted`` (``fail`` or ``wait``), ``bad_login_cooldown_minutes`` (default 0:
    no automatic new attempt after a failed login), ``budget_block_size`` and
    ``sensor_reserve_percent``.

    :param cloudpos_conn_id: the Airflow connection id.
    :param holder: who spends the budget (default: the running task instance); a sensor passes the
        same holder to its trigger.
    :param budget_kind: ``task``, or ``poll`` for sensors (they pace themselves, see
        :meth:`poll_interval`).
    :param state: where the shared budget and guard live (default: Airflow Variables).
    """

    conn_name_attr = "cloudpos_conn_id"
    default_conn_name = "cloudpos_default"
    conn_type = "ledgerlink_cloudpos"
    hook_name = "CloudPOS (LedgerLink)"
    vendor = VENDOR
    credential_dependents = ("settings", "budget", "guard")

    def __init__(
        self,
        cloudpos_conn_id: str = default_conn_name,
        *,
        holder: str | None = None,
        budget_kind: str = "task",
        state: SharedState | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("retry") is None:
            kwargs["retry"] = CLOUDPOS_RETRY
        super().__init__(cloudpos_conn_id, **kwargs)
        self.cloudpos_conn_id = cloudpos_conn_id
        self.holder = holder or task_holder_id()
        self.budget_kind = budget_kind
        self.state = state or AirflowVariableState()
        self._async_parts: tuple[CloudPosSettings, LoginGuard, DailyBudget] | None = None

    # -- settings and shared state ----------------------------------------------------------------
    @cached_property
    def settings(self) -> CloudPosSettings:
        return settings_from_connection(self.connection, self.cloudpos_conn_id)

    def budget_for(self, settings: CloudPosSettings) -> DailyBudget:
        return DailyBudget(
            settings.account_key,
            settings.daily_limit,
            state=self.state,
            holder=self.holder,
            vendor=VENDOR,
            tz="Europe/Brussels",
            block_size=1 if self.budget_kind == "poll" else settings.block_size,
            kind=self.budget_kind,
        )

    def guard_for(self, settings: CloudPosSettings) -> LoginGuard:
        return LoginGuard(
            settings.account_key,
            state=self.state,
            holder=self.holder,
            vendor=VENDOR,
            cooldown=settings.bad_login_cooldown,
        )

    @cached_property
    def budget(self) -> DailyBudget:
        return self.budget_for(self.settings)

    @cached_property
    def guard(self) -> LoginGuard:
        return self.guard_for(self.settings)

    @cached_property
    def client(self) -> HttpClient:
        settings = self.settings
        return self.make_client(
            base_url=settings.base_url,
            headers={"Accept": "application/json", "Licensename": settings.licence},
            error_mapper=map_error,
            max_connections=2,
            gates=[_Gate(settings, self.guard, self.budget)],
        )

    def get_conn(self) -> HttpClient:
        return self.client

    def trial_kwargs(self) -> dict[str, Any]:
        # A credential on trial spends the same daily budget and passes the same bad-login guard.
        return {**super().trial_kwargs(), "holder": self.holder, "state": self.state}

    def close(self) -> None:
        """Close the HTTP client and give back the part of the budget block not used."""
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()
        if "budget" in self.__dict__:
            self.budget.release()
        if "guard" in self.__dict__:
            self.guard.inconclusive()  # an attempt without a verdict lets the next holder try

    # -- V1 ---------------------------------------------------------------------------------------
    def call(
        self, function: str, filters: Mapping[str, Any] | None = None, *, include_sensitive: bool = False
    ) -> list[dict[str, Any]]:
        """Call a V1 reading function and return its records (``[]`` for "nothing found").

        :param function: ``products``, ``get-products`` … (see :data:`FUNCTIONS`).
        :param filters: the function's filters as the reference names them: URL filters (orders:
            ``start``, ``end``, ``date``, ``clockinclockout=True``; invoices: ``start``, ``end``,
            ``date``; coupons: ``start``, ``end``; customer credits: ``customerid``) and Post
            filters (``weborderid``, ``documentnr``, ``date``, ``persons``). A ``date`` is sent as
            ``YYYY-MM-DD`` (a datetime as its Brussels day).
        :param include_sensitive: keep fields left out by default (users' ``secnr``).
        """
        name, spec = function_named(function)
        request = _v1_request(self.settings, name, spec, filters)
        envelope = self._send(request)
        return _v1_records(envelope, spec, include_sensitive)

    def get_confirmed_weborder(self, weborder_id: Any) -> WeborderStatus:
        """Whether the POS confirmed the weborder, and the confirmed pick-up/delivery time."""
        spec = FUNCTIONS["confirmed_weborder"]
        request = _v1_request(self.settings, "confirmed_weborder", spec, {"weborderid": weborder_id})
        envelope = self._send(request, tolerate_codes=tuple(spec.codes))
        return weborder_status(str(weborder_id), envelope, request.operation)

    def iter_window(
        self,
        function: str,
        start: datetime,
        end: datetime,
        *,
        chunk: timedelta | None = None,
        max_rows_per_call: int = DEFAULT_MAX_ROWS_PER_CALL,
    ) -> Iterator[list[dict[str, Any]]]:
        """Records of a dated function (orders, invoices) in ``[start, end)``, as pages.

        CloudPOS selects by one day (``&date=YYYY-MM-DD``) or by id range (``&start=``/``&end=``), so
        the window is read day by day (Brussels days); a day that returns ``max_rows_per_call`` rows
        is continued by id range from the next id until a shorter answer or a record past the day.
        Every record is checked against the window on its own time (``ordertime`` for orders,
        ``date`` for invoices), so exactly the rows of the window are returned. ``chunk`` is
        accepted for compatibility and ignored: CloudPOS has no wider date filter than a day.
        """
        name, spec = function_named(function)
        if spec.window != "date":
            raise ValidationError(VENDOR, f"read {spec.label}", f"{spec.flag} has no date filter")
        for day, day_start, day_end in window_days(start, end):
            low, high = max(start, day_start), min(end, day_end)
            rows = self.call(name, {"date": day.isoformat()})
            yield [row for row in rows if _within(row.get(spec.date_field), low, high)]
            while len(rows) >= max_rows_per_call:
                first = _next_id(rows, spec.label)
                rows = self.call(name, {"start": first, "end": first + max_rows_per_call - 1})
                yield [row for row in rows if _within(row.get(spec.date_field), low, high)]
                if any(_after(row.get(spec.date_field), day_end) for row in rows):
                    break

    def sign_document(self, doctype: str, documentnr: str) -> str:
        """Have the FDM sign a sales document: ``get-invoicesigned`` / ``get-offersigned`` /
        ``get-creditnotesigned`` with the Post filter ``documentnr``; returns ``vatticket``.

        :param doctype: ``invoice``, ``offer`` or ``creditnote``.
        :raises CloudPosFunctionError: 2001 (empty document nr), 2002 (document nr already in use).
        :raises NotFoundError: 2000 (no such document).
        """
        name = f"{doctype.strip().lower().replace(' ', '')}_signed"
        if name not in FUNCTIONS:
            raise ValidationError(
                VENDOR,
                "sign a document",
                f"unknown document type {doctype!r}",
                hint="invoice, offer or creditnote",
            )
        spec = FUNCTIONS[name]
        envelope = self._send(_v1_request(self.settings, name, spec, {"documentnr": documentnr}))
        ticket = envelope.records[0].get("vatticket") if envelope.records else None
        if envelope.code == 2000 or ticket in (None, ""):
            raise NotFoundError(
                VENDOR, f"V1 {spec.flag}", f"no document {documentnr!r} to sign", reference="errorcode 2000"
            )
        return str(ticket)

    def reservation_persons(self, day: Any) -> list[Any]:
        """``get-reservationpersons`` (Post ``date``): the party sizes still bookable that day."""
        return self._array("reservation_persons", "persons", {"date": day})

    def reservation_hours(self, day: Any, persons: int) -> list[Any]:
        """``get-reservationhours`` (Post ``date``, ``persons``): the hours still free."""
        return self._array("reservation_hours", "hours", {"date": day, "persons": persons})

    def _array(self, name: str, key: str, filters: Mapping[str, Any]) -> list[Any]:
        spec = FUNCTIONS[name]
        envelope = self._send(_v1_request(self.settings, name, spec, filters))
        if envelope.code == 2000:
            return []
        records = envelope.records
        if len(records) == 1 and key in records[0]:
            value = records[0][key]
            return list(value) if isinstance(value, list) else [value]
        return [record.get("value", record) for record in records]

    # -- V2 ---------------------------------------------------------------------------------------
    def create_weborder(self, weborder: Mapping[str, Any]) -> str:
        """Send a weborder with V2 ``weborder.insert``; returns the new ``weborderid``.

        Not idempotent at CloudPOS: a lost answer raises
        :class:`~airflow_provider_ledgerlink.core.errors.AmbiguousWriteError` instead of sending again.
        Based on how a public client uses V2 (CloudPOS's V2 documentation was not available).
        """
        body = validate_weborder(weborder)
        operation = "V2 weborder.insert"
        try:
            response = self.client.request(
                "POST",
                "/v2/weborder.insert",
                operation=operation,
                content=json.dumps(body).encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
        except LedgerLinkError as exc:
            self._record(exc)
            raise
        check = "Look in the POS (Weborders) for the weborder before sending it again"
        try:
            envelope = envelope_of(response, operation)
        except VendorError as exc:  # an answer we cannot read: CloudPOS may have created it
            raise AmbiguousWriteError(VENDOR, operation, exc.message, hint=check) from None
        if envelope.code is not None:
            error = error_for_code(envelope.code, envelope.message, operation)
            self._record(error)
            raise error
        self.guard.succeeded(self.settings.fingerprint)
        record = envelope.records[0] if envelope.records else {}
        weborder_id = record.get("weborderid", record.get("id"))
        if weborder_id in (None, ""):
            raise AmbiguousWriteError(
                VENDOR,
                operation,
                "CloudPOS answered without a weborderid; the weborder may have been created",
                hint=check,
            )
        return str(weborder_id)

    def select_products(self, *, show_deleted: bool = False) -> list[dict[str, Any]]:
        """V2 ``product.select``: every product (``id``, ``name``, ``category_id``, ``price``,
        ``tax``, ``modtime`` …), as CloudPOS's V2 clients read it (body ``{"show_deleted": false}``)."""
        return self._v2_select("product.select", {"show_deleted": bool(show_deleted)})

    def select_categories(self) -> list[dict[str, Any]]:
        """V2 ``category.select``: every category (``id``, ``name``, ``modtime``)."""
        return self._v2_select("category.select", {})

    def select_customers(self, *, email: str | None = None) -> list[dict[str, Any]]:
        """V2 ``customer.select``: every customer (``id``, ``firstname``, ``name``, ``email``,
        ``phone``, ``modtime``), or those with ``email``."""
        if email is not None and not str(email).strip():
            raise ValidationError(
                VENDOR, "V2 customer.select", "email is empty", hint="Pass an e-mail address, or None for all"
            )
        return self._v2_select("customer.select", {"email": str(email).strip()} if email else {})

    def _v2_select(self, action: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A V2 read: ``POST /v2/<action>`` with a JSON body; a bare JSON array comes back, and
        2000 ("No … found") means none. Based on how CloudPOS's V2 clients call it (CloudPOS's V2
        documentation was not available). A read changes nothing, so it is retried like a GET."""
        request = _V1Request(
            "POST",
            f"/v2/{action}",
            f"V2 {action}",
            "",
            {
                "content": json.dumps(dict(body)).encode("utf-8"),
                "headers": {"Content-Type": "application/json"},
                "idempotent": True,
            },
        )
        return self._send(request).records

    # -- budget -----------------------------------------------------------------------------------
    def budget_status(self) -> Any:
        return self.budget.status()

    def log_budget(self) -> None:
        """Log what is left of the licence's daily budget (one shared-state read per holder)."""
        try:
            self.log.info("CloudPOS licence %s: %s", self.settings.licence, self.budget.status().describe())
        except Exception:  # informative only: never fails a task
            self.log.warning("Could not read the CloudPOS budget", exc_info=True)

    def poll_interval(self, base: float) -> float:
        """The wait before a poller's next request (see :meth:`DailyBudget.poll_interval`)."""
        return self.budget.poll_interval(base, reserve_fraction=self.settings.sensor_reserve_fraction)

    def release(self, *, final: bool = False) -> None:
        self.budget.release(final=final)

    def check_connection(self) -> str:
        """One ``get-categories``. The test reserves exactly that one request (not a block) and
        gives back whatever it did not send, so a click costs the day's budget what it sent."""
        budget = self.budget
        before = budget.used
        try:
            budget.reserve(1)
            categories = self.call("categories")
        finally:
            sent = budget.used - before
            self.close()  # gives back what was reserved and not sent
        return (
            f"Connected to CloudPOS as licence '{self.settings.licence}': {len(categories)} categories. "
            f"Budget: {budget.status().describe()} "
            f"(this test used {sent} request{'' if sent == 1 else 's'})"
        )

    # -- sending ----------------------------------------------------------------------------------
    def _send(self, request: _V1Request, *, tolerate_codes: tuple[int, ...] = ()) -> Envelope:
        try:
            response = self.client.request(
                request.method, request.url, operation=request.operation, **request.kwargs
            )
            envelope = envelope_of(response, request.operation, request.record_key)
        except LedgerLinkError as exc:
            self._record(exc)
            raise
        if envelope.code is not None and envelope.code != 2000 and envelope.code not in tolerate_codes:
            error = error_for_code(envelope.code, envelope.message, request.operation)
            self._record(error)
            raise error
        self.guard.succeeded(self.settings.fingerprint)
        return envelope

    def _record(self, error: LedgerLinkError) -> None:
        record_outcome(error, self.guard, self.budget, self.settings.fingerprint)

    # -- asyncio (the trigger) --------------------------------------------------------------------
    async def _aparts(self) -> tuple[CloudPosSettings, LoginGuard, DailyBudget]:
        """Settings, guard and budget, with an async connection lookup (nothing blocks the loop)."""
        if self._async_parts is None:
            conn = await aget_connection(self.cloudpos_conn_id)
            self.__dict__["raw_connection"] = conn  # the store's extras are read from it
            settings = settings_from_connection(await self.aoverlay(conn), self.cloudpos_conn_id)
            self._async_parts = (settings, self.guard_for(settings), self.budget_for(settings))
        return self._async_parts

    async def aget_confirmed_weborder(self, weborder_id: Any) -> WeborderStatus:
        """:meth:`get_confirmed_weborder` for triggers: httpx.AsyncClient, budget and guard in threads."""
        settings, guard, budget = await self._aparts()
        spec = FUNCTIONS["confirmed_weborder"]
        request = _v1_request(settings, "confirmed_weborder", spec, {"weborderid": weborder_id})
        client = await AsyncHttpClient.open(
            vendor=VENDOR,
            base_url=settings.base_url,
            headers={"Accept": "application/json", "Licensename": settings.licence},
            error_mapper=map_error,
            retry=self.retry,
            timeouts=self.timeouts,
            max_connections=1,
            gates=[_Gate(settings, guard, budget)],
        )
        try:
            async with client:
                response = await client.request(
                    request.method, request.url, operation=request.operation, **request.kwargs
                )
            envelope = envelope_of(response, request.operation)
            if envelope.code is not None and envelope.code not in spec.codes:
                raise error_for_code(envelope.code, envelope.message, request.operation)
        except LedgerLinkError as exc:
            await to_thread(record_outcome, exc, guard, budget, settings.fingerprint)
            raise
        await guard.asucceeded(settings.fingerprint)
        return weborder_status(str(weborder_id), envelope, request.operation)

    async def apoll_interval(self, base: float) -> float:
        settings, _guard, budget = await self._aparts()
        return await budget.apoll_interval(base, reserve_fraction=settings.sensor_reserve_fraction)

    async def arelease(self, *, final: bool = False) -> None:
        _settings, _guard, budget = await self._aparts()
        await budget.arelease(final=final)


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _V1Request:
    method: str
    url: str
    operation: str
    record_key: str
    kwargs: dict[str, Any]


def _v1_request(
    settings: CloudPosSettings, name: str, spec: Function, filters: Mapping[str, Any] | None
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


def _v1_records(envelope: Envelope, spec: Function, include_sensitive: bool) -> list[dict[str, Any]]:
    if envelope.code == 2000:
        return []
    records = envelope.records
    if spec.sensitive and not include_sensitive:
        for record in records:
            for key in spec.sensitive:
                record.pop(key, None)
    return records


def record_outcome(error: LedgerLinkError, guard: LoginGuard, budget: DailyBudget, fingerprint: str) -> None:
    """Tell the shared guard and budget what a failed request means.

    A rejected login is remembered (no further attempt with those credentials), an IP block and a
    vendor-side quota stop every holder until the time CloudPOS gave, a function-level error proves
    the credentials work, and anything else (a network error) says nothing about them. Refusals
    LedgerLink made itself (the guard, its own budget count) sent nothing and change nothing.
    """
    vendor_said = bool(error.reference)  # CloudPOS answered with an error code
    if isinstance(error, LoginRefusedError) or (isinstance(error, BudgetExhaustedError) and not vendor_said):
        return
    if isinstance(error, CloudPosIpBlockedError):
        until = error.blocked_until or datetime.now(timezone.utc) + timedelta(minutes=30)
        guard.blocked(until, error.message)
    elif isinstance(error, AuthenticationError):
        guard.failed(fingerprint, error.message)
    elif isinstance(error, BudgetExhaustedError):
        guard.succeeded(fingerprint)
        budget.record_vendor_stop(error.reset_at or budget.resets_at(), error.message)
    elif vendor_said:
        guard.succeeded(fingerprint)
    else:
        guard.inconclusive()


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
