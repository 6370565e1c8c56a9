"""CASH operators, sensor and trigger against the emulator: extracts, imports that wait for CASHWin,
retries that never import twice, timeouts that say what is wrong, and the trigger's contract."""

from __future__ import annotations

import asyncio
import gzip
import importlib
import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.compat import (
    AirflowProviderDeprecationWarning,
    AirflowSensorTimeout,
    TaskDeferred,
)
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    ConfigurationError,
    LedgerLinkError,
    ValidationError,
)
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.core.sinks import read_manifest, read_rows
from airflow_provider_ledgerlink.core.writes import SUMMARY_KEYS, LedgerLinkWriteOperator
from airflow_provider_ledgerlink.hooks.cash import (
    CASHWIN_DIAGNOSIS,
    CashHook,
    CashImportFailedError,
    CashTransactionTimeoutError,
)
from airflow_provider_ledgerlink.operators.cash import CashExtractOperator, CashImportOperator
from airflow_provider_ledgerlink.sandbox.faults import reset_fault
from airflow_provider_ledgerlink.sensors.cash import CashTransactionSensor
from airflow_provider_ledgerlink.triggers.cash import CashTransactionTrigger


# ------------------------------------------------------------------------------------------------
# A task instance's context, without Airflow running the task
# ------------------------------------------------------------------------------------------------
class TaskInstance:
    dag_id, run_id, task_id, map_index = "cash_dag", "manual__1", "import_journal", -1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def context(run_id: str = "manual__1") -> dict[str, Any]:
    ti = TaskInstance()
    ti.run_id = run_id
    return {"ti": ti}


@pytest.fixture
def once_state() -> MemoryState:
    """The write records every attempt of a test shares (Airflow Variables in a deployment)."""
    return MemoryState()


def journal_entry(document: int = 1, account: str = "8000", amount: str = "121.00") -> list[dict[str, Any]]:
    common = {"booking_date": "2026-11-19", "journal": "MM", "document_number": document}
    return [
        {**common, "ledger_account": "1100", "amount": amount, "description": "Kassa"},
        {**common, "ledger_account": account, "amount": "-" + amount, "description": "Omzet"},
    ]


def run_trigger(trigger: CashTransactionTrigger) -> dict[str, Any]:
    async def first_event() -> dict[str, Any]:
        generator = trigger.run()
        event = await generator.__anext__()
        await generator.aclose()
        return event.payload

    return asyncio.run(first_event())


def import_operator(state: MemoryState, **kwargs: Any) -> CashImportOperator:
    kwargs.setdefault("records", journal_entry())
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("once_options", {"settle": 0.2, "poll": 0.02, "wait": 0.5})
    return CashImportOperator(task_id="import_journal", record_code="0301", once_state=state, **kwargs)


def run_to_the_end(operator: CashImportOperator, ctx: dict[str, Any]) -> dict[str, Any]:
    """What Airflow does with a deferring task: run the trigger, then ``execute_complete``."""
    try:
        return operator.execute(ctx)
    except TaskDeferred as deferred:
        event = run_trigger(deferred.trigger)
        return getattr(operator, deferred.method_name)(ctx, event=event, **(deferred.kwargs or {}))


