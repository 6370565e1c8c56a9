"""RequestWindowLimiter: at most N requests in any window, for threads and event loops alike."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from airflow_provider_ledgerlink.core.http import AsyncHttpClient, HttpClient
from airflow_provider_ledgerlink.core.request_window import (
    RequestWindowLimiter,
    reset_shared_request_windows,
    shared_request_window,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_up_to_the_budget_goes_at_once_then_requests_wait_for_the_window() -> None:
    clock = Clock()
    limiter = RequestWindowLimiter(3, 60.0, clock=clock)

    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.reserve() == 60.0  # the 4th goes when the 1st leaves the window
    assert limiter.reserve() == 60.0  # the 5th with it: only 2 of the window's 3 were used then
    assert limiter.reserve() == 60.0
    assert limiter.reserve() == 120.0


def test_after_a_quiet_window_the_full_budget_is_back() -> None:
    clock = Clock()
    limiter = RequestWindowLimiter(2, 10.0, clock=clock)
    limiter.reserve()
    limiter.reserve()

    clock.now += 10.0

    assert [limiter.reserve(), limiter.reserve()] == [0.0, 0.0]


def test_no_window_ever_holds_more_than_the_budget() -> None:
    clock = Clock()
    limiter = RequestWindowLimiter(5, 1.0, clock=clock)
    sends = []
    for step in range(40):
        clock.now = 100.0 + step * 0.07
        sends.append(clock.now + limiter.reserve())

    for start in sends:
        assert sum(1 for t in sends if start <= t < start + 1.0) <= 5
    assert sends == sorted(sends)


def test_threads_share_one_budget() -> None:
    limiter = RequestWindowLimiter(10, 3600.0)
    delays: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        delay = limiter.reserve()
        with lock:
            delays.append(delay)

    threads = [threading.Thread(target=take) for _ in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(1 for d in delays if d == 0.0) == 10
    assert sum(1 for d in delays if d > 3000) == 5


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        RequestWindowLimiter(0, 60)
    with pytest.raises(ValueError):
        RequestWindowLimiter(1, 0)


def test_shared_limiters_are_one_per_key_and_replaced_when_the_budget_changes() -> None:
    reset_shared_request_windows()
    first = shared_request_window(("cash", "account"), 100, 60)

    assert shared_request_window(("cash", "account"), 100, 60) is first
    assert shared_request_window(("cash", "other"), 100, 60) is not first
    assert shared_request_window(("cash", "account"), 50, 60) is not first
    reset_shared_request_windows()


def test_as_a_gate_it_paces_every_request_of_both_clients() -> None:
    limiter = RequestWindowLimiter(100, 60.0)
    inner = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
    with HttpClient(vendor="Acme", base_url="http://vendor.test", gates=[limiter], transport=inner) as client:
        for _ in range(3):
            assert client.request("GET", "/", operation="read").text == "ok"

    async def run() -> None:
        async_inner = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
        client = AsyncHttpClient(
            vendor="Acme", base_url="http://vendor.test", gates=[limiter], transport=async_inner
        )
        async with client:
            for _ in range(2):
                assert (await client.request("GET", "/", operation="read")).text == "ok"

    asyncio.run(run())
    assert len(limiter._granted) == 5
