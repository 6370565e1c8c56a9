"""Every example DAG imports cleanly and runs to success with ``dag.test()`` against the sandbox.

The DAG files are discovered, not listed: a new file in ``example_dags/`` is tested as soon as it
exists. Each run uses the sandbox's connections (``airflow_connection_env``) and a fresh lake folder
(``LEDGERLINK_LAKE``), at a logical date inside the sandbox's generated history.

What each vendor's DAGs land is checked in ``tests/integration/<vendor>/test_dags.py``, which
share the helpers and fixtures of this file.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.sandbox.connections import airflow_connection_env

pytestmark = pytest.mark.timeout(900)

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
#: Files starting with ``_`` are helpers shared by DAG files, not DAG files themselves.
DAG_FILES = sorted(path for path in EXAMPLE_DAGS.glob("*.py") if not path.name.startswith("_"))
#: DAGs a test of their own runs to success (and checks more of), so the run below is not repeated.
RUN_BY_THEIR_OWN_TEST = {
    "cloudpos_weborder_to_tripletex": "test_the_weborder_dag_books_the_weborder_in_tripletex_once",
}
#: The sandbox generates data for the 60 days before 2026-11-20; this run covers 2026-11-18.
LOGICAL_DATE = datetime(2026, 11, 19, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------------
# Running a DAG the same way on Airflow 3.0 and 3.3
# --------------------------------------------------------------------------------------------------
def airflow_version() -> tuple[int, ...]:
    import airflow
    from packaging.version import Version

    return Version(airflow.__version__).release[:2]


def load_dag_file(path: Path) -> Any:
    """A DagBag of one file (``airflow.dag_processing.dagbag`` from 3.1, ``airflow.models`` before)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(path), safe_mode=False)


def run_dag(bag: Any, dag: Any, logical_date: datetime) -> tuple[str, str]:
    """Run ``dag`` once with ``dag.test()``, without task retries; returns ``(run_id, state)``.

    Airflow 3.3's ``dag.test(logical_date=…)`` writes the DAG (and its asset outlets) to the
    metadata database itself. Airflow 3.0 does not, so the DAG's outlets would count as inactive
    assets and fail the task: the DagBag is written first. On 3.0.0 and 3.0.1 ``test()`` exists only
    on the core ``airflow.models.dag.DAG``, not on the ``airflow.sdk.DAG`` a DAG file creates.
    """
    for task in dag.tasks:  # a failure fails the run at once instead of after the DAG's retry delays
        task.retries = 0
    if airflow_version() < (3, 1):
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db(bundle_name="dags-folder", bundle_version=None)
        if not hasattr(dag, "test"):
            from airflow.models.dag import DAG as CoreDAG

            dag = CoreDAG.from_sdk_dag(dag)
    dag_run = dag.test(logical_date=logical_date)
    return dag_run.run_id, str(dag_run.state)


def task_states(dag_id: str, run_id: str) -> dict[str, str]:
    """``{task_id: state}`` of a DAG run (``task_id[map_index]`` for mapped tasks)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
    )
    with create_session() as session:
        rows = session.execute(query).all()
    return {
        (task_id if map_index is None or map_index < 0 else f"{task_id}[{map_index}]"): str(state)
        for task_id, map_index, state in rows
    }


#: Tasks that run only when there is something to do, and are skipped otherwise: promotions with
#: nothing staged, the AFAS renewal nobody asked for (tests/integration/test_credential_dags.py
#: runs them with work to do).
ON_DEMAND_TASKS = {
    "ledgerlink_token_rotation": {"promote_alasco", "promote_cash", "promote_cloudpos", "renew_afas_token"}
}


def assert_run_succeeded(dag: Any, run_id: str, state: str) -> None:
    states = task_states(dag.dag_id, run_id)
    assert {key.split("[")[0] for key in states} == set(dag.task_ids), states
    skippable = ON_DEMAND_TASKS.get(dag.dag_id, set())
    failed = {
        task: task_state
        for task, task_state in states.items()
        if task_state != "success" and not (task_state == "skipped" and task in skippable)
    }
    assert not failed, f"{dag.dag_id}: tasks did not succeed: {failed}"
    assert state == "success", f"{dag.dag_id}: the run ended {state}"


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def lake(tmp_path: Path) -> Path:
    folder = tmp_path / "lake"
    folder.mkdir()
    return folder


@pytest.fixture
def sandbox_env(airflow_db: Path, sandbox_clean: Any, lake: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox's connections and a fresh lake in the environment, before a DAG file is read."""
    for name, value in airflow_connection_env(sandbox_clean).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEDGERLINK_LAKE", lake.as_uri())
    return sandbox_clean


