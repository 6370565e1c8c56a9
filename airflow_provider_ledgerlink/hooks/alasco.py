"""Alasco (construction cost management) through its public JSON:API.

:class:`AlascoHook` reads the connection (one account-wide key and token), holds the HTTP client,
follows cursor pages, splits reads into partitions and sends writes once. The wire protocol (filters
and query planning, windows on a date attribute, money, JSON:API documents, error mapping) is in
:mod:`airflow_provider_ledgerlink.protocol.alasco`, whose docstring lists the wire facts and their
sources; its names are imported here too, so ``from airflow_provider_ledgerlink.hooks.alasco import
flatten_resource`` keeps working.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any
from urllib.parse import urljoin

import httpx

from airflow_provider_ledgerlink.core.credential_scope import ScopedCredentials, within_scope
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    LedgerLinkError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook
from airflow_provider_ledgerlink.core.http import HttpClient
from airflow_provider_ledgerlink.core.once import WriteOnce
from airflow_provider_ledgerlink.core.paging import Page
from airflow_provider_ledgerlink.core.parallel import chain_in_order
from airflow_provider_ledgerlink.core.redaction import redact_url, register_secret
from airflow_provider_ledgerlink.core.rotation import NothingStagedError, promote_staged
from airflow_provider_ledgerlink.core.shared_state import SharedState
from airflow_provider_ledgerlink.protocol.alasco import (
    APIS,
    CONTRACT_STATUSES,
    CORE_PAGE_SIZE,
    DEFAULT_API,
    DEFAULT_HOST,
    IN_CHUNK_SIZE,
    INVOICE_DOCUMENT_TYPES,
    INVOICE_STATES,
    MAX_DOCUMENT_BYTES,
    MONEY_PARTS,
    OPERATION_ALIASES,
    OPERATIONS,
    REPORTING_IN_CHUNK_SIZE,
    REPORTING_PAGE_SIZE,
    VENDOR,
    Filter,
    Slice,
    _json_default,
    _safe_filename,
    build_query,
    check_pdf,
    describe_error_body,
    flatten_resource,
    format_filter_value,
    format_money,
    is_money_object,
    is_reporting,
    make_filter,
    map_error,
    money_as_strings,
    normalize_filters,
    normalize_include,
    open_slices,
    parse_document,
    parse_timestamp,
    plan_queries,
    related_id,
    resource_path,
    same_money,
    slice_filters,
    slice_owner,
    split_range,
)

#: What this module offers: the hook, and the wire protocol's names it re-exports (their home is
#: :mod:`airflow_provider_ledgerlink.protocol.alasco`).
__all__ = [
    "APIS",
    "CONTRACT_STATUSES",
    "CORE_PAGE_SIZE",
    "DEFAULT_API",
    "DEFAULT_HOST",
    "DEFAULT_MAX_IN_FLIGHT",
    "INVOICE_DOCUMENT_TYPES",
    "INVOICE_STATES",
    "IN_CHUNK_SIZE",
    "MAX_DOCUMENT_BYTES",
    "MONEY_PARTS",
    "OPERATIONS",
    "OPERATION_ALIASES",
    "REPORTING_IN_CHUNK_SIZE",
    "REPORTING_PAGE_SIZE",
    "VENDOR",
    "AlascoHook",
    "Filter",
    "Page",
    "Slice",
    "build_query",
    "check_pdf",
    "describe_error_body",
    "flatten_resource",
    "format_filter_value",
    "format_money",
    "is_money_object",
    "is_reporting",
    "make_filter",
    "map_error",
    "money_as_strings",
    "normalize_filters",
    "normalize_include",
    "open_slices",
    "parse_document",
    "parse_timestamp",
    "plan_queries",
    "related_id",
    "resource_path",
    "same_money",
    "slice_filters",
    "slice_owner",
    "split_range",
]


#: Concurrent cursor chains when a read is split into partitions (Alasco publishes no limit).
DEFAULT_MAX_IN_FLIGHT = 4


# ------------------------------------------------------------------------------------------------
# The hook
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlascoSettings:
    """The connection's settings, checked. The API key and token are read apart
    (:attr:`AlascoHook.credentials`): a staged token replaces them while the hook runs."""

    #: ``fincon``, ``capex`` or ``esg``.
    api: str
    #: ``https://api.alasco.de`` or the host override, with the API's path.
    base_url: str


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
    def settings(self) -> AlascoSettings:
        """The connection's settings, read once (extras through the shared reader)."""
        api = str(self.extra("api", DEFAULT_API)).strip().lower()
        if api not in APIS:
            raise self.config_error(
                f"api {api!r} is not one of {', '.join(APIS)}", field="Extra 'api' (fincon, capex or esg)"
            )
        suffix = APIS[api]

        def complete(url: str) -> str:
            url = url.rstrip("/")
            return url if url.endswith(suffix) else url + suffix

        return AlascoSettings(
            api=api, base_url=self.base_url_from_host(DEFAULT_HOST + suffix, complete=complete)
        )

    @property
    def api(self) -> str:
        return self.settings.api

    @property
    def base_url(self) -> str:
        """``https://api.alasco.de`` or the host override, with the API's path added."""
        return self.settings.base_url

    @cached_property
    def client(self) -> HttpClient:
        return self.make_client(
            base_url=self.base_url,
            headers={"Accept": "application/vnd.api+json, application/json"},
            error_mapper=map_error,
            max_connections=max(self.max_in_flight, 2),
            gates=[ScopedCredentials(self.credentials, scope=self.base_url + "/")],
        )

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
        offset = 0
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
            page = Page(data, offset=offset, included=included if isinstance(included, list) else [])
            page.next = self._next_link(document, url, operation)
            page.last = page.next is None
            offset += len(page)
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
        """Every page of a list endpoint, lazily: one cursor chain per chunk of long ``in`` lists.

        Each :class:`~airflow_provider_ledgerlink.core.paging.Page` is a list of the ``data``
        resources (also :attr:`~airflow_provider_ledgerlink.core.paging.Page.data`) with ``included``,
        ``next`` (the cursor link), ``offset`` (rows before it in its chain) and ``last`` (no ``next``)."""
        operation = f"list {resource}"
        path, plans, names = self._plan(resource, filters, include, operation)
        for conditions in plans:
            yield from self.iter_pages_of(path, build_query(conditions, names), operation=operation)

    def get_rows(
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
            yield from page

    def get_all(
        self,
        resource: str,
        *,
        filters: Any = None,
        include: str | Iterable[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The same as :meth:`get_rows` (its earlier name, kept)."""
        return self.get_rows(resource, filters=filters, include=include)

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
