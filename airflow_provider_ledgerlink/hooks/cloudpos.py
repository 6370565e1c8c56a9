"""CloudPOS (cloudpos.be) through its API V1, plus the V2 ``weborder.insert`` call.

:class:`CloudPosHook` reads the connection, holds the HTTP clients and sends every request through the
shared daily budget and bad-login guard. The wire protocol (the V1 function table, Brussels wall-clock
times, V1 requests, answer envelopes, weborder states, CloudPOS's error codes) is in
:mod:`airflow_provider_ledgerlink.protocol.cloudpos`, whose docstring lists the wire facts and their
sources; its names are imported here too, so ``from airflow_provider_ledgerlink.hooks.cloudpos import
read_envelope`` keeps working.

Because of the daily limit and the IP block, every request this hook sends goes through a shared
daily budget (:mod:`~airflow_provider_ledgerlink.core.budget`) and a shared bad-login guard
(:mod:`~airflow_provider_ledgerlink.core.login_guard`), both kept in Airflow Variables, retries
included. The token is added to the URL at the last moment by the transport, so the URLs httpx logs
and the ones in our errors never carry it; it is also registered as a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError, DailyBudget, task_holder_id
from airflow_provider_ledgerlink.core.compat import AirflowFailException, aget_connection, to_thread
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    LedgerLinkError,
    NotFoundError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook, base_url_from_connection
from airflow_provider_ledgerlink.core.http import AsyncHttpClient, HttpClient, RetryPolicy, wire_copy
from airflow_provider_ledgerlink.core.login_guard import (
    LoginGuard,
    LoginRefusedError,
    credentials_fingerprint,
)
from airflow_provider_ledgerlink.core.paging import Page
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState, SharedState
from airflow_provider_ledgerlink.protocol.cloudpos import (
    BRUSSELS,
    DEFAULT_BASE_URL,
    DEFAULT_DAILY_LIMIT,
    DOCS,
    FLAG_FILTERS,
    FUNCTIONS,
    VENDOR,
    CloudPosFunctionError,
    CloudPosIpBlockedError,
    Envelope,
    Function,
    WeborderStatus,
    _after,
    _next_id,
    _v1_records,
    _v1_request,
    _V1Request,
    _within,
    envelope_of,
    error_for_code,
    function_named,
    map_error,
    parse_vendor_time,
    read_envelope,
    time_in_message,
    to_vendor_time,
    validate_weborder,
    weborder_status,
    window_chunks,
    window_days,
)

#: What this module offers: the hook, and the wire protocol's names it re-exports (their home is
#: :mod:`airflow_provider_ledgerlink.protocol.cloudpos`).
__all__ = [
    "BRUSSELS",
    "CLOUDPOS_RETRY",
    "DEFAULT_BASE_URL",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_DAILY_LIMIT",
    "DEFAULT_MAX_ROWS_PER_CALL",
    "DEFAULT_SENSOR_RESERVE_PERCENT",
    "DOCS",
    "FLAG_FILTERS",
    "FUNCTIONS",
    "VENDOR",
    "CloudPosFunctionError",
    "CloudPosHook",
    "CloudPosIpBlockedError",
    "CloudPosSettings",
    "Envelope",
    "Function",
    "WeborderIdMissingError",
    "WeborderNotFoundError",
    "WeborderStatus",
    "envelope_of",
    "error_for_code",
    "function_named",
    "map_error",
    "parse_vendor_time",
    "read_envelope",
    "record_outcome",
    "settings_from_connection",
    "time_in_message",
    "to_vendor_time",
    "validate_weborder",
    "weborder_status",
    "window_chunks",
    "window_days",
]

DEFAULT_BLOCK_SIZE = 10
DEFAULT_SENSOR_RESERVE_PERCENT = 20
#: A reading function returning this many rows may have been cut off: the rest is read by id range.
DEFAULT_MAX_ROWS_PER_CALL = 500
#: Each retry is a request of the day's 500; try less hard than other vendors.
CLOUDPOS_RETRY = RetryPolicy(max_attempts=3, max_elapsed=120.0)


# ------------------------------------------------------------------------------------------------
# Errors that no task retry can help: they stop the task (Airflow's AirflowFailException)
# ------------------------------------------------------------------------------------------------
class WeborderNotFoundError(NotFoundError, AirflowFailException):
    """The weborder does not exist at CloudPOS; waiting longer cannot help (no task retry)."""


class WeborderIdMissingError(ConfigurationError, AirflowFailException):
    """CloudPOS received no weborderid (2002): a configuration error, waiting cannot help (no retry)."""


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


def settings_from_connection(conn: Any, conn_id: str) -> CloudPosSettings:
    """Validate a connection into :class:`CloudPosSettings` (what :attr:`CloudPosHook.settings`
    does for the hook's own connection); errors name the field to fix as the form labels it."""
    hook = CloudPosHook(conn_id, holder="settings")
    hook.__dict__["raw_connection"] = conn
    return hook.settings_for(conn)


def complete_base_url(url: str) -> str:
    """A host override as the API's address: ``/api/`` when it names no path, one trailing slash."""
    parts = urlsplit(url)
    path = parts.path if parts.path not in ("", "/") else "/api/"
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}/"


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
        """The connection, checked, read once (extras through the shared reader)."""
        return self.settings_for(self.connection)

    def settings_for(self, conn: Any) -> CloudPosSettings:
        """``conn`` (this hook's connection, or its asynchronous lookup) as :class:`CloudPosSettings`."""
        licence = (conn.login or "").strip()
        token = (conn.password or "").strip()
        if not licence:
            raise self.config_error(
                "the licence name is empty (sending it would count as a bad login)", field="Login"
            )
        if not token:
            raise self.config_error(
                "the token is empty (sending it would count as a bad login)", field="Password"
            )
        register_secret(token)
        register_secret(quote(token, safe=""))
        base_url = base_url_from_connection(
            VENDOR,
            conn.host,
            DEFAULT_BASE_URL,
            complete=complete_base_url,
            refuse=lambda message, fix: self.config_error(f"{message} ({fix})", field="Host"),
        )

        def integer(key: str, default: int, minimum: int) -> int:
            value = self.extra(key, default)
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise self.config_error(f"{key} must be a whole number, not {value!r}", field=key) from None
            if number < minimum:
                raise self.config_error(f"{key} must be at least {minimum}", field=key)
            return number

        mode = str(self.extra("on_budget_exhausted", "fail")).strip().lower()
        if mode not in ("fail", "wait"):
            raise self.config_error(
                f"on_budget_exhausted must be 'fail' or 'wait', not {mode!r}", field="on_budget_exhausted"
            )
        cooldown = integer("bad_login_cooldown_minutes", 0, 0)
        reserve = integer("sensor_reserve_percent", DEFAULT_SENSOR_RESERVE_PERCENT, 0)
        if reserve > 100:
            raise self.config_error(
                "sensor_reserve_percent must be between 0 and 100", field="sensor_reserve_percent"
            )
        return CloudPosSettings(
            conn_id=self.cloudpos_conn_id,
            licence=licence,
            token=token,
            base_url=base_url,
            daily_limit=integer("daily_request_limit", DEFAULT_DAILY_LIMIT, 1),
            block_size=integer("budget_block_size", DEFAULT_BLOCK_SIZE, 1),
            on_budget_exhausted=mode,
            bad_login_cooldown=timedelta(minutes=cooldown) if cooldown else None,
            sensor_reserve_fraction=reserve / 100,
        )

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
    def get_rows(
        self,
        function: str,
        filters: Mapping[str, Any] | None = None,
        *,
        window: tuple[datetime, datetime] | None = None,
        include_sensitive: bool = False,
        max_rows_per_call: int = DEFAULT_MAX_ROWS_PER_CALL,
    ) -> Iterator[dict[str, Any]]:
        """The records of a V1 reading function, lazily. See :meth:`get_pages` for the options."""
        for page in self.get_pages(
            function,
            filters,
            window=window,
            include_sensitive=include_sensitive,
            max_rows_per_call=max_rows_per_call,
        ):
            yield from page

    def get_pages(
        self,
        function: str,
        filters: Mapping[str, Any] | None = None,
        *,
        window: tuple[datetime, datetime] | None = None,
        include_sensitive: bool = False,
        max_rows_per_call: int = DEFAULT_MAX_ROWS_PER_CALL,
    ) -> Iterator[Page]:
        """The records of a V1 reading function as :class:`~airflow_provider_ledgerlink.core.paging.Page`
        objects: one page (one call, see :meth:`call`) without ``window``; with ``window=(start,
        end)`` a dated function (orders, invoices) read as :meth:`iter_window` does, a page per call.
        Each page carries its ``offset`` (rows before it) and ``last``; CloudPOS reports no total."""
        if window is None:
            yield Page(self.call(function, filters, include_sensitive=include_sensitive), offset=0, last=True)
            return
        if filters:
            raise ValidationError(
                VENDOR,
                f"read {function}",
                "filters and window cannot be combined: the window sets the date and id filters",
                hint="Leave filters out, or read without window",
            )
        offset = 0
        for page in self.iter_window(function, window[0], window[1], max_rows_per_call=max_rows_per_call):
            page.offset = offset
            offset += len(page)
            yield page

    def call(
        self, function: str, filters: Mapping[str, Any] | None = None, *, include_sensitive: bool = False
    ) -> list[dict[str, Any]]:
        """Call a V1 reading function once and return its records (``[]`` for "nothing found"): the
        one request behind :meth:`get_rows` and :meth:`get_pages` (its earlier name for reading rows).

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
    ) -> Iterator[Page]:
        """Records of a dated function (orders, invoices) in ``[start, end)``, as pages (the last
        marked ``last``).

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
        days = list(window_days(start, end))
        for number, (day, day_start, day_end) in enumerate(days, 1):
            low, high = max(start, day_start), min(end, day_end)
            last_day = number == len(days)
            rows = self.call(name, {"date": day.isoformat()})
            more = len(rows) >= max_rows_per_call
            yield Page(
                [row for row in rows if _within(row.get(spec.date_field), low, high)],
                last=last_day and not more,
            )
            while more:
                first = _next_id(rows, spec.label)
                rows = self.call(name, {"start": first, "end": first + max_rows_per_call - 1})
                more = len(rows) >= max_rows_per_call and not any(
                    _after(row.get(spec.date_field), day_end) for row in rows
                )
                yield Page(
                    [row for row in rows if _within(row.get(spec.date_field), low, high)],
                    last=last_day and not more,
                )

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
            settings = self.settings_for(await self.aoverlay(conn))
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
