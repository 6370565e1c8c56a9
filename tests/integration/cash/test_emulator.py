"""The CASH emulator: its WSDL, answers shaped exactly like the recorded CASH answers, the simulated
CASHWin's timing, the rate limit, and refusing hostile requests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.hooks.cash import CashHook
from airflow_provider_ledgerlink.sandbox.cash import (
    API_EMAIL,
    RELATION_NUMBER,
    CashWinSimulator,
    cash_connection_definition,
    sandbox_cash_password,
)

#: The delivery address the recorded failing import sent, field by field in the recorded order.
RECORDED_FAILING_IMPORT = (
    "<CASH><R2229><F0101>123456</F0101><F2228>123456</F2228><F2229>This is a test delivery address.</F2229>"
    "<F0103>Test B.V.</F0103><F0104>John Doe</F0104><F0105>Teststraat 12</F0105><F0107>1234AB Test</F0107>"
    "<F0125>Nederland</F0125><F0130>NL</F0130><F0108>0612345678</F0108><F0115>Dit is een test</F0115>"
    "<F2888>ABCDEFGHIJKLM</F2888></R2229></CASH>"
)


@pytest.fixture
def recorded(cash_recording: Callable[..., Path]) -> Callable[[str], dict[str, Any]]:
    """A recorded delivery-address answer by file name."""
    return lambda name: json.loads(cash_recording("delivery-address", name).read_text())


@pytest.fixture
def online_hook(cash_connection: str, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A hook on administration x001, the online one (as in the recordings)."""
    definition = cash_connection_definition(sandbox_clean.cash_url, administration="x001")
    monkeypatch.setenv("AIRFLOW_CONN_CASH_ONLINE", json.dumps(definition))
    hook = CashHook("cash_online")
    yield hook
    hook.close()


def soap(url: str, body: str) -> httpx.Response:
    envelope = (
        '<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"'
        f' xmlns:ns1="urn:CashApi"><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>'
    )
    return httpx.post(f"{url}/?api/3.0", content=envelope, headers={"Content-Type": "text/xml"})


# ------------------------------------------------------------------------------------------------
# The service description
# ------------------------------------------------------------------------------------------------
def test_the_wsdl_describes_the_operations_at_this_servers_address(sandbox_clean: Any) -> None:
    response = httpx.get(f"{sandbox_clean.cash_url}/?api/3.0/wsdl")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    text = response.text
    for operation in ("Cash.export", "Cash.import"):
        assert f'<operation name="{operation}">' in text
    # No CASH document names an operation that reports a transaction: by default there is none.
    assert "getTransaction" not in text
    assert f'location="{sandbox_clean.cash_url}/?api/3.0"' in text


def test_the_transaction_status_operation_is_an_option(sandbox_clean: Any) -> None:
    control = f"{sandbox_clean.url}/_sandbox/cash/cashwin"
    try:
        assert httpx.post(control, json={"offers_transaction_status": True}).json()[
            "offers_transaction_status"
        ]
        text = httpx.get(f"{sandbox_clean.cash_url}/?api/3.0/wsdl").text
    finally:
        sandbox_clean.cash.offers_transaction_status = False

    assert '<operation name="Cash.getTransaction">' in text


def test_without_the_option_a_status_call_is_an_unknown_function(sandbox_clean: Any) -> None:
    body = "<ns1:Cash.getTransaction><id>abc</id></ns1:Cash.getTransaction>"

    response = soap(sandbox_clean.cash_url, body)

    assert response.status_code == 500 and "doesn't exist" in response.text


# ------------------------------------------------------------------------------------------------
# Answers exactly like the recorded ones
# ------------------------------------------------------------------------------------------------
def test_an_export_answers_exactly_like_the_recorded_one(
    online_hook: Any, recorded: Callable[[str], dict[str, Any]]
) -> None:
    assert online_hook.call("Cash.export", "2229|000100") == recorded("get.json")


