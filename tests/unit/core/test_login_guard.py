"""The shared bad-login guard: no second attempt with credentials that failed, one prober at a time."""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_ledgerlink.core.errors import AuthenticationError
from airflow_provider_ledgerlink.core.login_guard import (
    LoginGuard,
    LoginRefusedError,
    credentials_fingerprint,
)
from airflow_provider_ledgerlink.core.shared_state import MemoryState

NOW = datetime(2026, 11, 19, 11, 0, tzinfo=timezone.utc)
GOOD = credentials_fingerprint("licence", "good-token")
WRONG = credentials_fingerprint("licence", "wrong-token")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def make(state, *, holder="h1", clock=None, cooldown=None, max_failures=4, probe_wait=timedelta(seconds=5)):
    return LoginGuard(
        "vendor:licence",
        state=state,
        holder=holder,
        vendor="Acme",
        cooldown=cooldown,
        max_failures=max_failures,
        probe_wait=probe_wait,
        clock=clock or Clock(),
        sleep=lambda _s: None,
    )


def test_a_fingerprint_tells_credentials_apart_without_containing_them():
    assert credentials_fingerprint("l", "t") == credentials_fingerprint("l", "t")
    assert credentials_fingerprint("l", "t") != credentials_fingerprint("l", "u")
    assert "good-token" not in GOOD
    assert len(GOOD) == 16


def test_after_a_failed_login_the_same_credentials_are_refused_everywhere():
    state = MemoryState()
    first = make(state, holder="task-a")
    first.check(WRONG)
    first.failed(WRONG, "Token or name not valid")

    other_task = make(state, holder="task-b")
    with pytest.raises(LoginRefusedError) as refused:
        other_task.check(WRONG)

    assert isinstance(refused.value, AuthenticationError)
    assert "Token or name not valid" in str(refused.value)
    assert "until they are changed" in str(refused.value)
    assert "wrong-token" not in str(refused.value)


def test_corrected_credentials_get_their_attempt_and_clear_the_failures():
    state = MemoryState()
    guard = make(state)
    guard.check(WRONG)
    guard.failed(WRONG, "rejected")

    guard.check(GOOD)  # changed credentials: allowed
    guard.succeeded(GOOD)

    make(state, holder="later").check(GOOD)
    assert state.get_json(guard.row_key)["failures"] == 0


def test_with_a_cooldown_one_new_attempt_follows_and_each_failure_doubles_the_wait():
    state = MemoryState()
    clock = Clock()
    guard = make(state, clock=clock, cooldown=timedelta(minutes=15))
    guard.check(WRONG)
    guard.failed(WRONG, "rejected")

    clock.now = NOW + timedelta(minutes=14)
    with pytest.raises(LoginRefusedError) as refused:
        guard.check(WRONG)
    assert refused.value.retry_at == NOW + timedelta(minutes=15)

    clock.now = NOW + timedelta(minutes=15)
    guard.check(WRONG)
    guard.failed(WRONG, "rejected")
    with pytest.raises(LoginRefusedError) as refused:
        guard.check(WRONG)
    assert refused.value.retry_at == clock.now + timedelta(minutes=30)


def test_after_too_many_failures_in_a_row_nothing_is_sent_until_the_guard_is_reset():
    state = MemoryState()
    guard = make(state, max_failures=3)
    for n in range(3):
        credentials = credentials_fingerprint("licence", f"attempt-{n}")
        guard.check(credentials)
        guard.failed(credentials, "rejected")

    with pytest.raises(LoginRefusedError) as refused:
        guard.check(credentials_fingerprint("licence", "yet another"))
    assert "3 logins in a row failed" in str(refused.value)
    assert guard.row_key in refused.value.hint

    guard.reset()
    guard.check(GOOD)


def test_a_vendor_block_refuses_everything_until_it_ends():
    state = MemoryState()
    clock = Clock()
    guard = make(state, clock=clock)
    guard.blocked(NOW + timedelta(minutes=30), "5 bad logins reached")

    with pytest.raises(LoginRefusedError) as refused:
        make(state, holder="other", clock=clock).check(GOOD)
    assert refused.value.retry_at == NOW + timedelta(minutes=30)

    clock.now = NOW + timedelta(minutes=31)
    guard.check(GOOD)


def test_known_good_credentials_cost_one_read_and_no_write():
    state = MemoryState()
    guard = make(state)
    guard.check(GOOD)
    guard.succeeded(GOOD)
    writes = state.writes

    for _ in range(5):
        guard.check(GOOD)
        guard.succeeded(GOOD)

    assert state.writes == writes


def test_new_credentials_are_tried_by_one_holder_while_the_others_wait_for_the_verdict():
    state = MemoryState()
    attempts: list[str] = []
    outcomes: dict[str, str] = {}
    start = threading.Barrier(6)

    def task(n: int) -> None:
        guard = LoginGuard("vendor:licence", state=state, holder=f"t{n}", probe_wait=timedelta(seconds=20))
        guard._sleep = lambda _s: time.sleep(0.01)
        start.wait()
        try:
            guard.check(WRONG)
        except LoginRefusedError:
            outcomes[f"t{n}"] = "refused"
            return
        attempts.append(f"t{n}")
        time.sleep(0.05)  # the login request is on its way
        guard.failed(WRONG, "rejected")
        outcomes[f"t{n}"] = "failed"

    threads = [threading.Thread(target=task, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(attempts) == 1
    assert sorted(outcomes.values()) == ["failed"] + ["refused"] * 5
    assert state.keys(LoginGuard.prefix + "_probe_") == []  # every intent was withdrawn


def test_an_abandoned_attempt_does_not_block_the_others_for_long():
    state = MemoryState()
    clock = Clock()
    crashed = make(state, holder="crashed", clock=clock)
    crashed.check(GOOD)  # it became the prober, then its process died

    waiting = make(state, holder="waiting", clock=clock, probe_wait=timedelta(minutes=10))
    clock.now = NOW + LoginGuard.probe_ttl + timedelta(seconds=1)
    waiting.check(GOOD)


def test_without_listing_new_credentials_are_not_coordinated():
    state = MemoryState(can_list=False)
    make(state, holder="a").check(GOOD)
    make(state, holder="b").check(GOOD)  # documented limit: both may try


def test_async_twins_and_pickling():
    state = MemoryState()
    guard = make(state)

    async def flow() -> None:
        await guard.acheck(WRONG)
        await guard.afailed(WRONG, "rejected")

    asyncio.run(flow())
    with pytest.raises(LoginRefusedError) as refused:
        asyncio.run(guard.acheck(WRONG))
    copy = pickle.loads(pickle.dumps(refused.value))
    assert isinstance(copy, LoginRefusedError)
    assert str(copy) == str(refused.value)
