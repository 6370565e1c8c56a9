"""The wire protocol of AFAS Profit (AFAS Online) through the Profit REST services of an App connector:
tokens, environments and their hosts, datetimes, filters and the query string, error mapping, the
OTP body and the key segments of a delete.

Sources: the App connector guide (the seed ``004_e3a818418af5f648.txt``: GetConnectors, the user token
shown once, the environment code "omgevingscode" as shown in the top bar) and AFAS's OpenAPI files in
``sandbox/specs/afas/``; more in the AFAS page of the docs. Wire facts:

* one host per environment and type: ``https://{12345}.{rest|resttest|restaccept}.afas.online``;
* ``Authorization: AfasToken <base64 of the token XML>``;
* GetConnectors page with ``skip``/``take`` and must be ordered when paged; the end is the first short
  page; a query string may be at most 2049 characters (longer gives a 404);
* datetimes are Europe/Amsterdam wall-clock time written with a misleading ``Z``;
* errors: 401 with an empty body, 500 with ``externalMessage``/``profitLogReference``, 503 with
  ``retry_after`` seconds;
* at most 5 calls at once is AFAS's guidance.

Nothing here needs Airflow, a connection or a hook: ``hooks/afas.py`` holds the connection, the
HTTP clients and the calls.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, TypeGuard
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import default_error, parse_retry_after
from airflow_provider_ledgerlink.core.jsonparse import error_body, json_answer

# ==================================================================================================
# Shapes: environments, the query-string limit, filter operators, orderings, datetime modes
# ==================================================================================================
VENDOR = "AFAS Profit"


AMSTERDAM = ZoneInfo("Europe/Amsterdam")


ENVIRONMENT_TYPES = {"production": "rest", "test": "resttest", "accept": "restaccept"}


_ENVIRONMENT_LETTERS = {"O": "production", "T": "test", "A": "accept"}


#: AFAS's documented limit on the query string (from ``?`` on); longer gives HTTP 404.
MAX_QUERY_LENGTH = 2049


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


DATETIME_MODES = ("utc", "amsterdam", "raw")


#: Every ``:MM:SSZ`` tail of a whole-second AFAS datetime; a shift by whole hours leaves it unchanged.
_MINUTES_SECONDS_Z = frozenset(f":{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))


# ==================================================================================================
# Requests: tokens, environments and hosts, filter values, the query string, OTP, keys
# ==================================================================================================
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


# ==================================================================================================
# Answers: JSON and rows, and AFAS's datetimes (Amsterdam wall-clock time with a "Z")
# ==================================================================================================
def _json_of(response: httpx.Response, operation: str) -> Any:
    return json_answer(VENDOR, response, operation)


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


@lru_cache(maxsize=65536)
def _amsterdam_offset(hour_prefix: str) -> timedelta:
    # Keyed on "YYYY-MM-DDTHH": the offset only changes on the hour. In the repeated hour of the
    # autumn change the first occurrence (summer time) is taken; AFAS gives no way to tell them apart.
    local = datetime.fromisoformat(hour_prefix + ":00").replace(tzinfo=AMSTERDAM)
    offset = local.utcoffset()
    assert offset is not None
    return offset


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


# ==================================================================================================
# Errors: AFAS's error answers as LedgerLink errors
# ==================================================================================================
_RETRYABLE_500 = re.compile(
    r"maximum duration|maximale tijdsduur|unexpected error|vergrendeld|locked|deadlock", re.IGNORECASE
)


def map_error(response: httpx.Response, operation: str) -> LedgerLinkError:
    """AFAS's error answers as LedgerLink errors, with the ``profitLogReference`` when sent."""
    status = response.status_code
    body = error_body(response)
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
