"""The AFAS example DAG, run by a real Airflow: separate api-server, scheduler, dag-processor and
triggerer processes with the LocalExecutor, against the sandbox.

``dag.test()`` runs everything in one process, where task code may still reach the metadata
database and sees the test's own environment. Here each task runs the way it does in production:
the scheduler queues it, a LocalExecutor worker starts a supervised task process that talks to the
api-server's Execution API only, and the connection comes from ``AIRFLOW_CONN_AFAS_DEFAULT`` in the
workers' environment. The test proves the run succeeds, that each extract landed exactly the rows
the sandbox serves for the run's window, and that the task logs hold neither the AFAS token nor an
"ORM access" error.

How the run is started matters: the REST API (what the UI calls) derives the data interval of a
run triggered with a logical date from that date, while ``airflow dags trigger --logical-date``
derives it from the current time. The test uses the REST API, so the window is fixed.
"""

from __future__ import annotations

import base64
import json
import re
import runpy
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from airflow_processes import (
    airflow_env,
    deployment,
    every_log,
    prepare_home,
    wait_for_dag,
    wait_for_run,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]  # over pyproject's 300 s default

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = REPO_ROOT / "example_dags" / "afas_finance_to_lake.py"
DAG_ID = "afas_finance_to_lake"
RUN_ID = "ledgerlink_system_test"
#: The sandbox generates AFAS data for the 60 days before 2026-11-20; this day is well inside.
LOGICAL_DATE = datetime(2026, 11, 10, tzinfo=timezone.utc)
EXPECTED_WINDOW = (LOGICAL_DATE - timedelta(days=1), LOGICAL_DATE)
SANDBOX_SEED = 42  # the seed of the system_sandbox fixture


# --------------------------------------------------------------------------------------------------
# The token
# --------------------------------------------------------------------------------------------------
def afas_token_forms(token_xml: str) -> dict[str, str]:
    """Every form of the token that must never reach a log."""
    data = re.search(r"<data>([0-9A-Fa-f]+)</data>", token_xml)
    assert data is not None
    return {
        "token XML": token_xml,
        "token data": data.group(1),
        "Authorization header value": base64.b64encode(token_xml.encode()).decode(),
    }


# --------------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------------
def test_afas_example_dag_runs_to_success_in_real_airflow(system_sandbox, deployment_home, monkeypatch):
    from airflow_provider_ledgerlink.sandbox.afas import sandbox_afas_token

    home = deployment_home
    dags, lake, api_port, api_password = prepare_home(home, DAG_FILE)
    token_xml = sandbox_afas_token(SANDBOX_SEED)
    connection = json.dumps(
        {
            "conn_type": "ledgerlink_afas",
            "host": system_sandbox.afas_url,
            "password": token_xml,
            "extra": {"environment_id": "12345", "environment_type": "production"},
        }
    )

    env = airflow_env(home, dags, api_port, {"afas_default": connection}, {"LEDGERLINK_LAKE": lake.as_uri()})

    started = time.monotonic()
    with deployment(home, env, api_port, api_password, DAG_ID) as (airflow, api):
        wait_for_dag(airflow, api, DAG_ID)
        assert DAG_ID in airflow.run("dags", "list", "--output", "plain")
        airflow.run("dags", "unpause", DAG_ID)

        run = api.post(
            f"/dags/{DAG_ID}/dagRuns",
            {"dag_run_id": RUN_ID, "logical_date": LOGICAL_DATE.isoformat()},
        )
        assert run["dag_run_id"] == RUN_ID, run
        # The api-server must commit the run before it answers. Airflow 3.0 commits only after the
        # response on FastAPI 0.118+, hence ci/constraints-airflow-3.0.txt.
        assert api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}", expect=(200, 404)) is not None, (
            f"the trigger answered 200 but run {RUN_ID} is not in the database (yet)"
        )
        window = (
            datetime.fromisoformat(run["data_interval_start"].replace("Z", "+00:00")),
            datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00")),
        )
        assert window == EXPECTED_WINDOW, (
            f"a run triggered for {LOGICAL_DATE:%Y-%m-%d} got the data interval "
            f"[{window[0].isoformat()}, {window[1].isoformat()}), not the day "
            "before it: a @daily schedule on Airflow 3's default (CronTriggerTimetable) has a "
            "zero-length interval, so the DAG must declare its interval explicitly"
        )

        state = wait_for_run(airflow, api, DAG_ID, RUN_ID)
        instances = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances")["task_instances"]
        print(f"Airflow run finished ({state}) {time.monotonic() - started:.0f}s after start-up began")

    # -- the run ------------------------------------------------------------------------------------
    extracts = [task for task in runpy.run_path(str(DAG_FILE))["dag"].tasks if hasattr(task, "connector_id")]
    assert state == "success"
    assert {ti["task_id"]: ti["state"] for ti in instances} == dict.fromkeys(
        (task.task_id for task in extracts), "success"
    )

    # -- what landed in the lake: exactly the rows the sandbox serves for the window ------------------
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
    from airflow_provider_ledgerlink.core.sinks import read_manifest, read_rows
    from airflow_provider_ledgerlink.hooks.afas import AfasHook

    monkeypatch.setenv("AIRFLOW_CONN_AFAS_DEFAULT", connection)
    hook = AfasHook(page_size=250, max_in_flight=1)  # other paging than the tasks', same answer
    try:
        for task in extracts:
            connector = task.connector_id
            manifests = sorted((lake / "afas" / connector).rglob("_manifest-*.json"))
            assert len(manifests) == 1, f"{connector}: expected one complete extract, found {manifests}"
            folder = ObjectStoragePath(manifests[0].parent.as_uri())
            manifest = read_manifest(folder)
            assert manifest is not None
            if task.modified_field:
                assert manifest["window"] == {"start": window[0].isoformat(), "end": window[1].isoformat()}
                filters = [(task.modified_field, ">=", window[0]), (task.modified_field, "<", window[1])]
            else:
                assert manifest["window"] is None
                filters = []
            filters += list(task.filters or [])
            expected = sum(1 for _ in hook.get_rows(connector, filters=filters, order_by=task.order_by))
            assert manifest["rows"] == expected, connector
            assert sum(1 for _ in read_rows(folder)) == expected, connector
            if connector == "Profit_Transactions":
                assert expected > 0, "the window should hold sandbox transactions"
    finally:
        hook.close()

    # -- the task logs --------------------------------------------------------------------------------
    task_logs = sorted((home / "logs").glob(f"dag_id={DAG_ID}/**/*.log"))
    assert len(task_logs) >= len(extracts), task_logs
    forms = afas_token_forms(token_xml)
    for path, text in every_log(airflow).items():
        for form, secret in forms.items():
            assert secret not in text, f"the AFAS {form} appears in {path}"
        assert "Direct database access" not in text, path
        assert "airflow-db-not-allowed" not in text, path
