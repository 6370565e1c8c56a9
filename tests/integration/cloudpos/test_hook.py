"""CloudPosHook against the CloudPOS emulator over real localhost HTTP.

What the hook promises: every documented function, a tolerant envelope parser, errors that name
what to fix, the same answer under transient faults, no second login attempt with a rejected token,
the daily budget respected (by its own count and by CloudPOS's word), and the token nowhere but on
the wire.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.login_guard import LoginRefusedError
from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState, MemoryState
from airflow_provider_ledgerlink.hooks.cloudpos import (
    BRUSSELS,
    FUNCTIONS,
    CloudPosFunctionError,
    CloudPosHook,
    CloudPosIpBlockedError,
    parse_vendor_time,
    settings_from_connection,
)
from airflow_provider_ledgerlink.sandbox.cloudpos import (
    CONFIRMED_WEBORDER,
    PENDING_WEBORDER,
    cloudpos_connection_definition,
)
from airflow_provider_ledgerlink.sandbox.faults import reset_fault, status_fault, truncate_fault

WINDOW = (
    datetime(2026, 11, 17, 23, 0, tzinfo=timezone.utc),
    datetime(2026, 11, 18, 23, 0, tzinfo=timezone.utc),
)


def use_connection(monkeypatch, sandbox, **changes: Any) -> dict[str, Any]:
    """Point ``cloudpos_default`` at a licence of its own; returns the connection definition."""
    licence = changes.pop("licence", None) or f"hook-{uuid.uuid4().hex[:8]}"
    token = changes.pop("token", None)
    vendor_limit = changes.pop("vendor_limit", None)
    real_token = sandbox.cloudpos.add_licence(licence, daily_limit=vendor_limit)
    definition = cloudpos_connection_definition(
        sandbox.cloudpos_url, licence=licence, token=token or real_token, **changes
    )
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDPOS_DEFAULT", json.dumps(definition))
    return definition


@pytest.fixture
def state() -> MemoryState:
    return MemoryState()


@pytest.fixture
def hook(cloudpos_connection, state):
    hook = CloudPosHook(cloudpos_connection, state=state)
    yield hook
    hook.close()


def requests_seen(sandbox) -> int:
    return sandbox.stats.get("cloudpos", {}).get("requests", 0)


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("function", sorted(name for name, spec in FUNCTIONS.items() if not spec.filters))
def test_every_function_returns_its_records(hook, function):
    records = hook.call(function)

    assert isinstance(records, list)
    assert records and all(isinstance(record, dict) for record in records)


def test_functions_are_named_short_or_as_the_flag(hook):
    assert hook.call("get-categories") == hook.call("categories") == hook.call("get_categories")
    with pytest.raises(ValidationError, match="unknown function"):
        hook.call("get-everything")


def test_url_filters_go_in_the_url_and_unknown_filters_are_refused_before_sending(hook, sandbox_clean):
    # The reference: get-orders takes &start=, &end=, &date=YYYY-MM-DD and the bare &clockinclockout.
    orders = hook.call("orders", {"date": WINDOW[0]})  # a datetime is sent as its Brussels day

    assert orders and all(order["ordertime"].startswith("2026-11-18") for order in orders)
    assert sandbox_clean.cloudpos.calls[-1]["method"] == "GET"
    assert sandbox_clean.cloudpos.calls[-1]["url"] == {"date": "2026-11-18"}
    labour = hook.call("orders", {"date": "2026-11-18", "clockinclockout": True})
    assert sandbox_clean.cloudpos.calls[-1]["url"] == {"date": "2026-11-18", "clockinclockout": ""}
    assert labour and all(order["clockin"] or order["clockout"] for order in labour)
    ranged = hook.call("invoices", {"start": 500_010, "end": 500_012})
    assert [invoice["id"] for invoice in ranged] == [500_010, 500_011, 500_012]
    before = requests_seen(sandbox_clean)
    with pytest.raises(ValidationError, match="does not take the filter 'datefrom'"):
        hook.call("orders", {"datefrom": "2026-11-18"})
    assert requests_seen(sandbox_clean) == before


def test_post_filters_go_in_a_form_body(hook, sandbox_clean):
    assert hook.reservation_persons("2026-11-18")
    assert sandbox_clean.cloudpos.calls[-1]["method"] == "POST"
    assert hook.reservation_hours("2026-11-18", 4)
    with pytest.raises(CloudPosFunctionError, match="Persons can not be empty"):
        hook.call("reservation_hours", {"date": "2026-11-18"})


def test_signing_a_document_returns_its_vat_ticket_and_is_never_sent_twice(hook, sandbox_clean):
    invoice = next(i for i in hook.call("invoices", {"date": "2026-11-18"}) if i["doctype"] == 1)
    assert hook.sign_document("invoice", invoice["number"]).isdigit()
    with pytest.raises(CloudPosFunctionError, match="Document nr already in use"):
        hook.sign_document("invoice", invoice["number"])
    with pytest.raises(NotFoundError):
        hook.sign_document("offer", invoice["number"])


def test_nothing_found_is_an_empty_list(hook):
    assert hook.call("orders", {"date": "2030-01-01"}) == []


def test_national_register_numbers_are_left_out_unless_asked_for(hook):
    assert all("secnr" not in user for user in hook.call("users"))
    assert all(user["secnr"] for user in hook.call("users", include_sensitive=True))


def test_a_window_read_in_small_chunks_and_id_ranges_equals_one_big_read(hook, sandbox_clean):
    whole = [row for page in hook.iter_window("orders", *WINDOW) for row in page]

    sandbox_clean.cloudpos.max_rows_per_call = 7
    before = len(sandbox_clean.cloudpos.calls)
    pieces = [row for page in hook.iter_window("orders", *WINDOW, max_rows_per_call=7) for row in page]

    assert pieces == whole
    assert len(whole) > 7
    calls = sandbox_clean.cloudpos.calls[before:]
    assert calls[0]["url"] == {"date": "2026-11-18"}
    assert all(set(call["url"]) == {"start", "end"} for call in calls[1:])  # continued by id range
    assert all(WINDOW[0] <= parse_vendor_time(row["ordertime"]) < WINDOW[1] for row in whole)


def test_a_window_across_days_lands_exactly_its_rows(hook, sandbox_clean):
    start = datetime(2026, 11, 16, 14, 30, tzinfo=timezone.utc)
    end = datetime(2026, 11, 18, 9, 15, tzinfo=timezone.utc)
    for function, field_name in (("orders", "ordertime"), ("invoices", "date")):
        rows = [row for page in hook.iter_window(function, start, end) for row in page]
        every = [
            row
            for day in ("2026-11-16", "2026-11-17", "2026-11-18")
            for row in hook.call(function, {"date": day})
        ]
        expected = [row for row in every if start <= parse_vendor_time(row[field_name]) < end]
        assert rows == expected and rows


def test_confirmed_weborders(hook):
    confirmed = hook.get_confirmed_weborder(CONFIRMED_WEBORDER)
    assert confirmed.state == "confirmed"
    assert confirmed.confirmed_time == datetime(2026, 11, 19, 18, 30, tzinfo=BRUSSELS)
    assert confirmed.as_event()["confirmed_time_utc"] == "2026-11-19T17:30:00+00:00"
    assert hook.get_confirmed_weborder(PENDING_WEBORDER).state == "pending"
    assert hook.get_confirmed_weborder(123).state == "not_found"
    assert hook.get_confirmed_weborder("").state == "no_weborderid"


# --------------------------------------------------------------------------------------------------
# Faults: the same answer, or a clear error
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        status_fault(503, vendor="cloudpos", nth=[1]),
        status_fault(500, "boom", vendor="cloudpos", nth=[1]),
        reset_fault(vendor="cloudpos", nth=[1]),
        truncate_fault(vendor="cloudpos", nth=[1]),
    ],
    ids=["503", "500", "reset", "truncated"],
)
def test_transient_faults_give_the_same_records(hook, sandbox_clean, fault, caplog):
    expected = hook.call("customers")
    sandbox_clean.faults.add(fault)

    with caplog.at_level(logging.DEBUG):
        assert hook.call("customers") == expected

    assert "retrying" in caplog.text
    assert hook.settings.token not in caplog.text


def test_an_html_page_instead_of_json_is_a_clear_error(hook, sandbox_clean):
    sandbox_clean.faults.add(
        status_fault(
            200, "<html><body>Maintenance</body></html>", vendor="cloudpos", content_type="text/html"
        )
    )
    with pytest.raises(VendorError, match="HTML page") as error:
        hook.call("products")
    assert "host" in error.value.hint


def test_a_module_without_licence(hook, sandbox_clean):
    sandbox_clean.cloudpos.unlicensed = {"get-coupon"}
    with pytest.raises(PermissionDeniedError, match="No license for this module") as error:
        hook.call("coupons")
    assert error.value.reference == "errorcode 1005"


# --------------------------------------------------------------------------------------------------
# The login guard
# --------------------------------------------------------------------------------------------------
def test_a_wrong_token_never_leads_to_a_second_login_attempt(airflow_db, sandbox_clean, monkeypatch):
    use_connection(monkeypatch, sandbox_clean, token="0123456789abcdef0123456789abcdef")
    emulator = sandbox_clean.cloudpos

    first = CloudPosHook()  # Airflow Variables, as in a deployment
    with pytest.raises(AuthenticationError) as rejected:
        first.call("products")
    assert not isinstance(rejected.value, LoginRefusedError)
    assert "no further login attempt" in str(rejected.value)

    for _ in range(3):  # other tasks, other processes, task retries
        with pytest.raises(LoginRefusedError, match="until they are changed"):
            CloudPosHook(state=AirflowVariableState()).call("categories")

    assert emulator.refusals == {1002: 1}
    assert emulator.bad_logins["127.0.0.1"] == 1


def test_after_the_token_is_corrected_the_next_task_tries_once(sandbox_clean, monkeypatch, state):
    definition = use_connection(monkeypatch, sandbox_clean, token="f" * 32)
    with pytest.raises(AuthenticationError):
        CloudPosHook(state=state).call("products")

    good = sandbox_clean.cloudpos.licences[definition["login"]]
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDPOS_DEFAULT", json.dumps({**definition, "password": good}))
    assert CloudPosHook(state=state).call("categories")


def test_an_ip_block_stops_every_request_until_it_ends(hook, sandbox_clean):
    # Another system on the same address keeps using a wrong token.
    for _ in range(5):
        httpx.get(f"{sandbox_clean.cloudpos_url}/api/?licname=x&token=wrong&get-products")

    with pytest.raises(CloudPosIpBlockedError) as blocked:
        hook.call("products")
    assert blocked.value.blocked_until is not None
    assert blocked.value.blocked_until - datetime.now(timezone.utc) > timedelta(minutes=29)

    before = requests_seen(sandbox_clean)
    with pytest.raises(LoginRefusedError, match="blocked access until"):
        hook.call("categories")
    assert requests_seen(sandbox_clean) == before


# --------------------------------------------------------------------------------------------------
# The daily budget
# --------------------------------------------------------------------------------------------------
def test_the_budget_refuses_before_cloudpos_has_to(sandbox_clean, monkeypatch, state):
    definition = use_connection(monkeypatch, sandbox_clean, daily_request_limit=3, budget_block_size=2)
    hook = CloudPosHook(state=state)
    for _ in range(3):
        hook.call("categories")

    with pytest.raises(BudgetExhaustedError) as refused:
        hook.call("categories")

    assert sandbox_clean.cloudpos.used_today(definition["login"]) == 3
    assert refused.value.reset_at == datetime.combine(
        datetime.now(BRUSSELS).date() + timedelta(days=1), datetime.min.time(), tzinfo=BRUSSELS
    )


def test_when_cloudpos_says_the_limit_is_reached_every_task_waits_for_the_time_it_gave(
    sandbox_clean, monkeypatch, state
):
    use_connection(monkeypatch, sandbox_clean, vendor_limit=2)  # another app used most of the day
    hook = CloudPosHook(state=state)
    hook.call("categories")
    hook.call("categories")

    with pytest.raises(BudgetExhaustedError, match="Limit of '2' requests per day reached") as refused:
        hook.call("categories")
    assert refused.value.reference == "errorcode 1003"
    assert refused.value.reset_at.astimezone(BRUSSELS).time() == datetime.min.time()

    before = requests_seen(sandbox_clean)
    with pytest.raises(BudgetExhaustedError, match="the vendor refuses more requests"):
        CloudPosHook(state=state).call("categories")
    assert requests_seen(sandbox_clean) == before


def test_retries_are_counted_in_the_budget(hook, sandbox_clean, state):
    sandbox_clean.faults.add(status_fault(503, vendor="cloudpos", nth=[1]))
    hook.call("categories")
    hook.close()

    assert hook.budget.status().spent == 2


# --------------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------------
def test_the_token_is_only_on_the_wire(hook, sandbox_clean, caplog):
    token = hook.settings.token
    sandbox_clean.faults.add(reset_fault(vendor="cloudpos", nth=[2]))
    caplog.set_level(logging.DEBUG, logger="httpx")  # httpx logs every URL it requests
    with caplog.at_level(logging.DEBUG):
        hook.call("categories")  # the request reached CloudPOS with the token: it was accepted
        hook.call("products")  # retried after a reset
        with pytest.raises(ValidationError) as error:
            hook.call("orders", {"weborderid": 1})

    assert token not in caplog.text
    assert "HTTP Request: GET" in caplog.text and "&get-categories" in caplog.text
    for record in caplog.records:
        assert token not in record.getMessage()
    assert token not in str(error.value)
    assert token not in repr(hook.client.headers)


def test_transport_errors_never_show_the_token(sandbox_clean, monkeypatch, state):
    definition = use_connection(monkeypatch, sandbox_clean)
    definition["host"] = "http://127.0.0.1:9/cloudpos/api/"  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDPOS_DEFAULT", json.dumps(definition))
    hook = CloudPosHook(state=state)

    with pytest.raises(Exception) as error:
        hook.call("categories")

    assert definition["password"] not in str(error.value)
    assert definition["password"] not in repr(error.value)


def test_test_connection_reports_and_never_raises(hook, sandbox_clean, monkeypatch, state):
    ok, message = hook.test_connection()
    assert ok
    assert "12 categories" in message and "requests left" in message

    use_connection(monkeypatch, sandbox_clean, token="e" * 32)
    ok, message = CloudPosHook(state=state).test_connection()
    assert not ok
    assert "Token or name not valid" in message
    assert "e" * 32 not in message


def test_each_connection_test_costs_the_budget_exactly_the_requests_it_sent(
    cloudpos_connection, sandbox_clean, state
):
    licence = CloudPosHook(cloudpos_connection, state=state).settings.licence

    for click in (1, 2):  # every click is a new hook, as in the api-server
        ok, message = CloudPosHook(cloudpos_connection, state=state).test_connection()
        assert ok and "(this test used 1 request)" in message
        assert sandbox_clean.cloudpos.used_today(licence) == click
        status = CloudPosHook(cloudpos_connection, state=state).budget.status()
        assert status.spent == click  # no block of requests kept in reserve
        assert f"{status.limit - click} of {status.limit} requests left" in message

    sandbox_clean.faults.add(status_fault(503, vendor="cloudpos", nth=[1]))  # retried once
    ok, message = CloudPosHook(cloudpos_connection, state=state).test_connection()
    assert ok and "(this test used 2 requests)" in message
    assert CloudPosHook(cloudpos_connection, state=state).budget.status().spent == 4


def test_a_failed_connection_test_gives_its_reservation_back(sandbox_clean, monkeypatch, state):
    use_connection(monkeypatch, sandbox_clean, token="e" * 32)
    hook = CloudPosHook(state=state)

    ok, _message = hook.test_connection()

    assert not ok
    assert hook.budget.status().spent == 1  # the one request sent, nothing held back


# --------------------------------------------------------------------------------------------------
# The connection
# --------------------------------------------------------------------------------------------------
class FakeConnection:
    def __init__(self, *, login="lic", password="tok-123456", host=None, extra=None) -> None:
        self.login = login
        self.password = password
        self.host = host
        self.extra_dejson = extra or {}


def test_defaults_and_host_override():
    settings = settings_from_connection(FakeConnection(), "c")
    assert settings.base_url == "https://cloudpos.be/api/"
    assert settings.daily_limit == 500
    assert settings.on_budget_exhausted == "fail"
    assert settings.bad_login_cooldown is None
    assert (
        settings_from_connection(FakeConnection(host="proxy.example"), "c").base_url
        == "https://proxy.example/api/"
    )
    assert (
        settings_from_connection(FakeConnection(host="http://localhost:8765/cloudpos/api"), "c").base_url
        == "http://localhost:8765/cloudpos/api/"
    )


@pytest.mark.parametrize(
    ("connection", "field"),
    [
        (FakeConnection(password=""), "Token"),
        (FakeConnection(login=" "), "Licence name"),
        (FakeConnection(host="http://cloudpos.be/api/"), "API URL override (optional)"),
        (FakeConnection(host="https://user:pw@cloudpos.be/api/"), "API URL override (optional)"),
        (FakeConnection(extra={"daily_request_limit": "many"}), "Daily request limit"),
        (FakeConnection(extra={"daily_request_limit": 0}), "Daily request limit"),
        (FakeConnection(extra={"on_budget_exhausted": "panic"}), "When the budget is spent"),
        (FakeConnection(extra={"sensor_reserve_percent": 150}), "Budget kept from sensors (%)"),
    ],
)
def test_a_malformed_connection_names_the_field_to_fix(connection, field):
    with pytest.raises(ConfigurationError) as error:
        settings_from_connection(connection, "cloudpos_default")
    assert field in error.value.hint
    assert "tok-123456" not in str(error.value)


def test_old_style_prefixed_extras_are_read():
    settings = settings_from_connection(
        FakeConnection(extra={"extra__ledgerlink_cloudpos__daily_request_limit": "800"}), "c"
    )
    assert settings.daily_limit == 800


# --------------------------------------------------------------------------------------------------
# V2 weborder.insert
# --------------------------------------------------------------------------------------------------
ORDER = {"customerid": 3, "delivery": 0, "weborderdetail": [{"productid": 1001, "quantity": 2}]}


def test_create_weborder_returns_the_new_id(hook, sandbox_clean):
    weborder = hook.create_weborder(ORDER)

    assert int(weborder) >= 8001
    assert sandbox_clean.cloudpos.weborders[int(weborder)].body == ORDER
    assert hook.get_confirmed_weborder(weborder).state == "confirmed"


def test_cloudpos_refusing_a_weborder_is_final(hook, sandbox_clean):
    with pytest.raises(ValidationError, match="Product 1 does not exist"):
        hook.create_weborder({"weborderdetail": [{"productid": 1, "quantity": 1}]})
    assert len(sandbox_clean.cloudpos.weborders) == 2  # only the fixtures


def test_a_lost_answer_to_a_weborder_is_never_sent_again(hook, sandbox_clean):
    sandbox_clean.faults.add(reset_fault(vendor="cloudpos", path="weborder.insert", when="after", nth=[1]))

    with pytest.raises(AmbiguousWriteError, match="may or may not have been applied"):
        hook.create_weborder(ORDER)

    created = [n for n in sandbox_clean.cloudpos.weborders if n >= 8001]
    assert len(created) == 1  # it did arrive; it was sent once


# --------------------------------------------------------------------------------------------------
# asyncio (the trigger's path)
# --------------------------------------------------------------------------------------------------
def test_the_async_path_shares_the_budget_and_the_guard(cloudpos_connection, sandbox_clean, state):
    hook = CloudPosHook(cloudpos_connection, state=state, holder="trigger-holder", budget_kind="poll")

    async def poll() -> tuple[str, float]:
        status = await hook.aget_confirmed_weborder(PENDING_WEBORDER)
        return status.state, await hook.apoll_interval(5)

    state_name, interval = asyncio.run(poll())

    assert state_name == "pending"
    assert interval >= 5
    assert CloudPosHook(cloudpos_connection, state=state).budget.status().spent == 1
    assert CloudPosHook(cloudpos_connection, state=state).budget.status().pollers == 1


# --------------------------------------------------------------------------------------------------
# V2 selects (tests/fixtures/cloudpos_v2_clients.json: how CloudPOS's V2 clients call them)
# --------------------------------------------------------------------------------------------------
V2_CLIENTS = json.loads((Path(__file__).parents[2] / "fixtures" / "cloudpos_v2_clients.json").read_text())


def test_v2_selects_send_what_v2_clients_send_and_return_the_rows(hook, sandbox_clean):
    products = hook.select_products()
    categories = hook.select_categories()
    customers = hook.select_customers()

    assert len(products) == len(hook.call("products")) and len(categories) == 12 and len(customers) == 300
    for action, rows in (
        ("product.select", products),
        ("category.select", categories),
        ("customer.select", customers),
    ):
        assert set(V2_CLIENTS["selects"][action]["fields"]) <= set(rows[0])
    sent = {call["function"]: call.get("body") for call in sandbox_clean.cloudpos.calls}
    for action, spec in V2_CLIENTS["selects"].items():
        assert sent[action] == spec["body"], action
    assert hook.budget.used == 4  # one request each, counted in the day's budget


def test_v2_customer_select_by_email(hook):
    assert [row["id"] for row in hook.select_customers(email="klant7@example.be")] == [7]
    assert hook.select_customers(email="nobody@example.be") == []  # 2000: nothing found
    with pytest.raises(ValidationError, match="email is empty"):
        hook.select_customers(email=" ")


def test_v2_selects_are_retried_after_a_transient_fault(hook, sandbox_clean):
    sandbox_clean.faults.add(status_fault(503, vendor="cloudpos", path="category.select", nth=[1]))

    assert len(hook.select_categories()) == 12


def test_get_pages_and_get_rows_read_what_call_and_iter_window_read(hook, sandbox_clean):
    sandbox_clean.cloudpos.max_rows_per_call = 7
    pages = list(hook.get_pages("orders", window=WINDOW, max_rows_per_call=7))
    rows = [row for page in hook.iter_window("orders", *WINDOW, max_rows_per_call=7) for row in page]

    assert [row for page in pages for row in page] == rows
    assert list(hook.get_rows("orders", window=WINDOW, max_rows_per_call=7)) == rows
    assert len(pages) > 1
    assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
    assert [page.offset for page in pages] == [sum(len(p) for p in pages[:i]) for i in range(len(pages))]
    (products,) = hook.get_pages("products")
    assert products == hook.call("products") and products.last and products.offset == 0
