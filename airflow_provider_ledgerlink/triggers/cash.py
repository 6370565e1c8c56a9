"""Waiting for CASHWin in the triggerer: follow a CASH import until it is processed.

An import into an administration kept offline in CASHWin stays pending until the CASHWin process of
the API user (function S0067, "Inlezen berichten") picks it up, about every 30 seconds, or never
while that process is not running. CASH API 3.0 documents no operation that reports a transaction,
so :class:`CashTransactionTrigger` reads the imported records back (``Cash.export``, as the import's
``expectation`` says) at every turn; only when the service description offers a status operation
does it read the transaction instead. It uses asynchronous I/O only (the WSDL too is fetched without
blocking) and fires one event:

==============  =====================================================================================
``success``     CASH processed the import (status 2: every record read back as imported)
``failed``      CASH rejected it (status 3, or a document number read back with other lines);
                ``transaction.errors`` holds the per-line errors
``timeout``     still not there at ``end_time``; ``message`` says which records and what is most
                likely wrong
``error``       the status could not be read (``message`` says why; no secret is ever in it)
==============  =====================================================================================

Given ``try_number`` (the try of the task that deferred), every event carries it back: Airflow 3.0
can resume a retry with an earlier try's event, and the task must be able to tell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_ledgerlink.core.errors import VendorError
from airflow_provider_ledgerlink.core.hook import trigger_event
from airflow_provider_ledgerlink.core.redaction import scrub
from airflow_provider_ledgerlink.hooks.cash import (
    SUCCESS,
    VENDOR,
    CashHook,
    CashImportFailedError,
    CashTransaction,
    CashTransactionTimeoutError,
    ImportExpectation,
    still_pending_message,
)

DEFAULT_POLL_INTERVAL = 30.0
EVENT_STATUSES = ("success", "failed", "timeout", "error")


class CashTransactionTrigger(BaseTrigger):
    """Fires when a CASH import is processed, rejected, or still not there at ``end_time``.

    :param transaction_id: the id from the import's answer.
    :param expectation: what the import leaves in CASH (``ImportExpectation.as_dict()``), read back
        at every turn; needed unless the service offers a status operation.
    :param cash_conn_id: the Airflow connection (resolved in the triggerer).
    :param poll_interval: seconds between status reads (CASHWin looks about every 30 s).
    :param end_time: epoch seconds after which the trigger gives up with ``timeout``; ``None``: never.
    :param started_at: epoch seconds the wait began (for the timeout message).
    :param try_number: the try of the task that deferred; echoed in every event.
    """

    def __init__(
        self,
        transaction_id: str,
        cash_conn_id: str = CashHook.default_conn_name,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        end_time: float | None = None,
        started_at: float | None = None,
        try_number: int | None = None,
        expectation: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.expectation = dict(expectation) if expectation else None
        self.transaction_id = str(transaction_id)
        self.cash_conn_id = cash_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time) if end_time is not None else None
        self.started_at = float(started_at) if started_at is not None else time.time()
        self.try_number = int(try_number) if try_number is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "transaction_id": self.transaction_id,
            "cash_conn_id": self.cash_conn_id,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
            "started_at": self.started_at,
        }
        if self.try_number is not None:
            kwargs["try_number"] = self.try_number
        if self.expectation is not None:
            kwargs["expectation"] = self.expectation
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def _event(self, status: str, **payload: Any) -> TriggerEvent:
        if self.try_number is not None:
            payload["try_number"] = self.try_number
        return trigger_event({"status": status, "transaction_id": self.transaction_id, **payload})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        session = None
        try:
            hook = await CashHook.for_trigger(self.cash_conn_id)
            session = await hook.async_session()
            expectation = ImportExpectation.from_dict(self.expectation) if self.expectation else None
            while True:
                transaction = await session.follow_import(self.transaction_id, expectation)
                if transaction.finished:
                    status = "success" if transaction.status == SUCCESS else "failed"
                    yield self._event(status, transaction=transaction.as_dict())
                    return
                now = time.time()
                if self.end_time is not None and now >= self.end_time:
                    message = still_pending_message(
                        self.transaction_id, now - self.started_at, transaction.read_back
                    )
                    yield self._event("timeout", message=message, transaction=transaction.as_dict())
                    return
                wait = self.poll_interval
                if self.end_time is not None:
                    wait = max(0.0, min(wait, self.end_time - now))
                await asyncio.sleep(wait)
        except Exception as exc:  # one event, always: the task decides what to do with it
            yield self._event("error", message=scrub(str(exc)), error_type=type(exc).__name__)
        finally:
            if session is not None:
                await session.aclose()


def transaction_from_event(event: dict[str, Any] | None, operation: str) -> CashTransaction:
    """The processed transaction of a trigger event; raises LedgerLink's error for every other outcome.

    ``failed`` raises :class:`CashImportFailedError` with the per-line errors, ``timeout``
    :class:`CashTransactionTimeoutError` with the CASHWin checklist, ``error`` a :class:`VendorError`.
    """
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        raise VendorError(VENDOR, operation, f"the trigger sent an unexpected event: {event!r}")
    status = event["status"]
    if status == "error":
        raise VendorError(
            VENDOR,
            operation,
            f"reading the status of transaction {event.get('transaction_id')} failed: {event.get('message')}",
            hint="Check the connection and that CASH is reachable from the triggerer",
        )
    if status == "timeout":
        raise CashTransactionTimeoutError(VENDOR, operation, str(event.get("message")))
    data = event.get("transaction") or {}
    transaction = CashTransaction(
        id=str(data.get("id") or event.get("transaction_id")),
        status=int(data.get("status", 0)),
        creation=str(data.get("creation") or ""),
        last_update=str(data.get("last_update") or ""),
        administration=dict(data.get("administration") or {}),
        errors=list(data.get("errors") or []),
        read_back=dict(data.get("read_back") or {}),
    )
    if status == "failed":
        raise_import_failed(transaction, operation)
    return transaction


def raise_import_failed(transaction: CashTransaction, operation: str) -> None:
    """Raise the error for a transaction CASH rejected (status 3), naming every failing line."""
    raise CashImportFailedError(
        VENDOR,
        operation,
        f"CASH rejected transaction {transaction.id}: {transaction.describe_errors() or 'no details given'}",
        hint="Correct the lines and import them again (a corrected import is a new import); CASH does "
        "not document whether a rejected transaction can be partly booked, so check that first",
        reference=f"transaction {transaction.id}",
        details=transaction.errors,
    )


__all__ = [
    "CashTransactionTrigger",
    "raise_import_failed",
    "transaction_from_event",
]
