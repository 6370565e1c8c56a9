"""CloudPOS through real Airflow runs (``dag.test()``) against the sandbox.

* Two tasks running at the same time in two processes share one licence's daily budget through
  Airflow Variables: together they never send more than the budget, and CloudPOS never has to say
  "limit reached".
* Two tasks starting at the same time with a wrong token make one login attempt between them.
* The weborder sensor in deferrable mode: the first poll on the worker, the wait in the trigger,
  the confirmation back in the task.
* The token appears nowhere: not in the task logs, XCom, rendered template fields or the trigger's
  events.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from test_example_dags import without_mask_requests  # Airflow 3.0's dag.test() echoes masked values

from airflow_provider_ledgerlink.sandbox.cloudpos import cloudpos_connection_definition

pytestmark = pytest.mark.timeout(600)

#: A DAG file with one task that spends the licence's budget until LedgerLink refuses (or CloudPOS
#: does). Run as a script, it waits for its twin (a file barrier) so that both spend at once.
SPENDER_DAG = textwrap.dedent(
    """
    import json, os, time
    from pathlib import Path

    import pendulum
    from airflow.sdk import DAG, task

    with DAG(os.environ["SPENDER_DAG_ID"], schedule=None, start_date=pendulum.datetime(2026, 11, 1), catchup=False) as dag:

        @task
        def spend():
            from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError
            from airflow_provider_ledgerlink.core.errors import AuthenticationError
            from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState
            from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosHook

            barrier = Path(os.environ["SPENDER_BARRIER"])
            (barrier / os.environ["SPENDER_DAG_ID"]).touch()
            deadline = time.time() + 120
            while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
                time.sleep(0.05)
            hook = CloudPosHook()
            sent, ended = 0, "no end"
            try:
                while sent < 1000:
                    hook.call("categories")
                    sent += 1
            except BudgetExhaustedError as exc:
                ended = "vendor quota" if exc.reference else "budget"
            except AuthenticationError as exc:
                ended = type(exc).__name__
            finally:
                hook.close()
            can_list = AirflowVariableState().can_list  # which guarantees apply (Airflow 3.3+ or not)
            Path(os.environ["SPENDER_OUT"]).write_text(
                json.dumps({"sent": sent, "ended": ended, "can_list": can_list})
            )
            return sent

        spend()

    if __name__ == "__main__":
        dag.test(logical_date=pendulum.datetime(2026, 11, 19))
    """
)


@pytest.fixture
def cloudpos_licence(airflow_db: Path, sandbox_clean: Any) -> dict[str, Any]:
    """A licence of its own at the emulator, with CloudPOS's quota set to ``limit``."""
    licence = f"race-{uuid.uuid4().hex[:8]}"
    limit = 40
    token = sandbox_clean.cloudpos.add_licence(licence, daily_limit=limit)
    return {"licence": licence, "token": token, "limit": limit, "sandbox": sandbox_clean}


def run_spenders(tmp_path: Path, connection: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the spender DAG twice at once, in two processes; returns what each task reported."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    processes = []
    for n in (1, 2):
        # dag.test() serialises the DAGs of the dags folder: each process gets a folder of its own.
        folder = tmp_path / f"dags{n}"
        folder.mkdir()
        dag_file = folder / "spender.py"
        dag_file.write_text(SPENDER_DAG)
        env = {
            **os.environ,
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW_CONN_CLOUDPOS_DEFAULT": json.dumps(connection),
            "SPENDER_DAG_ID": f"cloudpos_spender_{n}_{uuid.uuid4().hex[:6]}",
            "SPENDER_BARRIER": str(barrier),
            "SPENDER_OUT": str(tmp_path / f"out{n}.json"),
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, str(dag_file)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=400)[0] for process in processes]
    results = []
    for n, output in zip((1, 2), outputs, strict=True):
        out = tmp_path / f"out{n}.json"
        assert out.exists(), f"spender {n} did not finish:\n{output[-4000:]}"
        results.append({**json.loads(out.read_text()), "log": output})
    return results


