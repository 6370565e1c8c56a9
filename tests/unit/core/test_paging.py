"""``fetch_pages``: several offset pages in flight, handed over strictly in order, ending at the first
short page, never more requests at once than allowed."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.paging import fetch_pages


class FakeVendor:
    """Serves ``total`` numbered rows by offset; records calls and how many ran at the same time."""

    def __init__(self, total: int, *, delay: float = 0.0) -> None:
        self.total = total
        self.delay = delay
        self.offsets: list[int] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, offset: int, size: int) -> list[int]:
        with self._lock:
            self.offsets.append(offset)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            return list(range(offset, min(offset + size, self.total)))
        finally:
            with self._lock:
                self.in_flight -= 1


def rows_of(pages: list[list[int]]) -> list[int]:
    return [row for page in pages for row in page]


@pytest.mark.parametrize("max_in_flight", [1, 3])
def test_all_rows_arrive_once_and_in_order(max_in_flight: int) -> None:
    vendor = FakeVendor(total=95)

    pages = list(fetch_pages(vendor, page_size=10, max_in_flight=max_in_flight))

    assert rows_of(pages) == list(range(95))
    assert [len(page) for page in pages] == [10] * 9 + [5]


def test_pages_are_delivered_in_offset_order_even_when_later_pages_finish_first() -> None:
    # Each of the first four pages waits until the next one has finished: they finish 30, 20, 10, 0.
    finished = {offset: threading.Event() for offset in range(0, 200, 10)}
    finish_order: list[int] = []

    def reversed_fetch(offset: int, size: int) -> list[int]:
        if offset < 30:
            assert finished[offset + 10].wait(timeout=5)
        finish_order.append(offset)
        finished[offset].set()
        return list(range(offset, min(offset + size, 55)))

    pages = list(fetch_pages(reversed_fetch, page_size=10, max_in_flight=4))

    assert finish_order.index(30) < finish_order.index(20) < finish_order.index(10) < finish_order.index(0)
    assert [page[0] for page in pages] == [0, 10, 20, 30, 40, 50]


def test_paging_stops_at_the_first_short_page() -> None:
    vendor = FakeVendor(total=25)

    pages = list(fetch_pages(vendor, page_size=10))

    assert [len(page) for page in pages] == [10, 10, 5]
    assert vendor.offsets == [0, 10, 20]


def test_paging_stops_at_an_empty_page_when_the_rows_fill_the_last_page_exactly() -> None:
    vendor = FakeVendor(total=30)

    pages = list(fetch_pages(vendor, page_size=10))

    assert [len(page) for page in pages] == [10, 10, 10, 0]


def test_no_rows_at_all_gives_one_empty_page() -> None:
    pages = list(fetch_pages(FakeVendor(total=0), page_size=10, max_in_flight=3))

    assert pages == [[]]


def test_nothing_past_the_first_short_page_is_yielded_even_if_the_vendor_sends_more() -> None:
    def inconsistent(offset: int, size: int) -> list[int]:
        # A short page at offset 20, then full pages again: the end is still at offset 20.
        return [offset] * (3 if offset == 20 else size)

    pages = list(fetch_pages(inconsistent, page_size=10, max_in_flight=4))

    assert [len(page) for page in pages] == [10, 10, 3]


def test_paging_starts_at_the_given_offset() -> None:
    vendor = FakeVendor(total=35)

    pages = list(fetch_pages(vendor, page_size=10, start=20, max_in_flight=2))

    assert rows_of(pages) == list(range(20, 35))


def test_sequential_mode_makes_one_call_at_a_time_and_no_call_past_the_end() -> None:
    vendor = FakeVendor(total=25, delay=0.002)

    list(fetch_pages(vendor, page_size=10, max_in_flight=1))

    assert vendor.peak_in_flight == 1
    assert vendor.offsets == [0, 10, 20]


def test_never_more_than_max_in_flight_calls_at_once() -> None:
    vendor = FakeVendor(total=400, delay=0.005)

    pages = list(fetch_pages(vendor, page_size=10, max_in_flight=3))

    assert len(rows_of(pages)) == 400
    assert 2 <= vendor.peak_in_flight <= 3


def test_calls_ahead_of_the_end_are_bounded_by_max_in_flight() -> None:
    vendor = FakeVendor(total=25, delay=0.002)

    list(fetch_pages(vendor, page_size=10, max_in_flight=3))

    # Offsets 0, 10, 20 hold rows; at most max_in_flight requests went beyond them.
    assert len(vendor.offsets) <= 3 + 3
    assert sorted(vendor.offsets)[:3] == [0, 10, 20]


@pytest.mark.parametrize("max_in_flight", [1, 4])
def test_an_error_in_a_page_is_raised_after_the_pages_before_it(max_in_flight: int) -> None:
    def failing_at_30(offset: int, size: int) -> list[int]:
        if offset == 30:
            raise RuntimeError("page 30 failed")
        time.sleep(0.002 if offset < 30 else 0)  # later pages (and the failure) finish first
        return list(range(offset, offset + size))

    delivered: list[list[int]] = []
    with pytest.raises(RuntimeError, match="page 30 failed"):
        for page in fetch_pages(failing_at_30, page_size=10, max_in_flight=max_in_flight):
            delivered.append(page)

    assert [page[0] for page in delivered] == [0, 10, 20]


def test_an_error_in_a_page_past_the_end_is_ignored() -> None:
    def short_at_10_then_failing(offset: int, size: int) -> list[int]:
        if offset > 10:
            raise RuntimeError("past the end")
        time.sleep(0.005)  # the failing requests ahead finish first
        return list(range(offset, offset + (size if offset == 0 else 4)))

    pages = list(fetch_pages(short_at_10_then_failing, page_size=10, max_in_flight=4))

    assert [len(page) for page in pages] == [10, 4]


def test_closing_the_generator_early_stops_further_fetches() -> None:
    vendor = FakeVendor(total=10_000, delay=0.002)
    pages = fetch_pages(vendor, page_size=10, max_in_flight=3)

    for n, _page in enumerate(pages):
        if n == 1:
            break
    pages.close()  # what happens when the consumer drops the generator
    calls_when_closed = len(vendor.offsets)
    time.sleep(0.05)

    assert len(vendor.offsets) == calls_when_closed
    # the two consumed pages plus at most 2 × max_in_flight ahead (running and queued)
    assert calls_when_closed <= 2 + 2 * 3
    assert vendor.in_flight == 0


def test_a_page_size_below_one_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match=r"AFAS Profit GetConnector X failed: page_size=0 .*at least 1"
    ):
        next(fetch_pages(FakeVendor(total=5), page_size=0, vendor="AFAS Profit", operation="GetConnector X"))
