"""CASH (CASH Software, NL) through "CASH API 3.0": SOAP on CASHWeb.

:class:`CashHook` reads the connection, parses the service description (WSDL) with zeep over
LedgerLink's httpx clients and calls ``Cash.export`` and ``Cash.import``. The wire protocol (records and
fields, export commands, import XML, reading exports and transactions, CASH's response codes) is in
:mod:`airflow_provider_ledgerlink.protocol.cash`, whose docstring lists the wire facts and their
sources; its names are imported here too, so ``from airflow_provider_ledgerlink.hooks.cash import
build_import`` keeps working.

zeep (and lxml, which it uses) is imported inside functions only: DAG files import this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    ConfigurationError,
    LedgerLinkError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook, base_url_from_connection
from airflow_provider_ledgerlink.core.http import (
    AsyncHttpClient,
    HttpClient,
)
from airflow_provider_ledgerlink.core.paging import Page, check_page_size, pages_of_rows
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.request_window import (
    RequestWindowLimiter,
    shared_request_window,
)
from airflow_provider_ledgerlink.protocol.cash import (
    _TRANSACTION_ID_PARAMS,
    AMSTERDAM,
    CASHWIN_DIAGNOSIS,
    CASHWIN_INTERVAL,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_WSDL,
    ERROR,
    EXPORT_PAGE_SIZE,
    FIELDS,
    FIELDS_BY_NAME,
    PENDING,
    READ_BACK_KEYED_EXPORTS,
    READ_BACK_KEYS,
    RECORDS,
    REQUESTS_PER_MINUTE,
    STATUS_NAMES,
    STATUS_OPERATION_NAMES,
    SUCCESS,
    VENDOR,
    WSDL_PATH,
    CashImportFailedError,
    CashTransaction,
    CashTransactionTimeoutError,
    FieldSpec,
    ImportExpectation,
    ImportPayload,
    ReadBack,
    RecordSpec,
    StatusOperationMissingError,
    UnsafeXmlError,
    _answer_dict,
    _unsafe,
    _zeep_error,
    build_import,
    changed_within_days,
    compare_read_back,
    expect_import,
    export_command,
    find_status_operation,
    format_field,
    iter_export_rows,
    map_http_error,
    map_response_code,
    normalize_record_code,
    parse_cash_date,
    parse_cash_decimal,
    parse_error_document,
    periods_of_window,
    read_back_transaction,
    readable_row,
    still_pending_message,
    strip_export_prefix,
    typed_value,
)

#: What this module offers: the hook, and the wire protocol's names it re-exports (their home is
#: :mod:`airflow_provider_ledgerlink.protocol.cash`).
__all__ = [
    "AMSTERDAM",
    "CASHWIN_DIAGNOSIS",
    "CASHWIN_INTERVAL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_WSDL",
    "ERROR",
    "EXPORT_PAGE_SIZE",
    "FIELDS",
    "FIELDS_BY_NAME",
    "PENDING",
    "READ_BACK_KEYED_EXPORTS",
    "READ_BACK_KEYS",
    "RECORDS",
    "REQUESTS_PER_MINUTE",
    "STATUS_NAMES",
    "STATUS_OPERATION_NAMES",
    "SUCCESS",
    "VENDOR",
    "WSDL_PATH",
    "CashHook",
    "CashImportFailedError",
    "CashSettings",
    "CashTransaction",
    "CashTransactionTimeoutError",
    "FieldSpec",
    "ImportExpectation",
    "ImportPayload",
    "ReadBack",
    "RecordSpec",
    "StatusOperationMissingError",
    "UnsafeXmlError",
    "build_import",
    "changed_within_days",
    "compare_read_back",
    "expect_import",
    "export_command",
    "find_status_operation",
    "format_field",
    "iter_export_rows",
    "map_http_error",
    "map_response_code",
    "normalize_record_code",
    "parse_cash_date",
    "parse_cash_decimal",
    "parse_error_document",
    "periods_of_window",
    "read_back_transaction",
    "readable_row",
    "still_pending_message",
    "strip_export_prefix",
    "typed_value",
    "wsdl_url_from_host",
]


# ==================================================================================================
# SOAP through zeep, with LedgerLink's httpx clients as the transport
# ==================================================================================================
def _zeep_settings(max_bytes: int) -> Any:
    import zeep

    # huge_tree lifts lxml's 10 MB text-node limit (a large export is one string); the size is bounded
    # by max_response_bytes before zeep parses anything. DTDs and entities stay forbidden.
    return zeep.Settings(
        strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True, xml_huge_tree=True
    )


def _operation_of(envelope: Any) -> str:
    body = next((c for c in envelope if str(c.tag).endswith("}Body")), None)
    if body is not None and len(body):
        return str(body[0].tag).rsplit("}", 1)[-1]
    return "SOAP call"


def _check_size(response: httpx.Response, operation: str, max_bytes: int) -> httpx.Response:
    """Refuse an answer over the size limit, or an HTML page where XML was expected."""
    if len(response.content) > max_bytes:
        raise _unsafe(
            operation, f"the answer is {len(response.content):,} bytes, over the limit of {max_bytes:,}"
        )
    head = response.content[:512].lstrip().lower()
    content_type = response.headers.get("content-type", "").lower()
    if "html" in content_type or head.startswith((b"<html", b"<!doctype html")):
        raise VendorError(
            VENDOR,
            operation,
            f"the server answered with an HTML page instead of SOAP (HTTP {response.status_code})",
            hint="A proxy, a login or a maintenance page may be in the way; check the connection's host",
            status_code=response.status_code,
        )
    return response


class _SyncSoapTransport:
    """What zeep needs from a transport (``load``, ``post_xml``), over :class:`HttpClient`."""

    def __init__(self, http: HttpClient, max_bytes: int) -> None:
        self.http = http
        self.max_bytes = max_bytes

    def load(self, url: str) -> bytes:
        response = self.http.request("GET", url, operation="reading the service description (WSDL)")
        return _check_size(response, "reading the WSDL", self.max_bytes).content

    def post_xml(self, address: str, envelope: Any, headers: dict[str, str]) -> httpx.Response:
        from zeep.wsdl.utils import etree_to_string

        operation = _operation_of(envelope)
        response = self.http.request(
            "POST",
            address,
            operation=operation,
            idempotent=operation != "Cash.import",  # exports and status reads change nothing
            content=etree_to_string(envelope),
            headers=headers,
        )
        return _check_size(response, operation, self.max_bytes)

    def close(self) -> None:
        self.http.close()


class _MissingDocument(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class _PrefetchedDocuments:
    """zeep's ``load`` during WSDL parsing on the async path: documents already fetched asynchronously."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        self.documents = documents

    def load(self, url: str) -> bytes:
        if url not in self.documents:
            raise _MissingDocument(url)
        return self.documents[url]


