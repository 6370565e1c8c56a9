"""Alasco (construction cost management) through its public JSON:API.

Wire facts this hook relies on (sources and open questions in the Alasco page of the docs):

* base URL ``https://api.alasco.de/{fincon|capex|esg}/v1``; every path ends with ``/`` (a path
  without it answers 307 to the one with it, and ``/cost_elements/{id}`` is the one path the other
  way round), so redirects are followed;
* headers ``X-API-KEY`` and ``X-API-TOKEN`` on every request: one account-wide key and token;
* JSON:API documents ``{"data", "included", "links", "errors"}``; lists page by an opaque cursor,
  and the next page is the ``links.next`` URL, followed exactly as sent (page size 100, 1,000 on the
  reporting endpoints, not adjustable);
* filters ``filter[<attribute>.<operation>]=v1,v2`` with the operations ``exact``, ``contains``,
  ``less_than_equal``, ``greater_than_equal``, ``range``, ``in``, ``not_in`` and ``is``;
  ``include=a,b.c`` adds related objects to ``included``;
* money is an object of decimal strings (``{"currency": "EUR", "net": "1.000000000000", "tax": …}``)
  and stays exact here: numbers are parsed as :class:`~decimal.Decimal`, never as floats;
* request validation answers 422 with FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``;
* a document download answers 302 to a temporary pre-signed storage URL, which must be fetched
  without the API credentials.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cached_property
from itertools import product
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from airflow_provider_ledgerlink.core.credential_scope import scope_credentials, within_scope
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook
from airflow_provider_ledgerlink.core.http import HttpClient, default_error, parse_retry_after
from airflow_provider_ledgerlink.core.once import WriteOnce
from airflow_provider_ledgerlink.core.parallel import chain_in_order
from airflow_provider_ledgerlink.core.redaction import redact_url, register_secret
from airflow_provider_ledgerlink.core.rotation import NothingStagedError, promote_staged
from airflow_provider_ledgerlink.core.shared_state import SharedState

VENDOR = "Alasco"
DEFAULT_HOST = "https://api.alasco.de"
#: The connection's ``api`` extra → the base path of that API.
APIS: dict[str, str] = {"fincon": "/fincon/v1", "capex": "/capex/v1", "esg": "/esg/v1"}
DEFAULT_API = "fincon"

CORE_PAGE_SIZE = 100
REPORTING_PAGE_SIZE = 1000
#: Values per ``in`` filter in one request; longer lists are split into several requests so URLs
#: stay short (Alasco publishes no URL limit; these are the sizes its community client uses).
IN_CHUNK_SIZE = 50
REPORTING_IN_CHUNK_SIZE = 10
#: Concurrent cursor chains when a read is split into partitions (Alasco publishes no limit).
DEFAULT_MAX_IN_FLIGHT = 4

OPERATIONS = (
    "exact",
    "contains",
    "less_than_equal",
    "greater_than_equal",
    "range",
    "in",
    "not_in",
    "is",
)
OPERATION_ALIASES: dict[str, str] = {
    "eq": "exact", "=": "exact", "==": "exact",
    "gte": "greater_than_equal", ">=": "greater_than_equal", "ge": "greater_than_equal",
    "lte": "less_than_equal", "<=": "less_than_equal", "le": "less_than_equal",
    "between": "range",
    "not in": "not_in", "nin": "not_in",
}  # fmt: skip
_SINGLE_VALUE = frozenset({"exact", "contains", "less_than_equal", "greater_than_equal", "is"})
_ATTRIBUTE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*")
_INCLUDE_RE = re.compile(r"[a-z_]+(\.[a-z_]+)*")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

#: Contract statuses (``ContractStatus``) and the document types an invoice takes.
CONTRACT_STATUSES = ("DRAFT", "ORDERED", "PARTIAL_COMPLETED", "COMPLETED")
INVOICE_STATES = ("NEW", "DETAILS_ENTERED", "CHECKED", "APPROVED", "PAID")
INVOICE_DOCUMENT_TYPES = (
    "INVOICE", "ATTACHMENT", "COVERSHEET_EXTERNAL", "AUDITED_INVOICE", "INTERNAL_CORRESPONDENCE",
    "EXTERNAL_CORRESPONDENCE", "VALUATIONS", "PLANS", "REVISED_INVOICE", "PAYMENT_CERTIFICATE",
    "PROTOCOL", "OTHER",
)  # fmt: skip
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024


# ------------------------------------------------------------------------------------------------
# Filters
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filter:
    """One ``filter[<attribute>.<operation>]=<values>`` condition; conditions are ANDed."""

    attribute: str
    operation: str
    values: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"filter[{self.attribute}.{self.operation}]"

    def encoded(self) -> str:
        """``key=value`` for the query string: brackets and each value percent-encoded, the
        separating commas literal."""
        return f"{quote(self.key, safe='')}={','.join(quote(v, safe='') for v in self.values)}"


def format_filter_value(value: Any) -> str:
    """A Python value as Alasco reads it in a filter: instants in UTC with ``Z``, dates ISO,
    booleans ``true``/``false``, ``None`` as ``null`` (for ``is``), decimals exactly as given."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        utc = value.astimezone(timezone.utc).replace(tzinfo=None)
        return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        raise ValueError(
            f"filter value {value!r} is a float; give money and decimals as strings or Decimal "
            "so they stay exact"
        )
    return str(value)


def _split_key(key: str) -> tuple[str, str]:
    text = key.strip()
    if text.startswith("filter[") and text.endswith("]"):
        text = text[len("filter[") : -1]
    attribute, dot, operation = text.rpartition(".")
    if not dot:
        raise ValueError(
            f"filter {key!r} names no operation; write '<attribute>.<operation>', "
            f"e.g. 'date_created.greater_than_equal'"
        )
    return attribute, operation


def make_filter(attribute: str, operation: str, value: Any) -> Filter:
    """Validate one condition; ``value`` is a single value or, for ``in``/``not_in``/``range``, a list."""
    op = str(operation).strip().lower()
    op = OPERATION_ALIASES.get(op, op)
    if op not in OPERATIONS:
        raise ValueError(f"unknown filter operation {operation!r}; use one of {', '.join(OPERATIONS)}")
    attribute = str(attribute).strip()
    if not _ATTRIBUTE_RE.fullmatch(attribute):
        raise ValueError(f"{attribute!r} is not a filter attribute name")
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    elif isinstance(value, str) and op in ("in", "not_in", "range") and "," in value:
        items = [part.strip() for part in value.split(",")]
    else:
        items = [value]
    texts = [format_filter_value(item) for item in items]
    if op in _SINGLE_VALUE and len(texts) != 1:
        raise ValueError(f"filter {attribute}.{op} takes exactly one value, got {len(texts)}")
    if op == "range" and len(texts) != 2:
        raise ValueError(f"filter {attribute}.range takes two values (from, to), got {len(texts)}")
    if op in ("in", "not_in"):
        if not texts:
            raise ValueError(f"filter {attribute}.{op} needs at least one value")
        if any("," in text for text in texts):
            raise ValueError(f"a value of filter {attribute}.{op} contains a comma, which separates values")
        texts = list(dict.fromkeys(texts))  # duplicates only lengthen the URL
    return Filter(attribute, op, tuple(texts))


