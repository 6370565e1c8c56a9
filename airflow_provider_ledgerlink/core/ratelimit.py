"""Pacing requests on a vendor's rate-limit headers, keeping a reserve for the people using it.

Some vendors say on every response how many requests are left in the current period and when the
period ends (Tripletex: ``X-Rate-Limit-Limit``, ``X-Rate-Limit-Remaining``, ``X-Rate-Limit-Reset``
in seconds). Once the budget is spent, *every* caller of that account gets 429 until the period
ends, including the people working in the vendor's web application with the same user. So a batch
job must not spend the budget to the last request.

:class:`HeaderRateLimiter` is a request gate (:class:`~airflow_provider_ledgerlink.core.http.Gate`:
give it to ``HttpClient(gates=[...])``): every attempt the client sends, retries included, waits in
:meth:`~HeaderRateLimiter.admit` until it may go, and every answer's headers are read in
:meth:`~HeaderRateLimiter.observe`, which also ends the attempt's flight:

* while plenty is left, requests go at full speed, with any number in flight;
* below a threshold (``pace_fraction`` of the usable budget) requests are spaced so that the rest of
  the budget lasts until the period ends ("slow down before the limit");
* ``reserve`` requests are never used: with ``remaining - in_flight <= reserve`` callers wait for the
  period to end;
* a 429 stops every thread until the reset the vendor gave, or, when the vendor sent no reset
  header (it happens), for a backoff that doubles with every 429 in a row.

The vendor's headers are the shared state: several tasks (processes, machines) using one account all
see the same ``Remaining``, so each limiter adapts to the others. Requests in flight are counted as
already spent, so several page requests at once never overshoot. What the headers cannot tell is how
many requests *other processes* have in flight: twelve tasks each sending four pages at once against
``Remaining: 30`` would all go. With ``shared_file`` the limiter therefore keeps its whole state — the
vendor's last ``Limit``/``Remaining``/``Reset``, the requests in flight of every process, a 429's
pause — in one small file of the machine's private state directory
(:mod:`~airflow_provider_ledgerlink.core.host_state`), read and rewritten under a file lock for every
decision, so every process of the machine decides from the same numbers. A process that dies with
requests in flight is noticed (its id no longer runs) and its requests are forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_ledgerlink.core.host_state import locked_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimitHeaders:
    """The names of a vendor's rate-limit headers (matched case-insensitively)."""

    limit: str = "X-Rate-Limit-Limit"
    remaining: str = "X-Rate-Limit-Remaining"
    reset: str = "X-Rate-Limit-Reset"
    """Seconds until the current period ends."""


@dataclass
class RateLimitStats:
    """What the limiter saw: for logs, tests and benchmarks."""

    requests: int = 0
    throttled: int = 0
    """429 answers seen."""
    waited_seconds: float = 0.0
    min_remaining: int | None = None
    """The lowest ``Remaining`` the vendor reported."""
    limit: int | None = None


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True


