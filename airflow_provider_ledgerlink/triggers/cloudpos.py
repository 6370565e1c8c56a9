"""The triggerer side of the CloudPOS weborder sensor: poll ``get-confirmedweborder`` asynchronously."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError
from airflow_provider_ledgerlink.core.errors import LedgerLinkError
from airflow_provider_ledgerlink.core.hook import trigger_event
from airflow_provider_ledgerlink.core.redaction import scrub

#: Statuses a :class:`CloudPosWeborderConfirmedTrigger` event can carry.
EVENT_STATUSES = ("confirmed", "not_found", "no_weborderid", "timeout", "error")


class CloudPosWeborderConfirmedTrigger(BaseTrigger):
    """Wait, without a worker slot, until CloudPOS confirms a weborder.

    Each poll is one request of the licence's daily budget, counted in the same shared budget as the
    tasks (the blocking Variable calls run in a worker thread, never on the event loop). The wait
    between polls widens as the day's budget shrinks, and when the budget is spent (by LedgerLink's
    count, or because CloudPOS answered 1003) the trigger sleeps until it is back instead of failing.

    Exactly one event, with ``status`` one of ``confirmed`` (with ``weborder``: the confirmation),
    ``not_found`` (2003), ``no_weborderid`` (2002), ``timeout`` or ``error`` (with ``message``).

    :param weborder_id: the weborder.
    :param cloudpos_conn_id: the Airflow connection (the triggerer must be able to read it).
    :param holder: the task instance's budget holder id, so the sensor and its trigger share a row.
    :param poke_interval: the shortest wait between polls, in seconds.
    :param end_time: give up at this unix time with a ``timeout`` event.
    """

    def __init__(
        self,
        weborder_id: str,
        cloudpos_conn_id: str,
        holder: str,
        poke_interval: float = 60.0,
        end_time: float | None = None,
    ) -> None:
        super().__init__()
        self.weborder_id = str(weborder_id)
        self.cloudpos_conn_id = cloudpos_conn_id
        self.holder = holder
        self.poke_interval = float(poke_interval)
        self.end_time = end_time

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "weborder_id": self.weborder_id,
                "cloudpos_conn_id": self.cloudpos_conn_id,
                "holder": self.holder,
                "poke_interval": self.poke_interval,
                "end_time": self.end_time,
            },
        )

    def _hook(self) -> Any:
        from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosHook

        return CloudPosHook(self.cloudpos_conn_id, holder=self.holder, budget_kind="poll")

    def _event(self, status: str, **payload: Any) -> TriggerEvent:
        return trigger_event({"status": status, "weborder_id": self.weborder_id, **payload})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        try:
            # The sensor polled on the worker just before deferring: wait before polling again.
            wait = await hook.apoll_interval(self.poke_interval)
            while True:
                if self.end_time is not None and time.time() + wait > self.end_time:
                    await asyncio.sleep(max(0.0, self.end_time - time.time()))
                    message = f"weborder {self.weborder_id} was not confirmed in time"
                    yield await self._final(hook, "timeout", message=message)
                    return
                await asyncio.sleep(wait)
                try:
                    status = await hook.aget_confirmed_weborder(self.weborder_id)
                except BudgetExhaustedError as exc:
                    reset_at = exc.reset_at or datetime.now(timezone.utc)
                    wait = max(1.0, reset_at.timestamp() - time.time())
                    self.log.warning("%s; the next poll is at %s", exc, reset_at.isoformat())
                    continue
                if status.state == "confirmed":
                    yield await self._final(hook, "confirmed", weborder=status.as_event())
                    return
                if status.state in ("not_found", "no_weborderid"):
                    yield await self._final(hook, status.state, message=status.message)
                    return
                wait = await hook.apoll_interval(self.poke_interval)
                self.log.info(
                    "CloudPOS weborder %s is not confirmed yet; next poll in %.0f s", self.weborder_id, wait
                )
        except LedgerLinkError as exc:
            yield await self._final(hook, "error", message=str(exc), error=type(exc).__name__)
        except Exception as exc:  # one event, whatever happens; never a secret in it
            message = scrub(f"{type(exc).__name__}: {exc}")
            yield await self._final(hook, "error", message=message, error=type(exc).__name__)

    async def _final(self, hook: Any, status: str, **payload: Any) -> TriggerEvent:
        """The one event; first the poller's row is marked done so other sensors stop counting it."""
        try:
            await hook.arelease(final=True)
        except Exception:  # the event matters more than the bookkeeping
            self.log.debug("Could not mark the poller as done", exc_info=True)
        return self._event(status, **payload)
