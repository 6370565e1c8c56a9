"""TokenRotationOperator against the sandbox: each vendor's strategy, verification before replacement,
dry runs, concurrent rotations, and no secret in the result or the log.

The credential store is a :class:`VariableCredentialStore` over in-memory state (the same code as
in a deployment, minus Airflow's Variable table); the DAG and system tests use real Variables.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.core.credentials import (
    VariableCredentialStore,
    connection_fingerprint,
)
from airflow_provider_ledgerlink.core.errors import AuthenticationError, ConfigurationError
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook
from airflow_provider_ledgerlink.hooks.cash import CashHook
from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosHook
from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook
from airflow_provider_ledgerlink.operators.token_rotation import TokenRotationOperator
from airflow_provider_ledgerlink.sandbox.faults import status_fault


@pytest.fixture
def store() -> VariableCredentialStore:
    return VariableCredentialStore(MemoryState())


def rotate(conn_id: str, store: VariableCredentialStore, **kwargs: Any) -> dict[str, Any]:
    operator = TokenRotationOperator(
        task_id=f"rotate_{conn_id}", conn_id=conn_id, credential_store=store, **kwargs
    )
    return operator.execute({})


def stage(store: VariableCredentialStore, conn_id: str, value: str) -> None:
    store.state.set(store.staged_key(conn_id), value)


def assert_no_secret(result: dict[str, Any], text: str, *secrets: str) -> None:
    dumped = json.dumps(result)
    for secret in secrets:
        assert secret not in dumped
        assert secret not in text


def alive_sessions(sandbox: Any) -> set[str]:
    return {token for token, session in sandbox.tripletex._sessions.items() if not session.revoked}


# -- Tripletex --------------------------------------------------------------------------------------
def test_tripletex_rotation_stores_a_verified_session_and_deletes_the_previous(
    tripletex_connection, sandbox_clean, store, caplog
):
    caplog.set_level(logging.DEBUG)
    first = rotate(tripletex_connection, store, session_days=3)
    old = store.load(tripletex_connection)["session_token"]

    second = rotate(tripletex_connection, store)
    new = store.load(tripletex_connection)["session_token"]

    assert first["status"] == second["status"] == "rotated"
    assert second["strategy"] == "session rotation" and second["expires_at"]
    assert new != old
    assert new in alive_sessions(sandbox_clean) and old not in alive_sessions(sandbox_clean)
    assert_no_secret(second, caplog.text, new, old)


def test_the_next_task_picks_up_the_rotated_session(tripletex_connection, sandbox_clean, store):
    rotate(tripletex_connection, store)
    stored = store.load(tripletex_connection)["session_token"]

    hook = TripletexHook(tripletex_connection, credential_store=store)
    hook.whoami()

    assert hook.sessions_created == 0
    assert hook.session().token == stored


def test_a_session_that_fails_verification_changes_nothing(tripletex_connection, sandbox_clean, store):
    rotate(tripletex_connection, store)
    before = store.load(tripletex_connection)
    sandbox_clean.faults.add(status_fault(401, vendor="tripletex", path="whoami", times=1))

    with pytest.raises(AuthenticationError, match="nothing was changed"):
        rotate(tripletex_connection, store)

    assert store.load(tripletex_connection) == before
    assert before["session_token"] in alive_sessions(sandbox_clean)
    assert len(alive_sessions(sandbox_clean)) == 1  # the unverified session was deleted again


def test_a_dry_run_verifies_a_new_session_and_keeps_the_old(tripletex_connection, sandbox_clean, store):
    rotate(tripletex_connection, store)
    before = store.load(tripletex_connection)

    result = rotate(tripletex_connection, store, dry_run="true")

    assert result["status"] == "verified (dry run)" and result["dry_run"] is True
    assert store.load(tripletex_connection) == before
    assert alive_sessions(sandbox_clean) == {before["session_token"]}


def test_two_rotations_at_once_leave_one_working_session_in_the_store(
    tripletex_connection, sandbox_clean, store
):
    rotate(tripletex_connection, store)
    original = store.load(tripletex_connection)["session_token"]
    results: list[dict[str, Any]] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        results.append(rotate(tripletex_connection, store))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stored = store.load(tripletex_connection)
    assert sorted(r["status"] for r in results) in (["rotated", "rotated"], ["rotated", "superseded"])
    assert set(stored) >= {"session_token", "expires_at", "session_owner", "updated_at"}
    assert stored["session_token"] in alive_sessions(sandbox_clean)
    assert original not in alive_sessions(sandbox_clean)
    assert TripletexHook(tripletex_connection, credential_store=store).whoami()["employeeId"]


# -- staged promotion: Alasco, CASH, CloudPOS -------------------------------------------------------
def test_alasco_promotes_a_verified_staged_token_and_clears_the_slot(
    alasco_connection, sandbox_clean, store, caplog
):
    caplog.set_level(logging.DEBUG)
    _, new_token = sandbox_clean.alasco.mint_credentials(replace=True)  # the old token stops working
    stage(store, alasco_connection, new_token + "\n")

    result = rotate(alasco_connection, store)

    assert result["status"] == "promoted" and result["strategy"] == "staged promotion"
    assert store.state.get(store.staged_key(alasco_connection)) is None
    assert store.load(alasco_connection)["password"] == new_token
    assert "properties" in AlascoHook(alasco_connection, credential_store=store).check_connection()
    assert_no_secret(result, caplog.text, new_token)


def test_a_staged_credential_that_does_not_work_is_not_promoted(alasco_connection, sandbox_clean, store):
    stage(store, alasco_connection, "x" * 64)

    with pytest.raises(AuthenticationError, match="nothing was changed") as raised:
        rotate(alasco_connection, store)

    assert "ledgerlink_staged_password_alasco_default" in str(raised.value)
    assert store.load(alasco_connection) == {}
    assert store.state.get(store.staged_key(alasco_connection)) == "x" * 64
    assert AlascoHook(alasco_connection, credential_store=store).test_connection()[0]


def test_an_alasco_hook_whose_token_is_refused_adopts_the_staged_token(
    alasco_connection, sandbox_clean, store
):
    hook = AlascoHook(alasco_connection, credential_store=store)
    assert hook.test_connection()[0]
    _, new_token = sandbox_clean.alasco.mint_credentials(replace=True)
    stage(store, alasco_connection, new_token)

    rows = list(hook.get_all("projects"))

    assert rows
    assert store.load(alasco_connection)["password"] == new_token
    assert store.state.get(store.staged_key(alasco_connection)) is None


def test_an_alasco_hook_without_a_staged_token_fails_as_before(alasco_connection, sandbox_clean, store):
    hook = AlascoHook(alasco_connection, credential_store=store)
    sandbox_clean.alasco.mint_credentials(replace=True)

    with pytest.raises(AuthenticationError):
        list(hook.get_all("projects"))


def test_cash_promotes_a_new_api_password(cash_connection, sandbox_clean, store):
    new_password = sandbox_clean.cash.new_password()
    assert not CashHook(cash_connection, credential_store=store).test_connection()[0]
    stage(store, cash_connection, json.dumps({"password": new_password}))

    result = rotate(cash_connection, store)

    assert result["status"] == "promoted"
    assert CashHook(cash_connection, credential_store=store).test_connection()[0]


def test_cloudpos_verification_spends_one_request_of_the_daily_budget(
    cloudpos_connection, sandbox_clean, store
):
    from airflow_provider_ledgerlink.core.shared_state import MemoryState as State

    state = State()
    licence = json.loads(__import__("os").environ["AIRFLOW_CONN_CLOUDPOS_DEFAULT"])["login"]
    new_token = sandbox_clean.cloudpos.new_token(licence)
    stage(store, cloudpos_connection, new_token)
    used_before = sandbox_clean.cloudpos.used_today(licence)

    hook = CloudPosHook(cloudpos_connection, credential_store=store, state=state)
    from airflow_provider_ledgerlink.core.rotation import promote_staged

    result = promote_staged(hook)

    assert result.status == "promoted"
    assert sandbox_clean.cloudpos.used_today(licence) == used_before + 1
    assert any(key.startswith("ledgerlink_budget") for key in state.snapshot())
    assert CloudPosHook(cloudpos_connection, credential_store=store, state=state).test_connection()[0]


def test_a_wrong_staged_cloudpos_token_counts_as_one_bad_login(
    cloudpos_connection, sandbox_clean, store, airflow_db
):
    stage(store, cloudpos_connection, "0" * 32)

    with pytest.raises(AuthenticationError, match="nothing was changed"):
        rotate(cloudpos_connection, store)

    assert sum(sandbox_clean.cloudpos.bad_logins.values()) == 1
    assert store.load(cloudpos_connection) == {}


def test_nothing_staged_skips_the_task_or_fails_when_asked(alasco_connection, store):
    from airflow_provider_ledgerlink.core.compat import AirflowSkipException

    with pytest.raises(AirflowSkipException):
        rotate(alasco_connection, store)
    with pytest.raises(ConfigurationError, match="nothing is staged"):
        rotate(alasco_connection, store, skip_when_nothing_staged=False)


def test_an_edited_connection_wins_over_an_older_replacement(
    alasco_connection, sandbox_clean, store, monkeypatch
):
    hook = AlascoHook(alasco_connection, credential_store=store)
    store.replace(alasco_connection, hook.raw_connection, {"password": "y" * 64})
    assert AlascoHook(alasco_connection, credential_store=store).connection.password == "y" * 64

    definition = json.loads(__import__("os").environ["AIRFLOW_CONN_ALASCO_DEFAULT"])
    definition["password"] = sandbox_clean.alasco.api_token + "z"
    monkeypatch.setenv("AIRFLOW_CONN_ALASCO_DEFAULT", json.dumps(definition))
    edited = AlascoHook(alasco_connection, credential_store=store)

    assert edited.connection.password == definition["password"]
    assert store.load(alasco_connection)["based_on"] != connection_fingerprint(edited.raw_connection)


# -- AFAS -----------------------------------------------------------------------------------------
@pytest.fixture
def afas_otp_connection(afas_connection, sandbox_clean, monkeypatch) -> str:
    import os

    credentials = httpx.get(f"{sandbox_clean.url}/_sandbox/afas/credentials").json()
    definition = json.loads(os.environ["AIRFLOW_CONN_AFAS_DEFAULT"])
    definition["extra"].update(
        otp_user_id="12345.finance",
        otp_api_key=credentials["api_key"],
        otp_environment_token=credentials["environment_key"],
    )
    monkeypatch.setenv("AIRFLOW_CONN_AFAS_DEFAULT", json.dumps(definition))
    return afas_connection


def read_mailbox(sandbox: Any):
    def otp_source(user_id: str, context: Any) -> str:
        return httpx.get(f"{sandbox.url}/_sandbox/afas/otp", params={"user": user_id}).json()["otp"]

    return otp_source


def test_afas_renews_its_token_with_a_one_time_password(afas_otp_connection, sandbox_clean, store, caplog):
    from airflow_provider_ledgerlink.hooks.afas import AfasHook

    caplog.set_level(logging.DEBUG)
    result = rotate(afas_otp_connection, store, otp_source=read_mailbox(sandbox_clean))

    new_token = store.load(afas_otp_connection)["password"]
    assert result["status"] == "renewed" and result["strategy"] == "one-time password"
    assert (
        new_token.startswith("<token>") and new_token != AfasHook(afas_otp_connection).raw_connection.password
    )
    hook = AfasHook(afas_otp_connection, credential_store=store)
    assert hook.token_xml == new_token
    assert "App connector" in hook.check_connection()
    assert_no_secret(result, caplog.text, new_token)


def test_a_wrong_one_time_password_changes_nothing(afas_otp_connection, sandbox_clean, store):
    from airflow_provider_ledgerlink.core.errors import LedgerLinkError

    with pytest.raises(LedgerLinkError):
        rotate(afas_otp_connection, store, otp_source=lambda user, context: "00000000")

    assert store.load(afas_otp_connection) == {}


def test_an_afas_dry_run_requests_no_code(afas_otp_connection, sandbox_clean, store):
    result = rotate(afas_otp_connection, store, dry_run=True, otp_source=read_mailbox(sandbox_clean))

    assert result["dry_run"] is True and "no code requested" in result["status"]
    assert (
        httpx.get(f"{sandbox_clean.url}/_sandbox/afas/otp", params={"user": "12345.finance"}).status_code
        == 404
    )


def test_a_session_rotation_without_a_store_says_what_to_set(tripletex_connection, sandbox_clean):
    from airflow_provider_ledgerlink.core.credentials import NoCredentialStore

    with pytest.raises(ConfigurationError, match="credential_store"):
        rotate(tripletex_connection, NoCredentialStore())  # type: ignore[arg-type]

    assert alive_sessions(sandbox_clean) == set()  # nothing was created
