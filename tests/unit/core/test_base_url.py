"""One rule for every vendor's host override (core/hook.py ``base_url_from_connection``): https only,
except to this machine; no user name or password in it; errors name the vendor, the form's label of
the field and the fix."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook, base_url_from_connection, form_wording
from airflow_provider_ledgerlink.hooks.afas import AfasHook
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook
from airflow_provider_ledgerlink.hooks.cash import CashHook
from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosHook
from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook

TOKEN_XML = "<token><version>1</version><data>" + "A" * 64 + "</data></token>"

# hook class, connection fields besides the host, how to read its address, its address by default
VENDORS: list[tuple[type[LedgerLinkHook], dict[str, Any], Any, str]] = [
    (
        AfasHook,
        {"password": TOKEN_XML, "extra": {"environment_id": "O12345AA"}},
        lambda hook: hook.base_url,
        "https://12345.rest.afas.online/ProfitRestServices",
    ),
    (
        AlascoHook,
        {"login": "alasco-key-7f3a9c", "password": "alasco-token-5d21e8b4"},
        lambda hook: hook.base_url,
        "https://api.alasco.de/fincon/v1",
    ),
    (
        TripletexHook,
        {"password": "tripletex-employee-91c4", "extra": {"consumer_token": "tripletex-consumer-2b7e"}},
        lambda hook: hook.base_url,
        "https://tripletex.no/v2",
    ),
    (
        CashHook,
        {
            "login": "api@example.com",
            "password": "cash-password-6e0f13",
            "extra": {"relation_number": "1", "administration_code": "A", "administration_map": "1"},
        },
        lambda hook: hook.settings.wsdl_url,
        "https://www.cashweb.nl/?api/3.0/wsdl",
    ),
    (
        CloudPosHook,
        {"login": "licence", "password": "cloudpos-token-a84c02"},
        lambda hook: hook.settings.base_url,
        "https://cloudpos.be/api/",
    ),
]
IDS = [row[0].__name__ for row in VENDORS]


def hook_with(hook_class: type[LedgerLinkHook], fields: dict[str, Any], host: str | None) -> Any:
    connection = SimpleNamespace(
        conn_id="vendor_conn",
        conn_type=hook_class.conn_type,
        host=host,
        login=fields.get("login"),
        password=fields.get("password"),
        schema=None,
        port=None,
        extra=json.dumps(fields.get("extra", {})),
        extra_dejson=fields.get("extra", {}),
    )
    hook = hook_class("vendor_conn")  # type: ignore[call-arg]
    hook.__dict__["raw_connection"] = hook.__dict__["connection"] = connection
    return hook


@pytest.mark.parametrize(("hook_class", "fields", "address", "default"), VENDORS, ids=IDS)
def test_an_empty_host_gives_the_vendors_address(hook_class, fields, address, default):
    assert address(hook_with(hook_class, fields, None)) == default
    assert address(hook_with(hook_class, fields, "  ")) == default


@pytest.mark.parametrize(("hook_class", "fields", "address", "default"), VENDORS, ids=IDS)
def test_a_loopback_host_may_be_plain_http(hook_class, fields, address, default):
    assert address(hook_with(hook_class, fields, "http://127.0.0.1:8765/x")).startswith(
        "http://127.0.0.1:8765/x"
    )


@pytest.mark.parametrize(("hook_class", "fields", "address", "default"), VENDORS, ids=IDS)
@pytest.mark.parametrize(
    ("host", "problem", "fix"),
    [
        ("http://vendor.example", "plain http", "use https://"),
        ("http://10.0.0.7:8080/api", "plain http", "use https://"),
        ("https://user:pa55word@vendor.example", "user name or password", "remove 'user:password@'"),
        ("ftp://vendor.example", "not an http(s) URL", "give it as https://name"),
        ("https://vendor.example:notaport", "not a valid URL", "give it as https://name"),
    ],
)
def test_an_unsafe_host_is_refused_naming_vendor_field_and_fix(
    hook_class, fields, address, default, host, problem, fix
):
    hook = hook_with(hook_class, fields, host)
    with pytest.raises(ConfigurationError) as raised:
        address(hook)
    text = str(raised.value)
    assert raised.value.vendor == hook_class.vendor
    assert problem in text and fix in text
    label = form_wording(hook_class.conn_type, "Host")  # the field, as the form labels it
    assert label != "Host" and label in raised.value.hint
    assert "vendor_conn" in text
    assert "pa55word" not in text


@pytest.mark.parametrize(("hook_class", "fields", "address", "default"), VENDORS, ids=IDS)
def test_a_host_without_scheme_is_https(hook_class, fields, address, default):
    assert address(hook_with(hook_class, fields, "proxy.example")).startswith("https://proxy.example/")


def test_the_function_itself():
    assert base_url_from_connection("V", "", "https://v.example/api") == "https://v.example/api"
    assert base_url_from_connection("V", None, lambda: "https://lazy.example") == "https://lazy.example"
    assert (
        base_url_from_connection("V", "proxy.example/", "x", complete=lambda url: url.rstrip("/") + "/v2")
        == "https://proxy.example/v2"
    )
    with pytest.raises(ConfigurationError, match="V connecting failed: plain http"):
        base_url_from_connection("V", "http://v.example", "x")
