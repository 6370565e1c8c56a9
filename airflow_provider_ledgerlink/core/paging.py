"""Offset paging with several pages in flight, delivered in order.

Vendors that page by offset (AFAS skip/take, Tripletex from/count) do not say how many rows there
are, so the end is found by reading: the first page shorter than the page size is the last one.
:func:`fetch_pages` keeps up to ``max_in_flight`` page requests running ahead of the consumer and
hands pages over strictly in offset order. Memory is bounded by ``max_in_flight`` pages, whatever
the number of rows.

A vendor that ignores the offset (answers every request with the same page) would page forever and
fill the destination with duplicates. Every page is therefore compared with the one before it, and,
where the vendor reports a total, the offset with that total: a repeated page, or a full page a whole
page past the reported total, raises :class:`EndlessPagingError` naming the vendor and the operation.
The extract around the read then commits nothing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from airflow_provider_ledgerlink.core.errors import ConfigurationError, EndlessPagingError

Row = TypeVar("Row")


def check_page_size(vendor: str, operation: str, page_size: Any, *, field: str = "page_size") -> int:
    """``page_size`` as a positive int, or a :class:`ConfigurationError` saying what to give."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
        raise ConfigurationError(
            vendor,
            operation,
            f"{field}={page_size!r} is not a positive number of rows",
            hint=f"Give {field} a whole number of at least 1, or leave it out for the default",
        )
    return page_size


class PageGuard:
    """Refuses a page that repeats the previous one or lies a whole page past the reported total."""

    def __init__(
        self,
        vendor: str,
        operation: str,
        page_size: int,
        *,
        previous: list[Any] | None = None,
        total: int | None = None,
    ) -> None:
        self.vendor = vendor
        self.operation = operation
        self.page_size = page_size
        self.previous = previous
        self.total = total

    def check(self, offset: int, page: list[Any]) -> None:
        if page and self.previous is not None and len(page) == len(self.previous) and page == self.previous:
            raise EndlessPagingError(
                self.vendor,
                self.operation,
                f"the page at offset {offset} repeats the previous page row for row: the vendor ignores "
                "the paging offset, and reading on would never end",
                hint="Nothing was committed. Check the host (a proxy or an API version that drops the "
                "offset parameter) and the page size, then run again",
            )
        if page and self.total is not None and offset >= self.total + self.page_size:
            raise EndlessPagingError(
                self.vendor,
                self.operation,
                f"the vendor reported {self.total} rows in all but still sends rows at offset {offset}",
                hint="Nothing was committed. The vendor's paging is inconsistent; run again later, or "
                "read smaller windows",
            )
        self.previous = page


def fetch_pages(
    fetch_page: Callable[[int, int], list[Row]],
    *,
    page_size: int,
    max_in_flight: int = 1,
    start: int = 0,
    thread_name: str = "ledgerlink-page",
    vendor: str = "LedgerLink",
    operation: str = "paged read",
    previous: list[Row] | None = None,
    total: int | None = None,
) -> Iterator[list[Row]]:
    """Yield pages ``fetch_page(offset, page_size)`` for offsets ``start, start+size, …`` in order.

    Stops after the first page with fewer than ``page_size`` rows (an empty page included), so the
    consumer never sees a page past the end. Requests for pages beyond the end that were already in
    flight are discarded. An error fetching any page is raised when the consumer reaches that page,
    after the pages before it have been delivered.

    ``previous`` (the page before ``start``, when the caller read it) and ``total`` (the row count the
    vendor reported, if it does) arm the :class:`PageGuard`; ``vendor`` and ``operation`` name the
    read in its errors.
    """
    check_page_size(vendor, operation, page_size)
    guard = PageGuard(vendor, operation, page_size, previous=previous, total=total)
    if max_in_flight <= 1:
        offset = start
        while True:
            page = fetch_page(offset, page_size)
            guard.check(offset, page)
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
            offset = start
            while True:
                while len(pending) < 2 * max_in_flight:
                    pending.append(pool.submit(guarded, next_offset))
                    next_offset += page_size
                page = pending.popleft().result()
                guard.check(offset, page)
                offset += page_size
                if len(page) < page_size:
                    stop.set()
                    yield page
                    return
                yield page
        finally:
            stop.set()
            for future in pending:
                future.cancel()
