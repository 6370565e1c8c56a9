"""The Alasco operators against the emulator: what an extract lands for a window or a full load,
that splitting a read into parallel slices changes nothing, faults change nothing, and the write
operators report each item and are safe to run again."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.compat import AirflowProviderDeprecationWarning, ObjectStoragePath
from airflow_provider_ledgerlink.core.errors import ValidationError
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.core.sinks import read_manifest, read_rows
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook, flatten_resource, parse_timestamp
from airflow_provider_ledgerlink.operators.alasco import (
    RESOURCES,
    AlascoExtractOperator,
    AlascoRegisterPaymentOperator,
    AlascoSubmitInvoiceOperator,
    AlascoUpdateContractStatusOperator,
)
from airflow_provider_ledgerlink.sandbox.alasco import _pdf
from airflow_provider_ledgerlink.sandbox.faults import reset_fault, status_fault, truncate_fault

UTC = timezone.utc
START, END = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def once_records(monkeypatch: pytest.MonkeyPatch) -> MemoryState:
    """The write-once records of this test, shared by every hook it makes (in a deployment they
    are Airflow Variables; here they start empty for each test)."""
    state = MemoryState()
    monkeypatch.setattr("airflow_provider_ledgerlink.core.once.AirflowVariableState", lambda: state)
    return state


class FakeTaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def extract(tmp_path: Path, name: str, **kwargs: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kwargs.setdefault("window_start", START.isoformat())
    kwargs.setdefault("window_end", END.isoformat())
    operator = AlascoExtractOperator(task_id=name, destination=str(tmp_path / name), **kwargs)
    summary = operator.execute({})
    folder = ObjectStoragePath(summary["folder"])
    manifest = read_manifest(folder)
    assert manifest is not None
    return manifest, list(read_rows(folder))


def created_between(emulator: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return [
        flatten_resource(item)
        for item in emulator.resources("invoices")
        if start <= parse_timestamp(item["attributes"]["date_created"]) < end
    ]


def test_an_invoice_window_lands_exactly_the_invoices_created_in_it(
    alasco_connection, sandbox_clean, tmp_path
):
    manifest, rows = extract(tmp_path, "invoices", resource="invoices")

    expected = created_between(sandbox_clean.alasco, START, END)
    assert rows == expected and len(rows) > 50
    assert manifest["window"] == {"start": START.isoformat(), "end": END.isoformat()}
    assert manifest["source"]["date_field"] == "date_created"
    assert manifest["object"] == "invoices"
    assert rows[0]["unaudited_amount_net"].endswith("0" * 10)  # the decimal string, exactly as sent


def test_a_row_on_the_window_end_belongs_to_the_next_window(alasco_connection, sandbox_clean, tmp_path):
    inside = created_between(sandbox_clean.alasco, START, END)
    boundary = parse_timestamp(inside[len(inside) // 2]["date_created"])

    _, before = extract(tmp_path, "a", resource="invoices", window_end=boundary.isoformat())
    _, after = extract(tmp_path, "b", resource="invoices", window_start=boundary.isoformat())

    assert before[-1]["date_created"] < inside[len(inside) // 2]["date_created"]
    assert after[0]["id"] == inside[len(inside) // 2]["id"]
    assert before + after == inside


def test_splitting_a_window_into_parallel_slices_changes_nothing(alasco_connection, sandbox_clean, tmp_path):
    one, rows_one = extract(tmp_path, "one", resource="invoices", partitions=1, max_in_flight=1)
    many, rows_many = extract(tmp_path, "many", resource="invoices", partitions=7, max_in_flight=4)

    assert rows_many == rows_one
    assert [p["sha256"] for p in many["parts"]] == [p["sha256"] for p in one["parts"]]
    # 7 slices were read as 7 cursor chains (that they overlap is shown in test_chain_in_order.py)
    by_path = sandbox_clean.stats["alasco"]["by_path"]
    assert sum(by_path["GET /fincon/v1/invoices/"].values()) >= 1 + 7  # the single chain, then one per slice


def test_a_full_load_read_in_slices_equals_a_sequential_one(alasco_connection, sandbox_clean, tmp_path):
    kwargs = {"resource": "contracts", "incremental": False}
    _, sliced = extract(tmp_path, "sliced", partitions=5, max_in_flight=3, **kwargs)
    _, sequential = extract(tmp_path, "sequential", partitions=1, max_in_flight=1, **kwargs)

    assert sliced == sequential
    assert len(sliced) == sandbox_clean.alasco.row_count("contracts")


def test_faults_during_an_extract_change_nothing_in_what_lands(alasco_connection, sandbox_clean, tmp_path):
    clean, _ = extract(tmp_path, "clean", resource="contracts", incremental=False, max_in_flight=2)
    faults = sandbox_clean.faults
    faults.add(status_fault(502, vendor="alasco", nth=[2, 5]))
    faults.add(reset_fault(vendor="alasco", nth=[3]))
    faults.add(truncate_fault(vendor="alasco", nth=[7]))
    faults.add(status_fault(429, vendor="alasco", nth=[9], retry_after=0))

    faulty, _ = extract(tmp_path, "faulty", resource="contracts", incremental=False, max_in_flight=2)

    assert [p["sha256"] for p in faulty["parts"]] == [p["sha256"] for p in clean["parts"]]
    assert faulty["rows"] == clean["rows"] == 900


def test_resources_without_a_date_filter_are_full_loads(alasco_connection, sandbox_clean, tmp_path):
    manifest, rows = extract(tmp_path, "units", resource="contract_units")

    assert manifest["window"] is None
    assert len(rows) == 180
    assert {"id", "type", "name", "project", "state"} <= set(rows[0])
    with pytest.raises(ValidationError, match="needs a date_field"):
        extract(tmp_path, "forced", resource="contract_units", incremental=True)


def test_a_date_only_field_windows_whole_days(alasco_connection, sandbox_clean, tmp_path):
    _, rows = extract(tmp_path, "posted", resource="invoices", date_field="date_posted")

    days = {row["date_posted"] for row in rows}
    assert days and min(days) >= "2026-10-01" and max(days) <= "2026-10-14"


def test_the_reporting_endpoints_land_their_money_flat(alasco_connection, sandbox_clean, tmp_path):
    _, rows = extract(tmp_path, "reporting", resource="reporting/contract_units")

    assert len(rows) == 180
    assert {"current_budget_net", "current_budget_tax", "current_budget_currency", "project"} <= set(rows[0])


def test_every_listed_resource_extracts(alasco_connection, sandbox_clean, tmp_path):
    for resource, info in RESOURCES.items():
        manifest, rows = extract(
            tmp_path,
            resource.replace("/", "_"),
            resource=resource,
            window_start="2022-01-01T00:00:00+00:00",  # properties date from 2023
        )
        assert rows, resource
        assert (manifest["window"] is None) == (info.date_field is None), resource


def test_no_secret_is_a_template_field():
    for cls in (
        AlascoExtractOperator,
        AlascoRegisterPaymentOperator,
        AlascoUpdateContractStatusOperator,
        AlascoSubmitInvoiceOperator,
    ):
        assert not {field for field in cls.template_fields if "token" in field or "key" in field}, cls


# --------------------------------------------------------------------------------------------------
# Writes
# --------------------------------------------------------------------------------------------------
def invoices_in(state: str, count: int) -> list[dict[str, Any]]:
    hook = AlascoHook()
    try:
        found = []
        for invoice in hook.get_all("invoices", filters={"invoice_process_state.in": [state]}):
            found.append(invoice)
            if len(found) == count:
                return found
        return found
    finally:
        hook.close()


def test_payments_are_registered_and_a_rerun_registers_nothing(alasco_connection, sandbox_clean):
    payments = [
        {
            "invoice_id": invoice["id"],
            "amount_gross": "1190.00",
            "payment_date": "2026-11-19",
            "comment": f"SEPA {n}",
        }
        for n, invoice in enumerate(invoices_in("APPROVED", 3))
    ]
    operator = AlascoRegisterPaymentOperator(task_id="pay", records=payments)

    first = operator.execute({"ti": FakeTaskInstance()})
    second = AlascoRegisterPaymentOperator(task_id="pay", records=payments).execute(
        {"ti": FakeTaskInstance()}
    )

    assert first["created"] == 3 and first["failed"] == 0
    assert second["skipped"] == 3 and second["created"] == 0
    assert {r["outcome"] for r in second["results"]} == {"already_paid"}
    assert len(sandbox_clean.alasco.payments) == 3


def test_a_payment_that_cannot_be_registered_fails_the_task_after_the_others(
    alasco_connection, sandbox_clean
):
    (approved,) = invoices_in("APPROVED", 1)
    (checked,) = invoices_in("CHECKED", 1)
    payments = [
        {"invoice_id": checked["id"], "amount_gross": "10.00", "payment_date": "2026-11-19"},
        {"invoice_id": approved["id"], "amount_gross": "10.00", "payment_date": "2026-11-19"},
    ]
    ti = FakeTaskInstance()

    with pytest.raises(ValidationError, match="1 of 2 payments failed"):
        AlascoRegisterPaymentOperator(task_id="pay", records=payments, continue_on_error=True).execute(
            {"ti": ti}
        )

    summary = ti.pushed["results"]
    assert [r["status"] for r in summary["results"]] == ["failed", "created"]
    assert "state CHECKED" in summary["results"][0]["error"]


def test_a_malformed_payment_list_is_refused(alasco_connection, sandbox_clean):
    with pytest.raises(ValidationError, match="list of payment objects"):
        AlascoRegisterPaymentOperator(task_id="pay", records="oops").execute({"ti": FakeTaskInstance()})


def test_contract_statuses_are_set_once(alasco_connection, sandbox_clean):
    hook = AlascoHook()
    contract = next(hook.get_all("contracts", filters={"status.in": ["ORDERED"]}))
    hook.close()

    first = AlascoUpdateContractStatusOperator(
        task_id="s", contract_id=contract["id"], status="COMPLETED"
    ).execute({})
    second = AlascoUpdateContractStatusOperator(
        task_id="s", records=[{"contract_id": contract["id"], "status": "COMPLETED"}]
    ).execute({})

    assert first["updated"] == 1 and second["unchanged"] == 1
    assert len(sandbox_clean.alasco.contract_updates) == 1


def test_an_invoice_pdf_from_storage_is_submitted_once(alasco_connection, sandbox_clean, tmp_path):
    hook = AlascoHook()
    project = next(hook.get_all("projects"))
    hook.close()
    pdf = tmp_path / "RE-2026-0815.pdf"
    pdf.write_bytes(_pdf("Rechnung RE-2026-0815"))
    kwargs = {"project_id": project["id"], "pdf_path": str(pdf), "external_identifier": "RE-2026-0815"}

    first = AlascoSubmitInvoiceOperator(task_id="submit", **kwargs).execute({})
    second = AlascoSubmitInvoiceOperator(task_id="submit", **kwargs).execute({})

    assert first["created"] == 1 and second["already_done"] == 1
    assert second["results"][0]["outcome"] == "already_submitted"
    (submission,) = sandbox_clean.alasco.submissions
    assert submission["filename"] == "RE-2026-0815.pdf"


@pytest.mark.parametrize(
    ("operator", "old"),
    [
        (AlascoRegisterPaymentOperator, "payments"),
        (AlascoUpdateContractStatusOperator, "updates"),
        (AlascoSubmitInvoiceOperator, "invoices"),
    ],
)
def test_the_old_names_of_records_still_work_and_name_the_new_one(operator, old):
    items = [{"id": "x"}]
    with pytest.warns(AirflowProviderDeprecationWarning, match=f"'{old}' is deprecated; use 'records'"):
        task = operator(task_id="w", **{old: items})
    assert task.records == items
    assert "records" in task.template_fields and old not in task.template_fields


def test_a_payment_given_with_the_old_name_is_registered(alasco_connection, sandbox_clean):
    (invoice,) = invoices_in("APPROVED", 1)
    payment = {"invoice_id": invoice["id"], "amount_gross": "10.00", "payment_date": "2026-11-19"}
    with pytest.warns(AirflowProviderDeprecationWarning):
        operator = AlascoRegisterPaymentOperator(task_id="pay", payments=[payment])
    assert operator.execute({"ti": FakeTaskInstance()})["created"] == 1
