"""``WriteOnce`` sends a write at most once, whatever retries, reruns and concurrent attempts do.

Every test counts the sends the vendor would have received. The concurrent cases run real threads
against one shared store; the interleavings that matter (a collision with no winner, a winner that
stalls while another attempt takes over) are forced step by step.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.errors import AmbiguousWriteError, TransportError, ValidationError
from airflow_provider_ledgerlink.core.once import WriteOnce
from airflow_provider_ledgerlink.core.shared_state import MemoryState


class Vendor:
    """Counts what it booked; thread-safe."""

    def __init__(self, delay: float = 0.0) -> None:
        self.bookings = 0
        self.delay = delay
        self._lock = threading.Lock()

    def book(self) -> dict[str, Any]:
        with self._lock:
            self.bookings += 1
            number = self.bookings
        if self.delay:
            time.sleep(self.delay)
        return {"id": f"B{number}"}


def guard(state: MemoryState, **kwargs: Any) -> WriteOnce:
    options: dict[str, Any] = {"settle": 0.2, "wait": 5.0, "poll": 0.005}
    options.update(kwargs)
    return WriteOnce(
        vendor="Acme", operation="POST /bookings", account="acct-1", key="doc 42", state=state, **options
    )


HINT = "Look for booking doc 42 in Acme"


# ------------------------------------------------------------------------------------------------
# One attempt after another
# ------------------------------------------------------------------------------------------------
def test_the_first_attempt_sends_and_records_the_result() -> None:
    state, vendor = MemoryState(), Vendor()

    outcome = guard(state).run(vendor.book, check_hint=HINT)

    assert (outcome.sent, outcome.result, vendor.bookings) == (True, {"id": "B1"}, 1)
    record = guard(state).record()
    assert record is not None and record["state"] == "done" and record["result"] == {"id": "B1"}
    assert list(state.snapshot()) == [guard(state).record_key]  # the election's keys are gone


def test_a_retry_or_rerun_returns_the_earlier_result_without_sending() -> None:
    state, vendor = MemoryState(), Vendor()
    guard(state).run(vendor.book, check_hint=HINT)

    again = guard(state).run(vendor.book, check_hint=HINT)

    assert (again.sent, again.result, vendor.bookings) == (False, {"id": "B1"}, 1)


def test_the_same_content_for_another_account_is_another_write() -> None:
    state, vendor = MemoryState(), Vendor()
    guard(state).run(vendor.book, check_hint=HINT)

    other = WriteOnce(vendor="Acme", operation="POST", account="acct-2", key="doc 42", state=state)
    assert other.run(vendor.book, check_hint=HINT).sent is True
    assert vendor.bookings == 2


def test_a_refusal_reopens_the_write_for_a_later_attempt() -> None:
    state, vendor = MemoryState(), Vendor()

    def refused() -> dict[str, Any]:
        raise ValidationError("Acme", "POST /bookings", "amount is required", status_code=422)

    with pytest.raises(ValidationError):
        guard(state).run(refused, check_hint=HINT)
    assert (guard(state).record() or {})["state"] == "open"

    assert guard(state).run(vendor.book, check_hint=HINT).sent is True
    assert vendor.bookings == 1


def test_a_connection_never_made_reopens_the_write() -> None:
    state, vendor = MemoryState(), Vendor()

    def unreachable() -> dict[str, Any]:
        raise TransportError("Acme", "POST /bookings", "ConnectError: refused")

    with pytest.raises(TransportError):
        guard(state).run(unreachable, check_hint=HINT)
    assert guard(state).run(vendor.book, check_hint=HINT).sent is True


@pytest.mark.parametrize(
    "failure",
    [
        AmbiguousWriteError("Acme", "POST /bookings", "ReadTimeout; the write may have been applied"),
        RuntimeError("the worker died half-way"),
    ],
)
def test_an_unknown_outcome_is_never_sent_again(failure: Exception) -> None:
    state, vendor = MemoryState(), Vendor()

    def lost() -> dict[str, Any]:
        vendor.book()  # the vendor applied it ...
        raise failure  # ... and the answer was lost

    with pytest.raises(type(failure)):
        guard(state).run(lost, check_hint=HINT)

    with pytest.raises(AmbiguousWriteError) as caught:
        guard(state, wait=0).run(vendor.book, check_hint=HINT)

    assert vendor.bookings == 1
    message = str(caught.value)
    assert "doc 42" in message and HINT in message
    assert f"airflow variables set {guard(state).record_key}" in message
    assert (guard(state).record() or {})["state"] == "sending"


def test_the_ambiguous_error_of_the_sending_attempt_says_how_to_resolve_it() -> None:
    state = MemoryState()

    def lost() -> dict[str, Any]:
        raise AmbiguousWriteError("Acme", "POST /bookings", "connection reset after sending")

    with pytest.raises(AmbiguousWriteError) as caught:
        guard(state).run(lost, check_hint=HINT)

    assert "connection reset after sending" in str(caught.value)
    assert HINT in str(caught.value) and guard(state).record_key in str(caught.value)


def test_a_person_can_release_or_confirm_an_ambiguous_write() -> None:
    state, vendor = MemoryState(), Vendor()

    def lost() -> dict[str, Any]:
        raise AmbiguousWriteError("Acme", "POST /bookings", "reset")

    with pytest.raises(AmbiguousWriteError):
        guard(state).run(lost, check_hint=HINT)
    guard(state).release()  # checked: Acme does not have it
    assert guard(state).run(vendor.book, check_hint=HINT).sent is True

    other = WriteOnce(vendor="Acme", operation="POST", account="acct-1", key="doc 43", state=state)
    with pytest.raises(AmbiguousWriteError):
        other.run(lost, check_hint=HINT)
    other.mark_done({"id": "found-by-hand"})
    assert other.run(vendor.book, check_hint=HINT).result == {"id": "found-by-hand"}
    assert vendor.bookings == 1


def test_the_documented_cli_values_are_understood() -> None:
    state, vendor = MemoryState(), Vendor()

    def lost() -> dict[str, Any]:
        raise AmbiguousWriteError("Acme", "POST /bookings", "reset")

    with pytest.raises(AmbiguousWriteError):
        guard(state).run(lost, check_hint=HINT)
    state.set(guard(state).record_key, '{"state": "done"}')  # airflow variables set … '{"state": "done"}'

    assert guard(state).run(vendor.book, check_hint=HINT).result == {}
    assert vendor.bookings == 0


# ------------------------------------------------------------------------------------------------
# Concurrent attempts
# ------------------------------------------------------------------------------------------------
class JitteryState(MemoryState):
    """A shared store whose every call takes a random little while, so attempts interleave."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def _pause(self) -> None:
        time.sleep(self.rng.random() * 0.002)

    def get(self, key: str) -> str | None:
        self._pause()
        return super().get(key)

    def set(self, key: str, value: str) -> None:
        self._pause()
        super().set(key, value)


