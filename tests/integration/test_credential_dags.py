"""The two credential DAGs through ``dag.test()`` against the sandbox, with real Airflow Variables as
the credential store: promotions of credentials an administrator staged, a staged credential that
does not work, dry runs, and the health report's warnings. Nothing secret reaches the reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_example_dags import EXAMPLE_DAGS, LOGICAL_DATE, load_dag_file, task_states

from airflow_provider_ledgerlink.core.credentials import VariableCredentialStore
from airflow_provider_ledgerlink.sandbox.connections import airflow_connection_env, sandbox_connections

pytestmark = pytest.mark.timeout(900)

ROTATION = "ledgerlink_token_rotation"
HEALTH = "ledgerlink_credential_health"
PROMOTED = ("alasco_default", "cash_default", "cloudpos_default")


def clear_credential_variables() -> None:
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        for variable in session.query(Variable).filter(Variable.key.like("ledgerlink_%")).all():
            session.delete(variable)


@pytest.fixture
def env(
    airflow_db: Path, sandbox_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    for name, value in airflow_connection_env(sandbox_clean).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LEDGERLINK_LAKE", (tmp_path / "lake").as_uri())
    clear_credential_variables()
    yield sandbox_clean
    clear_credential_variables()


def run(dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, str]:
    bag = load_dag_file(EXAMPLE_DAGS / f"{dag_id}.py")
    assert not bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    dag_run = dag.test(logical_date=LOGICAL_DATE, run_conf=conf)
    return task_states(dag_id, dag_run.run_id)


def report(tmp_path: Path, name: str) -> tuple[dict[str, Any], str]:
    (path,) = (tmp_path / "lake" / "_reports").glob(f"{name}_*.json")
    text = path.read_text()
    return json.loads(text), text


def stage_new_credentials(sandbox: Any) -> dict[str, str]:
    """What an administrator does at each vendor, then in Airflow: a new credential, staged."""
    store = VariableCredentialStore()
    new = {
        "alasco_default": sandbox.alasco.mint_credentials(replace=True)[1],  # the old token stops working
        "cash_default": sandbox.cash.new_password(),
        "cloudpos_default": sandbox.cloudpos.new_token(),
    }
    for conn_id, secret in new.items():
        store.state.set(store.staged_key(conn_id), secret)
    return new


def test_the_rotation_dag_promotes_what_administrators_staged(env, tmp_path):
    new = stage_new_credentials(env)
    store = VariableCredentialStore()
    sessions_before = set(env.tripletex._sessions)

    states = run(ROTATION)

    assert states["rotate_tripletex_session"] == "success" and states["check_tripletex"] == "success"
    assert {states[f"promote_{conn_id.split('_')[0]}"] for conn_id in PROMOTED} == {"success"}
    assert states["renew_afas_token"] == "skipped"  # on demand only
    for conn_id, secret in new.items():
        assert store.load(conn_id)["password"] == secret
        assert store.state.get(store.staged_key(conn_id)) is None
    # The check after the rotation used the stored session rather than creating its own.
    assert len(set(env.tripletex._sessions) - sessions_before) == 1
    summary, text = report(tmp_path, "token_rotation")
    assert summary["promote_alasco"]["status"] == "promoted"
    assert summary["rotate_tripletex_session"]["status"] == "rotated"
    session = store.load("tripletex_default")["session_token"]
    for secret in (*new.values(), session):
        assert secret not in text


def test_a_staged_credential_that_fails_verification_leaves_the_old_one(env, tmp_path):
    store = VariableCredentialStore()
    store.state.set(store.staged_key("cash_default"), "not-the-password")

    states = run(ROTATION)

    assert states["promote_cash"] == "failed"
    assert states["promote_alasco"] == states["promote_cloudpos"] == "skipped"
    assert "password" not in store.load("cash_default")
    assert store.state.get(store.staged_key("cash_default")) == "not-the-password"


def test_a_dry_run_changes_nothing(env, tmp_path):
    new = stage_new_credentials(env)
    store = VariableCredentialStore()

    states = run(ROTATION, {"dry_run": True})

    assert states["promote_alasco"] == "success"
    for conn_id, secret in new.items():
        assert "password" not in store.load(conn_id)
        assert store.state.get(store.staged_key(conn_id)) == secret
    summary, _ = report(tmp_path, "token_rotation")
    assert summary["promote_cash"]["status"] == "verified (dry run)"
    assert summary["rotate_tripletex_session"]["status"] == "verified (dry run)"


def test_the_health_dag_reports_every_connection_and_warns_before_expiry(env, tmp_path, monkeypatch):
    definition = sandbox_connections(env.url, env.seed)["tripletex_default"]
    definition["extra"]["employee_token_expires_on"] = (date.today() + timedelta(days=5)).isoformat()
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEFAULT", json.dumps(definition))
    store = VariableCredentialStore()
    store.state.set(store.staged_key("alasco_default"), "x" * 64)
    # A task has used Tripletex: its session is in the credential store (the check's own Test
    # session is deleted again and never reported).
    from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook

    tripletex = TripletexHook("tripletex_default")
    session_end = tripletex.session().expires_at
    tripletex.close()

    states = run(HEALTH)

    assert set(states.values()) == {"success"}
    summary, text = report(tmp_path, "credential_health")
    assert set(summary) == {
        "afas_default",
        "tripletex_default",
        "alasco_default",
        "cash_default",
        "cloudpos_default",
    }
    assert all(item["ok"] for item in summary.values())
    assert any("employee token ends in" in w for w in summary["tripletex_default"]["warnings"])
    assert summary["tripletex_default"]["expiries"]["session token"] == session_end.isoformat()
    assert any("staged" in w for w in summary["alasco_default"]["warnings"])
    assert "x" * 64 not in text
