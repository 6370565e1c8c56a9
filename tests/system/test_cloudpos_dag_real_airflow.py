"""The CloudPOS weborder example DAG, run by a real Airflow: separate api-server, scheduler,
dag-processor and triggerer processes with the LocalExecutor, against the sandbox.

``wait_for_confirmation`` is a deferrable sensor: its first poke finds the new weborder unconfirmed,
so the task defers and :class:`CloudPosWeborderConfirmedTrigger` polls CloudPOS from the triggerer
process, on the triggerer's event loop, with the connection the triggerer resolves from its own
environment. ``dag.test()`` runs triggers in the test process and would prove none of that. The test
proves the run succeeds, that the sensor was deferred to that trigger and that the trigger's event
(the confirmation) came from the triggerer, that the sandbox was polled more than once before the
confirmed weborder was booked in the Tripletex sandbox (one order, one invoice), and that no log holds the CloudPOS token, an "ORM access"
error or the triggerer's warnings about blocking calls on its event loop.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

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
DAG_FILE = REPO_ROOT / "example_dags" / "cloudpos_weborder_to_tripletex.py"
DAG_ID = "cloudpos_weborder_to_tripletex"
RUN_ID = "ledgerlink_system_test"
SENSOR = "wait_for_confirmation"
TRIGGER_CLASSPATH = "airflow_provider_ledgerlink.triggers.cloudpos.CloudPosWeborderConfirmedTrigger"
#: The sandbox confirms a new weborder this long after creating it: later than the sensor's first
#: poke, earlier than the trigger's first poll (the DAG's poke interval is 60 s).
CONFIRM_AFTER_SECONDS = 20.0

#: What must appear in no log: Airflow 3's refusal of ORM access from task code, and what the
#: triggerer logs when a trigger blocks its event loop (a synchronous call from async code).
FORBIDDEN_IN_LOGS = (
    "Direct database access",
    "airflow-db-not-allowed",
    "DeadlockImminent",
    "async thread was blocked",
    "badly-written trigger",
)

#: The one warning a trigger log may hold: Airflow 3.0's own, when the trigger looks its connection
#: up (3.0's ``BaseHook.get_connection`` goes through the deprecated ``get_connection_from_secrets``).
AIRFLOW_30_CONNECTION_WARNING = (
    '"event":"Using Connection.get_connection_from_secrets from `airflow.models` is deprecated.',
    '"category":"DeprecationWarning"',
)

#: Lines Airflow 3.0's triggerer logs at error level with nothing wrong: a Variable read that finds
#: nothing (LedgerLink reads its shared-state keys with a default; Airflow 3.3 logs that at debug),
#: and the trigger runner's exit when the test stops the deployment with SIGTERM.
AIRFLOW_30_TRIGGERER_NOISE = (
    re.compile(r"\[error\s*\] Variable not found\s+\[airflow\.sdk\.api\.client\].* key=ledgerlink_"),
    re.compile(r"\[error\s*\] Process terminated by signal\s.*signal_name=SIGTERM"),
)


def test_cloudpos_weborder_dag_defers_to_the_real_triggerer(system_sandbox, deployment_home):
    from airflow_provider_ledgerlink.sandbox.cloudpos import cloudpos_connection_definition
    from airflow_provider_ledgerlink.sandbox.connections import sandbox_connections

    home = deployment_home
    dags, lake, api_port, api_password = prepare_home(home, DAG_FILE)
    system_sandbox.cloudpos.confirm_after_seconds = CONFIRM_AFTER_SECONDS
    connection = cloudpos_connection_definition(system_sandbox.cloudpos_url, daily_request_limit=1_000_000)
    token = connection["password"]
    env = airflow_env(
        home,
        dags,
        api_port,
        {
            "cloudpos_default": json.dumps(connection),
            "tripletex_default": json.dumps(sandbox_connections(system_sandbox.url)["tripletex_default"]),
        },
        {"LEDGERLINK_LAKE": lake.as_uri()},
    )

    deferred: list[dict[str, Any]] = []  # the sensor's task instance, each time it was seen deferred

    def watch(instances: list[dict[str, Any]]) -> None:
        deferred.extend(ti for ti in instances if ti["task_id"] == SENSOR and ti["state"] == "deferred")

    started = time.monotonic()
    with deployment(home, env, api_port, api_password, DAG_ID) as (airflow, api):
        wait_for_dag(airflow, api, DAG_ID)
        airflow.run("dags", "unpause", DAG_ID)
        run = api.post(f"/dags/{DAG_ID}/dagRuns", {"dag_run_id": RUN_ID, "logical_date": None})
        assert run["dag_run_id"] == RUN_ID, run
        state = wait_for_run(airflow, api, DAG_ID, RUN_ID, watch=watch)
        instances = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances")["task_instances"]
        print(f"Airflow run finished ({state}) {time.monotonic() - started:.0f}s after start-up began")

    # -- the run ------------------------------------------------------------------------------------
    assert state == "success"
    assert {ti["task_id"]: ti["state"] for ti in instances} == {
        "create_weborder": "success",
        SENSOR: "success",
        "weborder_as_order": "success",
        "book_in_tripletex": "success",
    }

    # -- the sensor deferred to the CloudPOS trigger, which ran in the triggerer process -------------
    assert deferred, f"{SENSOR} was never seen in the deferred state"
    assert {ti["trigger"]["classpath"] for ti in deferred if ti["trigger"]} == {TRIGGER_CLASSPATH}, deferred
    triggerers = {ti["triggerer_job"]["job_type"] for ti in deferred if ti["triggerer_job"]}
    assert triggerers == {"TriggererJob"}, f"no triggerer picked up the trigger: {deferred}"

    sensor_logs = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={RUN_ID}" / f"task_id={SENSOR}"
    trigger_logs = sorted(sensor_logs.glob("*.trigger.*.log"))
    assert trigger_logs, f"the triggerer wrote no trigger log under {sensor_logs}"
    trigger_log = "\n".join(path.read_text(errors="replace") for path in trigger_logs)
    assert re.search(r'"event":\s*"trigger [^"]*/' + SENSOR + r'/[^"]* starting"', trigger_log), trigger_log
    fired = [line for line in trigger_log.splitlines() if "Trigger fired event" in line]
    assert len(fired) == 1 and "'status': 'confirmed'" in fired[0], trigger_log
    complaints = [
        line
        for line in trigger_log.splitlines()
        if re.search(r'"level":\s*"(warning|error|critical)"', line)
        and not all(part in line for part in AIRFLOW_30_CONNECTION_WARNING)
    ]
    assert not complaints, complaints
    # The triggerer's own output: no error and no traceback while it ran the trigger (the blocked-loop
    # watchdog logs at info level, so FORBIDDEN_IN_LOGS checks its message below).
    triggerer_out = airflow.log_file("triggerer").read_text(errors="replace")
    problems = [
        line
        for line in triggerer_out.splitlines()
        if re.search(r"\[(error|critical)\s*\]|Traceback", line)
        and not any(noise.search(line) for noise in AIRFLOW_30_TRIGGERER_NOISE)
    ]
    assert not problems, triggerer_out[-3000:]

    # -- the sandbox: unconfirmed at the first poll, confirmed at a later one ---------------------------
    task_log = "\n".join(
        path.read_text(errors="replace") for path in sorted(sensor_logs.glob("attempt=*.log"))
    )
    assert "is not confirmed yet" in task_log, task_log
    polls = [call for call in system_sandbox.cloudpos.calls if call["function"] == "get-confirmedweborder"]
    assert len(polls) >= 2, f"the weborder was confirmed after {len(polls)} poll(s), expected more than one"
    (weborder_id,) = [n for n in system_sandbox.cloudpos.weborders if n >= 8001]
    assert f"'weborder_id': '{weborder_id}'" in fired[0], fired[0]
    (order,) = system_sandbox.tripletex.created("order")
    assert order["reference"] == f"CLOUDPOS-{weborder_id}", order
    assert len(system_sandbox.tripletex.created("invoice")) == 1

    # -- every log: no token, no ORM access, no blocked event loop ----------------------------------
    logs = every_log(airflow)
    assert airflow.log_file("triggerer").relative_to(home) in logs
    for path, text in logs.items():
        assert token not in text, f"the CloudPOS token appears in {path}"
        for forbidden in FORBIDDEN_IN_LOGS:
            assert forbidden not in text, f"{forbidden!r} in {path}"
