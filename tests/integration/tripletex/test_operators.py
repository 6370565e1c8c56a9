"""The Tripletex operators against the emulator: what the extract lands for each kind of window,
and that the write operators turn records into customers, orders, invoices and vouchers once."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
from airflow_provider_ledgerlink.core.errors import ConfigurationError, ValidationError
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.core.sinks import read_manifest, read_rows
from airflow_provider_ledgerlink.hooks.tripletex import OSLO, TripletexHook, last_change
from airflow_provider_ledgerlink.operators.tripletex import (
    TripletexCreateInvoicesOperator,
    TripletexCreateVouchersOperator,
    TripletexExtractOperator,
    TripletexUpsertCustomersOperator,
    customer_body,
    resource_for,
    shop_order,
)
from airflow_provider_ledgerlink.sandbox.faults import status_fault

pytestmark = pytest.mark.usefixtures("forget_new_secrets")

UTC = timezone.utc


def oslo_day(day: date) -> tuple[str, str]:
    start = datetime(day.year, day.month, day.day, tzinfo=OSLO)
    end = datetime(day.year, day.month, day.day + 1, tzinfo=OSLO)
    return start.isoformat(), end.isoformat()


def extract(
    tmp_path: Path, resource: str, **kwargs: Any
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    operator = TripletexExtractOperator(
        task_id=f"extract_{resource.strip('/')}", resource=resource, destination=tmp_path.as_uri(), **kwargs
    )
    summary = operator.execute({})
    folder = ObjectStoragePath(summary["folder"])
    manifest = read_manifest(folder)
    assert manifest is not None
    return summary, list(read_rows(folder)), manifest


@pytest.fixture(autouse=True)
def write_records(monkeypatch: pytest.MonkeyPatch) -> MemoryState:
    """The operators' hooks keep their write records here instead of in Airflow Variables."""
    state = MemoryState()
    monkeypatch.setattr("airflow_provider_ledgerlink.hooks.tripletex.AirflowVariableState", lambda: state)
    return state


@pytest.fixture
def hook(tripletex_connection: str) -> Any:
    made = TripletexHook(max_in_flight=1, recheck_delay=0)
    yield made
    made.close()


# ------------------------------------------------------------------------------------------------
# Extract
# ------------------------------------------------------------------------------------------------
def test_postings_of_an_oslo_day_land_exactly(tmp_path: Path, hook: TripletexHook) -> None:
    start, end = oslo_day(date(2026, 11, 18))

    summary, rows, manifest = extract(tmp_path, "postings", window_start=start, window_end=end, page_size=30)

    assert rows == list(
        hook.get_all("/ledger/posting", window=(date(2026, 11, 18), date(2026, 11, 19)), sorting="id")
    )
    assert summary["rows"] == len(rows) > 0
    assert manifest["source"]["dates"] == {"from": "2026-11-18", "to_exclusive": "2026-11-19"}
    assert manifest["source"]["path"] == "/ledger/posting"


def test_a_window_without_an_oslo_midnight_lands_an_empty_extract(
    tmp_path: Path, tripletex_connection: str
) -> None:
    summary, rows, _manifest = extract(
        tmp_path, "vouchers", window_start="2026-11-18T08:00:00+01:00", window_end="2026-11-18T17:00:00+01:00"
    )

    assert (summary["rows"], rows) == (0, [])


def test_a_date_resource_needs_a_window_or_a_start_date(
    tmp_path: Path, tripletex_connection: str, hook: TripletexHook
) -> None:
    with pytest.raises(ConfigurationError, match="full_load_start"):
        extract(tmp_path / "a", "invoices", incremental=False)

    _summary, rows, _manifest = extract(
        tmp_path / "b", "invoices", incremental=False, full_load_start="2026-01-01"
    )
    assert len(rows) == 240  # every generated invoice