class _AsyncSoapTransport:
    """The asyncio twin of :class:`_SyncSoapTransport`, for ``zeep.AsyncClient`` (triggers)."""

    def __init__(self, http: AsyncHttpClient, documents: dict[str, bytes], max_bytes: int) -> None:
        self.http = http
        self.documents = documents
        self.max_bytes = max_bytes

    def load(self, url: str) -> bytes:
        return _PrefetchedDocuments(self.documents).load(url)

    async def post_xml(self, address: str, envelope: Any, headers: dict[str, str]) -> httpx.Response:
        from zeep.wsdl.utils import etree_to_string

        operation = _operation_of(envelope)
        response = await self.http.request(
            "POST",
            address,
            operation=operation,
            idempotent=operation != "Cash.import",
            content=etree_to_string(envelope),
            headers=headers,
        )
        return _check_size(response, operation, self.max_bytes)

    async def aclose(self) -> None:
        await self.http.aclose()


def _operations(client: Any) -> dict[str, Any]:
    """Operation name → zeep operation, for the service's first port."""
    for service in client.wsdl.services.values():
        for port in service.ports.values():
            return dict(port.binding._operations)
    return {}


def _parameters_of(operation: Any) -> list[str]:
    try:
        return [name for name, _ in operation.input.body.type.elements]
    except AttributeError:
        return []


