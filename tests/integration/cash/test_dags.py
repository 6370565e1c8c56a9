"""The CASH example DAG under ``dag.test()`` against the sandbox: what lands in the lake, the journal
entry imported and awaited through the triggerer path, and a retried import that is not sent twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.sandbox.faults import status_fault

pytestmark = pytest.mark.timeout(600)

DAG_FILE = Path(__file__).resolve().parents[3] / "example_dags" / "cash_relations_and_journal.py"
LOGICAL_DATE = datetime(2026, 11, 19, tzinfo=timezone.utc)  # the run covers 2026-11-18


@pytest.fixture
def dag_env(airflow_db: Path, cash_connection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    lake = tmp_path / "lake"
    lake.mkdir()
    monkeypatch.setenv("LEDGERLINK_LAKE", lake.as_uri())
    monkeypatch.setenv("LEDGERLINK_CASH_POLL_INTERVAL", "0.2")  # read when the DAG file is parsed
    return lake


def load_dag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    return bag, bag.dags["cash_relations_and_journal"]


def run(bag: Any, dag: Any) -> Any:
    import airflow

    if tuple(int(p) for p in airflow.__version__.split(".")[:2]) < (3, 1):
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.models.dag import DAG as CoreDAG

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db(bundle_name="dags-folder", bundle_version=None)
        if not hasattr(dag, "test"):
            dag = CoreDAG.from_sdk_dag(dag)
    return dag.test(logical_date=LOGICAL_DATE)


def states(dag_run: Any) -> dict[str, tuple[str, int]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(TaskInstance.task_id, TaskInstance.state, TaskInstance.try_number).where(
        TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
    )
    with create_session() as session:
        return {task: (str(state), tries) for task, state, tries in session.execute(query).all()}


def landed_rows(folder: Path) -> list[dict[str, Any]]:
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
    from airflow_provider_ledgerlink.core.sinks import read_rows

    [manifest] = folder.rglob("_manifest-*.json")
    return list(read_rows(ObjectStoragePath(manifest.parent.as_uri())))


def test_the_dag_lands_relations_and_journal_lines_and_imports_the_days_entry(
    dag_env: Path, sandbox_clean: Any
) -> None:
    bag, dag = load_dag()

    dag_run = run(bag, dag)

    assert {task: state for task, (state, _) in states(dag_run).items()} == dict.fromkeys(
        dag.task_ids, "success"
    )
    relations = landed_rows(dag_env / "cash" / "relations")
    journal_lines = landed_rows(dag_env / "cash" / "journal_lines")
    assert relations and all(r["record"] == "0101" for r in relations)
    assert journal_lines and {r["period"] for r in journal_lines} == {"2026-11"}
    assert sandbox_clean.cash.import_calls == 1
    [transaction] = sandbox_clean.cash.transactions.values()
    assert transaction.status == 2
    lines = [dict(fields) for _, fields in transaction.records]
    assert [line["0201"] for line in lines] == ["1100", "8000", "1600"]
    assert {line["0302"] for line in lines} == {"261118"}
    landed = list((dag_env / "outbox" / "cash" / "journal").glob("*.jsonl"))
    assert [p.name for p in landed] == ["2026-11-18.jsonl"]
    assert len(landed[0].read_text().splitlines()) == 3
    assert json.loads(landed[0].read_text().splitlines()[0])["journal"] == "MM"


def test_a_second_run_of_the_day_imports_nothing(dag_env: Path, sandbox_clean: Any) -> None:
    """A rerun of the same day (a cleared run, a backfill) finds the day's document number recorded."""
    bag, dag = load_dag()
    run(bag, dag)
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:  # dag.test() runs one logical date once: clear it for the rerun
        session.query(DagRun).filter(DagRun.dag_id == dag.dag_id).delete()

    calls_of_the_first_run = soap_calls(sandbox_clean)
    dag_run = run(bag, dag)

    assert states(dag_run)["import_journal"][0] == "success"
    assert soap_calls(sandbox_clean) > calls_of_the_first_run  # the second run did run its tasks
    assert sandbox_clean.cash.import_calls == 1
    [transaction] = sandbox_clean.cash.transactions.values()
    assert transaction.status == 2


def soap_calls(sandbox: Any) -> int:
    return sum(
        count
        for key, statuses in sandbox.stats["cash"]["by_path"].items()
        if key.startswith("POST")
        for count in statuses.values()
    )


def test_a_retried_import_task_resumes_the_same_transaction(dag_env: Path, sandbox_clean: Any) -> None:
    bag, dag = load_dag()
    for task in dag.tasks:
        task.retry_delay = timedelta(0)
    # SOAP calls in order: two exports, the import, then the first status read: that one fails, so
    # the import task's first try fails after its import was sent.
    fault = (
        '<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
        "<SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>Internal error"
        "</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    sandbox_clean.faults.add(
        status_fault(500, fault, vendor="cash", method="POST", nth=[4], content_type="text/xml")
    )

    dag_run = run(bag, dag)

    final = states(dag_run)
    assert final["import_journal"] == ("success", 2), final
    assert sandbox_clean.cash.import_calls == 1
    [transaction] = sandbox_clean.cash.transactions.values()
    assert transaction.status == 2
