"""The wire protocol of Alasco's public JSON:API (construction cost management): filters and query
planning, windows on a date attribute, money, reading JSON:API documents, error mapping.

Sources: Alasco's help page on Public API access (the seed ``001_6168a46a6adab127.txt``: one key and
token per account, created by an Admin under "Integrationen", the token shown once) and the FinCon
OpenAPI file in ``sandbox/specs/alasco/``; open questions in the Alasco page of the docs. Wire facts:

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

Nothing here needs Airflow, a connection or a hook: ``hooks/alasco.py`` holds the connection, the
HTTP client and the calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import partial
from itertools import product
from typing import Any
from urllib.parse import quote

import httpx

from airflow_provider_ledgerlink.core.credential_scope import within_scope
from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import default_error, parse_retry_after
from airflow_provider_ledgerlink.core.jsonparse import json_answer
from airflow_provider_ledgerlink.core.paging import Page as Page  # the list page, re-exported

# ==================================================================================================
# Shapes: APIs, page sizes, filter operations, states, filters, slices and pages
# ==================================================================================================
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


#: The parts of the spec's money objects in request bodies (``{"currency", "net", "tax"}``; net and
#: tax are ``type: string``, e.g. ``"123.123456789012"``, in every write schema of the FinCon spec).
MONEY_PARTS = ("net", "tax")


_MONEY_RE = re.compile(r"[+-]?\d{1,16}(\.\d{1,12})?")


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


@dataclass(frozen=True)
class Slice:
    """A half-open range ``[start, end)`` of a date attribute; ``None`` leaves that end open."""

    start: datetime | None
    end: datetime | None


# One JSON:API list page is the core Page (imported above): its rows are the ``data`` resources,
# ``included`` the related ones, ``next`` the link to the next page.


# ==================================================================================================
# Requests: filters, query planning, paths, windows on a date attribute, money, documents
# ==================================================================================================
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


# ==================================================================================================
# Answers: JSON:API documents, related ids, flat rows, instants and amounts
# ==================================================================================================
def parse_document(response: httpx.Response, operation: str) -> dict[str, Any]:
    """The JSON body with every number that is not an integer as an exact ``Decimal``."""
    body = json_answer(VENDOR, response, operation, parse=partial(json.loads, parse_float=Decimal))
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


def same_money(a: Any, b: Any) -> bool:
    try:
        return Decimal(str(a)) == Decimal(str(b))
    except (InvalidOperation, ValueError):
        return False


# ==================================================================================================
# Errors: Alasco's error answers as LedgerLink errors
# ==================================================================================================
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