def test_two_concurrent_tasks_never_cross_the_shared_daily_budget(cloudpos_licence, tmp_path):
    from airflow_provider_ledgerlink.sandbox.faults import latency_fault

    sandbox = cloudpos_licence["sandbox"]
    emulator = sandbox.cloudpos
    # Slow answers, so the two tasks' requests interleave for several seconds.
    sandbox.faults.add(latency_fault(60, vendor="cloudpos"))
    connection = cloudpos_connection_definition(
        sandbox.cloudpos_url,
        licence=cloudpos_licence["licence"],
        token=cloudpos_licence["token"],
        daily_request_limit=cloudpos_licence["limit"],
        budget_block_size=3,
    )

    results = run_spenders(tmp_path, connection)

    sent = [result["sent"] for result in results]
    ended = [result["ended"] for result in results]
    if all(result["can_list"] for result in results):  # Airflow 3.3+: the budget's guarantee
        assert all(end == "budget" for end in ended), ended
        assert emulator.refusals.get(1003, 0) == 0, "CloudPOS had to refuse: the budget was crossed"
    else:
        # Without Variable listing (Airflow 3.0-3.2) the budget is one shared row updated by
        # read-modify-write (core/budget.py, "Limits"): concurrent reservations may be lost, so the
        # count can run low and CloudPOS may refuse. Its first refusal stops each task at once.
        assert all(end in ("budget", "vendor quota") for end in ended), ended
        assert emulator.refusals.get(1003, 0) == ended.count("vendor quota")
    assert sum(sent) <= cloudpos_licence["limit"]
    assert sum(sent) >= cloudpos_licence["limit"] - 2 * 3, sent  # at most a block each left unclaimed
    assert all(n > 0 for n in sent), f"the tasks did not overlap: {sent}"
    assert emulator.used_today(cloudpos_licence["licence"]) == sum(sent)
    for result in results:
        assert cloudpos_licence["token"] not in without_mask_requests(result["log"])


def test_two_tasks_with_a_wrong_token_make_one_login_attempt(cloudpos_licence, tmp_path):
    sandbox = cloudpos_licence["sandbox"]
    emulator = sandbox.cloudpos
    wrong = "0123456789abcdef0123456789abcdef"
    connection = cloudpos_connection_definition(
        sandbox.cloudpos_url, licence=cloudpos_licence["licence"], token=wrong
    )

    results = run_spenders(tmp_path, connection)

    # One machine: the guard's lock file lets one process try new credentials, with or without
    # Variable listing (Airflow 3.3+ also coordinates machines through it; core/login_guard.py).
    ended = sorted(result["ended"] for result in results)
    assert ended == ["AuthenticationError", "LoginRefusedError"]
    assert emulator.refusals.get(1002, 0) == 1
    assert emulator.bad_logins.get("127.0.0.1") == 1
    for result in results:
        assert wrong not in without_mask_requests(result["log"])


