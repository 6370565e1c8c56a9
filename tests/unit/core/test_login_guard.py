"""The shared bad-login guard: no second attempt with credentials that failed, one prober at a time."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import pickle
import random
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
from airflow_provider_ledgerlink.core.shared_state import MemoryState, SharedState

NOW = datetime(2026, 11, 19, 11, 0, tzinfo=timezone.utc)
GOOD = credentials_fingerprint("licence", "good-token")
WRONG = credentials_fingerprint("licence", "wrong-token")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def make(
    state,
    *,
    holder="h1",
    clock=None,
    cooldown=None,
    max_failures=4,
    probe_wait=timedelta(seconds=5),
    lock_dir=None,
):
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
        lock_dir=lock_dir,
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
    crashed.check(GOOD)  # it became the prober, then its process died:
    crashed._lock_file.close()  # the system gives its lock file back; its intent row stays

    waiting = make(state, holder="waiting", clock=clock, probe_wait=timedelta(minutes=10))
    clock.now = NOW + LoginGuard.probe_ttl + timedelta(seconds=1)
    waiting.check(GOOD)


def test_without_listing_one_machine_still_tries_new_credentials_once(tmp_path):
    state = MemoryState(can_list=False)
    clock = Clock()
    first = make(state, holder="a", clock=clock, lock_dir=str(tmp_path))
    second = make(state, holder="b", clock=clock, lock_dir=str(tmp_path))

    first.check(WRONG)  # the lock file of this machine is its own until the verdict
    second._sleep = lambda _s: first.failed(WRONG, "rejected")  # the verdict arrives while it waits
    with pytest.raises(LoginRefusedError, match="failed to log in"):
        second.check(WRONG)


def test_without_listing_machines_are_not_coordinated(tmp_path):
    state = MemoryState(can_list=False)
    make(state, holder="a", lock_dir=str(tmp_path / "a")).check(GOOD)
    make(state, holder="b", lock_dir=str(tmp_path / "b")).check(GOOD)  # documented limit: both may try


def test_a_holder_elected_after_the_verdict_was_written_reads_it_and_does_not_send(tmp_path):
    # "b" read "no verdict", then "a" wrote "failed" and withdrew before "b" stood as a candidate.
    state = MemoryState()
    a = make(state, holder="a", lock_dir=str(tmp_path))
    b = make(state, holder="b", lock_dir=str(tmp_path))
    a.check(WRONG)
    a.failed(WRONG, "rejected")

    with pytest.raises(LoginRefusedError, match="failed to log in"):
        b._try_probe(WRONG)
    assert state.keys(LoginGuard.prefix + "_probe_") == []
    assert b._lock_file is None  # the lock is given back


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


class DirectoryState(SharedState):
    """One file per key in a directory: a store that separate processes share, like Variables."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, key)

    @staticmethod
    def _pause() -> None:
        time.sleep(random.uniform(0, 0.002))  # a store's round trip: lets the processes interleave

    def get(self, key):
        self._pause()
        try:
            with open(self._path(key)) as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def set(self, key, value):
        self._pause()
        temporary = self._path(f".{key}.{os.getpid()}")
        with open(temporary, "w") as handle:
            handle.write(value)
        os.replace(temporary, self._path(key))  # readers see the old value or the new one

    def delete(self, key):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))

    def keys(self, prefix):
        self._pause()
        return sorted(name for name in os.listdir(self.folder) if name.startswith(prefix))


def _try_wrong_credentials(folder: str, lock_dir: str, n: int, start) -> None:
    """One process: wait for the others, then try to log in with credentials that will fail."""
    guard = LoginGuard(
        "vendor:licence",
        state=DirectoryState(folder),
        holder=f"p{n}",
        vendor="Acme",
        lock_dir=lock_dir,
        sleep=lambda _s: time.sleep(0.005),
    )
    start.wait()
    time.sleep(n * 0.003)  # arrivals spread over the first attempt, its verdict and after
    try:
        guard.check(WRONG)
    except LoginRefusedError:
        os._exit(0)
    with open(os.path.join(folder, ".attempts"), "a") as attempts:  # the login request goes out
        attempts.write(f"p{n}\n")
    time.sleep(0.03)
    guard.failed(WRONG, "rejected")
    os._exit(0)


@pytest.mark.parametrize("machines", ["one machine", "a machine each"])
def test_sixteen_processes_send_failing_credentials_once(tmp_path, machines):
    context = multiprocessing.get_context("fork")
    for trial in range(3):
        folder = tmp_path / f"state{trial}"
        folder.mkdir()
        start = context.Barrier(16)
        processes = [
            context.Process(
                target=_try_wrong_credentials,
                args=(
                    str(folder),
                    str(tmp_path / f"locks{trial}" / (str(n) if machines == "a machine each" else "")),
                    n,
                    start,
                ),
            )
            for n in range(16)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)

        assert [process.exitcode for process in processes] == [0] * 16
        assert len((folder / ".attempts").read_text().split()) == 1, f"trial {trial}"
        assert DirectoryState(str(folder)).keys(LoginGuard.prefix + "_probe_") == []
