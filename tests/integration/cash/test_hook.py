"""CashHook against the CASH emulator over real localhost HTTP: the WSDL read from the host, exports
into typed rows, imports that wait for CASHWin, errors, faults, rate limits and secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    ValidationError,
)
from airflow_provider_ledgerlink.hooks.cash import (
    ERROR,
    PENDING,
    SUCCESS,
    CashHook,
    ImportPayload,
    StatusOperationMissingError,
    UnsafeXmlError,
    build_import,
)
from airflow_provider_ledgerlink.sandbox.cash import cash_connection_definition, sandbox_cash_password
from airflow_provider_ledgerlink.sandbox.faults import reset_fault, status_fault

PASSWORD = sandbox_cash_password(42)


def journal_entry(document: int, amount: str = "121,00", account: str = "8000") -> list[dict[str, Any]]:
    common = {"booking_date": "2026-11-19", "journal": "MM", "document_number": document}
    return [
        {**common, "ledger_account": "1100", "amount": amount, "description": "Kassa"},
        {**common, "ledger_account": account, "amount": "-" + amount, "description": "Omzet"},
    ]


def soap_calls(sandbox: Any) -> int:
    return sum(
        count
        for key, statuses in sandbox.stats["cash"]["by_path"].items()
        if key.startswith("POST")
        for count in statuses.values()
    )


@pytest.fixture
def hook(cash_connection: str) -> Any:
    created = CashHook(cash_connection)
    yield created
    created.close()


def wait_until_processed(hook: CashHook, transaction_id: str, seconds: float = 10.0) -> Any:
    """Through the status operation (the tests that use it switch the option on)."""
    deadline = time.monotonic() + seconds
    while True:
        transaction = hook.get_transaction(transaction_id)
        if transaction.status != PENDING or time.monotonic() > deadline:
            return transaction
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------------
# The service description and the connection
# ------------------------------------------------------------------------------------------------
def test_the_operations_come_from_the_wsdl_on_the_host(hook: CashHook) -> None:
    # The operations CASH's documents and clients show: no status operation.
    assert hook.operations == ["Cash.export", "Cash.import"]
    assert hook.status_operation is None


def test_a_status_operation_is_used_only_when_the_wsdl_offers_it(
    cash_connection: str, sandbox_clean: Any
) -> None:
    sandbox_clean.cash.offers_transaction_status = True
    hook = CashHook(cash_connection)
    try:
        assert hook.operations == ["Cash.export", "Cash.getTransaction", "Cash.import"]
        assert hook.status_operation == "Cash.getTransaction"
    finally:
        hook.close()


def test_test_connection_reports_the_account_and_the_operations(hook: CashHook) -> None:
    ok, message = hook.test_connection()

    assert ok, message
    assert "relation 25583" in message and "DEMO/1570" in message
    assert "3 journals" in message
    assert PASSWORD not in message


def test_test_connection_does_not_call_an_http_400_logged_in(hook: CashHook, sandbox_clean: Any) -> None:
    assert hook.operations  # the WSDL is read before the fault
    sandbox_clean.faults.add(status_fault(400, "Bad Request", vendor="cash", method="POST"))

    ok, message = hook.test_connection()

    assert not ok
    assert "logged in" not in message.lower() and "400" in message


def test_test_connection_says_logged_in_when_cash_refuses_only_the_export(
    hook: CashHook, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    enabled = sandbox_clean.cash.enabled_records - {"0901"}  # CASH answers response code 800
    monkeypatch.setattr(sandbox_clean.cash, "enabled_records", enabled)

    ok, message = hook.test_connection()

    assert ok and "logged in; exporting journals (0901) is not enabled" in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        # Named as the connection form labels them.
        ({"login": "not-an-email"}, "correct: API user e-mail"),
        ({"password": ""}, "correct: API user password"),
        (
            {
                "extra": {
                    "relation_number": "R25583",
                    "administration_code": "DEMO",
                    "administration_map": "1570",
                }
            },
            "correct: Relation number",
        ),
        ({"extra": {"relation_number": "25583", "administration_code": "DEMO"}}, "Administration map"),
    ],
)
def test_a_malformed_connection_names_the_field_to_fix(
    cash_connection: str, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch, change: dict, field: str
) -> None:
    definition = {**cash_connection_definition(sandbox_clean.cash_url), **change}
    monkeypatch.setenv("AIRFLOW_CONN_CASH_DEFAULT", json.dumps(definition))

    with pytest.raises(ConfigurationError) as caught:
        _ = CashHook().settings

    assert field in str(caught.value)
    assert soap_calls(sandbox_clean) == 0


def test_a_host_that_serves_no_wsdl_is_a_configuration_error(
    cash_connection: str, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    definition = {
        **cash_connection_definition(sandbox_clean.cash_url),
        "host": f"{sandbox_clean.cash_url}/?nothing",
    }
    monkeypatch.setenv("AIRFLOW_CONN_CASH_DEFAULT", json.dumps(definition))

    with pytest.raises(Exception) as caught:
        _ = CashHook().operations

    assert "WSDL" in str(caught.value) or "service description" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# Exports
# ------------------------------------------------------------------------------------------------
def test_recorded_delivery_addresses_come_back_as_typed_rows(hook: CashHook) -> None:
    rows = list(hook.export_records("2229", key="000100"))

    assert len(rows) == 2
    assert rows[0]["F0101"] == "000100" and rows[0]["relation_number"] == 100
    assert rows[0]["delivery_address_description"] == "This is a test delivery address."
    assert rows[1]["F2306"] == "17-12-2021"
    assert list(hook.export_records("2229", key="999999")) == []


def test_incremental_relations_are_those_changed_in_the_last_n_days(
    hook: CashHook, sandbox_clean: Any
) -> None:
    everything = list(hook.export_records("0101"))
    recent = list(hook.export_records("0101", ["W", 3]))
    older = list(hook.export_records("0101", "W|20"))

    assert len(everything) == 500
    assert 0 < len(recent) < len(older) < len(everything)
    assert {r["relation_number"] for r in recent} <= {r["relation_number"] for r in older}


def test_journal_lines_of_a_period_balance_per_entry(hook: CashHook) -> None:
    lines = list(hook.export_records("0301", "T|2611|2611"))

    assert lines and {line["period"] for line in lines} == {"2026-11"}
    totals: dict[str, Any] = {}
    for line in lines:
        totals[line["document_number"]] = totals.get(line["document_number"], 0) + line["amount"]
    assert set(totals.values()) == {0}


def test_a_record_not_enabled_for_the_api_says_where_to_enable_it(hook: CashHook, sandbox_clean: Any) -> None:
    sandbox_clean.cash.enabled_records.discard("0201")

    with pytest.raises(ValidationError) as caught:
        list(hook.export_records("0201"))

    assert "Instellen CashWeb API" in str(caught.value)
    assert "response code 800" in str(caught.value)


def test_exports_are_retried_through_transient_faults_with_identical_rows(
    hook: CashHook, sandbox_clean: Any
) -> None:
    expected = list(hook.export_records("0301", "T|2610|2611"))
    sandbox_clean.faults.add(status_fault(503, "busy", vendor="cash", method="POST", nth=[1], retry_after=0))
    sandbox_clean.faults.add(reset_fault(vendor="cash", method="POST", nth=[2]))

    again = list(hook.export_records("0301", "T|2610|2611"))

    assert again == expected


# ------------------------------------------------------------------------------------------------
# Hostile answers
# ------------------------------------------------------------------------------------------------
def hostile_envelope(export_result: str) -> str:
    from xml.sax.saxutils import escape

    return (
        '<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope '
        'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="urn:CashApi"><SOAP-ENV:Body>'
        "<ns1:Cash.exportResponse><response><code>1</code><message>Success</message></response>"
        f"<exportResult>{escape(export_result)}</exportResult></ns1:Cash.exportResponse>"
        "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )


@pytest.mark.parametrize(
    "inner",
    [
        '<!DOCTYPE cash [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><cash><R0101><F0103>&b;</F0103></R0101></cash>',
        '<!DOCTYPE cash [<!ENTITY x SYSTEM "file:///etc/passwd">]><cash><R0101><F0103>&x;</F0103></R0101></cash>',
    ],
    ids=["billion-laughs", "external-entity"],
)
def test_hostile_xml_inside_an_export_result_is_rejected_cleanly(
    hook: CashHook, sandbox_clean: Any, inner: str
) -> None:
    body = hostile_envelope("Content-type: text/xml " + inner)
    sandbox_clean.faults.add(status_fault(200, body, vendor="cash", method="POST", content_type="text/xml"))

    with pytest.raises(UnsafeXmlError) as caught:
        list(hook.export_records("0101"))

    assert "refused unread" in str(caught.value)
    assert soap_calls(sandbox_clean) == 1  # refused, not retried


def test_a_hostile_soap_envelope_is_rejected_cleanly(hook: CashHook, sandbox_clean: Any) -> None:
    body = (
        '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>&b;'
        "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    assert hook.operations  # the WSDL is read before any fault is installed
    sandbox_clean.faults.add(status_fault(200, body, vendor="cash", method="POST", content_type="text/xml"))

    with pytest.raises(UnsafeXmlError):
        list(hook.export_records("0101"))


def test_an_html_error_page_is_a_clear_error(hook: CashHook, sandbox_clean: Any) -> None:
    assert hook.operations  # the WSDL is read before any fault is installed
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    sandbox_clean.faults.add(status_fault(200, page, vendor="cash", method="POST", content_type="text/html"))

    with pytest.raises(Exception) as caught:
        list(hook.export_records("0101"))

    assert "HTML page" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# Authentication and secrets
# ------------------------------------------------------------------------------------------------
def test_a_wrong_password_stops_at_once_and_never_shows_the_password(
    cash_connection: str,
    sandbox_clean: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "Wrong-Password-7f3a9"
    definition = {**cash_connection_definition(sandbox_clean.cash_url), "password": wrong}
    monkeypatch.setenv("AIRFLOW_CONN_CASH_DEFAULT", json.dumps(definition))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthenticationError) as caught:
        list(CashHook().export_records("0101"))

    assert "response code 2" in str(caught.value)
    assert soap_calls(sandbox_clean) == 1
    assert wrong not in str(caught.value) and wrong not in caplog.text


def test_the_password_is_in_no_log_line_of_a_full_import(
    hook: CashHook, sandbox_clean: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    payload = build_import("0301", journal_entry(1))
    transaction = hook.submit_import(payload)
    assert follow_until_processed(hook, payload, transaction.id).status == SUCCESS

    assert PASSWORD not in caplog.text
    assert PASSWORD not in json.dumps(transaction.as_dict())


# ------------------------------------------------------------------------------------------------
# Imports and CASHWin
# ------------------------------------------------------------------------------------------------
def follow_until_processed(hook: CashHook, payload: ImportPayload, transaction_id: str) -> Any:
    deadline = time.monotonic() + 10.0
    while True:
        transaction = hook.follow_import(transaction_id, payload.expectation)
        if transaction.status != PENDING or time.monotonic() > deadline:
            return transaction
        time.sleep(0.1)


def test_an_import_is_pending_until_cashwin_processes_it_and_then_reads_back(
    hook: CashHook, sandbox_clean: Any
) -> None:
    payload = build_import("0301", journal_entry(700001))
    transaction = hook.submit_import(payload)
    assert transaction.status == PENDING
    assert transaction.administration == {"admCode": "DEMO", "admMap": "1570"}
    assert payload.expectation is not None
    assert payload.expectation.exports == ("0301T|2611|2611",)

    processed = follow_until_processed(hook, payload, transaction.id)

    assert processed.status == SUCCESS and processed.read_back["booked"] == 1
    lines = [r for r in hook.export_records("0301", "T|2611|2611") if r["document_number"] == 700001]
    assert [line["amount"] for line in lines] == [121, -121]


def test_an_import_cashwin_never_processes_reads_back_as_pending(hook: CashHook, sandbox_clean: Any) -> None:
    sandbox_clean.cash.cashwin.running = False
    payload = build_import("0301", journal_entry(2))
    transaction = hook.submit_import(payload)
    time.sleep(0.5)  # two turns of the test CASHWin (0.2 s), had it been running

    pending = hook.follow_import(transaction.id, payload.expectation)

    assert pending.status == PENDING
    assert pending.read_back == {
        "booked": 0,
        "missing": ["MM/000002/2026"],
        "different": [],
        "missing_count": 1,
    }


def test_a_document_number_read_back_with_other_lines_is_a_rejection(
    hook: CashHook, sandbox_clean: Any
) -> None:
    first = hook.import_records("0301", journal_entry(9, amount="10,00"))
    follow_until_processed(hook, build_import("0301", journal_entry(9, amount="10,00")), first.id)
    other = build_import("0301", journal_entry(9, amount="20,00"))  # same journal, number and year

    transaction = hook.submit_import(other)
    rejected = follow_until_processed(hook, other, transaction.id)

    assert rejected.status == ERROR
    assert "journal MM document 000009 (2026) is in CASH with other lines" in rejected.describe_errors()


def test_a_rejected_import_reports_every_line_through_the_status_operation(
    hook: CashHook, sandbox_clean: Any
) -> None:
    sandbox_clean.cash.offers_transaction_status = True
    transaction = hook.import_records("0301", journal_entry(3, account="9999"))
    processed = wait_until_processed(hook, transaction.id)

    assert processed.status == ERROR
    assert processed.errors == [
        {"line": 2, "message": "Ongeldige waarde 0201=9999", "source": processed.errors[0]["source"]}
    ]
    assert processed.errors[0]["source"].startswith("0301|")
    assert "line 2: Ongeldige waarde 0201=9999" in processed.describe_errors()


def test_invalid_rows_are_never_sent(hook: CashHook, sandbox_clean: Any) -> None:
    with pytest.raises(ValidationError, match="does not balance"):
        hook.import_records("0301", journal_entry(4)[:1])

    assert sandbox_clean.cash.import_calls == 0


def test_an_import_whose_answer_is_lost_is_not_sent_again(hook: CashHook, sandbox_clean: Any) -> None:
    assert hook.operations  # the WSDL is read before any fault is installed
    sandbox_clean.faults.add(reset_fault(vendor="cash", method="POST", when="after", nth=[1]))

    with pytest.raises(AmbiguousWriteError):
        hook.import_records("0301", journal_entry(5))

    assert sandbox_clean.cash.import_calls == 1


def test_an_unknown_transaction_is_not_found(hook: CashHook, sandbox_clean: Any) -> None:
    sandbox_clean.cash.offers_transaction_status = True
    with pytest.raises(NotFoundError, match="response code 902"):
        hook.get_transaction("nope")


def test_without_a_status_operation_the_hook_says_what_is_missing(hook: CashHook, sandbox_clean: Any) -> None:
    transaction = hook.import_records("0301", journal_entry(6))  # importing still works

    with pytest.raises(StatusOperationMissingError) as caught:
        hook.get_transaction(transaction.id)
    with pytest.raises(StatusOperationMissingError) as nothing_to_read_back:
        hook.follow_import(transaction.id, None)

    message = str(caught.value)
    assert "offers no operation to read a transaction's status" in message
    assert "Cash.export, Cash.import" in message and "GetTransaction" in message
    assert "does not know what to read back" in str(nothing_to_read_back.value)


# ------------------------------------------------------------------------------------------------
# The rate limit
# ------------------------------------------------------------------------------------------------
def test_cash_over_its_rate_answers_429_and_the_hook_waits_and_retries(
    hook: CashHook, sandbox_clean: Any
) -> None:
    assert hook.operations  # the WSDL is read before any fault is installed
    sandbox_clean.faults.add(
        status_fault(
            429,
            '<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
            "<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>Too many "
            "requests</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>",
            vendor="cash",
            method="POST",
            nth=[1],
            retry_after=1,
            content_type="text/xml",
        )
    )
    started = time.monotonic()

    rows = list(hook.export_records("0901"))

    assert len(rows) == 3
    assert time.monotonic() - started >= 1.0  # waited what Retry-After said


def test_the_client_keeps_under_the_requests_per_minute_budget(
    cash_connection: str, sandbox_clean: Any
) -> None:
    # CASH's rule, 100 a minute, shrunk to 3 a second so the test is quick: the emulator refuses
    # the 4th call within a second; the client paces itself at 3 per 1.2 s and is never refused.
    emulator = sandbox_clean.cash
    emulator.requests_per_minute, emulator.rate_window_seconds = 3, 1.0
    try:
        hook = CashHook(cash_connection, requests_per_minute=3)
        hook.limiter.per_seconds = 1.2
        assert hook.operations  # the WSDL is read before any fault is installed
        for _ in range(5):
            list(hook.export_records("0901"))
        hook.close()
    finally:
        emulator.requests_per_minute, emulator.rate_window_seconds = 100, 60.0
    assert hook.limiter.waited > 0
    statuses = sandbox_clean.stats["cash"]["by_path"]
    assert not any("429" in counts for counts in statuses.values())


# ------------------------------------------------------------------------------------------------
# The asyncio side
# ------------------------------------------------------------------------------------------------
def test_the_async_session_reads_an_import_back_without_blocking(hook: CashHook, sandbox_clean: Any) -> None:
    sandbox_clean.cash.cashwin.running = False
    payload = build_import("0301", journal_entry(8))
    transaction = hook.submit_import(payload)

    async def read() -> Any:
        async_hook = await CashHook.for_trigger("cash_default")
        session = await async_hook.async_session()
        try:
            return await session.follow_import(transaction.id, payload.expectation)
        finally:
            await session.aclose()

    assert asyncio.run(read()).status == PENDING
    sandbox_clean.cash.cashwin.running = True
    time.sleep(0.5)  # two turns of the test CASHWin (0.2 s)
    read_back = asyncio.run(read())
    assert read_back.id == transaction.id and read_back.status == SUCCESS


def test_get_pages_cut_an_export_and_get_rows_reads_what_export_records_reads(hook: CashHook) -> None:
    rows = list(hook.get_rows("0101"))
    pages = list(hook.get_pages("0101", page_size=2))

    assert len(rows) > 2
    assert rows == list(hook.export_records("0101")) == [row for page in pages for row in page]
    assert [page.offset for page in pages] == [2 * index for index in range(len(pages))]
    assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
    assert [list(page) for page in hook.export_pages("0101", page_size=2)] == [list(p) for p in pages]
