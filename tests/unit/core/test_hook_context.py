"""Every LedgerLink hook is a context manager that closes what it opened."""

from __future__ import annotations

import pytest

from airflow_provider_ledgerlink.hooks.afas import AfasHook
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook
from airflow_provider_ledgerlink.hooks.cash import CashHook
from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosHook
from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook


@pytest.mark.parametrize("hook_class", [AfasHook, AlascoHook, CashHook, CloudPosHook, TripletexHook])
def test_with_closes_the_hook_and_returns_it(hook_class, monkeypatch):
    closed = []
    monkeypatch.setattr(hook_class, "close", lambda self: closed.append(self))
    with hook_class() as hook:
        assert isinstance(hook, hook_class)
    assert closed == [hook]


def test_with_closes_the_hook_when_the_block_fails(monkeypatch):
    closed = []
    monkeypatch.setattr(AfasHook, "close", lambda self: closed.append(self))
    with pytest.raises(RuntimeError, match="boom"), AfasHook("afas_x"):
        raise RuntimeError("boom")
    assert len(closed) == 1


def test_a_hook_closed_twice_is_fine():
    hook = AfasHook("afas_x")
    hook.close()
    hook.close()
