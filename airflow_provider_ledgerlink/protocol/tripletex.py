"""The wire protocol of Tripletex API v2: hosts, number series, date windows, session dates and the
Basic authorization, list pages, writes' answers and error mapping.

Sources: Tripletex's guide to creating the employee token (the seed ``002_7a95c6fdb3f55c34.txt``:
"API-tilgang", the webshop set-up with Tripletex's customer numbers from 100000 and the invoice
series kept clear of the shop's, which starts at 6000) and the OpenAPI file in
``sandbox/specs/tripletex/``; more in the Tripletex page of the docs. Wire facts:

* two hosts: ``https://tripletex.no/v2`` (production) and ``https://api-test.tripletex.tech/v2``
  (test); tokens of one do not work in the other;
* a session token is created with ``PUT /token/session/:create`` from the consumer token, the
  employee token and an expiration *date* (query parameters, no auth). Calls then use HTTP Basic
  ``<company id or 0>:<session token>``. Tripletex lives in Europe/Oslo: a session runs out at the
  start of its expiration date there, so the date is computed in Oslo, never from the host's clock;
* lists are ``{"fullResultSize", "from", "count", "versionDigest", "values"}``, paged with
  ``from``/``count``; ``fullResultSize`` is documented as inexact, so the end is the first short
  page. With ``If-None-Match``, ``versionDigest`` is a checksum and sending it back gives 304;
* postings, vouchers, invoices and orders are read by date windows whose end is exclusive;
  customers and suppliers have ``changedSince``;
* ``X-Rate-Limit-Limit/Remaining/Reset`` on every response, per consumer and employee token; once
  spent, everyone using that employee gets 429 until the period ends, sometimes without the reset
  header;
* errors are ``{"status", "code", "message", "developerMessage", "validationMessages", "requestId"}``,
  the request id also in ``x-tlx-request-id``; a stale ``version`` on an update is 409 / code 8000;
* there is no idempotency key: a create is made safe by looking for the object first (by an external
  key the caller chooses) and, when an answer was lost, looking again before sending again.

Nothing here needs Airflow, a connection or a hook: ``hooks/tripletex.py`` holds the connection, the
sessions, the HTTP client and the calls.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import default_error
from airflow_provider_ledgerlink.core.jsonparse import error_body, json_answer
from airflow_provider_ledgerlink.core.paging import Page as Page  # the list page, re-exported

# ==================================================================================================
# Shapes: hosts, number series, date windows, error codes, sessions, pages and write results
# ==================================================================================================
VENDOR = "Tripletex"


OSLO = ZoneInfo("Europe/Oslo")


BASE_URLS = {"production": "https://tripletex.no/v2", "test": "https://api-test.tripletex.tech/v2"}


DEFAULT_SESSION_DAYS = 2


#: Tripletex's own customer numbers start here after a webshop set-up ("Sett kundenummer til
#: 100000"), so the shop's customers keep their own numbers below it.
OWN_CUSTOMER_SERIES_START = 100_000


#: Where a webshop's invoice series starts by default ("Nettbutikken sin nummerserie starter som
#: standard på 6000"); Tripletex's invoice series is kept clear of it.
SHOP_INVOICE_SERIES_START = 6_000


#: What the set-up suggests for Tripletex's invoice series when unsure ("sett denne til f.eks 50000").
SUGGESTED_INVOICE_SERIES_START = 50_000


#: List endpoints that require a date window, and the names of its (from, exclusive to) parameters.
DATE_WINDOWS: dict[str, tuple[str, str]] = {
    "/ledger/posting": ("dateFrom", "dateTo"),
    "/ledger/postingByDate": ("dateFrom", "dateTo"),
    "/ledger/voucher": ("dateFrom", "dateTo"),
    "/invoice": ("invoiceDateFrom", "invoiceDateTo"),
    "/order": ("orderDateFrom", "orderDateTo"),
}


#: List endpoints with ``changedSince`` (all of them in API 2.72).
CHANGED_SINCE_PATHS = frozenset({"/customer", "/supplier", "/ledger/voucher/>nonPosted"})


#: Tripletex error codes LedgerLink acts on.
CODE_REVISION = 8000


CODE_RESULT_SET_TOO_LARGE = 23000


_CHECKSUM_PROBE = "ledgerlink"
"""Any non-empty ``If-None-Match`` turns ``versionDigest`` into a checksum; this one never matches."""


@dataclass(frozen=True)
class Session:
    """A session token and when it stops working. ``source`` is ``created``, ``store`` (the credential
    store) or ``machine`` (another process of this machine created it)."""

    token: str
    expires_at: datetime
    source: str = "created"

    def valid_for(self, now: datetime) -> timedelta:
        return self.expires_at - now


# One list page is the core Page (imported above): its values, with the page's ``versionDigest`` as
# ``digest`` when a checksum was asked for.


@dataclass(frozen=True)
class WriteResult:
    """What a write did: ``created``, ``updated``, ``unchanged`` or ``existing`` (found, not sent)."""

    action: str
    value: dict[str, Any]

    @property
    def id(self) -> int | None:
        ident = self.value.get("id")
        return ident if isinstance(ident, int) else None


# ==================================================================================================
# Requests: Oslo dates, date windows, changedSince, fields, Basic authorization, postings
# ==================================================================================================
def oslo_today(now: datetime) -> date:
    """The calendar date in Oslo at the instant ``now`` (naive values are taken as UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return now.astimezone(OSLO).date()


def session_expiration_date(now: datetime, days: int = DEFAULT_SESSION_DAYS) -> date:
    """The ``expirationDate`` for a new session: ``days`` after today *in Oslo*.

    A host in UTC that used its own date would, between 22:00/23:00 and midnight UTC, stamp a date
    that is already today in Oslo, and get a session that is dead on arrival.
    """
    if days < 1:
        raise ValueError("a session must last at least one day")
    return oslo_today(now) + timedelta(days=days)


def session_expires_at(expiration: date) -> datetime:
    """When a session with this ``expirationDate`` stops working: the start of that date in Oslo (UTC).

    Tripletex does not say whether the date is included; the earlier reading is the safe one.
    """
    return datetime.combine(expiration, dt_time(0), tzinfo=OSLO).astimezone(timezone.utc)


def window_dates(start: datetime, end: datetime) -> tuple[date, date]:
    """The Tripletex dates ``[from, to)`` of the instants ``[start, end)``.

    Tripletex dates are Oslo calendar days. A date belongs to the window that contains its start
    (midnight in Oslo). Windows aligned on Oslo midnights map to exactly their days; any other
    windows still give every date to exactly one window of a gapless series, so reruns and
    backfills neither lose nor repeat a day. A window containing no Oslo midnight has no dates.
    """
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if end.tzinfo is None:
        end = end.replace(tzinfo=timezone.utc)
    first = start.astimezone(OSLO)
    day_from = first.date() if first.time() == dt_time(0) else first.date() + timedelta(days=1)
    last = end.astimezone(OSLO)
    day_to = last.date() if last.time() == dt_time(0) else last.date() + timedelta(days=1)
    return day_from, max(day_from, day_to)


def split_dates(day_from: date, day_to: date, max_days: int) -> list[tuple[date, date]]:
    """``[from, to)`` cut into consecutive windows of at most ``max_days`` days."""
    if max_days < 1:
        raise ValueError("max_days must be at least 1")
    windows = []
    current = day_from
    while current < day_to:
        following = min(day_to, current + timedelta(days=max_days))
        windows.append((current, following))
        current = following
    return windows


def format_changed_since(moment: datetime) -> str:
    """``changedSince`` as sent: the UTC time, ``YYYY-MM-DDThh:mm:ss`` (the documented DateTime form).

    Tripletex does not say which zone it reads the value in. Read as UTC it is exact; read as Oslo
    time it is one or two hours early, which only adds rows. LedgerLink then keeps exactly the rows
    whose last change falls in the window (see :func:`last_change`).
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def with_changes(fields: str | None) -> str:
    """``fields`` extended so that every row carries its ``changes`` (``*,changes`` by default)."""
    if not fields or not fields.strip():
        return "*,changes"
    top_level = _top_level_fields(fields)
    return fields if "changes" in top_level else f"{fields},changes"


def _top_level_fields(fields: str) -> set[str]:
    names, depth, current = set(), 0, ""
    for char in fields:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            names.add(current.strip())
            current = ""
            continue
        if depth == 0 and char not in "()":
            current += char
    names.add(current.strip())
    return {name for name in names if name}


def basic_authorization(company_id: int, session_token: str) -> str:
    """The ``Authorization`` header value: Basic ``<company id>:<session token>``."""
    raw = f"{company_id}:{session_token}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _gross_postings(postings: Any, external: str) -> list[dict[str, Any]]:
    """Postings as ``POST /ledger/voucher`` reads them: "Only the gross amounts will be used", so
    each needs ``amountGross``; ``amountGrossCurrency`` is the same amount when not given (a NOK
    posting), as in Tripletex's own minimal example. ``amount`` alone is refused here, never sent."""
    operation = f"create voucher {external}"
    if not isinstance(postings, list) or len(postings) < 2:
        raise ValidationError(
            VENDOR, operation, "the voucher needs a list of at least two postings",
            hint="postings: [{account: {id}, amountGross}, …] that add up to zero",
        )  # fmt: skip
    result = []
    for index, posting in enumerate(postings):
        if not isinstance(posting, Mapping):
            raise ValidationError(VENDOR, operation, f"postings[{index}] is not an object")
        if posting.get("amountGross") is None:
            given = (
                " (it has 'amount', which Tripletex does not use for vouchers)" if "amount" in posting else ""
            )
            raise ValidationError(
                VENDOR, operation, f"postings[{index}] has no amountGross{given}",
                hint="Give each posting amountGross (and amountGrossCurrency for a foreign currency)",
            )  # fmt: skip
        body = dict(posting)
        body.setdefault("amountGrossCurrency", body["amountGross"])
        body.setdefault("row", index + 1)
        result.append(body)
    return result


# ==================================================================================================
# Answers: timestamps and changes, JSON objects, values and list pages
# ==================================================================================================
def parse_timestamp(text: str) -> datetime | None:
    """A Tripletex DateTime as an aware UTC datetime. Seen forms: ``…+01:00``, ``…Z`` and none
    (then Oslo time, as the documentation's ``YYYY-MM-DDThh:mm:ss`` implies); fractions allowed."""
    value = text.strip()
    if not value:
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=OSLO)
    return moment.astimezone(timezone.utc)


