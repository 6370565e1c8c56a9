"""A daily request budget per key (a vendor licence, an account), shared by a whole deployment.

Some vendors allow a fixed number of requests a day and then refuse everything until the next day
(CloudPOS: 500 a day per licence). The budget is the restaurant's, not one task's: extracts, sensors
and people's own integrations all draw from it. :class:`DailyBudget` counts every request LedgerLink
sends for a key, across all workers, the triggerer and retries, and refuses the one that would
cross the limit.

How the count stays right without a compare-and-set
---------------------------------------------------
Airflow Variables (the shared store, see :mod:`.shared_state`) can be read and written, but not
updated atomically: two tasks doing "read 40, write 41" at once lose one request. So no key is ever
written by two parties. Each *holder* (one task instance, or its trigger) owns one row per day,
``ledgerlink_budget_<key>_<yyyymmdd>_<holder>``, holding how many requests it has reserved that day.
The day's spending is the sum of all rows. A holder reserves a block of requests like this:

1. write its own row with the block added (the *intent*);
2. list and read every row of the day, its own included;
3. if the sum is within the limit, the block is granted; otherwise it writes its row back
   (withdraws) and tries again with what is left, after a short random pause.

**Guarantee.** Granted reservations never add up to more than the limit, for any number of holders
at once, provided every write is visible to every read that starts after it (true of Airflow's
metadata database behind the Execution API). Why: each holder writes before it reads, so of any two
holders granted at the same time, the one that read last saw the other's row; and every row only
holds granted blocks plus, briefly, intents, so the last reader's sum bounds what is granted.

**Limits**, stated plainly:

* Listing Variables from a task needs Airflow 3.3 (``Variable.keys``). On Airflow 3.0-3.2 the
  budget falls back to one shared row updated by read-modify-write: concurrent reservations can then
  be lost, so the count may run low by up to one block per overlapping reservation. Give the vendor's
  tasks one Airflow pool there if the limit must be exact.
* Two holders racing for the last requests may both withdraw and retry; after a few attempts a
  holder that still finds no room is refused even though a request or two may be left.
* A holder is one task instance (dag, task, run, map index). Two processes running the *same* task
  instance at once (a zombie and its retry) share a row and may under-count.
* Requests are counted when LedgerLink sends them. Other clients of the same licence are not seen;
  when the vendor says the quota is spent, :meth:`record_vendor_stop` stops every holder until the
  time the vendor gave.
* Blocks are reserved ahead of use; :meth:`release` gives back what a holder did not use. A holder
  that dies without releasing keeps its block reserved until the day ends.
* The day follows the configured time zone (midnight Europe/Brussels for CloudPOS). Workers with
  skewed clocks may count a request made at midnight on either side.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import random
import re
import threading
import time as _time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from airflow_provider_ledgerlink.core.compat import to_thread
from airflow_provider_ledgerlink.core.errors import BudgetExhaustedError
from airflow_provider_ledgerlink.core.shared_state import ListingUnsupportedError, SharedState

log = logging.getLogger(__name__)

__all__ = [
    "BudgetExhaustedError",
    "BudgetStatus",
    "DailyBudget",
    "holder_id",
    "parse_stored_time",
    "state_slug",
    "task_holder_id",
]

#: Rows of a holder that polls (a sensor) count as an active poller this long after their last update.
POLLER_ACTIVE_FOR = timedelta(hours=3)


def state_slug(key: str) -> str:
    """A readable, unique, Variable-safe form of ``key`` (no ``_``, so row names parse back)."""
    readable = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:48]
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{readable}-{digest}" if readable else digest


def holder_id(*parts: Any) -> str:
    """A short stable id for a holder made of ``parts`` (dag id, task id, run id, map index)."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def task_holder_id() -> str:
    """The holder id of the running task instance; a random one outside a task.

    Stable across the pokes of a rescheduled sensor and its trigger (pass it to the trigger), so
    one task instance always owns one row.
    """
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return holder_id(ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1))
    except Exception:  # not inside a task
        return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class BudgetStatus:
    """The day's spending of one key as seen at one moment."""

    key: str
    day: date
    limit: int
    spent: int
    """Requests reserved today by every holder (sent, or reserved ahead of sending)."""
    resets_at: datetime
    pollers: int
    """Holders that poll and were active recently (sensors waiting on the same key)."""
    stopped_until: datetime | None = None
    """The vendor said no more requests before this time."""

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.spent)

    def describe(self) -> str:
        text = f"{self.remaining} of {self.limit} requests left for {self.day.isoformat()}"
        if self.stopped_until:
            text += f"; the vendor refuses requests until {self.stopped_until.isoformat()}"
        return text