def test_an_empty_export_answers_exactly_like_the_recorded_one(
    online_hook: Any, recorded: Callable[[str], dict[str, Any]]
) -> None:
    assert online_hook.call("Cash.export", "2229|424242") == recorded("empty.json")


def test_an_accepted_import_answers_like_the_recorded_one(
    online_hook: Any, recorded: Callable[[str], dict[str, Any]]
) -> None:
    xml = RECORDED_FAILING_IMPORT.replace("<F0101>123456</F0101>", "<F0101>000100</F0101>")

    answer = online_hook.call("Cash.import", xml)

    expected = recorded("creation-succeeded.json")
    transaction = answer["transaction"]
    assert len(transaction["id"]) == 13 and transaction["creation"][:4] == "2026"
    expected["transaction"].update(id=transaction["id"], creation=transaction["creation"])
    assert answer == expected


def test_a_rejected_import_answers_like_the_recorded_one_with_the_same_err_document(
    online_hook: Any, recorded: Callable[[str], dict[str, Any]]
) -> None:
    answer = online_hook.call("Cash.import", RECORDED_FAILING_IMPORT)

    expected = recorded("creation-failed.json")
    transaction = answer["transaction"]
    for key in ("id", "creation", "administration", "initiator"):  # another account was recorded
        expected["transaction"][key] = transaction[key]
    assert answer == expected
    assert transaction["err"] == recorded("creation-failed.json")["transaction"]["err"]


# ------------------------------------------------------------------------------------------------
# The simulated CASHWin
# ------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cashwin_picks_up_at_its_next_look_after_an_instruction_arrives() -> None:
    clock = Clock()
    cashwin = CashWinSimulator(interval=30, clock=clock)

    assert cashwin.pickup_after(1000.0) == 1030.0
    assert cashwin.pickup_after(1029.9) == 1030.0
    assert cashwin.pickup_after(1030.0) == 1060.0


def test_a_stopped_cashwin_never_picks_up_and_a_restarted_one_starts_a_new_rhythm() -> None:
    clock = Clock()
    cashwin = CashWinSimulator(interval=30, clock=clock)
    cashwin.running = False
    assert cashwin.pickup_after(1001.0) is None

    clock.now = 2000.0
    cashwin.running = True
    assert cashwin.pickup_after(1001.0) == 2030.0


def test_the_control_endpoint_switches_cashwin(sandbox_clean: Any) -> None:
    url = f"{sandbox_clean.url}/_sandbox/cash/cashwin"
    try:
        assert httpx.post(url, json={"running": False, "interval": 0.5}).json() == {
            "running": False,
            "interval": 0.5,
            "offers_transaction_status": False,
        }
        assert sandbox_clean.cash.cashwin.running is False
    finally:
        sandbox_clean.cash.cashwin.running = True
        sandbox_clean.cash.cashwin.interval = 30.0


def test_offline_imports_wait_for_cashwin_and_online_ones_do_not(
    cash_connection: str, online_hook: Any, sandbox_clean: Any
) -> None:
    cash_emulator = sandbox_clean.cash
    offline = CashHook(cash_connection)
    rows = [
        {"booking_date": "2026-11-19", "journal": "MM", "document_number": 1, "ledger_account": "1100", "amount": "1,00"},
        {"booking_date": "2026-11-19", "journal": "MM", "document_number": 1, "ledger_account": "8000", "amount": "-1,00"},
    ]  # fmt: skip
    try:
        pending = offline.import_records("0301", rows)
        assert pending.status == 1
        assert online_hook.import_records("0301", rows).status == 2
        time.sleep(0.5)  # CASHWin looks every 0.2 s in tests
        [transaction] = [t for t in cash_emulator.transactions.values() if t.id == pending.id]
        booked = [r for r in offline.export_records("0301", "T|2611|2611") if r["journal"] == "MM"]
    finally:
        offline.close()
    assert transaction.status == 2 and transaction.updated is not None
    assert [r["amount"] for r in booked] == [1, -1]


