"""A vendor that ignores the paging offset (a proxy that drops it): the read stops with an error
naming the vendor and operation, and the extract commits nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.errors import EndlessPagingError
from airflow_provider_ledgerlink.core.paging import fetch_pages
from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator
from airflow_provider_ledgerlink.operators.tripletex import TripletexExtractOperator
from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.connections import sandbox_connections
from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition

from .harness import HostileProxy


def no_manifest(root: Path) -> bool:
    return not list(root.rglob("_manifest*.json")) and not list(root.rglob("part-*"))


@pytest.mark.parametrize("max_in_flight", [1, 4])
def test_afas_ignoring_skip_stops_and_commits_nothing(
    sandbox_clean: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, max_in_flight: int
) -> None:
    with HostileProxy(rewrite_path=lambda path: re.sub(r"skip=\d+", "skip=0", path)) as proxy:
        definition = sandbox_connections(sandbox_clean.url, sandbox_clean.seed)["afas_default"]
        definition["host"] = proxy.url_for(sandbox_clean.afas_url)
        monkeypatch.setenv("AIRFLOW_CONN_AFAS_HOSTILE", json.dumps(definition))
        operator = AfasExtractOperator(
            task_id="transactions",
            afas_conn_id="afas_hostile",
            connector_id="Profit_Transactions",
            destination=(tmp_path / "lake").as_uri(),
            incremental=False,
            page_size=50,
            max_in_flight=max_in_flight,
        )

        with pytest.raises(
            EndlessPagingError, match=r"AFAS Profit GetConnector Profit_Transactions failed: .*repeats"
        ):
            operator.execute({})

    assert len(proxy.seen) <= 2 + 2 * max_in_flight  # stopped at the first repeat, not after thousands
    assert no_manifest(tmp_path / "lake")


def test_tripletex_ignoring_from_stops_and_commits_nothing(
    sandbox_clean: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with HostileProxy(rewrite_path=lambda path: re.sub(r"from=\d+", "from=0", path)) as proxy:
        definition = tripletex_connection_definition(
            proxy.url_for(sandbox_clean.tripletex_url), sandbox_clean.seed, credential_store="none"
        )
        monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_HOSTILE", json.dumps(definition))
        operator = TripletexExtractOperator(
            task_id="accounts",
            tripletex_conn_id="tripletex_hostile",
            resource="accounts",
            destination=(tmp_path / "lake").as_uri(),
            incremental=False,
            page_size=10,
        )

        with pytest.raises(EndlessPagingError, match=r"Tripletex GET /ledger/account failed: .*repeats"):
            operator.execute({})

    assert no_manifest(tmp_path / "lake")


def test_a_page_past_the_reported_total_stops_the_read() -> None:
    def fetch(offset: int, size: int) -> list[dict[str, Any]]:
        return [{"id": offset + i} for i in range(size)]  # never ends, never repeats

    pages = fetch_pages(fetch, page_size=10, vendor="Vendor", operation="GET /rows", total=25)
    with pytest.raises(EndlessPagingError, match="Vendor GET /rows failed: the vendor reported 25 rows"):
        list(pages)


@pytest.mark.parametrize("max_in_flight", [1, 3])
def test_a_repeated_page_is_refused_by_the_core_pager(max_in_flight: int) -> None:
    calls: list[int] = []

    def fetch(offset: int, size: int) -> list[dict[str, Any]]:
        calls.append(offset)
        return [{"id": i} for i in range(size)]  # ignores the offset

    with pytest.raises(EndlessPagingError, match="Vendor GET /rows failed: the page at offset 10 repeats"):
        list(
            fetch_pages(
                fetch, page_size=10, vendor="Vendor", operation="GET /rows", max_in_flight=max_in_flight
            )
        )
    assert len(calls) <= 2 + 2 * max_in_flight
