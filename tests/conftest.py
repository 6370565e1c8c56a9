"""Shared test setup: a throw-away Airflow home, the sandbox, and the ``afas_default`` connection.

The environment is set at import time, before any test module imports Airflow: Airflow reads
``AIRFLOW_HOME`` and its settings once, when ``airflow`` is first imported. Set
``LEDGERLINK_TEST_AIRFLOW_HOME`` to keep the home (database, logs) for a look after the run.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
VENV_BIN = Path(sys.executable).parent

if "airflow.configuration" in sys.modules:
    raise RuntimeError("Airflow was imported before tests/conftest.py could give it a test AIRFLOW_HOME")

if os.environ.get("LEDGERLINK_TEST_AIRFLOW_HOME"):
    AIRFLOW_HOME = Path(os.environ["LEDGERLINK_TEST_AIRFLOW_HOME"]).resolve()
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
else:
    AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ledgerlink-airflow-"))
    atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
# A fixed key, so tokens minted in one process validate in another and no warning is logged.
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "ledgerlink-tests-only-" + "0123456789abcdef" * 4)

SANDBOX_SEED = 42
STATE_ROOT = AIRFLOW_HOME / "ledgerlink-state"
"""Machine-wide LedgerLink state (shared rate limits, session files): one directory per test below."""
AFAS_ENVIRONMENT_ID = "12345"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("timeout"):  # pytest-timeout is a dev extra, not required
        config.addinivalue_line("markers", "timeout(seconds): time limit of a test, with pytest-timeout")
    if not config.pluginmanager.hasplugin("xdist"):  # pytest-xdist is a dev extra, not required
        config.addinivalue_line("markers", "xdist_group(name): tests that run on one pytest-xdist worker")


# Tests that start real Airflow deployments (api-server, scheduler, triggerer) or a browser.
_AIRFLOW_PROCESS_SUITES = ("tests/system/", "tests/browser/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For ``make test`` (pytest-xdist, ``--dist loadgroup``): each test file stays on one worker, so
    its fixtures are set up once, and every suite of real Airflow processes runs on the same worker,
    one after another: two Airflow deployments at once would starve a two-core machine."""
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = "airflow-processes" if path.startswith(_AIRFLOW_PROCESS_SUITES) else path
        item.add_marker(pytest.mark.xdist_group(group))


def airflow_env(**overrides: str) -> dict[str, str]:
    """The environment for an ``airflow`` subprocess: this process's, with the venv's bin first."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def run_airflow(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Run the ``airflow`` CLI of this venv; fail with its output when it exits non-zero."""
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        env=env or airflow_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"airflow {' '.join(args)} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
    return result.stdout


