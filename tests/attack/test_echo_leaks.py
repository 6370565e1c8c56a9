"""A vendor (or a proxy) that echoes the whole request back — URL, headers, body, in JSON, text and
Python repr — on an error: no secret reaches the exception, the task log or XCom, in any encoding."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.errors import LedgerLinkError
from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.alasco import alasco_connection_definition
from airflow_provider_ledgerlink.sandbox.connections import sandbox_connections
from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition

from .harness import HostileProxy, assert_no_secret, echo_request


def afas(sandbox: Sandbox, proxy: HostileProxy, lake: Path) -> tuple[dict[str, Any], Any, list[str]]:
    from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator

    definition = sandbox_connections(sandbox.url, sandbox.seed)["afas_default"]
    definition["host"] = proxy.url_for(sandbox.afas_url)
    operator = AfasExtractOperator(
        task_id="t",
        afas_conn_id="attack",
        connector_id="Profit_Transactions",
        destination=lake.as_uri(),
        incremental=False,
    )
    return definition, operator, [definition["password"]]


def tripletex(sandbox: Sandbox, proxy: HostileProxy, lake: Path) -> tuple[dict[str, Any], Any, list[str]]:
    from airflow_provider_ledgerlink.operators.tripletex import TripletexExtractOperator

    definition = tripletex_connection_definition(
        proxy.url_for(sandbox.tripletex_url), sandbox.seed, credential_store="none"
    )
    operator = TripletexExtractOperator(
        task_id="t",
        tripletex_conn_id="attack",
        resource="accounts",
        destination=lake.as_uri(),
        incremental=False,
    )
    return definition, operator, [definition["password"], definition["extra"]["consumer_token"]]


def alasco(sandbox: Sandbox, proxy: HostileProxy, lake: Path) -> tuple[dict[str, Any], Any, list[str]]:
    from airflow_provider_ledgerlink.operators.alasco import AlascoExtractOperator

    definition = alasco_connection_definition(proxy.url_for(sandbox.alasco_url), sandbox.seed)
    operator = AlascoExtractOperator(
        task_id="t",
        alasco_conn_id="attack",
        resource="projects",
        destination=lake.as_uri(),
        incremental=False,
    )
    return definition, operator, [definition["password"], definition["login"]]


VENDORS: dict[str, Callable[..., tuple[dict[str, Any], Any, list[str]]]] = {
    "afas": afas,
    "tripletex": tripletex,
    "alasco": alasco,
}


@pytest.mark.parametrize("status", [400, 401])
@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_an_echoed_request_leaks_no_secret(
    sandbox_clean: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    vendor: str,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx/httpcore DEBUG lines print headers as bytes
    with HostileProxy(rewrite_answer=echo_request(status)) as proxy:
        definition, operator, secrets = VENDORS[vendor](sandbox_clean, proxy, tmp_path / "lake")
        monkeypatch.setenv("AIRFLOW_CONN_ATTACK", json.dumps(definition))

        with pytest.raises(LedgerLinkError) as caught:
            operator.execute({})

    assert proxy.seen, "the hostile answer was never asked for"
    echoed = " ".join(f"{seen.path} {seen.headers} {seen.body!r}" for seen in proxy.seen)
    assert any(secret in echoed or secret[:8] in echoed for secret in secrets) or "uthorization" in echoed
    rendered = {name: getattr(operator, name, None) for name in operator.template_fields}
    assert_no_secret(caught.value, str(caught.value), caplog.text, rendered, secrets=secrets)
    assert not list((tmp_path / "lake").rglob("_manifest*.json"))


@pytest.mark.parametrize(
    "form",
    [
        lambda s: s,
        lambda s: __import__("urllib.parse").parse.quote(s, safe=""),
        lambda s: __import__("base64").b64encode(("0:" + s).encode()).decode(),
        lambda s: json.dumps({"t": s}),
    ],
    ids=["raw", "url", "base64", "json"],
)
def test_the_leak_check_itself_catches_an_encoded_secret(form: Callable[[str], str]) -> None:
    secret = "leak-check&secret/42+x"
    with pytest.raises(AssertionError, match="a secret leaked"):
        assert_no_secret({"event": [f"before {form(secret)} after"]}, secrets=[secret])