def last_change(row: Mapping[str, Any]) -> datetime | None:
    """The latest ``changes[].timestamp`` of a row read with ``fields=…,changes``; ``None`` when the
    row has no usable change history (objects from before 2018 may lack it)."""
    changes = row.get("changes")
    if not isinstance(changes, list):
        return None
    stamps = [
        parse_timestamp(str(change.get("timestamp") or ""))
        for change in changes
        if isinstance(change, Mapping)
    ]
    known = [stamp for stamp in stamps if stamp is not None]
    return max(known) if known else None


def _json(response: httpx.Response, operation: str) -> dict[str, Any]:
    body = json_answer(VENDOR, response, operation, reference=response.headers.get("x-tlx-request-id"))
    if not isinstance(body, dict):
        raise VendorError(
            VENDOR, operation, "the answer is not a JSON object", status_code=response.status_code
        )
    return body


def _value_of(response: httpx.Response, operation: str) -> dict[str, Any]:
    value = _json(response, operation).get("value")
    if not isinstance(value, dict):
        raise VendorError(
            VENDOR,
            operation,
            "the answer has no 'value' object",
            reference=response.headers.get("x-tlx-request-id"),
        )
    return value


def _page_of(response: httpx.Response, operation: str) -> Page:
    body = _json(response, operation)
    values = body.get("values")
    if not isinstance(values, list):
        raise VendorError(
            VENDOR,
            operation,
            "the answer has no 'values' list",
            hint="Is this a list endpoint? Single objects are read with get()",
            status_code=response.status_code,
            reference=response.headers.get("x-tlx-request-id"),
        )
    page = Page(values)
    digest = body.get("versionDigest")
    page.digest = digest if isinstance(digest, str) and "If-None-Match" not in digest else None
    return page


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