def test_customers_land_in_the_window_of_their_last_change_active_and_inactive(
    tmp_path: Path, hook: TripletexHook
) -> None:
    # Customers made now are stamped by the sandbox clock, which starts on 2026-11-20 in Oslo.
    active = hook.upsert_customer({"name": "Aktiv AS", "customerNumber": 1})
    inactive = hook.upsert_customer({"name": "Passiv AS", "customerNumber": 2})
    hook.update(f"/customer/{inactive.id}", {"isInactive": True}, operation="deactivate")
    start, end = oslo_day(date(2026, 11, 20))

    _summary, rows, _manifest = extract(tmp_path, "customers", window_start=start, window_end=end)

    assert {active.id, inactive.id} <= {row["id"] for row in rows}
    window = (datetime.fromisoformat(start), datetime.fromisoformat(end))
    assert all(window[0] <= last_change(row) < window[1] for row in rows)  # type: ignore[operator]


def test_customers_of_an_earlier_day_are_exactly_those_changed_that_day(
    tmp_path: Path, hook: TripletexHook
) -> None:
    start, end = oslo_day(date(2026, 11, 12))
    everyone = [
        *hook.get_all("/customer", fields="*,changes"),
        *hook.get_all("/customer", params={"isInactive": "true"}, fields="*,changes"),
    ]
    low, high = datetime.fromisoformat(start), datetime.fromisoformat(end)

    _summary, rows, _manifest = extract(tmp_path, "customers", window_start=start, window_end=end)

    assert rows == [row for row in everyone if low <= last_change(row) < high]  # type: ignore[operator]


def test_an_unchanged_snapshot_is_kept_and_a_changed_one_replaced(
    tmp_path: Path, hook: TripletexHook
) -> None:
    first, rows, manifest = extract(tmp_path, "accounts", page_size=10)
    assert len(manifest["source"]["page_digests"]) == 3
    assert first["rows"] == len(rows) == 24

    kept, _rows, kept_manifest = extract(tmp_path, "accounts", page_size=10)
    assert kept["unchanged"] is True
    assert kept_manifest["run_id"] == manifest["run_id"]

    hook.upsert_customer({"name": "Endring AS", "customerNumber": 3})  # the emulator's checksums move on
    again, _rows, new_manifest = extract(tmp_path, "accounts", page_size=10)
    assert "unchanged" not in again
    assert new_manifest["run_id"] != manifest["run_id"]


def test_resources_by_name_or_path_and_an_unknown_one_is_an_error() -> None:
    assert resource_for("postings").path == "/ledger/posting"
    assert resource_for("/ledger/posting").mode == "dates"
    assert resource_for("/department").mode == "snapshot"
    with pytest.raises(ConfigurationError, match="postings"):
        resource_for("journals")


def test_filters_and_fields_reach_tripletex(tmp_path: Path, tripletex_connection: str) -> None:
    start, end = oslo_day(date(2026, 11, 18))

    _summary, rows, _manifest = extract(
        tmp_path,
        "postings",
        window_start=start,
        window_end=end,
        fields="id,account(number)",
        filters={"accountId": 3001920},
    )

    assert rows
    assert {row["account"]["number"] for row in rows} == {1920}


# ------------------------------------------------------------------------------------------------
# From shop records to Tripletex bodies
# ------------------------------------------------------------------------------------------------
ORDER = {
    "order_key": "WS-1",
    "order_date": "2026-11-19",
    "customer": {"key": "42", "name": "Fjordkafé AS", "email": "post@fjordkafe.no", "organization_number": "921 654 987",
                 "address": {"line1": "Strandkaien 4", "postal_code": "5013", "city": "BERGEN"}},
    "lines": [{"description": "Kaffe", "quantity": 2, "unit_price": 89.0}, {"description": "Kopp", "unit_price_incl_vat": 100}],
}  # fmt: skip


