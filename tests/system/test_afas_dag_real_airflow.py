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
import contextlib
import json
import os
import re
import runpy
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.system, pytest.mark.timeout(900)]  # over pyproject's 300 s default

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = REPO_ROOT / "example_dags" / "afas_finance_to_lake.py"
DAG_ID = "afas_finance_to_lake"
RUN_ID = "ledgerlink_system_test"
#: The sandbox generates AFAS data for the 60 days before 2026-11-20; this day is well inside.
LOGICAL_DATE = datetime(2026, 11, 10, tzinfo=timezone.utc)
EXPECTED_WINDOW = (LOGICAL_DATE - timedelta(days=1), LOGICAL_DATE)
SANDBOX_SEED = 42
VENV_BIN = Path(sys.executable).parent
API_USER = "ledgerlink"

STARTUP_TIMEOUT = 240
PARSE_TIMEOUT = 240
RUN_TIMEOUT = 420


# --------------------------------------------------------------------------------------------------
# Helpers: ports, polling, the Airflow processes
# --------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class AirflowProcesses:
    """The Airflow components as child processes, each in its own process group, logging to a file."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def log_file(self, name: str) -> Path:
        return self.home / f"{name}.out"

    def run(self, *args: str, timeout: float = 300) -> str:
        """Run an ``airflow`` CLI command to completion."""
        result = subprocess.run(
            [str(VENV_BIN / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} exited with {result.returncode}\n"
                f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def start(self, name: str, *args: str) -> None:
        with self.log_file(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [str(VENV_BIN / "airflow"), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"airflow {name} exited early with {process.returncode}")

    def stop(self, grace: float = 30) -> None:
        """SIGTERM every process group (and stray descendants), then SIGKILL what is left."""
        import psutil

        family: list[psutil.Process] = []
        for process in self.processes.values():
            try:
                parent = psutil.Process(process.pid)
                family += [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        for process in self.processes.values():
            self._signal_group(process.pid, signal.SIGTERM)
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.terminate()
        _, alive = psutil.wait_procs(family, timeout=grace)
        for process in self.processes.values():
            self._signal_group(process.pid, signal.SIGKILL)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(alive, timeout=10)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        # start_new_session made each child the leader of its own group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    def tails(self, lines: int = 60) -> str:
        out = []
        for name in self.processes:
            text = self.log_file(name).read_text(errors="replace").splitlines()
            out.append(f"===== airflow {name} (last {lines} lines) =====\n" + "\n".join(text[-lines:]))
        for task_log in sorted((self.home / "logs").glob(f"dag_id={DAG_ID}/**/*.log")):
            text = task_log.read_text(errors="replace").splitlines()
            out.append(f"===== {task_log.relative_to(self.home)} =====\n" + "\n".join(text[-25:]))
        return "\n".join(out)


class RestApi:
    """The few public REST API calls the test needs, signed in as a simple-auth-manager admin."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30)

    def healthy(self) -> bool:
        try:
            return self.client.get("/api/v2/monitor/health").status_code == 200
        except httpx.TransportError:
            return False

    def sign_in(self, username: str, password: str) -> None:
        response = self.client.post("/auth/token", json={"username": username, "password": password})
        assert response.status_code in (200, 201), response.text
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, expect: tuple[int, ...] = (200,)) -> Any:
        response = self.client.get(f"/api/v2{path}")
        assert response.status_code in expect, f"GET {path}: {response.status_code} {response.text}"
        return response.json() if response.status_code == 200 else None

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.client.post(f"/api/v2{path}", json=body)
        assert response.status_code == 200, f"POST {path}: {response.status_code} {response.text}"
        return response.json()

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def system_sandbox() -> Iterator[Any]:
    from airflow_provider_ledgerlink.sandbox import Sandbox

    with Sandbox(seed=SANDBOX_SEED, port=0) as sandbox:
        yield sandbox


