"""The Tripletex example DAGs with ``dag.test()`` against the sandbox.

* ``tripletex_ledger_to_lake`` lands exactly what the hook reads for the run's Oslo day, and the
  chart of accounts is kept as it is on a rerun (Tripletex's checksum says it did not change);
* ``webshop_orders_to_tripletex`` turns the day's orders into customers, orders and invoices, and
  running it a second time for the same day creates nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.sandbox.connections import airflow_connection_env

pytestmark = pytest.mark.timeout(900)

EXAMPLE_DAGS = Path(__file__).resolve().parents[3] / "example_dags"
LOGICAL_DATE = datetime(2026, 11, 19, tzinfo=timezone.utc)
#: With the Europe/Oslo timetable that run covers the Oslo day before: 2026-11-18.
OSLO_DAY = date(2026, 11, 18)


def run(dag_file: str, dag_id: str) -> Any:
    """``dag.test()`` of one example DAG on Airflow 3.0 to 3.3; returns the DAG run."""
    import airflow

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / dag_file), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    if tuple(int(p) for p in airflow.__version__.split(".")[:2]) < (3, 1):
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.models.dag import DAG as CoreDAG

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db(bundle_name="dags-folder", bundle_version=None)
        if not hasattr(dag, "test"):
            dag = CoreDAG.from_sdk_dag(dag)
    dag_run = dag.test(logical_date=LOGICAL_DATE)
    assert str(dag_run.state) == "success", f"{dag_id} ended {dag_run.state}"
    return dag_run


@pytest.fixture
def lake(airflow_db: Path, sandbox_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in airflow_connection_env(sandbox_clean).items():
        monkeypatch.setenv(name, value)
    folder = tmp_path / "lake"
    folder.mkdir()
    monkeypatch.setenv("LEDGERLINK_LAKE", folder.as_uri())
    return folder


def landed(lake: Path, resource: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
    from airflow_provider_ledgerlink.core.sinks import read_manifest, read_rows

    (manifest_path,) = (lake / "tripletex" / resource).rglob("_manifest-*.json")
    folder = ObjectStoragePath(manifest_path.parent.as_uri())
    manifest = read_manifest(folder)
    assert manifest is not None
    return manifest, list(read_rows(folder))


def test_the_ledger_dag_lands_the_oslo_day_and_keeps_unchanged_accounts(
    lake: Path, sandbox_clean: Any
) -> None:
    from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook, last_change

    run("tripletex_ledger_to_lake.py", "tripletex_ledger_to_lake")

    hook = TripletexHook(max_in_flight=1, page_size=333)
    day = (OSLO_DAY, date(2026, 11, 19))
    manifest, postings = landed(lake, "postings")
    assert manifest["source"]["dates"] == {"from": "2026-11-18", "to_exclusive": "2026-11-19"}
    assert postings == list(hook.get_all("/ledger/posting", window=day, sorting="id"))
    assert postings and {row["date"] for row in postings} == {"2026-11-18"}
    _manifest, vouchers = landed(lake, "vouchers")
    assert {row["date"] for row in vouchers} == {"2026-11-18"}
    _manifest, customers = landed(lake, "customers")
    start = datetime(2026, 11, 17, 23, tzinfo=timezone.utc)
    everyone = [
        *hook.get_all("/customer", fields="*,changes"),
        *hook.get_all("/customer", params={"isInactive": "true"}, fields="*,changes"),
    ]
    assert customers == [
        row for row in everyone if start <= (last_change(row) or start) < start.replace(day=18)
    ]
    accounts_manifest, accounts = landed(lake, "accounts")
    assert len(accounts) == len(list(hook.get_all("/ledger/account")))
    hook.close()

    run("tripletex_ledger_to_lake.py", "tripletex_ledger_to_lake")

    kept_manifest, _rows = landed(lake, "accounts")
    assert kept_manifest["run_id"] == accounts_manifest["run_id"]  # not rewritten: the checksum matched
    rerun_manifest, rerun_postings = landed(lake, "postings")
    assert rerun_postings == postings and rerun_manifest["run_id"] != manifest["run_id"]


def test_the_webshop_dag_twice_creates_nothing_twice(lake: Path, sandbox_clean: Any) -> None:
    emulator = sandbox_clean.tripletex

    run("webshop_orders_to_tripletex.py", "webshop_orders_to_tripletex")
    first = {kind: emulator.created(kind) for kind in ("customer", "order", "invoice")}
    run("webshop_orders_to_tripletex.py", "webshop_orders_to_tripletex")
    second = {kind: emulator.created(kind) for kind in ("customer", "order", "invoice")}

    assert len(first["order"]) == len(first["invoice"]) == 4
    assert 1 <= len(first["customer"]) <= 3
    assert [o["id"] for o in second["order"]] == [o["id"] for o in first["order"]]
    assert [i["id"] for i in second["invoice"]] == [i["id"] for i in first["invoice"]]
    assert [c["id"] for c in second["customer"]] == [c["id"] for c in first["customer"]]
    assert {c["customerNumber"] for c in first["customer"]} <= {1001, 1002, 1003}  # the shop's own numbers
    assert {o["reference"] for o in first["order"]} == {f"WS-20261118-{n}" for n in range(1, 5)}
    assert {o["orderDate"] for o in first["order"]} == {"2026-11-18"}
    assert emulator.sent_invoices == []
    assert (lake / "webshop" / "orders" / "2026-11-18.jsonl").is_file()
