"""One settings style: every hook reads its connection once into a frozen ``<Vendor>Settings``
dataclass (its ``settings`` property), extras through the shared reader, errors naming form labels."""

from __future__ import annotations

import dataclasses

import pytest

from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.hooks.afas import AfasSettings
from airflow_provider_ledgerlink.hooks.alasco import AlascoSettings
from airflow_provider_ledgerlink.hooks.cash import CashSettings
from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosSettings
from airflow_provider_ledgerlink.hooks.tripletex import TripletexSettings
from tests.unit.core.test_base_url import IDS, VENDORS, hook_with

SETTINGS = [AfasSettings, AlascoSettings, TripletexSettings, CashSettings, CloudPosSettings]


@pytest.mark.parametrize(("row", "settings_class"), list(zip(VENDORS, SETTINGS, strict=True)), ids=IDS)
def test_settings_are_a_frozen_dataclass_read_once(row, settings_class, monkeypatch):
    hook_class, fields, _, _ = row
    hook = hook_with(hook_class, fields, None)
    reads = []
    original = hook_class.extra
    monkeypatch.setattr(hook_class, "extra", lambda self, *args: reads.append(args) or original(self, *args))

    settings = hook.settings
    count = len(reads)
    assert hook.settings is settings and len(reads) == count  # built once
    assert type(settings) is settings_class
    assert settings_class.__name__ == hook_class.__name__.removesuffix("Hook") + "Settings"
    assert dataclasses.is_dataclass(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.base_url = "https://elsewhere.example"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("row", "extra", "label"),
    [
        (VENDORS[0], {"environment_id": "X1"}, "Environment"),
        (VENDORS[1], {"api": "crm"}, "API"),
        (VENDORS[2], {"consumer_token": "tripletex-consumer-2b7e", "company_id": "abc"}, "Client company id"),
        (VENDORS[4], {"daily_request_limit": "many"}, "Daily request limit"),
    ],
    ids=["AfasHook", "AlascoHook", "TripletexHook", "CloudPosHook"],
)
def test_a_bad_extra_is_named_by_its_form_label(row, extra, label):
    hook_class, fields, _, _ = row
    hook = hook_with(hook_class, {**fields, "extra": extra}, None)
    with pytest.raises(ConfigurationError) as raised:
        _ = hook.settings
    assert label.lower() in raised.value.hint.lower()
    assert "Edit the Airflow connection 'vendor_conn'" in raised.value.hint
