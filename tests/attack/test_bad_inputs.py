"""Bad connections and arguments: each gives an error naming the vendor, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.http import HttpClient, check_base_url, is_loopback
from airflow_provider_ledgerlink.core.paging import fetch_pages
from airflow_provider_ledgerlink.core.sinks import JsonLinesSink

VENDOR_CONNECTIONS = {
    "afas": (
        "AIRFLOW_CONN_AFAS_DEFAULT",
        "airflow_provider_ledgerlink.hooks.afas",
        "AfasHook",
        "afas_default",
    ),
    "tripletex": (
        "AIRFLOW_CONN_TRIPLETEX_DEFAULT",
        "airflow_provider_ledgerlink.hooks.tripletex",
        "TripletexHook",
        "tripletex_default",
    ),
    "cloudpos": (
        "AIRFLOW_CONN_CLOUDPOS_DEFAULT",
        "airflow_provider_ledgerlink.hooks.cloudpos",
        "CloudPosHook",
        "cloudpos_default",
    ),
    "alasco": (
        "AIRFLOW_CONN_ALASCO_DEFAULT",
        "airflow_provider_ledgerlink.hooks.alasco",
        "AlascoHook",
        "alasco_default",
    ),
    "cash": (
        "AIRFLOW_CONN_CASH_DEFAULT",
        "airflow_provider_ledgerlink.hooks.cash",
        "CashHook",
        "cash_default",
    ),
}


def hook_with_extra(vendor: str, extra: str) -> object:
    import importlib
    from types import SimpleNamespace

    _variable, module, name, conn_id = VENDOR_CONNECTIONS[vendor]
    hook = getattr(importlib.import_module(module), name)(conn_id)
    # As Airflow hands it over: the raw text of the extra (its own parse of it gives {}).
    hook.__dict__["raw_connection"] = SimpleNamespace(
        conn_id=conn_id,
        conn_type=f"ledgerlink_{vendor}",
        host="https://vendor.invalid",
        login=None,
        password=None,
        schema=None,
        port=None,
        extra=extra,
        extra_dejson={},
    )
    return hook


@pytest.mark.parametrize("vendor", sorted(VENDOR_CONNECTIONS))
@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('{"limit": 3,}', "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply|not valid JSON"),
        ('["limit", 3]', "not an object"),
    ],
    ids=["trailing-comma", "deeply-nested", "a-list"],
)
def test_an_extra_that_is_not_a_json_object_is_named(vendor: str, extra: str, problem: str) -> None:
    hook = hook_with_extra(vendor, extra)

    with pytest.raises(ConfigurationError, match=problem) as caught:
        hook.extra("anything")  # type: ignore[attr-defined]

    assert caught.value.vendor == hook.vendor  # type: ignore[attr-defined]
    assert "Extra" in str(caught.value) and "Edit the Airflow connection" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1", "not a valid URL"),
        ("https://user:pa55word@vendor.example", "user name or password"),
        ("http://vendor.example", "plain http"),
        ("http://10.0.0.7:8080", "plain http"),
        ("ftp://vendor.example", "not an http"),
        ("https://", "names no server"),
        ("https://vendor.example:notaport", "not a valid URL"),
    ],
)
def test_an_unusable_host_is_refused_before_any_request(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as caught:
        HttpClient(vendor="Tripletex", base_url=url)

    assert str(caught.value).startswith("Tripletex connecting failed")
    assert "pa55word" not in str(caught.value)
    assert "Edit the connection's Host" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://localhost/x",
        "http://[::1]:9000",
        "http://127.5.6.7",
        "https://a.example",
    ],
)
def test_loopback_may_be_plain_http_and_anything_may_be_https(url: str) -> None:
    assert check_base_url("AFAS Profit", url) == url


def test_loopback_is_recognised_exactly() -> None:
    assert is_loopback("LOCALHOST") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("localhost.example.com") and not is_loopback("128.0.0.1")


@pytest.mark.parametrize("level", [10, -1, "9", 1.5, True])
def test_a_gzip_level_out_of_range_is_refused_and_leaves_no_part(tmp_path: Path, level: object) -> None:
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(f"file://{tmp_path}/out")
    with pytest.raises(
        ConfigurationError, match=r"AFAS Profit writing the extract failed: compresslevel=.*0 .*9"
    ):
        JsonLinesSink(folder, compresslevel=level, vendor="AFAS Profit")  # type: ignore[arg-type]

    assert not list(tmp_path.rglob("part-*"))


@pytest.mark.parametrize("size", [0, -5, "100", None])
def test_a_page_size_below_one_is_refused_before_any_request(size: object) -> None:
    asked: list[int] = []

    def fetch(offset: int, take: int) -> list[int]:
        asked.append(offset)
        return []

    with pytest.raises(
        ConfigurationError, match=r"Tripletex GET /ledger/posting failed: page_size=.*at least 1"
    ):
        next(fetch_pages(fetch, page_size=size, vendor="Tripletex", operation="GET /ledger/posting"))  # type: ignore[arg-type]
    assert asked == []


class _Extract:
    @staticmethod
    def make(destination: object, **kwargs: object) -> object:
        from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator

        return AfasExtractOperator(
            task_id="t", connector_id="Profit_Transactions", destination=destination, **kwargs
        )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ("", "names no folder"),
        ("   ", "names no folder"),
        (None, "names no folder"),
        ("lake/afas", "is relative"),
        ("./lake", "is relative"),
    ],
)
def test_an_unusable_destination_is_named(destination: object, problem: str) -> None:
    operator = _Extract.make(destination)
    with pytest.raises(ConfigurationError, match=problem) as caught:
        operator.output_folder(None)  # type: ignore[attr-defined]
    assert str(caught.value).startswith("AFAS Profit extract Profit_Transactions failed: destination")
    assert "absolute folder URI" in str(caught.value)


def test_a_destination_that_is_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for destination in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(ConfigurationError, match=r"is a file|below the file"):
            _Extract.make(destination.as_uri()).output_folder(None)  # type: ignore[attr-defined]


def test_a_destination_that_is_not_writable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    # As a user without write access sees it (root, which these tests may run as, may write anywhere).
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(locked))
    with pytest.raises(ConfigurationError, match=r"not writable .*locked does not allow"):
        _Extract.make(str(locked / "lake")).output_folder(None)  # type: ignore[attr-defined]


@pytest.mark.parametrize("moment", ["9999-12-31T00:00:00", "0001-01-01", "3000-01-01T00:00:00Z"])
def test_a_window_in_an_impossible_year_is_named(moment: str) -> None:
    operator = _Extract.make("/tmp/lake", modified_field="Modified", window_start=moment, window_end=moment)
    with pytest.raises(ConfigurationError, match=r"window_start=.* is in the year .*between 1900 and 2999"):
        operator.resolve_window()  # type: ignore[attr-defined]


def test_afas_rows_that_are_not_objects_are_named() -> None:
    import httpx

    from airflow_provider_ledgerlink.core.errors import VendorError
    from airflow_provider_ledgerlink.hooks.afas import _rows_of

    response = httpx.Response(200, json={"skip": 0, "take": 3, "rows": [{"a": 1}, "b", 3]})
    with pytest.raises(
        VendorError, match="AFAS Profit GetConnector X failed: row 1 of the answer's 'rows' is a str"
    ):
        _rows_of(response, "GetConnector X")