# --------------------------------------------------------------------------------------------------
# Every example DAG
# --------------------------------------------------------------------------------------------------
def test_the_example_dags_are_discovered() -> None:
    assert EXAMPLE_DAGS.is_dir()
    assert "afas_finance_to_lake.py" in {path.name for path in DAG_FILES}


@pytest.mark.parametrize(
    "dag_file",
    [path for path in DAG_FILES if path.stem not in RUN_BY_THEIR_OWN_TEST],
    ids=lambda path: path.stem,
)
def test_example_dag_imports_and_runs_to_success(dag_file: Path, sandbox_env: Any) -> None:
    bag = load_dag_file(dag_file)

    assert not bag.import_errors, f"{dag_file.name} does not import: {bag.import_errors}"
    assert bag.dags, f"{dag_file.name} defines no DAG"
    for dag in bag.dags.values():
        run_id, state = run_dag(bag, dag, LOGICAL_DATE)
        assert_run_succeeded(dag, run_id, state)


# --------------------------------------------------------------------------------------------------
# The CloudPOS weborder DAG: booked in Tripletex, and nothing twice on a rerun
# --------------------------------------------------------------------------------------------------
def test_the_weborder_dag_books_the_weborder_in_tripletex_once(sandbox_env: Any) -> None:
    assert globals()[RUN_BY_THEIR_OWN_TEST["cloudpos_weborder_to_tripletex"]]  # the name above is this test
    cloudpos, tripletex = sandbox_env.cloudpos, sandbox_env.tripletex
    bag = load_dag_file(EXAMPLE_DAGS / "cloudpos_weborder_to_tripletex.py")
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["cloudpos_weborder_to_tripletex"]

    def booked() -> dict[str, list[Any]]:
        return {kind: tripletex.created(kind) for kind in ("customer", "order", "invoice")}

    run_id, state = run_dag(bag, dag, LOGICAL_DATE)
    assert_run_succeeded(dag, run_id, state)
    first = booked()
    weborders = [n for n in cloudpos.weborders if n >= 8001]
    assert len(weborders) == 1
    assert len(first["order"]) == len(first["invoice"]) == len(first["customer"]) == 1
    order = first["order"][0]
    assert order["reference"] == f"CLOUDPOS-{weborders[0]}"
    assert first["customer"][0]["customerNumber"] == 12  # the CloudPOS customer of the sample weborder
    assert len(order["orderLines"]) == 2
    assert tripletex.sent_invoices == []

    run_id, state = run_dag(bag, dag, LOGICAL_DATE)  # the same run again
    assert_run_succeeded(dag, run_id, state)
    second = booked()
    assert [n for n in cloudpos.weborders if n >= 8001] == weborders  # no second weborder
    for kind in ("customer", "order", "invoice"):
        assert [row["id"] for row in second[kind]] == [row["id"] for row in first[kind]], kind


def without_mask_requests(text: str) -> str:
    """``text`` without the lines where Airflow 3.0's in-process ``dag.test()`` supervisor echoes
    its task's requests to mask a value (``Sending request msg=MaskSecret(value=…)``, at DEBUG).

    Those lines are Airflow's own, printed as well for the connection password Airflow masks
    itself, and only by the test supervisor ``dag.test()`` runs in: a deployment's supervisor logs
    these messages with the body omitted. Every other line is checked.
    """
    return "\n".join(line for line in text.splitlines() if "msg=MaskSecret(" not in line)