def run_concurrently(attempts: list[Callable[[], Any]]) -> list[Any]:
    results: list[Any] = [None] * len(attempts)
    start = threading.Barrier(len(attempts))

    def worker(index: int) -> None:
        start.wait()
        try:
            results[index] = attempts[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(attempts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("attempts", [2, 4, 16])
def test_concurrent_attempts_send_exactly_once(attempts: int) -> None:
    for trial in range(10 if attempts < 16 else 4):
        state, vendor = JitteryState(random.Random(trial)), Vendor(delay=0.01)
        outcomes = run_concurrently(
            [lambda s=state, v=vendor: guard(s).run(v.book, check_hint=HINT) for _ in range(attempts)]
        )

        assert vendor.bookings == 1, f"trial {trial}: {outcomes}"
        assert all(not isinstance(o, Exception) for o in outcomes), outcomes
        assert sum(o.sent for o in outcomes) == 1
        assert {o.result["id"] for o in outcomes} == {"B1"}


def test_a_collision_without_a_winner_moves_on_to_the_next_round() -> None:
    state, vendor = MemoryState(), Vendor()
    # What two colliding attempts leave when a third overtook them and then saw the door closed:
    # the door of round 0 closed, ``x`` naming an attempt that lost, and no record.
    state.set(guard(state).record_key + "_door0", "closed")
    state.set(guard(state).record_key + "_x0", "someone-else")

    outcome = guard(state, settle=0.05).run(vendor.book, check_hint=HINT)

    assert outcome.sent is True and vendor.bookings == 1
    assert (guard(state).record() or {})["round"] == 1


class SteppedState(MemoryState):
    """Runs a callback right after one particular key is written or read (once each)."""

    def __init__(self) -> None:
        super().__init__()
        self.after_set: dict[str, Callable[[], None]] = {}
        self.after_get: dict[str, Callable[[], None]] = {}

    def get(self, key: str) -> str | None:
        value = super().get(key)
        callback = self.after_get.pop(key, None)
        if callback is not None:
            callback()
        return value

    def set(self, key: str, value: str) -> None:
        super().set(key, value)
        callback = self.after_set.pop(key, None)
        if callback is not None:
            callback()


def test_a_winner_that_stalls_is_never_joined_by_a_second_sender() -> None:
    """The stalled winner of round 0 resumes just after another attempt closed round 1's door.
    Each writes first and reads the other's key second, so they cannot both send."""
    state, vendor = SteppedState(), Vendor()
    stalled = guard(state, settle=0.05, wait=0.3)
    record_key = stalled.record_key
    assert stalled._split(0)  # wins round 0 ... and stalls before writing its record

    winner_result: list[Any] = []

    def resume_stalled_winner() -> None:
        # Round 1's door was just closed by the other attempt: the stalled winner goes on now.
        def finish() -> None:
            try:
                current = stalled.record() or {}
                assert current.get("state") is None
                stalled._write("sending", round=0, holder=stalled.holder)
                if state.get(f"{record_key}_door1"):
                    winner_result.append("backed off")
                    return
                winner_result.append(stalled._send(vendor.book, 0, HINT))
            except Exception as exc:  # pragma: no cover - reported below
                winner_result.append(exc)

        finish()

    state.after_set[f"{record_key}_door1"] = resume_stalled_winner
    other = guard(state, settle=0.05, wait=0.3)

    try:
        outcome: Any = other.run(vendor.book, check_hint=HINT)
    except AmbiguousWriteError as exc:
        outcome = exc

    assert vendor.bookings <= 1
    assert winner_result == ["backed off"]
    # Neither sent: a person is asked to check, and nothing was booked twice.
    assert isinstance(outcome, AmbiguousWriteError) and vendor.bookings == 0


def test_a_late_attempt_that_wins_an_emptied_round_reads_the_outcome() -> None:
    """An attempt reads "no record", then another attempt sends, records and empties the round;
    the late one wins the emptied round, but re-reads the record before sending."""
    state, vendor = SteppedState(), Vendor()
    late = guard(state)

    def another_attempt_completes() -> None:
        assert guard(state).run(vendor.book, check_hint=HINT).sent is True

    state.after_get[late.record_key] = another_attempt_completes

    outcome = late.run(vendor.book, check_hint=HINT)

    assert (outcome.sent, outcome.result, vendor.bookings) == (False, {"id": "B1"}, 1)
