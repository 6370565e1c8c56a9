"""Small pieces of state that every worker, triggerer and process of a deployment sees alike.

Quotas and guards (a vendor's daily request budget, "a login failed: stop trying") must hold for the
whole Airflow deployment, not for one process: tasks run on many workers, sensors hand their wait to
the triggerer, and a retry may land on another machine. :class:`SharedState` is the small interface
those guards need, and :class:`AirflowVariableState` keeps the values in Airflow Variables:

* inside a task or a trigger it uses the Task SDK (``airflow.sdk.Variable``), which goes through the
  Execution API to the metadata database: every worker reads what another wrote;
* outside Airflow's runtime (a script, the sandbox, a test) it uses the metadata database directly,
  the only way to write a Variable there.

What a Variable store does **not** give is an atomic compare-and-set: two writers of one key can
overwrite each other. The guards built on it avoid that by never sharing a key between writers
(each writer owns its keys, readers add them up); :meth:`SharedState.keys` lists them. Listing
needs Airflow 3.3 inside tasks (``Variable.keys``); :attr:`SharedState.can_list` says whether it is
there, and guards fall back to a weaker mode without it.

The async methods run the blocking call in a worker thread. That is what the triggerer expects of
synchronous SDK calls made off its event loop: the SDK hands the request to the loop and waits in the
thread, so the loop keeps serving every other trigger meanwhile. The thread is started through
``compat.to_thread``, not ``asyncio.to_thread``: on Airflow 3.0 only the former sends the thread's
SDK calls through the awaiting loop (with the latter the trigger runner dies, "Response read out of
order").

:class:`MemoryState` keeps values in this process only. It exists for unit tests and examples and
is never chosen by LedgerLink on its own.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from typing import Any

from airflow_provider_ledgerlink.core.compat import to_thread

log = logging.getLogger(__name__)

__all__ = ["AirflowVariableState", "ListingUnsupportedError", "MemoryState", "SharedState"]


class ListingUnsupportedError(RuntimeError):
    """The store cannot list its keys (Airflow before 3.3, inside a task or trigger)."""


class SharedState(ABC):
    """String values by key, shared by everything that uses the same store."""

    @property
    def can_list(self) -> bool:
        """Whether :meth:`keys` works here."""
        return True

    @property
    def identity(self) -> str:
        """Equal for two instances that read and write the same values."""
        return f"{type(self).__name__}-{id(self)}"

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The current value, or ``None`` when the key does not exist. Never a cached copy."""

    @abstractmethod
    def set(self, key: str, value: str) -> None:
        """Store ``value``; visible to every reader that starts after this returns."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the key; removing a missing key is not an error."""

    @abstractmethod
    def keys(self, prefix: str) -> list[str]:
        """Every key starting with ``prefix``; raises :class:`ListingUnsupportedError` if unsupported."""

    # -- JSON helpers ------------------------------------------------------------------------------
    def get_json(self, key: str) -> dict[str, Any] | None:
        """The value parsed as a JSON object; ``None`` when missing or not an object."""
        raw = self.get(key)
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            log.warning("Ignoring shared state %s: it is not JSON", key)
            return None
        return value if isinstance(value, dict) else None

    def set_json(self, key: str, value: dict[str, Any]) -> None:
        self.set(key, json.dumps(value, sort_keys=True, separators=(",", ":")))

    # -- asyncio -----------------------------------------------------------------------------------
    async def aget_json(self, key: str) -> dict[str, Any] | None:
        return await to_thread(self.get_json, key)

    async def aset_json(self, key: str, value: dict[str, Any]) -> None:
        await to_thread(self.set_json, key, value)

    async def adelete(self, key: str) -> None:
        await to_thread(self.delete, key)


def _in_airflow_runtime() -> bool:
    """Whether this code runs inside a task or a trigger (talking to a supervisor)."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


class AirflowVariableState(SharedState):
    """Airflow Variables: shared by every worker and the triggerer of a deployment.

    Values written by LedgerLink are small JSON documents under keys starting with ``ledgerlink_``.
    Do not define those keys in a secrets backend or as ``AIRFLOW_VAR_…`` environment variables:
    Airflow reads those first, so writes would never be seen.
    """

    @property
    def identity(self) -> str:
        return "airflow-variables"  # every instance talks to the same metadata database

    @property
    def can_list(self) -> bool:
        if not _in_airflow_runtime():
            return True
        from airflow.sdk import Variable

        return hasattr(Variable, "keys")  # Task SDK 1.3 (Airflow 3.3) and later

    def get(self, key: str) -> str | None:
        if _in_airflow_runtime():
            from airflow.sdk import Variable

            _forget_cached(key)
            value = Variable.get(key, default=None)
        else:
            from airflow.models.variable import Variable as StoredVariable

            value = StoredVariable.get(key, default_var=None)
        return None if value is None else str(value)

    def set(self, key: str, value: str) -> None:
        if _in_airflow_runtime():
            from airflow.sdk import Variable

            Variable.set(key, value)
        else:
            from airflow.models.variable import Variable as StoredVariable

            StoredVariable.set(key, value)

    def delete(self, key: str) -> None:
        if _in_airflow_runtime():
            from airflow.sdk import Variable

            try:
                Variable.delete(key)
            except Exception:  # a missing key is fine; anything else is logged, never fatal
                log.debug("Could not delete Variable %s", key, exc_info=True)
            return
        from airflow.models.variable import Variable as StoredVariable

        StoredVariable.delete(key)

    def keys(self, prefix: str) -> list[str]:
        if _in_airflow_runtime():
            from airflow.sdk import Variable

            if not hasattr(Variable, "keys"):
                raise ListingUnsupportedError("listing Variables from a task needs Airflow 3.3 or later")
            found = list(Variable.keys(prefix=prefix))
        else:
            from airflow.models.variable import Variable as StoredVariable
            from airflow.utils.session import create_session
            from sqlalchemy import select

            with create_session() as session:
                found = list(
                    session.scalars(select(StoredVariable.key).where(StoredVariable.key.startswith(prefix)))
                )
        # ``_`` is a wildcard in SQL LIKE: keep only real prefix matches.
        return sorted(key for key in found if key.startswith(prefix))


def _forget_cached(key: str) -> None:
    """Drop the worker's cached copy of a Variable (``[secrets] use_cache``), so reads are current."""
    try:
        from airflow.sdk.execution_time.cache import SecretCache

        SecretCache.invalidate_variable(key)
    except Exception:  # no cache in this Airflow version, or not initialised
        pass


class MemoryState(SharedState):
    """Values in this process only: for tests and examples, never for a deployment.

    :param can_list: pretend listing is missing (``False``), to exercise the fallback of a guard.
    """

    def __init__(self, *, can_list: bool = True) -> None:
        self._values: dict[str, str] = {}
        self._lock = threading.Lock()
        self._can_list = can_list
        self.reads = 0
        self.writes = 0

    @property
    def can_list(self) -> bool:
        return self._can_list

    def get(self, key: str) -> str | None:
        with self._lock:
            self.reads += 1
            return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self.writes += 1
            self._values[key] = str(value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        if not self._can_list:
            raise ListingUnsupportedError("this MemoryState was built without listing")
        with self._lock:
            return sorted(key for key in self._values if key.startswith(prefix))

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._values)
