"""Offset paging with several pages in flight, delivered in order.

Vendors that page by offset (AFAS skip/take, Tripletex from/count) do not say how many rows there
are, so the end is found by reading: the first page shorter than the page size is the last one.
:func:`fetch_pages` keeps up to ``max_in_flight`` page requests running ahead of the consumer and
hands pages over strictly in offset order. Memory is bounded by ``max_in_flight`` pages, whatever
the number of rows.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Row = TypeVar("Row")


def fetch_pages(
    fetch_page: Callable[[int, int], list[Row]],
    *,
    page_size: int,
    max_in_flight: int = 1,
    start: int = 0,
    thread_name: str = "ledgerlink-page",
) -> Iterator[list[Row]]:
    """Yield pages ``fetch_page(offset, page_size)`` for offsets ``start, start+size, …`` in order.

    Stops after the first page with fewer than ``page_size`` rows (an empty page included), so the
    consumer never sees a page past the end. Requests for pages beyond the end that were already in
    flight are discarded. An error fetching any page is raised when the consumer reaches that page,
    after the pages before it have been delivered.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    if max_in_flight <= 1:
        offset = start
        while True:
            page = fetch_page(offset, page_size)
            yield page
            if len(page) < page_size:
                return
            offset += page_size

    stop = threading.Event()

    def guarded(offset: int) -> list[Row]:
        if stop.is_set():  # the end was already found; do not spend a request
            return []
        page = fetch_page(offset, page_size)
        if len(page) < page_size:
            stop.set()  # at once, not when the consumer gets here: queued requests are not sent
        return page

    pending: deque[Future[list[Row]]] = deque()
    next_offset = start
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix=thread_name) as pool:
        try:
            while True:
                while len(pending) < 2 * max_in_flight:
                    pending.append(pool.submit(guarded, next_offset))
                    next_offset += page_size
                page = pending.popleft().result()
                if len(page) < page_size:
                    stop.set()
                    yield page
                    return
                yield page
        finally:
            stop.set()
            for future in pending:
                future.cancel()