class _Account:
    """This process's view of its own row: what it was granted and has used today."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.day: date | None = None
        self.granted = 0
        self.used = 0
        self.cleaned: date | None = None


_accounts_lock = threading.Lock()
_accounts: dict[tuple[str, str], _Account] = {}


def _account_for(state: SharedState, row_prefix: str) -> _Account:
    # One holder may build several budgets in one process (a sensor's poke, then its trigger in
    # ``dag.test()``); they must share the row's numbers or they would overwrite each other.
    with _accounts_lock:
        account = _accounts.get((state.identity, row_prefix))
        if account is None:
            account = _accounts[(state.identity, row_prefix)] = _Account()
        return account


class DailyBudget:
    """``limit`` requests a day for ``key``, shared by everything using the same ``state``.

    :param key: what the budget belongs to (``cloudpos:<host>:<licence>``); never a secret.
    :param limit: requests allowed per day.
    :param state: where the rows live (Airflow Variables in a deployment).
    :param holder: who is spending: one id per task instance (see :func:`holder_id`).
    :param vendor: the vendor's display name, for messages.
    :param tz: the time zone whose midnight starts a new day.
    :param block_size: requests reserved at a time; fewer shared-state round trips, but a holder that
        stops early keeps its unused block until it calls :meth:`release`.
    :param kind: ``task`` or ``poll``; polling holders are counted for :meth:`poll_interval`.
    :param clock: returns the current time as an aware datetime (tests replace it).
    """

    prefix = "ledgerlink_budget"

    def __init__(
        self,
        key: str,
        limit: int,
        *,
        state: SharedState,
        holder: str,
        vendor: str = "",
        tz: str = "Europe/Brussels",
        block_size: int = 10,
        kind: str = "task",
        max_attempts: int = 4,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = _time.sleep,
    ) -> None:
        if limit < 0:
            raise ValueError("the daily limit cannot be negative")
        if kind not in ("task", "poll"):
            raise ValueError("kind must be 'task' or 'poll'")
        self.key = key
        self.limit = int(limit)
        self.state = state
        self.holder = holder
        self.vendor = vendor or "LedgerLink"
        self.tz = ZoneInfo(tz)
        self.block_size = max(1, int(block_size))
        self.kind = kind
        self.max_attempts = max(1, int(max_attempts))
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._sleep = sleep
        self.slug = state_slug(key)
        self._account = _account_for(state, f"{self.prefix}_{self.slug}_{holder}")

    # -- names and time -----------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._clock()

    def day_of(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    def resets_at(self, moment: datetime | None = None) -> datetime:
        """The next local midnight, when a new day's budget starts."""
        day = self.day_of(moment or self.now())
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz)

    def _day_prefix(self, day: date) -> str:
        return f"{self.prefix}_{self.slug}_{day:%Y%m%d}_"

    def _row_key(self, day: date) -> str:
        return self._day_prefix(day) + self.holder

    def _shared_row_key(self, day: date) -> str:
        return self._day_prefix(day) + "shared"

    @property
    def stop_key(self) -> str:
        return f"{self.prefix}_{self.slug}_stop"

    # -- spending -----------------------------------------------------------------------------------
    def acquire(self, requests: int = 1) -> None:
        """Count ``requests`` about to be sent; raises :class:`BudgetExhaustedError` if none are left."""
        account = self._account
        with account.lock:
            self._start_day(account)
            available = account.granted - account.used
            if available < requests:
                need = requests - available
                self._reserve(account, wanted=max(need, self.block_size), minimum=need)
            account.used += requests

    @property
    def used(self) -> int:
        """Requests this holder has counted today (sent, or about to be), in this process."""
        account = self._account
        with account.lock:
            return account.used if account.day == self.day_of(self.now()) else 0

    def reserve(self, requests: int) -> BudgetStatus:
        """Make sure ``requests`` are reserved for this holder, all or nothing (a task that needs a
        known number of calls refuses to start rather than stopping half-way)."""
        account = self._account
        with account.lock:
            self._start_day(account)
            need = requests - (account.granted - account.used)
            if need > 0:
                self._reserve(account, wanted=need, minimum=need)
        return self.status()

    def release(self, *, final: bool = False) -> None:
        """Give back what was reserved and not used; ``final`` marks a poller as done."""
        account = self._account
        with account.lock:
            if account.day is None:
                return
            if account.granted == account.used and not final:
                return
            unused = account.granted - account.used
            account.granted = account.used
            if self.state.can_list:
                self._write_row(account, account.granted, active=not final)
            elif unused:
                self._shared_update(account.day, -unused)

    def record_vendor_stop(self, until: datetime, reason: str) -> None:
        """The vendor refused for quota reasons until ``until``: every holder stops until then."""
        self.state.set_json(
            self.stop_key, {"until": until.isoformat(), "reason": reason, "at": self.now().isoformat()}
        )

    def stopped_until(self) -> datetime | None:
        """When the vendor's own refusal ends, if it is still in force."""
        row = self.state.get_json(self.stop_key)
        until = parse_stored_time(row.get("until")) if row else None
        return until if until is not None and until > self.now() else None

    def status(self) -> BudgetStatus:
        now = self.now()
        day = self.day_of(now)
        spent, pollers = self._spent(day, now)
        return BudgetStatus(
            key=self.key,
            day=day,
            limit=self.limit,
            spent=spent,
            resets_at=self.resets_at(now),
            pollers=pollers,
            stopped_until=self.stopped_until(),
        )

    def poll_interval(self, base: float, *, reserve_fraction: float = 0.2) -> float:
        """Seconds a poller should wait before its next request, to make the budget last the day.

        What is left above a reserve (``reserve_fraction`` of the limit, kept for extracts and
        people) is spread over the rest of the day and over every poller of the key: fifty sensors
        share the day's requests instead of spending them in the morning. Never less than ``base``;
        with nothing left above the reserve, the wait lasts until the budget resets.
        """
        status = self.status()
        now = self.now()
        if status.stopped_until is not None:  # the vendor said when requests are possible again
            return max(1.0, (status.stopped_until - now).total_seconds())
        until_reset = max(1.0, (status.resets_at - now).total_seconds())
        usable = status.remaining - math.ceil(self.limit * reserve_fraction)
        if usable <= 0:
            return until_reset
        paced = until_reset * max(1, status.pollers) / usable
        return min(until_reset, max(float(base), paced))

    # -- asyncio (triggers) -------------------------------------------------------------------------
    # The protocol runs in a worker thread: its Variable calls block, and the triggerer serves a
    # synchronous SDK call made off its event loop by handing it to the loop and waiting in the
    # thread (see :mod:`.shared_state`). The account's lock is a thread lock for the same reason.
    async def aacquire(self, requests: int = 1) -> None:
        await to_thread(self.acquire, requests)

    async def arelease(self, *, final: bool = False) -> None:
        await to_thread(functools.partial(self.release, final=final))

    async def arecord_vendor_stop(self, until: datetime, reason: str) -> None:
        await to_thread(self.record_vendor_stop, until, reason)

    async def apoll_interval(self, base: float, *, reserve_fraction: float = 0.2) -> float:
        return await to_thread(functools.partial(self.poll_interval, base, reserve_fraction=reserve_fraction))

    # -- the protocol -------------------------------------------------------------------------------
    def _start_day(self, account: _Account) -> None:
        """On the first use of a day, take over this holder's row as an earlier process left it."""
        day = self.day_of(self.now())
        if account.day == day:
            return
        account.day = day
        account.granted = account.used = 0
        if self.state.can_list:
            row = self.state.get_json(self._row_key(day)) or {}
            # What an earlier attempt reserved counts as spent: whether it was sent is unknown.
            account.granted = account.used = _int(row.get("reserved"))
            self._clean_old_rows(account, day)

    def _reserve(self, account: _Account, *, wanted: int, minimum: int) -> None:
        stopped = self.stopped_until()
        if stopped is not None:
            raise self._exhausted(stopped, "the vendor refuses more requests until then")
        assert account.day is not None
        if not self.state.can_list:
            self._reserve_shared(account, wanted=wanted, minimum=minimum)
            return
        base = account.granted
        spent = 0
        for attempt in range(1, self.max_attempts + 1):
            self._write_row(account, base + wanted)  # the intent
            spent, _pollers = self._spent(account.day, self.now())
            if spent <= self.limit:
                account.granted = base + wanted
                log.debug("%s budget %s: reserved %d (day total %d)", self.vendor, self.key, wanted, spent)
                return
            self._write_row(account, base)  # withdraw
            spent -= wanted
            room = self.limit - spent
            if room >= minimum:
                wanted = min(wanted, room)
            if attempt < self.max_attempts:
                self._sleep(random.uniform(0.02, 0.15) * attempt)  # let a racing holder go first
        raise self._exhausted(self.resets_at(), self._shortfall(spent, minimum, "used or reserved"))

    def _reserve_shared(self, account: _Account, *, wanted: int, minimum: int) -> None:
        """The fallback without listing: one row for everyone, best effort (see the module docs)."""
        assert account.day is not None
        key = self._shared_row_key(account.day)
        row = self.state.get_json(key) or {}
        spent = _int(row.get("reserved"))
        room = self.limit - spent
        if room < minimum:
            raise self._exhausted(self.resets_at(), self._shortfall(spent, minimum, "used"))
        wanted = min(wanted, room)
        self._shared_update(account.day, wanted, row=row)
        account.granted += wanted

    def _shared_update(self, day: date, delta: int, row: dict[str, Any] | None = None) -> None:
        key = self._shared_row_key(day)
        current = row if row is not None else (self.state.get_json(key) or {})
        pollers = dict(current.get("pollers") or {})
        if self.kind == "poll":
            pollers[self.holder] = self.now().isoformat()
        expected = max(0, _int(current.get("reserved")) + delta)
        self.state.set_json(key, {"reserved": expected, "pollers": pollers})
        check = self.state.get_json(key) or {}
        if _int(check.get("reserved")) != expected:
            log.warning(
                "%s budget %s: another task updated the shared count at the same time; without "
                "Variable listing (Airflow < 3.3) the day's count may now be low by %d",
                self.vendor,
                self.key,
                abs(delta),
            )

    def _write_row(self, account: _Account, reserved: int, *, active: bool = True) -> None:
        assert account.day is not None
        self.state.set_json(
            self._row_key(account.day),
            {
                "reserved": reserved,
                "kind": self.kind,
                "active": active,
                "updated": self.now().isoformat(),
            },
        )

    def _spent(self, day: date, now: datetime) -> tuple[int, int]:
        if not self.state.can_list:
            shared = self.state.get_json(self._shared_row_key(day)) or {}
            recent = [
                t
                for t in (shared.get("pollers") or {}).values()
                if _recent(parse_stored_time(t), now, POLLER_ACTIVE_FOR)
            ]
            return _int(shared.get("reserved")), len(recent)
        spent = pollers = 0
        for key in self.state.keys(self._day_prefix(day)):
            row = self.state.get_json(key)
            if not row:
                continue
            spent += _int(row.get("reserved"))
            if (
                row.get("kind") == "poll"
                and row.get("active", True)
                and _recent(parse_stored_time(row.get("updated")), now, POLLER_ACTIVE_FOR)
            ):
                pollers += 1
        return spent, pollers

    def _clean_old_rows(self, account: _Account, today: date) -> None:
        """Delete rows of days before yesterday (once a day per process); harmless if two do it."""
        if account.cleaned == today:
            return
        account.cleaned = today
        prefix = f"{self.prefix}_{self.slug}_"
        oldest_kept = f"{today - timedelta(days=1):%Y%m%d}"
        try:
            keys = self.state.keys(prefix)
        except ListingUnsupportedError:
            return
        for key in keys:
            day_part = key[len(prefix) :].split("_", 1)[0]
            if day_part.isdigit() and len(day_part) == 8 and day_part < oldest_kept:
                self.state.delete(key)

    def _shortfall(self, spent: int, needed: int, how: str) -> str:
        """Why ``needed`` requests do not fit. ``spent`` may exceed the limit for a moment (other
        holders' intents are counted while they check), so it is capped: never "58 of the 40"."""
        left = max(0, self.limit - spent)
        more = f"{needed} more {'is' if needed == 1 else 'are'} needed"
        if left == 0:
            return f"all {self.limit} requests of the day are {how} and {more}"
        return (
            f"{self.limit - left} of the {self.limit} requests of the day are {how}, {left} left, and {more}"
        )

    def _exhausted(self, reset_at: datetime, why: str) -> BudgetExhaustedError:
        return BudgetExhaustedError(
            self.vendor,
            "request budget",
            f"{why} for {self.key}; the next request is possible at {reset_at.isoformat()}",
            reset_at=reset_at,
        )


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def parse_stored_time(value: Any) -> datetime | None:
    """An ISO time read back from shared state (naive means UTC); ``None`` if absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _recent(moment: datetime | None, now: datetime, within: timedelta) -> bool:
    return moment is not None and now - moment <= within
