"""AFAS Profit (AFAS Online) through the Profit REST services of an App connector.

Wire facts this hook relies on (sources in the AFAS page of the docs):

* one host per environment and type: ``https://{12345}.{rest|resttest|restaccept}.afas.online``;
* ``Authorization: AfasToken <base64 of the token XML>``;
* GetConnectors page with ``skip``/``take`` and must be ordered when paged; the end is the first short
  page; a query string may be at most 2049 characters (longer gives a 404);
* datetimes are Europe/Amsterdam wall-clock time written with a misleading ``Z``;
* errors: 401 with an empty body, 500 with ``externalMessage``/``profitLogReference``, 503 with
  ``retry_after`` seconds;
* at most 5 calls at once is AFAS's guidance.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from functools import cached_property, lru_cache
from typing import Any, TypeGuard
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook
from airflow_provider_ledgerlink.core.http import HttpClient, default_error, parse_retry_after
from airflow_provider_ledgerlink.core.jsonparse import loads
from airflow_provider_ledgerlink.core.paging import check_page_size, fetch_pages
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.rotation import RotationResult, verification_failed

VENDOR = "AFAS Profit"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

ENVIRONMENT_TYPES = {"production": "rest", "test": "resttest", "accept": "restaccept"}
_ENVIRONMENT_LETTERS = {"O": "production", "T": "test", "A": "accept"}

#: AFAS's documented limit on the query string (from ``?`` on); longer gives HTTP 404.
MAX_QUERY_LENGTH = 2049
#: AFAS's guidance: up to 5 simultaneous calls (another page says 8; we stay at 5).
DEFAULT_MAX_IN_FLIGHT = 5
DEFAULT_PAGE_SIZE = 1000

#: Filter operators by name, mapped to AFAS's numeric ``operatortypes`` codes.
OPERATORS: dict[str, int] = {
    "eq": 1, "=": 1, "==": 1,
    "ge": 2, ">=": 2,
    "le": 3, "<=": 3,
    "gt": 4, ">": 4,
    "lt": 5, "<": 5,
    "contains": 6,
    "ne": 7, "!=": 7,
    "empty": 8,
    "not_empty": 9,
    "starts_with": 10,
    "not_contains": 11,
    "not_starts_with": 12,
    "ends_with": 13,
    "not_ends_with": 14,
    "quick_filter": 15,
}  # fmt: skip
_VALUELESS_OPERATORS = {8, 9}

#: Unique orderings of the standard connectors, so paging is stable without a metainfo call.
KNOWN_ORDERINGS: dict[str, list[str]] = {
    "Profit_Transactions": ["UnitId", "EntryNo", "SeqNo"],
    "Profit_Administrations": ["AdminId"],
    "Profit_Journals": ["UnitId", "JournalId"],
    "Profit_Debtor": ["DebtorId"],
    "Profit_Creditor": ["CreditorId"],
}

Condition = tuple[str, str, Any] | tuple[str, str] | Mapping[str, Any]


# ------------------------------------------------------------------------------------------------
# Tokens and environments
# ------------------------------------------------------------------------------------------------
def normalize_token(raw: str) -> str:
    """The token XML, from any of the forms people paste: the XML, its ``data`` part, or base64.

    Raises ``ValueError`` with what was wrong; the token itself is never part of the message.
    """
    text = (raw or "").strip()
    if not text:
        raise ValueError("the token is empty")
    if text.startswith("<"):
        xml = text
    elif re.fullmatch(r"[0-9A-Fa-f]{16,}", text):
        xml = f"<token><version>1</version><data>{text}</data></token>"
    else:
        try:
            # base64 copied from a mail or a wrapped field may carry line breaks inside
            compact = "".join(text.split())
            decoded = base64.b64decode(compact, validate=True).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(
                "the token is neither the <token>…</token> XML, nor its hexadecimal data part, "
                "nor the base64 of the XML"
            ) from None
        xml = decoded
    if not re.fullmatch(r"<token>\s*<version>\d+</version>\s*<data>[0-9A-Fa-f]+</data>\s*</token>", xml):
        raise ValueError("the token XML is not of the form <token><version>1</version><data>…</data></token>")
    return xml


def authorization_header(token_xml: str) -> str:
    return "AfasToken " + base64.b64encode(token_xml.encode("utf-8")).decode("ascii")


#: Every form of the environment code that AFAS shows or documents, after trimming and upper-casing:
#: the code in Profit's top bar (the seed: "de omgevingscode ... Deze zie je bovenaan in de balk
#: staan"), written like ``O12345AA`` (AFAS: "Production (O), Test (T), and Accept (A)" as the first
#: letter; the metainfo example's ``envid`` is ``A123456AC``), the same without the two-letter
#: suffix (``O12345``), and the bare number that goes into the URL (``12345``; the OAS server
#: variable is the "5 digit environment number").
ENVIRONMENT_CODE = re.compile(
    r"(?:(?P<letter>[OTA])(?P<number>\d{5,6})(?P<suffix>[A-Z]{2})?|(?P<bare>\d{5,6}))"
)
#: The same forms for the connection form (which does not trim or upper-case first).
ENVIRONMENT_CODE_PATTERN = r"^\s*([OTAota][0-9]{5,6}([A-Za-z]{2})?|[0-9]{5,6})\s*$"
ENVIRONMENT_CODE_HELP = (
    "The environment code from Profit's top bar (O12345AA production, T12345AA test, A12345AA accept) "
    "or just its number (12345)"
)


def parse_environment(environment_id: Any, environment_type: str | None) -> tuple[str, str]:
    """``("12345", "production")`` from ``O12345AA``/``T12345AA``/``A12345AA``, ``O12345`` or ``12345``
    and the configured type. The URL carries only the number (``https://12345.rest.afas.online``);
    the letter says the type; the suffix is not part of the URL."""
    text = str(environment_id if environment_id is not None else "").strip().upper()
    match = ENVIRONMENT_CODE.fullmatch(text)
    if not match:
        raise ValueError(
            f"environment_id {environment_id!r} is not an AFAS environment code: use the code from "
            "Profit's top bar (O12345AA, T12345AA or A12345AA) or its number (12345)"
        )
    letter = match.group("letter")
    digits = match.group("number") or match.group("bare")
    implied = _ENVIRONMENT_LETTERS.get(letter) if letter else None
    kind = (environment_type or implied or "production").strip().lower()
    if kind not in ENVIRONMENT_TYPES:
        raise ValueError(f"environment_type {environment_type!r} is not one of production, test, accept")
    if implied and implied != kind:
        raise ValueError(f"environment_id {text} is a {implied} environment but environment_type says {kind}")
    return digits, kind


def base_url_for(environment: str, environment_type: str) -> str:
    return f"https://{environment}.{ENVIRONMENT_TYPES[environment_type]}.afas.online/ProfitRestServices"


# ------------------------------------------------------------------------------------------------
# Datetimes: AFAS writes Amsterdam wall-clock time with a "Z"
# ------------------------------------------------------------------------------------------------
DATETIME_MODES = ("utc", "amsterdam", "raw")


@lru_cache(maxsize=65536)
def _amsterdam_offset(hour_prefix: str) -> timedelta:
    # Keyed on "YYYY-MM-DDTHH": the offset only changes on the hour. In the repeated hour of the
    # autumn change the first occurrence (summer time) is taken; AFAS gives no way to tell them apart.
    local = datetime.fromisoformat(hour_prefix + ":00").replace(tzinfo=AMSTERDAM)
    offset = local.utcoffset()
    assert offset is not None
    return offset


#: Every ``:MM:SSZ`` tail of a whole-second AFAS datetime; a shift by whole hours leaves it unchanged.
_MINUTES_SECONDS_Z = frozenset(f":{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))


@lru_cache(maxsize=65536)
def _hour_in_utc(hour_prefix: str) -> tuple[str, str] | None:
    """``("YYYY-MM-DDTHH" in UTC, "+HH:00")`` for an Amsterdam hour, so converting a value is one
    dictionary look-up and a concatenation (the hot path of every extract). ``None`` when the
    offset is not whole hours (Amsterdam time before 1937) or the text is not in the canonical
    form; the callers then take the general path."""
    local = datetime.fromisoformat(hour_prefix + ":00")
    offset = _amsterdam_offset(hour_prefix)
    seconds = offset.days * 86400 + offset.seconds
    if seconds % 3600 or offset.microseconds or local.isoformat()[:13] != hour_prefix:
        return None
    sign = "-" if seconds < 0 else "+"
    return (local - offset).isoformat()[:13], f"{sign}{abs(seconds) // 3600:02d}:00"


def afas_datetime_to_utc(value: str) -> str:
    """``2026-07-01T12:00:00Z`` (Amsterdam wall clock) → ``2026-07-01T10:00:00Z`` (real UTC).

    Date-only values (``T00:00:00Z``) become ``YYYY-MM-DD``: they are dates, not midnight instants.
    """
    if len(value) == 20:
        if value[11:19] == "00:00:00":
            return value[:10]
        if value[13:] in _MINUTES_SECONDS_Z:
            hour = _hour_in_utc(value[:13])
            if hour is not None:
                return hour[0] + value[13:]
    naive = datetime.fromisoformat(value[:-1])
    utc = naive - _amsterdam_offset(value[:13])
    return utc.isoformat() + "Z"


def afas_datetime_to_amsterdam(value: str) -> str:
    """``2026-07-01T12:00:00Z`` → ``2026-07-01T12:00:00+02:00``; dates become ``YYYY-MM-DD``."""
    if len(value) == 20:
        if value[11:19] == "00:00:00":
            return value[:10]
        if value[13:] in _MINUTES_SECONDS_Z:
            hour = _hour_in_utc(value[:13])
            if hour is not None:
                return value[:-1] + hour[1]
    offset = _amsterdam_offset(value[:13])
    return datetime.fromisoformat(value[:-1]).replace(tzinfo=timezone(offset)).isoformat()


def _looks_like_afas_datetime(value: Any) -> TypeGuard[str]:
    return value.__class__ is str and len(value) >= 20 and value[-1] == "Z" and value[10] == "T"


def _datetime_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The columns of a page whose first non-empty value is an AFAS datetime."""
    columns = []
    for key in rows[0]:
        for row in rows:
            value = row.get(key)
            if value is not None:
                if _looks_like_afas_datetime(value):
                    columns.append(key)
                break
    return columns


def to_afas_filter_value(value: Any) -> str:
    """A filter value as AFAS expects it: datetimes as Amsterdam wall clock without ``Z``."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(AMSTERDAM).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------------------------
# Filters and the query string
# ------------------------------------------------------------------------------------------------
def _condition(item: Any) -> tuple[str, int, str]:
    if isinstance(item, Mapping):
        field, op, value = item.get("field"), item.get("op", item.get("operator", "eq")), item.get("value")
    elif isinstance(item, list | tuple) and len(item) in (2, 3):
        field, op = item[0], item[1]
        value = item[2] if len(item) == 3 else None
    else:
        raise ValueError(f"a filter condition must be (field, operator, value) or a dict, not {item!r}")
    code = OPERATORS.get(str(op).lower()) if not isinstance(op, int) else op
    if code is None or not 1 <= code <= 15:
        known = ", ".join(sorted(k for k in OPERATORS if k[0].isalpha()))
        raise ValueError(f"unknown filter operator {op!r}; use one of {known} (or =, >=, <=, >, <, !=)")
    if not field:
        raise ValueError(f"filter condition {item!r} has no field")
    text = "" if code in _VALUELESS_OPERATORS and value is None else to_afas_filter_value(value)
    return str(field), code, text


def normalize_filters(filters: Any) -> list[list[tuple[str, int, str]]]:
    """Filters as OR-ed groups of AND-ed conditions.

    ``[cond, cond]`` is one AND group; ``[[cond, cond], [cond]]`` is two groups OR-ed together.
    A condition is ``(field, operator, value)``, ``(field, "empty")`` or
    ``{"field": …, "op": …, "value": …}``.
    """
    if not filters:
        return []
    if isinstance(filters, Mapping):
        filters = [filters]
    items = list(filters)
    is_groups = all(
        isinstance(group, list | tuple) and group and not isinstance(group[0], str) for group in items
    )
    groups = items if is_groups else [items]
    return [[_condition(c) for c in group] for group in groups]


def _encode(params: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in params)


def build_get_query(
    *,
    skip: int,
    take: int,
    order_by: Sequence[str] = (),
    filters: list[list[tuple[str, int, str]]] | None = None,
) -> str:
    """The GetConnector query string; the JSON filter form is used when the simple one cannot
    carry the values (``,`` or ``;`` inside) or would pass AFAS's length limit."""
    base: list[tuple[str, str]] = [("skip", str(skip)), ("take", str(take))]
    if order_by:
        base.append(("orderbyfieldids", ",".join(order_by)))
    if not filters:
        return _encode(base)
    values = [value for group in filters for (_f, _o, value) in group]
    if not any("," in v or ";" in v for v in values):
        simple = [
            *base,
            ("filterfieldids", ";".join(",".join(f for f, _o, _v in group) for group in filters)),
            ("filtervalues", ";".join(",".join(v for _f, _o, v in group) for group in filters)),
            ("operatortypes", ";".join(",".join(str(o) for _f, o, _v in group) for group in filters)),
        ]
        query = _encode(simple)
        if len(query) <= MAX_QUERY_LENGTH:
            return query
    document = {
        "Filters": {
            "Filter": [
                {
                    "@FilterId": f"Filter {n}",
                    "Field": [{"@FieldId": f, "@OperatorType": str(o), "#text": v} for f, o, v in group],
                }
                for n, group in enumerate(filters, start=1)
            ]
        }
    }
    query = _encode([*base, ("filterjson", json.dumps(document, separators=(",", ":")))])
    if len(query) > MAX_QUERY_LENGTH:
        raise ValueError(
            f"the filter needs {len(query)} characters of query string, more than AFAS accepts "
            f"({MAX_QUERY_LENGTH}); split it into several smaller extracts"
        )
    return query


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
_RETRYABLE_500 = re.compile(
    r"maximum duration|maximale tijdsduur|unexpected error|vergrendeld|locked|deadlock", re.IGNORECASE
)


def map_error(response: httpx.Response, operation: str) -> LedgerLinkError:
    """AFAS's error answers as LedgerLink errors, with the ``profitLogReference`` when sent."""
    status = response.status_code
    body: dict[str, Any] = {}
    try:
        parsed = response.json() if response.content else {}
        body = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        pass
    if status == 401:
        return AuthenticationError(
            VENDOR,
            operation,
            "AFAS refused the token (HTTP 401; AFAS sends no details)",
            hint=(
                "Likely causes: the token is wrong, expired or deleted; the environment number or type "
                "(production/test/accept) does not match the token; or the connector is not part of the "
                "token's App connector"
            ),
            status_code=status,
        )
    if status == 403:
        return PermissionDeniedError(
            VENDOR,
            operation,
            "AFAS refused the call from this network address (HTTP 403)",
            hint="The App connector has IP restrictions: allow the addresses of the Airflow workers",
            status_code=status,
        )
    if status == 404:
        return NotFoundError(
            VENDOR,
            operation,
            "not found (HTTP 404)",
            hint="Check the connector id and the environment; a query string over 2049 characters also gives 404",
            status_code=status,
        )
    if status == 503:
        retry_after = body.get("retry_after")
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(message, dict):  # the documented example nests {"example": …}
            message = message.get("example")
        return ServiceUnavailableError(
            VENDOR,
            operation,
            str(message or "AFAS is temporarily unavailable (maintenance)"),
            retry_after=float(retry_after)
            if isinstance(retry_after, int | float)
            else parse_retry_after(response),
            hint="AFAS announces maintenance on afasstatus.nl; the call is retried after the time AFAS gives",
            status_code=status,
            # AFAS documents 503 on every UpdateConnector call as "Service unavailable; retry at a
            # later time" (sandbox/specs/afas/Mutaties.json, components.responses.503): not processed.
            refused=True,
        )
    if "externalMessage" in body or "profitLogReference" in body:
        message = str(body.get("externalMessage") or "AFAS reported an error")
        if body.get("errorNumber") is not None:
            message += f" (errorNumber {body['errorNumber']})"
        cls = ValidationError if status in (400, 413, 422) else VendorError
        kwargs: dict[str, Any] = {"status_code": status, "reference": body.get("profitLogReference")}
        if cls is VendorError:
            # AFAS answers a functional or validation error with HTTP 500 and this triple: its
            # verdict, nothing was applied. The time-out, lock and "unexpected error" answers are not
            # verdicts: a read may be retried, a write may or may not have been applied.
            transient = bool(_RETRYABLE_500.search(message))
            kwargs["retryable"] = transient
            kwargs["refused"] = not transient
        return cls(
            VENDOR,
            operation,
            message,
            hint="The profitLogReference identifies this error in the environment's logbook in Profit",
            **kwargs,
        )
    return default_error(VENDOR, response, operation)


# ------------------------------------------------------------------------------------------------
# The hook
# ------------------------------------------------------------------------------------------------
class AfasHook(LedgerLinkHook):
    """AFAS Profit REST services of one App connector.

    The connection (type ``ledgerlink_afas``): password = the user token (the ``<token>`` XML, its
    data part, or base64); extra ``environment_id`` (the code from Profit's top bar, ``O12345AA`` /
    ``T12345AA`` / ``A12345AA``, or its number ``12345``); extra
    ``environment_type`` (``production``, ``test``, ``accept``); host, when set, replaces the AFAS
    URL (``https://proxy.example`` or the sandbox) and ``/ProfitRestServices`` is appended.

    :param afas_conn_id: the Airflow connection id.
    :param max_in_flight: GetConnector pages requested at once (AFAS's guidance: at most 5).
    :param page_size: rows per page (``take``); keep columns × rows under about 150,000.
    :param datetimes: ``utc`` (default) turns AFAS's Amsterdam ``…Z`` times into real UTC,
        ``amsterdam`` gives ISO times with the Amsterdam offset, ``raw`` leaves them as sent.
    """

    conn_name_attr = "afas_conn_id"
    default_conn_name = "afas_default"
    conn_type = "ledgerlink_afas"
    hook_name = "AFAS Profit (LedgerLink)"
    vendor = VENDOR
    credential_dependents = ("token_xml", "client", "anonymous_client")

    def __init__(
        self,
        afas_conn_id: str = default_conn_name,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        page_size: int = DEFAULT_PAGE_SIZE,
        datetimes: str = "utc",
        **kwargs: Any,
    ) -> None:
        super().__init__(afas_conn_id, **kwargs)
        if datetimes not in DATETIME_MODES:
            raise ValueError(f"datetimes must be one of {', '.join(DATETIME_MODES)}, not {datetimes!r}")
        self.afas_conn_id = afas_conn_id
        self.max_in_flight = max(1, int(max_in_flight))
        self.page_size = int(page_size)
        self.datetimes = datetimes

    # -- settings ---------------------------------------------------------------------------------
    @cached_property
    def token_xml(self) -> str:
        try:
            xml = normalize_token(self.connection.password or "")
        except ValueError as exc:
            raise self.config_error(str(exc), field="Password (the AFAS user token)") from None
        register_secret(xml)
        register_secret(re.sub(r"^.*<data>|</data>.*$", "", xml))
        return xml

    @cached_property
    def environment(self) -> tuple[str, str]:
        try:
            return parse_environment(self.extra("environment_id"), self.extra("environment_type"))
        except ValueError as exc:
            raise self.config_error(str(exc), field="Extra environment_id / environment_type") from None

    @cached_property
    def base_url(self) -> str:
        host = (self.connection.host or "").strip()
        if host:
            if "://" not in host:
                host = f"https://{host}"
            host = host.rstrip("/")
            return host if host.lower().endswith("/profitrestservices") else f"{host}/ProfitRestServices"
        return base_url_for(*self.environment)

    @cached_property
    def client(self) -> HttpClient:
        header = authorization_header(self.token_xml)
        register_secret(header.split(" ", 1)[1])
        return self.make_client(
            base_url=self.base_url,
            headers={"Authorization": header, "Accept": "application/json"},
            error_mapper=map_error,
            max_connections=max(self.max_in_flight, 2),
        )

    @cached_property
    def anonymous_client(self) -> HttpClient:
        """For the one-time-password calls, which carry no token."""
        return self.make_client(
            base_url=self.base_url, headers={"Accept": "application/json"}, error_mapper=map_error
        )

    def get_conn(self) -> HttpClient:
        return self.client

    def close(self) -> None:
        for name in ("client", "anonymous_client"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()

    # -- GetConnectors ----------------------------------------------------------------------------
    def get_pages(
        self,
        connector_id: str,
        *,
        filters: Any = None,
        order_by: Sequence[str] | None = None,
        page_size: int | None = None,
        max_in_flight: int | None = None,
        skip: int = 0,
    ) -> Iterator[list[dict[str, Any]]]:
        """GetConnector pages, in order, lazily; several requested at once (``max_in_flight``)."""
        ordering = list(order_by) if order_by else self.default_ordering(connector_id)
        try:
            groups = normalize_filters(filters)
        except ValueError as exc:
            raise ValidationError(
                VENDOR, f"GetConnector {connector_id}", str(exc), hint="Fix the filters"
            ) from None
        operation = f"GetConnector {connector_id}"
        size = check_page_size(VENDOR, operation, self.page_size if page_size is None else page_size)
        convert = self._row_converter()

        def fetch(offset: int, take: int) -> list[dict[str, Any]]:
            try:
                query = build_get_query(skip=offset, take=take, order_by=ordering, filters=groups)
            except ValueError as exc:
                raise ValidationError(VENDOR, operation, str(exc)) from None
            response = self.client.request(
                "GET", f"/connectors/{quote(connector_id)}?{query}", operation=operation
            )
            rows = _rows_of(response, operation)
            if convert is not None and rows:
                convert(rows)
            return rows

        # The first page goes alone: a refused token or a bad filter then costs one request, not
        # max_in_flight, and a connector that fits in one page is read with a single call.
        first = fetch(skip, size)
        yield first
        if len(first) < size:
            return
        yield from fetch_pages(
            fetch,
            page_size=size,
            max_in_flight=max_in_flight or self.max_in_flight,
            start=skip + size,
            vendor=VENDOR,
            operation=operation,
            previous=first,
        )

    def get_rows(self, connector_id: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """All rows of a GetConnector, lazily (see :meth:`get_pages` for the arguments)."""
        for page in self.get_pages(connector_id, **kwargs):
            yield from page

    def default_ordering(self, connector_id: str) -> list[str]:
        """A stable ordering for paging when the caller gave none.

        AFAS requires one: without it the order between pages is not guaranteed and rows can be
        skipped or repeated. Known standard connectors use their unique key; any other connector is
        ordered by all its fields (from metainfo), which is stable but slower: pass ``order_by``
        with a unique field to do better.
        """
        if connector_id in KNOWN_ORDERINGS:
            return KNOWN_ORDERINGS[connector_id]
        fields = [f["id"] for f in self.get_connector_metainfo(connector_id).get("fields", []) if f.get("id")]
        if not fields:
            raise ValidationError(
                VENDOR,
                f"GetConnector {connector_id}",
                "no ordering given and metainfo lists no fields to order by",
                hint="Pass order_by with a unique field of the connector",
            )
        ordering: list[str] = []
        for field in fields:  # as many as the query string allows
            if len(",".join([*ordering, field])) > 600:
                break
            ordering.append(field)
        self.log.info(
            "No order_by given for %s: ordering by %s. AFAS needs a stable order when paging; "
            "pass order_by with a unique field to make this faster.",
            connector_id,
            ",".join(ordering),
        )
        return ordering

    def _row_converter(self) -> Any:
        if self.datetimes == "raw":
            return None
        convert_value = afas_datetime_to_utc if self.datetimes == "utc" else afas_datetime_to_amsterdam

        def convert(rows: list[dict[str, Any]]) -> None:
            # Only the datetime columns are visited (found per page from each column's first value).
            # A page repeats its dates and timestamps many times over (every line of an entry has
            # the same ones), so each distinct value is converted once per page and then looked up:
            # this runs for millions of values.
            done: dict[Any, str] = {}
            for key in _datetime_columns(rows):
                for row in rows:
                    value = row.get(key)
                    new = done.get(value) if value.__class__ is str else None
                    if new is None:
                        if not _looks_like_afas_datetime(value):
                            continue
                        new = done[value] = convert_value(value)
                    row[key] = new

        return convert

    # -- metainfo ---------------------------------------------------------------------------------
    def get_metainfo(self) -> dict[str, Any]:
        """The App connector's connectors and environment info (``GET /metainfo``)."""
        return _json_of(self.client.request("GET", "/metainfo", operation="metainfo"), "metainfo")

    def get_connector_metainfo(self, connector_id: str) -> dict[str, Any]:
        operation = f"metainfo of GetConnector {connector_id}"
        return _json_of(
            self.client.request("GET", f"/metainfo/get/{quote(connector_id)}", operation=operation), operation
        )

    def get_update_metainfo(self, connector_id: str) -> dict[str, Any]:
        operation = f"metainfo of UpdateConnector {connector_id}"
        response = self.client.request("GET", f"/metainfo/update/{quote(connector_id)}", operation=operation)
        return _json_of(response, operation)

    def profit_version(self) -> str:
        body = _json_of(
            self.client.request("GET", "/ProfitVersion", operation="ProfitVersion"), "ProfitVersion"
        )
        return str(body.get("version", ""))

    def check_connection(self) -> str:
        meta = self.get_metainfo()
        info = meta.get("info") or {}
        envid = str(info.get("envid") or "?")
        where = ""
        configured = str(self.extra("environment_id", "") or "").strip().upper()
        if configured:
            number, kind = self.environment
            where = f" (environment number {number}, {kind}, {self.base_url})"
            # O12345 is a prefix of O12345AA; a bare number only needs to appear in AFAS's code.
            prefix = configured if configured[:1].isalpha() else ""
            if envid != "?" and (number not in envid or not envid.upper().startswith(prefix)):
                where += f"; note: Environment code is {configured} but AFAS reports {envid}"
        return (
            f"Connected to AFAS environment {envid}{where} as App connector "
            f"'{info.get('appName', '?')}': {len(meta.get('getConnectors') or [])} GetConnectors, "
            f"{len(meta.get('updateConnectors') or [])} UpdateConnectors"
        )

    # -- UpdateConnectors -------------------------------------------------------------------------
    def update_connector(
        self,
        connector_id: str,
        body: Mapping[str, Any],
        *,
        method: str = "POST",
        sub_path: str | None = None,
    ) -> dict[str, Any]:
        """Send one UpdateConnector request (``POST`` inserts, ``PUT`` updates).

        ``body`` is the documented envelope, e.g. ``{"FiEntryPar": {"Element": {...}}}``. Returns
        the ``results`` AFAS sent (often the new keys), or ``{}`` for an empty answer. A POST is never
        re-sent after an ambiguous failure (see :class:`~...core.errors.AmbiguousWriteError`).
        """
        method = method.upper()
        if method not in ("POST", "PUT"):
            raise ValueError("method must be POST (insert) or PUT (update)")
        if not isinstance(body, Mapping) or not body:
            raise ValidationError(
                VENDOR,
                f"UpdateConnector {connector_id}",
                "the record is empty or not an object",
                hint='Send the documented envelope, e.g. {"FiEntryPar": {"Element": {"Fields": {...}}}}',
            )
        if sub_path and method != "POST":
            # AFAS documents the sub-object URL for POST only ("POST on SubObject": update the main
            # object, insert the sub-object); a PUT goes to the connector with the keys in the body.
            raise ValidationError(
                VENDOR,
                f"UpdateConnector {connector_id}",
                f"sub_path {sub_path!r} is for POST (insert a sub-object) only",
                hint="Send a PUT to the connector itself with the key fields (@Key) in the body",
            )
        path = f"/connectors/{quote(connector_id, safe='')}" + (
            f"/{quote(sub_path, safe='/')}" if sub_path else ""
        )
        operation = f"UpdateConnector {connector_id} ({'insert' if method == 'POST' else 'update'})"
        response = self.client.request(
            method,
            path,
            operation=operation,
            # Not even a PUT is re-sent blindly: it inserts the sub-objects it carries without a key.
            idempotent=False,
            content=json.dumps(body, default=str).encode("utf-8"),
            headers={"Content-Type": "application/json;charset=utf-8"},
        )
        if not response.content.strip():
            return {}
        parsed = _json_of(response, operation)
        return parsed.get("results", parsed) if isinstance(parsed, dict) else {}

    def delete(
        self,
        connector_id: str,
        object_name: str,
        keys: Mapping[str, Any],
        *,
        nested: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> None:
        """Final delete of one record (or of one nested row of it).

        The URL is AFAS's documented shape: the object, then each key field with an ``@`` and its
        value, e.g. ``DELETE /connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo/5811`` (the
        OAS path ``/connectors/FiEntries/FiEntryPar/@Year/{Year}``). To delete a nested row, AFAS wants
        "the full key of the main element and the subelement": pass ``nested=[("SubObject",
        {"Key": value})]`` and the sub-object's segments follow the main object's.
        """
        operation = f"UpdateConnector {connector_id} (delete)"
        path = f"/connectors/{quote(connector_id, safe='')}"
        for name, object_keys in [(object_name, keys), *nested]:
            path += f"/{quote(str(name), safe='')}" + _key_segments(object_keys, name, operation)
        self.client.request("DELETE", path, operation=operation)

    # -- one-time-password token flow -------------------------------------------------------------
    def request_otp(self, *, api_key: str, environment_key: str, user_id: str) -> None:
        """Ask AFAS to e-mail a one-time password to ``user_id`` (no token needed).

        Sent once and never retried: every request mails the user another code. When the answer is
        lost after the request went out, the error says to look in the mailbox first.
        """
        register_secret(api_key)
        register_secret(environment_key)
        operation = "OTP request"
        try:
            self.anonymous_client.request(
                "POST",
                "/otprequest",
                operation=operation,
                json=otp_body(api_key, environment_key, user_id),
                idempotent=False,
                retry=self.retry.with_overrides(max_attempts=1),
            )
        except AmbiguousWriteError as error:
            raise AmbiguousWriteError(
                VENDOR,
                operation,
                f"{error.message}: AFAS may have e-mailed a code to {user_id}",
                hint=f"Look in the mailbox of {user_id} before asking again: every request mails a new code",
            ) from None
        except LedgerLinkError as error:
            # The same error, with a hint that does not promise a retry (rebuilt the way errors are
            # unpickled, so every subclass keeps its own fields).
            rebuild, (cls, vendor, failed, message, kwargs) = error.__reduce__()[:2]
            kwargs["hint"] = f"It was not repeated: every request mails {user_id} a new code" + (
                ". Ask again later" if error.retryable else ""
            )
            raise rebuild(cls, vendor, failed, message, kwargs) from None

    def validate_otp(self, *, api_key: str, environment_key: str, user_id: str, otp: str) -> str:
        """Exchange the one-time password for a new user token; returns the token XML."""
        otp = otp.strip()
        register_secret(otp)
        response = self.anonymous_client.request(
            "POST",
            "/otpvalidation",
            operation="OTP validation",
            json={**otp_body(api_key, environment_key, user_id), "otp": otp},
        )
        body = _json_of(response, "OTP validation")
        token = str(body.get("token", "")).strip()  # AFAS ends it with CRLF
        try:
            xml = normalize_token(token)
        except ValueError as exc:
            raise VendorError(VENDOR, "OTP validation", f"AFAS returned no usable token: {exc}") from None
        register_secret(xml)
        return xml

    # -- token renewal by one-time password (TokenRotationOperator) -------------------------------
    @cached_property
    def otp_settings(self) -> dict[str, str]:
        """The App connector's API key and environment key and the user id, from the extras."""
        fields = {
            "api_key": "otp_api_key",
            "environment_key": "otp_environment_token",
            "user_id": "otp_user_id",
        }
        values = {name: str(self.extra(extra, "") or "").strip() for name, extra in fields.items()}
        missing = [fields[name] for name, value in values.items() if not value]
        if missing:
            raise self.config_error(
                f"renewing the token by one-time password needs {', '.join(missing)}",
                field="Extras otp_user_id, otp_api_key and otp_environment_token (from the App connector)",
            )
        return values

    def token_expiry(self) -> str | None:
        """``info.tokenExpiry`` from the metainfo, or ``None`` for ``0`` or empty (AFAS documents no
        meaning; ``0`` appears to be "no expiry")."""
        value = str((self.get_metainfo().get("info") or {}).get("tokenExpiry", "") or "").strip()
        return None if value in ("", "0") else value

    def start_token_renewal(self) -> str:
        """Ask AFAS to e-mail a one-time password to the connection's ``otp_user_id``; returns the
        user id (not secret) for the message asking for the code."""
        self.request_otp(**self.otp_settings)
        return self.otp_settings["user_id"]

    def finish_token_renewal(self, code: str) -> RotationResult:
        """Exchange the code for a new user token, verify the token with a metainfo call, store it.

        The previous token keeps working until it is deleted in AFAS (Profit has no API for that).
        """
        store = self.credential_store
        result = RotationResult(self.conn_id, VENDOR, "one-time password", "", store.label)
        code = str(code or "").strip()
        if not code:
            raise ValidationError(
                VENDOR,
                "OTP validation",
                "no one-time password was given",
                hint=f"Enter the code AFAS e-mailed to {self.otp_settings['user_id']}",
            )
        xml = self.validate_otp(**self.otp_settings, otp=code)
        probe = self.trial({"password": xml})
        try:
            result.detail = probe.check_connection()
            result.expires_at = probe.token_expiry()
        except LedgerLinkError as error:
            raise verification_failed(
                self, "new user token", error, "Check that the App connector still exists, then renew again"
            ) from None
        finally:
            probe.close()
        store.replace(self.conn_id, self.raw_connection, {"password": xml}, expires_at=result.expires_at)
        self.forget_connection()
        result.status = "renewed"
        return result


def otp_body(api_key: str, environment_key: str, user_id: str) -> dict[str, str]:
    """The body of ``/otprequest`` (and, with ``otp``, of ``/otpvalidation``).

    The user id is sent as ``userid``: the spelling of AFAS's REST help page example ("Token
    genereren voor de Profit Rest Services", ``userid: 'DavidB'``) and of both examples in AFAS's OAS
    (``"userid": "work@exampleemail.com"`` under ``/OtpRequest`` and ``/OtpValidation``), i.e. what
    AFAS itself sends. The OAS schema names the property ``userId``; that AFAS's own examples differ
    from it in case suggests Profit reads the name without regard to case. ``apiToken`` is the
    App connector's environment key (Omgevingssleutel).
    """
    return {"apiKey": api_key, "apiToken": environment_key, "userid": user_id}


def _key_segments(keys: Mapping[str, Any], object_name: str, operation: str) -> str:
    """``/@Key/value`` for each key field of one object, values URL-encoded."""
    if not isinstance(keys, Mapping) or not keys:
        raise ValidationError(
            VENDOR,
            operation,
            f"no key fields given for object {object_name!r}",
            hint="Give every key field of the record, e.g. {'Year': 2026, 'UnId': 1, 'EnNo': 5811}",
        )
    parts = []
    for field, value in keys.items():
        name = str(field).strip().lstrip("@")
        text = to_afas_filter_value(value)
        if not name or text == "":
            raise ValidationError(
                VENDOR, operation, f"key field {field!r} of object {object_name!r} has no name or no value"
            )
        parts.append(f"/@{quote(name, safe='')}/{quote(text, safe='')}")
    return "".join(parts)


def _json_of(response: httpx.Response, operation: str) -> Any:
    try:
        return loads(response.content)
    except ValueError:
        snippet = response.text[:120].replace("\n", " ")
        raise VendorError(
            VENDOR,
            operation,
            f"the answer is not JSON (content-type {response.headers.get('content-type', '?')}): {snippet!r}",
            hint="A proxy or maintenance page may be in the way; check the base URL",
            status_code=response.status_code,
        ) from None


def _rows_of(response: httpx.Response, operation: str) -> list[dict[str, Any]]:
    body = _json_of(response, operation)
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise VendorError(
            VENDOR,
            operation,
            "the answer has no 'rows' list",
            hint="Check that the id is a GetConnector (not an UpdateConnector)",
            status_code=response.status_code,
        )
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise VendorError(
                VENDOR,
                operation,
                f"row {index} of the answer's 'rows' is a {type(row).__name__}, not an object",
                hint="The answer is not a GetConnector page (a proxy or another service may have "
                "answered): check the connection's host",
                status_code=response.status_code,
            )
    return rows
