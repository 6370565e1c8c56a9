"""The base extract operator keeps the process's existing objects out of the garbage collector's
full passes while it runs, and always gives them back."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window
from airflow_provider_ledgerlink.core.sinks import read_rows


class ListExtractOperator(LedgerLinkExtractOperator):
    vendor = "Test vendor"

    def __init__(self, *, pages: list[list[dict[str, Any]]], fail_after: int | None = None, **kwargs: Any):
        super().__init__(object_name="things", conn_id="test", incremental=False, **kwargs)
        self.pages = pages
        self.fail_after = fail_after
        self.freeze_counts: list[int] = []

    def object_label(self) -> str:
        return "things"

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        for number, page in enumerate(self.pages):
            if number == self.fail_after:
                raise RuntimeError("the source went away")
            self.freeze_counts.append(gc.get_freeze_count())
            yield page


@pytest.fixture(autouse=True)
def nothing_frozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


PAGES = [[{"id": 1}, {"id": 2}], [{"id": 3}]]


def test_existing_objects_are_frozen_during_the_extract_and_released_after(tmp_path: Path) -> None:
    operator = ListExtractOperator(task_id="extract", destination=str(tmp_path), pages=PAGES)
    summary = operator.execute({})  # type: ignore[arg-type]

    assert operator.freeze_counts and all(count > 0 for count in operator.freeze_counts)
    assert gc.get_freeze_count() == 0
    assert list(read_rows(Path(summary["folder"]))) == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_a_failing_extract_releases_the_frozen_objects_too(tmp_path: Path) -> None:
    operator = ListExtractOperator(task_id="extract", destination=str(tmp_path), pages=PAGES, fail_after=1)
    with pytest.raises(RuntimeError, match="went away"):
        operator.execute({})  # type: ignore[arg-type]

    assert operator.freeze_counts[0] > 0
    assert gc.get_freeze_count() == 0


def test_objects_someone_else_froze_are_left_frozen(tmp_path: Path) -> None:
    gc.freeze()
    frozen_before = gc.get_freeze_count()
    operator = ListExtractOperator(task_id="extract", destination=str(tmp_path), pages=PAGES)
    operator.execute({})  # type: ignore[arg-type]

    # Neither unfrozen nor frozen further (the count only drops as frozen objects are freed).
    assert len(operator.freeze_counts) == 2
    assert all(0 < count <= frozen_before for count in operator.freeze_counts)
    assert 0 < gc.get_freeze_count() <= frozen_before


class _Hook:
    """Counts how often it is closed."""

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class HookedExtractOperator(ListExtractOperator):
    @cached_property
    def hook(self) -> _Hook:
        return _Hook()

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        self.hook  # noqa: B018 - the read opens the hook, as a vendor operator's does
        yield from super().extract_pages(window)


@pytest.mark.parametrize("fail_after", [None, 1], ids=["success", "failure"])
def test_the_base_closes_the_hook_once_whatever_the_outcome(tmp_path: Path, fail_after: int | None) -> None:
    operator = HookedExtractOperator(
        task_id="extract", destination=str(tmp_path), pages=PAGES, fail_after=fail_after
    )
    if fail_after is None:
        operator.execute({})  # type: ignore[arg-type]
    else:
        with pytest.raises(RuntimeError, match="went away"):
            operator.execute({})  # type: ignore[arg-type]
    assert operator.hook.closed == 1


def test_an_extract_that_never_opened_its_hook_does_not_open_one_to_close_it(tmp_path: Path) -> None:
    operator = HookedExtractOperator(task_id="extract", destination="relative/path", pages=PAGES)
    with pytest.raises(Exception, match="relative"):
        operator.execute({})  # type: ignore[arg-type]
    assert "hook" not in operator.__dict__
