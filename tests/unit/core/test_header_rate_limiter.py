"""The header-driven rate limiter: what it decides from a vendor's X-Rate-Limit-* headers.

The decision (:meth:`HeaderRateLimiter.delay`) is tested with a fake clock; the threaded behaviour
against a small in-process vendor with a fixed-window limit, where several requests are in flight.
No test asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from airflow_provider_ledgerlink.core.http import AsyncHttpClient, GatedTransport, HttpClient, RetryPolicy
from airflow_provider_ledgerlink.core.ratelimit import HeaderRateLimiter, RateLimitHeaders


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(
    status: int = 200, *, limit: int | None = 100, remaining: int | None = None, reset: int | None = 60
) -> httpx.Response:
    headers = {}
    if limit is not None:
        headers["X-Rate-Limit-Limit"] = str(limit)
    if remaining is not None:
        headers["X-Rate-Limit-Remaining"] = str(remaining)
    if reset is not None:
        headers["X-Rate-Limit-Reset"] = str(reset)
    return httpx.Response(status, headers=headers)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def limiter(clock: FakeClock, **kwargs: object) -> HeaderRateLimiter:
    return HeaderRateLimiter(clock=clock, **kwargs)  # type: ignore[arg-type]


def test_before_any_answer_one_request_goes_and_the_others_wait_for_the_budget(clock: FakeClock) -> None:
    gate = limiter(clock)
    assert gate.delay(clock()) == 0
    gate.acquire()
    assert gate.delay(clock()) > 0  # a second request waits until the first answer says how much is left
    gate.learn(answer(remaining=99))
    gate.release()
    assert gate.delay(clock()) == 0


def test_plenty_left_means_full_speed(clock: FakeClock) -> None:
    gate = limiter(clock, reserve=20)
    gate.learn(answer(remaining=90))
    for _ in range(8):
        assert gate.delay(clock()) == 0
        gate.acquire()
    assert gate.in_flight == 8


def test_the_reserve_is_never_spent_counting_requests_in_flight(clock: FakeClock) -> None:
    gate = limiter(clock, reserve=20, pace_fraction=0, reset_margin=0)
    gate.learn(answer(remaining=23, reset=30))
    gate.acquire()
    gate.acquire()
    # 23 left, 2 in flight, 20 kept: one more may go, then the rest of the period is the reserve.
    assert gate.delay(clock()) == 0
    gate.acquire()
    assert gate.delay(clock()) == pytest.approx(30)


def test_when_the_period_ends_the_budget_is_back(clock: FakeClock) -> None:
    gate = limiter(clock, reserve=20)
    gate.learn(answer(limit=100, remaining=20, reset=10))
    assert gate.delay(clock()) == pytest.approx(11)  # a second's margin: resets are whole seconds
    clock.now += 11
    assert gate.delay(clock()) == 0
    assert gate.remaining == 100


def test_below_the_pacing_threshold_requests_are_spread_over_the_rest_of_the_period(clock: FakeClock) -> None:
    gate = limiter(clock, reserve=0, pace_fraction=0.5, reset_margin=0)
    gate.learn(answer(limit=100, remaining=10, reset=20))
    gate.acquire()
    gate.release()
    # 10 left for 20 s: one every 2 s.
    assert gate.delay(clock()) == pytest.approx(2.0)
    clock.now += 2.0
    assert gate.delay(clock()) == 0


def test_answers_arriving_out_of_order_never_raise_the_count_within_a_period(clock: FakeClock) -> None:
    gate = limiter(clock)
    gate.learn(answer(remaining=60, reset=30))
    for _ in range(4):
        gate.acquire()
    gate.learn(answer(remaining=50, reset=30))
    gate.learn(answer(remaining=53, reset=30))  # an older request, answered late
    assert gate.remaining == 50
    gate.learn(answer(remaining=99, reset=30))  # more than the requests in flight explain: a new period
    assert gate.remaining == 99
    clock.now += 32
    gate.learn(answer(remaining=98, reset=60))  # the period's end has passed: a new one
    assert gate.remaining == 98


def test_a_429_with_a_reset_header_stops_everyone_until_the_reset(clock: FakeClock) -> None:
    gate = limiter(clock, reset_margin=0)
    gate.learn(answer(429, remaining=0, reset=12))
    assert gate.delay(clock()) == pytest.approx(12)
    assert gate.stats.throttled == 1


def test_a_429_without_a_reset_header_backs_off_longer_each_time(clock: FakeClock) -> None:
    gate = limiter(clock, initial_backoff=1.0, max_backoff=5.0)
    waits = []
    for _ in range(4):
        gate.learn(httpx.Response(429))
        waits.append(gate.delay(clock()))
        clock.now += waits[-1]
    assert waits == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(4.0), pytest.approx(5.0)]
    gate.learn(answer(remaining=80))
    gate.learn(httpx.Response(429))
    assert gate.delay(clock()) == pytest.approx(1.0)  # a success resets the backoff


def test_responses_without_the_headers_change_nothing(clock: FakeClock) -> None:
    gate = limiter(clock)
    gate.learn(httpx.Response(200))
    assert gate.remaining is None
    assert gate.stats.min_remaining is None


def test_header_names_are_configurable(clock: FakeClock) -> None:
    gate = limiter(
        clock,
        headers=RateLimitHeaders(
            limit="RateLimit-Limit", remaining="RateLimit-Remaining", reset="RateLimit-Reset"
        ),
    )
    gate.learn(
        httpx.Response(
            200, headers={"RateLimit-Limit": "10", "RateLimit-Remaining": "4", "RateLimit-Reset": "3"}
        )
    )
    assert gate.remaining == 4
    assert gate.stats.limit == 10


@pytest.mark.parametrize("bad", [{"reserve": -1}, {"pace_fraction": 1.5}])
def test_nonsense_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        HeaderRateLimiter(**bad)  # type: ignore[arg-type]


class FixedWindowVendor:
    """A vendor allowing ``limit`` requests per ``period`` seconds, answering 429 beyond it."""

    def __init__(self, limit: int, period: float, rounding: Callable[[float], int] = round) -> None:
        import time

        self.rounding = rounding
        self.time = time.monotonic
        self.limit = limit
        self.period = period
        self.lock = threading.Lock()
        self.started = self.time()
        self.used = 0
        self.refused = 0
        self.lowest = limit
        self.served = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            now = self.time()
            if now - self.started >= self.period:
                self.started, self.used = now, 0
            reset = max(0, self.rounding(self.started + self.period - now))
            if self.used >= self.limit:
                self.refused += 1
                return httpx.Response(
                    429, headers={"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(reset)}
                )
            self.used += 1
            self.served += 1
            remaining = self.limit - self.used
            self.lowest = min(self.lowest, remaining)
        return answer(limit=self.limit, remaining=remaining, reset=reset)


@pytest.mark.parametrize("rounding", [round, math.floor, math.ceil], ids=["round", "floor", "ceil"])
def test_threads_in_flight_stay_inside_the_limit_and_its_reserve(rounding: Callable[[float], int]) -> None:
    """Six threads, 60 requests, 30 allowed per second: never a 429, never into the reserve, however
    the vendor rounds its reset seconds."""
    vendor = FixedWindowVendor(limit=30, period=1.0, rounding=rounding)
    gate = HeaderRateLimiter(reserve=8)
    client = httpx.Client(transport=GatedTransport([gate], httpx.MockTransport(vendor)))

    def call(_: int) -> int:
        return client.get("http://vendor.test/x").status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(call, range(60)))

    assert statuses == [200] * 60
    assert vendor.refused == 0
    assert vendor.lowest >= 8
    assert gate.stats.min_remaining is not None and gate.stats.min_remaining >= 8


# ------------------------------------------------------------------------------------------------
# Shared by the processes of a machine (``shared_file``)
# ------------------------------------------------------------------------------------------------
def shared_pair(
    clock: FakeClock, path: Path, **kwargs: object
) -> tuple[HeaderRateLimiter, HeaderRateLimiter]:
    """Two limiters on one file: what two processes of one machine have."""
    return (
        HeaderRateLimiter(clock=clock, shared_file=path, **kwargs),  # type: ignore[arg-type]
        HeaderRateLimiter(clock=clock, shared_file=path, **kwargs),  # type: ignore[arg-type]
    )


def test_requests_in_flight_elsewhere_count_as_spent(clock: FakeClock, tmp_path: Path) -> None:
    first, second = shared_pair(clock, tmp_path / "limit.json", reserve=20, pace_fraction=0.0)
    first.acquire()
    first.learn(answer(remaining=25))
    first.release()
    for _ in range(4):
        first.acquire()  # 4 pages in flight in one process

    # 25 left, 4 in flight, 20 reserved: exactly one more request, from any process.
    assert second.wait_time() == 0
    second.acquire()
    assert second.wait_time() > 0
    assert first.wait_time() > 0
    assert second.in_flight == first.in_flight == 5


def test_a_429_seen_by_one_process_pauses_the_others(clock: FakeClock, tmp_path: Path) -> None:
    first, second = shared_pair(clock, tmp_path / "limit.json")
    first.acquire()
    first.learn(answer(429, remaining=0, reset=5))
    first.release()

    assert second.wait_time() == pytest.approx(6.0)  # the reset plus the margin
    clock.now += 6.0
    assert second.wait_time() == 0  # a new period: the last known limit is back


def test_requests_of_a_process_that_died_are_forgotten(clock: FakeClock, tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "limit.json"
    path.write_text(json.dumps({"limit": 100, "remaining": 50, "in_flight": {f"{gone.pid}-dead": 30}}))
    gate = HeaderRateLimiter(clock=clock, shared_file=path, reserve=20)

    assert gate.in_flight == 0
    assert gate.wait_time() == 0


# ------------------------------------------------------------------------------------------------
# As a request gate of the HTTP client
# ------------------------------------------------------------------------------------------------
def test_as_a_gate_every_attempt_of_a_retried_request_takes_and_gives_back_its_flight() -> None:
    fast = RetryPolicy(initial_backoff=0.001, max_backoff=0.002)
    answers = [
        answer(503, remaining=90),
        answer(remaining=89),
        answer(503, remaining=88),
        answer(remaining=87),
    ]
    gate = HeaderRateLimiter(reserve=0)

    def vendor(request: httpx.Request) -> httpx.Response:
        assert gate.in_flight == 1  # the attempt on the wire holds its flight
        return answers.pop(0)

    with HttpClient(
        vendor="Acme",
        base_url="http://vendor.test",
        retry=fast,
        gates=[gate],
        transport=httpx.MockTransport(vendor),
    ) as client:
        client.request("GET", "/x", operation="read")

    async def run() -> None:
        client = AsyncHttpClient(
            vendor="Acme",
            base_url="http://vendor.test",
            retry=fast,
            gates=[gate],
            transport=httpx.MockTransport(vendor),
        )
        async with client:
            await client.request("GET", "/x", operation="read")

    asyncio.run(run())

    assert gate.stats.requests == 4
    assert gate.in_flight == 0
    assert gate.remaining == 87