@pytest.fixture(autouse=True)
def isolated_state_dir(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own machine state directory (created on first use), so no test sees a
    rate-limit state or session another test left."""
    monkeypatch.setenv("LEDGERLINK_STATE_DIR", str(STATE_ROOT / f"{os.getpid()}-{id(request.node):x}"))


@pytest.fixture
def forget_new_secrets() -> Iterator[None]:
    """Forget the secrets a test registered (its session tokens …), keeping those known before it.

    A task registers a few; one test process would collect hundreds, and the scrub pattern is
    rebuilt over all of them at every new one (seconds per rebuild by then). Use it in modules whose
    hooks are made per test: a hook registers its credentials again when it reads them.
    """
    from airflow_provider_ledgerlink.core import redaction

    before = set(redaction._secrets)
    yield
    with redaction._lock:
        redaction._secrets.intersection_update(before)
        redaction._pattern = None


@pytest.fixture(scope="session")
def airflow_cli() -> Callable[..., str]:
    """``airflow_cli("providers", "list")``: run this venv's ``airflow`` with the test environment."""
    return run_airflow


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated metadata database (sqlite in the test ``AIRFLOW_HOME``), created once."""
    run_airflow("db", "migrate")
    return AIRFLOW_HOME


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    """All vendor emulators on a free localhost port, for the whole session."""
    from airflow_provider_ledgerlink.sandbox import Sandbox

    with Sandbox(seed=SANDBOX_SEED, port=0) as running:
        yield running


@pytest.fixture
def sandbox_clean(sandbox: object) -> object:
    """The session sandbox with no faults, zeroed stats and no state left by an earlier test."""
    sandbox.reset(state=True)  # type: ignore[attr-defined]
    forget_write_records()
    return sandbox


def forget_write_records() -> None:
    """Delete the records of writes sent (``WriteOnce``, Airflow Variables ``ledgerlink_once_*``).

    They name objects of the sandbox state a reset just dropped; kept, they would make a later test's
    first write look like a rerun. Nothing to do before the metadata database has its tables.
    """
    import sqlite3

    database = AIRFLOW_HOME / "airflow.db"
    if not database.exists():
        return
    with contextlib.closing(sqlite3.connect(database)) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='variable'").fetchone():
            return
    from airflow_provider_ledgerlink.core.once import PREFIX
    from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState

    state = AirflowVariableState()
    for key in state.keys(PREFIX):
        state.delete(key)


def afas_token(seed: int = SANDBOX_SEED) -> str:
    """The token XML the AFAS emulator accepts."""
    from airflow_provider_ledgerlink.sandbox.afas import sandbox_afas_token

    return sandbox_afas_token(seed)


def afas_connection_json(afas_url: str, token: str | None = None) -> str:
    """``AIRFLOW_CONN_AFAS_DEFAULT`` for the AFAS emulator at ``afas_url``."""
    return json.dumps(
        {
            "conn_type": "ledgerlink_afas",
            "host": afas_url,
            "password": token or afas_token(),
            "extra": {"environment_id": AFAS_ENVIRONMENT_ID, "environment_type": "production"},
        }
    )


@pytest.fixture
def afas_connection(sandbox_clean: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection ``afas_default`` pointing at the sandbox with its valid token; returns the id."""
    monkeypatch.setenv("AIRFLOW_CONN_AFAS_DEFAULT", afas_connection_json(sandbox_clean.afas_url))  # type: ignore[attr-defined]
    return "afas_default"


@pytest.fixture
def alasco_connection(sandbox_clean: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection ``alasco_default`` to the Alasco emulator with its valid key and token; returns the id."""
    from airflow_provider_ledgerlink.sandbox.alasco import alasco_connection_definition

    definition = alasco_connection_definition(sandbox_clean.alasco_url, SANDBOX_SEED)  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW_CONN_ALASCO_DEFAULT", json.dumps(definition))
    return "alasco_default"


@pytest.fixture
def cloudpos_connection(sandbox_clean: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection ``cloudpos_default`` to the CloudPOS emulator with a licence of its own, so each
    test starts with a full daily budget and a clean login guard; returns the id."""
    import uuid

    from airflow_provider_ledgerlink.sandbox.cloudpos import cloudpos_connection_definition

    licence = f"test-{uuid.uuid4().hex[:10]}"
    token = sandbox_clean.cloudpos.add_licence(licence)  # type: ignore[attr-defined]
    definition = cloudpos_connection_definition(sandbox_clean.cloudpos_url, licence=licence, token=token)  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDPOS_DEFAULT", json.dumps(definition))
    return "cloudpos_default"


@pytest.fixture
def cash_recording() -> Callable[..., Path]:
    """``cash_recording("errors", "cash-errors.xml")``: the path of a recorded CASH response (they
    ship with the sandbox, under ``sandbox/specs/cash``)."""
    from airflow_provider_ledgerlink.sandbox.vendor_specs import spec_path

    return lambda *parts: spec_path("cash", *parts)


@pytest.fixture
def cash_connection(sandbox_clean: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Connection ``cash_default`` to the CASH emulator (administration DEMO, kept offline in CASHWin),
    with a CASHWin that looks for work every 0.2 s instead of 30 s; returns the id."""
    from airflow_provider_ledgerlink.core.request_window import reset_shared_request_windows
    from airflow_provider_ledgerlink.sandbox.cash import cash_connection_definition

    emulator = sandbox_clean.cash  # type: ignore[attr-defined]
    definition = cash_connection_definition(sandbox_clean.cash_url)  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW_CONN_CASH_DEFAULT", json.dumps(definition))
    reset_shared_request_windows()
    emulator.cashwin.interval = 0.2
    emulator.cashwin.running = True
    try:
        yield "cash_default"
    finally:
        emulator.cashwin.interval = 30.0
        emulator.cashwin.running = True
        emulator.offers_transaction_status = False
        reset_shared_request_windows()


@pytest.fixture
def tripletex_connection(sandbox_clean: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection ``tripletex_default`` to the Tripletex emulator with its valid tokens and no
    credential store (each test starts without a stored session); returns the id."""
    from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition

    definition = tripletex_connection_definition(sandbox_clean.tripletex_url, credential_store="none")  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEFAULT", json.dumps(definition))
    return "tripletex_default"