# ==================================================================================================
# Errors: Tripletex's error envelope as LedgerLink errors
# ==================================================================================================
class TripletexVersionConflictError(ValidationError):
    """A write carried a ``version`` that is no longer current (HTTP 409, code 8000)."""


class _NotModified(LedgerLinkError):
    """A 304: the list page is the one whose checksum was sent. Internal; never raised to callers."""


def tripletex_code(error: BaseException) -> int | None:
    """Tripletex's own error ``code`` (18000, 23000 …) carried by one of our errors, if any."""
    details = getattr(error, "details", None)
    if isinstance(details, Mapping):
        code = details.get("code")
        return code if isinstance(code, int) else None
    return None


def _describe(body: Mapping[str, Any]) -> str:
    parts = []
    message = body.get("message")
    if message:
        parts.append(str(message).rstrip("."))
    developer = body.get("developerMessage")
    if developer and developer != message:
        parts.append(str(developer).rstrip("."))
    for item in body.get("validationMessages") or []:
        if isinstance(item, Mapping):
            field = item.get("field") or item.get("path") or "?"
            parts.append(f"{field}: {str(item.get('message') or '').rstrip('.')}")
    code = body.get("code")
    text = "; ".join(parts) or "no details"
    return f"{text} (code {code})" if code is not None else text


