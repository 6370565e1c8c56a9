"""A hostile Alasco that answers every write with an error echoing the request — the key and token
in plain text, URL-encoded and base64 — leaks neither through the write operators: not in the
exception, the task log, XCom (the returned summary and the ``results`` pushed on failure) or the
rendered fields. Reads pass through to the emulator, so each operator gets as far as its write."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_ledgerlink.core.errors import LedgerLinkError
from airflow_provider_ledgerlink.core.http import RetryPolicy
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook
from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.alasco import _pdf, alasco_connection_definition

from .harness import Answer, HostileProxy, Seen, assert_no_secret

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_elapsed=30)


def echo_writes(status: int) -> Any:
    """Answers writes (POST, PATCH) with ``status`` and the request echoed in every form; reads pass."""

    def rewrite(seen: Seen, answer: Answer) -> Answer:
        if seen.method not in ("POST", "PATCH"):
            return answer
        headers = json.dumps(seen.headers)
        key, token = seen.headers.get("X-API-KEY", ""), seen.headers.get("X-API-TOKEN", "")
        text = (
            f"cannot {seen.method} {seen.path}: headers {headers}; "
            f"url-encoded {quote(key, safe='')} {quote(token, safe='')}; "
            f"base64 {base64.b64encode(headers.encode()).decode()} {base64.b64encode(token.encode()).decode()}"
        )
        body = {
            "errors": [{"status": str(status), "title": "Rejected", "detail": text}],
            "detail": [{"loc": ["body", "data"], "msg": text, "type": "value_error"}],
            "message": text,
        }
        return Answer(status, {"Content-Type": "application/json"}, json.dumps(body).encode())

    return rewrite


class TaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _operators(sandbox: Sandbox, tmp_path: Path) -> dict[str, Any]:
    from airflow_provider_ledgerlink.operators.alasco import (
        AlascoRegisterPaymentOperator,
        AlascoSubmitInvoiceOperator,
        AlascoUpdateContractStatusOperator,
    )

    emulator = sandbox.alasco
    approved = next(
        i["id"]
        for i in emulator.resources("invoices", emulator.row_count("invoices") - 200)
        if i["attributes"]["invoice_process_state"] == "APPROVED"
    )
    pdf = tmp_path / "RE-1.pdf"
    pdf.write_bytes(_pdf("RE-1"))
    common = {"task_id": "write", "alasco_conn_id": "attack"}
    return {
        "payment": AlascoRegisterPaymentOperator(
            invoice_id=approved, amount_gross="10.00", payment_date="2026-11-19", **common
        ),
        "status": AlascoUpdateContractStatusOperator(
            contract_id=emulator.resources("contracts", 3, 4)[0]["id"], status="COMPLETED", **common
        ),
        "invoice": AlascoSubmitInvoiceOperator(
            project_id=emulator.resources("projects", 0, 1)[0]["id"],
            pdf_path=str(pdf),
            external_identifier="RE-1",
            **common,
        ),
    }


@pytest.mark.parametrize("status", [401, 422, 500])
@pytest.mark.parametrize("write", ["payment", "status", "invoice"])
def test_an_echoed_write_leaks_no_secret(
    sandbox_clean: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    write: str,
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx/httpcore DEBUG lines print headers as bytes
    state = MemoryState()
    monkeypatch.setattr("airflow_provider_ledgerlink.core.once.AirflowVariableState", lambda: state)
    with HostileProxy(rewrite_answer=echo_writes(status)) as proxy:
        definition = alasco_connection_definition(proxy.url_for(sandbox_clean.alasco_url), sandbox_clean.seed)
        monkeypatch.setenv("AIRFLOW_CONN_ATTACK", json.dumps(definition))
        operator = _operators(sandbox_clean, tmp_path)[write]
        operator.hook = AlascoHook("attack", retry=FAST)  # the 5xx retries of a read-back, quickly
        ti = TaskInstance()

        try:
            result: Any = operator.execute({"ti": ti})
            failure: Any = None
        except LedgerLinkError as error:
            result, failure = None, error

    secrets = [definition["login"], definition["password"]]
    writes = [seen for seen in proxy.seen if seen.method in ("POST", "PATCH")]
    assert writes, "the write never reached the hostile Alasco"
    assert secrets[1] in json.dumps(writes[0].headers)  # the echo did carry the token
    rendered = {name: getattr(operator, name, None) for name in operator.template_fields}
    if failure is None:
        # a 5xx after the write was applied (the proxy forwards, then answers in Alasco's place):
        # the check at Alasco finds the write, so the task succeeds, and only logs saw the echo
        assert status >= 500 and write != "invoice"
        assert result["failed"] == 0 and result[{"payment": "created", "status": "updated"}[write]] == 1
    else:
        summary = ti.pushed["results"]
        assert summary["failed"] + summary["in_doubt"] == 1  # refused, or in doubt after a 5xx
    assert_no_secret(failure, str(failure), caplog.text, ti.pushed, result, rendered, secrets=secrets)