# ------------------------------------------------------------------------------------------------
# CashImportOperator: waiting by reading the import back
# ------------------------------------------------------------------------------------------------
def test_the_import_defers_and_completes_once_cashwin_has_booked_it(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    operator = import_operator(once_state, deferrable=True)
    ctx = context()

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(ctx)

    trigger = deferred.value.trigger
    assert isinstance(trigger, CashTransactionTrigger)
    assert trigger.transaction_id == ctx["ti"].xcom["transaction_id"]
    # The emulator's WSDL offers only Cash.export and Cash.import: the trigger reads the entry back.
    assert trigger.expectation == {
        "record_code": "0301",
        "exports": ["0301T|2611|2611"],
        "entries": {"MM/000001/2026": trigger.expectation["entries"]["MM/000001/2026"]},
    }
    event = run_trigger(trigger)
    assert event["status"] == "success" and event["transaction"]["read_back"]["booked"] == 1
    summary = operator.execute_complete(ctx, event=event, **deferred.value.kwargs)
    assert summary["status_name"] == "success" and summary["records"] == 2 and not summary["resumed"]
    assert summary["documents"] == "journal MM document 000001 (2026)"
    assert sandbox_clean.cash.import_calls == 1
    assert "getTransaction" not in json.dumps(sandbox_clean.stats["cash"])


def test_waiting_on_the_worker_when_not_deferrable(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    summary = import_operator(once_state, deferrable=False).execute(context())

    assert summary["status_name"] == "success"


def test_a_status_operation_is_used_when_the_wsdl_offers_one(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    sandbox_clean.cash.offers_transaction_status = True
    rejected = journal_entry(account="9999")  # CASH names the line it rejects

    with pytest.raises(CashImportFailedError) as caught:
        run_to_the_end(import_operator(once_state, deferrable=True, records=rejected), context())
    with pytest.raises(CashImportFailedError):  # a rerun sends nothing and reports the same
        run_to_the_end(import_operator(once_state, deferrable=True, records=rejected), context("manual__2"))

    assert "line 2: Ongeldige waarde 0201=9999" in str(caught.value)
    assert caught.value.details[0]["line"] == 2
    assert "ledgerlink_once_cash_" in str(caught.value)  # how to allow a corrected import
    assert sandbox_clean.cash.import_calls == 1


def test_a_document_number_already_booked_with_other_lines_is_reported_as_rejected(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    # Another tool booked MM 000001 (2026) with other amounts; CASHWin refuses ours (status 3).
    CashHook(cash_connection).import_records("0301", journal_entry(amount="5.00"))

    with pytest.raises(CashImportFailedError) as caught:
        run_to_the_end(import_operator(once_state, deferrable=True), context())

    assert "journal MM document 000001 (2026) is in CASH with other lines" in str(caught.value)


def test_an_import_never_read_back_times_out_saying_what_to_check_in_cashwin(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    sandbox_clean.cash.cashwin.running = False

    with pytest.raises(CashTransactionTimeoutError) as here:
        import_operator(once_state, deferrable=False, timeout=0.5).execute(context())
    with pytest.raises(CashTransactionTimeoutError) as deferred:
        run_to_the_end(
            import_operator(MemoryState(), deferrable=True, timeout=0.5, records=journal_entry(2)), context()
        )

    for caught, document in ((here, "MM/000001/2026"), (deferred, "MM/000002/2026")):
        message = str(caught.value)
        assert message.startswith("CASH Cash.import 0301 failed: the records of import")
        assert f"not there: {document}" in message and "turns of CASHWin's S0067" in message
        assert "cashwin.exe API" in message and "Foutmeldingen naar" in message
        assert "Instellen CashWeb API" in message and "Synchronisatie offline" in message
        assert "ledgerlink_once_cash_" in message  # the import stays recorded; how to allow a new one


def test_records_that_cannot_be_read_back_are_not_sent_when_there_is_no_way_to_wait(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    operator = CashImportOperator(
        task_id="import_other", record_code="0450", records=[{"F0450": "X"}], once_state=once_state
    )

    with pytest.raises(ConfigurationError, match="does not know what to read back"):
        operator.execute(context())

    assert sandbox_clean.cash.import_calls == 0


# ------------------------------------------------------------------------------------------------
# CashImportOperator: never the same records twice
# ------------------------------------------------------------------------------------------------
def test_a_new_dag_run_with_the_same_rows_imports_nothing_and_says_so(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    first = run_to_the_end(import_operator(once_state, deferrable=True), context("scheduled__1"))
    second = run_to_the_end(import_operator(once_state, deferrable=True), context("scheduled__2"))

    assert sandbox_clean.cash.import_calls == 1
    assert first["resumed"] is False and second["resumed"] is True  # "resumed": not sent again
    assert (first["created"], second["created"], second["already_done"]) == (2, 0, 2)
    assert second["transaction_id"] == first["transaction_id"] and second["status_name"] == "success"
    assert second["documents"] == "journal MM document 000001 (2026)"


def test_a_retried_import_task_resumes_waiting_and_never_imports_twice(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    sandbox_clean.cash.cashwin.running = False  # the first try's wait ends without a result

    with pytest.raises(TaskDeferred) as first_try:
        import_operator(once_state, deferrable=True).execute(context())
    # ... the worker running the deferred task is lost; Airflow retries the task.
    sandbox_clean.cash.cashwin.running = True
    summary = run_to_the_end(import_operator(once_state, deferrable=True), context())

    assert sandbox_clean.cash.import_calls == 1
    assert summary["transaction_id"] == first_try.value.trigger.transaction_id
    assert summary["resumed"] is True and summary["status_name"] == "success"


def test_a_retry_resumed_with_an_earlier_tries_event_starts_over_and_never_imports_twice(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    """Airflow 3.0 resumes a retry in ``execute_complete`` with the failed try's event (#56704)."""
    sandbox_clean.cash.cashwin.running = False  # still pending when the retry resumes
    first = context()
    first["ti"].try_number = 1
    with pytest.raises(TaskDeferred) as deferred:
        import_operator(once_state, deferrable=True).execute(first)
    assert deferred.value.trigger.try_number == 1
    stale = {
        "status": "error",
        "transaction_id": deferred.value.trigger.transaction_id,
        "message": "CASH Cash.export failed: SOAP fault: Internal error (HTTP 500)",
        "error_type": "VendorError",
        "try_number": 1,
    }
    retry = context()
    retry["ti"].try_number = 2
    operator = import_operator(once_state, deferrable=True)

    with pytest.raises(TaskDeferred) as again:
        operator.execute_complete(retry, event=stale, **deferred.value.kwargs)
    sandbox_clean.cash.cashwin.running = True
    event = run_trigger(again.value.trigger)
    summary = operator.execute_complete(retry, event=event, **again.value.kwargs)

    assert event["try_number"] == 2
    assert summary["resumed"] is True and summary["status_name"] == "success"
    assert summary["transaction_id"] == stale["transaction_id"]
    assert sandbox_clean.cash.import_calls == 1


def test_other_document_numbers_are_a_new_import(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    run_to_the_end(import_operator(once_state, deferrable=False), context())
    run_to_the_end(import_operator(once_state, deferrable=False, records=journal_entry(2)), context())

    assert sandbox_clean.cash.import_calls == 2


def test_the_same_entry_with_another_description_is_the_same_import(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    run_to_the_end(import_operator(once_state, deferrable=False), context())
    redescribed = [{**line, "description": "Kassa 19-11"} for line in journal_entry()]

    summary = import_operator(once_state, deferrable=False, records=redescribed).execute(context("manual__2"))

    assert summary["resumed"] is True and summary["status_name"] == "success"
    assert sandbox_clean.cash.import_calls == 1


def test_the_same_document_numbers_with_other_lines_are_not_sent(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    run_to_the_end(import_operator(once_state, deferrable=False), context())

    with pytest.raises(ValidationError, match=r"were already imported .* with other lines; nothing was sent"):
        import_operator(once_state, deferrable=False, records=journal_entry(amount="99.00")).execute(
            context()
        )

    assert sandbox_clean.cash.import_calls == 1


def test_four_concurrent_tries_with_the_same_rows_import_once(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    outcomes: list[Any] = [None] * 4
    start = threading.Barrier(4)

    def attempt(index: int) -> None:
        operator = import_operator(
            once_state, deferrable=False, once_options={"settle": 0.2, "poll": 0.02, "wait": 20}
        )
        start.wait()
        try:
            outcomes[index] = operator.execute(context(f"run_{index}"))
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sandbox_clean.cash.import_calls == 1, outcomes
    assert all(isinstance(o, dict) and o["status_name"] == "success" for o in outcomes), outcomes
    assert sorted(o["resumed"] for o in outcomes) == [False, True, True, True]
    assert len({o["transaction_id"] for o in outcomes}) == 1


def test_an_import_whose_answer_was_lost_is_never_sent_again(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    assert CashHook(cash_connection).operations  # the WSDL is read before the fault
    sandbox_clean.faults.add(reset_fault(vendor="cash", method="POST", when="after", nth=[1]))

    with pytest.raises(AmbiguousWriteError) as first:
        import_operator(once_state, deferrable=False).execute(context())
    with pytest.raises(AmbiguousWriteError) as retry:
        import_operator(once_state, deferrable=False).execute(context("manual__2"))

    assert "its outcome was never learned" in str(retry.value)
    for caught in (first, retry):  # how to check in CASH, and how to record the answer
        assert (
            "Check in CASH whether journal MM document 000001 (2026) is in administration DEMO/1570"
            in str(caught.value)
        )
        assert "Cash.export 0301T|2611|2611" in str(caught.value) and "ledgerlink_once_cash_" in str(
            caught.value
        )
    assert sandbox_clean.cash.import_calls == 1


def test_a_500_after_cash_applied_the_import_is_ambiguous_and_the_mark_stays(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    from airflow_provider_ledgerlink.sandbox.faults import status_fault

    assert CashHook(cash_connection).operations  # the WSDL is read before the fault
    sandbox_clean.faults.add(
        status_fault(500, "Internal Server Error", vendor="cash", method="POST", when="after", nth=[1])
    )

    with pytest.raises(AmbiguousWriteError) as first:
        import_operator(once_state, deferrable=False).execute(context())
    records = [json.loads(v) for k, v in once_state.snapshot().items() if k.count("_") == 3]
    assert [r["state"] for r in records] == ["sending"]  # the mark is kept
    with pytest.raises(AmbiguousWriteError):
        import_operator(once_state, deferrable=False).execute(context("manual__2"))

    assert "may or may not have been applied" in str(first.value)
    assert sandbox_clean.cash.import_calls == 1
    assert len(sandbox_clean.cash.transactions) == 1  # one booking at CASH, never a second


def test_a_success_answer_without_a_transaction_is_ambiguous_and_never_sent_again(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    from airflow_provider_ledgerlink.sandbox.faults import status_fault

    assert CashHook(cash_connection).operations  # the WSDL is read before the fault
    no_transaction = (
        '<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope '
        'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="urn:CashApi"><SOAP-ENV:Body>'
        "<ns1:Cash.importResponse><response><code>1</code><message>Success</message></response>"
        "</ns1:Cash.importResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    sandbox_clean.faults.add(
        status_fault(
            200, no_transaction, vendor="cash", method="POST", when="after", nth=[1], content_type="text/xml"
        )
    )

    with pytest.raises(
        AmbiguousWriteError, match="CASH answered success, but the answer holds no transaction"
    ):
        import_operator(once_state, deferrable=False).execute(context())
    with pytest.raises(AmbiguousWriteError):
        import_operator(once_state, deferrable=False).execute(context("manual__2"))

    assert sandbox_clean.cash.import_calls == 1


def test_the_trigger_reads_back_without_blocking_io(
    cash_connection: str, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The triggerer's event loop is shared: the trigger may only use asyncio I/O (httpx's async
    transport), never a blocking HTTP call or sleep."""
    import time

    import httpx

    transaction_id, expectation = pending_import(sandbox_clean)
    sandbox_clean.cash.cashwin.running = True

    def blocking(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("blocking I/O in the trigger")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", blocking)
    monkeypatch.setattr(time, "sleep", blocking)
    event = run_trigger(CashTransactionTrigger(transaction_id, poll_interval=0.1, expectation=expectation))

    assert event["status"] == "success", event
    assert event["transaction"]["read_back"] == {
        "booked": 1,
        "missing": [],
        "different": [],
        "missing_count": 0,
    }


def test_rows_that_do_not_balance_are_refused_before_anything_is_stored_or_sent(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    with pytest.raises(Exception, match="does not balance"):
        import_operator(once_state, records=journal_entry()[:1]).execute(context())

    assert once_state.snapshot() == {} and sandbox_clean.cash.import_calls == 0


def test_rows_are_read_from_a_landed_json_lines_file(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState, tmp_path: Path
) -> None:
    landed = tmp_path / "journal.jsonl.gz"
    landed.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in journal_entry()).encode()))

    summary = run_to_the_end(
        import_operator(once_state, records=None, records_path=landed.as_uri(), deferrable=False), context()
    )

    assert summary["records"] == 2 and sandbox_clean.cash.import_calls == 1
    assert (summary["created"], summary["already_done"], summary["failed"]) == (2, 0, 0)


def test_the_import_is_the_write_bases_batch_form_and_returns_its_summary(
    cash_connection: str, sandbox_clean: Any, once_state: MemoryState
) -> None:
    operator = import_operator(once_state, deferrable=False)
    summary = operator.execute(context())

    assert isinstance(operator, LedgerLinkWriteOperator) and operator.writes_in_one_batch
    assert tuple(summary)[: len(SUMMARY_KEYS)] == SUMMARY_KEYS  # the keys every write operator returns
    assert [r["status"] for r in summary["results"]] == ["created", "created"]  # one transaction
    assert summary["status_name"] == "success" and summary["transaction_id"]

    ctx = context()  # refused as a whole: every row failed, the summary pushed, CASH's error raised
    with pytest.raises(ValidationError, match="does not balance"):
        import_operator(once_state, records=journal_entry(2)[:1]).execute(ctx)
    pushed = ctx["ti"].xcom["results"]
    assert (pushed["records"], pushed["failed"]) == (1, 1) and "does not balance" in pushed["results"][0][
        "error"
    ]


def test_the_old_names_rows_and_source_still_work_and_name_the_new_ones(tmp_path: Path) -> None:
    with pytest.warns(AirflowProviderDeprecationWarning, match="'rows' is deprecated; use 'records'"):
        inline = CashImportOperator(task_id="x", record_code="0301", rows=journal_entry())
    with pytest.warns(AirflowProviderDeprecationWarning, match="'source' is deprecated; use 'records_path'"):
        landed = CashImportOperator(task_id="x", record_code="0301", source=str(tmp_path / "j.jsonl"))
    assert inline.records == journal_entry() and landed.records_path == str(tmp_path / "j.jsonl")
    with pytest.raises(ValueError, match="give records only"):
        CashImportOperator(task_id="x", record_code="0301", rows=[], records=[])


def test_the_write_records_are_airflow_variables_by_default(cash_connection: str) -> None:
    from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState
    from airflow_provider_ledgerlink.hooks.cash import build_import

    operator = CashImportOperator(task_id="x", record_code="0301", records=journal_entry())
    once = operator._write_once(build_import("0301", journal_entry()))

    assert isinstance(once.state, AirflowVariableState)
    assert once.record_key.startswith("ledgerlink_once_cash_")
    assert once.label == "journal MM document 000001 (2026)"


def test_the_import_operator_needs_rows_or_a_source() -> None:
    with pytest.raises(ValueError):
        CashImportOperator(task_id="x", record_code="0301")


# ------------------------------------------------------------------------------------------------
# CashTransactionSensor
# ------------------------------------------------------------------------------------------------
def pending_import(sandbox: Any, document: int = 1) -> tuple[str, dict[str, Any]]:
    """An import CASHWin has not processed: its transaction id and what to read back."""
    from airflow_provider_ledgerlink.hooks.cash import build_import

    sandbox.cash.cashwin.running = False
    payload = build_import("0301", journal_entry(document))
    transaction = CashHook().submit_import(payload)
    assert payload.expectation is not None
    return transaction.id, payload.expectation.as_dict()


def test_the_sensor_defers_with_a_30_second_default_poll(cash_connection: str, sandbox_clean: Any) -> None:
    transaction_id, expectation = pending_import(sandbox_clean)
    sensor = CashTransactionSensor(
        task_id="wait", transaction_id=transaction_id, expectation=expectation, deferrable=True
    )

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())

    assert deferred.value.trigger.poll_interval == 30.0
    assert deferred.value.trigger.expectation == expectation
    assert deferred.value.timeout.total_seconds() > sensor.timeout


def test_the_sensor_succeeds_once_the_import_reads_back(cash_connection: str, sandbox_clean: Any) -> None:
    transaction_id, expectation = pending_import(sandbox_clean)
    sandbox_clean.cash.cashwin.running = True
    sensor = CashTransactionSensor(
        task_id="wait",
        transaction_id=transaction_id,
        expectation=json.dumps(expectation),  # as a template renders it
        poll_interval=0.1,
        deferrable=True,
    )

    try:
        result = sensor.execute(context())
    except TaskDeferred as deferred:
        result = sensor.execute_complete(context(), event=run_trigger(deferred.trigger))

    assert result["id"] == transaction_id and result["status_name"] == "success"


def test_the_sensor_timeout_says_what_is_most_likely_wrong(cash_connection: str, sandbox_clean: Any) -> None:
    transaction_id, expectation = pending_import(sandbox_clean)
    sensor = CashTransactionSensor(
        task_id="wait",
        transaction_id=transaction_id,
        expectation=expectation,
        poll_interval=0.1,
        timeout=0.5,
        deferrable=True,
    )

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    event = run_trigger(deferred.value.trigger)
    assert event["status"] == "timeout"
    with pytest.raises(AirflowSensorTimeout) as caught:
        sensor.execute_complete(context(), event=event)

    assert CASHWIN_DIAGNOSIS in str(caught.value) and "not there: MM/000001/2026" in str(caught.value)


def test_the_sensor_on_the_worker_times_out_naming_the_missing_records(
    cash_connection: str, sandbox_clean: Any
) -> None:
    transaction_id, expectation = pending_import(sandbox_clean)
    sensor = CashTransactionSensor(
        task_id="wait",
        transaction_id=transaction_id,
        expectation=expectation,
        poll_interval=0.1,
        timeout=0.3,
        deferrable=False,
    )

    with pytest.raises(AirflowSensorTimeout) as caught:
        sensor.execute(context())

    message = str(caught.value)
    assert message.startswith(f"CASH waiting for import {transaction_id}: the records of import")
    assert "not there: MM/000001/2026" in message and CASHWIN_DIAGNOSIS in message


def test_the_sensor_without_anything_to_read_back_says_what_it_needs(
    cash_connection: str, sandbox_clean: Any
) -> None:
    transaction_id, _ = pending_import(sandbox_clean)
    sensor = CashTransactionSensor(task_id="wait", transaction_id=transaction_id, deferrable=False)

    with pytest.raises(ConfigurationError, match="does not know what to read back") as caught:
        sensor.poke(context())

    assert "expectation" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# CashTransactionTrigger
# ------------------------------------------------------------------------------------------------
def test_the_trigger_serializes_to_json_and_round_trips() -> None:
    trigger = CashTransactionTrigger(
        "abc123", cash_conn_id="cash_x", poll_interval=5, end_time=10.5, started_at=1.0
    )

    classpath, kwargs = trigger.serialize()

    assert classpath == "airflow_provider_ledgerlink.triggers.cash.CashTransactionTrigger"
    module, _, name = classpath.rpartition(".")
    assert getattr(importlib.import_module(module), name) is CashTransactionTrigger
    assert kwargs == {
        "transaction_id": "abc123",
        "cash_conn_id": "cash_x",
        "poll_interval": 5.0,
        "end_time": 10.5,
        "started_at": 1.0,
    }
    json.dumps(kwargs)
    assert CashTransactionTrigger(**kwargs).serialize() == (classpath, kwargs)
    expectation = {"record_code": "0301", "exports": ["0301T|2611|2611"], "entries": {"MM/000001/2026": "ab"}}
    with_read_back = CashTransactionTrigger("abc123", expectation=expectation).serialize()[1]
    assert json.loads(json.dumps(with_read_back))["expectation"] == expectation


def test_the_trigger_reports_an_unknown_transaction_as_an_error_event(
    cash_connection: str, sandbox_clean: Any
) -> None:
    sandbox_clean.cash.offers_transaction_status = True
    event = run_trigger(CashTransactionTrigger("nope", poll_interval=0.1))

    assert event["status"] == "error" and "response code 902" in event["message"]


def test_the_trigger_without_a_status_operation_or_read_back_reports_an_error(cash_connection: str) -> None:
    event = run_trigger(CashTransactionTrigger("nope", poll_interval=0.1))

    assert event["status"] == "error" and "does not know what to read back" in event["message"]


def test_the_trigger_reports_a_missing_connection_without_raising() -> None:
    event = run_trigger(CashTransactionTrigger("abc", cash_conn_id="no_such_connection"))

    assert event["status"] == "error" and event["transaction_id"] == "abc"


# ------------------------------------------------------------------------------------------------
# CashExtractOperator
# ------------------------------------------------------------------------------------------------
def extract(tmp_path: Path, record: str, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath

    operator = CashExtractOperator(
        task_id=f"extract_{record}",
        record_code=record,
        destination=(tmp_path / "lake").as_uri(),
        window_start="2026-11-18T00:00:00+00:00",
        window_end="2026-11-19T00:00:00+00:00",
        **kwargs,
    )
    summary = operator.execute(context())
    folder = ObjectStoragePath(summary["folder"])
    return read_manifest(folder) or {}, [json.loads(json.dumps(r)) for r in read_rows(folder)]


def test_incremental_relations_land_what_w_n_selects(
    cash_connection: str, sandbox_clean: Any, tmp_path: Path
) -> None:
    from airflow_provider_ledgerlink.hooks.cash import changed_within_days

    manifest, rows = extract(tmp_path, "0101")

    days = changed_within_days(
        datetime(2026, 11, 18, tzinfo=timezone.utc), window_end=datetime(2026, 11, 19, tzinfo=timezone.utc)
    )
    assert manifest["source"]["export"] == f"0101W|{days}"
    expected = [
        json.loads(json.dumps(r, default=str)) for r in CashHook().export_records("0101", ["W", days])
    ]
    assert rows == expected and rows
    assert "password" not in json.dumps(manifest).lower()


def test_journal_lines_land_the_periods_of_the_window(
    cash_connection: str, sandbox_clean: Any, tmp_path: Path
) -> None:
    manifest, rows = extract(tmp_path, "0301")

    assert manifest["source"]["export"] == "0301T|2611|2611"
    assert rows and {r["period"] for r in rows} == {"2026-11"}
    assert manifest["object"] == "R0301 (journal lines)"


def test_other_records_are_full_loads_by_default(
    cash_connection: str, sandbox_clean: Any, tmp_path: Path
) -> None:
    manifest, rows = extract(tmp_path, "0901")

    assert manifest["window"] is None and len(rows) == 3


def test_export_params_live_beside_a_dags_own_params(
    cash_connection: str, sandbox_clean: Any, tmp_path: Path
) -> None:
    """CASH's export properties are ``export_params``: a string is accepted as written at parse time,
    and a DAG's own ``params`` stay Airflow's (they never become export properties)."""
    from airflow.sdk import DAG, Param

    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath

    with DAG(
        dag_id="cash_params", schedule=None, params={"relation": Param("000100", type="string"), "days": 7}
    ):
        operator = CashExtractOperator(
            task_id="delivery_addresses",
            record_code="2229",
            export_params="|{{ params.relation }}",
            destination=(tmp_path / "lake").as_uri(),
            window_start="2026-11-18T00:00:00+00:00",
            window_end="2026-11-19T00:00:00+00:00",
        )
        plain = CashExtractOperator(
            task_id="relations",
            record_code="0101",
            export_params="W|7",
            destination=(tmp_path / "l2").as_uri(),
        )

    assert plain.export_params == "W|7" and plain.selection(None) == "W|7"
    assert operator.export_params == "|{{ params.relation }}"
    assert set(operator.params) == {"relation", "days"}  # the DAG's, untouched
    assert "export_params" in operator.template_fields

    operator.render_template_fields({"params": {"relation": "000100", "days": 7}})
    assert operator.export_params == "|000100"
    summary = operator.execute(context())

    manifest = read_manifest(ObjectStoragePath(summary["folder"])) or {}
    assert manifest["source"]["export"] == "2229|000100"
    rows = list(read_rows(ObjectStoragePath(summary["folder"])))
    assert len(rows) == 2 and {r["F0101"] for r in rows} == {"000100"}


def test_the_old_params_argument_is_airflows_and_no_export_property() -> None:
    with pytest.raises(TypeError, match="params must be a mapping"):  # Airflow's own argument
        CashExtractOperator(task_id="x", record_code="0101", params="W|7", destination="file:///tmp/x")


# ------------------------------------------------------------------------------------------------
# A password with XML's special characters, echoed by a hostile CASH
# ------------------------------------------------------------------------------------------------
HOSTILE_PASSWORD = "Pw&<x>'\"1&amp;"


@pytest.fixture
def hostile_cash(cash_connection: str, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator accepts a password with ``&``, ``<``, ``>`` and quotes; the connection uses it."""
    from airflow_provider_ledgerlink.sandbox.cash import cash_connection_definition

    definition = cash_connection_definition(sandbox_clean.cash_url)
    definition["password"] = HOSTILE_PASSWORD
    monkeypatch.setenv("AIRFLOW_CONN_CASH_DEFAULT", json.dumps(definition))
    monkeypatch.setattr(sandbox_clean.cash, "password", HOSTILE_PASSWORD)
    return sandbox_clean.cash


def assert_no_password(*texts: str) -> None:
    from xml.sax.saxutils import escape

    from airflow_provider_ledgerlink.core.redaction import encoded_forms

    forms = {*encoded_forms(HOSTILE_PASSWORD), escape(HOSTILE_PASSWORD), escape(escape(HOSTILE_PASSWORD))}
    forms |= {"Pw&amp;&lt;x&gt;", "Pw&<x>", "Pw&amp;amp;&amp;lt;x"}
    for text in texts:
        for form in forms:
            assert form not in text, (form, text[:500])


def test_the_password_is_in_no_encoding_when_cash_quotes_the_import_request(
    hostile_cash: Any, caplog: pytest.LogCaptureFixture
) -> None:
    hostile_cash.echo_request_in_fault.add("Cash.import")
    assert CashHook().operations  # the password is accepted: the WSDL and a login work

    with caplog.at_level("DEBUG"), pytest.raises(AmbiguousWriteError) as caught:
        import_operator(MemoryState(), deferrable=False).execute(context())

    assert "Invalid request" in str(caught.value)  # the fault did quote the request
    assert_no_password(str(caught.value), repr(caught.value), caught.value.hint or "", caplog.text)


def test_the_password_is_in_no_encoding_in_the_sensor_or_the_trigger_event(
    hostile_cash: Any, sandbox_clean: Any, caplog: pytest.LogCaptureFixture
) -> None:
    transaction_id, expectation = pending_import(sandbox_clean)
    hostile_cash.echo_request_in_fault.add("Cash.export")  # the read-back quotes the request
    sensor = CashTransactionSensor(
        task_id="wait", transaction_id=transaction_id, expectation=expectation, deferrable=False
    )

    with caplog.at_level("DEBUG"):
        with pytest.raises(LedgerLinkError) as from_sensor:
            sensor.poke(context())
        event = run_trigger(
            CashTransactionTrigger(transaction_id, poll_interval=0.1, expectation=expectation)
        )

    assert "Invalid request" in str(from_sensor.value) and event["status"] == "error"
    assert "Invalid request" in event["message"]
    assert_no_password(str(from_sensor.value), repr(from_sensor.value), json.dumps(event), caplog.text)