def normalize_filters(filters: Any) -> list[Filter]:
    """Filters from any of the accepted forms, all ANDed:

    * a mapping ``{"date_created.greater_than_equal": "2026-11-01", "status.in": ["ORDERED"]}``
      (``"filter[status.in]"`` keys work too);
    * a list of ``(attribute, operation, value)`` tuples, ``{"attribute", "operation", "value"}``
      dicts or :class:`Filter` objects.
    """
    if not filters:
        return []
    result: list[Filter] = []
    if isinstance(filters, Mapping):
        for key, value in filters.items():
            attribute, operation = _split_key(str(key))
            result.append(make_filter(attribute, operation, value))
        return result
    for item in filters:
        if isinstance(item, Filter):
            result.append(item)
        elif isinstance(item, Mapping):
            try:
                result.append(
                    make_filter(item["attribute"], item.get("operation", "exact"), item.get("value"))
                )
            except KeyError:
                raise ValueError(f"filter {dict(item)!r} has no 'attribute'") from None
        elif isinstance(item, list | tuple) and len(item) == 3:
            result.append(make_filter(item[0], item[1], item[2]))
        else:
            raise ValueError(f"a filter must be (attribute, operation, value) or a dict, not {item!r}")
    return result


def plan_queries(filters: Sequence[Filter], chunk_size: int) -> list[list[Filter]]:
    """The filter sets to request so no ``in`` list is longer than ``chunk_size``.

    Each long ``in`` list is split into disjoint chunks and the requests are the combinations of
    the chunks: the union of their results is exactly the original query's, without duplicates.
    """
    options: list[list[Filter]] = []
    for item in filters:
        if item.operation == "in" and len(item.values) > chunk_size:
            options.append(
                [
                    Filter(item.attribute, "in", item.values[n : n + chunk_size])
                    for n in range(0, len(item.values), chunk_size)
                ]
            )
        else:
            options.append([item])
    return [list(combination) for combination in product(*options)] if options else [[]]


def normalize_include(include: str | Iterable[str] | None) -> list[str]:
    if not include:
        return []
    names = include.split(",") if isinstance(include, str) else list(include)
    cleaned = [str(name).strip() for name in names if str(name).strip()]
    for name in cleaned:
        if not _INCLUDE_RE.fullmatch(name):
            raise ValueError(f"include {name!r} is not a relationship path such as 'contract.contractor'")
    return list(dict.fromkeys(cleaned))


def build_query(filters: Sequence[Filter], include: Sequence[str] = ()) -> str:
    parts = [item.encoded() for item in filters]
    if include:
        parts.append("include=" + ",".join(include))
    return "&".join(parts)


def resource_path(resource: str, *ids: str, trailing_slash: bool = True) -> str:
    """``/invoices/``, ``/invoices/<id>/``, ``/reporting/contracts/`` from the parts given."""
    segments = [segment for segment in str(resource).strip().split("/") if segment]
    if not segments or any(not re.fullmatch(r"[A-Za-z0-9_\-]+", s) for s in segments):
        raise ValueError(f"{resource!r} is not an Alasco resource path such as 'invoices'")
    for item in ids:
        text = str(item).strip()
        if not _UUID_RE.fullmatch(text):
            raise ValueError(f"{item!r} is not an Alasco id (a UUID)")
        segments.append(text.lower())
    return "/" + "/".join(segments) + ("/" if trailing_slash else "")


def is_reporting(resource: str) -> bool:
    return str(resource).strip("/").split("/")[0] == "reporting"


# ------------------------------------------------------------------------------------------------
# Windows on a date attribute
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Slice:
    """A half-open range ``[start, end)`` of a date attribute; ``None`` leaves that end open."""

    start: datetime | None
    end: datetime | None


def split_range(start: datetime, end: datetime, parts: int) -> list[Slice]:
    """``[start, end)`` cut into ``parts`` equal, adjacent slices."""
    parts = max(1, int(parts))
    span = end - start
    bounds = [start + span * n / parts for n in range(parts + 1)]
    bounds[-1] = end
    return [Slice(bounds[n], bounds[n + 1]) for n in range(parts) if bounds[n] < bounds[n + 1]]


def open_slices(first: datetime, last: datetime, parts: int) -> list[Slice]:
    """Slices covering everything: ``(…, first)``, ``parts - 2`` equal ones up to ``last``, ``[last, …)``.

    Used to read a whole resource in parallel chains without knowing its oldest record."""
    if parts <= 1 or last <= first:
        return [Slice(None, None)]
    inner = split_range(first, last, max(1, parts - 2))
    return [Slice(None, first), *inner, Slice(last, None)]


def parse_timestamp(value: Any) -> datetime | None:
    """An Alasco date-time (``…Z``, an offset, or none: UTC) or date as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = (
            datetime.fromisoformat(text) if len(text) > 10 else datetime.fromisoformat(text + "T00:00:00")
        )
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def slice_filters(attribute: str, part: Slice, *, date_only: bool = False) -> list[Filter]:
    """The filters reading ``part`` of ``attribute``. Alasco's comparisons include both ends, so the
    end is filtered on itself (datetimes) or the day before it (dates), and :func:`slice_owner` drops
    what lies exactly on a datetime end."""
    filters = []
    if date_only:
        if part.start is not None:
            first = (
                part.start.date()
                if part.start.time() == datetime.min.time()
                else part.start.date() + timedelta(days=1)
            )
            filters.append(make_filter(attribute, "greater_than_equal", first))
        if part.end is not None:
            filters.append(
                make_filter(attribute, "less_than_equal", (part.end - timedelta(microseconds=1)).date())
            )
        return filters
    if part.start is not None:
        filters.append(make_filter(attribute, "greater_than_equal", part.start))
    if part.end is not None:
        filters.append(make_filter(attribute, "less_than_equal", part.end))
    return filters


def slice_owner(attribute: str, part: Slice) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a resource's ``attribute`` lies in ``[start, end)`` (a row on the end belongs to the
    next slice). Rows without a readable value are kept: Alasco selected them."""

    def owns(resource: Mapping[str, Any]) -> bool:
        moment = parse_timestamp((resource.get("attributes") or {}).get(attribute))
        if moment is None:
            return True
        if part.start is not None and moment < part.start:
            return False
        return part.end is None or moment < part.end

    return owns


