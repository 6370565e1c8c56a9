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


REFERENCE = json.loads((Path(__file__).parents[2] / "fixtures" / "cloudpos_reference.json").read_text())
WEBORDER_ERRORS = REFERENCE["functions"]["get-confirmedweborder"]["errors"]


def v1(
    api: httpx.Client, function: str, *, licence=LICENCE, token=None, data=None, headers=None, url=""
) -> dict:
    token = sandbox_cloudpos_token() if token is None else token
    query = f"licname={licence}&token={token}&{function}{url}"
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


@pytest.mark.parametrize(
    ("method", "subpath"),
    [
        ("GET", "/api/v2/weborder.insert"),
        ("PUT", "/api/v2/product.select"),
        ("GET", "/"),
        ("POST", "/api/v2"),
    ],
)
def test_an_address_or_method_cloudpos_does_not_serve_is_its_404(method, subpath):
    answer = CloudPosEmulator().handle(Request(method, "/cloudpos" + subpath, "", {}, b"", subpath))

    assert answer.status == 404
    assert json.loads(answer.body) == {"success": 0, "errorcode": 404, "message": "Not found"}


def test_v1_answers_on_any_method_and_any_case_of_its_path():
    token = sandbox_cloudpos_token()
    for method, subpath in (("GET", "/api/"), ("POST", "/API"), ("DELETE", "/Api//")):
        request = Request(
            method, "/cloudpos" + subpath, f"licname={LICENCE}&token={token}&get-tables", {}, b"", subpath
        )
        assert json.loads(CloudPosEmulator().handle(request).body)["success"] == 1


def test_an_empty_result_is_errorcode_2000(api):
    body = v1(api, "get-orders", url="&date=2030-01-01")
    assert body == {"success": 0, "errorcode": 2000, "message": "No orders found"}


def test_an_unlicensed_module_answers_1005(api, sandbox_clean):
    httpx.post(sandbox_clean.url + "/_sandbox/cloudpos/config", json={"unlicensed": ["get-coupon"]})

    assert v1(api, "get-coupon")["errorcode"] == 1005


def test_orders_are_filtered_in_the_url_by_brussels_date_and_by_id_range(api):
    day = v1(api, "get-orders", url="&date=2026-11-18")["data"]

    assert day and all(order["ordertime"].startswith("2026-11-18") for order in day)
    ids = [order["id"] for order in day]
    assert ids == sorted(ids)
    ranged = v1(api, "get-orders", url=f"&start={ids[10]}&end={ids[14]}")["data"]
    assert [order["id"] for order in ranged] == ids[10:15]  # both ends inclusive
    # The reference puts these filters in the URL: a Post body with them filters nothing.
    posted = v1(api, "get-orders", data={"date": "2026-11-18"})["data"]
    assert len(posted) > len(day)


def test_clockinclockout_selects_only_labour_records(api):
    labour = v1(api, "get-orders", url="&date=2026-11-18&clockinclockout")["data"]
    day = v1(api, "get-orders", url="&date=2026-11-18")["data"]

    assert labour and all(order["clockin"] or order["clockout"] for order in labour)
    assert [o for o in day if o["clockin"] or o["clockout"]] == labour


def test_orders_and_invoices_carry_the_reference_fields(api):
    order = v1(api, "get-orders", url="&date=2026-11-18")["data"][0]
    invoice = v1(api, "get-invoices", url="&date=2026-11-18")["data"][0]
    functions = REFERENCE["functions"]

    assert set(order) == set(functions["get-orders"]["fields"])
    detail = set(functions["get-orders"]["detail"]["orderdetail"])
    detail |= {f"subproduct{n}{part}" for n in range(1, 11) for part in ("id", "price", "tax")}
    assert set(order["orderdetail"][0]) == detail
    assert set(invoice) == set(functions["get-invoices"]["fields"])
    assert set(invoice["invoicedetail"][0]) == set(functions["get-invoices"]["detail"]["invoicedetail"])
    assert invoice["doctype"] in (1, 2, 3)


@pytest.mark.parametrize(
    "function",
    sorted(
        name
        for name, spec in REFERENCE["functions"].items()
        if "post_filters" not in spec and name not in ("get-orders", "get-invoices")
    ),
)
def test_every_list_function_answers_with_the_reference_fields(api, function):
    records = v1(api, function)["data"]
    assert records
    assert set(records[0]) == set(REFERENCE["functions"][function]["fields"])


