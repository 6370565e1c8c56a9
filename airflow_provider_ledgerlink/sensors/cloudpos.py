"""Wait until the restaurant confirms a CloudPOS weborder in its POS."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError, task_holder_id
from airflow_provider_ledgerlink.core.compat import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    default_deferrable,
)
from airflow_provider_ledgerlink.core.errors import VendorError
from airflow_provider_ledgerlink.hooks.cloudpos import (
    VENDOR,
    CloudPosHook,
    WeborderIdMissingError,
    WeborderNotFoundError,
    WeborderStatus,
)
from airflow_provider_ledgerlink.triggers.cloudpos import EVENT_STATUSES, CloudPosWeborderConfirmedTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

#: A weborder is usually confirmed within minutes; give up after a day by default.
DEFAULT_TIMEOUT = 24 * 60 * 60
#: Airflow's own deferral timeout fires this much after the trigger's, so the trigger's event wins.
DEFERRAL_GRACE = 120


class CloudPosWeborderConfirmedSensor(BaseSensorOperator):
    """Wait for CloudPOS to confirm a weborder (``get-confirmedweborder``).

    CloudPOS's reference gives three answers besides success: 2001 "weborder not confirmed" keeps
    waiting; 2002 "weborderid can not be empty" (a configuration error) and 2003 "weborderid does not
    exist" fail at once with CloudPOS's message (no task retry: waiting cannot help). Confirmed
    (``"success" = 1``) returns (XCom) the confirmation with ``webordertime``, the pick-up or
    delivery time the restaurant confirmed, as ``confirmed_time`` (Brussels) and
    ``confirmed_time_utc``.

    Every poll is one request of the licence's 500 a day, so the sensor paces itself: what is left
    of the day's budget above a reserve (``sensor_reserve_percent`` in the connection, 20 % by
    default) is spread over the rest of the day and over all sensors polling that licence, and the
    wait never drops below ``poke_interval``. When the budget is spent, the sensor waits until it
    is back instead of failing (``timeout`` still applies).

    :param weborder_id: the weborder (templated), e.g. from ``CloudPosCreateWeborderOperator``'s XCom.
    :param cloudpos_conn_id: the Airflow connection.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``); the
        first poll happens on the worker.
    :param poke_interval: the shortest wait between polls (default 60 s).
    :param timeout: seconds to wait in total (default a day).
    """

    template_fields: Sequence[str] = ("weborder_id", "cloudpos_conn_id")
    ui_color = "#e6f1f2"

    def __init__(
        self,
        *,
        weborder_id: Any,
        cloudpos_conn_id: str = CloudPosHook.default_conn_name,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 60)
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        super().__init__(**kwargs)
        self.weborder_id = weborder_id
        self.cloudpos_conn_id = cloudpos_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._next_wait: float | None = None

    def _hook(self) -> CloudPosHook:
        return CloudPosHook(self.cloudpos_conn_id, holder=task_holder_id(), budget_kind="poll")

    def poke(self, context: Context) -> Any:
        hook = self._hook()
        try:
            try:
                status = hook.get_confirmed_weborder(self.weborder_id)
            except BudgetExhaustedError as exc:
                reset_at = exc.reset_at or hook.budget.resets_at()
                self._next_wait = max(1.0, (reset_at - datetime.now(timezone.utc)).total_seconds())
                self.log.warning("%s; polling again at %s", exc, reset_at.isoformat())
                return False
            if status.state == "pending":
                self._next_wait = hook.poll_interval(self.poke_interval)
                self.log.info(
                    "CloudPOS weborder %s is not confirmed yet; next poll in %.0f s",
                    status.weborder_id,
                    self._next_wait,
                )
                return False
            hook.release(final=True)
            return PokeReturnValue(is_done=True, xcom_value=self._finish(status.as_event()))
        finally:
            hook.close()

    def _get_next_poke_interval(self, started_at: Any, run_duration: Any, poke_count: int) -> float:
        # The budget decides how long to wait (never less than Airflow's own choice).
        base = super()._get_next_poke_interval(started_at, run_duration, poke_count)
        return max(base, self._next_wait or 0.0)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        done = self.poke(context)
        if done:
            return done.xcom_value
        started = time.time()
        self.defer(
            trigger=CloudPosWeborderConfirmedTrigger(
                weborder_id=str(self.weborder_id),
                cloudpos_conn_id=self.cloudpos_conn_id,
                holder=task_holder_id(),
                poke_interval=float(self.poke_interval),
                end_time=started + float(self.timeout),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + DEFERRAL_GRACE),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume from the trigger: return the confirmation or raise what the event says."""
        if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
            raise VendorError(
                VENDOR,
                self._operation,
                f"the trigger sent an unexpected event: {event!r}",
                hint="Retry the task",
            )
        status = event["status"]
        if status == "confirmed":
            return self._finish(event["weborder"])
        if status == "timeout":
            raise AirflowSensorTimeout(f"{VENDOR} {self._operation}: {event.get('message')}")
        if status in ("not_found", "no_weborderid"):
            self._finish(WeborderStatus(str(self.weborder_id), status, event.get("message") or "").as_event())
        raise VendorError(VENDOR, self._operation, str(event.get("message") or "the trigger failed"))

    @property
    def _operation(self) -> str:
        return f"waiting for weborder {self.weborder_id}"

    def _finish(self, confirmation: dict[str, Any]) -> dict[str, Any]:
        """The confirmation as XCom, or the error for a weborder that will never be confirmed."""
        state = confirmation.get("state")
        message = str(confirmation.get("message") or state)
        if state == "not_found":
            raise WeborderNotFoundError(
                VENDOR, self._operation, message, hint="Check the weborder id; waiting longer cannot help"
            )
        if state == "no_weborderid":
            raise WeborderIdMissingError(
                VENDOR,
                self._operation,
                message,
                hint="Pass the weborderid that CloudPosCreateWeborderOperator returned (weborder_id)",
            )
        self.log.info(
            "CloudPOS weborder %s is confirmed for %s",
            confirmation["weborder_id"],
            confirmation.get("confirmed_time"),
        )
        self._hook().log_budget()
        return confirmation
