"""Operators for CASH: land an export in the lake, import records and wait for CASHWin."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from airflow_provider_ledgerlink.core.compat import default_deferrable
from airflow_provider_ledgerlink.core.errors import ConfigurationError, ValidationError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window
from airflow_provider_ledgerlink.core.once import WriteOnce
from airflow_provider_ledgerlink.core.shared_state import SharedState
from airflow_provider_ledgerlink.core.writes import LedgerLinkWriteOperator, renamed_arguments
from airflow_provider_ledgerlink.hooks.cash import (
    EXPORT_PAGE_SIZE,
    PENDING,
    RECORDS,
    SUCCESS,
    VENDOR,
    CashHook,
    CashImportFailedError,
    CashTransaction,
    CashTransactionTimeoutError,
    ImportPayload,
    build_import,
    changed_within_days,
    export_command,
    normalize_record_code,
    periods_of_window,
    still_pending_message,
)
from airflow_provider_ledgerlink.sensors.cash import DEFAULT_TIMEOUT, DEFERRAL_GRACE
from airflow_provider_ledgerlink.triggers.cash import (
    DEFAULT_POLL_INTERVAL,
    CashTransactionTrigger,
    raise_import_failed,
    transaction_from_event,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Records whose incremental window LedgerLink knows how to ask CASH for.
INCREMENTAL_RECORDS = ("0101", "0301")


class CashExtractOperator(LedgerLinkExtractOperator):
    """Land one CASH record type (``Cash.export``) in object storage.

    Incremental selections, derived from the window (the run's data interval by default):

    * relations (0101): ``W|N``, the relations changed in the last N days, N reaching back from
      today to the window's start. CASH gives no change time per relation, so the output is every
      relation changed since the window began (a superset of the window; rows are whole relations,
      safe to upsert);
    * journal lines (0301): ``T|YYMM|YYMM``, every line of the booking periods the window touches
      (a period snapshot; rerunning the window replaces it).

    Other records are read in full (``incremental=False`` is their default) or with your own
    ``export_params``. Rows keep CASH's ``F…`` fields and add typed values under readable names.

    :param record_code: the record (templated): ``0101``, ``0301``, ``0201``, ``0901``, ``2229`` …
    :param export_params: CASH's export properties ("eigenschappen", templated), e.g. ``"W|7"`` or
        ``["T", "2611", "2611"]``; overrides the window's selection. (Not ``params``: that is
        Airflow's own argument for DAG and task params.)
    :param typed: add readable, typed fields (default) or only CASH's own.
    :param cash_conn_id: the Airflow connection.
    """

    vendor = VENDOR
    asset_vendor = "cash"  # pinned: part of every default Asset URI of this operator
    template_fields: Sequence[str] = (
        *LedgerLinkExtractOperator.template_fields,
        "record_code",
        "export_params",
        "cash_conn_id",
    )

    def __init__(
        self,
        *,
        record_code: str,
        export_params: Any = None,
        typed: bool = True,
        page_size: int = EXPORT_PAGE_SIZE,
        cash_conn_id: str = CashHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        try:
            default_incremental = (
                normalize_record_code(record_code) in INCREMENTAL_RECORDS or export_params is not None
            )
        except ValueError:  # a template; decided when it is rendered
            default_incremental = True
        kwargs.setdefault("incremental", default_incremental)
        super().__init__(object_name=f"R{record_code}", conn_id=cash_conn_id, **kwargs)
        self.record_code = record_code
        self.export_params = export_params
        self.typed = typed
        self.page_size = page_size
        self.cash_conn_id = cash_conn_id
        self._selection: str | None = None

    @cached_property
    def hook(self) -> CashHook:
        return CashHook(self.cash_conn_id)

    @property
    def record(self) -> str:
        try:
            return normalize_record_code(self.record_code)
        except ValueError as exc:
            raise ConfigurationError(VENDOR, "extract", str(exc)) from None

    def object_label(self) -> str:
        spec = RECORDS.get(self.record)
        return f"R{self.record}" + (f" ({spec.name})" if spec else "")

    def selection(self, window: Window | None) -> Any:
        """The export properties for ``window`` (see the class docs)."""
        if self.export_params not in (None, "", []):
            return self.export_params
        if window is None:
            return None
        if self.record == "0101":
            return ["W", changed_within_days(window.start, window_end=window.end)]
        if self.record == "0301":
            return ["T", *periods_of_window(window.start, window.end)]
        raise ValidationError(
            VENDOR,
            f"extract {self.object_label()}",
            f"LedgerLink knows no incremental selection for record {self.record}",
            hint="Set incremental=False for a full export, or pass export_params with CASH's export properties",
        )

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        params = self.selection(window)
        self._selection = export_command(self.record, params)
        self.log.info("CASH export %s", self._selection)
        yield from self.hook.get_pages(self.record, params, page_size=self.page_size, typed=self.typed)

    def source_details(self) -> dict[str, Any]:
        settings = self.hook.settings
        return {
            "record_code": self.record,
            "export": self._selection,
            "administration_code": settings.administration_code,
            "administration_map": settings.administration_map,
            "relation_number": settings.relation_number,
        }


# --------------------------------------------------------------------------------------------------
# The import
# --------------------------------------------------------------------------------------------------
class CashImportOperator(LedgerLinkWriteOperator):
    """Import records into CASH (``Cash.import``) once, and wait until CASHWin has processed them.

    The rows are checked before anything is sent (required fields, formats and lengths, journal
    entries balancing to zero). For an administration kept offline in CASHWin the import is pending
    until the CASHWin process of the API user (S0067 "Inlezen berichten", every 30 s) picks it up.

    **Waiting.** CASH API 3.0 documents no operation that reports a transaction later, so the
    operator learns the outcome by reading the records back (``Cash.export``) at every turn: journal
    lines (0301) of the import's booking periods, found by journal, document number and year; other
    records by their keys. Done when every record is there as imported; rejected when a document
    number is there with other lines (CASHWin books a document number once per journal and year);
    still pending otherwise, until ``timeout``, when the error says which records are missing and
    what to check in CASHWin. A status operation is used instead only when the service description
    offers one. The wait is deferrable; the trigger uses asynchronous I/O only.

    **Never twice.** The import goes through :class:`~airflow_provider_ledgerlink.core.once.WriteOnce`,
    keyed by what it books, never by who sends it: the CASH account (service, relation number,
    administration) and the journal lines' journal, document number and year (other records: their
    keys; records LedgerLink cannot read back: the XML's SHA-256). A retry, a new DAG run, a backfill
    or a concurrent attempt with the same rows sends nothing, reports ``resumed: True`` and follows
    the earlier import instead. Rows with the same document numbers but other lines are refused
    without sending. An answer that leaves open whether CASH took the import fails with
    :class:`~airflow_provider_ledgerlink.core.errors.AmbiguousWriteError`, which says how to check
    in CASH; the record stays, so nothing is sent again until a person says so. The records are
    Airflow Variables named ``ledgerlink_once_cash_…``.

    :param record_code: the record (templated), e.g. ``0301`` (journal lines).
    :param records: the rows (templated: a list of mappings, e.g. an upstream XCom), or
    :param records_path: a landed file or extract folder (templated URI) to read the rows from.
        ``rows`` and ``source`` are their old names (still accepted, with a deprecation warning).
    :param wait_for_completion: wait until CASHWin processed the import (default) or return once
        CASH accepted it.
    :param poll_interval: seconds between reads while waiting (default 30: CASHWin's own rhythm).
    :param timeout: seconds to wait for CASHWin (default 1 hour).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param once_options: ``settle``, ``wait`` and ``poll`` seconds for ``WriteOnce`` (how long an
        attempt waits for a concurrent attempt's outcome before calling it ambiguous; default 300).
    :param once_state: where the write records live (default: Airflow Variables).
    :param cash_conn_id: the Airflow connection.
    :return: the write summary (see :mod:`~airflow_provider_ledgerlink.core.writes`) plus
        ``{"transaction_id", "status", "status_name", "record_code", "sha256", "resumed",
        "documents", "expectation"}``. The import is one transaction (the write base's batch form):
        all its ``records`` are ``created`` when sent now, or ``already_done`` when an earlier import
        is followed (``resumed``), and each row's result says so. ``status`` is CASH's transaction
        status; ``expectation`` is what ``CashTransactionSensor`` reads back.
    """

    template_fields: Sequence[str] = ("record_code", "records", "records_path", "cash_conn_id")
    template_fields_renderers = {"records": "json"}
    vendor = VENDOR
    record_noun = "row"
    #: One ``Cash.import`` carries every row: CASH books or rejects them as a whole.
    writes_in_one_batch = True

    def __init__(
        self,
        *,
        record_code: str,
        wait_for_completion: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        deferrable: bool | None = None,
        once_options: Mapping[str, float] | None = None,
        once_state: SharedState | None = None,
        cash_conn_id: str = CashHook.default_conn_name,
        rows: Any = None,
        source: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs = renamed_arguments(
            type(self).__name__, kwargs, {"rows": ("records", rows), "source": ("records_path", source)}
        )
        super().__init__(**kwargs)
        self.record_code = record_code
        self.wait_for_completion = wait_for_completion
        self.poll_interval = float(poll_interval)
        self.wait_timeout = float(timeout)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.once_options = {k: float(v) for k, v in (once_options or {}).items()}
        #: Where the write records live (default: Airflow Variables). For tests and custom set-ups.
        self.once_state = once_state
        self.cash_conn_id = cash_conn_id
        self._sent: _SentImport | None = None

    @cached_property
    def hook(self) -> CashHook:
        return CashHook(self.cash_conn_id)

    @property
    def operation(self) -> str:
        return f"Cash.import {self.record_code}"

    def iter_records(self) -> Iterator[Any]:
        """The rows (see the base); ``records`` may also be their JSON text."""
        if self.records_path is None and isinstance(self.records, str):
            rows = json.loads(self.records)
            if isinstance(rows, Mapping):
                rows = [rows]
            if not isinstance(rows, list):
                raise ValidationError(
                    VENDOR, self.operation, f"rows must be a list of records, not {type(rows).__name__}"
                )
            yield from rows
            return
        yield from super().iter_records()

    def _write_once(self, payload: ImportPayload) -> WriteOnce:
        s = self.hook.settings
        account = "|".join(
            (
                urlsplit(s.wsdl_url).netloc.lower(),
                s.relation_number,
                s.administration_code.upper(),
                s.administration_map,
            )
        )
        return WriteOnce(
            vendor=VENDOR,
            operation=f"Cash.import {payload.record_code}",
            account=account,
            key=payload.content_key,
            label=payload.label,
            state=self.once_state,
            settle=self.once_options.get("settle", 5.0),
            wait=self.once_options.get("wait", 300.0),
            poll=self.once_options.get("poll", 0.5),
        )

    def _send(self, payload: ImportPayload) -> dict[str, Any]:
        transaction = self.hook.submit_import(payload)
        result = {
            "transaction_id": transaction.id,
            "status": transaction.status,
            "record_code": payload.record_code,
            "records": payload.records,
            "sha256": payload.sha256,
            "lines": _lines_digest(payload),
        }
        if transaction.errors:
            result["errors"] = transaction.errors[:50]
        return result

    def write_batch(self, hook: CashHook, records: list[Any]) -> list[dict[str, Any]]:
        """Check and build the import, and send it once (see the class docs)."""
        payload = build_import(self.record_code, records)
        operation = f"Cash.import {payload.record_code}"
        if self.wait_for_completion and payload.expectation is None and hook.status_operation is None:
            # No way to learn the outcome: refuse before anything is sent.
            raise hook._missing_status_operation(hook.operations, following_import=True)
        once = self._write_once(payload)
        outcome = once.run(functools.partial(self._send, payload), check_hint=hook.check_hint(payload))
        result = outcome.result
        if outcome.sent:
            self.log.info(
                "Sent %d record(s) %s to CASH (%s): transaction %s",
                payload.records,
                payload.record_code,
                payload.label,
                result.get("transaction_id"),
            )
        else:
            self._check_same_rows(once, result, payload, operation)
            self.log.info(
                "%s were imported earlier (transaction %s; record %s): not sent again, following that import",
                payload.label,
                result.get("transaction_id"),
                once.record_key,
            )
        transaction = CashTransaction(
            id=str(result.get("transaction_id") or ""),
            status=_int(result.get("status"), PENDING),
            errors=list(result.get("errors") or []),
        )
        self._sent = _SentImport(once, payload, transaction, resumed=not outcome.sent)
        status = "created" if outcome.sent else "already_done"
        return [{"status": status} for _ in records]

    def finish(self, context: Context, summary: dict[str, Any]) -> dict[str, Any]:
        """Push the transaction id, then wait for CASHWin (here or deferred) unless told not to."""
        assert self._sent is not None, "finish follows write_batch"
        once, payload, transaction, resumed = self._sent
        context["ti"].xcom_push(key="transaction_id", value=transaction.id)
        summary = self._summary(summary, payload, transaction, resumed)
        return self._finish_or_wait(context, once, payload, transaction, summary)

    def _check_same_rows(
        self, once: WriteOnce, earlier: Mapping[str, Any], payload: ImportPayload, operation: str
    ) -> None:
        """The earlier import of these document numbers must have booked the same lines (ledger
        account, amount, date; a changed description is the same import)."""
        if not earlier.get("lines") or earlier.get("lines") == _lines_digest(payload):
            return
        raise ValidationError(
            VENDOR,
            operation,
            f"{payload.label} were already imported (transaction {earlier.get('transaction_id')}) with "
            "other lines; nothing was sent",
            hint="CASHWin books a document number once per journal and year: import a correction under "
            "new document numbers. If CASH does not have the earlier import (check in CASHWin), allow "
            f"this one with {once.reopen_command()}",
        )

    @staticmethod
    def _summary(
        summary: Mapping[str, Any], payload: ImportPayload, transaction: CashTransaction, resumed: bool
    ) -> dict[str, Any]:
        """The write summary, with the import's transaction and what it books beside it."""
        expectation = payload.expectation
        return {
            **summary,
            "transaction_id": transaction.id,
            "status": transaction.status,
            "status_name": transaction.status_name,
            "record_code": payload.record_code,
            "sha256": payload.sha256,
            "resumed": resumed,
            "documents": payload.label,
            "expectation": expectation.as_dict() if expectation is not None else None,
        }

    def _finish_or_wait(
        self,
        context: Context,
        once: WriteOnce,
        payload: ImportPayload,
        transaction: CashTransaction,
        summary: dict[str, Any],
    ) -> dict[str, Any]:
        operation = f"Cash.import {payload.record_code}"
        with _kept_record_hint(once):
            if transaction.status == PENDING and self.wait_for_completion:
                if self.deferrable:
                    self._defer(context, payload, transaction, summary)
                transaction = self._poll_here(transaction, payload, operation)
            if transaction.finished and transaction.status != SUCCESS:
                raise_import_failed(transaction, operation)
        return {**summary, "status": transaction.status, "status_name": transaction.status_name}

    def _defer(
        self, context: Context, payload: ImportPayload, transaction: CashTransaction, summary: dict[str, Any]
    ) -> None:
        if self.hook.status_operation is None and payload.expectation is None:
            raise self.hook._missing_status_operation(self.hook.operations, following_import=True)
        started = time.time()
        self.defer(
            trigger=CashTransactionTrigger(
                transaction_id=transaction.id,
                cash_conn_id=self.cash_conn_id,
                poll_interval=self.poll_interval,
                end_time=started + self.wait_timeout,
                started_at=started,
                # Echoed in the event, so execute_complete can tell an earlier try's event (see
                # there). Not in kwargs: Airflow 3.0's dag.test() replaces them with the event.
                try_number=_try_number(context),
                expectation=summary["expectation"],
            ),
            method_name="execute_complete",
            kwargs={"summary": summary},
            timeout=timedelta(seconds=self.wait_timeout + DEFERRAL_GRACE),
        )

    def _poll_here(
        self, transaction: CashTransaction, payload: ImportPayload, operation: str
    ) -> CashTransaction:
        started = time.monotonic()
        while True:
            transaction = self.hook.follow_import(transaction.id, payload.expectation)
            if transaction.status != PENDING:
                return transaction
            waited = time.monotonic() - started
            if waited >= self.wait_timeout:
                raise CashTransactionTimeoutError(
                    VENDOR, operation, still_pending_message(transaction.id, waited, transaction.read_back)
                )
            time.sleep(min(self.poll_interval, max(0.0, self.wait_timeout - waited)))

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, summary: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try_number = event.get("try_number") if isinstance(event, dict) else None
        current_try = _try_number(context)
        if try_number is not None and current_try is not None and try_number != current_try:
            # Airflow 3.0 starts a retry of a task that failed after deferring here, with the failed
            # try's event (apache/airflow#56704). That event is not this try's answer: start over.
            # execute() finds the import recorded and follows it again; nothing is sent twice.
            self.log.info(
                "Resumed with the event of try %s in try %s; starting over from execute",
                try_number,
                current_try,
            )
            return self.execute(context)
        summary = dict(summary or {})
        operation = f"Cash.import {summary.get('record_code', self.record_code)}"
        try:
            transaction = transaction_from_event(event, operation)
        except (CashImportFailedError, CashTransactionTimeoutError) as exc:
            try:
                once = self._write_once(build_import(self.record_code, list(self.iter_records())))
            except Exception:  # the rows are gone: the error without the record's name
                raise exc from None
            with _kept_record_hint(once):
                raise
        summary.update(status=transaction.status, status_name=transaction.status_name)
        self.log.info("CASH processed import %s (%s)", transaction.id, summary.get("documents"))
        return summary


class _SentImport(NamedTuple):
    """What ``write_batch`` sent (or found sent before), for ``finish`` to follow."""

    once: WriteOnce
    payload: ImportPayload
    transaction: CashTransaction
    resumed: bool


@contextmanager
def _kept_record_hint(once: WriteOnce) -> Iterator[None]:
    """Add to a rejection or a timeout that the import stays recorded, and how to allow a new one."""
    try:
        yield
    except (CashImportFailedError, CashTransactionTimeoutError) as exc:
        hint = (
            f"{(exc.hint or '').rstrip('. ')}. The import stays recorded as sent (Airflow Variable "
            f"{once.record_key}), so no run sends these records again; once you checked in CASHWin that "
            f"nothing of it was booked, allow a new import with {once.reopen_command()}"
        ).lstrip(". ")
        raise type(exc)(
            exc.vendor,
            exc.operation,
            exc.message,
            hint=hint,
            reference=exc.reference,
            status_code=exc.http_status,
            details=exc.details,
        ) from None


def _lines_digest(payload: ImportPayload) -> str:
    """What the import books, as the read-back compares it (the XML's hash where it cannot)."""
    if payload.expectation is None:
        return payload.sha256
    text = json.dumps(sorted(payload.expectation.entries.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _try_number(context: Context) -> int | None:
    """The running try of the task instance (``None`` outside Airflow, e.g. a bare context)."""
    ti = context.get("ti") or context.get("task_instance")
    number = getattr(ti, "try_number", None)
    return number if isinstance(number, int) else None
