"""``chain_in_order``: several sequential streams read at once, delivered in their given order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from airflow_provider_ledgerlink.core.parallel import chain_in_order


def numbers(
    start: int, count: int, delay: float = 0.0, log: list[int] | None = None
) -> Callable[[], Iterator[int]]:
    def produce() -> Iterator[int]:
        for value in range(start, start + count):
            if delay:
                time.sleep(delay)
            if log is not None:
                log.append(value)
            yield value

    return produce


@pytest.mark.parametrize("max_in_flight", [1, 2, 4, 10])
def test_items_come_in_chain_order_whatever_the_concurrency(max_in_flight):
    producers = [numbers(100 * n, n + 3, delay=0.001 * (5 - n)) for n in range(5)]

    result = list(chain_in_order(producers, max_in_flight=max_in_flight))

    assert result == [v for n in range(5) for v in range(100 * n, 100 * n + n + 3)]


def test_no_producers_and_one_producer():
    assert list(chain_in_order([], max_in_flight=4)) == []
    assert list(chain_in_order([numbers(0, 3)], max_in_flight=4)) == [0, 1, 2]


def test_later_chains_run_while_the_first_is_consumed():
    started: list[int] = []
    gate = threading.Event()

    def slow_first() -> Iterator[int]:
        started.append(0)
        gate.wait(5)
        yield 0

    def second() -> Iterator[int]:
        started.append(1)
        gate.set()
        yield 1

    assert list(chain_in_order([slow_first, second], max_in_flight=2)) == [0, 1]
    assert sorted(started) == [0, 1]


def test_memory_is_bounded_by_the_buffer():
    produced: list[int] = []
    stream = chain_in_order(
        [numbers(0, 1000, log=produced), numbers(1000, 1000, log=produced)], max_in_flight=2, buffer=2
    )

    assert next(stream) == 0
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and len(produced) < 6:
        time.sleep(0.01)
    time.sleep(0.1)
    # Each chain is at most its buffer (plus the item being put) ahead of the consumer.
    assert len(produced) <= 8
    stream.close()


def test_an_error_is_raised_where_its_chain_is_reached_after_earlier_items():
    def broken() -> Iterator[int]:
        yield 10
        raise RuntimeError("page 2 failed")

    stream = chain_in_order([numbers(0, 3), broken, numbers(20, 3)], max_in_flight=3)

    assert [next(stream) for _ in range(4)] == [0, 1, 2, 10]
    with pytest.raises(RuntimeError, match="page 2 failed"):
        next(stream)


def test_closing_early_stops_the_workers_and_starts_no_new_chains():
    log: list[int] = []
    producers = [numbers(1000 * n, 100_000, log=log) for n in range(6)]

    stream = chain_in_order(producers, max_in_flight=2, buffer=1)
    assert next(stream) == 0
    stream.close()
    produced = len(log)
    time.sleep(0.3)

    assert len(log) == produced  # nothing runs on after close
    assert not any(value >= 2000 for value in log)  # chains beyond the first two never started
