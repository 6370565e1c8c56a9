"""The shared daily request budget: counting, blocks, days, the vendor's word, pacing, and races."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from airflow_provider_ledgerlink.core import budget as budget_module
from airflow_provider_ledgerlink.core.budget import (
    BudgetExhaustedError,
    DailyBudget,
    holder_id,
    state_slug,
)
from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState, MemoryState

BRUSSELS_NOON = datetime(2026, 11, 19, 11, 0, tzinfo=timezone.utc)  # 12:00 in Brussels


class Clock:
    def __init__(self, now: datetime = BRUSSELS_NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class SlowState(MemoryState):
    """A store whose calls take a random moment, so that concurrent holders interleave."""

    def _pause(self) -> None:
        time.sleep(random.uniform(0, 0.002))

    def get(self, key):
        self._pause()
        return super().get(key)

    def set(self, key, value):
        self._pause()
        super().set(key, value)

    def keys(self, prefix):
        self._pause()
        return super().keys(prefix)


@pytest.fixture(autouse=True)
def fresh_process_accounts():
    """Each test starts as a fresh process would: no holder rows cached in memory."""
    budget_module._accounts.clear()
    yield
    budget_module._accounts.clear()


def make(state, *, limit=20, holder="h1", clock=None, block=5, kind="task", key="vendor:acme"):
    return DailyBudget(
        key,
        limit,
        state=state,
        holder=holder,
        vendor="Acme",
        block_size=block,
        kind=kind,
        clock=clock or Clock(),
        sleep=lambda _s: None,
    )


def test_requests_are_counted_until_the_limit_then_refused_with_the_next_reset():
    budget = make(MemoryState(), limit=7, block=3)

    for _ in range(7):
        budget.acquire()
    with pytest.raises(BudgetExhaustedError) as refused:
        budget.acquire()

    assert refused.value.reset_at == datetime(2026, 11, 19, 23, 0, tzinfo=timezone.utc)  # Brussels midnight
    assert "all 7 requests of the day are used or reserved and 1 more is needed" in str(refused.value)
    assert budget.status().remaining == 0


def test_blocks_are_reserved_ahead_and_what_is_unused_is_given_back():
    state = MemoryState()
    budget = make(state, limit=20, block=5)

    budget.acquire()
    assert budget.status().spent == 5  # a block is held
    writes = state.writes
    for _ in range(4):
        budget.acquire()
    assert state.writes == writes  # served from the block: no shared-state traffic

    budget.acquire()
    budget.release()
    assert budget.status().spent == 6


def test_a_reservation_for_a_whole_task_is_all_or_nothing():
    state = MemoryState()
    other = make(state, limit=10, holder="other")
    other.reserve(7)
    budget = make(state, limit=10)

    with pytest.raises(BudgetExhaustedError):
        budget.reserve(4)
    assert budget.status().spent == 7  # the refused reservation left nothing behind
    budget.reserve(3)
    assert budget.status().spent == 10


def test_a_new_process_of_the_same_holder_continues_its_row():
    state = MemoryState()
    make(state, limit=10, block=4).acquire()  # reserves 4

    budget_module._accounts.clear()  # the task is retried in another process
    again = make(state, limit=10, block=4)
    again.acquire()

    # The first process's 4 are taken as spent (unknown whether they were sent), plus a new block.
    assert again.status().spent == 8


def test_a_new_day_in_brussels_starts_a_new_budget_and_old_rows_are_removed():
    state = MemoryState()
    clock = Clock()
    budget = make(state, limit=3, block=3, clock=clock)
    for _ in range(3):
        budget.acquire()
    with pytest.raises(BudgetExhaustedError):
        budget.acquire()

    clock.now = datetime(2026, 11, 19, 23, 0, 1, tzinfo=timezone.utc)  # 00:00:01 in Brussels
    budget.acquire()
    assert budget.status().day == date(2026, 11, 20)
    assert budget.status().spent == 3

    def days() -> set[str]:
        return {key.split("_")[-2] for key in state.keys(f"ledgerlink_budget_{budget.slug}_2026")}

    assert days() == {"20261119", "20261120"}
    clock.now += timedelta(days=1)
    budget.acquire()
    clock.now += timedelta(days=1)
    budget.acquire()
    assert days() == {"20261121", "20261122"}  # rows from before yesterday are deleted


def test_the_budget_day_follows_brussels_summer_time():
    clock = Clock(datetime(2026, 7, 1, 21, 59, tzinfo=timezone.utc))  # 23:59 in Brussels (CEST)
    budget = make(MemoryState(), clock=clock)

    assert budget.resets_at() == datetime(2026, 7, 1, 22, 0, tzinfo=timezone.utc)
    clock.now = datetime(2026, 7, 1, 22, 0, tzinfo=timezone.utc)
    assert budget.status().day == date(2026, 7, 2)


def test_the_vendors_stop_holds_for_every_holder_until_the_time_it_gave():
    state = MemoryState()
    clock = Clock()
    until = BRUSSELS_NOON + timedelta(hours=2)
    make(state, holder="a", clock=clock).record_vendor_stop(until, "limit reached")
    other = make(state, holder="b", clock=clock)

    with pytest.raises(BudgetExhaustedError) as refused:
        other.acquire()
    assert refused.value.reset_at == until

    clock.now = until + timedelta(seconds=1)
    other.acquire()


def test_pollers_share_what_is_left_over_the_rest_of_the_day():
    state = MemoryState()
    clock = Clock()  # 12 hours before Brussels midnight
    sensors = [make(state, limit=500, holder=f"s{n}", block=1, kind="poll", clock=clock) for n in range(50)]
    for sensor in sensors:
        sensor.acquire()

    interval = sensors[0].poll_interval(60, reserve_fraction=0.2)

    # 450 left, 100 kept in reserve: 350 requests for 50 sensors over 12 hours.
    assert interval == pytest.approx(12 * 3600 * 50 / 350)
    # Alone, a sensor would poll at its own pace.
    alone = make(MemoryState(), limit=500, holder="x", block=1, kind="poll", clock=clock)
    alone.acquire()
    assert alone.poll_interval(60) == pytest.approx(max(60, 12 * 3600 / 399))


def test_the_poll_interval_widens_as_the_budget_shrinks_and_waits_for_the_reset_at_the_reserve():
    state = MemoryState()
    clock = Clock()
    sensor = make(state, limit=500, holder="s", block=1, kind="poll", clock=clock)
    sensor.acquire()
    before = sensor.poll_interval(60)
    make(state, limit=500, holder="extract", clock=clock).reserve(300)
    after = sensor.poll_interval(60)
    make(state, limit=500, holder="extract2", clock=clock).reserve(100)

    assert after > before
    assert sensor.poll_interval(60) == pytest.approx(12 * 3600)  # only the reserve is left


def test_pollers_wait_for_the_end_of_a_vendor_stop_not_for_midnight():
    clock = Clock()
    sensor = make(MemoryState(), limit=500, holder="s", block=1, kind="poll", clock=clock)
    sensor.record_vendor_stop(BRUSSELS_NOON + timedelta(minutes=5), "limit reached")

    assert sensor.poll_interval(60) == pytest.approx(300)


def test_pollers_that_finished_no_longer_count():
    state = MemoryState()
    done = make(state, limit=500, holder="done", block=1, kind="poll")
    done.acquire()
    done.release(final=True)
    waiting = make(state, limit=500, holder="waiting", block=1, kind="poll")
    waiting.acquire()

    assert waiting.status().pollers == 1


def race(state, key: str, limit: int, holders: int, block: int) -> list[int]:
    """``holders`` threads spend one budget until refused; returns what each one sent."""
    sent = [0] * holders

    def spend(n: int) -> None:
        budget = DailyBudget(key, limit, state=state, holder=f"h{n}", block_size=block)
        try:
            while True:
                budget.acquire()
                sent[n] += 1
        except BudgetExhaustedError:
            pass
        finally:
            budget.release()

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(holders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


@pytest.mark.parametrize("holders", [2, 8])
def test_concurrent_holders_never_cross_the_limit(holders):
    state = SlowState()

    sent = race(state, "vendor:race", 60, holders, block=3)

    assert sum(sent) <= 60
    assert sum(sent) >= 60 - 3 * holders  # racing holders may leave a block's worth unclaimed
    assert DailyBudget("vendor:race", 60, state=state, holder="reader").status().spent == sum(sent)


def test_concurrent_holders_never_cross_the_limit_in_airflow_variables(airflow_db):
    sent = race(AirflowVariableState(), f"vendor:race-{uuid.uuid4().hex[:8]}", 24, 3, block=2)

    assert sum(sent) <= 24
    assert sum(sent) >= 24 - 2 * 3


def test_without_listing_the_budget_still_counts_for_one_holder_at_a_time():
    state = MemoryState(can_list=False)
    first = make(state, limit=6, holder="a", block=2)
    second = make(state, limit=6, holder="b", block=2)

    for _ in range(3):
        first.acquire()
    first.release()
    for _ in range(3):
        second.acquire()
    with pytest.raises(BudgetExhaustedError):
        second.acquire()
    assert second.status().spent == 6


def test_the_async_twins_work_from_an_event_loop():
    state = MemoryState()
    budget = make(state, limit=2, block=1)

    async def spend() -> float:
        await budget.aacquire()
        await budget.aacquire()
        interval = await budget.apoll_interval(10)
        await budget.arelease(final=True)
        return interval

    assert asyncio.run(spend()) > 0
    with pytest.raises(BudgetExhaustedError):
        asyncio.run(budget.aacquire())


def test_refusals_survive_pickling_with_their_reset_time():
    import pickle

    error = BudgetExhaustedError("Acme", "request budget", "spent", reset_at=BRUSSELS_NOON)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, BudgetExhaustedError)
    assert copy.reset_at == BRUSSELS_NOON


def test_names_are_safe_for_variables_and_holders_are_stable():
    assert state_slug("cloudpos:127.0.0.1:8080:My Licence") == state_slug(
        "cloudpos:127.0.0.1:8080:My Licence"
    )
    assert "_" not in state_slug("a_b c:d")
    assert state_slug("a_b") != state_slug("a-b")
    assert holder_id("dag", "task", "run", -1) == holder_id("dag", "task", "run", -1)
    assert holder_id("dag", "task", "run", 0) != holder_id("dag", "task", "run", 1)


@pytest.mark.parametrize(
    ("others", "can_list", "expected"),
    [
        # Another holder's intent is counted while it checks: the day's sum may pass the limit.
        (48, True, "all 40 requests of the day are used or reserved and 10 more are needed"),
        (35, True, "35 of the 40 requests of the day are used or reserved, 5 left, and 10 more are needed"),
        (58, False, "all 40 requests of the day are used and 10 more are needed"),
    ],
)
def test_a_refusal_never_counts_more_requests_than_the_day_has(others, can_list, expected):
    state = MemoryState(can_list=can_list)
    clock = Clock()
    make(state, limit=40, holder="other", clock=clock, block=1)  # names the rows
    day = f"{BRUSSELS_NOON:%Y%m%d}"
    row = f"ledgerlink_budget_{state_slug('vendor:acme')}_{day}_{'other' if can_list else 'shared'}"
    state.set_json(
        row, {"reserved": others, "kind": "task", "active": True, "updated": clock.now.isoformat()}
    )

    with pytest.raises(BudgetExhaustedError) as refused:
        make(state, limit=40, clock=clock).reserve(10)

    assert expected in str(refused.value)
    assert all(int(n) <= 40 for n in re.findall(r"(\d+) of the 40", str(refused.value)))