# --------------------------------------------------------------------------------------------------
# The deferrable sensor through dag.test()
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def weborder_dag_env(airflow_db: Path, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    licence = f"dagtest-{uuid.uuid4().hex[:8]}"
    token = sandbox_clean.cloudpos.add_licence(licence)
    # A large limit: with 500 a day the sensor would (rightly) pace its polls minutes apart.
    connection = cloudpos_connection_definition(
        sandbox_clean.cloudpos_url, licence=licence, token=token, daily_request_limit=1_000_000
    )
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDPOS_DEFAULT", json.dumps(connection))
    monkeypatch.setenv("LEDGERLINK_LAKE", (tmp_path / "lake").as_uri())
    return {
        "sandbox": sandbox_clean,
        "licence": licence,
        "token": token,
        "dags": tmp_path / "dags",
        "monkeypatch": monkeypatch,
    }


WEBORDER_DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_ledgerlink.operators.cloudpos import CloudPosCreateWeborderOperator
    from airflow_provider_ledgerlink.sensors.cloudpos import CloudPosWeborderConfirmedSensor

    with DAG("{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 11, 1), catchup=False) as dag:
        create = CloudPosCreateWeborderOperator(
            task_id="create_weborder",
            weborder={{"customerid": 3, "delivery": 1, "weborderdetail": [{{"productid": 1002, "quantity": 1}}]}},
        )
        wait = CloudPosWeborderConfirmedSensor(
            task_id="wait_for_confirmation",
            weborder_id="{weborder_id}",
            deferrable=True,
            poke_interval=1,
            timeout=120,
            retries=3,
        )
        create >> wait
    """
)


def load_dag(folder: Path, monkeypatch: pytest.MonkeyPatch, dag_id: str, weborder_id: str) -> Any:
    """Write the weborder DAG into ``folder``, make it the dags folder, and load it."""
    import airflow.settings

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    folder.mkdir(exist_ok=True)
    (folder / f"{dag_id}.py").write_text(WEBORDER_DAG.format(dag_id=dag_id, weborder_id=weborder_id))
    # dag.test() serialises the DAGs of the dags folder before it runs one.
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(folder))
    bag = DagBag(dag_folder=str(folder), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


def test_deferrable_sensor_waits_in_the_trigger_until_the_pos_confirms(weborder_dag_env, capfd, caplog):
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    emulator = weborder_dag_env["sandbox"].cloudpos
    # Confirmed on the third poll whatever the timing: the worker's poll and the trigger's first find
    # it not confirmed (2001).
    emulator.confirm_on_poll = 3
    dag = load_dag(
        weborder_dag_env["dags"],
        weborder_dag_env["monkeypatch"],
        f"cloudpos_deferrable_{uuid.uuid4().hex[:6]}",
        "{{ ti.xcom_pull(task_ids='create_weborder')['weborder_id'] }}",
    )

    with caplog.at_level(logging.DEBUG):
        dag_run = dag.test(logical_date=datetime(2026, 11, 19, tzinfo=timezone.utc))
    captured = capfd.readouterr()
    # Airflow logs through structlog to the terminal or, once logging is configured, to std logging.
    logs = captured.out + captured.err + caplog.text

    assert str(dag_run.state) == "success"
    assert "[DAG TEST] running trigger in line" in logs  # the wait really was deferred
    polls = [call for call in emulator.calls if call["function"] == "get-confirmedweborder"]
    assert len(polls) == 3  # one on the worker, two from the trigger
    with create_session() as session:
        tis = {
            ti.task_id: ti
            for ti in session.scalars(select(TaskInstance).where(TaskInstance.run_id == dag_run.run_id))
        }
        xcoms = [
            row.value for row in session.scalars(select(XComModel).where(XComModel.run_id == dag_run.run_id))
        ]
        rendered = [
            row.rendered_fields
            for row in session.scalars(
                select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.run_id == dag_run.run_id)
            )
        ]
        next_kwargs = [ti.next_kwargs for ti in tis.values()]
    assert tis["wait_for_confirmation"].state == "success"
    confirmation = next(x for x in xcoms if isinstance(x, dict) and x.get("state") == "confirmed")
    assert confirmation["weborder_id"] == next(x["weborder_id"] for x in xcoms if "created" in x)
    assert confirmation["confirmed_time"].endswith(("+01:00", "+02:00"))

    token = weborder_dag_env["token"]
    assert token not in without_mask_requests(logs)
    assert token not in json.dumps(xcoms, default=str)
    assert rendered, "no rendered template fields were stored"
    assert token not in json.dumps(rendered, default=str)
    assert token not in json.dumps(next_kwargs, default=str)


def test_sensor_fails_at_once_for_a_weborder_that_does_not_exist(weborder_dag_env):
    emulator = weborder_dag_env["sandbox"].cloudpos
    dag = load_dag(
        weborder_dag_env["dags"],
        weborder_dag_env["monkeypatch"],
        f"cloudpos_missing_{uuid.uuid4().hex[:6]}",
        "424242",
    )

    dag_run = dag.test(logical_date=datetime(2026, 11, 19, tzinfo=timezone.utc))

    assert str(dag_run.state) == "failed"
    polls = [call for call in emulator.calls if call["function"] == "get-confirmedweborder"]
    assert len(polls) == 1  # the sensor's task has retries=3, yet it was not retried and did not wait