class _SoapSession:
    """One parsed service description and a transport; calls operations by name."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.operations = _operations(client)

    def parameters(self, operation: str) -> list[str]:
        return _parameters_of(self.operations[operation])

    def call(self, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        from zeep import exceptions as zeep_exceptions

        try:
            answer = self.client.service[operation](**arguments)
        except LedgerLinkError:
            raise
        except (zeep_exceptions.Error, ValueError, TypeError) as exc:
            raise _zeep_error(exc, operation) from None
        return _answer_dict(answer)

    async def acall(self, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        from zeep import exceptions as zeep_exceptions

        try:
            answer = await self.client.service[operation](**arguments)
        except LedgerLinkError:
            raise
        except (zeep_exceptions.Error, ValueError, TypeError) as exc:
            raise _zeep_error(exc, operation) from None
        return _answer_dict(answer)


def _parse_wsdl(location: str, transport: Any, max_bytes: int, *, asynchronous: bool = False) -> Any:
    import zeep
    from zeep import exceptions as zeep_exceptions
    from zeep.wsdl import Document

    settings = _zeep_settings(max_bytes)
    try:
        document = Document(location, transport, settings=settings)
    except (LedgerLinkError, _MissingDocument):
        raise
    except (zeep_exceptions.Error, ValueError, SyntaxError) as exc:
        raise ConfigurationError(
            VENDOR,
            "reading the service description (WSDL)",
            f"{location} did not give a usable WSDL ({type(exc).__name__}: {str(exc)[:200]})",
            hint="Set the connection's host to the CASH API 3.0 WSDL, e.g. https://www.cashweb.nl/?api/3.0/wsdl",
        ) from None
    client_class = zeep.AsyncClient if asynchronous else zeep.Client
    return client_class(document, transport=transport, settings=settings)


# ==================================================================================================
# The hook
# ==================================================================================================
@dataclass(frozen=True)
class CashSettings:
    """The connection, checked. Holds the password: never log or return it."""

    wsdl_url: str
    relation_number: str
    email: str
    password: str
    administration_code: str
    administration_map: str
    requests_per_minute: int


def complete_wsdl_url(url: str) -> str:
    """A host override as the WSDL address: as given when it names the WSDL (or any query), CASHWeb's
    3.0 WSDL path added when it is only a server."""
    parts = urlsplit(url)
    if parts.query or parts.path.lower().endswith(("wsdl", ".xml")):
        return url
    return url.rstrip("/") + WSDL_PATH


def wsdl_url_from_host(host: str | None) -> str:
    """The WSDL address from the connection's host: as given when it names the WSDL (or any query),
    CASHWeb's 3.0 WSDL path added when it is only a server, CASHWeb's own when empty. Checked as
    every LedgerLink host is (https, or plain http to this machine only; no user name in it)."""
    return base_url_from_connection(VENDOR, host, DEFAULT_WSDL, complete=complete_wsdl_url)


class CashHook(LedgerLinkHook):
    """CASH API 3.0 (SOAP on CASHWeb): export records, import records, follow an import until CASHWin
    has processed it (by reading it back; through a status operation only where the WSDL offers one).

    :param cash_conn_id: the Airflow connection (type ``ledgerlink_cash``): login = the API user's
        e-mail, password, extras ``relation_number``, ``administration_code``,
        ``administration_map``; host = the WSDL (default CASHWeb's API 3.0 WSDL).
    :param max_response_bytes: the biggest SOAP answer accepted (an export is one answer).
    :param requests_per_minute: override the connection's budget (CASH allows 100 a minute).
    """

    conn_name_attr = "cash_conn_id"
    default_conn_name = "cash_default"
    conn_type = "ledgerlink_cash"
    hook_name = "CASH (LedgerLink)"
    vendor = VENDOR
    credential_dependents = ("settings", "limiter")

    def __init__(
        self,
        cash_conn_id: str = default_conn_name,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        requests_per_minute: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(cash_conn_id, **kwargs)
        self.cash_conn_id = cash_conn_id
        self.max_response_bytes = int(max_response_bytes)
        self._requests_per_minute = requests_per_minute
        #: Set when the connection came from an asynchronous lookup, which already masked the password.
        self._async_lookup = False

    # -- settings ---------------------------------------------------------------------------------
    @cached_property
    def settings(self) -> CashSettings:
        conn = self.connection
        email = (conn.login or "").strip()
        if "@" not in email:
            raise self.config_error(
                "the API user's e-mail address is missing", field="Login (API user e-mail)"
            )
        password = conn.password or ""
        if not password:
            raise self.config_error("the API user's password is missing", field="Password")
        register_secret(password, airflow_mask=not self._async_lookup)
        relation = str(self.extra("relation_number", "")).strip()
        if not relation.isdigit():
            raise self.config_error(
                f"relation_number {relation!r} is not a CASH relation number (digits only)",
                field="Extra relation_number",
            )
        code = str(self.extra("administration_code", "")).strip()
        admin_map = str(self.extra("administration_map", "")).strip()
        if not code or not admin_map:
            raise self.config_error(
                "both administration_code and administration_map are needed (CASH addresses an "
                "administration by the two)",
                field="Extras administration_code and administration_map",
            )
        rpm = self._requests_per_minute or self.extra("requests_per_minute", REQUESTS_PER_MINUTE)
        try:
            rpm = int(rpm)
            if rpm < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise self.config_error(
                f"requests_per_minute {rpm!r} is not a positive whole number",
                field="Extra requests_per_minute",
            ) from None
        return CashSettings(
            wsdl_url=self.base_url_from_host(DEFAULT_WSDL, complete=complete_wsdl_url),
            relation_number=relation,
            email=email,
            password=password,
            administration_code=code,
            administration_map=admin_map,
            requests_per_minute=rpm,
        )

    @property
    def administration(self) -> dict[str, str]:
        return {"admCode": self.settings.administration_code, "admMap": self.settings.administration_map}

    @cached_property
    def limiter(self) -> RequestWindowLimiter:
        """This account's budget, shared by every CASH hook of the process."""
        s = self.settings
        return shared_request_window(
            ("cash", s.wsdl_url, s.relation_number, s.email.lower()), s.requests_per_minute, 60.0
        )

    def _origin(self) -> str:
        parts = urlsplit(self.settings.wsdl_url)
        return f"{parts.scheme}://{parts.netloc}"

    @cached_property
    def _session(self) -> _SoapSession:
        http = self.make_client(
            base_url=self._origin(),
            headers={"Content-Type": "text/xml; charset=utf-8"},
            error_mapper=map_http_error,
            gates=[self.limiter],
        )
        transport = _SyncSoapTransport(http, self.max_response_bytes)
        try:
            return _SoapSession(_parse_wsdl(self.settings.wsdl_url, transport, self.max_response_bytes))
        except BaseException:
            http.close()
            raise

    def get_conn(self) -> Any:
        return self._session.client

    def close(self) -> None:
        if "_session" in self.__dict__:
            self.__dict__.pop("_session").client.transport.close()

    @property
    def operations(self) -> list[str]:
        """The operations the service description offers."""
        return sorted(self._session.operations)

    # -- calls ------------------------------------------------------------------------------------
    def _arguments(self, operation: str, parameters: Sequence[str], value: Any = None) -> dict[str, Any]:
        """The named parameters of a call, filled by name from what the service asks for."""
        s = self.settings
        known: dict[str, Any] = {
            "token": "",
            "relatie": s.relation_number,
            "email": s.email,
            "pass": s.password,
            "administration": self.administration,
            "formaat": "0",
        }
        arguments = {}
        for name in parameters:
            if name in known:
                arguments[name] = known[name]
            elif value is not None and (
                name.lower() in _TRANSACTION_ID_PARAMS or name.lower() == operation.rsplit(".", 1)[-1].lower()
            ):
                arguments[name] = value
        if not parameters:  # a service description without message parts: send what CASH documents
            arguments = dict(known)
        return arguments

    @staticmethod
    def _checked(answer: Mapping[str, Any], operation: str) -> Mapping[str, Any]:
        response = answer.get("response") or {}
        code = response.get("code") if isinstance(response, Mapping) else None
        message = str((response.get("message") if isinstance(response, Mapping) else "") or "")
        try:
            code = int(code)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise VendorError(
                VENDOR, operation, f"the answer has no response code ({answer.get('response')!r})"
            ) from None
        if code != 1:
            raise map_response_code(code, message, operation)
        return answer

    def call(self, operation: str, value: Any = None) -> dict[str, Any]:
        """Call an operation with the connection's credentials; returns the answer (checked: code 1).

        ``value`` goes to the operation's own parameter (``export``, ``import``, a transaction id).
        """
        session = self._session
        if operation not in session.operations:
            raise ConfigurationError(
                VENDOR,
                operation,
                f"the service does not offer {operation}; it offers {', '.join(sorted(session.operations))}",
                hint="Check that the connection's host is the CASH API 3.0 service description",
            )
        arguments = self._arguments(operation, session.parameters(operation), value)
        return dict(self._checked(session.call(operation, arguments), operation))

    def export_result(self, record_code: Any, params: Any = None, *, key: str | None = None) -> str:
        """The raw ``exportResult`` string of one ``Cash.export``."""
        command = export_command(record_code, params, key=key)
        answer = self.call("Cash.export", command)
        return str(answer.get("exportResult") or "")

    def get_rows(
        self, record_code: Any, params: Any = None, *, key: str | None = None, typed: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Records of one ``Cash.export``, lazily.

        :param record_code: ``0101`` (relations), ``0301`` (journal lines), ``0201``, ``0901``, ``2229`` …
        :param params: CASH's export properties, e.g. ``"W|7"`` (relations changed in the last 7 days),
            ``["T", "2611", "2611"]`` (journal lines of period 2611); see the docs.
        :param key: one record by its key (``"000100"``), sent as ``<record>|<key>``.
        :param typed: add typed values under readable names (default); ``False``: CASH's fields only.
        """
        command = export_command(record_code, params, key=key)
        text = str(self.call("Cash.export", command).get("exportResult") or "")
        operation = f"Cash.export {command}"
        for record, fields in iter_export_rows(text, operation=operation, max_bytes=self.max_response_bytes):
            yield readable_row(record, fields) if typed else {"record": record, **fields}

    def export_records(
        self, record_code: Any, params: Any = None, *, key: str | None = None, typed: bool = True
    ) -> Iterator[dict[str, Any]]:
        """The same as :meth:`get_rows` (its earlier name, kept)."""
        return self.get_rows(record_code, params, key=key, typed=typed)

    def get_pages(
        self, record_code: Any, params: Any = None, *, page_size: int = EXPORT_PAGE_SIZE, **options: Any
    ) -> Iterator[Page]:
        """:meth:`get_rows` in :class:`~airflow_provider_ledgerlink.core.paging.Page` objects of
        ``page_size`` rows (CASH answers an export at once; the pages bound what is held per write).
        Each carries its ``offset``; the final one ``last``. An export without records gives no page."""
        size = check_page_size(VENDOR, "Cash.export", page_size)
        return pages_of_rows(self.get_rows(record_code, params, **options), size)

    def export_pages(
        self, record_code: Any, params: Any = None, *, page_size: int = EXPORT_PAGE_SIZE, **options: Any
    ) -> Iterator[Page]:
        """The same as :meth:`get_pages` (its earlier name, kept)."""
        return self.get_pages(record_code, params, page_size=page_size, **options)

    def import_records(self, record_code: Any, rows: Iterable[Mapping[str, Any]]) -> CashTransaction:
        """Validate ``rows``, build the ``<CASH><R…><F…>`` XML and send it; returns the transaction.

        Nothing is sent when a row is invalid (:func:`build_import` lists every problem). The
        transaction may be pending (an administration kept offline in CASHWin): follow it with
        :meth:`follow_import`, ``CashTransactionSensor`` or ``CashImportOperator``, which also keeps
        the same records from being imported twice.
        """
        return self.submit_import(build_import(record_code, rows))

    def submit_import(self, payload: ImportPayload) -> CashTransaction:
        """Send a built import once. An answer that leaves open whether CASH took the import (a lost
        answer, a 5xx that is no refusal, an answer without a readable transaction) raises
        ``AmbiguousWriteError``: it is never re-sent blindly."""
        operation = f"Cash.import {payload.record_code}"
        check = self.check_hint(payload)
        try:
            answer = self.call("Cash.import", payload.xml)
        except VendorError as exc:
            if (
                exc.refused
                or exc.http_status is not None
                or str(exc.reference or "").startswith("response code")
            ):
                raise  # CASH's own answer: refused, nothing was imported
            # A 2xx that could not be read as SOAP: CASH may have taken the import.
            raise AmbiguousWriteError(VENDOR, operation, exc.message, hint=check) from None
        data = answer.get("transaction")
        try:
            if not isinstance(data, Mapping):
                raise VendorError(VENDOR, operation, "the answer holds no transaction")
            transaction = CashTransaction.from_answer(data, operation)
        except VendorError as exc:
            raise AmbiguousWriteError(
                VENDOR, operation, f"CASH answered success, but {exc.message}", hint=check
            ) from None
        self.log.info(
            "CASH import of %d record(s) %s: transaction %s is %s",
            payload.records,
            payload.record_code,
            transaction.id,
            transaction.status_name,
        )
        return transaction

    def check_hint(self, payload: ImportPayload) -> str:
        """How a person checks in CASH whether ``payload`` was imported."""
        s = self.settings
        where = f"administration {s.administration_code}/{s.administration_map}"
        if payload.expectation is not None:
            how = f"export them (Cash.export {', '.join(payload.expectation.exports)}) or look them up in CASHWin"
        else:
            how = "look them up in CASHWin"
        return (
            f"Check in CASH whether {payload.label} is in {where}: {how}. An administration kept offline "
            "in CASHWin shows them only once its S0067 'Inlezen berichten' processed the import (it looks "
            "every 30 s); CASH mails rejections to the API user's 'Foutmeldingen naar' address"
        )

    # -- transaction status -----------------------------------------------------------------------
    @property
    def status_operation(self) -> str | None:
        """The operation this service offers to read a transaction's status, if any."""
        return find_status_operation(self._session.operations)

    def follow_import(self, transaction_id: str, expectation: ImportExpectation | None) -> CashTransaction:
        """Where an import stands now: through the status operation when the service description
        offers one, otherwise by reading the records back (``Cash.export``) as ``expectation`` says.

        Status 2 means processed (every record is in CASH as imported), 3 rejected, 1 not yet.
        """
        name = self.status_operation
        if name is not None and transaction_id:
            return self.get_transaction(transaction_id)
        if expectation is None:
            raise self._missing_status_operation(self._session.operations, following_import=True)
        rows = (
            row
            for command in expectation.exports
            for row in iter_export_rows(
                str(self.call("Cash.export", command).get("exportResult") or ""),
                operation=f"Cash.export {command}",
                max_bytes=self.max_response_bytes,
            )
        )
        return read_back_transaction(transaction_id, expectation, rows)

    def _missing_status_operation(
        self, operations: Iterable[str], *, following_import: bool = False
    ) -> StatusOperationMissingError:
        """No status operation; ``following_import``: nor anything to read back instead."""
        if following_import:
            return StatusOperationMissingError(
                VENDOR,
                "following an import",
                "the CASH service offers no operation to read a transaction's status later (it offers "
                f"{', '.join(sorted(operations))}), and LedgerLink does not know what to read back",
                hint="Wait with the rows: CashImportOperator does, and CashTransactionSensor takes the "
                "operator's 'expectation' (its XCom). Only records 0101, 0201, 0301, 0901 and 2229 can "
                "be read back",
            )
        return StatusOperationMissingError(
            VENDOR,
            "reading a transaction's status",
            "the CASH service offers no operation to read a transaction's status later (it offers "
            f"{', '.join(sorted(operations))}; LedgerLink looks for {', '.join(STATUS_OPERATION_NAMES)})",
            hint="CASH API 3.0 does not document one. An import's own answer still tells its status; ask "
            "CASH support which operation reports a transaction, or follow the import by reading it "
            "back (follow_import with the import's expectation)",
        )

    def get_transaction(self, transaction_id: str) -> CashTransaction:
        """The current state of a transaction (see :attr:`status_operation`)."""
        name = self.status_operation
        if name is None:
            raise self._missing_status_operation(self._session.operations)
        data = self.call(name, str(transaction_id)).get("transaction")
        if not isinstance(data, Mapping):
            raise VendorError(VENDOR, name, "the answer holds no transaction")
        return CashTransaction.from_answer(data, name)

    def check_connection(self) -> str:
        s = self.settings
        operations = self.operations
        try:
            count = sum(1 for _ in self.export_records("0901", typed=False))
            detail = f"{count} journals"
        except ValidationError as exc:
            # Only CASH's own answer "export error" (response code 800, in a SOAP answer that got past
            # the login) means logged in; an HTTP 400 or any other refusal says nothing about the login.
            if exc.http_status is not None or exc.reference != "response code 800":
                raise
            detail = f"logged in; exporting journals (0901) is not enabled ({exc.message})"
        status = self.status_operation or "none offered (imports are followed by reading them back)"
        return (
            f"Connected to CASH as {s.email} (relation {s.relation_number}), administration "
            f"{s.administration_code}/{s.administration_map}: {detail}. Operations: "
            f"{', '.join(operations)}; transaction status through {status}"
        )

    # -- the asyncio side (triggers) --------------------------------------------------------------
    @classmethod
    async def for_trigger(cls, cash_conn_id: str, **kwargs: Any) -> CashHook:
        """A hook whose connection was looked up without blocking the event loop."""
        from airflow_provider_ledgerlink.core.compat import aget_connection

        hook = cls(cash_conn_id, **kwargs)
        connection = await aget_connection(cash_conn_id)
        hook.__dict__["raw_connection"] = connection  # its extra is read from the raw text, no lookup
        hook.__dict__["connection"] = await hook.aoverlay(connection)
        hook._async_lookup = True  # the password was masked by the lookup itself
        return hook

    async def async_session(self) -> _AsyncSession:
        """Fetch the WSDL asynchronously and return a session for ``await``-ed calls (close it)."""
        http = await AsyncHttpClient.open(
            vendor=VENDOR,
            base_url=self._origin(),
            headers={"Content-Type": "text/xml; charset=utf-8"},
            error_mapper=map_http_error,
            retry=self.retry,
            timeouts=self.timeouts,
            gates=[self.limiter],
        )
        try:
            documents: dict[str, bytes] = {}
            url = self.settings.wsdl_url
            for _ in range(20):  # the WSDL and the documents it imports, fetched without blocking
                response = await http.request("GET", url, operation="reading the service description (WSDL)")
                documents[url] = _check_size(response, "reading the WSDL", self.max_response_bytes).content
                transport = _AsyncSoapTransport(http, documents, self.max_response_bytes)
                try:
                    client = _parse_wsdl(
                        self.settings.wsdl_url, transport, self.max_response_bytes, asynchronous=True
                    )
                    return _AsyncSession(self, _SoapSession(client), http)
                except _MissingDocument as missing:
                    url = missing.url
            raise ConfigurationError(VENDOR, "reading the WSDL", "the WSDL imports too many documents")
        except BaseException:
            await http.aclose()
            raise


class _AsyncSession:
    """``await session.get_transaction(id)`` in a trigger; ``await session.aclose()`` at the end."""

    def __init__(self, hook: CashHook, session: _SoapSession, http: AsyncHttpClient) -> None:
        self.hook = hook
        self.session = session
        self.http = http

    @property
    def status_operation(self) -> str | None:
        return find_status_operation(self.session.operations)

    async def follow_import(
        self, transaction_id: str, expectation: ImportExpectation | None
    ) -> CashTransaction:
        """The asyncio twin of :meth:`CashHook.follow_import`."""
        if self.status_operation is not None and transaction_id:
            return await self.get_transaction(transaction_id)
        if expectation is None:
            raise self.hook._missing_status_operation(self.session.operations, following_import=True)
        rows: list[tuple[str, dict[str, str]]] = []
        for command in expectation.exports:
            arguments = self.hook._arguments("Cash.export", self.session.parameters("Cash.export"), command)
            answer = self.hook._checked(await self.session.acall("Cash.export", arguments), "Cash.export")
            text = str(answer.get("exportResult") or "")
            found = iter_export_rows(
                text, operation=f"Cash.export {command}", max_bytes=self.hook.max_response_bytes
            )
            rows.extend(r for r in found if r[0] == expectation.record_code)
        return read_back_transaction(transaction_id, expectation, rows)

    async def get_transaction(self, transaction_id: str) -> CashTransaction:
        name = self.status_operation
        if name is None:
            raise self.hook._missing_status_operation(self.session.operations)
        arguments = self.hook._arguments(name, self.session.parameters(name), str(transaction_id))
        answer = self.hook._checked(await self.session.acall(name, arguments), name)
        data = answer.get("transaction")
        if not isinstance(data, Mapping):
            raise VendorError(VENDOR, name, "the answer holds no transaction")
        return CashTransaction.from_answer(data, name)

    async def aclose(self) -> None:
        await self.http.aclose()