def _rate_limit_reset(response: httpx.Response) -> float | None:
    value = response.headers.get("X-Rate-Limit-Reset")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def map_error(response: httpx.Response, operation: str) -> LedgerLinkError:
    """Tripletex's error envelope as LedgerLink errors, with the ``requestId`` as the reference."""
    status = response.status_code
    if status == 304:
        return _NotModified(VENDOR, operation, "not modified", status_code=304)
    body = error_body(response)
    reference = body.get("requestId") or response.headers.get("x-tlx-request-id")
    if not body or ("status" not in body and "code" not in body):
        error = default_error(VENDOR, response, operation)
        error.reference = reference
        return error
    text = _describe(body)
    kwargs: dict[str, Any] = {"status_code": status, "reference": reference, "details": body}
    code = body.get("code")
    if status == 401:
        return AuthenticationError(VENDOR, operation, text, hint="The session token was refused", **kwargs)
    if status == 403:
        return PermissionDeniedError(
            VENDOR,
            operation,
            text,
            hint=(
                "The employee token lacks the entitlement for this (a token has at most its employee's "
                "access), or the employee has no access to the company in company_id"
            ),
            **kwargs,
        )
    if status == 404:
        return NotFoundError(VENDOR, operation, text, hint="Check the id and the path", **kwargs)
    if status == 409 and code == CODE_REVISION:
        return TripletexVersionConflictError(
            VENDOR,
            operation,
            f"the object was changed by someone else since it was read: {text}",
            hint="Read the object again and apply the change to its current version",
            **kwargs,
        )
    if status == 429:
        return RateLimitedError(
            VENDOR,
            operation,
            text,
            retry_after=_rate_limit_reset(response),
            hint="The rate limit of this consumer and employee token is spent until the period ends",
            # "Once the rate limit is hit, all requests will return HTTP status code 429 for the
            # remainder of the current period" (sandbox/specs/tripletex/openapi-2.72.00.json, info):
            # a refusal, not processed.
            refused=True,
            **kwargs,
        )
    if status in (400, 409, 413, 422):
        hint = "Correct the request"
        if code == CODE_RESULT_SET_TOO_LARGE:
            hint = "Use a shorter date window (max_window_days)"
        return ValidationError(VENDOR, operation, text, hint=hint, **kwargs)
    return VendorError(VENDOR, operation, text, retryable=status >= 500, **kwargs)
