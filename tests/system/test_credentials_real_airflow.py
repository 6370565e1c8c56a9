"""The token rotation DAG, run by a real Airflow (separate api-server, scheduler, dag-processor and
triggerer, LocalExecutor), against the sandbox, with both built-in credential stores:

* Tripletex, CASH and CloudPOS use the **Variable store**: task processes write Airflow Variables
  through the Execution API (no ORM access from a task, which Airflow 3 forbids);
* Alasco uses the **REST API store**: its connection lives in the metadata database, the new token
  is staged in the connection's ``staged_password`` extra (what an administrator types in the UI),
  and the promotion rewrites the connection through the real api-server's ``PATCH
  /api/v2/connections/{id}``;
* AFAS (Airflow 3.1+) renews its token by one-time password: the task waits for a person in
  Airflow's human-in-the-loop UI; the test reads the code from the sandbox's "mailbox" and answers
  through the REST API, as the UI does.

The test proves the run succeeds, every credential was replaced by the verified new one, the staging
slots are empty, the old Tripletex session is deleted, and no log holds any of the secrets.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow_processes import (
    airflow_env,
    deployment,
    every_log,
    prepare_home,
    wait_for_dag,
    wait_for_run,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = REPO_ROOT / "example_dags" / "ledgerlink_token_rotation.py"
DAG_ID = "ledgerlink_token_rotation"
RUN_ID = "ledgerlink_rotation_system_test"
API_CONN_ID = "ledgerlink_airflow_api"


def airflow_at_least(major: int, minor: int) -> bool:
    import airflow
    from packaging.version import Version

    return Version(airflow.__version__).release[:2] >= (major, minor)


def without_supervisor_echo(text: str) -> str:
    """The log without Airflow's own debug echo of the Variables a task writes.

    Before Airflow 3.3 (seen on 3.0.6) the supervisor of a task prints each request of the task at
    debug level to the executor's output (the scheduler's, with the LocalExecutor), a ``PutVariable``
    with its value; docs/credentials.md says so. Task logs, trigger logs and every other line are
    still checked.
    """
    return "\n".join(
        line
        for line in text.splitlines()
        if not ("Received message from task runner" in line and "PutVariable" in line)
    )


def last_line(output: str) -> str:
    """What a CLI command printed last (Airflow 3.0 prints its own log lines before it)."""
    return [line for line in output.splitlines() if line.strip()][-1].strip()


def test_the_token_rotation_dag_in_real_airflow(system_sandbox, deployment_home):
    from airflow_provider_ledgerlink.sandbox.afas import OTP_USER_ID
    from airflow_provider_ledgerlink.sandbox.connections import sandbox_connections

    home = deployment_home
    dags, lake, api_port, api_password = prepare_home(home, DAG_FILE)
    renew_afas = airflow_at_least(3, 1)  # human-in-the-loop exists from Airflow 3.1

    definitions = sandbox_connections(system_sandbox.url, system_sandbox.seed)
    alasco = definitions.pop("alasco_default")
    alasco["extra"].update(credential_store="airflow_api", credential_store_conn_id=API_CONN_ID)
    connections = {conn_id: json.dumps(definition) for conn_id, definition in definitions.items()}
    connections[API_CONN_ID] = json.dumps(
        {
            "conn_type": "http",
            "host": f"http://127.0.0.1:{api_port}",
            "login": "ledgerlink",
            "password": api_password,
        }
    )
    env = airflow_env(home, dags, api_port, connections, {"LEDGERLINK_LAKE": lake.as_uri()})

    secrets: dict[str, str] = {"Airflow API password": api_password}
    with deployment(home, env, api_port, api_password, DAG_ID) as (airflow, api):
        # Alasco's connection lives in the metadata database, where the REST store can change it.
        api.post(
            "/connections",
            {
                "connection_id": "alasco_default",
                "conn_type": alasco["conn_type"],
                "host": alasco["host"],
                "login": alasco["login"],
                "password": alasco["password"],
                "extra": json.dumps(alasco["extra"]),
            },
        )
        # What administrators do: create new credentials at the vendors and stage them in Airflow.
        old_alasco = alasco["password"]
        new_alasco = system_sandbox.alasco.mint_credentials(replace=True)[1]  # the old token stops working
        new_cash = system_sandbox.cash.new_password()
        new_cloudpos = system_sandbox.cloudpos.new_token()
        secrets.update(
            {"old Alasco token": old_alasco, "new Alasco token": new_alasco, "new CASH password": new_cash},
        )
        secrets["new CloudPOS token"] = new_cloudpos
        api.patch(
            "/connections/alasco_default",
            {
                "connection_id": "alasco_default",
                "conn_type": alasco["conn_type"],
                "extra": json.dumps({**alasco["extra"], "staged_password": new_alasco}),
            },
            params={"update_mask": "extra"},
        )
        for conn_id, value in (("cash_default", new_cash), ("cloudpos_default", new_cloudpos)):
            api.post("/variables", {"key": f"ledgerlink_staged_password_{conn_id}", "value": value})

        wait_for_dag(airflow, api, DAG_ID)
        airflow.run("dags", "unpause", DAG_ID)
        api.post(
            f"/dags/{DAG_ID}/dagRuns",
            {"dag_run_id": RUN_ID, "logical_date": None, "conf": {"renew_afas_token": renew_afas}},
        )

        answered: dict[str, str] = {}

        def answer_the_otp_request(instances: list[dict[str, Any]]) -> None:
            """When the AFAS task waits for a person, read the e-mailed code and enter it."""
            waiting = {ti["task_id"]: ti["state"] for ti in instances}.get("renew_afas_token")
            if answered or waiting not in ("awaiting_input", "deferred"):
                return
            mailbox = httpx.get(f"{system_sandbox.url}/_sandbox/afas/otp", params={"user": OTP_USER_ID})
            if mailbox.status_code != 200:
                return
            answered["otp"] = mailbox.json()["otp"]
            api.patch(
                f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/renew_afas_token/-1/hitlDetails",
                {"chosen_options": ["OK"], "params_input": {"otp": answered["otp"]}},
            )

        state = wait_for_run(airflow, api, DAG_ID, RUN_ID, watch=answer_the_otp_request)
        instances = {
            ti["task_id"]: ti["state"]
            for ti in api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances")["task_instances"]
        }
        alasco_after = json.loads(
            last_line(airflow.run("connections", "get", "alasco_default", "--output", "json"))
        )
        listed = airflow.run("variables", "list", "--output", "plain")
        variables = {
            key: last_line(airflow.run("variables", "get", key, timeout=120)) if key in listed else None
            for key in (
                "ledgerlink_credentials_token_tripletex_default",
                "ledgerlink_credentials_token_cash_default",
                "ledgerlink_credentials_token_cloudpos_default",
                "ledgerlink_credentials_token_afas_default",
                "ledgerlink_staged_password_cash_default",
                "ledgerlink_staged_password_cloudpos_default",
            )
        }

    # -- the run --------------------------------------------------------------------------------------
    assert state == "success"
    expected = {
        "rotate_tripletex_session": "success",
        "check_tripletex": "success",
        "promote_alasco": "success",
        "promote_cash": "success",
        "promote_cloudpos": "success",
        "afas_renewal_requested": "success",
        "renew_afas_token": "success" if renew_afas else "skipped",
        "summary": "success",
    }
    assert instances == expected

    # -- Alasco: the connection itself was rewritten through the REST API ---------------------------
    record = alasco_after[0] if isinstance(alasco_after, list) else alasco_after
    if "alasco_default" in record and isinstance(record["alasco_default"], dict):
        record = record["alasco_default"]
    assert record["password"] == new_alasco
    extra = record.get("extra_dejson") or json.loads(record.get("extra") or "{}")
    assert "staged_password" not in extra and extra["ledgerlink_promoted_at"]

    # -- the Variable store --------------------------------------------------------------------------
    assert variables["ledgerlink_staged_password_cash_default"] is None
    assert variables["ledgerlink_staged_password_cloudpos_default"] is None
    assert json.loads(variables["ledgerlink_credentials_token_cash_default"])["password"] == new_cash
    assert json.loads(variables["ledgerlink_credentials_token_cloudpos_default"])["password"] == new_cloudpos
    session = json.loads(variables["ledgerlink_credentials_token_tripletex_default"])["session_token"]
    alive = {token for token, s in system_sandbox.tripletex._sessions.items() if not s.revoked}
    assert alive == {session}, "the rotated session is stored and every other session was deleted"
    secrets["Tripletex session"] = session
    if answered:
        secrets["AFAS one-time password"] = answered["otp"]
    if renew_afas:
        new_afas = json.loads(variables["ledgerlink_credentials_token_afas_default"])["password"]
        assert new_afas.startswith("<token>") and new_afas != definitions["afas_default"]["password"]
        secrets["new AFAS token"] = new_afas

    # -- no secret in any log, the summary or XCom; no ORM access from tasks --------------------------
    summary = next((lake / "_reports").glob("token_rotation_*.json")).read_text()
    for path, text in every_log(airflow).items():
        if not airflow_at_least(3, 3):
            text = without_supervisor_echo(text)
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} appears in {path}"
        assert "Direct database access" not in text, path
        assert "airflow-db-not-allowed" not in text, path
    for what, secret in secrets.items():
        assert secret not in summary, f"the {what} appears in the rotation summary"
    print(f"rotation run finished at {time.strftime('%H:%M:%S')}: {instances}")
