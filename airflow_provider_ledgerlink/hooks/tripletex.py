"""Tripletex API v2: sessions that survive a long run, complete parallel reads, writes that never duplicate.

:class:`TripletexHook` reads the connection, holds the HTTP client and the rate limiter, reads pages
in parallel and sends writes once. The wire protocol (hosts, number series, date windows, session
dates and the Basic authorization, list pages, error mapping) is in
:mod:`airflow_provider_ledgerlink.protocol.tripletex`, whose docstring lists the wire facts and their
sources; its names are imported here too, so ``from airflow_provider_ledgerlink.hooks.tripletex import
window_dates`` keeps working.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import httpx

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook
from airflow_provider_ledgerlink.core.host_state import StateDirError, private_state_dir
from airflow_provider_ledgerlink.core.http import HttpClient
from airflow_provider_ledgerlink.core.httpx_logs import redact_httpx_logs
from airflow_provider_ledgerlink.core.once import WriteOnce
from airflow_provider_ledgerlink.core.paging import Page, fetch_pages
from airflow_provider_ledgerlink.core.ratelimit import HeaderRateLimiter
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.rotation import RotationResult
from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState, SharedState
from airflow_provider_ledgerlink.hooks.tripletex_session import (
    STORE_EXPIRES_AT,
    STORE_SESSION_OWNER,
    STORE_SESSION_TOKEN,
    TripletexSession,
)
from airflow_provider_ledgerlink.protocol.tripletex import (
    _CHECKSUM_PROBE,
    BASE_URLS,
    CHANGED_SINCE_PATHS,
    CODE_RESULT_SET_TOO_LARGE,
    CODE_REVISION,
    DATE_WINDOWS,
    DEFAULT_SESSION_DAYS,
    OSLO,
    OWN_CUSTOMER_SERIES_START,
    SHOP_INVOICE_SERIES_START,
    SUGGESTED_INVOICE_SERIES_START,
    VENDOR,
    Session,
    TripletexVersionConflictError,
    WriteResult,
    _as_date,
    _gross_postings,
    _json,
    _NotModified,
    _page_of,
    _value_of,
    basic_authorization,
    format_changed_since,
    last_change,
    map_error,
    oslo_today,
    parse_timestamp,
    session_expiration_date,
    session_expires_at,
    split_dates,
    tripletex_code,
    window_dates,
    with_changes,
)

#: What this module offers: the hook, and the wire protocol's names it re-exports (their home is
#: :mod:`airflow_provider_ledgerlink.protocol.tripletex`).
__all__ = [
    "BASE_URLS",
    "CHANGED_SINCE_PATHS",
    "CODE_RESULT_SET_TOO_LARGE",
    "CODE_REVISION",
    "DATE_WINDOWS",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_WINDOW_DAYS",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_RATE_LIMIT_RESERVE",
    "DEFAULT_RECHECK_DELAY",
    "DEFAULT_SESSION_DAYS",
    "DEFAULT_SESSION_MIN_VALIDITY",
    "DEFAULT_WRITE_WAIT",
    "OSLO",
    "OWN_CUSTOMER_SERIES_START",
    "SHOP_INVOICE_SERIES_START",
    "STORE_EXPIRES_AT",
    "STORE_SESSION_OWNER",
    "STORE_SESSION_TOKEN",
    "SUGGESTED_INVOICE_SERIES_START",
    "VENDOR",
    "Page",
    "Session",
    "TripletexHook",
    "TripletexSession",
    "TripletexVersionConflictError",
    "WriteResult",
    "basic_authorization",
    "format_changed_since",
    "last_change",
    "map_error",
    "oslo_today",
    "parse_timestamp",
    "session_expiration_date",
    "session_expires_at",
    "split_dates",
    "tripletex_code",
    "window_dates",
    "with_changes",
]


DEFAULT_PAGE_SIZE = 1000
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_RATE_LIMIT_RESERVE = 20
DEFAULT_SESSION_MIN_VALIDITY = timedelta(hours=2)
DEFAULT_MAX_WINDOW_DAYS = 31
DEFAULT_RECHECK_DELAY = 5.0
DEFAULT_WRITE_WAIT = 300.0


#: How often one request may renew a session that had worked and then ended.
_MAX_RENEWALS = 3


# ------------------------------------------------------------------------------------------------
# The hook
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TripletexSettings:
    """The connection's settings, checked. The tokens are read apart (:attr:`TripletexHook.employee_token`,
    :attr:`TripletexHook.consumer_token`): a rotation replaces them while the hook runs."""

    #: ``production`` or ``test``.
    environment: str
    #: The environment's URL, or the host override with ``/v2``.
    base_url: str
    #: The client company (``0``: the employee's own).
    company_id: int
    #: Requests of each rate-limit period left for people (the hook's argument, else the extra).
    rate_limit_reserve: int


class TripletexHook(LedgerLinkHook):
    """Tripletex API v2 for one employee token (and, optionally, one client company).

    The connection (type ``ledgerlink_tripletex``): password = the employee token; extra
    ``consumer_token`` (secret); extra ``environment`` (``production`` or ``test``); extra
    ``company_id`` (``0``, the default, is the employee's own company; an accountant puts the client
    company's id); extra ``rate_limit_reserve``; extra ``credential_store``; host, when set, replaces
    the Tripletex URL (``/v2`` is appended when missing).

    :param tripletex_conn_id: the Airflow connection id.
    :param page_size: rows per list request (``count``).
    :param max_in_flight: list pages requested at once.
    :param rate_limit_reserve: requests of each rate-limit period left for the people using
        Tripletex with the same employee (default: the connection's ``rate_limit_reserve``, else 20).
    :param session_days: a new session's ``expirationDate`` is today in Oslo plus this many days.
    :param session_min_validity: a stored session is reused only if it lasts at least this long.
    :param save_sessions: write a newly created session to the credential store, so that the next
        tasks reuse it instead of creating their own (skipped when the store cannot be written).
    :param recheck_delay: seconds to wait before looking for an object whose create lost its answer.
    :param own_customer_series_start: where Tripletex's own customer numbers start (the webshop
        set-up moves them to 100000); LedgerLink's customers keep the shop's numbers below it.
    :param state: where the records of writes (:class:`~airflow_provider_ledgerlink.core.once.WriteOnce`)
        live; default: Airflow Variables, which every worker sees.
    :param write_wait: seconds a write waits for another attempt's outcome before it is ambiguous.
    :param clock: the current time (for tests); UTC-aware.
    """

    conn_name_attr = "tripletex_conn_id"
    default_conn_name = "tripletex_default"
    conn_type = "ledgerlink_tripletex"
    hook_name = "Tripletex (LedgerLink)"
    vendor = VENDOR
    credential_dependents = ("employee_token", "consumer_token", "settings")

    def __init__(
        self,
        tripletex_conn_id: str = default_conn_name,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate_limit_reserve: int | None = None,
        session_days: int = DEFAULT_SESSION_DAYS,
        session_min_validity: timedelta = DEFAULT_SESSION_MIN_VALIDITY,
        save_sessions: bool = True,
        recheck_delay: float = DEFAULT_RECHECK_DELAY,
        own_customer_series_start: int = OWN_CUSTOMER_SERIES_START,
        state: SharedState | None = None,
        write_wait: float = DEFAULT_WRITE_WAIT,
        clock: Callable[[], datetime] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(tripletex_conn_id, **kwargs)
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if session_days < 1:
            raise ValueError("session_days must be at least 1")
        self.tripletex_conn_id = tripletex_conn_id
        self.page_size = int(page_size)
        self.max_in_flight = max(1, int(max_in_flight))
        self._reserve_argument = rate_limit_reserve
        self.session_days = session_days
        self.session_min_validity = session_min_validity
        self.save_sessions = save_sessions
        self.recheck_delay = max(0.0, float(recheck_delay))
        if own_customer_series_start < 2:
            raise ValueError("own_customer_series_start must leave room for the shop's numbers below it")
        self.own_customer_series_start = int(own_customer_series_start)
        self.state = state if state is not None else AirflowVariableState()
        self.write_wait = float(write_wait)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        #: The session token's lifecycle: creating, sharing, reusing, renewing, rotating, deleting.
        self.sessions = TripletexSession(self)
        redact_httpx_logs()

    # -- settings ---------------------------------------------------------------------------------
    @cached_property
    def employee_token(self) -> str:
        token = (self.connection.password or "").strip()
        if not token:
            raise self.config_error("the employee token is empty", field="Password (the employee token)")
        register_secret(token)
        return token

    @cached_property
    def consumer_token(self) -> str:
        token = str(self.extra("consumer_token", "") or "").strip()
        if not token:
            raise self.config_error(
                "the consumer token is missing",
                field="Extra consumer_token (the integration's consumer token)",
            )
        register_secret(token)
        return token

    @cached_property
    def settings(self) -> TripletexSettings:
        """The connection's settings, read once (extras through the shared reader)."""
        environment = str(self.extra("environment", "production") or "production").strip().lower()
        if environment not in BASE_URLS:
            raise self.config_error(
                f"environment {environment!r} is not one of {', '.join(BASE_URLS)}", field="Extra environment"
            )

        def complete(url: str) -> str:
            url = url.rstrip("/")
            return url if url.lower().endswith("/v2") else f"{url}/v2"

        base_url = self.base_url_from_host(BASE_URLS[environment], complete=complete)
        value = self.extra("company_id", 0)
        try:
            company = int(str(value).strip() or 0)
        except ValueError:
            company = -1
        if company < 0:
            raise self.config_error(
                f"company_id {value!r} is not a company id (a whole number; 0 = the employee's own company)",
                field="Extra company_id",
            )
        reserve_value = self._reserve_argument
        if reserve_value is None:
            reserve_value = self.extra("rate_limit_reserve", DEFAULT_RATE_LIMIT_RESERVE)
        try:
            reserve = int(str(reserve_value).strip())
        except ValueError:
            reserve = -1
        if reserve < 0:
            raise self.config_error(
                f"rate_limit_reserve {reserve_value!r} is not a number of requests",
                field="Extra rate_limit_reserve",
            )
        return TripletexSettings(
            environment=environment, base_url=base_url, company_id=company, rate_limit_reserve=reserve
        )

    @property
    def environment(self) -> str:
        return self.settings.environment

    @property
    def company_id(self) -> int:
        return self.settings.company_id

    @property
    def rate_limit_reserve(self) -> int:
        return self.settings.rate_limit_reserve

    @property
    def base_url(self) -> str:
        """The environment's Tripletex URL, or the host override with ``/v2`` added."""
        return self.settings.base_url

    @cached_property
    def account_key(self) -> str:
        """Which rate limit and which sessions this hook shares with others: Tripletex counts requests
        "for an employee for each API consumer", per host. A digest, never the tokens themselves."""
        text = f"ledgerlink-tripletex-account\x00{self.base_url}\x00{self.consumer_token}\x00{self.employee_token}"
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @cached_property
    def state_dir(self) -> Path | None:
        """The machine's private state directory, or ``None`` (then nothing is shared between the
        processes of this machine, and each keeps its own limiter and session)."""
        try:
            return private_state_dir()
        except StateDirError as error:
            self.log.warning("Tripletex state is not shared between processes on this machine: %s", error)
            return None

    def _state_file(self, kind: str) -> Path | None:
        directory = self.state_dir
        return None if directory is None else directory / f"tripletex-{self.account_key}.{kind}.json"

    @cached_property
    def limiter(self) -> HeaderRateLimiter:
        """The rate limiter, shared by every process of this machine that uses the same tokens."""
        return HeaderRateLimiter(reserve=self.rate_limit_reserve, shared_file=self._state_file("ratelimit"))

    @cached_property
    def client(self) -> HttpClient:
        return self.make_client(
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            error_mapper=map_error,
            max_connections=self.max_in_flight + 2,
            gates=[self.limiter],  # every attempt, retries included, waits for the rate limit
        )

    def get_conn(self) -> HttpClient:
        return self.client

    def close(self) -> None:
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()

    def now(self) -> datetime:
        return self._clock()

    # -- sessions (TripletexSession) --------------------------------------------------------------
    def session(self) -> Session:
        """A usable session: the hook's own, the one another process of this machine uses, a valid
        one from the credential store, or a new one (see :class:`TripletexSession`)."""
        return self.sessions.get()

    @property
    def sessions_created(self) -> int:
        """How many sessions this hook created."""
        return self.sessions.created

    def rotate_session(self, *, dry_run: bool = False) -> RotationResult:
        """Create a new session token, verify it (``whoAmI``), store it, then delete the previous one
        (see :meth:`TripletexSession.rotate`)."""
        return self.sessions.rotate(dry_run=dry_run)

    # -- every call -------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """One authenticated call, within the rate limit.

        A 401 means the session ended (expired, deleted, or the store held a stale one): a new
        session is created and the request repeated; a request refused with 401 was not carried
        out, so repeating a write is safe. A 401 on the session just created is an
        :class:`AuthenticationError` naming the likely cause.
        """
        session = self.session()
        kwargs: dict[str, Any] = {"params": dict(params) if params else None}
        if body is not None:
            kwargs["content"] = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        renewals = 0
        while True:
            all_headers = {**(headers or {}), "Authorization": self.sessions.authorization(session)}
            if body is not None:
                all_headers["Content-Type"] = "application/json; charset=utf-8"
            try:
                response = self.client.request(
                    method,
                    path,
                    operation=operation,
                    headers=all_headers,
                    idempotent=idempotent,
                    **kwargs,
                )
            except AuthenticationError as error:
                if error.http_status != 401:
                    raise
                # A fresh session refused at once means the tokens or company are wrong. A session
                # that has worked and then ends (it expired, or was deleted) is simply renewed.
                if renewals and (session.token not in self.sessions.working or renewals >= _MAX_RENEWALS):
                    raise self.sessions.refused_after_creation(operation, error) from None
                self.log.warning(
                    "Tripletex refused the session during %s (HTTP 401); creating a new session and "
                    "repeating the request",
                    operation,
                )
                session = self.sessions.renew(session)
                renewals += 1
                continue
            self.sessions.working.add(session.token)
            return response

    def get(
        self, path: str, *, params: Mapping[str, Any] | None = None, fields: str | None = None
    ) -> dict[str, Any]:
        """One object (``GET /customer/123``): the ``value`` of the answer."""
        query = dict(params or {})
        if fields:
            query["fields"] = fields
        operation = f"GET {path}"
        value = _json(self.request("GET", path, operation=operation, params=query), operation).get("value")
        if not isinstance(value, dict):
            raise VendorError(VENDOR, operation, "the answer has no 'value' object")
        return value

    def whoami(self) -> dict[str, Any]:
        """Who the employee token is and which company it reaches (``GET /token/session/>whoAmI``)."""
        return self.get("/token/session/%3EwhoAmI", fields="*,company(*),employee(*)")

    def test_connection(self) -> tuple[bool, str]:
        """The connection form's Test: ``whoAmI`` with a session that leaves nothing behind.

        Airflow tests a form under a random, transient connection id, so a session stored under that
        id would be a Variable nobody reads again. A Test therefore never writes to the credential
        store, and deletes the session it created (a stored session it reused is left alone).
        """
        saving, self.save_sessions = self.save_sessions, False
        created_before = self.sessions_created
        try:
            return super().test_connection()
        finally:
            self.save_sessions = saving
            session = self.sessions.current
            if session is not None and self.sessions_created > created_before and session.source == "created":
                self.sessions.delete_quietly(session.token, session)
                self.sessions.current = None

    def check_connection(self) -> str:
        if self._testing:  # a Test holds no state: its session is neither stored nor left open
            self.save_sessions = False
        try:
            info = self.whoami()
        finally:
            session = self.sessions.current
            if self._testing and session is not None and session.source == "created":
                self.sessions.current = None
                self.sessions.delete_quietly(session.token, session)
        company: Mapping[str, Any] = info["company"] if isinstance(info.get("company"), Mapping) else {}
        employee: Mapping[str, Any] = info["employee"] if isinstance(info.get("employee"), Mapping) else {}
        name = (
            employee.get("displayName")
            or " ".join(str(employee.get(k) or "") for k in ("firstName", "lastName")).strip()
        )
        return (
            f"Connected to Tripletex ({self.environment}) as {name or 'employee'} "
            f"(employee {info.get('employeeId', '?')}) of {company.get('name') or 'company'} "
            f"(company {info.get('companyId', '?')})"
        )

    # -- reading ----------------------------------------------------------------------------------
    def get_rows(self, path: str, **options: Any) -> Iterator[dict[str, Any]]:
        """Every row of a list endpoint, lazily, in order. See :meth:`get_pages` for the options."""
        for page in self.get_pages(path, **options):
            yield from page

    def get_all(self, path: str, **options: Any) -> Iterator[dict[str, Any]]:
        """The same as :meth:`get_rows` (its earlier name, kept)."""
        return self.get_rows(path, **options)

    def get_pages(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        fields: str | None = None,
        sorting: str | None = None,
        window: tuple[date, date] | None = None,
        changed_since: datetime | None = None,
        page_size: int | None = None,
        max_in_flight: int | None = None,
        max_window_days: int = DEFAULT_MAX_WINDOW_DAYS,
        digests: list[str | None] | None = None,
    ) -> Iterator[Page]:
        """The pages of a list endpoint, in order, lazily; several requested at once.

        Each :class:`~airflow_provider_ledgerlink.core.paging.Page` carries its ``offset``
        (``from``), ``last`` (the short page of the last date window) and ``digest``
        (``versionDigest``, when asked for); ``total`` stays ``None``: Tripletex documents its
        ``fullResultSize`` as inexact.

        :param params: filters, sent as they are (``{"customerId": 12}``).
        :param fields: Tripletex's ``fields`` (``id,date,amount,account(number)``), passed through.
        :param sorting: Tripletex's ``sorting`` (``id``, ``-date``), passed through. Give a unique
            order when reading in parallel, so pages cannot shift while they are read.
        :param window: ``(from, to)`` dates, ``to`` exclusive, for the date-window endpoints
            (:data:`DATE_WINDOWS`); cut into windows of ``max_window_days`` and, when Tripletex
            answers that a result is too large (code 23000), into halves down to single days.
        :param changed_since: for ``/customer``, ``/supplier``: only rows changed since then.
        :param digests: a list to receive each page's checksum (``versionDigest``), for
            :meth:`pages_unchanged` on a later run.
        """
        query = dict(params or {})
        if fields:
            query["fields"] = fields
        if sorting:
            query["sorting"] = sorting
        if changed_since is not None:
            if path not in CHANGED_SINCE_PATHS:
                raise ValidationError(
                    VENDOR, f"GET {path}", "changedSince is not supported here",
                    hint=f"Tripletex offers changedSince on {', '.join(sorted(CHANGED_SINCE_PATHS))}",
                )  # fmt: skip
            query["changedSince"] = format_changed_since(changed_since)
        size = page_size or self.page_size
        in_flight = max_in_flight or self.max_in_flight
        names = DATE_WINDOWS.get(path)
        if names is None or window is None:
            if names is not None and not all(name in query for name in names):
                raise ValidationError(
                    VENDOR, f"GET {path}", f"{path} needs a date window",
                    hint=f"Pass window=(from, to) (or {names[0]}/{names[1]} in params)",
                )  # fmt: skip
            yield from self._pages(path, query, size, in_flight, digests)
            return
        pending = deque(split_dates(window[0], window[1], max_window_days))
        while pending:
            day_from, day_to = pending.popleft()
            chunk = {**query, names[0]: day_from.isoformat(), names[1]: day_to.isoformat()}
            pages = self._pages(path, chunk, size, in_flight, digests)
            try:
                first = next(pages)
            except StopIteration:
                continue
            except ValidationError as error:
                days = (day_to - day_from).days
                if tripletex_code(error) != CODE_RESULT_SET_TOO_LARGE or days < 2:
                    raise
                middle = day_from + timedelta(days=days // 2)
                self.log.info(
                    "Tripletex says %s..%s of %s is too large; reading it as %s..%s and %s..%s",
                    day_from, day_to, path, day_from, middle, middle, day_to,
                )  # fmt: skip
                pending.appendleft((middle, day_to))
                pending.appendleft((day_from, middle))
                continue
            for page in itertools.chain([first], pages):
                page.last = page.last and not pending  # a later window follows
                yield page

    def _pages(
        self,
        path: str,
        query: dict[str, Any],
        size: int,
        in_flight: int,
        digests: list[str | None] | None,
    ) -> Iterator[Page]:
        window_names = dict.fromkeys(name for names in DATE_WINDOWS.values() for name in names)
        operation = f"GET {path}" + "".join(
            f" {name}={query[name]}" for name in window_names if name in query
        )
        headers = {"If-None-Match": _CHECKSUM_PROBE} if digests is not None else None

        def fetch(offset: int, count: int) -> Page:
            response = self.request(
                "GET",
                path,
                operation=operation,
                params={**query, "from": offset, "count": count},
                headers=headers,
            )
            page = _page_of(response, operation)
            page.offset = offset
            page.last = len(page) < count
            return page

        first = fetch(0, size)
        if digests is not None:
            digests.append(first.digest)
        yield first
        if len(first) < size:
            return
        if len(first) > size:  # the endpoint ignores count: it already sent everything
            first.last = True
            return
        # A page that repeats the one before it means the endpoint ignores from/count: the core
        # guard stops with an error instead of committing the duplicates (or a truncated list).
        for raw in fetch_pages(
            fetch,
            page_size=size,
            max_in_flight=in_flight,
            start=size,
            vendor=VENDOR,
            operation=operation,
            previous=first,
        ):
            page = cast(Page, raw)
            if digests is not None:
                digests.append(page.digest)
            yield page

    def pages_unchanged(
        self,
        path: str,
        digests: Sequence[str | None],
        *,
        params: Mapping[str, Any] | None = None,
        fields: str | None = None,
        sorting: str | None = None,
        page_size: int | None = None,
    ) -> bool:
        """Whether a list is unchanged since it was read with ``digests``: every page answers 304.

        One request per page and no rows are transferred. Tripletex warns that the checksum can miss
        some changes (role changes, nested fields): schedule a full read now and then regardless.
        """
        if not digests or any(not digest for digest in digests):
            return False
        query = dict(params or {})
        if fields:
            query["fields"] = fields
        if sorting:
            query["sorting"] = sorting
        size = page_size or self.page_size
        operation = f"GET {path} (checksum)"
        for index, digest in enumerate(digests):
            try:
                self.request(
                    "GET",
                    path,
                    operation=operation,
                    params={**query, "from": index * size, "count": size},
                    headers={"If-None-Match": str(digest)},
                )
            except _NotModified:
                continue
            return False
        return True

    # -- writing ----------------------------------------------------------------------------------
    def create(
        self, path: str, body: Mapping[str, Any], *, operation: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """``POST`` one object; returns the created object. Not re-sent when the answer is lost."""
        response = self.request("POST", path, operation=operation, params=params, body=dict(body))
        return _value_of(response, operation)

    def update(self, path: str, body: Mapping[str, Any], *, operation: str) -> dict[str, Any]:
        """``PUT`` a (partial) object. With ``version`` in ``body`` Tripletex refuses a stale copy
        (:class:`TripletexVersionConflictError`)."""
        response = self.request("PUT", path, operation=operation, body=dict(body))
        return _value_of(response, operation)

    @cached_property
    def write_account(self) -> str:
        """Which Tripletex company writes go to (never a secret): the records of writes are keyed by
        it, so every connection and token of one company shares them (``whoAmI``'s company id)."""
        company = self.company_id or self.whoami().get("companyId") or 0
        return f"{self.base_url} company {company}"

    def _write_once(self, key: str, label: str) -> WriteOnce:
        return WriteOnce(
            vendor=VENDOR,
            operation=f"create {label}",
            account=self.write_account,
            key=key,
            label=label,
            state=self.state,
            wait=self.write_wait,
        )

    def create_once(
        self,
        *,
        label: str,
        find: Callable[[], dict[str, Any] | None],
        create: Callable[[], dict[str, Any]],
        key: str | None = None,
        check_hint: str = "",
    ) -> WriteResult:
        """Create something at most once, although Tripletex has no idempotency key.

        ``find`` looks the object up by the caller's external key; when it exists, nothing is sent.
        Otherwise the create goes through :class:`~airflow_provider_ledgerlink.core.once.WriteOnce`
        (keyed on ``key``, default ``label``): one attempt sends it, across retries, reruns and
        processes. When its answer is lost (timeout, reset, 502/504, a 5xx Tripletex does not
        explain), ``find`` looks again after ``recheck_delay`` seconds; found, the write is recorded
        as done; not found, :class:`AmbiguousWriteError` says how to check in Tripletex, and it is
        never sent again by itself.
        """
        existing = find()
        if existing is not None:
            return WriteResult("existing", existing)
        once = self._write_once(key or label, label)

        def send() -> dict[str, Any]:
            try:
                return create()
            except AmbiguousWriteError as error:
                self.log.warning("%s: %s; looking for it", label, error.message)
                if self.recheck_delay:
                    time.sleep(self.recheck_delay)
                found = find()
                if found is None:
                    raise
                self.log.info("%s: it had been created", label)
                return found

        outcome = once.run(send, check_hint=check_hint or f"Look for the {label} in Tripletex")
        if not outcome.sent:
            self.log.info("%s was created by an earlier attempt; not sending it again", label)
            return WriteResult("existing", outcome.result)
        return WriteResult("created", outcome.result)

    # customers ---------------------------------------------------------------------------------
    def find_customers(self, **filters: Any) -> list[dict[str, Any]]:
        """Customers matching Tripletex's ``/customer`` filters, active and inactive alike.

        ``GET /customer`` leaves out inactive customers unless asked, so both are asked for.
        """
        fields = "id,version,name,customerNumber,email,invoiceEmail,organizationNumber,phoneNumber,phoneNumberMobile,isInactive,isPrivateIndividual"
        found: list[dict[str, Any]] = []
        for inactive in ("false", "true"):
            found.extend(
                self.get_all(
                    "/customer", params={**filters, "isInactive": inactive}, fields=fields, max_in_flight=1
                )
            )
        return found

    def find_customer(self, *, match: str, value: Any) -> dict[str, Any] | None:
        """The one customer whose ``match`` field (``customerNumber``, ``email``,
        ``organizationNumber``) is ``value``; ``None`` if there is none; an error if several."""
        params = {
            "customerNumber": "customerAccountNumber",
            "email": "email",
            "organizationNumber": "organizationNumber",
        }
        if match not in params:
            raise ValueError(f"customers are matched on one of {', '.join(params)}, not {match!r}")
        candidates = [
            c for c in self.find_customers(**{params[match]: value}) if str(c.get(match)) == str(value)
        ]
        if len(candidates) > 1:
            raise ValidationError(
                VENDOR,
                f"find customer {match}={value}",
                f"{len(candidates)} customers have {match} {value}",
                hint="Merge the duplicates in Tripletex, or match on customerNumber",
            )
        return candidates[0] if candidates else None

    def upsert_customer(self, customer: Mapping[str, Any], *, match: str = "customerNumber") -> WriteResult:
        """Create the customer, or update the fields that differ, matched on ``match``; a customer
        LedgerLink did not create is never changed.

        ``customer`` is a Tripletex customer body (``name``, ``customerNumber``, ``email`` …). The
        shop's customers keep the shop's numbers, below :attr:`own_customer_series_start` (the
        webshop set-up moves Tripletex's own numbers to 100000). A customer counts as LedgerLink's
        when its number is below that start (or it has none) *and* LedgerLink's record of the create
        (:class:`~airflow_provider_ledgerlink.core.once.WriteOnce`, in the shared state) names its
        id. Anything else (a customer made by hand, by another integration, or before the set-up)
        is refused with an error naming it, and left as it is.

        A rerun finds the customer and sends nothing (``unchanged``). An update carries the
        ``version`` that was read; when someone changed the customer in the meantime (409 / 8000),
        the customer is read again and the update retried, up to three times.
        """
        value = customer.get(match)
        if value in (None, ""):
            raise ValidationError(VENDOR, "upsert customer", f"the customer has no {match} to match on")
        number = customer.get("customerNumber")
        if number is not None:
            self._check_shop_customer_number(number)
        label = f"customer {match}={value}"
        once = self._write_once(f"customer {match}={value}", label)
        existing = self.find_customer(match=match, value=value)
        if existing is None:
            outcome = once.run(
                lambda: self._create_customer(customer, match, value, label),
                check_hint=f"Look in Tripletex (Kunde) for the customer with {match} {value}",
            )
            return WriteResult("created" if outcome.sent else "existing", outcome.result)
        self._ensure_created_by_ledgerlink(once, existing, label)
        result = WriteResult("existing", existing)
        for _attempt in range(3):
            current = result.value
            changes = {
                key: new
                for key, new in customer.items()
                if not isinstance(new, Mapping | list) and key in current and current.get(key) != new
            }
            if not changes:
                return WriteResult("unchanged", current)
            try:
                updated = self.update(
                    f"/customer/{current['id']}",
                    {"id": current["id"], "version": current["version"], **changes},
                    operation=f"update {label}",
                )
                return WriteResult("updated", updated)
            except TripletexVersionConflictError:
                self.log.info("%s changed while being updated; reading it again", label)
                fresh = self.find_customer(match=match, value=value)
                if fresh is None:
                    raise
                result = WriteResult("existing", fresh)
        raise TripletexVersionConflictError(
            VENDOR, f"update {label}", "the customer kept changing while being updated",
            hint="Someone is editing it right now; run the task again later",
        )  # fmt: skip

    def _check_shop_customer_number(self, number: Any) -> None:
        start = self.own_customer_series_start
        if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < start:
            raise ValidationError(
                VENDOR,
                "upsert customer",
                f"customerNumber {number!r} is not a shop customer number (a whole number from 1 to {start - 1})",
                hint=(
                    f"Tripletex's own customer numbers start at {start} after the webshop set-up "
                    "(Kunde – innstillinger: kundenummer 100000); the shop's customers keep their "
                    "numbers below it"
                ),
            )

    def _create_customer(
        self, customer: Mapping[str, Any], match: str, value: Any, label: str
    ) -> dict[str, Any]:
        try:
            return self.create("/customer", customer, operation=f"create {label}")
        except AmbiguousWriteError:
            if self.recheck_delay:
                time.sleep(self.recheck_delay)
            found = self.find_customer(match=match, value=value)
            if found is None:
                raise
            return found

    def _ensure_created_by_ledgerlink(self, once: WriteOnce, existing: Mapping[str, Any], label: str) -> None:
        record = once.record() or {}
        stored = record.get("result")
        result: Mapping[str, Any] = stored if isinstance(stored, Mapping) else {}
        number = existing.get("customerNumber")
        in_shop_range = not number or (isinstance(number, int) and number < self.own_customer_series_start)
        if in_shop_range and record.get("state") == "done" and result.get("id") == existing.get("id"):
            return
        if in_shop_range and record.get("state") == "sending":
            # LedgerLink's create lost its answer, and now the customer exists: it was applied.
            once.mark_done(dict(existing))
            return
        reason = (
            f"its number {number} is in Tripletex's own series (from {self.own_customer_series_start})"
            if not in_shop_range
            else "LedgerLink has no record of creating it"
        )
        raise ValidationError(
            VENDOR,
            f"update {label}",
            f"Tripletex customer {existing.get('id')} ({label}) was not created by LedgerLink ({reason}); "
            "LedgerLink does not change it",
            hint=(
                "A customer made by hand or by another integration holds this number. Give it another "
                "number in Tripletex, or match the shop's customers on another field. LedgerLink's "
                f"record of the create is the Airflow Variable '{once.record_key}'"
            ),
        )

    # orders and invoices -------------------------------------------------------------------------
    def find_order(self, *, customer_id: int, order_date: date, reference: str) -> dict[str, Any] | None:
        """The customer's order of that date whose ``reference`` is the external key."""
        rows = self.get_all(
            "/order",
            params={"customerId": customer_id},
            window=(order_date, order_date + timedelta(days=1)),
            fields="id,version,number,reference,orderDate,isClosed,customer(id)",
            max_in_flight=1,
        )
        matches = [row for row in rows if row.get("reference") == reference]
        if len(matches) > 1:
            self.log.warning("%d orders have reference %s; using the first", len(matches), reference)
        return matches[0] if matches else None

    def create_order(self, order: Mapping[str, Any], *, reference: str) -> WriteResult:
        """Create an order (with ``orderLines``) once, keyed on ``reference`` (the shop's order
        number), which is stored in the order's ``reference`` field."""
        customer = order.get("customer")
        customer_id = customer.get("id") if isinstance(customer, Mapping) else None
        order_date = _as_date(order.get("orderDate"))
        if not isinstance(customer_id, int) or order_date is None:
            raise ValidationError(
                VENDOR, f"create order {reference}", "the order needs customer.id and orderDate"
            )
        body = {"deliveryDate": order_date.isoformat(), **order, "reference": reference}
        label = f"order {reference}"
        return self.create_once(
            label=label,
            find=lambda: self.find_order(customer_id=customer_id, order_date=order_date, reference=reference),
            create=lambda: self.create("/order", body, operation=f"create {label}"),
            check_hint=f"Look in Tripletex for an order of customer {customer_id} on {order_date} with reference {reference}",
        )

    def find_invoice(self, *, order_id: int, customer_id: int, invoice_date: date) -> dict[str, Any] | None:
        """The invoice made from ``order_id`` on ``invoice_date``, if there is one."""
        rows = self.get_all(
            "/invoice",
            params={"customerId": customer_id},
            window=(invoice_date, invoice_date + timedelta(days=1)),
            fields="id,version,invoiceNumber,invoiceDate,amount,amountCurrency,orders(id)",
            max_in_flight=1,
        )
        for row in rows:
            if any(isinstance(o, Mapping) and o.get("id") == order_id for o in row.get("orders") or []):
                return row
        return None

    def invoice_order(
        self,
        order_id: int,
        *,
        customer_id: int,
        invoice_date: date,
        send_to_customer: bool = False,
        extra_params: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Invoice an order once (``PUT /order/{id}/:invoice``); ``sendToCustomer`` is off unless asked.

        The action is not idempotent although it is a ``PUT``: it is never re-sent blindly.
        """
        label = f"invoice of order {order_id}"
        params = {
            "invoiceDate": invoice_date.isoformat(),
            "sendToCustomer": "true" if send_to_customer else "false",
        }
        params.update({k: v for k, v in (extra_params or {}).items() if v is not None})

        def create() -> dict[str, Any]:
            response = self.request(
                "PUT",
                f"/order/{order_id}/:invoice",
                operation=f"create {label}",
                params=params,
                idempotent=False,
            )
            return _value_of(response, f"create {label}")

        return self.create_once(
            label=label,
            find=lambda: self.find_invoice(
                order_id=order_id, customer_id=customer_id, invoice_date=invoice_date
            ),
            create=create,
            check_hint=f"Look in Tripletex for an invoice of order {order_id} dated {invoice_date}",
        )

    # vouchers ----------------------------------------------------------------------------------
    def find_voucher(self, *, external_number: str, voucher_date: date) -> dict[str, Any] | None:
        rows = self.get_all(
            "/ledger/voucher",
            window=(voucher_date, voucher_date + timedelta(days=1)),
            fields="id,version,number,year,date,externalVoucherNumber",
            max_in_flight=1,
        )
        return next((row for row in rows if row.get("externalVoucherNumber") == external_number), None)

    def create_voucher(
        self, voucher: Mapping[str, Any], *, send_to_ledger: bool | None = None
    ) -> WriteResult:
        """Post a voucher once, keyed on its ``externalVoucherNumber`` (required) and date."""
        external = str(voucher.get("externalVoucherNumber") or "").strip()
        voucher_date = _as_date(voucher.get("date"))
        if not external or voucher_date is None:
            raise ValidationError(
                VENDOR,
                "create voucher",
                "the voucher needs externalVoucherNumber and date",
                hint="externalVoucherNumber is how a rerun finds the voucher instead of posting it twice",
            )
        voucher = {**voucher, "postings": _gross_postings(voucher.get("postings"), external)}
        params = (
            {"sendToLedger": "true" if send_to_ledger else "false"} if send_to_ledger is not None else None
        )
        label = f"voucher {external}"
        return self.create_once(
            label=label,
            find=lambda: self.find_voucher(external_number=external, voucher_date=voucher_date),
            create=lambda: self.create(
                "/ledger/voucher", voucher, operation=f"create {label}", params=params
            ),
            check_hint=f"Look in Tripletex for a voucher dated {voucher_date} with external number {external}",
        )
