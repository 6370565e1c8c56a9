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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from airflow_provider_ledgerlink.core.errors import ConfigurationError, EndlessPagingError

Row = TypeVar("Row")
#: What a page fetcher returns: a list of rows (a :class:`Page`, or any list).
Rows = TypeVar("Rows", bound=list[Any])


class Page(list[dict[str, Any]]):
    """One page of a read, as every LedgerLink hook's ``get_pages`` yields it: a list of its rows,
    plus what the vendor said about where it stands.

    :ivar offset: position of the page's first row in the read (offset paging: AFAS ``skip``,
        Tripletex ``from``; counted for the others), ``None`` when not known.
    :ivar total: rows in the whole read when known exactly, else ``None``. No vendor hook sets it
        today: Tripletex's ``fullResultSize`` is documented as not exact, so it is not used as one.
    :ivar last: ``True`` when the vendor said no page follows in this chain (a short page, no
        ``next`` link, the end of an export); ``False`` when more may follow.
    :ivar next: the vendor's link to the next page (cursor paging: Alasco ``links.next``), if any.
    :ivar included: related objects sent with the page (JSON:API ``included``: Alasco).
    :ivar digest: the page's checksum for "is it unchanged" requests (Tripletex ``versionDigest``).

    A ``Page`` is a list, so code that treats pages as lists of rows keeps working; :attr:`rows`
    (and :attr:`data`, Alasco's name) is the page itself.
    """

    def __init__(
        self,
        rows: Iterable[dict[str, Any]] = (),
        *,
        offset: int | None = None,
        total: int | None = None,
        last: bool = False,
        next: str | None = None,
        included: list[dict[str, Any]] | None = None,
        digest: str | None = None,
        data: Iterable[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(rows if data is None else data)
        self.offset = offset
        self.total = total
        self.last = last
        self.next = next
        self.included: list[dict[str, Any]] = list(included) if included else []
        self.digest = digest

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the page (the page itself)."""
        return self

    @property
    def data(self) -> list[dict[str, Any]]:
        """The rows of the page under JSON:API's name (Alasco's ``data``)."""
        return self

    @data.setter
    def data(self, rows: Iterable[dict[str, Any]]) -> None:
        self[:] = list(rows)

    def __repr__(self) -> str:
        known = {
            "offset": self.offset,
            "total": self.total,
            "last": self.last,
            "next": self.next,
            "digest": self.digest,
        }
        details = "".join(f", {key}={value!r}" for key, value in known.items() if value not in (None, False))
        if self.included:
            details += f", included={len(self.included)}"
        return f"Page({len(self)} rows{details})"


def pages_of_rows(
    rows: Iterable[dict[str, Any]], page_size: int, *, offset: int = 0, total: int | None = None
) -> Iterator[Page]:
    """``rows`` cut into :class:`Page` objects of ``page_size`` rows, the last one marked ``last``
    (one row is read ahead to know it). An empty ``rows`` gives no page."""
    page = Page(offset=offset, total=total)
    for row in rows:
        if len(page) >= page_size:
            yield page
            offset += len(page)
            page = Page(offset=offset, total=total)
        page.append(row)
    if page:
        page.last = True
        yield page


def mark_last(pages: Iterable[Page]) -> Iterator[Page]:
    """``pages`` with ``last`` set on the final one, known by reading one page ahead."""
    iterator = iter(pages)
    try:
        held = next(iterator)
    except StopIteration:
        return
    for page in iterator:
        yield held
        held = page
    held.last = True
    yield held


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
    fetch_page: Callable[[int, int], Rows],
    *,
    page_size: int,
    max_in_flight: int = 1,
    start: int = 0,
    thread_name: str = "ledgerlink-page",
    vendor: str = "LedgerLink",
    operation: str = "paged read",
    previous: list[Any] | None = None,
    total: int | None = None,
) -> Iterator[Rows]:
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

    def guarded(offset: int) -> Rows | None:
        if stop.is_set():  # the end was already found; do not spend a request
            return None
        page = fetch_page(offset, page_size)
        if len(page) < page_size:
            stop.set()  # at once, not when the consumer gets here: queued requests are not sent
        return page

    pending: deque[Future[Rows | None]] = deque()
    next_offset = start
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix=thread_name) as pool:
        try:
            offset = start
            while True:
                while len(pending) < 2 * max_in_flight:
                    pending.append(pool.submit(guarded, next_offset))
                    next_offset += page_size
                fetched = pending.popleft().result()
                if fetched is None:  # only past the end, which the consumer never reaches
                    return
                page = fetched
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
