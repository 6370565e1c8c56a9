"""The pytest plugin users enable to test their own DAGs against the sandbox."""

from __future__ import annotations

pytest_plugins = ["pytester"]

PLUGIN_TEST = """
import json, os
import httpx

pytest_plugins = ["airflow_provider_ledgerlink.sandbox.pytest_plugin"]


def test_connection_points_at_the_sandbox(ledgerlink_connections, ledgerlink_sandbox):
    afas = json.loads(os.environ["AIRFLOW_CONN_AFAS_DEFAULT"])
    assert afas["host"] == ledgerlink_sandbox.url + "/afas"
    assert httpx.get(ledgerlink_sandbox.url + "/_sandbox/health").json()["status"] == "ok"


def test_the_hook_reads_sandbox_data(ledgerlink_connections):
    from airflow_provider_ledgerlink.hooks.afas import AfasHook

    ok, message = AfasHook().test_connection()
    assert ok, message
"""


def test_plugin_fixtures_give_a_working_sandbox_connection(pytester):
    pytester.makepyfile(PLUGIN_TEST)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
