"""One read API: every hook names its row iterator ``get_rows`` and its page iterator ``get_pages``,
pages are the one core ``Page`` type, and the earlier names still work."""

from __future__ import annotations

import inspect

import pytest

from airflow_provider_ledgerlink.core.paging import Page, mark_last, pages_of_rows
from airflow_provider_ledgerlink.hooks import alasco, tripletex
from airflow_provider_ledgerlink.hooks.afas import AfasHook
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook
from airflow_provider_ledgerlink.hooks.cash import CashHook
from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosHook
from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook

HOOKS = [AfasHook, AlascoHook, CashHook, CloudPosHook, TripletexHook]

# The earlier public names of the row iterators (DESIGN.md), kept as aliases.
ALIASES = [
    (TripletexHook, "get_all"),
    (AlascoHook, "get_all"),
    (CashHook, "export_records"),
    (CashHook, "export_pages"),
]


@pytest.mark.parametrize("hook_class", HOOKS, ids=lambda c: c.__name__)
def test_every_hook_has_get_rows_and_get_pages_taking_what_to_read_first(hook_class):
    for name in ("get_rows", "get_pages"):
        parameters = list(inspect.signature(getattr(hook_class, name)).parameters.values())
        assert parameters[1].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD


@pytest.mark.parametrize(("hook_class", "name"), ALIASES, ids=lambda v: getattr(v, "__name__", v))
def test_the_earlier_names_remain(hook_class, name):
    assert callable(getattr(hook_class, name))
    assert "earlier name" in (getattr(hook_class, name).__doc__ or "")


def test_the_vendor_page_names_are_the_core_page():
    assert alasco.Page is Page
    assert tripletex.Page is Page


def test_a_page_is_a_list_of_its_rows_with_what_the_vendor_said():
    page = Page([{"id": 1}], offset=10, total=11, last=True, next=None, digest="abc")
    assert page == [{"id": 1}]
    assert page.rows is page and page.data is page
    assert (page.offset, page.total, page.last, page.digest, page.included) == (10, 11, True, "abc", [])
    assert "offset=10" in repr(page) and "last=True" in repr(page)


def test_alasco_style_construction_and_filtering_keep_working():
    page = Page(data=[{"id": "a"}, {"id": "b"}], included=[{"id": "x"}])
    page.next = "https://api.alasco.de/v1/invoices/?page[after]=b"
    page.data = [item for item in page.data if item["id"] == "b"]
    assert page == [{"id": "b"}]
    assert page.included == [{"id": "x"}]


def test_pages_of_rows_cut_rows_and_mark_the_last_page():
    pages = list(pages_of_rows(iter([{"n": n} for n in range(5)]), 2))
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [page.offset for page in pages] == [0, 2, 4]
    assert [page.last for page in pages] == [False, False, True]
    assert list(pages_of_rows(iter([]), 2)) == []
    exact = list(pages_of_rows(iter([{"n": 1}, {"n": 2}]), 2))
    assert [page.last for page in exact] == [True]


def test_mark_last_marks_only_the_final_page():
    pages = list(mark_last(iter([Page([{"n": 1}]), Page([{"n": 2}])])))
    assert [page.last for page in pages] == [False, True]
    assert list(mark_last(iter([]))) == []
