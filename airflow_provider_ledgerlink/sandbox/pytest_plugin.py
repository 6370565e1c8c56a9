"""pytest fixtures for testing your own DAGs against the sandbox.

Enable them in your ``conftest.py``::

    pytest_plugins = ["airflow_provider_ledgerlink.sandbox.pytest_plugin"]

    def test_my_dag(ledgerlink_connections, ledgerlink_sandbox):
        ledgerlink_sandbox.faults.add(...)          # optional: inject faults
        dag.test(logical_date=...)                  # the default connections point at the sandbox

``ledgerlink_sandbox`` is one sandbox for the whole test session (seed from the ``--ledgerlink-seed``
option, default 42); ``ledgerlink_connections`` sets every vendor's default connection
(``AIRFLOW_CONN_AFAS_DEFAULT`` …) to it for one test and gives the sandbox a clean slate (no faults,
no stats, no state left by an earlier test).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.connections import airflow_connection_env


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--ledgerlink-seed", type=int, default=42, help="seed of the LedgerLink sandbox data")


@pytest.fixture(scope="session")
def ledgerlink_sandbox(request: Any) -> Iterator[Sandbox]:
    with Sandbox(seed=request.config.getoption("--ledgerlink-seed")) as sandbox:
        yield sandbox


@pytest.fixture
def ledgerlink_connections(ledgerlink_sandbox: Sandbox, monkeypatch: Any) -> dict[str, str]:
    ledgerlink_sandbox.reset(state=True)
    env = airflow_connection_env(ledgerlink_sandbox)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