def test_a_shop_order_becomes_tripletex_bodies() -> None:
    order = shop_order(ORDER)

    assert order.customer == {
        "name": "Fjordkafé AS",
        "isCustomer": True,
        "email": "post@fjordkafe.no",
        "invoiceEmail": "post@fjordkafe.no",
        "organizationNumber": "921654987",
        "customerNumber": 42,
        "postalAddress": {"addressLine1": "Strandkaien 4", "postalCode": "5013", "city": "BERGEN"},
    }
    assert order.customer_match == "customerNumber"
    assert order.order["deliveryDate"] == order.order["orderDate"] == "2026-11-19"
    assert order.order["orderLines"][0] == {
        "description": "Kaffe",
        "count": 2.0,
        "vatType": {"id": 3},
        "unitPriceExcludingVatCurrency": 89.0,
    }
    assert order.order["orderLines"][1]["unitPriceIncludingVatCurrency"] == 100.0
    assert order.invoice_date == date(2026, 11, 19)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order_key": None}, "order_key"),
        ({"order_date": "19.11.2026"}, "not a date"),
        ({"lines": []}, "no lines"),
        ({"lines": [{"quantity": 1}]}, "unit_price"),
        ({"lines": [{"quantity": 0, "unit_price": 1}]}, "more than 0"),
        ({"customer": {"key": "abc", "name": "X"}}, "whole number"),
        ({"customer": {"key": "100000", "name": "X"}}, "own customer numbers start at 100000"),
        ({"customer": {"key": "0", "name": "X"}}, "from 1 to 99999"),
        ({"customer": {"key": "1"}}, "customer.name"),
    ],
)
def test_a_bad_shop_order_is_refused_with_the_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shop_order({**ORDER, **change})


def test_customers_can_be_matched_on_email_without_a_number() -> None:
    body, match = customer_body(
        {"key": "anna@example.no", "name": "Anna", "email": "anna@example.no"}, match="email"
    )
    assert match == "email"
    assert "customerNumber" not in body


# ------------------------------------------------------------------------------------------------
# Write operators
# ------------------------------------------------------------------------------------------------
def context() -> dict[str, Any]:
    return {"ti": mock.MagicMock()}


def test_orders_become_invoices_once_and_a_rerun_finds_them(
    tripletex_connection: str, sandbox_clean: Any
) -> None:
    emulator = sandbox_clean.tripletex
    second = {**ORDER, "order_key": "WS-2", "customer": {**ORDER["customer"], "email": "kafe@fjordkafe.no"}}  # type: ignore[dict-item]
    records = [ORDER, second]

    first = TripletexCreateInvoicesOperator(task_id="invoice", records=records, recheck_delay=0).execute(
        context()
    )
    again = TripletexCreateInvoicesOperator(task_id="invoice", records=records, recheck_delay=0).execute(
        context()
    )

    assert (first["created"], first["already_done"], first["failed"]) == (2, 0, 0)
    assert (again["created"], again["already_done"]) == (0, 2)
    assert [r["customer"] for r in first["results"]] == ["created", "updated"]  # the e-mail changed
    assert len(emulator.created("customer")) == 1
    assert len(emulator.created("order")) == len(emulator.created("invoice")) == 2
    assert emulator.sent_invoices == []
    assert "fjordkafe" not in json.dumps(first)  # results hold ids, not the customers' details


def test_a_bad_record_fails_the_task_after_the_others_when_asked(
    tripletex_connection: str, sandbox_clean: Any
) -> None:
    records = [{**ORDER, "order_key": None}, ORDER]
    ti_context = context()

    with pytest.raises(ValidationError) as caught:
        TripletexCreateInvoicesOperator(
            task_id="i", records=records, continue_on_error=True, recheck_delay=0
        ).execute(ti_context)

    assert "1 of 2 orders failed; first: order #0: order_key is missing" in str(caught.value)
    summary = ti_context["ti"].xcom_push.call_args.kwargs["value"]
    assert [r["status"] for r in summary["results"]] == ["failed", "created"]


def test_by_default_the_first_failure_stops_the_rest(tripletex_connection: str) -> None:
    ti_context = context()
    with pytest.raises(ValidationError):
        TripletexCreateInvoicesOperator(task_id="i", records=[{}, ORDER], recheck_delay=0).execute(ti_context)

    summary = ti_context["ti"].xcom_push.call_args.kwargs["value"]
    assert [r["status"] for r in summary["results"]] == ["failed", "not_attempted"]


