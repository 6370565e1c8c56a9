"""Real separate Airflow processes for the system tests: the environment of a small LocalExecutor
deployment on SQLite, its api-server, scheduler, dag-processor and triggerer as child processes, and
the few REST API calls the tests make.

A plain module (not a test file): each system test imports what it needs from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

VENV_BIN = Path(sys.executable).parent
API_USER = "ledgerlink"

STARTUP_TIMEOUT = 240
PARSE_TIMEOUT = 240
RUN_TIMEOUT = 420


# --------------------------------------------------------------------------------------------------
# Ports, polling, the Airflow processes
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

    def tails(self, dag_id: str, lines: int = 60) -> str:
        """The end of each process's output and of each task log of ``dag_id``, for a failure report."""
        out = []
        for name in self.processes:
            text = self.log_file(name).read_text(errors="replace").splitlines()
            out.append(f"===== airflow {name} (last {lines} lines) =====\n" + "\n".join(text[-lines:]))
        for task_log in sorted((self.home / "logs").glob(f"dag_id={dag_id}/**/*.log")):
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
        assert response.status_code in (200, 201), f"POST {path}: {response.status_code} {response.text}"
        return response.json()

    def patch(self, path: str, body: dict[str, Any], params: Any = None) -> Any:
        response = self.client.patch(f"/api/v2{path}", json=body, params=params)
        assert response.status_code == 200, f"PATCH {path}: {response.status_code} {response.text}"
        return response.json()

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------------------------------
# The deployment: its environment, starting it, waiting for a DAG and a run
# --------------------------------------------------------------------------------------------------
def prepare_home(home: Path, dag_file: Path) -> tuple[Path, Path, int, str]:
    """A deployment home with ``dag_file`` in its DAGs folder and an empty lake; returns the DAGs
    folder, the lake, a free port for the api-server and the API user's password."""
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(dag_file, dags / dag_file.name)
    lake = home / "lake"
    lake.mkdir()
    return dags, lake, free_port(), create_api_user(home)


def every_log(airflow: AirflowProcesses) -> dict[Path, str]:
    """The text of every log the deployment wrote (task and trigger logs, each process's output)."""
    paths = [path for path in (airflow.home / "logs").rglob("*") if path.is_file()]
    paths += [airflow.log_file(name) for name in airflow.processes]
    return {path.relative_to(airflow.home): path.read_text(errors="replace") for path in paths}


def create_api_user(home: Path) -> str:
    """Write the simple auth manager's password file for :data:`API_USER`; returns the password."""
    password = secrets.token_urlsafe(16)
    (home / "passwords.json").write_text(json.dumps({API_USER: password}))
    return password


def airflow_env(
    home: Path,
    dags: Path,
    api_port: int,
    connections: Mapping[str, str],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of every Airflow process of a deployment in ``home``.

    ``connections`` maps connection ids to their JSON form (``AIRFLOW_CONN_<ID>``); ``extra`` adds
    variables the DAGs read (``LEDGERLINK_LAKE``). Nothing ``AIRFLOW*`` or ``LEDGERLINK_*`` leaks in
    from the test's own environment.
    """
    api_url = f"http://127.0.0.1:{api_port}"
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
        }
    )
    env.update({f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in connections.items()})
    env.update(extra or {})
    return env


def start_deployment(airflow: AirflowProcesses, api: RestApi, api_port: int, api_password: str) -> None:
    """Migrate the database, start the four components, wait for the api-server and sign in."""
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


@contextlib.contextmanager
def deployment(
    home: Path, env: dict[str, str], api_port: int, api_password: str, dag_id: str
) -> Iterator[tuple[AirflowProcesses, RestApi]]:
    """Airflow's components running on ``home`` (see :func:`start_deployment`) and a signed-in API
    client. When the block fails the tails of the components' logs for ``dag_id`` are printed; the
    components are stopped in any case."""
    airflow = AirflowProcesses(home, env)
    api = RestApi(f"http://127.0.0.1:{api_port}")
    try:
        start_deployment(airflow, api, api_port, api_password)
        yield airflow, api
    except BaseException:
        print(airflow.tails(dag_id))
        raise
    finally:
        api.close()
        airflow.stop()


def wait_for_dag(airflow: AirflowProcesses, api: RestApi, dag_id: str) -> None:
    """Wait until the dag-processor has parsed ``dag_id``; fail at once on an import error."""

    def dag_parsed() -> bool:
        airflow.check_alive()
        errors = api.get("/importErrors")["import_errors"]
        assert not errors, f"the DAG file does not import: {errors}"
        return api.get(f"/dags/{dag_id}", expect=(200, 404)) is not None

    wait_for(f"the dag-processor to parse {dag_id}", dag_parsed, PARSE_TIMEOUT, interval=2)


def wait_for_run(
    airflow: AirflowProcesses,
    api: RestApi,
    dag_id: str,
    run_id: str,
    watch: Callable[[list[dict[str, Any]]], None] | None = None,
) -> str:
    """Wait until the run is ``success`` or ``failed``; fail at once when a task fails or is up for
    retry. ``watch`` sees the task instances at every poll. Returns the run's final state."""

    def run_finished() -> str | None:
        airflow.check_alive()
        instances = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        if watch is not None:
            watch(instances)
        stuck = {ti["task_id"]: ti["state"] for ti in instances if ti["state"] in ("failed", "up_for_retry")}
        assert not stuck, f"tasks did not succeed: {stuck}"
        state = api.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        return state if state in ("success", "failed") else None

    return wait_for(f"run {run_id} to finish", run_finished, RUN_TIMEOUT, interval=3)