@pytest.fixture
def deployment_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("airflow-system")
    yield home
    if os.environ.get("LEDGERLINK_KEEP_SYSTEM_TEST_HOME"):
        print(f"Airflow home kept at {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)


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
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    lake = home / "lake"
    lake.mkdir()
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    api_password = secrets.token_urlsafe(16)
    (home / "passwords.json").write_text(json.dumps({API_USER: api_password}))
    token_xml = sandbox_afas_token(SANDBOX_SEED)
    connection = json.dumps(
        {
            "conn_type": "ledgerlink_afas",
            "host": system_sandbox.afas_url,
            "password": token_xml,
            "extra": {"environment_id": "12345", "environment_type": "production"},
        }
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LEDGERLINK_"))}
    env.update(
        {
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            # Few workers on small machines, and log servers on free ports so parallel runs do not clash.
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__API_AUTH__JWT_SECRET": "ledgerlink-system-test-" + "0123456789abcdef" * 4,
            # Only the run the test triggers: no automatic run of the latest schedule on unpause.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW_CONN_AFAS_DEFAULT": connection,
            "LEDGERLINK_LAKE": lake.as_uri(),
        }
    )

    airflow = AirflowProcesses(home, env)
    api = RestApi(api_url)
    started = time.monotonic()
    try:
        airflow.run("db", "migrate")
        airflow.start("api-server", "api-server", "--port", str(api_port), "--host", "127.0.0.1")
        airflow.start("scheduler", "scheduler")
        airflow.start("dag-processor", "dag-processor")
        airflow.start("triggerer", "triggerer")

        def api_up() -> bool:
            airflow.check_alive()
            return api.healthy()

        wait_for("the api-server to answer its health check", api_up, STARTUP_TIMEOUT)
        api.sign_in(API_USER, api_password)

        def dag_parsed() -> bool:
            airflow.check_alive()
            errors = api.get("/importErrors")["import_errors"]
            assert not errors, f"the DAG file does not import: {errors}"
            return api.get(f"/dags/{DAG_ID}", expect=(200, 404)) is not None

        wait_for(f"the dag-processor to parse {DAG_ID}", dag_parsed, PARSE_TIMEOUT, interval=2)
        assert DAG_ID in airflow.run("dags", "list", "--output", "plain")
        airflow.run("dags", "unpause", DAG_ID)

        run = api.post(
            f"/dags/{DAG_ID}/dagRuns",
            {"dag_run_id": RUN_ID, "logical_date": LOGICAL_DATE.isoformat()},
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

        def run_finished() -> str | None:
            airflow.check_alive()
            instances = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances")["task_instances"]
            stuck = {
                ti["task_id"]: ti["state"] for ti in instances if ti["state"] in ("failed", "up_for_retry")
            }
            assert not stuck, f"tasks did not succeed: {stuck}"
            state = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}")["state"]
            return state if state in ("success", "failed") else None

        state = wait_for(f"run {RUN_ID} to finish", run_finished, RUN_TIMEOUT, interval=3)
        instances = api.get(f"/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances")["task_instances"]
        print(f"Airflow run finished ({state}) {time.monotonic() - started:.0f}s after start-up began")
    except BaseException:
        print(airflow.tails())
        raise
    finally:
        api.close()
        airflow.stop()

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
            manifests = sorted((lake / "afas" / connector).rglob("_manifest.json"))
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
    every_log = [path for path in (home / "logs").rglob("*") if path.is_file()]
    every_log += [airflow.log_file(name) for name in airflow.processes]
    forms = afas_token_forms(token_xml)
    for path in every_log:
        text = path.read_text(errors="replace")
        for form, secret in forms.items():
            assert secret not in text, f"the AFAS {form} appears in {path.relative_to(home)}"
        assert "Direct database access" not in text, path.relative_to(home)
        assert "airflow-db-not-allowed" not in text, path.relative_to(home)