# ------------------------------------------------------------------------------------------------
# Limits and hostile requests
# ------------------------------------------------------------------------------------------------
def export_body(password: str) -> str:
    return (
        f"<ns1:Cash.export><token></token><relatie>{RELATION_NUMBER}</relatie><email>{API_EMAIL}</email>"
        f"<pass>{password}</pass><export>0901</export>"
        "<administration><admCode>DEMO</admCode><admMap>1570</admMap></administration>"
        "<formaat>0</formaat></ns1:Cash.export>"
    )


def test_more_than_the_rate_gives_429_with_retry_after(sandbox_clean: Any) -> None:
    sandbox_clean.cash.requests_per_minute = 2
    try:
        answers = [soap(sandbox_clean.cash_url, export_body(sandbox_cash_password())) for _ in range(3)]
    finally:
        sandbox_clean.cash.requests_per_minute = 100

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert "Too many requests" in answers[2].text


def test_a_wrong_password_answers_response_code_2(sandbox_clean: Any) -> None:
    answer = soap(sandbox_clean.cash_url, export_body("wrong"))

    assert answer.status_code == 200
    assert "<code>2</code>" in answer.text and "exportResult" not in answer.text


def test_a_request_with_a_dtd_is_refused_with_a_fault(sandbox_clean: Any) -> None:
    hostile = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    answer = httpx.post(f"{sandbox_clean.cash_url}/?api/3.0", content=hostile)

    assert answer.status_code == 500
    assert "<faultstring>DTDs and entity declarations are not allowed</faultstring>" in answer.text


@pytest.mark.parametrize(
    ("method", "query"),
    [("GET", "api/3.0"), ("POST", "api/3.0/wsdl"), ("PUT", "api/3.0"), ("HEAD", "wsdl"), ("POST", "")],
)
def test_an_address_or_method_cashweb_does_not_serve_is_its_404_page(method: str, query: str) -> None:
    from airflow_provider_ledgerlink.sandbox.cash import CashEmulator
    from airflow_provider_ledgerlink.sandbox.server import Request

    answer = CashEmulator(seed=1).handle(Request(method, "/cash/", query, {}, b"", subpath="/"))

    assert (answer.status, answer.body) == (404, b"Not found")
    assert answer.content_type == "text/html; charset=utf-8"


def test_a_large_scale_costs_no_memory_until_asked(sandbox_clean: Any) -> None:
    from airflow_provider_ledgerlink.sandbox.cash import CashEmulator

    emulator = CashEmulator(seed=1)
    assert emulator.apply_scale({"CASH_0301": 2_000_000, "CASH_0101": 1_000_000}) == [
        "CASH_0101",
        "CASH_0301",
    ]
    assert len(emulator.journal.entry(1_999_999)) == 3
    assert len(emulator.journal.in_periods("2611", "2611")) > 0


def test_a_document_number_already_booked_is_refused_as_cashwin_would(online_hook: Any) -> None:
    """A document number is unique per year and journal: a second entry with it is rejected whole."""
    rows = [
        {"booking_date": "2026-11-19", "journal": "MM", "document_number": 7, "ledger_account": "1100", "amount": "1,00"},
        {"booking_date": "2026-11-19", "journal": "MM", "document_number": 7, "ledger_account": "8000", "amount": "-1,00"},
    ]  # fmt: skip
    generated = [{**row, "journal": "VK", "document_number": 1} for row in rows]
    next_year = [{**row, "booking_date": "2027-01-04"} for row in rows]

    assert online_hook.import_records("0301", rows).status == 2
    again = online_hook.import_records("0301", rows)
    clash = online_hook.import_records("0301", generated)

    assert again.status == 3 and again.errors[0]["message"] == "Stuknummer 000007 is al geboekt in dagboek MM"
    assert clash.status == 3 and "Stuknummer 000001 is al geboekt in dagboek VK" in clash.describe_errors()
    assert online_hook.import_records("0301", next_year).status == 2  # another year: a new number
    booked = [r for r in online_hook.export_records("0301") if r["F0901"] == "MM"]
    assert len(booked) == 4  # the first entry and the next year's, two lines each
