"""The Tripletex emulator speaks Tripletex's wire format: sessions and Basic auth, envelopes, paging,
``fields``, date windows, ``changedSince``, checksums and 304, rate limits and 429, optimistic
locking, order → invoice, and the request id on every answer. Plain httpx, no LedgerLink client."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.tripletex import (
    NO_DIGEST,
    TripletexEmulator,
    oslo_timestamp,
    parse_fields,
    sandbox_tripletex_consumer_token,
    sandbox_tripletex_employee_token,
)

UTC = timezone.utc


@pytest.fixture
def emulator(sandbox_clean: Any) -> TripletexEmulator:
    return sandbox_clean.tripletex


@pytest.fixture
def base(sandbox_clean: Any) -> str:
    return sandbox_clean.tripletex_url + "/v2"


def create_session(
    base: str, emulator: TripletexEmulator, expiration: str = "2099-01-01", **changes: str
) -> httpx.Response:
    params = {
        "consumerToken": emulator.consumer_token,
        "employeeToken": emulator.employee_token,
        "expirationDate": expiration,
        **changes,
    }
    return httpx.put(base + "/token/session/:create", params={k: v for k, v in params.items() if v})


@pytest.fixture
def client(base: str, emulator: TripletexEmulator) -> Iterator[httpx.Client]:
    token = create_session(base, emulator).json()["value"]["token"]
    with httpx.Client(base_url=base, auth=("0", token)) as made:
        yield made


# ------------------------------------------------------------------------------------------------
# Sessions and authentication
# ------------------------------------------------------------------------------------------------
def test_a_session_is_created_from_query_parameters(base: str, emulator: TripletexEmulator) -> None:
    answer = create_session(base, emulator, "2026-12-24")

    assert answer.status_code == 200
    value = answer.json()["value"]
    assert {"id", "version", "url", "consumerToken", "employeeToken", "expirationDate", "token"} <= set(value)
    assert value["expirationDate"] == "2026-12-24"
    assert "-" not in value["token"]  # session tokens have no dashes


def test_a_wrong_consumer_token_gives_the_documented_422(base: str, emulator: TripletexEmulator) -> None:
    answer = create_session(base, emulator, consumerToken="nope")

    body = answer.json()
    assert answer.status_code == 422
    assert list(body) == [
        "status",
        "code",
        "message",
        "link",
        "developerMessage",
        "validationMessages",
        "requestId",
    ]
    assert body["status"] == 422
    assert body["code"] == 18000
    assert body["message"] == "Validering feilet."
    assert body["developerMessage"] is None
    assert body["validationMessages"] == [
        {
            "field": "arg:consumerToken",
            "message": "The consumer token is invalid or does not exist.",
            "path": "arg:consumerToken",
            "rootId": None,
        }
    ]
    assert body["requestId"] == answer.headers["x-tlx-request-id"]


def test_a_wrong_or_revoked_employee_token_names_the_employee_token(
    base: str, emulator: TripletexEmulator
) -> None:
    wrong = create_session(base, emulator, employeeToken="nope")
    emulator.revoke_employee_token()
    revoked = create_session(base, emulator)

    for answer in (wrong, revoked):
        assert answer.status_code == 422
        assert answer.json()["validationMessages"][0]["field"] == "arg:employeeToken"


def test_missing_parameters_are_listed(base: str) -> None:
    answer = httpx.put(base + "/token/session/:create")

    fields = [item["field"] for item in answer.json()["validationMessages"]]
    assert answer.status_code == 422
    assert fields == ["arg:consumerToken", "arg:employeeToken", "arg:expirationDate"]


@pytest.mark.parametrize("user", ["0", "", "9100001"])
def test_basic_auth_takes_0_blank_or_the_own_company(
    base: str, emulator: TripletexEmulator, user: str
) -> None:
    token = create_session(base, emulator).json()["value"]["token"]

    answer = httpx.get(base + "/token/session/%3EwhoAmI", auth=(user, token))

    assert answer.status_code == 200
    assert answer.json()["value"]["companyId"] == 9100001


def test_an_accountant_reaches_client_companies_and_no_others(base: str, emulator: TripletexEmulator) -> None:
    token = create_session(base, emulator).json()["value"]["token"]

    client = httpx.get(base + "/token/session/%3EwhoAmI", auth=("9100003", token))
    stranger = httpx.get(base + "/token/session/%3EwhoAmI", auth=("1234", token))
    listed = httpx.get(base + "/company/%3EwithLoginAccess", auth=("0", token))

    assert client.json()["value"]["employeeIsProxy"] is True
    assert stranger.status_code == 403
    assert stranger.json()["code"] == 9000
    assert [c["id"] for c in listed.json()["values"]] == [9100001, 9100002, 9100003]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"0:unknown-session").decode()],
)
def test_a_missing_or_unknown_session_is_401_code_3000(base: str, header: str | None) -> None:
    answer = httpx.get(base + "/customer", headers={"Authorization": header} if header else {})

    assert answer.status_code == 401
    assert answer.json()["code"] == 3000
    assert answer.json()["requestId"] == answer.headers["x-tlx-request-id"]


def test_a_session_ends_at_the_start_of_its_date_in_oslo(base: str, emulator: TripletexEmulator) -> None:
    token = create_session(base, emulator, "2026-11-21").json()["value"]["token"]

    emulator.session_now = datetime(2026, 11, 20, 22, 59, tzinfo=UTC)  # 23:59 in Oslo
    before = httpx.get(base + "/token/session/%3EwhoAmI", auth=("0", token))
    emulator.session_now = datetime(2026, 11, 20, 23, 0, tzinfo=UTC)  # midnight in Oslo
    after = httpx.get(base + "/token/session/%3EwhoAmI", auth=("0", token))

    assert (before.status_code, after.status_code) == (200, 401)


def test_sessions_can_be_made_to_end_after_some_calls_or_all_at_once(
    base: str, emulator: TripletexEmulator
) -> None:
    emulator.session_max_requests = 2
    token = create_session(base, emulator).json()["value"]["token"]
    statuses = [httpx.get(base + "/ledger/account", auth=("0", token)).status_code for _ in range(3)]
    assert statuses == [200, 200, 401]

    emulator.session_max_requests = None
    other = create_session(base, emulator).json()["value"]["token"]
    assert emulator.expire_sessions() >= 1
    assert httpx.get(base + "/ledger/account", auth=("0", other)).status_code == 401


def test_a_deleted_session_is_gone(base: str, emulator: TripletexEmulator) -> None:
    token = create_session(base, emulator).json()["value"]["token"]

    deleted = httpx.delete(f"{base}/token/session/{token}", auth=("0", token))

    assert deleted.status_code == 204
    assert httpx.get(base + "/customer", auth=("0", token)).status_code == 401


# ------------------------------------------------------------------------------------------------
# Lists and single objects
# ------------------------------------------------------------------------------------------------
def test_every_answer_carries_a_request_id(client: httpx.Client) -> None:
    answers = [client.get("/ledger/account"), client.get("/customer/1"), client.get("/no/such/path")]

    ids = [answer.headers["x-tlx-request-id"] for answer in answers]
    assert len(set(ids)) == 3
    assert answers[1].json()["requestId"] == ids[1]


def test_a_list_envelope_without_if_none_match_says_so_in_version_digest(client: httpx.Client) -> None:
    body = client.get("/customer", params={"count": 5}).json()

    assert list(body) == ["fullResultSize", "from", "count", "versionDigest", "values"]
    assert body["versionDigest"] == NO_DIGEST == "'If-None-Match' header not specified"
    assert body["count"] == len(body["values"]) == 5


def test_with_if_none_match_the_digest_is_a_checksum_and_the_same_one_gives_304(client: httpx.Client) -> None:
    first = client.get("/customer", params={"count": 5}, headers={"If-None-Match": "anything"})
    digest = first.json()["versionDigest"]
    same = client.get("/customer", params={"count": 5}, headers={"If-None-Match": digest})
    client.post("/customer", json={"name": "Endret AS"})
    changed = client.get("/customer", params={"count": 5}, headers={"If-None-Match": digest})

    assert digest != NO_DIGEST and len(digest) == 40
    assert (same.status_code, same.content) == (304, b"")
    assert "x-tlx-request-id" in same.headers
    assert changed.status_code == 200


def test_full_result_size_is_not_the_total(client: httpx.Client, emulator: TripletexEmulator) -> None:
    body = client.get("/customer", params={"count": 10, "isInactive": "false"}).json()

    assert body["fullResultSize"] == 11  # about min(total, count) + 1, as measured at Tripletex
    assert emulator.customers > 11


def test_from_and_count_page_through_a_list(client: httpx.Client) -> None:
    window = {"dateFrom": "2026-11-10", "dateTo": "2026-11-20"}
    whole = client.get("/ledger/posting", params={**window, "count": 5000}).json()["values"]
    pages = [
        client.get("/ledger/posting", params={**window, "from": start, "count": 100}).json()["values"]
        for start in range(0, len(whole) + 100, 100)
    ]

    assert [row for page in pages for row in page] == whole
    assert pages[-1] == []


def test_the_default_count_is_1000(client: httpx.Client) -> None:
    body = client.get("/ledger/posting", params={"dateFrom": "2026-10-01", "dateTo": "2026-11-20"}).json()
    assert body["count"] == 1000


def test_fields_select_expand_and_include_changes_only_when_asked(client: httpx.Client) -> None:
    plain = client.get("/customer", params={"count": 1}).json()["values"][0]
    chosen = client.get(
        "/customer", params={"count": 1, "fields": "id,name,postalAddress(city),changes"}
    ).json()["values"][0]

    assert "changes" not in plain
    assert set(plain["postalAddress"]) == {"id", "url"}
    assert set(chosen) == {"id", "name", "postalAddress", "changes"}
    assert set(chosen["postalAddress"]) == {"city"}
    assert chosen["changes"][0]["changeType"] == "CREATE"


def test_an_unknown_field_is_400_code_11000(client: httpx.Client) -> None:
    answer = client.get("/customer", params={"fields": "id,shoeSize"})

    assert answer.status_code == 400
    assert answer.json()["code"] == 11000
    assert "shoeSize" in answer.json()["developerMessage"]


def test_sorting_with_a_minus_is_descending_and_an_unknown_field_is_422(client: httpx.Client) -> None:
    names = [
        c["name"]
        for c in client.get("/customer", params={"sorting": "-name", "fields": "name"}).json()["values"]
    ]
    wrong = client.get("/customer", params={"sorting": "shoeSize"})

    assert names == sorted(names, reverse=True)
    assert (wrong.status_code, wrong.json()["code"]) == (422, 17000)


def test_date_windows_are_required_and_end_exclusively(client: httpx.Client) -> None:
    missing = client.get("/ledger/posting")
    backwards = client.get("/ledger/posting", params={"dateFrom": "2026-11-19", "dateTo": "2026-11-19"})
    rows = client.get(
        "/ledger/posting", params={"dateFrom": "2026-11-18", "dateTo": "2026-11-19", "fields": "date"}
    ).json()["values"]
    orders = client.get(
        "/order", params={"orderDateFrom": "2026-11-18", "orderDateTo": "2026-11-19", "fields": "orderDate"}
    ).json()["values"]
    invoices = client.get(
        "/invoice",
        params={"invoiceDateFrom": "2026-11-18", "invoiceDateTo": "2026-11-19", "fields": "invoiceDate"},
    ).json()["values"]

    assert missing.status_code == 422 and missing.json()["validationMessages"][0]["field"] == "dateFrom"
    assert backwards.status_code == 422
    assert {row["date"] for row in rows} == {"2026-11-18"}
    assert {row["orderDate"] for row in orders} <= {"2026-11-18"}
    assert {row["invoiceDate"] for row in invoices} <= {"2026-11-18"}


def test_a_too_large_window_is_422_code_23000(client: httpx.Client, emulator: TripletexEmulator) -> None:
    emulator.max_window_rows = 100

    answer = client.get("/ledger/posting", params={"dateFrom": "2026-09-01", "dateTo": "2026-11-20"})

    assert (answer.status_code, answer.json()["code"]) == (422, 23000)


def test_changed_since_reads_a_naive_value_as_oslo_time(client: httpx.Client) -> None:
    def ids(since: str) -> set[int]:
        return {
            c["id"]
            for c in client.get(
                "/customer", params={"changedSince": since, "fields": "id", "count": 5000}
            ).json()["values"]
        }

    everyone = ids("2000-01-01T00:00:00")
    since_oslo = ids("2026-11-10T00:00:00")
    since_utc = ids("2026-11-10T00:00:00Z")

    assert since_oslo < everyone
    assert since_oslo >= since_utc  # midnight in Oslo is an hour before midnight UTC


def test_generated_postings_balance_per_voucher(client: httpx.Client) -> None:
    rows = client.get(
        "/ledger/posting", params={"dateFrom": "2026-11-19", "dateTo": "2026-11-20", "count": 5000}
    ).json()["values"]
    totals: dict[int, float] = {}
    for row in rows:
        totals[row["voucher"]["id"]] = totals.get(row["voucher"]["id"], 0.0) + row["amount"]

    assert rows
    assert all(abs(total) < 0.005 for total in totals.values())


def test_data_is_the_same_in_every_emulator_of_a_seed_and_costs_no_memory_at_scale() -> None:
    small = TripletexEmulator(seed=7)
    other = TripletexEmulator(seed=7)
    huge = TripletexEmulator(seed=7, scale={})
    huge.apply_scale({"tripletex.postings": 5_000_000})

    assert small._posting_json(1234) == other._posting_json(1234)
    assert huge.postings == 5_000_000
    assert huge._posting_json(4_999_999).startswith('{"id":32999999,')


def test_an_unknown_dataset_in_scale_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tripletex\.postings"):
        Sandbox(scale={"tripletex.journals": 5})


def test_single_objects_come_in_a_value_envelope_and_a_missing_one_is_404(client: httpx.Client) -> None:
    found = client.get("/customer/21000001")
    missing = client.get("/customer/21999999")

    assert list(found.json()) == ["value"]
    assert found.json()["value"]["url"] == "tripletex.no/v2/customer/21000001"
    assert (missing.status_code, missing.json()["code"]) == (404, 6000)


# ------------------------------------------------------------------------------------------------
# Rate limits
# ------------------------------------------------------------------------------------------------
def test_rate_limit_headers_count_down_and_then_every_call_is_429(
    base: str, client: httpx.Client, emulator: TripletexEmulator
) -> None:
    emulator.configure_rate_limit(limit=3, period=30)
    answers = [client.get("/ledger/account") for _ in range(5)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert [a.headers["X-Rate-Limit-Remaining"] for a in answers] == ["2", "1", "0", "0", "0"]
    assert all(a.headers["X-Rate-Limit-Limit"] == "3" for a in answers)
    assert 0 < int(answers[-1].headers["X-Rate-Limit-Reset"]) <= 30
    assert emulator.counters.rate_limited == 2


def test_the_reset_header_can_be_left_off_429_answers(
    client: httpx.Client, emulator: TripletexEmulator
) -> None:
    emulator.configure_rate_limit(limit=1, period=30, omit_reset_on_429=True)
    client.get("/ledger/account")

    refused = client.get("/ledger/account")

    assert refused.status_code == 429
    assert "X-Rate-Limit-Reset" not in refused.headers


# ------------------------------------------------------------------------------------------------
# Writes
# ------------------------------------------------------------------------------------------------
def test_a_customer_is_created_with_201_and_updated_with_optimistic_locking(client: httpx.Client) -> None:
    created = client.post("/customer", json={"name": "Haugen Fisk AS", "customerNumber": 4711})
    customer = created.json()["value"]
    updated = client.put(
        f"/customer/{customer['id']}", json={"version": customer["version"], "email": "a@b.no"}
    )
    stale = client.put(
        f"/customer/{customer['id']}", json={"version": customer["version"], "email": "c@d.no"}
    )
    taken = client.post("/customer", json={"name": "Kopi AS", "customerNumber": 4711})

    assert created.status_code == 201
    assert customer["version"] == 1
    assert updated.json()["value"]["version"] == 2
    assert (stale.status_code, stale.json()["code"]) == (409, 8000)
    assert (taken.status_code, taken.json()["validationMessages"][0]["field"]) == (422, "customerNumber")


def test_an_order_becomes_an_invoice_that_is_sent_by_default(
    client: httpx.Client, emulator: TripletexEmulator
) -> None:
    order = client.post(
        "/order",
        json={
            "customer": {"id": 21000001},
            "orderDate": "2026-11-19",
            "deliveryDate": "2026-11-19",
            "orderLines": [{"description": "Termokopp", "count": 2, "unitPriceExcludingVatCurrency": 100}],
        },
    ).json()["value"]
    missing_date = client.put(f"/order/{order['id']}/:invoice")
    invoice = client.put(f"/order/{order['id']}/:invoice", params={"invoiceDate": "2026-11-19"})

    assert missing_date.status_code == 422
    assert invoice.status_code == 200
    value = invoice.json()["value"]
    assert value["orders"] == [{"id": order["id"], "url": f"tripletex.no/v2/order/{order['id']}"}]
    assert (value["amountExcludingVat"], value["amount"]) == (200.0, 250.0)
    assert emulator.sent_invoices == [value["id"]]
    assert client.get(f"/order/{order['id']}").json()["value"]["isClosed"] is True


def test_an_order_prioritising_amounts_with_vat_needs_prices_with_vat(client: httpx.Client) -> None:
    answer = client.post(
        "/order",
        json={
            "customer": {"id": 21000001},
            "orderDate": "2026-11-19",
            "deliveryDate": "2026-11-19",
            "isPrioritizeAmountsIncludingVat": True,
            "orderLines": [{"count": 1, "unitPriceExcludingVatCurrency": 100}],
        },
    )

    assert answer.status_code == 422
    assert "unitPriceIncludingVatCurrency" in answer.json()["validationMessages"][0]["field"]


def test_a_voucher_must_balance_and_keeps_its_external_number(client: httpx.Client) -> None:
    postings = [
        {"account": {"id": 3001920}, "amountGross": 100.0},
        {"account": {"id": 3003000}, "amountGross": -90.0},
    ]
    unbalanced = client.post("/ledger/voucher", json={"date": "2026-11-19", "postings": postings})
    postings[1]["amountGross"] = -100.0
    created = client.post(
        "/ledger/voucher", json={"date": "2026-11-19", "externalVoucherNumber": "POS-1", "postings": postings}
    )
    listed = client.get(
        "/ledger/voucher",
        params={"dateFrom": "2026-11-19", "dateTo": "2026-11-20", "fields": "id,externalVoucherNumber"},
    ).json()["values"]

    assert unbalanced.status_code == 422
    assert created.status_code == 201
    assert {"id": created.json()["value"]["id"], "externalVoucherNumber": "POS-1"} in listed


def test_voucher_postings_need_amount_gross_and_amount_is_no_substitute(client: httpx.Client) -> None:
    """POST /ledger/voucher: "Only the gross amounts will be used" (OpenAPI 2.72)."""
    net_only = [{"account": {"id": 3001920}, "amount": 100.0}, {"account": {"id": 3003000}, "amount": -100.0}]
    minimal = [
        {"account": {"id": 3001920}, "amountGross": 100.0, "amountGrossCurrency": 100.0},
        {"account": {"id": 3003000}, "amountGross": -100.0, "amountGrossCurrency": -100.0},
    ]

    refused = client.post("/ledger/voucher", json={"date": "2026-11-19", "postings": net_only})
    accepted = client.post("/ledger/voucher", json={"date": "2026-11-19", "postings": minimal})

    assert refused.status_code == 422
    assert refused.json()["validationMessages"][0]["field"] == "postings[0].amountGross"
    assert accepted.status_code == 201, accepted.text


def test_a_body_that_is_not_json_is_422_code_22000(client: httpx.Client) -> None:
    answer = client.post("/customer", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (422, 22000)


def test_reset_forgets_what_was_created_and_puts_the_knobs_back(
    sandbox_clean: Any, client: httpx.Client
) -> None:
    emulator = sandbox_clean.tripletex
    client.post("/customer", json={"name": "Borte AS"})
    emulator.configure_rate_limit(limit=5)
    emulator.session_max_requests = 1

    sandbox_clean.reset(state=True)

    assert emulator.created("customer") == []
    assert emulator.rate_limit.limit == 1000
    assert emulator.session_max_requests is None


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------
def test_tokens_are_derived_from_the_seed() -> None:
    assert sandbox_tripletex_consumer_token(1) == sandbox_tripletex_consumer_token(1)
    assert sandbox_tripletex_consumer_token(1) != sandbox_tripletex_consumer_token(2)
    assert sandbox_tripletex_employee_token(1) != sandbox_tripletex_consumer_token(1)


def test_change_timestamps_carry_the_oslo_offset() -> None:
    winter = int((datetime(2026, 11, 19, 14, 3, 22) - datetime(1970, 1, 1)).total_seconds())
    summer = int((datetime(2026, 7, 1, 9, 0) - datetime(1970, 1, 1)).total_seconds())
    assert oslo_timestamp(winter) == "2026-11-19T14:03:22+01:00"
    assert oslo_timestamp(summer) == "2026-07-01T09:00:00+02:00"


def test_the_fields_grammar() -> None:
    assert parse_fields(None) is None
    assert parse_fields("*,activity(name),employee(*)") == {
        "*": None,
        "activity": {"name": None},
        "employee": {"*": None},
    }
    assert parse_fields("a(b(c,d)),e") == {"a": {"b": {"c": None, "d": None}}, "e": None}


def test_the_control_endpoints(sandbox_clean: Any) -> None:
    control = sandbox_clean.url + "/_sandbox/tripletex"

    credentials = httpx.get(control + "/credentials").json()
    configured = httpx.post(
        control + "/rate-limit", json={"limit": 7, "period": 2, "omit_reset_on_429": True}
    )
    state = httpx.get(control + "/rate-limit").json()

    assert credentials["consumer_token"] == sandbox_clean.tripletex.consumer_token
    assert configured.status_code == 200
    assert (state["limit"], state["period"], state["omit_reset_on_429"]) == (7, 2, True)
    assert httpx.post(control + "/sessions/expire").json() == {"expired": 0}
    assert httpx.get(control + "/objects").json()["order"] == 0


def test_the_fast_posting_json_is_the_projected_posting() -> None:
    """Postings are written to JSON directly for speed; that text must be the default projection."""
    import json

    emulator = TripletexEmulator(seed=3, scale={"tripletex.postings": 2_000})
    for i in (0, 1, 2, 5, 9, 1_234, 1_999):
        expected = emulator._project("posting", emulator._posting_dict(i), None)
        assert json.loads(emulator._posting_json(i)) == expected
