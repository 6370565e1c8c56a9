"""Several sequential streams read at once, delivered one after the other in their given order.

Cursor paging (Alasco's ``links.next``) cannot be parallelised within one chain: the next page's
address is only known once the current page arrived. A read can still be split into independent
chains (date ranges, chunks of an ``in`` list), and those can run side by side.
:func:`chain_in_order` runs up to ``max_in_flight`` chains in worker threads, each into a small
bounded buffer, and yields all items of chain 0, then of chain 1, and so on. Memory is bounded by
``max_in_flight × buffer`` items whatever the chains' lengths; an error in a chain is raised when
the consumer reaches that chain, after everything before it was delivered.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

Item = TypeVar("Item")

_ITEM, _END, _ERROR = 0, 1, 2
_POLL_SECONDS = 0.2


class _Chain:
    """One chain's bounded buffer, filled by a worker thread."""

    def __init__(self, produce: Callable[[], Iterator[Any]], buffer: int, stop: threading.Event) -> None:
        self.produce = produce
        self.buffer: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=buffer)
        self.stop = stop

    def _put(self, entry: tuple[int, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.buffer.put(entry, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        if self.stop.is_set():
            return
        try:
            iterator = self.produce()
            try:
                for item in iterator:
                    if not self._put((_ITEM, item)):
                        return
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, raised in its thread
            self._put((_ERROR, exc))
            return
        self._put((_END, None))

    def items(self) -> Iterator[Any]:
        while True:
            kind, value = self.buffer.get()
            if kind == _ITEM:
                yield value
            elif kind == _END:
                return
            else:
                raise value


def chain_in_order(
    producers: Sequence[Callable[[], Iterator[Item]]],
    *,
    max_in_flight: int = 1,
    buffer: int = 2,
    thread_name: str = "ledgerlink-chain",
) -> Iterator[Item]:
    """Yield every item of ``producers[0]()``, then of ``producers[1]()``, …

    With ``max_in_flight`` above 1, the next chains are already being read (each at most ``buffer``
    items ahead) while the consumer works through the current one. Closing the generator early
    stops the workers after their current item.
    """
    if max_in_flight <= 1 or len(producers) <= 1:
        for produce in producers:
            yield from produce()
        return
    stop = threading.Event()
    chains = [_Chain(produce, max(1, buffer), stop) for produce in producers]
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix=thread_name) as pool:
        started = 0
        try:
            for index, chain in enumerate(chains):
                # Keep the current chain and the next max_in_flight - 1 running.
                while started < len(chains) and started < index + max_in_flight:
                    pool.submit(chains[started].run)
                    started += 1
                yield from chain.items()
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
