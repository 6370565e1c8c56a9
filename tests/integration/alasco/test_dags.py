"""The Alasco example DAGs under ``dag.test()`` against the sandbox (Alasco and AFAS emulators).

* ``alasco_approved_invoices_to_ledger``: run twice, the approved invoices are booked in AFAS once
  and show up in ``Profit_Transactions``; after the bank statement import pays two of them, two more
  runs register exactly those two payments in Alasco, once each.
* ``alasco_costs_to_lake``: the windows hold exactly what Alasco has for the day, and a rerun of the
  same logical date replaces the output with the same bytes.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_example_dags import assert_run_succeeded, lake, load_dag_file, run_dag, sandbox_env

from airflow_provider_ledgerlink.hooks.alasco import parse_timestamp

pytestmark = pytest.mark.timeout(900)

EXAMPLE_DAGS = Path(__file__).resolve().parents[3] / "example_dags"
#: The fixtures come from the generic example-DAG test: the sandbox's connections and a fresh lake.
__all__ = ["lake", "sandbox_env"]
LOGICAL_DATE = datetime(2026, 11, 19, tzinfo=timezone.utc)
WINDOW = (datetime(2026, 11, 18, tzinfo=timezone.utc), LOGICAL_DATE)  # the run's data interval


def run_twice(name: str, dag_id: str) -> None:
    bag = load_dag_file(EXAMPLE_DAGS / f"{name}.py")
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    for _ in range(2):
        run_id, state = run_dag(bag, dag, LOGICAL_DATE)
        assert_run_succeeded(dag, run_id, state)


def in_window(value: str | None) -> bool:
    moment = parse_timestamp(value)
    return moment is not None and WINDOW[0] <= moment < WINDOW[1]


def approved_in_window(emulator: Any) -> list[dict[str, Any]]:
    return [item for item in emulator.resources("invoices") if in_window(item["attributes"]["date_approved"])]


def booked_lines(invoice_id: str) -> list[dict[str, Any]]:
    from airflow_provider_ledgerlink.hooks.afas import AfasHook

    hook = AfasHook()
    try:
        voucher = uuid.UUID(invoice_id).hex
        return list(
            hook.get_rows(
                "Profit_Transactions", filters=[("VoucherNo", "eq", voucher)], order_by=["VoucherNo"]
            )
        )
    finally:
        hook.close()


def bank_statement_pays(invoice_id: str, creditor: str, gross: Decimal) -> None:
    """What the bank statement import writes in AFAS when the payment run paid an invoice."""
    from airflow_provider_ledgerlink.hooks.afas import AfasHook

    reference = "AL" + uuid.UUID(invoice_id).hex[:10]
    line = {"EnDa": "2026-11-19", "InId": reference, "BpNr": f"BANK-{reference}", "Ds": "SEPA Überweisung"}
    entry = {
        "FiEntryPar": {
            "Element": {
                "Fields": {"Year": 2026, "Peri": 11, "UnId": 1, "JoCo": "50"},
                "Objects": [
                    {
                        "FiEntries": {
                            "Element": [
                                {"Fields": {**line, "VaAs": "3", "AcNr": creditor, "AmDe": str(gross)}},
                                {"Fields": {**line, "VaAs": "1", "AcNr": "1100", "AmCr": str(gross)}},
                            ]
                        }
                    }
                ],
            }
        }
    }
    hook = AfasHook()
    try:
        hook.update_connector("FiEntries", entry)
    finally:
        hook.close()


def test_approved_invoices_are_booked_once_and_their_payments_registered_once(sandbox_env):
    expected = approved_in_window(sandbox_env.alasco)
    assert expected, "the sandbox should have invoices approved on 2026-11-18"

    run_twice("alasco_approved_invoices_to_ledger", "alasco_approved_invoices_to_ledger")

    inserts = [u for u in sandbox_env.afas.updates if u["connector"] == "FiEntries" and u["status"] == 201]
    assert len(inserts) == len(expected)  # the second run booked nothing
    for invoice in expected:
        lines = booked_lines(invoice["id"])
        approved = invoice["attributes"]["discounted_approved_amount"]
        net = Decimal(approved["net"]).quantize(Decimal("0.01"))
        tax = Decimal(approved["tax"]).quantize(Decimal("0.01"))
        assert [line["JournalId"] for line in lines] == ["60"] * len(lines)
        assert sum(Decimal(str(line["AmtDebit"])) for line in lines) == net + tax
        assert sum(Decimal(str(line["AmtCredit"])) for line in lines) == net + tax
        assert {line["EntryDate"] for line in lines} == {"2026-11-18"}
    assert sandbox_env.alasco.payments == []  # nothing is paid yet

    paid = expected[:2]
    for invoice in paid:
        creditor_line = next(line for line in booked_lines(invoice["id"]) if line["AmtCredit"])
        bank_statement_pays(
            invoice["id"], creditor_line["AccountNo"], Decimal(str(creditor_line["AmtCredit"]))
        )

    run_twice("alasco_approved_invoices_to_ledger", "alasco_approved_invoices_to_ledger")

    registered = sandbox_env.alasco.payments
    assert sorted(p["invoice"] for p in registered) == sorted(i["id"] for i in paid)  # once each
    for invoice in paid:
        (payment,) = [p for p in registered if p["invoice"] == invoice["id"]]
        creditor_line = next(line for line in booked_lines(invoice["id"]) if line["AmtCredit"])
        assert Decimal(payment["amount"]) == Decimal(str(creditor_line["AmtCredit"]))
        assert payment["payment_date"] == "2026-11-19"
    inserts = [u for u in sandbox_env.afas.updates if u["connector"] == "FiEntries" and u["status"] == 201]
    assert len(inserts) == len(expected) + len(paid)  # the bank lines, and still no second booking


def test_the_costs_dag_lands_the_day_and_a_rerun_replaces_it(sandbox_env, lake):
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
    from airflow_provider_ledgerlink.core.sinks import manifest_path, read_manifest, read_rows

    bag = load_dag_file(EXAMPLE_DAGS / "alasco_costs_to_lake.py")
    dag = bag.dags["alasco_costs_to_lake"]
    run_id, state = run_dag(bag, dag, LOGICAL_DATE)
    assert_run_succeeded(dag, run_id, state)

    root = lake / "alasco"
    approved_folder = root / "invoices_approved" / "20261118T000000Z_20261119T000000Z"
    rows = list(read_rows(ObjectStoragePath(approved_folder.as_uri())))
    assert sorted(r["id"] for r in rows) == sorted(i["id"] for i in approved_in_window(sandbox_env.alasco))
    created = list(read_rows(ObjectStoragePath((root / "invoices_created" / approved_folder.name).as_uri())))
    assert created and all(in_window(r["date_created"]) for r in created)
    snapshot = root / "projects" / "2026-11-19" / "full"
    assert read_manifest(ObjectStoragePath(snapshot.as_uri()))["rows"] == sandbox_env.alasco.row_count(
        "projects"
    )
    first = {
        path: read_manifest(ObjectStoragePath(path.parent.as_uri()))
        for path in root.rglob("_manifest-*.json")
    }
    assert len(first) == len(dag.tasks)

    run_id, state = run_dag(bag, dag, LOGICAL_DATE)
    assert_run_succeeded(dag, run_id, state)

    for path, before in first.items():
        again = read_manifest(ObjectStoragePath(path.parent.as_uri()))
        assert again["run_id"] != before["run_id"], path
        assert [p["sha256"] for p in again["parts"]] == [p["sha256"] for p in before["parts"]], path
        leftovers = {p.name for p in path.parent.iterdir()} - {
            manifest_path(ObjectStoragePath(path.parent.as_uri())).name,
            *(p["path"] for p in again["parts"]),
        }
        assert not leftovers, path