class HeaderRateLimiter:
    """Gate requests on the vendor's rate-limit headers; thread-safe, and process-safe with ``shared_file``.

    :param reserve: requests of each period left for others (people in the vendor's web app).
    :param pace_fraction: below this share of the usable budget, requests are spread evenly over
        the rest of the period instead of going at full speed.
    :param initial_backoff: wait after a 429 without a reset header; doubles per 429 in a row.
    :param max_backoff: the longest such wait.
    :param reset_margin: seconds added to every reset the vendor reports. Resets are whole seconds
        and vendors round them either way; a period's budget is only trusted to be back once it has
        certainly ended.
    :param headers: the header names.
    :param clock: seconds (injectable for tests); default: monotonic, or the wall clock with
        ``shared_file`` (the processes must agree on it).
    :param shared_file: keep the state in this file (in a private directory), shared by every process
        of the machine that uses the same file; ``None``: this limiter's own memory.
    :param shared_poll: with ``shared_file``, how often a waiting request looks again (other
        processes cannot wake it).
    """

    #: How long a thread waits at most before looking again (another thread may have learned more).
    _poll = 0.5

    #: Times further ahead than this in a shared file are not believed (a clock step, a bad file).
    _max_ahead = 3600.0

    def __init__(
        self,
        *,
        reserve: int = 20,
        pace_fraction: float = 0.25,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        reset_margin: float = 1.0,
        headers: RateLimitHeaders | None = None,
        clock: Callable[[], float] | None = None,
        shared_file: Path | None = None,
        shared_poll: float = 0.1,
    ) -> None:
        if reserve < 0:
            raise ValueError("reserve must not be negative")
        if not 0.0 <= pace_fraction <= 1.0:
            raise ValueError("pace_fraction must be between 0 and 1")
        self.reserve = int(reserve)
        self.pace_fraction = pace_fraction
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.reset_margin = reset_margin
        self.headers = headers or RateLimitHeaders()
        self.shared_file = shared_file
        if clock is None:
            clock = time.time if shared_file is not None else time.monotonic
        self.clock = clock
        if shared_file is not None:
            self._poll = max(0.01, float(shared_poll))
        self.stats = RateLimitStats()
        self._cond = threading.Condition()
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._in_flight = 0
        """Requests in flight, of every process sharing the state."""
        self._own_in_flight = 0
        """Requests in flight through this limiter."""
        self._holder = uuid.uuid4().hex[:12]
        self._last_start: float | None = None
        self._blocked_until: float | None = None
        self._backoff = initial_backoff

    # -- the state: this object's memory, or the machine's shared file ----------------------------
    _SHARED = ("limit", "remaining", "reset_at", "last_start", "blocked_until", "backoff")

    @contextlib.contextmanager
    def _state(self) -> Iterator[None]:
        """Hold the state for one decision; with ``shared_file``, load it first and store it after."""
        with self._cond:
            if self.shared_file is None:
                yield
                return
            with locked_json(self.shared_file) as stored:
                self._load(stored)
                yield
                self._store(stored)

    def _load(self, stored: dict[str, Any]) -> None:
        now = self.clock()
        for name in self._SHARED:
            value = stored.get(name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                value = None
            if (
                name in ("reset_at", "blocked_until", "last_start")
                and value is not None
                and value > now + self._max_ahead
            ):
                value = None
            if name in ("limit", "remaining") and value is not None:
                value = int(value)
            setattr(self, f"_{name}", value)
        if self._backoff is None:
            self._backoff = self.initial_backoff
        mine = self._holder_key()
        others = sum(count for holder, count in self._live_flights(stored).items() if holder != mine)
        self._in_flight = others + self._own_in_flight

    def _holder_key(self) -> str:
        """Who holds requests in flight: this process (its id, checked for life) and this limiter."""
        return f"{os.getpid()}-{self._holder}"

    @staticmethod
    def _live_flights(stored: dict[str, Any]) -> dict[str, int]:
        flights = stored.get("in_flight")
        live = {}
        for holder, count in flights.items() if isinstance(flights, dict) else ():
            pid = str(holder).split("-", 1)[0]
            if isinstance(count, int) and count > 0 and pid.isdigit() and _alive(int(pid)):
                live[str(holder)] = count
        return live

    def _store(self, stored: dict[str, Any]) -> None:
        for name in self._SHARED:
            stored[name] = getattr(self, f"_{name}")
        flights = self._live_flights(stored)
        if self._own_in_flight > 0:
            flights[self._holder_key()] = self._own_in_flight
        else:
            flights.pop(self._holder_key(), None)
        stored["in_flight"] = flights

    # -- what callers use ------------------------------------------------------------------------
    def admit(self, request: httpx.Request) -> httpx.Request:
        """The gate's way in: wait until ``request`` may be sent and count it as in flight."""
        self.acquire()
        return request

    async def aadmit(self, request: httpx.Request) -> httpx.Request:
        """:meth:`admit` in a thread (the wait and the shared file's lock would block the loop)."""
        waiting = asyncio.ensure_future(asyncio.to_thread(self.acquire))
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread still acquires: give the flight back once it has (nothing will be sent).
            def give_back(done: asyncio.Future[None]) -> None:
                if not done.cancelled() and done.exception() is None:
                    self.release()

            waiting.add_done_callback(give_back)
            raise
        return request

    def observe(self, request: httpx.Request, response: httpx.Response | None) -> None:
        """The gate's way out: read the answer's headers (if any came), then end the flight."""
        try:
            if response is not None:
                self.learn(response)
        finally:
            self.release()

    def acquire(self) -> None:
        """Wait until a request may be sent and count it as in flight (:meth:`release` ends it)."""
        waited = 0.0
        while True:
            with self._state():
                now = self.clock()
                delay = self.delay(now)
                if delay <= 0:
                    self._in_flight += 1
                    self._own_in_flight += 1
                    self._last_start = now
                    self.stats.requests += 1
                    self.stats.waited_seconds += waited
                    break
            pause = min(delay, self._poll)
            started = self.clock()
            with self._cond:
                self._cond.wait(pause)
            waited += max(0.0, self.clock() - started)
        if waited >= 0.1:
            log.log(
                logging.INFO if waited >= 5.0 else logging.DEBUG,
                "Rate limit: waited %.1f s to stay inside the limit and keep %d requests in reserve",
                waited,
                self.reserve,
            )

    def release(self) -> None:
        with self._state():
            self._own_in_flight = max(0, self._own_in_flight - 1)
            self._in_flight = max(0, self._in_flight - 1)
            self._cond.notify_all()

    def learn(self, response: httpx.Response) -> None:
        """Learn from a response's headers (:meth:`observe` calls it for every answer)."""
        names = self.headers
        limit = _header_int(response, names.limit)
        remaining = _header_int(response, names.remaining)
        reset = _header_int(response, names.reset)
        throttled = response.status_code == 429
        if limit is None and remaining is None and reset is None and not throttled:
            return
        with self._state():
            now = self.clock()
            if limit is not None and limit > 0:
                self._limit = limit
                self.stats.limit = limit
            if throttled:
                self.stats.throttled += 1
                self._remaining = 0
                if reset is not None:
                    self._reset_at = now + max(0, reset) + self.reset_margin
                    self._blocked_until = self._reset_at
                else:  # no reset header on the 429: back off, longer every time in a row
                    self._blocked_until = now + self._backoff
                    self._reset_at = self._blocked_until
                    self._backoff = min(self.max_backoff, self._backoff * 2)
                log.warning(
                    "Rate limit reached (HTTP 429); pausing all requests for %.1f s",
                    self._blocked_until - now,
                )
            else:
                self._backoff = self.initial_backoff
                if remaining is not None:
                    self._note_remaining(now, remaining, reset)
            if remaining is not None:
                low = self.stats.min_remaining
                self.stats.min_remaining = remaining if low is None else min(low, remaining)
            self._cond.notify_all()

    # -- the decision ----------------------------------------------------------------------------
    def _note_remaining(self, now: float, remaining: int, reset: int | None) -> None:
        # With the margin, every reset estimate is at or after the true end of its period (the
        # answer also took time to arrive), so the smallest estimate of a period is the best one. A
        # period has ended when its end has passed, or when the count went up by more than the
        # requests in flight could explain (it never goes up within a period).
        reset_at = now + max(0, reset) + self.reset_margin if reset is not None else None
        current = self._remaining
        new_period = (
            current is None
            or (self._reset_at is not None and now >= self._reset_at)
            or remaining > current + self._in_flight
        )
        if new_period:
            self._remaining = remaining
            self._reset_at = reset_at
            return
        assert current is not None
        # Answers arrive out of order when several requests are in flight: the lowest count of
        # the period is the latest truth.
        self._remaining = min(current, remaining)
        if reset_at is not None:
            self._reset_at = reset_at if self._reset_at is None else min(self._reset_at, reset_at)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request may start (``0``: go). Call with the lock held."""
        if self._blocked_until is not None:
            if now < self._blocked_until:
                return self._blocked_until - now
            self._blocked_until = None
        if self._reset_at is not None and now >= self._reset_at:
            # A new period has begun: the full budget is back, as far as we can tell.
            self._remaining = self._limit
            self._reset_at = None
        if self._remaining is None:
            # Nothing known yet: one request at a time until the first answer tells us the budget.
            return 0.0 if self._in_flight == 0 else self._poll
        budget = self._remaining - self._in_flight - self.reserve
        if budget <= 0:
            if self._reset_at is not None:
                return max(self._reset_at - now, 0.01)
            return self._poll if self._in_flight else self._backoff
        usable = (self._limit or self._remaining) - self.reserve
        if (
            self._reset_at is not None
            and self._last_start is not None
            and budget < self.pace_fraction * usable
        ):
            spacing = (self._reset_at - now) / budget
            return max(0.0, self._last_start + spacing - now)
        return 0.0

    def wait_time(self) -> float:
        """Seconds a request starting now would wait (``0``: it would go at once)."""
        with self._state():
            return self.delay(self.clock())

    @property
    def remaining(self) -> int | None:
        """The vendor's ``Remaining`` as last understood (``None`` before the first answer)."""
        with self._state():
            return self._remaining

    @property
    def in_flight(self) -> int:
        """Requests in flight (of every process sharing the state)."""
        with self._state():
            return self._in_flight
