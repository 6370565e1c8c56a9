"""The CloudPOS emulator on the wire: V1 flags and envelopes, error codes, quota, IP block, weborders, V2."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from airflow_provider_ledgerlink.sandbox.cloudpos import (
    CONFIRMED_WEBORDER,
    LICENCE,
    PENDING_WEBORDER,
    CloudPosEmulator,
    sandbox_cloudpos_token,
)
from airflow_provider_ledgerlink.sandbox.server import Request


@pytest.fixture
def api(sandbox_clean):
    with httpx.Client(base_url=sandbox_clean.cloudpos_url + "/api/", timeout=10) as client:
        yield client


def v1(api: httpx.Client, function: str, *, licence=LICENCE, token=None, data=None, headers=None) -> dict:
    token = sandbox_cloudpos_token() if token is None else token
    query = f"licname={licence}&token={token}&{function}"
    if data is None:
        response = api.get(f"?{query}", headers=headers)
    else:
        response = api.post(f"?{query}", data=data, headers=headers)
    assert response.status_code == 200
    return response.json()


def test_a_function_is_a_bare_flag_and_the_answer_is_the_success_envelope(api):
    body = v1(api, "get-categories")

    assert body["success"] == 1
    assert body["data"][0] == {"id": 1, "name": "Frieten"}


def test_products_carry_the_documented_fields(api):
    product = v1(api, "get-products")["data"][0]

    assert set(product) == {
        "id",
        "name",
        "categorylink",
        "price",
        "quantity",
        "popup",
        "menupopup",
        "openprice",
        "modtime",
    }
    assert isinstance(product["modtime"], int)


@pytest.mark.parametrize(
    ("licence", "token", "code", "message"),
    [
        ("", "", 1001, "Token and name can not be empty"),
        (LICENCE, "wrong", 1002, "Token or name not valid"),
        ("nobody", sandbox_cloudpos_token(), 1002, "Token or name not valid"),
    ],
)
def test_bad_credentials(api, licence, token, code, message):
    assert v1(api, "get-products", licence=licence, token=token) == {
        "success": 0,
        "errorcode": code,
        "message": message,
    }


def test_the_fifth_bad_login_blocks_the_address_for_30_minutes(api, sandbox_clean):
    for _ in range(4):
        assert v1(api, "get-products", token="wrong")["errorcode"] == 1002
    assert v1(api, "get-products", token="wrong")["errorcode"] == 1002  # the fifth still answers 1002

    blocked = v1(api, "get-products")  # even with the right token
    assert blocked["errorcode"] == 1004
    assert blocked["message"].startswith("5 bad logins reached, your ip adress is blocked till '")
    until = datetime.strptime(blocked["message"].split("'")[1], "%Y-%m-%d %H:%M:%S")
    expected = sandbox_clean.cloudpos.brussels_now().replace(tzinfo=None) + timedelta(minutes=30)
    assert abs((until - expected).total_seconds()) < 5

    # Another address is not blocked.
    assert v1(api, "get-products", headers={"X-Forwarded-For": "10.1.2.3"})["success"] == 1


def test_a_good_login_resets_the_bad_login_count(api, sandbox_clean):
    for _ in range(4):
        v1(api, "get-products", token="wrong")
    v1(api, "get-categories")
    v1(api, "get-products", token="wrong")

    assert sandbox_clean.cloudpos.bad_logins["127.0.0.1"] == 1


def test_the_daily_quota_answers_1003_with_the_next_brussels_midnight(api, sandbox_clean):
    emulator = sandbox_clean.cloudpos
    token = emulator.add_licence("small", daily_limit=3)
    for _ in range(3):
        assert v1(api, "get-categories", licence="small", token=token)["success"] == 1
    v1(api, "get-categories", licence="small", token="wrong")  # bad logins do not count

    refused = v1(api, "get-categories", licence="small", token=token)

    tomorrow = emulator.brussels_now().date() + timedelta(days=1)
    assert refused == {
        "success": 0,
        "errorcode": 1003,
        "message": f"Limit of '3' requests per day reached, next request possible '{tomorrow} 00:00:00'",
    }
    assert emulator.used_today("small") == 3
    assert v1(api, "get-categories")["success"] == 1  # other licences have their own quota


def test_the_quota_resets_at_brussels_midnight():
    now = [0.0]
    emulator = CloudPosEmulator(clock=lambda: now[0])
    emulator.add_licence("x", "t", daily_limit=1)

    def call() -> dict:
        request = Request("GET", "/cloudpos/api/", "licname=x&token=t&get-categories", {}, b"", "/api/")
        return json.loads(emulator.handle(request).body)

    now[0] = datetime.fromisoformat("2026-11-19T23:59:00+01:00").timestamp()
    assert call()["success"] == 1
    assert call()["errorcode"] == 1003
    now[0] = datetime.fromisoformat("2026-11-20T00:00:01+01:00").timestamp()
    assert call()["success"] == 1


def test_an_empty_result_is_errorcode_2000(api):
    body = v1(api, "get-orders", data={"datefrom": "2030-01-01 00:00:00", "dateto": "2030-01-02 00:00:00"})
    assert body == {"success": 0, "errorcode": 2000, "message": "No orders found"}


def test_an_unlicensed_module_answers_1005(api, sandbox_clean):
    httpx.post(sandbox_clean.url + "/_sandbox/cloudpos/config", json={"unlicensed": ["get-reservations"]})

    assert v1(api, "get-reservations")["errorcode"] == 1005


def test_orders_are_filtered_by_brussels_date_inclusively_and_by_id(api):
    day = v1(api, "get-orders", data={"datefrom": "2026-11-18 00:00:00", "dateto": "2026-11-18 23:59:59"})[
        "data"
    ]

    assert day and all(order["date"].startswith("2026-11-18") for order in day)
    ids = [order["id"] for order in day]
    assert ids == sorted(ids)
    rest = v1(
        api,
        "get-orders",
        data={"datefrom": "2026-11-18 00:00:00", "dateto": "2026-11-18 23:59:59", "idfrom": str(ids[10])},
    )["data"]
    assert [order["id"] for order in rest] == ids[10:]
    line = day[0]["lines"][0]
    assert set(line) == {"productid", "name", "quantity", "price", "tax"}


def test_an_answer_holds_at_most_the_row_limit_lowest_ids_first(api, sandbox_clean):
    sandbox_clean.cloudpos.max_rows_per_call = 7
    body = v1(api, "get-orders", data={"datefrom": "2026-11-01 00:00:00", "dateto": "2026-11-19 23:59:59"})

    assert len(body["data"]) == 7
    assert body["data"][0]["date"].startswith("2026-11-01")


def test_json_bodies_and_query_filters_are_accepted_too(api):
    as_form = v1(
        api, "get-invoices", data={"datefrom": "2026-11-18 00:00:00", "dateto": "2026-11-18 23:59:59"}
    )
    as_json = api.post(
        f"?licname={LICENCE}&token={sandbox_cloudpos_token()}&get-invoices",
        json={"datefrom": "2026-11-18 00:00:00", "dateto": "2026-11-18 23:59:59"},
    ).json()
    assert as_form == as_json


def test_generated_data_is_the_same_for_the_same_seed():
    first = CloudPosEmulator(seed=7)
    second = CloudPosEmulator(seed=7)
    other = CloudPosEmulator(seed=8)

    assert first._data.order(123) == second._data.order(123)
    assert first._data.customer(5) == second._data.customer(5)
    assert first._data.order(123) != other._data.order(123)
    assert first.token == sandbox_cloudpos_token(7)


def test_users_carry_a_national_register_number(api):
    user = v1(api, "get-users")["data"][0]
    number = user["secnr"].replace(".", "").replace("-", "")
    assert len(number) == 11
    assert int(number[-2:]) == 97 - int(number[:9]) % 97


REFERENCE = json.loads((Path(__file__).parents[2] / "fixtures" / "cloudpos_reference.json").read_text())
WEBORDER_ERRORS = REFERENCE["functions"]["get-confirmedweborder"]["errors"]


@pytest.mark.parametrize(
    ("weborderid", "code"),
    [(str(PENDING_WEBORDER), "2001"), ("", "2002"), ("999999", "2003")],
)
def test_get_confirmedweborder_answers_the_reference_codes(api, weborderid, code):
    assert v1(api, "get-confirmedweborder", data={"weborderid": weborderid}) == {
        "success": 0,
        "errorcode": int(code),
        "message": WEBORDER_ERRORS[code],
    }


def test_a_confirmed_weborder_gives_webordertime(api):
    answer = v1(api, "get-confirmedweborder", data={"weborderid": str(CONFIRMED_WEBORDER)})
    assert answer == {"success": 1, "webordertime": "2026-11-19 18:30:00"}
    assert set(answer) - {"success"} == set(REFERENCE["functions"]["get-confirmedweborder"]["fields"])


def v2_insert(api: httpx.Client, body: dict, *, token: str | None = None) -> httpx.Response:
    headers = {"Licensename": LICENCE, "Token": token or sandbox_cloudpos_token()}
    return api.post("v2/weborder.insert", json=body, headers=headers)


ORDER = {"customerid": 4, "delivery": 0, "weborderdetail": [{"productid": 1001, "quantity": 2}]}


def test_v2_weborder_insert_creates_a_weborder_that_is_confirmed_after_the_delay(api, sandbox_clean):
    sandbox_clean.cloudpos.confirm_after_seconds = 0.3
    created = v2_insert(api, ORDER)

    assert created.status_code == 200
    weborder = created.json()["weborderid"]
    assert weborder >= 8001
    assert v1(api, "get-confirmedweborder", data={"weborderid": str(weborder)})["errorcode"] == 2001
    time.sleep(0.4)
    assert v1(api, "get-confirmedweborder", data={"weborderid": str(weborder)})["success"] == 1


def test_v2_weborders_that_are_never_confirmed_or_forced(api, sandbox_clean):
    sandbox_clean.cloudpos.confirm_after_seconds = None
    weborder = v2_insert(api, ORDER).json()["weborderid"]
    assert v1(api, "get-confirmedweborder", data={"weborderid": str(weborder)})["errorcode"] == 2001

    httpx.post(f"{sandbox_clean.url}/_sandbox/cloudpos/weborders/{weborder}", json={"state": "confirmed"})
    assert v1(api, "get-confirmedweborder", data={"weborderid": str(weborder)})["success"] == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"weborderdetail": []}, 2001),
        ({"weborderdetail": [{"productid": 1, "quantity": 1}]}, 2002),
        ({"weborderdetail": [{"productid": 1001, "quantity": 0}]}, 2001),
        ({"customerid": 99999, "weborderdetail": [{"productid": 1001, "quantity": 1}]}, 2003),
    ],
)
def test_v2_rejects_bad_weborders(api, body, code):
    response = v2_insert(api, body)
    assert response.status_code == 400
    assert response.json()["error_code"] == code


def test_v2_checks_the_credential_headers(api):
    response = v2_insert(api, ORDER, token="wrong")
    assert response.status_code == 401
    assert response.json() == {"error_code": 1002, "message": "Token or name not valid"}
