"""The few Airflow names whose import path moved between Airflow 3.0 and 3.3.

Everything else is imported from ``airflow.sdk`` directly. Kept tiny on purpose: each name is tried
at its newest home first, then at the older one. mypy runs against the newest and the oldest
Airflow, so a branch whose name the installed Airflow lacks carries a ``type: ignore``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

try:  # Airflow 3.1+
    from airflow.sdk import BaseHook  # type: ignore[attr-defined]
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

try:  # Airflow 3.1+
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]

try:  # Airflow 3.2+
    from airflow.sdk import conf  # type: ignore[attr-defined]
except ImportError:  # Airflow 3.0 and 3.1
    from airflow.configuration import conf  # type: ignore[no-redef,assignment]

try:  # Airflow 3.1+
    from airflow.sdk.exceptions import AirflowException  # type: ignore[attr-defined]
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowException  # type: ignore[no-redef,assignment]

try:  # Airflow 3.1+
    from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred  # type: ignore[attr-defined]
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowSensorTimeout, TaskDeferred  # type: ignore[no-redef,assignment]

try:  # Airflow 3.1+
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException  # type: ignore[attr-defined]
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowFailException, AirflowSkipException  # type: ignore[no-redef,assignment]

try:  # where later Airflow versions may move it
    from airflow.sdk.exceptions import AirflowProviderDeprecationWarning  # type: ignore[attr-defined]
except ImportError:  # Airflow 3.0 to 3.3
    from airflow.exceptions import AirflowProviderDeprecationWarning  # type: ignore[no-redef,assignment]

from airflow.sdk import Asset, BaseOperator, BaseSensorOperator, ObjectStoragePath

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowProviderDeprecationWarning",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "ObjectStoragePath",
    "TaskDeferred",
    "aget_connection",
    "conf",
    "default_deferrable",
    "mask_secret",
    "to_thread",
]


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read when an operator is built (never at import time)."""
    value: Any = conf.getboolean("operators", "default_deferrable", fallback=False)
    return bool(value)


async def to_thread(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``asyncio.to_thread`` for blocking code that may call the Task SDK (Variables, connections).

    The thread's SDK calls are sent through the event loop that awaits here, as on Airflow 3.3. With
    ``asyncio.to_thread`` Airflow 3.0's triggerer runs them on a second event loop, its requests to
    the supervisor interleave with the triggerer's own and the trigger runner dies ("Response read
    out of order").
    """
    from asgiref.sync import sync_to_async

    return await sync_to_async(functools.partial(func, *args, **kwargs), thread_sensitive=False)()


async def aget_connection(conn_id: str) -> Any:
    """A connection, looked up without blocking the event loop (for triggers).

    Uses the common-compat helpers, which pick ``BaseHook.aget_connection`` where it is safe and
    otherwise run the synchronous lookup in a worker thread. The extras are decoded during the lookup
    too: before Airflow 3.3.2 ``extra_dejson`` masks them with a synchronous call to the supervisor,
    which blocks the event loop, and on Airflow 3.0 fails there. The connection returned answers
    ``extra_dejson`` from that copy, so callers may read it on the loop.
    """
    try:
        from airflow.providers.common.compat.connection import (
            get_async_connection,
            get_async_extra_dejson,
        )
    except ImportError:  # an older common-compat provider: the same, in worker threads
        from asgiref.sync import sync_to_async

        connection = await sync_to_async(BaseHook.get_connection)(conn_id)
        extra = await sync_to_async(lambda: connection.extra_dejson)()
    else:
        connection = await get_async_connection(conn_id)
        extra = await get_async_extra_dejson(connection)
    return _ConnectionWithExtras(connection, extra)


class _ConnectionWithExtras:
    """A connection whose ``extra_dejson`` was decoded (and masked) off the event loop."""

    def __init__(self, connection: Any, extra_dejson: dict[str, Any]) -> None:
        self._connection = connection
        self.extra_dejson = extra_dejson

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def human_input_available() -> bool:
    """Whether Airflow's human-in-the-loop entry exists here (Airflow 3.1+)."""
    try:
        from airflow.providers.standard.triggers.hitl import HITLTrigger  # noqa: F401
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail  # noqa: F401
    except ImportError:
        return False
    return True


def await_human_input(
    operator: Any,
    context: Any,
    *,
    subject: str,
    body: str,
    params: dict[str, Any],
    timeout: Any,
    method_name: str,
) -> None:
    """Ask a person for input in Airflow's human-in-the-loop UI, then park the task until they answer.

    Airflow 3.3+ parks the task in ``awaiting_input``; 3.1 and 3.2 defer it to ``HITLTrigger``. Either
    way Airflow resumes ``method_name(context, event)`` with the answer in ``event["params_input"]``.
    """
    from airflow.providers.standard.triggers.hitl import HITLTrigger
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.execution_time.hitl import upsert_hitl_detail
    from airflow.sdk.timezone import utcnow

    declared = ParamsDict(params)
    try:  # Airflow 3.1.3+ stores each param's full serialized form
        serialized = {key: declared.get_param(key).serialize() for key in declared}
    except AttributeError:
        serialized = declared.dump()
    ti_id = context["task_instance"].id
    options = ["OK"]
    upsert_hitl_detail(
        ti_id=ti_id,
        options=options,
        subject=subject,
        body=body,
        defaults=None,
        multiple=False,
        params=serialized,
    )
    try:
        from airflow.sdk.exceptions import TaskAwaitingInput  # type: ignore[attr-defined]
    except ImportError:  # Airflow 3.1 and 3.2
        operator.defer(
            trigger=HITLTrigger(
                ti_id=ti_id,
                options=options,
                defaults=None,
                params=serialized,
                multiple=False,
                timeout_datetime=utcnow() + timeout if timeout else None,
            ),
            method_name=method_name,
        )
    raise TaskAwaitingInput(method_name=method_name, timeout=timeout)