def test_orders_are_read_from_a_landed_gzip_json_lines_file(
    tmp_path: Path, tripletex_connection: str, sandbox_clean: Any
) -> None:
    path = tmp_path / "orders.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for n in range(3):
            handle.write(json.dumps({**ORDER, "order_key": f"WS-F{n}"}) + "\n\n")

    result = TripletexCreateInvoicesOperator(task_id="i", records_path=path.as_uri(), invoice=False).execute(
        context()
    )

    assert result["created"] == 3
    assert len(sandbox_clean.tripletex.created("order")) == 3
    assert sandbox_clean.tripletex.created("invoice") == []


def test_records_or_a_path_but_not_both() -> None:
    with pytest.raises(ValueError):
        TripletexCreateInvoicesOperator(task_id="i")
    with pytest.raises(ValueError):
        TripletexCreateInvoicesOperator(task_id="i", records=[], records_path="/x")


def test_customers_are_upserted(tripletex_connection: str) -> None:
    customer = ORDER["customer"]
    operator = TripletexUpsertCustomersOperator(task_id="c", records=[customer], recheck_delay=0)

    first = operator.execute(context())
    second = TripletexUpsertCustomersOperator(task_id="c", records=[customer]).execute(context())
    third = TripletexUpsertCustomersOperator(
        task_id="c", records=[{**customer, "name": "Fjordkafé Bergen AS"}]
    ).execute(context())  # type: ignore[dict-item]

    assert [first["created"], second["unchanged"], third["updated"]] == [1, 1, 1]
    assert first["results"][0]["customer_number"] == 42


def test_vouchers_are_posted_once_with_accounts_by_number(
    tripletex_connection: str, sandbox_clean: Any
) -> None:
    voucher = {
        "date": "2026-11-19",
        "description": "Kasseoppgjør 19.11.",
        "externalVoucherNumber": "POS-20261119",
        "postings": [
            {"account": {"number": 1920}, "amountGross": 1250.0, "row": 1},
            {"account": {"number": 3000}, "amountGross": -1000.0, "row": 2},
            {"account": {"number": 2700}, "amountGross": -250.0, "row": 3},
        ],
    }

    first = TripletexCreateVouchersOperator(task_id="v", records=[voucher], recheck_delay=0).execute(
        context()
    )
    again = TripletexCreateVouchersOperator(task_id="v", records=[voucher]).execute(context())

    assert (first["created"], again["already_done"]) == (1, 1)
    created = sandbox_clean.tripletex.created("voucher")
    assert len(created) == 1
    assert created[0]["externalVoucherNumber"] == "POS-20261119"


def test_a_429_to_a_voucher_post_is_a_refusal_sent_again_and_books_once(
    tripletex_connection: str, sandbox_clean: Any
) -> None:
    # "Once the rate limit is hit, all requests will return HTTP status code 429 for the remainder
    # of the current period" (openapi-2.72.00.json, info): the voucher was not processed.
    sandbox_clean.faults.add(
        status_fault(
            429,
            {"status": 429, "code": 429, "message": "For mange forespørsler."},
            vendor="tripletex",
            method="POST",
            path=r"/v2/ledger/voucher",
            nth=[1],
            retry_after=0,
        )
    )
    voucher = {
        "date": "2026-11-19",
        "description": "Kasseoppgjør 19.11.",
        "externalVoucherNumber": "POS-429",
        "postings": [
            {"account": {"number": 1920}, "amountGross": 100.0, "row": 1},
            {"account": {"number": 3000}, "amountGross": -100.0, "row": 2},
        ],
    }

    summary = TripletexCreateVouchersOperator(task_id="v", records=[voucher], recheck_delay=0).execute(
        context()
    )

    assert (summary["created"], summary["in_doubt"], summary["failed"]) == (1, 0, 0)
    assert [v["externalVoucherNumber"] for v in sandbox_clean.tripletex.created("voucher")] == ["POS-429"]
    voucher_posts = sandbox_clean.stats["tripletex"]["by_path"]
    assert any("429" in counts for counts in voucher_posts.values())  # the refusal was answered
