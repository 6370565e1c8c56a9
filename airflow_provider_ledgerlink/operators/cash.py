"""Operators for CASH: land an export in the lake, import records and wait for CASHWin."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.compat import NEVER_EXPIRE, BaseOperator, default_deferrable
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    ConfigurationError,
    LedgerLinkError,
    ValidationError,
)
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window
from airflow_provider_ledgerlink.hooks.cash import (
    EXPORT_PAGE_SIZE,
    PENDING,
    RECORDS,
    SUCCESS,
    VENDOR,
    CashHook,
    CashTransaction,
    CashTransactionTimeoutError,
    ImportPayload,
    StatusOperationMissingError,
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
        try:
            yield from self.hook.export_pages(self.record, params, page_size=self.page_size, typed=self.typed)
        finally:
            self.hook.close()

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
# Remembering what was sent, across tries of the same task instance
# --------------------------------------------------------------------------------------------------
class SubmittedImports:
    """What ``CashImportOperator`` sent, kept where every try of the task instance finds it.

    * Airflow 3.3+: the task state store (``context["task_state_store"]``), which is scoped to the
      task instance and survives retries;
    * Airflow 3.0–3.2 have no task state store. XCom cannot stand in: Airflow clears a task's XComs
      when a new try starts (it keeps them only when resuming from a deferral). So there the record
      is an Airflow Variable named after the task instance and the import's SHA-256.

    Entries are keyed by the import's SHA-256: the same rows resume the same transaction; changed
    rows are a new import.
    """

    def __init__(self, context: Context) -> None:
        # Typed loosely: Airflow 3.0-3.2's Context has no such key (and never carries one).
        self.store: Any = context.get("task_state_store")
        ti = context.get("ti") or context.get("task_instance")
        self._scope = "|".join(
            str(getattr(ti, name, "")) for name in ("dag_id", "run_id", "task_id", "map_index")
        )

    @property
    def kind(self) -> str:
        return "task state store" if self.store is not None else "Airflow Variable"

    def _key(self, sha256: str) -> str:
        if self.store is not None:
            return f"cash_import_{sha256[:40]}"
        scoped = hashlib.sha256(f"{self._scope}|{sha256}".encode()).hexdigest()[:40]
        return f"ledgerlink_cash_import_{scoped}"

    def get(self, sha256: str) -> dict[str, Any] | None:
        if self.store is not None:
            value = self.store.get(self._key(sha256))
        else:
            from airflow.sdk import Variable

            raw = Variable.get(self._key(sha256), default=None)
            value = json.loads(raw) if raw else None
        return value if isinstance(value, dict) else None

    def set(self, sha256: str, value: dict[str, Any]) -> None:
        value = {**value, "updated_at": datetime.now(timezone.utc).isoformat()}
        if self.store is not None:
            # Kept without expiry: a rerun of this task instance months later must still find it.
            if NEVER_EXPIRE is None:
                self.store.set(self._key(sha256), value)
            else:
                self.store.set(self._key(sha256), value, retention=NEVER_EXPIRE)
            return
        from airflow.sdk import Variable

        Variable.set(self._key(sha256), json.dumps(value, sort_keys=True))

    def delete(self, sha256: str) -> None:
        if self.store is not None:
            self.store.delete(self._key(sha256))
            return
        from airflow.sdk import Variable

        remove = getattr(Variable, "delete", None)
        if remove is not None:
            remove(self._key(sha256))
        else:
            Variable.set(self._key(sha256), "")


# --------------------------------------------------------------------------------------------------
# The import
# --------------------------------------------------------------------------------------------------
def load_rows(source: str) -> list[dict[str, Any]]:
    """All rows of a landed file or extract folder (one CASH import carries them all at once)."""
    from airflow_provider_ledgerlink.core.landed import iter_landed_records

    return list(iter_landed_records(source))


class CashImportOperator(BaseOperator):
    """Import records into CASH (``Cash.import``) and wait until they are processed.

    The rows are checked before anything is sent (required fields, formats and lengths, journal
    entries balancing to zero). For an administration kept offline in CASHWin the import is pending
    until the CASHWin process of the API user picks it up; the operator waits (deferrable) and
    fails with CASH's per-line errors when the transaction ends in status 3.

    **Never twice.** The import's SHA-256 and its transaction id are stored before and right after
    sending (the task state store on Airflow 3.3+, an Airflow Variable before; see
    :class:`SubmittedImports`). A retry of the task finds them and resumes waiting for the same
    transaction instead of sending again; a try that died after sending but before storing the id
    leaves a mark that stops later tries from sending blindly. A rerun with the same rows after
    success is a no-op; changed rows are a new import.

    :param record_code: the record (templated), e.g. ``0301`` (journal lines).
    :param rows: the rows (templated: a list of mappings, e.g. an upstream XCom), or
    :param source: a landed file or extract folder (templated URI) to read the rows from.
    :param wait_for_completion: wait for the transaction (default) or return once it is accepted.
    :param poll_interval: seconds between status reads while waiting (default 30).
    :param timeout: seconds to wait for CASHWin (default 1 hour).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param cash_conn_id: the Airflow connection.
    :return: ``{"transaction_id", "status", "status_name", "record_code", "records", "sha256",
        "resumed"}``.
    """

    template_fields: Sequence[str] = ("record_code", "rows", "source", "cash_conn_id")
    template_fields_renderers = {"rows": "json"}
    ui_color = "#fde9d9"

    def __init__(
        self,
        *,
        record_code: str,
        rows: Any = None,
        source: str | None = None,
        wait_for_completion: bool = True,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        deferrable: bool | None = None,
        cash_conn_id: str = CashHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (rows is None) == (source is None):
            raise ValueError("give either rows or source")
        self.record_code = record_code
        self.rows = rows
        self.source = source
        self.wait_for_completion = wait_for_completion
        self.poll_interval = float(poll_interval)
        self.wait_timeout = float(timeout)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.cash_conn_id = cash_conn_id

    @cached_property
    def hook(self) -> CashHook:
        return CashHook(self.cash_conn_id)

    def _rows(self) -> list[Any]:
        if self.source is not None:
            return load_rows(self.source)
        rows = self.rows
        if isinstance(rows, str):
            rows = json.loads(rows)
        if isinstance(rows, Mapping):
            rows = [rows]
        if not isinstance(rows, list | tuple):
            raise ValidationError(
                VENDOR,
                f"Cash.import {self.record_code}",
                f"rows must be a list of records, not {type(rows).__name__}",
            )
        return list(rows)

    def execute(self, context: Context) -> dict[str, Any]:
        payload = build_import(self.record_code, self._rows())
        submitted = SubmittedImports(context)
        operation = f"Cash.import {payload.record_code}"
        try:
            earlier = submitted.get(payload.sha256)
            if earlier is not None:
                transaction = self._resume(earlier, payload, operation)
                resumed = True
            else:
                transaction = self._submit(submitted, payload, operation)
                resumed = False
            submitted.set(payload.sha256, self._entry(transaction))
            context["ti"].xcom_push(key="transaction_id", value=transaction.id)
            return self._finish_or_wait(context, submitted, payload, transaction, resumed)
        finally:
            self.hook.close()

    def _entry(self, transaction: CashTransaction) -> dict[str, Any]:
        return {"state": "submitted", "transaction_id": transaction.id, "status": transaction.status}

    def _submit(self, submitted: SubmittedImports, payload: ImportPayload, operation: str) -> CashTransaction:
        # The mark goes first: a try that dies between sending and storing the answer must not
        # let a later try send the same import again.
        submitted.set(payload.sha256, {"state": "sending"})
        try:
            transaction = self.hook.submit_import(payload)
        except AmbiguousWriteError:
            raise  # the mark stays: whether CASH got it is unknown
        except LedgerLinkError:
            submitted.delete(payload.sha256)  # refused outright: nothing exists at CASH
            raise
        self.log.info(
            "Sent %d record(s) %s to CASH: transaction %s (%s); kept in the %s",
            payload.records,
            payload.record_code,
            transaction.id,
            transaction.status_name,
            submitted.kind,
        )
        return transaction

    def _resume(self, earlier: dict[str, Any], payload: ImportPayload, operation: str) -> CashTransaction:
        transaction_id = earlier.get("transaction_id")
        if not transaction_id:
            raise AmbiguousWriteError(
                VENDOR,
                operation,
                f"an earlier try of this task started sending these {payload.records} record(s) "
                "(SHA-256 " + payload.sha256[:12] + ") but never got CASH's answer",
                hint="It is not sent again automatically. Check in CASH whether the records arrived: if "
                "they did, mark this task successful; if not, clear the stored state (delete the task "
                "state key or the Airflow Variable named in the log) and rerun",
            )
        self.log.info(
            "These %d record(s) were already sent in transaction %s (an earlier try); not sending "
            "them again, reading its status",
            payload.records,
            transaction_id,
        )
        if int(earlier.get("status", PENDING)) == SUCCESS:
            return CashTransaction(id=str(transaction_id), status=SUCCESS)
        try:
            return self.hook.get_transaction(str(transaction_id))
        except StatusOperationMissingError:
            return CashTransaction(id=str(transaction_id), status=int(earlier.get("status", PENDING)))

    def _summary(self, payload: ImportPayload, transaction: CashTransaction, resumed: bool) -> dict[str, Any]:
        return {
            "transaction_id": transaction.id,
            "status": transaction.status,
            "status_name": transaction.status_name,
            "record_code": payload.record_code,
            "records": payload.records,
            "sha256": payload.sha256,
            "resumed": resumed,
        }

    def _finish_or_wait(
        self,
        context: Context,
        submitted: SubmittedImports,
        payload: ImportPayload,
        transaction: CashTransaction,
        resumed: bool,
    ) -> dict[str, Any]:
        operation = f"Cash.import {payload.record_code}"
        if transaction.status == PENDING and self.wait_for_completion:
            if self.deferrable:
                self._defer(context, payload, transaction, resumed)
            transaction = self._poll_here(transaction, operation)
            submitted.set(payload.sha256, self._entry(transaction))
        if transaction.finished and transaction.status != SUCCESS:
            raise_import_failed(transaction, operation)
        return self._summary(payload, transaction, resumed)

    def _defer(
        self, context: Context, payload: ImportPayload, transaction: CashTransaction, resumed: bool
    ) -> None:
        if self.hook.status_operation is None:
            raise self.hook._missing_status_operation(self.hook.operations)
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
            ),
            method_name="execute_complete",
            kwargs={"summary": self._summary(payload, transaction, resumed)},
            timeout=timedelta(seconds=self.wait_timeout + DEFERRAL_GRACE),
        )

    def _poll_here(self, transaction: CashTransaction, operation: str) -> CashTransaction:
        started = time.monotonic()
        while transaction.status == PENDING:
            waited = time.monotonic() - started
            if waited >= self.wait_timeout:
                raise CashTransactionTimeoutError(
                    VENDOR, operation, still_pending_message(transaction.id, waited)
                )
            time.sleep(min(self.poll_interval, max(0.0, self.wait_timeout - waited)))
            transaction = self.hook.get_transaction(transaction.id)
        return transaction

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, summary: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try_number = event.get("try_number") if isinstance(event, dict) else None
        current_try = _try_number(context)
        if try_number is not None and current_try is not None and try_number != current_try:
            # Airflow 3.0 starts a retry of a task that failed after deferring here, with the failed
            # try's event (apache/airflow#56704). That event is not this try's answer: start over.
            # execute() finds the stored transaction and waits for it again; nothing is sent twice.
            self.log.info(
                "Resumed with the event of try %s in try %s; starting over from execute",
                try_number,
                current_try,
            )
            return self.execute(context)
        summary = dict(summary or {})
        operation = f"Cash.import {summary.get('record_code', self.record_code)}"
        submitted = SubmittedImports(context)
        sha256 = summary.get("sha256")
        try:
            transaction = transaction_from_event(event, operation)
        except ValidationError:
            if sha256:
                submitted.set(
                    sha256, {"state": "submitted", "transaction_id": summary["transaction_id"], "status": 3}
                )
            raise
        if sha256:
            submitted.set(sha256, self._entry(transaction))
        summary.update(status=transaction.status, status_name=transaction.status_name)
        self.log.info("CASH processed transaction %s", transaction.id)
        return summary


def _try_number(context: Context) -> int | None:
    """The running try of the task instance (``None`` outside Airflow, e.g. a bare context)."""
    ti = context.get("ti") or context.get("task_instance")
    number = getattr(ti, "try_number", None)
    return number if isinstance(number, int) else None