# ------------------------------------------------------------------------------------------------
# Documents and records
# ------------------------------------------------------------------------------------------------
@dataclass
class Page:
    """One JSON:API list page: ``data`` resources, ``included`` related ones, the ``next`` link."""

    data: list[dict[str, Any]]
    included: list[dict[str, Any]] = field(default_factory=list)
    next: str | None = None


def parse_document(response: httpx.Response, operation: str) -> dict[str, Any]:
    """The JSON body with every number that is not an integer as an exact ``Decimal``."""
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        snippet = " ".join(response.text[:160].split())
        raise VendorError(
            VENDOR,
            operation,
            f"the answer is not JSON (content-type {response.headers.get('content-type', '?')}): {snippet!r}",
            hint="A proxy or a maintenance page may be in the way; check the host of the connection",
            status_code=response.status_code,
        ) from None
    if not isinstance(body, dict):
        raise VendorError(VENDOR, operation, "the answer is not a JSON:API document (an object)")
    if body.get("errors") and body.get("data") is None:
        raise VendorError(
            VENDOR,
            operation,
            _describe_errors(body["errors"]) or "the document holds errors and no data",
            status_code=response.status_code,
        )
    return body


def related_id(relationship: Any) -> Any:
    """The id(s) a relationship points at: ``data.id`` (or a list of them), else the UUID that ends a
    ``links.related`` URL of a single object; ``None`` for a to-many link such as ``…/documents/``."""
    if not isinstance(relationship, Mapping):
        return None
    data = relationship.get("data")
    if isinstance(data, Mapping):
        return data.get("id")
    if isinstance(data, list):
        return [item.get("id") for item in data if isinstance(item, Mapping)]
    links = relationship.get("links")
    related = links.get("related") if isinstance(links, Mapping) else None
    if isinstance(related, str):
        last = related.rstrip("/").rsplit("/", 1)[-1]
        if _UUID_RE.fullmatch(last):
            return last
    return None