def test_customer_credits_per_customer_carry_the_detail_fields(api):
    spec = REFERENCE["functions"]["get-customercredits"]
    customer = v1(api, "get-customercredits")["data"][0]["customerid"]
    detail = v1(api, "get-customercredits", url=f"&customerid={customer}")["data"]

    assert detail and {row["customerid"] for row in detail} == {customer}
    assert set(detail[0]) == set(spec["fields"]) | set(spec["fields_with_customerid"])


def test_coupons_by_id_range(api):
    assert [c["id"] for c in v1(api, "get-coupon", url="&start=2&end=4")["data"]] == [2, 3, 4]


@pytest.mark.parametrize(
    ("function", "data", "code"),
    [
        ("get-invoicesigned", {}, "2001"),
        ("get-reservationpersons", {}, "2001"),
        ("get-reservationhours", {"persons": "2"}, "2001"),
        ("get-reservationhours", {"date": "2026-11-18"}, "2002"),
    ],
)
def test_post_functions_answer_the_reference_codes(api, function, data, code):
    answer = v1(api, function, data=data)
    assert answer["errorcode"] == int(code)
    assert answer["message"] == REFERENCE["functions"][function]["errors"][code]


def test_signing_a_document_gives_a_vat_ticket_once(api):
    invoices = v1(api, "get-invoices", url="&date=2026-11-18")["data"]
    number = next(i["number"] for i in invoices if i["doctype"] == 1)

    first = v1(api, "get-invoicesigned", data={"documentnr": number})
    assert set(first) == {"success", "vatticket"}
    again = v1(api, "get-invoicesigned", data={"documentnr": number})
    assert (again["errorcode"], again["message"]) == (2002, "Document nr already in use")
    assert v1(api, "get-offersigned", data={"documentnr": number})["errorcode"] == 2000  # not an offer


def test_reservations_answer_persons_and_hours(api):
    assert v1(api, "get-reservationpersons", data={"date": "2026-11-18"})["persons"]
    assert v1(api, "get-reservationhours", data={"date": "2026-11-18", "persons": "4"})["hours"]


def test_an_answer_holds_at_most_the_row_limit_lowest_ids_first(api, sandbox_clean):
    sandbox_clean.cloudpos.max_rows_per_call = 7
    body = v1(api, "get-orders", url="&date=2026-11-01")

    assert len(body["data"]) == 7
    assert body["data"][0]["ordertime"].startswith("2026-11-01")


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
    sandbox_clean.cloudpos.confirm_after_seconds = 1.5  # ample for the first poll on a busy machine
    created = v2_insert(api, ORDER)

    assert created.status_code == 200
    weborder = created.json()["weborderid"]
    assert weborder >= 8001
    assert v1(api, "get-confirmedweborder", data={"weborderid": str(weborder)})["errorcode"] == 2001
    time.sleep(1.6)
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


# --------------------------------------------------------------------------------------------------
# V2 selects, as CloudPOS's V2 clients call them (tests/fixtures/cloudpos_v2_clients.json)
# --------------------------------------------------------------------------------------------------
V2_CLIENTS = json.loads((Path(__file__).parents[2] / "fixtures" / "cloudpos_v2_clients.json").read_text())


def v2(api: httpx.Client, action: str, body: dict, *, token: str | None = None) -> httpx.Response:
    headers = {"Licensename": LICENCE, "Token": token or sandbox_cloudpos_token()}
    return api.post(f"v2/{action}", json=body, headers=headers)


@pytest.mark.parametrize("action", sorted(V2_CLIENTS["selects"]))
def test_v2_selects_answer_bare_arrays_with_the_fields_clients_read(api, action):
    spec = V2_CLIENTS["selects"][action]
    response = v2(api, action, spec["body"])

    assert response.status_code == 200
    rows = response.json()
    assert isinstance(rows, list) and rows
    for row in rows:
        assert set(spec["fields"]) <= set(row), row
        assert all(isinstance(row[name], str) for name in spec.get("string_fields", ()))


def test_v2_customer_select_by_email_and_nothing_found(api):
    (customer,) = v2(api, "customer.select", {"email": "klant7@example.be"}).json()
    assert customer["id"] == 7 and customer["firstname"]

    nobody = v2(api, "customer.select", {"email": "nobody@example.be"})
    assert nobody.status_code == 200
    assert nobody.json() == {"success": 0, "errorcode": 2000, "message": "No customers found"}


def test_v2_selects_check_the_credential_headers_and_count_in_the_quota(api, sandbox_clean):
    refused = v2(api, "product.select", {"show_deleted": False}, token="wrong")
    assert refused.status_code == 401
    assert set(refused.json()) == set(V2_CLIENTS["request"]["error_fields"])

    before = sandbox_clean.cloudpos.used_today()
    v2(api, "category.select", {})
    assert sandbox_clean.cloudpos.used_today() == before + 1
