"""A fixed budget of requests per time window ("at most 100 requests a minute"), enforced client-side.

Some vendors publish a plain request rate and say nothing in their answers about how much of it is
left (CASH: at most 100 requests a minute). For those, the client keeps count itself:
:class:`RequestWindowLimiter` hands out send times so that no window of ``per_seconds`` ever holds
more than ``max_requests`` requests. It is a sliding window over the send times actually granted,
so a burst of ``max_requests`` goes out at once and the next request waits until the oldest one
leaves the window.

The limiter computes *when* a request may go; the caller sleeps (``time.sleep`` or
``asyncio.sleep``), so one limiter serves threads and event loops alike. It is a request gate
(:class:`~airflow_provider_ledgerlink.core.http.Gate`): given to ``HttpClient(gates=[...])`` or
``AsyncHttpClient``, it paces every request the client sends, retries included.

Scope: a limiter counts the requests of one process. Limiters are shared per key within the process
(:func:`shared_request_window`), so every hook of one account in a worker draws from one budget.
Workers do not see each other's requests: to keep several workers under a vendor-wide rate, give
the vendor's tasks one Airflow pool (a single slot guarantees it). Vendors that report their
remaining budget in response headers need a header-driven limiter instead; this one never reads
responses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

import httpx

__all__ = [
    "RequestWindowLimiter",
    "reset_shared_request_windows",
    "shared_request_window",
]


class RequestWindowLimiter:
    """At most ``max_requests`` sends in any ``per_seconds`` window.

    :param max_requests: the budget per window (CASH: 100).
    :param per_seconds: the window length (CASH: 60).
    :param clock: a monotonic clock in seconds; replaceable in tests.
    """

    def __init__(
        self, max_requests: int, per_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if per_seconds <= 0:
            raise ValueError("per_seconds must be positive")
        self.max_requests = int(max_requests)
        self.per_seconds = float(per_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        # The send times granted most recently; only the last ``max_requests`` can matter.
        self._granted: deque[float] = deque(maxlen=self.max_requests)
        self.waited = 0.0

    def reserve(self) -> float:
        """Claim the next send slot; returns the seconds to wait before sending (0 if none)."""
        with self._lock:
            now = self._clock()
            slot = now
            if len(self._granted) == self.max_requests:
                slot = max(slot, self._granted[0] + self.per_seconds)
            if self._granted:
                slot = max(slot, self._granted[-1])  # keep the granted times in order
            self._granted.append(slot)
            delay = slot - now
            self.waited += delay
            return delay

    def acquire(self) -> None:
        """Block the calling thread until a request may be sent."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)

    async def aacquire(self) -> None:
        """Wait (without blocking the event loop) until a request may be sent."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    # -- as a request gate ------------------------------------------------------------------------
    def admit(self, request: httpx.Request) -> httpx.Request:
        self.acquire()
        return request

    async def aadmit(self, request: httpx.Request) -> httpx.Request:
        await self.aacquire()
        return request

    def observe(self, request: httpx.Request, response: httpx.Response | None) -> None:
        """Nothing to give back: a send time, once granted, counts whatever the answer."""

    def __repr__(self) -> str:
        return f"RequestWindowLimiter({self.max_requests} per {self.per_seconds:g} s)"


_shared_lock = threading.Lock()
_shared: dict[Hashable, RequestWindowLimiter] = {}


def shared_request_window(key: Hashable, max_requests: int, per_seconds: float) -> RequestWindowLimiter:
    """The process-wide limiter for ``key`` (e.g. a vendor account), created on first use.

    A later call with another budget for the same key replaces the limiter (a changed connection).
    """
    with _shared_lock:
        limiter = _shared.get(key)
        if limiter is None or (limiter.max_requests, limiter.per_seconds) != (max_requests, per_seconds):
            limiter = _shared[key] = RequestWindowLimiter(max_requests, per_seconds)
        return limiter


def reset_shared_request_windows() -> None:
    """Forget every shared limiter (tests; a process that switches accounts)."""
    with _shared_lock:
        _shared.clear()