def _flatten_into(row: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten_into(row, f"{prefix}_{key}", inner)
    else:
        row[prefix] = value


def flatten_resource(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON:API resource as one flat row.

    ``id`` and ``type``, then every attribute; objects become ``<name>_<key>`` columns (money:
    ``amount_net``, ``amount_tax``, ``amount_currency``; ``payment_amount_gross_amount``); lists stay
    lists. Each to-one relationship adds its id as ``<name>_id`` unless an attribute of the same name
    already holds it (``contract``, ``project`` …). Values keep their exact types: decimal strings
    stay strings, other decimals are ``Decimal``.
    """
    row: dict[str, Any] = {"id": resource.get("id"), "type": resource.get("type")}
    attributes = resource.get("attributes")
    if isinstance(attributes, Mapping):
        for key, value in attributes.items():
            _flatten_into(row, str(key), value)
    relationships = resource.get("relationships")
    if isinstance(relationships, Mapping):
        for name, relationship in relationships.items():
            if isinstance(attributes, Mapping) and name in attributes:
                continue
            target = related_id(relationship)
            if target is not None:
                row[f"{name}_id"] = target
    return row


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
def _describe_validation(detail: Any) -> str:
    """FastAPI's ``detail``: a list of ``{"loc", "msg", "type"}`` (or a plain string)."""
    if isinstance(detail, str):
        return detail
    if not isinstance(detail, list):
        return ""
    parts = []
    for item in detail[:10]:
        if not isinstance(item, Mapping):
            continue
        loc = item.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
        message = str(item.get("msg") or item.get("type") or "invalid")
        parts.append(f"{where}: {message}" if where else message)
    if len(detail) > 10:
        parts.append(f"… and {len(detail) - 10} more")
    return "; ".join(parts)


def _describe_errors(errors: Any) -> str:
    """JSON:API ``errors``: a list of ``{"status", "title", "detail", "source"}``."""
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors[:10]:
        if not isinstance(item, Mapping):
            continue
        text = " - ".join(str(item[k]) for k in ("title", "detail") if item.get(k))
        source = item.get("source")
        if isinstance(source, Mapping) and source:
            text += " (" + ", ".join(f"{k} {v}" for k, v in source.items()) + ")"
        if text:
            parts.append(text)
    return "; ".join(parts)


def describe_error_body(response: httpx.Response) -> str:
    """What the error body says, from whichever shape it has (FastAPI, JSON:API, ``message``)."""
    try:
        body = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, Mapping):
        return ""
    text = _describe_errors(body.get("errors")) or _describe_validation(body.get("detail"))
    if not text and isinstance(body.get("message"), str):
        text = body["message"]
    return text


def map_error(response: httpx.Response, operation: str) -> LedgerLinkError:
    """Alasco's error answers as LedgerLink errors. Only 422 is documented; the rest is read
    tolerantly (JSON:API ``errors``, FastAPI ``detail``, ``message``, text or an HTML page)."""
    status = response.status_code
    text = describe_error_body(response)
    reference = response.headers.get("x-request-id") or response.headers.get("x-correlation-id")
    common: dict[str, Any] = {"status_code": status, "reference": reference}
    if not within_scope(response.url, _scope_of(response)):
        # Only a redirect leaves the API: the pre-signed storage URL of a document download.
        return VendorError(
            VENDOR,
            operation,
            f"the document storage refused the download link (HTTP {status}) {text}".strip(),
            hint="The pre-signed link may have expired; download the document again",
            retryable=status >= 500,
            **common,
        )
    if status == 401:
        return AuthenticationError(
            VENDOR,
            operation,
            text or "Alasco did not accept the API key and token (HTTP 401)",
            hint=(
                "Check the key (login) and token (password) of the connection. The token is shown only "
                "once when an Admin creates it under Integrationen; if it was replaced, the old one no "
                "longer works: enter the new pair"
            ),
            **common,
        )
    if status == 403:
        return PermissionDeniedError(
            VENDOR,
            operation,
            text or "Alasco refused this call for these credentials (HTTP 403)",
            hint=(
                "The account needs the package Pro with Public API access booked, and the credentials "
                "must belong to the API in the connection's 'api' extra (fincon, capex or esg)"
            ),
            **common,
        )
    if status == 404:
        return NotFoundError(
            VENDOR,
            operation,
            text or "not found (HTTP 404)",
            hint="Check the resource and the id; the object may have been deleted",
            **common,
        )
    if status in (400, 409, 413, 415, 422):
        return ValidationError(
            VENDOR,
            operation,
            text or f"Alasco rejected the request (HTTP {status})",
            hint=(
                "Correct the filters, include paths or the request body; the Alasco API reference "
                "lists per endpoint which attributes and operations are allowed"
            ),
            **common,
        )
    if status == 429:
        return RateLimitedError(
            VENDOR,
            operation,
            text or "Alasco asked to slow down (HTTP 429)",
            retry_after=parse_retry_after(response),
            hint="Lower max_in_flight or spread the DAGs that use this account",
            **common,
        )
    if status == 503:
        return ServiceUnavailableError(
            VENDOR,
            operation,
            text or "Alasco is temporarily unavailable (HTTP 503)",
            retry_after=parse_retry_after(response),
            hint="Try again later",
            **common,
        )
    if text:
        return VendorError(VENDOR, operation, text, retryable=status >= 500, **common)
    return default_error(VENDOR, response, operation)


def _scope_of(response: httpx.Response) -> httpx.URL:
    """The API base URL the hook recorded on the request (redirects carry it along)."""
    request = response.request
    scope = request.extensions.get("ledgerlink_scope")
    return httpx.URL(scope) if isinstance(scope, str) else request.url


# ------------------------------------------------------------------------------------------------
# Money
# ------------------------------------------------------------------------------------------------
_MONEY_RE = re.compile(r"[+-]?\d{1,16}(\.\d{1,12})?")


def format_money(value: Any, *, name: str = "amount") -> str:
    """An amount as the decimal string Alasco takes (at most 16 digits before and 12 after the
    point). Floats are refused: they cannot carry cents exactly."""
    if isinstance(value, bool | float):
        raise ValueError(f"{name} must be a Decimal, int or decimal string, not {type(value).__name__}")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError(f"{name} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{name} {value!r} is not a finite number")
    text = format(number, "f")
    if not _MONEY_RE.fullmatch(text):
        raise ValueError(f"{name} {value!r} has more than 16 digits before or 12 after the point")
    return text


#: The parts of the spec's money objects in request bodies (``{"currency", "net", "tax"}``; net and
#: tax are ``type: string``, e.g. ``"123.123456789012"``, in every write schema of the FinCon spec).
MONEY_PARTS = ("net", "tax")


def is_money_object(value: Any) -> bool:
    """Whether ``value`` has the shape of the spec's money object: ``net``/``tax`` (and ``currency``)."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and set(value) <= {"currency", *MONEY_PARTS}
        and bool(set(value) & set(MONEY_PARTS))
    )


def money_as_strings(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` with every money object's ``net`` and ``tax`` as the decimal strings the spec
    asks for (``Decimal``, int and decimal strings accepted, floats refused); other values as given.
    Raises ``ValueError`` naming the attribute."""
    result: dict[str, Any] = {}
    for name, value in attributes.items():
        if is_money_object(value):
            result[name] = {
                part: (
                    format_money(amount, name=f"{name}.{part}")
                    if part in MONEY_PARTS and amount is not None
                    else amount
                )
                for part, amount in value.items()
            }
        else:
            result[name] = value
    return result


def same_money(a: Any, b: Any) -> bool:
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except (InvalidOperation, ValueError):
        return False


# ------------------------------------------------------------------------------------------------
# The hook
# ------------------------------------------------------------------------------------------------
class AlascoHook(LedgerLinkHook):
    """The Alasco public API for one account.

    The connection (type ``ledgerlink_alasco``): login = the API key, password = the API token;
    extra ``api`` = ``fincon`` (default), ``capex`` or ``esg`` selects the API; host, when set,
    replaces ``https://api.alasco.de`` (a proxy, or the sandbox).

    :param alasco_conn_id: the Airflow connection id.
    :param max_in_flight: cursor chains read at once when a read is split into partitions.
    :param in_chunk_size: values per ``in`` filter in one request (reporting endpoints: at most 10).
    :param once_state: where the write-once records of payments, status changes and submitted
        invoices live (default: Airflow Variables, shared by every worker).
    :param once_wait: seconds an attempt waits for another attempt of the same write to learn its
        outcome before failing with :class:`AmbiguousWriteError`.
    """

    conn_name_attr = "alasco_conn_id"
    default_conn_name = "alasco_default"
    conn_type = "ledgerlink_alasco"
    hook_name = "Alasco (LedgerLink)"
    vendor = VENDOR
    credential_dependents = ("credentials", "client")

    def __init__(
        self,
        alasco_conn_id: str = default_conn_name,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        in_chunk_size: int = IN_CHUNK_SIZE,
        adopt_staged: bool = True,
        once_state: SharedState | None = None,
        once_wait: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(alasco_conn_id, **kwargs)
        #: Where write-once records live (default: Airflow Variables).
        self.once_state = once_state
        #: Seconds an attempt waits for another attempt's outcome before calling the write ambiguous.
        self.once_wait = once_wait
        self.alasco_conn_id = alasco_conn_id
        self.adopt_staged = adopt_staged
        self._adopt_lock = threading.Lock()
        self.max_in_flight = max(1, int(max_in_flight))
        self.in_chunk_size = max(1, int(in_chunk_size))

    # -- settings ---------------------------------------------------------------------------------
    @cached_property
    def credentials(self) -> dict[str, str]:
        """The two headers; the client reads this very dict at every request (see
        :meth:`_adopt_staged_credential`)."""
        return self._credential_headers()

    def _credential_headers(self) -> dict[str, str]:
        key = (self.connection.login or "").strip()
        token = (self.connection.password or "").strip()
        if not key:
            raise self.config_error("the API key is empty", field="Login (the Alasco API key)")
        if not token:
            raise self.config_error("the API token is empty", field="Password (the Alasco API token)")
        for name, value in (("API key", key), ("API token", token)):
            if any(ch.isspace() for ch in value) or not value.isprintable():
                raise self.config_error(
                    f"the {name} contains spaces or control characters (a copy-paste error?)",
                    field="Login (API key)" if name == "API key" else "Password (API token)",
                )
        register_secret(key)
        register_secret(token)
        return {"X-API-KEY": key, "X-API-TOKEN": token}

    @cached_property
    def api(self) -> str:
        value = str(self.extra("api", DEFAULT_API)).strip().lower()
        if value not in APIS:
            raise self.config_error(
                f"api {value!r} is not one of {', '.join(APIS)}", field="Extra 'api' (fincon, capex or esg)"
            )
        return value

    @cached_property
    def base_url(self) -> str:
        host = (self.connection.host or "").strip() or DEFAULT_HOST
        if "://" not in host:
            host = f"https://{host}"
        host = host.rstrip("/")
        try:
            parsed = httpx.URL(host)
        except httpx.InvalidURL:
            raise self.config_error(f"host {host!r} is not a URL", field="Host") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise self.config_error(f"host {host!r} is not an http(s) URL", field="Host")
        suffix = APIS[self.api]
        return host if host.endswith(suffix) else host + suffix

    @cached_property
    def client(self) -> HttpClient:
        client = self.make_client(
            base_url=self.base_url,
            headers={"Accept": "application/vnd.api+json, application/json"},
            error_mapper=map_error,
            max_connections=max(self.max_in_flight, 2),
        )
        scope_credentials(client, self.credentials, scope=self.base_url + "/")
        return client

    def get_conn(self) -> HttpClient:
        return self.client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()

    # -- the one place requests are sent ----------------------------------------------------------
    def _request(self, method: str, url: str, *, operation: str, **kwargs: Any) -> httpx.Response:
        """Send with the retry policy, following redirects (307 for a missing trailing slash, 302
        to a document's storage URL). Credentials go only to URLs under the API base URL."""
        extensions = dict(kwargs.pop("extensions", None) or {})
        extensions["ledgerlink_scope"] = self.base_url + "/"
        try:
            try:
                return self.client.request(
                    method, url, operation=operation, follow_redirects=True, extensions=extensions, **kwargs
                )
            except AuthenticationError as refused:
                if not self._adopt_staged_credential(refused, self.credentials["X-API-TOKEN"]):
                    raise
                return self.client.request(
                    method, url, operation=operation, follow_redirects=True, extensions=extensions, **kwargs
                )
        except httpx.TooManyRedirects:
            raise VendorError(
                VENDOR,
                operation,
                f"too many redirects from {redact_url(url)}",
                hint="Check the host of the connection; a proxy may be redirecting in a loop",
            ) from None

    def _adopt_staged_credential(self, refused: AuthenticationError, used_token: str) -> bool:
        """After a 401, switch to the staged token if it works; ``True`` when the request may be repeated.

        An Alasco account has one credential set: when an administrator creates a new one, the old
        token stops working at once. With the new token in the staging slot, the first request
        refused verifies it, promotes it in the credential store and carries on with it, so
        pipelines keep running from the moment the token is staged. A request refused with 401 was
        not carried out, so repeating it is safe.
        """
        if not self.adopt_staged or refused.http_status != 401 or self.credential_overrides is not None:
            return False
        with self._adopt_lock:
            if self.credentials["X-API-TOKEN"] != used_token:
                return True  # another thread switched already
            try:
                result = promote_staged(self, forget=False)
            except NothingStagedError:
                return False
            except LedgerLinkError as error:
                self.log.warning("The staged Alasco token was not adopted: %s", error)
                return False
            self.forget_connection(keep_clients=True)  # the threads' client stays; its headers change
            self.credentials.update(self._credential_headers())
        self.log.warning(
            "Alasco refused the token of connection '%s'; the staged token works and was promoted (%s)",
            self.conn_id,
            result.store,
        )
        return True

    def _absolute(self, path_or_url: str) -> str:
        return (
            urljoin(self.base_url + "/", path_or_url.lstrip("/")) if "://" not in path_or_url else path_or_url
        )

    # -- reading ----------------------------------------------------------------------------------
    def get_document(self, path: str, *, operation: str | None = None) -> dict[str, Any]:
        """``GET`` one URL (relative to the base URL, or absolute under it) as a parsed document."""
        operation = operation or f"GET {path.split('?')[0]}"
        return parse_document(self._request("GET", self._absolute(path), operation=operation), operation)

    def get(
        self, resource: str, resource_id: str, *, include: str | Iterable[str] | None = None
    ) -> dict[str, Any]:
        """One object, e.g. ``get("invoices", "<uuid>")``; returns the document's ``data``."""
        operation = f"read {resource} {resource_id}"
        try:
            path = resource_path(resource, resource_id)
            names = normalize_include(include)
        except ValueError as exc:
            raise ValidationError(VENDOR, operation, str(exc)) from None
        query = build_query([], names)
        document = self.get_document(path + (f"?{query}" if query else ""), operation=operation)
        data = document.get("data")
        if not isinstance(data, dict):
            raise VendorError(VENDOR, operation, "the answer has no 'data' object")
        return data

    def _plan(
        self, resource: str, filters: Any, include: Any, operation: str
    ) -> tuple[str, list[list[Filter]], list[str]]:
        try:
            path = resource_path(resource)
            conditions = normalize_filters(filters)
            names = normalize_include(include)
        except ValueError as exc:
            raise ValidationError(
                VENDOR, operation, str(exc), hint="Fix the filters or include paths"
            ) from None
        chunk = (
            min(self.in_chunk_size, REPORTING_IN_CHUNK_SIZE) if is_reporting(resource) else self.in_chunk_size
        )
        for condition in conditions:
            if condition.operation == "not_in" and len(condition.values) > chunk * 4:
                raise ValidationError(
                    VENDOR,
                    operation,
                    f"filter {condition.attribute}.not_in has {len(condition.values)} values; a not_in "
                    "list cannot be split into several requests",
                    hint="Use a shorter list, or filter the rows after reading them",
                )
        return path, plan_queries(conditions, chunk), names

    def iter_pages_of(self, path: str, query: str, *, operation: str) -> Iterator[Page]:
        """Follow one cursor chain from ``path?query`` to its last page."""
        url: str | None = self._absolute(path + (f"?{query}" if query else ""))
        previous = None
        while url is not None:
            if url == previous:
                raise VendorError(
                    VENDOR, operation, "links.next points at the page just read", hint="Report this to Alasco"
                )
            previous = url
            document = parse_document(self._request("GET", url, operation=operation), operation)
            data = document.get("data")
            if not isinstance(data, list):
                raise VendorError(
                    VENDOR, operation, "the answer has no 'data' list", hint="Is this a list endpoint?"
                )
            included = document.get("included")
            page = Page(data=data, included=included if isinstance(included, list) else [])
            page.next = self._next_link(document, url, operation)
            url = page.next
            yield page

    def _next_link(self, document: Mapping[str, Any], current: str, operation: str) -> str | None:
        links = document.get("links")
        nxt = links.get("next") if isinstance(links, Mapping) else None
        if not nxt:
            return None
        absolute = urljoin(current, str(nxt))  # exactly as sent; only a relative link is resolved
        if not within_scope(httpx.URL(absolute), httpx.URL(self.base_url + "/")):
            raise VendorError(
                VENDOR,
                operation,
                f"links.next leads outside the API ({redact_url(absolute)})",
                hint="Check the host of the connection: it must be the address Alasco uses in its links",
            )
        return absolute

    def get_pages(
        self,
        resource: str,
        *,
        filters: Any = None,
        include: str | Iterable[str] | None = None,
    ) -> Iterator[Page]:
        """Every page of a list endpoint, lazily: one cursor chain per chunk of long ``in`` lists."""
        operation = f"list {resource}"
        path, plans, names = self._plan(resource, filters, include, operation)
        for conditions in plans:
            yield from self.iter_pages_of(path, build_query(conditions, names), operation=operation)

    def get_all(
        self,
        resource: str,
        *,
        filters: Any = None,
        include: str | Iterable[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint (``invoices``, ``reporting/contracts`` …), lazily.

        ``filters``: see :func:`normalize_filters`; ``include``: relationship paths whose objects
        arrive in each page's ``included`` (read them with :meth:`get_pages`).
        """
        for page in self.get_pages(resource, filters=filters, include=include):
            yield from page.data

    def get_pages_partitioned(
        self,
        resource: str,
        partitions: Sequence[Sequence[Filter]],
        *,
        filters: Any = None,
        include: str | Iterable[str] | None = None,
        keep: Callable[[int, dict[str, Any]], bool] | None = None,
        max_in_flight: int | None = None,
    ) -> Iterator[Page]:
        """Pages of several disjoint partitions of one read, up to ``max_in_flight`` cursor chains at
        once, delivered in partition order. ``keep(partition_index, resource)`` drops rows a partition
        does not own (Alasco's range filters include both ends)."""
        operation = f"list {resource}"
        path, plans, names = self._plan(resource, filters, include, operation)
        jobs: list[tuple[int, str]] = [
            (index, build_query([*conditions, *extra], names))
            for index, extra in enumerate(partitions)
            for conditions in plans
        ]

        def chain(index: int, query: str) -> Callable[[], Iterator[Page]]:
            def pages() -> Iterator[Page]:
                for page in self.iter_pages_of(path, query, operation=operation):
                    if keep is not None:
                        page.data = [item for item in page.data if keep(index, item)]
                    yield page

            return pages

        yield from chain_in_order(
            [chain(index, query) for index, query in jobs],
            max_in_flight=max_in_flight or self.max_in_flight,
            thread_name="ledgerlink-alasco",
        )

    def check_connection(self) -> str:
        document = self.get_document(
            resource_path("properties"), operation="test connection (list properties)"
        )
        count = len(document.get("data") or [])
        more = " and more" if (document.get("links") or {}).get("next") else ""
        return (
            f"Connected to the Alasco {self.api} API at {redact_url(self.base_url)}: {count}{more} properties"
        )

    # -- writing ----------------------------------------------------------------------------------
    def _send_json(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        *,
        operation: str,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        response = self._request(
            method,
            self._absolute(path),
            operation=operation,
            idempotent=idempotent,
            content=json.dumps(body, default=_json_default).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        if not response.content.strip():
            return {}
        return parse_document(response, operation)

    @staticmethod
    def _attributes(attributes: Mapping[str, Any], operation: str) -> dict[str, Any]:
        """Request attributes with money as the spec's strings; a clear error before sending."""
        try:
            return money_as_strings(attributes)
        except ValueError as exc:
            raise ValidationError(
                VENDOR,
                operation,
                str(exc),
                hint='Give money as {"currency": "EUR", "net": "1000.00", "tax": "190.00"} with Decimal or '
                "decimal-string amounts",
            ) from None

    def create(
        self,
        resource: str,
        attributes: Mapping[str, Any],
        *,
        resource_type: str,
        relationships: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /<resource>/`` with a JSON:API body; returns the created ``data``. Not idempotent:
        never re-sent after an ambiguous failure (check before creating again)."""
        operation = f"create {resource}"
        data: dict[str, Any] = {"type": resource_type, "attributes": self._attributes(attributes, operation)}
        if relationships:
            data["relationships"] = dict(relationships)
        return (
            self._send_json("POST", resource_path(resource), {"data": data}, operation=operation).get("data")
            or {}
        )

    def update(
        self,
        resource: str,
        resource_id: str,
        attributes: Mapping[str, Any],
        *,
        resource_type: str,
        relationships: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``PATCH /<resource>/<id>/``. Setting fields to given values is safe to repeat, so it is
        retried like a read."""
        operation = f"update {resource} {resource_id}"
        data: dict[str, Any] = {
            "id": resource_id,
            "type": resource_type,
            "attributes": self._attributes(attributes, operation),
        }
        if relationships:
            data["relationships"] = dict(relationships)
        path = resource_path(resource, resource_id)
        return (
            self._send_json("PATCH", path, {"data": data}, operation=operation, idempotent=True).get("data")
            or {}
        )

    # -- the three business writes, each safe to rerun --------------------------------------------
    def register_payment(
        self,
        invoice_id: str,
        *,
        amount_gross: Any,
        payment_date: date | str,
        comment: str = "",
    ) -> dict[str, Any]:
        """Register the payment of an approved invoice, once.

        Checks first: an invoice that is already ``PAID`` is left alone (``status: already_paid``;
        a warning is logged when its payment differs). The POST itself goes through a
        :class:`~..core.once.WriteOnce` record keyed by the invoice (an invoice is paid once): a
        retry, rerun or backfill never sends a second payment, whatever amount or date it carries
        (``status: already_registered`` when the record says it was sent). When the answer to the
        POST is lost, the invoice is read again: paid, it counts as registered; not paid,
        :class:`AmbiguousWriteError` says how to check in Alasco, and no later attempt sends until
        the record is resolved. Returns ``{"invoice_id", "status", "payment": {...}}``.
        """
        operation = f"register payment on invoice {invoice_id}"
        try:
            path = resource_path("invoices", invoice_id) + "register-payment/"
            amount = format_money(amount_gross, name="amount_gross")
            day = payment_date if isinstance(payment_date, str) else payment_date.isoformat()
            date.fromisoformat(day)
        except (ValueError, TypeError) as exc:
            raise ValidationError(
                VENDOR, operation, str(exc), hint="Give a decimal amount and a YYYY-MM-DD date"
            ) from None
        current = self.get("invoices", invoice_id)
        if self._payment_of(current) is not None:
            return self._already_paid(current, amount, day, operation)
        state = (current.get("attributes") or {}).get("invoice_process_state")
        if state != "APPROVED":
            raise ValidationError(
                VENDOR,
                operation,
                f"the invoice is in state {state}; a payment can only be registered on an APPROVED invoice",
                hint="Wait until the invoice is approved in Alasco",
            )
        body = {
            "data": {
                "type": "PAYMENT_DETAILS",
                "attributes": {
                    "payment_amount_gross": amount,
                    "payment_date": day,
                    "payment_comment": comment,
                },
            }
        }
        once = WriteOnce(
            vendor=VENDOR,
            operation=operation,
            account=self.base_url,
            key=f"invoice {invoice_id.lower()} register-payment",
            label=f"the payment of invoice {invoice_id} ({amount} on {day})",
            state=self.once_state,
            wait=self.once_wait,
        )

        def send() -> dict[str, Any]:
            try:
                document = self._send_json("POST", path, body, operation=operation)
            except AmbiguousWriteError:
                after = self.get("invoices", invoice_id)
                if self._payment_of(after) is None:
                    raise
                self.log.warning("The answer to %s was lost, but the payment is there", operation)
                return {"payment": self._payment_of(after)}
            return {"payment": self._payment_of(document.get("data") or {})}

        check = (
            f"In Alasco, open invoice {invoice_id} and look whether a payment is registered (state "
            f"PAID, payment date and amount set); AlascoHook.get('invoices', '{invoice_id}') shows it"
        )
        outcome = once.run(send, check_hint=check)
        return {
            "invoice_id": invoice_id,
            "status": "registered" if outcome.sent else "already_registered",
            "payment": outcome.result.get("payment"),
        }

    @staticmethod
    def _payment_of(resource: Mapping[str, Any]) -> dict[str, Any] | None:
        attributes = resource.get("attributes") or {}
        if attributes.get("invoice_process_state") != "PAID" and not attributes.get("payment_date"):
            return None
        gross = attributes.get("payment_amount_gross") or {}
        return {
            "payment_date": attributes.get("payment_date"),
            "payment_amount_gross": gross.get("amount") if isinstance(gross, Mapping) else gross,
            "currency": gross.get("currency") if isinstance(gross, Mapping) else None,
            "payment_comment": attributes.get("payment_comment"),
        }

    def _already_paid(
        self, current: Mapping[str, Any], amount: str, day: str, operation: str
    ) -> dict[str, Any]:
        payment = self._payment_of(current) or {}
        if payment.get("payment_date") != day or not same_money(payment.get("payment_amount_gross"), amount):
            self.log.warning(
                "%s: the invoice is already paid (%s on %s); the payment given (%s on %s) was not registered",
                operation,
                payment.get("payment_amount_gross"),
                payment.get("payment_date"),
                amount,
                day,
            )
        return {"invoice_id": current.get("id"), "status": "already_paid", "payment": payment}

    def update_contract_status(self, contract_id: str, status: str) -> dict[str, Any]:
        """Set a contract's status (``DRAFT``, ``ORDERED``, ``PARTIAL_COMPLETED``, ``COMPLETED``), once.

        Reads the contract first and sends nothing when it already has that status. The PATCH goes
        through a :class:`~..core.once.WriteOnce` record keyed by the contract and the status: once
        it was sent, a retry, rerun or backfill does not send it again, so a clerk who has since
        moved the contract on (or back) in Alasco is not overruled (``status: already_updated``).
        A lost answer is resolved by reading the contract: it has the status, it counts as
        updated; otherwise :class:`AmbiguousWriteError` says how to check. Returns
        ``{"contract_id", "status": "updated"|"unchanged"|"already_updated", "previous", "current"}``.
        """
        operation = f"update status of contract {contract_id}"
        wanted = str(status).strip().upper()
        if wanted not in CONTRACT_STATUSES:
            raise ValidationError(
                VENDOR, operation, f"status {status!r} is not one of {', '.join(CONTRACT_STATUSES)}"
            )
        try:
            path = resource_path("contracts", contract_id)
        except ValueError as exc:
            raise ValidationError(VENDOR, operation, str(exc)) from None
        current = self.get("contracts", contract_id)
        previous = (current.get("attributes") or {}).get("status")
        if previous == wanted:
            return {
                "contract_id": contract_id,
                "status": "unchanged",
                "previous": previous,
                "current": wanted,
            }
        once = WriteOnce(
            vendor=VENDOR,
            operation=operation,
            account=self.base_url,
            key=f"contract {contract_id.lower()} status {wanted}",
            label=f"status {wanted} of contract {contract_id}",
            state=self.once_state,
            wait=self.once_wait,
        )
        body = {"data": {"id": contract_id, "type": "CONTRACT", "attributes": {"status": wanted}}}

        def send() -> dict[str, Any]:
            try:
                document = self._send_json("PATCH", path, body, operation=operation, idempotent=False)
                now = ((document.get("data") or {}).get("attributes") or {}).get("status", wanted)
            except AmbiguousWriteError:
                now = (self.get("contracts", contract_id).get("attributes") or {}).get("status")
                if now != wanted:
                    raise
                self.log.warning("The answer to %s was lost, but the contract has status %s", operation, now)
            return {"previous": previous, "current": now}

        check = (
            f"In Alasco, open contract {contract_id} and look whether its status is {wanted}; "
            f"AlascoHook.get('contracts', '{contract_id}') shows it"
        )
        outcome = once.run(send, check_hint=check)
        if outcome.sent:
            return {"contract_id": contract_id, "status": "updated", **outcome.result}
        self.log.warning(
            "%s: status %s was set earlier and the contract has since been changed to %s in Alasco; "
            "not sent again",
            operation,
            wanted,
            previous,
        )
        return {
            "contract_id": contract_id,
            "status": "already_updated",
            "previous": outcome.result.get("previous"),
            "current": previous,
        }

    def submit_invoice(
        self,
        project_id: str,
        pdf: bytes,
        *,
        filename: str = "invoice.pdf",
        external_identifier: str | None = None,
    ) -> dict[str, Any]:
        """Submit an invoice PDF to a project (``POST /projects/{id}/submit-invoice/``), once.

        The write is keyed by the project and the PDF's SHA-256 in a :class:`~..core.once.WriteOnce`
        record (Airflow Variables): a retry, a new run or a backfill with the same file returns the
        invoice submitted before (``status: already_submitted``) without asking Alasco, whatever
        a clerk has since edited and whichever state the invoice has reached. The key is not kept
        in Alasco: ``external_identifier`` ("Rechnungsnummer (extern)") stays the real invoice
        number, set (while the invoice is ``NEW``) only when given.

        When the answer to the POST is lost (a reset, a 5xx, a 200 without id), the invoice is
        looked up at Alasco by its uploaded document: a ``NEW`` invoice whose ``INVOICE`` document
        has the same SHA-256 (:meth:`find_submitted_invoice`). Found: it counts as submitted. Not found:
        :class:`AmbiguousWriteError` says how to check. Returns ``{"invoice_id", "status",
        "external_identifier", "pdf_sha256"}``.
        """
        operation = f"submit invoice to project {project_id}"
        try:
            path = resource_path("projects", project_id) + "submit-invoice/"
        except ValueError as exc:
            raise ValidationError(VENDOR, operation, str(exc)) from None
        check_pdf(pdf, operation)
        digest = hashlib.sha256(pdf).hexdigest()
        name = _safe_filename(filename)
        once = WriteOnce(
            vendor=VENDOR,
            operation=operation,
            account=self.base_url,
            key=f"project {project_id.lower()} pdf-sha256 {digest}",
            label=f"{name} (SHA-256 {digest[:16]}…) to project {project_id}",
            state=self.once_state,
            wait=self.once_wait,
        )

        def send() -> dict[str, Any]:
            try:
                response = self._request(
                    "POST",
                    self._absolute(path),
                    operation=operation,
                    files={"file": (name, pdf, "application/pdf")},
                )
                invoice_id = (parse_document(response, operation).get("data") or {}).get("id")
                if not invoice_id:
                    raise AmbiguousWriteError(VENDOR, operation, "the answer names no invoice id")
            except AmbiguousWriteError:
                found = self.find_submitted_invoice(digest)
                if found is None:
                    raise
                self.log.warning("The answer to %s was lost, but invoice %s holds the PDF", operation, found)
                invoice_id = found
            return {"invoice_id": invoice_id, "pdf_sha256": digest}

        check = (
            f"In Alasco, look for an invoice in project {project_id} whose invoice document is "
            f"{name} (SHA-256 {digest}); AlascoHook.find_submitted_invoice('{digest}', "
            "states=INVOICE_STATES) searches for it"
        )
        outcome = once.run(send, check_hint=check)
        invoice_id = str(outcome.result.get("invoice_id"))
        if outcome.sent and external_identifier:
            self._send_json(
                "POST",
                resource_path("invoices", invoice_id) + "update-new/",
                {
                    "data": {
                        "id": invoice_id,
                        "type": "INVOICE",
                        "attributes": {"external_identifier": external_identifier},
                    }
                },
                operation=f"set the invoice number of submitted invoice {invoice_id}",
                idempotent=True,
            )
        return {
            "invoice_id": invoice_id,
            "status": "submitted" if outcome.sent else "already_submitted",
            "external_identifier": external_identifier,
            "pdf_sha256": digest,
        }

    def find_submitted_invoice(self, pdf_sha256: str, *, states: Sequence[str] = ("NEW",)) -> str | None:
        """The id of an invoice in one of ``states`` whose ``INVOICE`` document has this SHA-256,
        or None. A submitted invoice stays ``NEW`` until a clerk enters its details, so the
        default looks only there (the minutes after a lost answer); widen ``states`` to search
        further. Downloads each candidate's invoice document."""
        filters = [("invoice_process_state", "in", list(states))] if states else []
        for invoice in self.get_all("invoices", filters=filters):
            invoice_id = str(invoice.get("id"))
            for document in self.list_documents("invoices", invoice_id):
                if (document.get("attributes") or {}).get("document_type") != "INVOICE":
                    continue
                content = self.download_document("invoices", invoice_id, str(document.get("id")))
                if hashlib.sha256(content).hexdigest() == pdf_sha256:
                    return invoice_id
        return None

    # -- documents --------------------------------------------------------------------------------
    def upload_document(
        self,
        resource: str,
        resource_id: str,
        pdf: bytes,
        *,
        document_type: str = "INVOICE",
        filename: str = "document.pdf",
    ) -> dict[str, Any]:
        """Attach a PDF to an invoice, contract or change order (``POST …/documents/``, multipart
        fields ``document_type`` and ``upload``). Not idempotent: never re-sent blindly."""
        operation = f"upload document to {resource} {resource_id}"
        check_pdf(pdf, operation)
        path = resource_path(resource, resource_id) + "documents/"
        response = self._request(
            "POST",
            self._absolute(path),
            operation=operation,
            data={"document_type": document_type},
            files={"upload": (_safe_filename(filename), pdf, "application/pdf")},
        )
        return parse_document(response, operation).get("data") or {}

    def list_documents(self, resource: str, resource_id: str) -> list[dict[str, Any]]:
        path = resource_path(resource, resource_id) + "documents/"
        return [
            item
            for page in self.iter_pages_of(path, "", operation=f"list documents of {resource}")
            for item in page.data
        ]

    def download_document(
        self, resource: str, resource_id: str, document_id: str, *, annotated: bool = False
    ) -> bytes:
        """A document's bytes. Alasco answers 302 to a temporary pre-signed URL; that request is
        sent without the API credentials. A failed download asks Alasco for a fresh link."""
        operation = f"download document {document_id} of {resource} {resource_id}"
        try:
            path = resource_path(resource, resource_id) + resource_path("documents", document_id)[1:]
        except ValueError as exc:
            raise ValidationError(VENDOR, operation, str(exc)) from None
        path += "download-annotated/" if annotated else "download/"
        response = self._request("GET", self._absolute(path), operation=operation)
        return response.content


def check_pdf(pdf: Any, operation: str) -> None:
    if not isinstance(pdf, bytes | bytearray) or not bytes(pdf[:5]) == b"%PDF-":
        raise ValidationError(
            VENDOR,
            operation,
            "the file is not a PDF (it does not start with %PDF-)",
            hint="Alasco takes PDF files only",
        )
    if len(pdf) > MAX_DOCUMENT_BYTES:
        raise ValidationError(
            VENDOR, operation, f"the PDF has {len(pdf):,} bytes, more than {MAX_DOCUMENT_BYTES:,}"
        )


def _safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^\w.\- ]+", "_", str(name)).strip() or "document.pdf"
    return cleaned if cleaned.lower().endswith(".pdf") else cleaned + ".pdf"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return format_filter_value(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")
