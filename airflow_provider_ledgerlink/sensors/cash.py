"""Wait until CASHWin has processed a CASH import: its records read back from CASH, or its
transaction out of status 1 (pending) where the service offers a status operation."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_ledgerlink.core.compat import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    default_deferrable,
)
from airflow_provider_ledgerlink.core.errors import ConfigurationError, LedgerLinkError
from airflow_provider_ledgerlink.hooks.cash import (
    ERROR,
    PENDING,
    VENDOR,
    CashHook,
    CashTransaction,
    CashTransactionTimeoutError,
    ImportExpectation,
    still_pending_message,
)
from airflow_provider_ledgerlink.triggers.cash import (
    DEFAULT_POLL_INTERVAL,
    CashTransactionTrigger,
    raise_import_failed,
    transaction_from_event,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

#: How long to wait by default: CASHWin looks every ~30 s, so an hour is over a hundred chances.
DEFAULT_TIMEOUT = 60 * 60
#: Airflow's own deferral timeout is set this much later than the trigger's, so the trigger's
#: timeout event (with the diagnosis) always arrives first.
DEFERRAL_GRACE = 120


class CashTransactionSensor(BaseSensorOperator):
    """Wait for a CASH import (``Cash.import``) to be processed.

    CASH API 3.0 documents no operation that reports a transaction, so the sensor reads the imported
    records back (``Cash.export``) as ``expectation`` says: CashImportOperator returns it in its XCom
    (``expectation=import_task.output["expectation"]``). Only when the service description offers a
    status operation is the transaction read instead.

    Succeeds when every record is in CASH as imported (or CASH reports status 2) and returns the
    transaction (XCom); fails at once with the per-line errors when CASH reports status 3 or a
    document number is booked with other lines. On timeout the error says which records are missing
    and what is most likely wrong: the CASHWin process for the API user (S0067) is not running, the
    record is not enabled under "Instellen CashWeb API", the administration is not enabled under
    "Synchronisatie offline", or CASH rejected the import (CASH mails that to "Foutmeldingen naar").

    :param transaction_id: the transaction id (templated), e.g. from ``CashImportOperator``'s XCom.
    :param expectation: what the import leaves in CASH (templated), ``CashImportOperator``'s XCom
        ``expectation``; needed unless the service offers a status operation.
    :param cash_conn_id: the Airflow connection.
    :param poll_interval: seconds between status reads (default 30: CASHWin's own rhythm).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param timeout: seconds to wait in total (default 1 hour).
    """

    template_fields: Sequence[str] = ("transaction_id", "expectation", "cash_conn_id")
    ui_color = "#fff3d6"

    def __init__(
        self,
        *,
        transaction_id: str = "",
        expectation: Any = None,
        cash_conn_id: str = CashHook.default_conn_name,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        super().__init__(**kwargs)
        self.transaction_id = transaction_id
        self.expectation = expectation
        self.cash_conn_id = cash_conn_id
        self.poll_interval = float(poll_interval)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._started = time.monotonic()
        self._last: CashTransaction | None = None

    @cached_property
    def hook(self) -> CashHook:
        return CashHook(self.cash_conn_id)

    @property
    def operation(self) -> str:
        return f"waiting for import {self.transaction_id}".rstrip()

    def _expectation(self) -> ImportExpectation | None:
        value = self.expectation
        if value in (None, "", {}):
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not isinstance(value, Mapping):
            raise ConfigurationError(
                VENDOR,
                self.operation,
                "expectation must be the mapping CashImportOperator returns under 'expectation'",
            )
        return ImportExpectation.from_dict(value)

    def _follow(self) -> CashTransaction:
        return self.hook.follow_import(self.transaction_id, self._expectation())

    def poke(self, context: Context) -> Any:
        transaction = self._last = self._follow()
        self.log.info("CASH import %s is %s", transaction.id, transaction.status_name)
        if transaction.status == PENDING:
            return False
        if transaction.status == ERROR:
            raise_import_failed(transaction, self.operation)
        return PokeReturnValue(is_done=True, xcom_value=transaction.as_dict())

    def execute(self, context: Context) -> Any:
        self._started = time.monotonic()
        try:
            if not self.deferrable:
                return self._wait_here(context)
            done = self.poke(context)
            if done:
                return done.xcom_value
        finally:
            self.hook.close()
        started = time.time()
        self.defer(
            trigger=CashTransactionTrigger(
                transaction_id=self.transaction_id,
                cash_conn_id=self.cash_conn_id,
                poll_interval=self.poll_interval,
                end_time=started + float(self.timeout),
                started_at=started,
                expectation=expectation.as_dict() if (expectation := self._expectation()) else None,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + DEFERRAL_GRACE),
        )

    def _wait_here(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            waited = time.monotonic() - self._started
            read_back = self._last.read_back if self._last is not None else None
            message = still_pending_message(self.transaction_id, waited, read_back)
            raise AirflowSensorTimeout(f"{VENDOR} {self.operation}: {message}") from exc

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        try:
            transaction = transaction_from_event(event, self.operation)
        except CashTransactionTimeoutError as exc:
            # A sensor timeout, so ``soft_fail`` and friends work as for any sensor.
            raise AirflowSensorTimeout(str(exc)) from None
        except LedgerLinkError:
            raise
        self.log.info("CASH import %s was processed", transaction.id)
        return transaction.as_dict()
