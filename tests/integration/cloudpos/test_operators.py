"""CloudPOS operators, the weborder sensor and its trigger against the emulator.

Extracts land what the hook reads and reserve their requests before starting; the weborder
operator never sends a weborder twice; the sensor waits, fails at once, or paces itself by the
budget; the trigger honours its contract (serialisable, importable, exactly one event).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airflow.sdk import PokeReturnValue

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError
from airflow_provider_ledgerlink.core.compat import AirflowFailException, AirflowSensorTimeout, TaskDeferred
from airflow_provider_ledgerlink.core.errors import AmbiguousWriteError, ValidationError, VendorError
from airflow_provider_ledgerlink.core.sinks import read_manifest, read_rows
from airflow_provider_ledgerlink.core.writes import SUMMARY_KEYS, LedgerLinkWriteOperator
from airflow_provider_ledgerlink.hooks.cloudpos import (
    BRUSSELS,
    CloudPosHook,
    WeborderIdMissingError,
    WeborderNotFoundError,
)
from airflow_provider_ledgerlink.operators.cloudpos import (
    CloudPosCreateWeborderOperator,
    CloudPosExtractOperator,
)
from airflow_provider_ledgerlink.sandbox.cloudpos import (
    CONFIRMED_WEBORDER,
    PENDING_WEBORDER,
    cloudpos_connection_definition,
)
from airflow_provider_ledgerlink.sandbox.faults import latency_fault, reset_fault, status_fault
from airflow_provider_ledgerlink.sensors.cloudpos import CloudPosWeborderConfirmedSensor
from airflow_provider_ledgerlink.triggers.cloudpos import CloudPosWeborderConfirmedTrigger

DAY = ("2026-11-17T23:00:00+00:00", "2026-11-18T23:00:00+00:00")  # 18 November in Brussels


@pytest.fixture
def connection(airflow_db, cloudpos_connection) -> str:
    """``cloudpos_default`` on a licence of its own, with the budget in Airflow Variables."""
    return cloudpos_connection


def reconnect(monkeypatch, sandbox, **extra: Any) -> dict[str, Any]:
    licence = f"op-{uuid.uuid4().hex[:8]}"
    token = sandbox.cloudpos.add_licence(licence)
    definition = cloudpos_connection_definition(sandbox.cloudpos_url, licence=licence, token=token, **extra)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDPOS_DEFAULT", json.dumps(definition))
    return definition


def extract(tmp_path: Path, function: str, **kwargs: Any) -> CloudPosExtractOperator:
    kwargs.setdefault("window_start", DAY[0])
    kwargs.setdefault("window_end", DAY[1])
    return CloudPosExtractOperator(
        task_id=f"extract_{function}", function=function, destination=str(tmp_path / function), **kwargs
    )


def landed(summary: dict[str, Any]) -> list[dict[str, Any]]:
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath

    return list(read_rows(ObjectStoragePath(summary["folder"])))


# --------------------------------------------------------------------------------------------------
# CloudPosExtractOperator
# --------------------------------------------------------------------------------------------------
def test_an_orders_extract_lands_the_days_orders(connection, tmp_path):
    summary = extract(tmp_path, "orders").execute({})

    hook = CloudPosHook(connection)
    expected = [
        row
        for page in hook.iter_window("orders", datetime.fromisoformat(DAY[0]), datetime.fromisoformat(DAY[1]))
        for row in page
    ]
    assert summary["rows"] == len(expected) > 0
    assert landed(summary) == expected
    assert summary["folder"].endswith("20261117T230000Z_20261118T230000Z")
    manifest = read_manifest(Path(summary["folder"]))
    assert manifest["source"]["function"] == "get-orders"
    assert hook.settings.token not in json.dumps(summary)


def test_products_are_incremental_on_modtime_and_categories_a_full_copy(connection, tmp_path):
    products = landed(extract(tmp_path, "products").execute({}))
    categories_op = extract(tmp_path, "categories")
    categories = landed(categories_op.execute({}))

    start, end = (datetime.fromisoformat(moment).timestamp() for moment in DAY)
    assert products and all(start <= product["modtime"] < end for product in products)
    assert len(products) < 120
    assert not categories_op.incremental
    assert len(categories) == 12


def test_national_register_numbers_stay_out_of_the_lake_unless_asked_for(connection, tmp_path):
    without = landed(extract(tmp_path / "a", "users").execute({}))
    with_numbers = landed(
        extract(tmp_path / "b", "users", include_national_register_numbers=True).execute({})
    )

    assert without and all("secnr" not in user for user in without)
    assert all(user["secnr"] for user in with_numbers)


def test_an_extract_that_would_cross_the_budget_refuses_to_start(
    airflow_db, sandbox_clean, monkeypatch, tmp_path
):
    definition = reconnect(monkeypatch, sandbox_clean, daily_request_limit=2)
    three_days = extract(tmp_path, "orders", window_start="2026-11-15T23:00:00+00:00")

    with pytest.raises(BudgetExhaustedError, match="3 more are needed"):
        three_days.execute({})

    assert sandbox_clean.cloudpos.used_today(definition["login"]) == 0  # nothing was sent
    assert not (tmp_path / "orders").exists() or not list((tmp_path / "orders").rglob("_manifest-*.json"))


def test_an_extract_told_to_wait_defers_until_the_budget_resets(
    airflow_db, sandbox_clean, monkeypatch, tmp_path
):
    reconnect(monkeypatch, sandbox_clean, daily_request_limit=1, on_budget_exhausted="wait")
    operator = extract(tmp_path, "orders", window_start="2026-11-16T23:00:00+00:00")

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})

    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "DateTimeTrigger"
    assert trigger.moment.astimezone(BRUSSELS).time() == datetime.min.time()  # Brussels midnight
    assert deferred.value.method_name == "execute_after_budget_reset"


def test_an_unknown_list_or_a_window_on_a_list_without_dates_is_refused_when_the_dag_is_built():
    with pytest.raises(ValidationError, match="unknown function"):
        CloudPosExtractOperator(task_id="x", function="everything", destination="/tmp/x")
    with pytest.raises(ValueError, match="incremental=False"):
        CloudPosExtractOperator(task_id="y", function="categories", destination="/tmp/y", incremental=True)


# --------------------------------------------------------------------------------------------------
# CloudPosCreateWeborderOperator
# --------------------------------------------------------------------------------------------------
ORDER = {"customerid": 2, "delivery": 1, "weborderdetail": [{"productid": 1003, "quantity": 1}]}


def create(reference: str | None = None, weborder: Any = ORDER) -> CloudPosCreateWeborderOperator:
    return CloudPosCreateWeborderOperator(
        task_id="create", weborder=weborder, reference=reference or f"test/{uuid.uuid4().hex}"
    )


def created_weborders(sandbox) -> list[int]:
    return [n for n in sandbox.cloudpos.weborders if n >= 8001]


def test_a_weborder_is_created_once_even_when_the_task_is_retried(connection, sandbox_clean):
    operator = create()

    first = operator.execute({})
    again = create(reference=operator.reference).execute({})  # the retry

    assert first["created"] and not again["created"]
    assert again["weborder_id"] == first["weborder_id"]
    assert created_weborders(sandbox_clean) == [int(first["weborder_id"])]
    # The summary every write operator returns, for one record, plus the weborder at the top.
    assert {k: again[k] for k in SUMMARY_KEYS[:-1]} == {
        **dict.fromkeys(SUMMARY_KEYS[:-1], 0),
        "records": 1,
        "already_done": 1,
    }
    assert again["results"] == [
        {
            "index": 0,
            "record": f"weborder {operator.reference}",
            "status": "already_done",
            "weborder_id": again["weborder_id"],
        }
    ]


def insert_requests(sandbox) -> int:
    return sum(1 for call in sandbox.cloudpos.calls if call["function"] == "weborder.insert")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # CloudPOS created the weborder and answered 200 without its weborderid.
        (
            status_fault(200, {"success": 1}, vendor="cloudpos", path="weborder.insert", when="after"),
            "without a weborderid",
        ),
        # CloudPOS created it, then the answer was a server error: not a verdict.
        (status_fault(500, "oops", vendor="cloudpos", path="weborder.insert", when="after"), "HTTP 500"),
        # CloudPOS created it and the connection dropped before the answer.
        (reset_fault(vendor="cloudpos", path="weborder.insert", when="after"), "may or may not"),
        # A 503 after sending: CloudPOS documents no 503 (its V1 reference gives errorcodes only), so
        # it is no refusal.
        (status_fault(503, vendor="cloudpos", path="weborder.insert", when="after"), "HTTP 503"),
    ],
    ids=["200-without-id", "5xx-after-sending", "dropped-after-sending", "503-after-sending"],
)
def test_an_answer_that_may_hide_a_created_weborder_is_ambiguous_and_never_sent_again(
    connection, sandbox_clean, fault, message
):
    sandbox_clean.faults.add(fault)
    operator = create()
    ti = mock.MagicMock()
    with pytest.raises(AmbiguousWriteError, match=message) as first:
        operator.execute({"ti": ti})
    pushed = ti.xcom_push.call_args.kwargs
    assert pushed["key"] == "results" and (pushed["value"]["in_doubt"], pushed["value"]["records"]) == (1, 1)

    assert "CloudPOS back office" in first.value.hint  # how to check in the POS
    assert operator.record_key() in first.value.hint  # and how to record what was found
    mark = CloudPosHook(connection).state.get_json(operator.record_key())
    assert mark is not None and mark["state"] == "sending"  # the mark is kept

    sandbox_clean.faults.clear()  # CloudPOS answers normally again: still nothing is sent
    for again in (create(reference=operator.reference), create(reference=operator.reference)):
        again.sending_wait = 0  # the task's retry, then a new run of the same weborder
        with pytest.raises(AmbiguousWriteError, match="never learned") as refused:
            again.execute({})
        assert "CloudPOS back office" in refused.value.hint

    assert insert_requests(sandbox_clean) == 1
    assert len(created_weborders(sandbox_clean)) == 1
    assert CloudPosHook(connection).state.get_json(operator.record_key())["state"] == "sending"


def test_four_concurrent_tries_of_one_weborder_create_it_once(connection, sandbox_clean):
    # Slow answers keep the tries overlapping: the others find the weborder being sent and wait.
    sandbox_clean.faults.add(latency_fault(300, vendor="cloudpos", path="weborder.insert"))
    reference = f"test/{uuid.uuid4().hex}"
    start = threading.Barrier(4)
    outcomes: list[Any] = []

    def attempt() -> None:
        operator = create(reference=reference)
        start.wait()
        try:
            outcomes.append(operator.execute({}))
        except Exception as error:  # asserted below
            outcomes.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(created_weborders(sandbox_clean)) == 1  # counted in the emulator
    assert insert_requests(sandbox_clean) == 1
    assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
    assert sorted(outcome["created"] for outcome in outcomes) == [False, False, False, True]
    assert {outcome["weborder_id"] for outcome in outcomes} == {str(created_weborders(sandbox_clean)[0])}


def test_a_weborder_cloudpos_refused_can_be_corrected_and_sent_again(connection, sandbox_clean):
    reference = f"test/{uuid.uuid4().hex}"
    with pytest.raises(ValidationError, match="does not exist"):
        create(reference, {"weborderdetail": [{"productid": 5, "quantity": 1}]}).execute({})

    assert create(reference).execute({})["created"]


def test_the_weborder_operator_is_the_write_base_and_returns_its_summary(connection, sandbox_clean):
    operator = create()
    ti = mock.MagicMock()

    summary = operator.execute({"ti": ti})

    assert isinstance(operator, LedgerLinkWriteOperator)
    assert tuple(summary)[: len(SUMMARY_KEYS)] == SUMMARY_KEYS  # the keys every write operator returns
    assert (summary["records"], summary["created"]) == (1, 1)
    assert summary["reference"] == operator.reference
    assert (
        summary["weborder_id"]
        == summary["results"][0]["weborder_id"]
        == str(created_weborders(sandbox_clean)[0])
    )
    with pytest.raises(ValueError, match="creates one weborder: give weborder"):
        CloudPosCreateWeborderOperator(task_id="create", weborder=ORDER, records=[ORDER, ORDER])


def test_the_weborder_template_fields():
    assert set(CloudPosCreateWeborderOperator.template_fields) == {
        "weborder",
        "reference",
        "cloudpos_conn_id",
    }


# --------------------------------------------------------------------------------------------------
# CloudPosWeborderConfirmedSensor
# --------------------------------------------------------------------------------------------------
def sensor(weborder_id: Any, **kwargs: Any) -> CloudPosWeborderConfirmedSensor:
    kwargs.setdefault("poke_interval", 5)
    return CloudPosWeborderConfirmedSensor(task_id="wait", weborder_id=weborder_id, **kwargs)


def test_the_sensor_returns_the_confirmed_time(connection):
    result = sensor(CONFIRMED_WEBORDER).poke({})

    assert isinstance(result, PokeReturnValue) and result.is_done
    assert result.xcom_value["confirmed_time"] == "2026-11-19T18:30:00+01:00"
    assert result.xcom_value["confirmed_time_utc"] == "2026-11-19T17:30:00+00:00"


def test_not_confirmed_keeps_waiting_at_the_budgets_pace(connection):
    waiting = sensor(PENDING_WEBORDER, poke_interval=5)

    assert waiting.poke({}) is False
    assert waiting._get_next_poke_interval(0.0, lambda: 0.0, 1) >= 5


@pytest.mark.parametrize(
    ("weborder", "error"), [(424242, WeborderNotFoundError), ("", WeborderIdMissingError)]
)
def test_a_weborder_that_will_never_be_confirmed_fails_at_once_without_retries(connection, weborder, error):
    with pytest.raises(error) as failed:
        sensor(weborder).poke({})
    assert isinstance(failed.value, AirflowFailException)  # Airflow does not retry these


def test_when_the_budget_is_spent_the_sensor_waits_for_the_reset_instead_of_failing(
    airflow_db, sandbox_clean, monkeypatch
):
    reconnect(monkeypatch, sandbox_clean, daily_request_limit=1)
    CloudPosHook().call("categories")
    waiting = sensor(PENDING_WEBORDER, poke_interval=5)

    assert waiting.poke({}) is False

    wait = waiting._get_next_poke_interval(0.0, lambda: 0.0, 1)
    brussels_midnight = datetime.combine(
        datetime.now(BRUSSELS).date() + timedelta(days=1), datetime.min.time(), tzinfo=BRUSSELS
    )
    assert wait == pytest.approx((brussels_midnight - datetime.now(timezone.utc)).total_seconds(), abs=5)


def test_deferrable_mode_polls_once_on_the_worker_then_defers(connection):
    waiting = sensor(PENDING_WEBORDER, deferrable=True, timeout=600)

    with pytest.raises(TaskDeferred) as deferred:
        waiting.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, CloudPosWeborderConfirmedTrigger)
    assert trigger.weborder_id == str(PENDING_WEBORDER)
    assert trigger.poke_interval == 5
    assert deferred.value.timeout > timedelta(seconds=600)
    json.dumps(trigger.serialize()[1])


def test_deferrable_mode_does_not_defer_when_already_confirmed(connection):
    assert sensor(CONFIRMED_WEBORDER, deferrable=True).execute({})["state"] == "confirmed"


def test_execute_complete_turns_every_event_into_a_result_or_the_right_error(connection):
    waiting = sensor(PENDING_WEBORDER)
    confirmation = {"weborder_id": "1", "state": "confirmed", "confirmed_time": None, "message": ""}

    assert waiting.execute_complete({}, {"status": "confirmed", "weborder": confirmation}) == confirmation
    with pytest.raises(WeborderNotFoundError):
        waiting.execute_complete({}, {"status": "not_found", "message": "Weborder does not exist"})
    with pytest.raises(WeborderIdMissingError):
        waiting.execute_complete({}, {"status": "no_weborderid", "message": "weborderid can not be empty"})
    with pytest.raises(AirflowSensorTimeout):
        waiting.execute_complete({}, {"status": "timeout", "message": "not confirmed in time"})
    with pytest.raises(VendorError, match="Token or name"):
        waiting.execute_complete({}, {"status": "error", "message": "Token or name not valid"})
    with pytest.raises(VendorError, match="unexpected event"):
        waiting.execute_complete({}, None)


# --------------------------------------------------------------------------------------------------
# CloudPosWeborderConfirmedTrigger
# --------------------------------------------------------------------------------------------------
def trigger(weborder_id: Any, **kwargs: Any) -> CloudPosWeborderConfirmedTrigger:
    kwargs.setdefault("poke_interval", 0.2)
    return CloudPosWeborderConfirmedTrigger(
        weborder_id=str(weborder_id),
        cloudpos_conn_id="cloudpos_default",
        holder=uuid.uuid4().hex[:16],
        **kwargs,
    )


def run(trigger: CloudPosWeborderConfirmedTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


def test_the_trigger_serialises_to_json_and_back_to_itself():
    original = trigger(8001, end_time=1234.5)
    classpath, kwargs = original.serialize()

    module, _, name = classpath.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert cls is CloudPosWeborderConfirmedTrigger
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert cls(**kwargs).serialize() == (classpath, kwargs)


@pytest.fixture
def roomy(airflow_db, sandbox_clean, monkeypatch) -> dict[str, Any]:
    """A licence with a huge budget: with 500 a day the trigger would rightly wait minutes per poll."""
    return reconnect(monkeypatch, sandbox_clean, daily_request_limit=1_000_000)


def test_the_trigger_waits_until_the_pos_confirms(roomy, sandbox_clean):
    # Confirmed on the third poll, whatever the timing: two "weborder not confirmed" (2001) first.
    sandbox_clean.cloudpos.confirm_on_poll = 3
    weborder = CloudPosHook().create_weborder(ORDER)

    events = run(trigger(weborder, poke_interval=0.05))

    assert len(events) == 1
    assert events[0]["status"] == "confirmed"
    assert events[0]["weborder"]["weborder_id"] == weborder
    polls = [call for call in sandbox_clean.cloudpos.calls if call["function"] == "get-confirmedweborder"]
    assert len(polls) == 3


@pytest.mark.parametrize(("weborder", "status"), [(424242, "not_found"), ("", "no_weborderid")])
def test_the_trigger_ends_at_once_for_a_weborder_that_will_never_be_confirmed(roomy, weborder, status):
    assert run(trigger(weborder)) == [
        {"status": status, "weborder_id": str(weborder), "message": run_message(status)}
    ]


def run_message(status: str) -> str:
    return {"not_found": "weborderid does not exist", "no_weborderid": "weborderid can not be empty"}[status]


def test_the_trigger_times_out_with_one_event(roomy):
    events = run(trigger(PENDING_WEBORDER, end_time=time.time() + 0.5))

    assert [event["status"] for event in events] == ["timeout"]


def test_the_trigger_reports_a_rejected_token_once_and_never_tries_it_again(
    airflow_db, sandbox_clean, monkeypatch
):
    definition = reconnect(monkeypatch, sandbox_clean, daily_request_limit=1_000_000)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDPOS_DEFAULT", json.dumps({**definition, "password": "a" * 32}))

    first = run(trigger(PENDING_WEBORDER))
    second = run(trigger(PENDING_WEBORDER))

    assert first[0]["status"] == second[0]["status"] == "error"
    assert "Token or name not valid" in first[0]["message"]
    assert second[0]["error"] == "LoginRefusedError"
    assert sandbox_clean.cloudpos.refusals == {1002: 1}
    assert "a" * 32 not in json.dumps(first + second)


def test_the_trigger_waits_out_a_quota_stop_instead_of_failing(roomy, sandbox_clean):
    hook = CloudPosHook()
    hook.budget.record_vendor_stop(datetime.now(timezone.utc) + timedelta(seconds=1), "Limit reached")

    started = time.monotonic()
    events = run(trigger(CONFIRMED_WEBORDER))

    assert [event["status"] for event in events] == ["confirmed"]
    assert time.monotonic() - started >= 0.9
