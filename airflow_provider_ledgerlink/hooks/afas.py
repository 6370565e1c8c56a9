"""AFAS Profit (AFAS Online) through the Profit REST services of an App connector.

:class:`AfasHook` reads the connection (token, environment), holds the HTTP clients, pages
GetConnectors, sends UpdateConnector writes and renews tokens. The wire protocol (tokens,
environments and their hosts, datetimes, filters and the query string, error mapping, the OTP body,
key segments) is in :mod:`airflow_provider_ledgerlink.protocol.afas`, whose docstring lists the wire
facts and their sources; its names are imported here too, so ``from
airflow_provider_ledgerlink.hooks.afas import build_get_query`` keeps working.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import quote

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    ConfigurationError,
    LedgerLinkError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook
from airflow_provider_ledgerlink.core.http import HttpClient
from airflow_provider_ledgerlink.core.paging import Page, check_page_size, fetch_pages
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.rotation import RotationResult, verification_failed
from airflow_provider_ledgerlink.protocol.afas import (
    AMSTERDAM,
    DATETIME_MODES,
    ENVIRONMENT_CODE,
    ENVIRONMENT_CODE_HELP,
    ENVIRONMENT_CODE_PATTERN,
    ENVIRONMENT_TYPES,
    KNOWN_ORDERINGS,
    MAX_QUERY_LENGTH,
    OPERATORS,
    VENDOR,
    Condition,
    _datetime_columns,
    _json_of,
    _key_segments,
    _looks_like_afas_datetime,
    _rows_of,
    afas_datetime_to_amsterdam,
    afas_datetime_to_utc,
    authorization_header,
    base_url_for,
    build_get_query,
    map_error,
    normalize_filters,
    normalize_token,
    otp_body,
    parse_environment,
    to_afas_filter_value,
)

#: What this module offers: the hook, and the wire protocol's names it re-exports (their home is
#: :mod:`airflow_provider_ledgerlink.protocol.afas`).
__all__ = [
    "AMSTERDAM",
    "DATETIME_MODES",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_PAGE_SIZE",
    "ENVIRONMENT_CODE",
    "ENVIRONMENT_CODE_HELP",
    "ENVIRONMENT_CODE_PATTERN",
    "ENVIRONMENT_TYPES",
    "KNOWN_ORDERINGS",
    "MAX_QUERY_LENGTH",
    "OPERATORS",
    "VENDOR",
    "AfasHook",
    "AfasSettings",
    "Condition",
    "afas_datetime_to_amsterdam",
    "afas_datetime_to_utc",
    "authorization_header",
    "base_url_for",
    "build_get_query",
    "complete_base_url",
    "map_error",
    "normalize_filters",
    "normalize_token",
    "otp_body",
    "parse_environment",
    "to_afas_filter_value",
]


#: AFAS's guidance: up to 5 simultaneous calls (another page says 8; we stay at 5).
DEFAULT_MAX_IN_FLIGHT = 5
DEFAULT_PAGE_SIZE = 1000


# ------------------------------------------------------------------------------------------------
# The hook
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AfasSettings:
    """The connection's settings, checked. The token is read apart (:attr:`AfasHook.token_xml`): the
    one-time-password flow that obtains it runs on a connection that has none yet."""

    #: Where the REST services are: the environment's URL, or the host override.
    base_url: str
    #: ``(number, type)`` of the environment; ``None`` when a host override stands in for an
    #: environment that is missing or unreadable (:attr:`AfasHook.environment` then says why).
    environment: tuple[str, str] | None


def complete_base_url(url: str) -> str:
    """A host override as the REST services' address: ``/ProfitRestServices`` added when missing."""
    url = url.rstrip("/")
    return url if url.lower().endswith("/profitrestservices") else f"{url}/ProfitRestServices"


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
    def settings(self) -> AfasSettings:
        """The connection's settings, read once (extras through the shared reader)."""
        try:
            environment: tuple[str, str] | None = self._environment()
        except ConfigurationError:
            if not (self.connection.host or "").strip():
                raise
            environment = None  # the host override says where AFAS is
        base_url = self.base_url_from_host(
            lambda: base_url_for(*self._environment()), complete=complete_base_url
        )
        return AfasSettings(base_url=base_url, environment=environment)

    def _environment(self) -> tuple[str, str]:
        try:
            return parse_environment(self.extra("environment_id"), self.extra("environment_type"))
        except ValueError as exc:
            raise self.config_error(str(exc), field="Extra environment_id / environment_type") from None

    @property
    def environment(self) -> tuple[str, str]:
        """``(number, type)`` of the environment; a clear error when the connection has none."""
        return self.settings.environment or self._environment()

    @property
    def base_url(self) -> str:
        """The environment's AFAS URL, or the host override with ``/ProfitRestServices`` added."""
        return self.settings.base_url

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
    ) -> Iterator[Page]:
        """GetConnector pages, in order, lazily; several requested at once (``max_in_flight``).

        Each :class:`~airflow_provider_ledgerlink.core.paging.Page` carries its ``offset`` (``skip``)
        and ``last`` (a page shorter than ``take``: AFAS reports no total)."""
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

        def fetch(offset: int, take: int) -> Page:
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
            return Page(rows, offset=offset, last=len(rows) < take)

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

    def get_rows(self, connector_id: str, **options: Any) -> Iterator[dict[str, Any]]:
        """All rows of a GetConnector, lazily (see :meth:`get_pages` for the options)."""
        for page in self.get_pages(connector_id, **options):
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
