"""TripletexHook against the Tripletex emulator, over real localhost HTTP.

What is proved here: sessions are created once, shared through the credential store, dated safely
in Oslo and renewed when they end mid-run (the output stays complete and exact); reads page lazily
and in parallel, stop on the short page, split windows Tripletex finds too large, and stay inside
the rate limit and its reserve; faults on reads change nothing in the output; writes never create
anything twice, not even when the answer to a write is lost; secrets never reach logs or errors.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.core.credentials import CredentialStore
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    ValidationError,
)
from airflow_provider_ledgerlink.core.http import RetryPolicy, Timeouts
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.hooks.tripletex import (
    STORE_EXPIRES_AT,
    STORE_SESSION_OWNER,
    STORE_SESSION_TOKEN,
    TripletexHook,
    TripletexVersionConflictError,
    last_change,
)
from airflow_provider_ledgerlink.sandbox.faults import (
    latency_fault,
    reset_fault,
    status_fault,
    truncate_fault,
)
from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition

pytestmark = pytest.mark.usefixtures("forget_new_secrets")

UTC = timezone.utc
HISTORY = (date(2026, 9, 21), date(2026, 11, 20))
DAY = (date(2026, 11, 19), date(2026, 11, 20))
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)


class MemoryStore(CredentialStore):
    """A credential store in memory, standing in for Airflow Variables."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        self.saves = 0

    def load(self, conn_id: str) -> dict[str, Any]:
        return dict(self.values.get(conn_id, {}))

    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        self.saves += 1
        merged = {**self.values.get(conn_id, {}), **values}
        self.values[conn_id] = {k: v for k, v in merged.items() if v is not None}


WRITES: list[MemoryState] = [MemoryState()]
"""Where this test's hooks keep their write records (Airflow Variables in a deployment)."""


@pytest.fixture(autouse=True)
def fresh_write_records() -> None:
    WRITES[0] = MemoryState()


def make_hook(store: CredentialStore | None = None, **kwargs: Any) -> TripletexHook:
    kwargs.setdefault("recheck_delay", 0)
    kwargs.setdefault("state", WRITES[0])
    kwargs.setdefault("write_wait", 0.2)
    kwargs.setdefault("retry", FAST_RETRY)
    hook = TripletexHook(**kwargs)
    if store is not None:
        hook.__dict__["credential_store"] = store
    return hook


@pytest.fixture
def emulator(sandbox_clean: Any) -> Any:
    return sandbox_clean.tripletex


@pytest.fixture
def hook(tripletex_connection: str) -> Iterator[TripletexHook]:
    made = make_hook()
    yield made
    made.close()


def use_connection(monkeypatch: pytest.MonkeyPatch, sandbox: Any, **changes: Any) -> None:
    definition = tripletex_connection_definition(sandbox.tripletex_url, credential_store="none")
    extra = {**definition.pop("extra"), **changes.pop("extra", {})}
    definition.update(changes)
    definition["extra"] = {k: v for k, v in extra.items() if v is not None}
    monkeypatch.setenv("AIRFLOW_CONN_TRIPLETEX_DEFAULT", json.dumps(definition))


def reference(
    sandbox: Any, path: str = "/ledger/posting", window: tuple[date, date] = HISTORY
) -> list[dict[str, Any]]:
    """What a plain, fault-free, one-request-at-a-time read returns."""
    plain = make_hook(page_size=1000, max_in_flight=1)
    try:
        return list(plain.get_all(path, window=window, sorting="id"))
    finally:
        plain.close()


def requests_to(sandbox: Any, path: str) -> dict[str, int]:
    return sandbox.stats["tripletex"]["by_path"].get(f"GET /v2{path}", {})


# ------------------------------------------------------------------------------------------------
# The connection
# ------------------------------------------------------------------------------------------------
def test_test_connection_names_the_employee_and_the_company(hook: TripletexHook) -> None:
    ok, message = hook.test_connection()

    assert ok, message
    assert message == (
        "Connected to Tripletex (production) as Ola Integrasjon (employee 18301) of "
        "LedgerLink Sandkasse AS (company 9100001)"
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        # Named as the connection form labels them.
        ({"extra": {"consumer_token": None}}, "correct: Consumer token"),
        ({"password": ""}, "correct: Employee token"),
        ({"extra": {"environment": "staging"}}, "correct: Environment"),
        ({"extra": {"company_id": "acme"}}, "correct: Client company id"),
        ({"extra": {"rate_limit_reserve": "-3"}}, "correct: Rate-limit reserve"),
        ({"extra": {"credential_store": "no.such.Store"}}, "correct: Credential store"),
    ],
)
def test_a_malformed_connection_names_the_field_to_fix(
    sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch, changes: dict[str, Any], field: str
) -> None:
    use_connection(monkeypatch, sandbox_clean, **changes)
    hook = TripletexHook()

    with pytest.raises(ConfigurationError) as caught:
        hook.whoami() if "Credential store" not in field else hook.credential_store

    assert field in str(caught.value)
    assert "tripletex_default" in str(caught.value)


def test_the_environment_chooses_the_host_and_a_host_override_gets_v2(
    sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, sandbox_clean, host="", extra={"environment": "test"})
    assert TripletexHook().base_url == "https://api-test.tripletex.tech/v2"
    use_connection(monkeypatch, sandbox_clean, host="")
    assert TripletexHook().base_url == "https://tripletex.no/v2"
    use_connection(monkeypatch, sandbox_clean, host="proxy.example/tripletex/")
    assert TripletexHook().base_url == "https://proxy.example/tripletex/v2"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"consumer_token": "eyJ3cm9uZyI6dHJ1ZX0="}, "rejected the consumer token (Consumer token)"),
        ({}, "rejected the employee token (the connection's password)"),
    ],
)
def test_a_rejected_token_is_named_and_never_echoed(
    sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], expected: str
) -> None:
    changes: dict[str, Any] = {"extra": extra} if extra else {"password": "eyJ3cm9uZ2VtcGxveWVlIjoxfQ=="}
    use_connection(monkeypatch, sandbox_clean, **changes)
    hook = make_hook()

    ok, message = hook.test_connection()

    assert not ok
    assert expected in message
    assert "vendor reference:" in message
    assert "eyJ3cm9uZyI6dHJ1ZX0=" not in message
    assert "eyJ3cm9uZ2VtcGxveWVlIjoxfQ==" not in message
    assert sandbox_clean.tripletex.counters.sessions_created == 0


# ------------------------------------------------------------------------------------------------
# Sessions
# ------------------------------------------------------------------------------------------------
def test_one_session_serves_a_whole_run(hook: TripletexHook, emulator: Any) -> None:
    list(hook.get_all("/ledger/posting", window=HISTORY, page_size=200))
    hook.whoami()

    assert hook.sessions_created == 1
    assert emulator.counters.sessions_created == 1


def test_the_expiration_date_is_computed_in_oslo(tripletex_connection: str, emulator: Any) -> None:
    late_utc = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)  # already the 20th in Oslo
    emulator.session_now = late_utc
    hook = make_hook(clock=lambda: late_utc, session_days=1)

    hook.whoami()

    (session,) = emulator._sessions.values()
    assert session.expiration == date(2026, 11, 21)


def test_the_emulator_kills_a_session_dated_from_a_utc_host(
    tripletex_connection: str, emulator: Any, sandbox_clean: Any
) -> None:
    """The trap itself: "today + 1" taken from the UTC date is already today in Oslo."""
    emulator.session_now = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    base = sandbox_clean.tripletex_url + "/v2"
    created = httpx.put(
        base + "/token/session/:create",
        params={
            "consumerToken": emulator.consumer_token,
            "employeeToken": emulator.employee_token,
            "expirationDate": "2026-11-20",
        },
    )
    token = created.json()["value"]["token"]

    answer = httpx.get(base + "/token/session/%3EwhoAmI", auth=("0", token))

    assert created.status_code == 200
    assert answer.status_code == 401


def test_a_session_that_expires_mid_extract_is_renewed_and_the_output_is_complete_and_exact(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any
) -> None:
    expected = reference(sandbox_clean)
    pages = hook.get_pages("/ledger/posting", window=HISTORY, sorting="id", page_size=100, max_in_flight=4)
    rows: list[dict[str, Any]] = []
    for number, page in enumerate(pages):
        rows.extend(page)
        if number == 5:
            emulator.expire_sessions()  # the session ends while pages are in flight

    assert rows == expected
    assert len({row["id"] for row in rows}) == len(rows)
    # The first session came from the reference read (shared on this machine); one renewal, not one
    # per page in flight.
    assert hook.sessions_created == 1
    assert emulator.counters.sessions_created == 2


def test_sessions_that_keep_ending_are_renewed_each_time(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any
) -> None:
    expected = reference(sandbox_clean)
    emulator.session_max_requests = 12

    rows = list(hook.get_all("/ledger/posting", window=HISTORY, sorting="id", page_size=250, max_in_flight=3))

    assert rows == expected
    assert hook.sessions_created >= 2


def test_a_session_refused_as_soon_as_it_is_made_is_an_authentication_error(
    hook: TripletexHook, emulator: Any
) -> None:
    emulator.session_max_requests = 0  # every session is refused from its first call

    with pytest.raises(AuthenticationError) as caught:
        hook.whoami()

    assert "refused a session it had just created" in str(caught.value)
    assert "employee token" in str(caught.value)
    assert hook.sessions_created == 2  # renewed once, then it stopped


def test_a_client_company_without_access_is_refused_with_the_company_named(
    sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, sandbox_clean, extra={"company_id": 4242})
    hook = make_hook()

    ok, message = hook.test_connection()

    assert not ok
    assert "company" in message.lower()


def test_an_accountant_reaches_a_client_company(sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, sandbox_clean, extra={"company_id": 9100002})

    info = make_hook().whoami()

    assert info["companyId"] == 9100002
    assert info["employeeIsProxy"] is True


def stored_session(sandbox: Any, days: int = 5) -> dict[str, Any]:
    """A real session, made the way the token-rotation operator would, as the store holds it."""
    emulator = sandbox.tripletex
    expiration = date.today() + timedelta(days=days)
    answer = httpx.put(
        sandbox.tripletex_url + "/v2/token/session/:create",
        params={
            "consumerToken": emulator.consumer_token,
            "employeeToken": emulator.employee_token,
            "expirationDate": expiration.isoformat(),
        },
    )
    return {
        STORE_SESSION_TOKEN: answer.json()["value"]["token"],
        STORE_EXPIRES_AT: datetime.combine(expiration, datetime.min.time(), tzinfo=UTC).isoformat(),
    }


def test_a_valid_session_in_the_credential_store_is_used(
    tripletex_connection: str, sandbox_clean: Any
) -> None:
    store = MemoryStore()
    store.values[tripletex_connection] = stored_session(sandbox_clean)
    hook = make_hook(store)

    hook.whoami()
    list(hook.get_all("/customer", page_size=50))

    assert hook.sessions_created == 0
    assert sandbox_clean.tripletex.counters.sessions_created == 1  # the stored one only


def test_a_stored_session_about_to_end_is_replaced_and_the_new_one_stored(
    tripletex_connection: str, sandbox_clean: Any
) -> None:
    store = MemoryStore()
    soon = stored_session(sandbox_clean)
    soon[STORE_EXPIRES_AT] = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    store.values[tripletex_connection] = soon
    hook = make_hook(store)

    hook.whoami()

    assert hook.sessions_created == 1
    saved = store.values[tripletex_connection]
    assert saved[STORE_SESSION_TOKEN] != soon[STORE_SESSION_TOKEN]
    assert datetime.fromisoformat(saved[STORE_EXPIRES_AT]) > datetime.now(UTC) + timedelta(hours=20)
    assert saved[STORE_SESSION_OWNER]


def test_a_stale_stored_session_is_renewed_on_its_first_401(
    tripletex_connection: str, sandbox_clean: Any
) -> None:
    store = MemoryStore()
    stale = stored_session(sandbox_clean)
    sandbox_clean.tripletex.expire_sessions()  # deleted at Tripletex, still in the store
    store.values[tripletex_connection] = stale
    hook = make_hook(store)

    hook.whoami()

    assert hook.sessions_created == 1
    assert store.values[tripletex_connection][STORE_SESSION_TOKEN] != stale[STORE_SESSION_TOKEN]


def test_a_fleet_of_tasks_shares_one_session(tripletex_connection: str, sandbox_clean: Any) -> None:
    store = MemoryStore()
    for _task in range(8):
        hook = make_hook(store)
        hook.whoami()
        hook.close()

    assert sandbox_clean.tripletex.counters.sessions_created == 1


def test_tasks_of_one_machine_share_the_session_file_and_it_is_private(
    tripletex_connection: str, sandbox_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGERLINK_STATE_DIR", str(tmp_path / "state"))
    first, second = make_hook(), make_hook()  # credential_store "none": only the machine shares

    first.whoami()
    second.whoami()

    assert (first.sessions_created, second.sessions_created) == (1, 0)
    assert second.session().source == "machine"
    (session_file,) = (tmp_path / "state").glob("tripletex-*.session.json")
    assert stat.S_IMODE(session_file.stat().st_mode) == 0o600
    assert first.employee_token not in session_file.read_text()  # only a digest of the tokens


def test_a_state_directory_others_can_read_is_not_used(
    tripletex_connection: str, sandbox_clean: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv("LEDGERLINK_STATE_DIR", str(shared))
    hook = make_hook()

    assert hook.whoami()["companyId"] == 9100001
    assert hook.limiter.shared_file is None
    assert list(shared.iterdir()) == []


def test_a_stored_session_of_other_tokens_is_ignored(tripletex_connection: str, sandbox_clean: Any) -> None:
    store = MemoryStore()
    store.values[tripletex_connection] = {
        **stored_session(sandbox_clean),
        STORE_SESSION_OWNER: "0123456789abcdef",
    }
    hook = make_hook(store)

    hook.whoami()

    assert hook.sessions_created == 1


def test_an_unreachable_or_read_only_store_does_not_stop_the_run(tripletex_connection: str) -> None:
    class Broken(MemoryStore):
        def load(self, conn_id: str) -> dict[str, Any]:
            raise RuntimeError("no Airflow here")

        def save(self, conn_id: str, values: dict[str, Any]) -> None:
            raise NotImplementedError("read-only")

    hook = make_hook(Broken())

    assert hook.whoami()["companyId"] == 9100001
    assert hook.sessions_created == 1


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------
def test_paging_stops_on_the_short_page_not_on_full_result_size(
    hook: TripletexHook, sandbox_clean: Any
) -> None:
    rows = list(hook.get_all("/ledger/posting", window=DAY, sorting="id", page_size=20, max_in_flight=1))
    expected = reference(sandbox_clean, window=DAY)

    assert rows == expected
    pages = -(-len(rows) // 20) + (1 if len(rows) % 20 == 0 else 0)
    assert sum(requests_to(sandbox_clean, "/ledger/posting").values()) == pages + 1  # + the reference read


def test_parallel_pages_arrive_in_order_and_equal_a_sequential_read(
    hook: TripletexHook, sandbox_clean: Any
) -> None:
    expected = reference(sandbox_clean)
    # Slow answers, so that several requests are certainly under way at once.
    sandbox_clean.faults.add(latency_fault(50, vendor="tripletex", path=r"/v2/ledger/posting\?"))

    parallel = list(
        hook.get_all("/ledger/posting", window=HISTORY, sorting="id", page_size=150, max_in_flight=6)
    )

    assert parallel == expected
    assert [row["id"] for row in parallel] == sorted(row["id"] for row in parallel)
    assert sandbox_clean.stats["tripletex"]["max_in_flight"] > 1


def test_fields_and_sorting_are_passed_through(hook: TripletexHook) -> None:
    rows = list(
        hook.get_all(
            "/ledger/posting",
            window=DAY,
            fields="id,date,amount,account(number,name)",
            sorting="-id",
            page_size=40,
        )
    )

    assert rows
    assert set(rows[0]) == {"id", "date", "amount", "account"}
    assert set(rows[0]["account"]) == {"number", "name"}
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)


def test_a_date_window_has_an_exclusive_end(hook: TripletexHook) -> None:
    rows = list(
        hook.get_all("/ledger/posting", window=(date(2026, 11, 17), date(2026, 11, 19)), fields="id,date")
    )

    assert {row["date"] for row in rows} == {"2026-11-17", "2026-11-18"}


def test_a_window_tripletex_finds_too_large_is_read_in_halves(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any
) -> None:
    expected = reference(sandbox_clean)
    emulator.max_window_rows = 400

    rows = list(hook.get_all("/ledger/posting", window=HISTORY, sorting="id", page_size=100))

    assert rows == expected
    assert requests_to(sandbox_clean, "/ledger/posting").get("422", 0) > 0


def test_an_endpoint_that_needs_a_window_says_so(hook: TripletexHook) -> None:
    with pytest.raises(ValidationError, match="needs a date window"):
        list(hook.get_all("/ledger/posting"))


def test_changed_since_returns_at_least_every_customer_changed_since_then(hook: TripletexHook) -> None:
    since = datetime(2026, 11, 10, tzinfo=UTC)
    everyone = list(hook.get_all("/customer", fields="id,changes"))
    changed = list(hook.get_all("/customer", fields="id,changes", changed_since=since))

    wanted = {row["id"] for row in everyone if (last_change(row) or since) >= since}
    assert wanted
    assert wanted <= {row["id"] for row in changed}
    assert len(changed) < len(everyone)


def test_checksums_tell_whether_a_list_changed(hook: TripletexHook) -> None:
    digests: list[str | None] = []
    first = list(hook.get_all("/customer", page_size=50, digests=digests))

    assert len(digests) == -(-len(first) // 50) + (1 if len(first) % 50 == 0 else 0)
    assert hook.pages_unchanged("/customer", digests, page_size=50)

    hook.upsert_customer({"name": "Ny Kunde AS", "customerNumber": 1})
    assert not hook.pages_unchanged("/customer", digests, page_size=50)


@pytest.mark.parametrize(
    "fault",
    [
        reset_fault(vendor="tripletex", path=r"/v2/ledger/posting\?", nth=[2, 5]),
        truncate_fault(vendor="tripletex", path=r"/v2/ledger/posting\?", nth=[3]),
        status_fault(503, vendor="tripletex", path=r"/v2/ledger/posting\?", nth=[2, 4], retry_after=0),
        status_fault(
            500,
            {"status": 500, "code": 1000, "message": "Intern feil."},
            vendor="tripletex",
            path=r"/v2/ledger/posting\?",
            nth=[4],
        ),
    ],
    ids=["reset", "truncated", "503", "500"],
)
def test_faults_on_reads_change_nothing_in_the_output(
    hook: TripletexHook, sandbox_clean: Any, fault: Any
) -> None:
    expected = reference(sandbox_clean)
    sandbox_clean.faults.add(fault)

    rows = list(hook.get_all("/ledger/posting", window=HISTORY, sorting="id", page_size=200, max_in_flight=4))

    assert rows == expected
    assert hook.client.retries >= 1


def test_a_retried_request_passes_the_rate_limiter_on_every_attempt(
    hook: TripletexHook, sandbox_clean: Any
) -> None:
    hook.session()  # the session exists: only the read below is counted
    sandbox_clean.faults.add(
        status_fault(503, vendor="tripletex", path=r"/v2/customer", nth=[1], retry_after=0)
    )
    before = hook.limiter.stats.requests

    hook.request("GET", "/customer", operation="list customers", params={"count": 1})

    assert hook.client.retries == 1
    assert hook.limiter.stats.requests - before == 2  # the 503 and the retry both waited for their turn
    assert hook.limiter.in_flight == 0


def test_a_429_without_a_reset_header_is_waited_out(hook: TripletexHook, sandbox_clean: Any) -> None:
    expected = reference(sandbox_clean)
    sandbox_clean.faults.add(
        status_fault(
            429,
            {"status": 429, "code": 429, "message": "For mange forespørsler."},
            vendor="tripletex",
            path=r"/v2/ledger/posting\?",
            nth=[3],
        )
    )

    rows = list(hook.get_all("/ledger/posting", window=HISTORY, sorting="id", page_size=250))

    assert rows == expected
    assert hook.limiter.stats.throttled == 1


def test_parallel_reads_stay_inside_the_rate_limit_and_its_reserve(
    tripletex_connection: str, emulator: Any, sandbox_clean: Any
) -> None:
    expected = reference(sandbox_clean)
    emulator.configure_rate_limit(limit=40, period=1)  # also starts a new period
    hook = make_hook(rate_limit_reserve=10, max_in_flight=6)

    rows = list(hook.get_all("/ledger/posting", window=HISTORY, sorting="id", page_size=100))

    assert rows == expected
    assert emulator.counters.rate_limited == 0
    assert hook.limiter.stats.min_remaining is not None and hook.limiter.stats.min_remaining >= 10


def test_a_missing_object_is_not_found_with_the_request_id(hook: TripletexHook) -> None:
    with pytest.raises(NotFoundError) as caught:
        hook.get("/customer/999")

    assert caught.value.reference and len(caught.value.reference) == 36
    assert caught.value.reference in str(caught.value)


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def test_a_customer_is_created_then_left_alone_then_updated(hook: TripletexHook) -> None:
    body = {"name": "Fjell Sport AS", "customerNumber": 42, "email": "post@fjellsport.no"}

    created = hook.upsert_customer(body)
    again = hook.upsert_customer(body)
    changed = hook.upsert_customer({**body, "email": "ordre@fjellsport.no"})

    assert (created.action, again.action, changed.action) == ("created", "unchanged", "updated")
    assert created.id == again.id == changed.id
    assert changed.value["version"] == created.value["version"] + 1
    assert changed.value["email"] == "ordre@fjellsport.no"


def test_an_inactive_customer_is_found_and_not_created_again(hook: TripletexHook) -> None:
    created = hook.upsert_customer({"name": "Vik Bakeri AS", "customerNumber": 7})
    hook.update(f"/customer/{created.id}", {"isInactive": True}, operation="deactivate")

    again = hook.upsert_customer({"name": "Vik Bakeri AS", "customerNumber": 7})

    assert again.id == created.id
    assert again.action == "unchanged"


def test_a_stale_version_is_refused_and_the_upsert_reads_again(
    hook: TripletexHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = hook.upsert_customer({"name": "Lie Rør AS", "customerNumber": 50})
    stale = dict(hook.find_customer(match="customerNumber", value=50) or {})
    hook.update(f"/customer/{created.id}", {"phoneNumber": "+47 22222222"}, operation="someone else")

    with pytest.raises(TripletexVersionConflictError) as caught:
        hook.update(f"/customer/{created.id}", {"version": stale["version"], "name": "x"}, operation="stale")
    assert "changed by someone else" in str(caught.value)

    real_find = hook.find_customer
    answers = iter([stale])
    monkeypatch.setattr(hook, "find_customer", lambda **kw: next(answers, None) or real_find(**kw))
    result = hook.upsert_customer({"name": "Lie Rør Service AS", "customerNumber": 50})

    assert result.action == "updated"
    assert result.value["name"] == "Lie Rør Service AS"


def an_order(customer_id: int) -> dict[str, Any]:
    return {
        "customer": {"id": customer_id},
        "orderDate": "2026-11-19",
        "orderLines": [
            {"description": "Kaffe", "count": 2, "unitPriceExcludingVatCurrency": 120.0, "vatType": {"id": 3}}
        ],
    }


@pytest.mark.parametrize(
    ("what", "path", "method"),
    [
        ("customer", r"^/v2/customer$", "POST"),
        ("order", r"^/v2/order$", "POST"),
        ("invoice", r"/:invoice", "PUT"),
        ("voucher", r"^/v2/ledger/voucher", "POST"),
    ],
)
def test_a_write_whose_answer_was_lost_is_never_created_twice(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any, what: str, path: str, method: str
) -> None:
    customer = (
        hook.upsert_customer({"name": "Strand Handel AS", "customerNumber": 300})
        if what != "customer"
        else None
    )
    order = (
        hook.create_order(an_order(customer.id), reference="WS-300")
        if what == "invoice" and customer
        else None
    )
    rule = sandbox_clean.faults.add(
        reset_fault(vendor="tripletex", path=path, method=method, when="after", nth=[1])
    )

    if what == "customer":
        result = hook.upsert_customer({"name": "Strand Handel AS", "customerNumber": 300})
    elif what == "order":
        result = hook.create_order(an_order(customer.id), reference="WS-301")  # type: ignore[union-attr]
    elif what == "invoice":
        result = hook.invoice_order(order.id, customer_id=customer.id, invoice_date=date(2026, 11, 19))  # type: ignore[union-attr,arg-type]
    else:
        result = hook.create_voucher(
            {
                "date": "2026-11-19",
                "description": "Kassaoppgjør",
                "externalVoucherNumber": "POS-2026-11-19",
                "postings": [
                    {"account": {"id": 3001920}, "amountGross": 500.0, "row": 1},
                    {"account": {"id": 3003000}, "amountGross": -500.0, "row": 2},
                ],
            }
        )

    assert sandbox_clean.faults.to_list()[0]["hits"] == 1, rule
    assert result.action == "created"
    assert len(emulator.created(what)) == 1
    assert result.id == emulator.created(what)[0]["id"]


def test_a_write_that_timed_out_is_looked_for_before_it_is_sent_again(
    tripletex_connection: str, emulator: Any, sandbox_clean: Any
) -> None:
    # The order is booked 0.5 s after it was sent, the answer given up after 0.2 s, and the hook
    # looks 2 s later: well after the booking.
    hook = make_hook(timeouts=Timeouts(read=0.2), recheck_delay=2.0)
    customer = hook.upsert_customer({"name": "Dahl Maskin AS", "customerNumber": 400})
    sandbox_clean.faults.add(
        latency_fault(500, vendor="tripletex", path=r"^/v2/order$", method="POST", nth=[1])
    )

    result = hook.create_order(an_order(customer.id), reference="WS-400")

    assert result.action == "created"
    assert len(emulator.created("order")) == 1


def test_a_write_that_can_not_be_settled_fails_without_a_duplicate(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any
) -> None:
    customer = hook.upsert_customer({"name": "Moen Data AS", "customerNumber": 500})
    sandbox_clean.faults.add(reset_fault(vendor="tripletex", path=r"^/v2/order$", method="POST", nth=[1]))

    with pytest.raises(AmbiguousWriteError, match="Look in Tripletex for an order"):
        hook.create_order(an_order(customer.id), reference="WS-500")
    assert emulator.created("order") == []
    with pytest.raises(AmbiguousWriteError, match="it was not sent again"):
        make_hook().create_order(an_order(customer.id), reference="WS-500")  # the task's retry
    assert emulator.created("order") == []

    # A person looked in Tripletex, found no order, and allowed one new attempt, as the error says.
    record = hook._write_once("order WS-500", "order WS-500").record_key
    assert WRITES[0].get_json(record)["state"] == "sending"  # type: ignore[index]
    WRITES[0].set_json(record, {"state": "open", "round": 1})
    result = make_hook().create_order(an_order(customer.id), reference="WS-500")
    again = make_hook().create_order(an_order(customer.id), reference="WS-500")  # and a rerun
    assert (result.action, again.action) == ("created", "existing")
    assert len(emulator.created("order")) == 1


def test_invoices_are_not_sent_to_the_customer_unless_asked(hook: TripletexHook, emulator: Any) -> None:
    customer = hook.upsert_customer({"name": "Olsen Eiendom AS", "customerNumber": 600})
    quiet = hook.create_order(an_order(customer.id), reference="WS-600")
    sent = hook.create_order(an_order(customer.id), reference="WS-601")

    hook.invoice_order(quiet.id, customer_id=customer.id, invoice_date=date(2026, 11, 19))  # type: ignore[arg-type]
    invoice = hook.invoice_order(
        sent.id, customer_id=customer.id, invoice_date=date(2026, 11, 19), send_to_customer=True
    )  # type: ignore[arg-type]

    assert emulator.sent_invoices == [invoice.id]


def test_a_voucher_needs_its_external_number(hook: TripletexHook) -> None:
    with pytest.raises(ValidationError, match="externalVoucherNumber"):
        hook.create_voucher({"date": "2026-11-19", "postings": []})


def test_voucher_postings_are_sent_gross_and_a_net_only_posting_is_refused_unsent(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any
) -> None:
    with pytest.raises(ValidationError, match=r"postings\[1\] has no amountGross.*'amount'"):
        hook.create_voucher(
            {"date": "2026-11-19", "externalVoucherNumber": "NET-1",
             "postings": [{"account": {"id": 3001920}, "amountGross": 10.0}, {"account": {"id": 3003000}, "amount": -10.0}]}
        )  # fmt: skip

    hook.create_voucher(
        {"date": "2026-11-19", "externalVoucherNumber": "GROSS-1",
         "postings": [{"account": {"id": 3001920}, "amountGross": 10.0}, {"account": {"id": 3003000}, "amountGross": -10.0}]}
    )  # fmt: skip

    sent = [json.loads(r["body"]) for r in emulator.received if r["path"].endswith("/ledger/voucher")]
    assert [[p["amountGrossCurrency"] for p in body["postings"]] for body in sent] == [[10.0, -10.0]]


# ------------------------------------------------------------------------------------------------
# Secrets
# ------------------------------------------------------------------------------------------------
def test_tokens_never_reach_logs_or_errors(
    tripletex_connection: str,
    emulator: Any,
    sandbox_clean: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # Airflow keeps it at WARNING; show its request lines
    hook = make_hook()
    hook.whoami()
    emulator.expire_sessions()
    hook.whoami()  # a renewal
    tokens = [emulator.consumer_token, emulator.employee_token, *emulator._sessions]

    use_connection(monkeypatch, sandbox_clean, password="eyJzZWNyZXRlbXBsb3llZSI6MX0=")
    failing = make_hook()
    with pytest.raises(AuthenticationError) as caught:
        failing.whoami()

    text = caplog.text + str(caught.value)
    assert "HTTP Request" in caplog.text  # httpx did log the calls …
    for token in [*tokens, "eyJzZWNyZXRlbXBsb3llZSI6MX0="]:
        assert token not in text  # … without any token


def _encodings(token: str) -> list[str]:
    """The forms a token takes in a URL, a JSON body or a Basic header."""
    import base64
    from urllib.parse import quote, quote_plus

    return sorted(
        {token, quote(token, safe=""), quote_plus(token), base64.b64encode(f"0:{token}".encode()).decode()}
    )


@pytest.mark.parametrize("refused", ["consumerToken", "employeeToken", "500"])
def test_an_error_answer_echoing_the_session_url_leaks_neither_token(
    sandbox_clean: Any,
    emulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    refused: str,
) -> None:
    """``PUT /token/session/:create?consumerToken=…&employeeToken=…``: a hostile answer repeats the
    URL (tokens URL-encoded) in its texts; neither token reaches a log line, stderr or the error."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "httpcore.http11", "httpcore.connection"):
        caplog.set_level(logging.DEBUG, logger=name)
    consumer, employee = "cons+umer/sec=ret==", "empl+oyee/sec=ret=="
    emulator.echo_requests = True
    if refused == "consumerToken":
        employee = emulator.employee_token
    elif refused == "employeeToken":
        consumer = emulator.consumer_token
    else:
        consumer, employee = emulator.consumer_token, emulator.employee_token
        sandbox_clean.faults.add(
            status_fault(500, {"status": 500, "code": 1000, "message": "Feil", "developerMessage": "x",
                               "requestId": "r-1", "echo": "/v2/token/session/:create?consumerToken="
                               + __import__("urllib.parse").parse.quote(consumer, safe="")
                               + "&employeeToken=" + __import__("urllib.parse").parse.quote(employee, safe="")},
                         vendor="tripletex", path=r":create"),
        )  # fmt: skip
    use_connection(monkeypatch, sandbox_clean, password=employee, extra={"consumer_token": consumer})
    hook = make_hook(retry=RetryPolicy(max_attempts=1))

    with pytest.raises(Exception) as caught:
        hook.whoami()
    logging.getLogger("airflow.task").error("task failed", exc_info=caught.value)

    captured = capsys.readouterr()
    surface = "\n".join(
        [caplog.text, captured.out, captured.err, str(caught.value), repr(caught.value),
         json.dumps(getattr(caught.value, "details", None), default=str)]
    )  # fmt: skip
    assert "token/session/:create" in caplog.text  # the request was logged …
    for secret in [*_encodings(consumer), *_encodings(employee)]:
        assert secret not in surface  # … without either token in any encoding


def test_a_connection_test_leaves_no_variable_and_no_session_behind(
    sandbox_clean: Any, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow tests a form under a random connection id: nothing may be stored under it."""
    from airflow_provider_ledgerlink.core.credentials import VariableCredentialStore
    from airflow_provider_ledgerlink.core.shared_state import MemoryState

    definition = tripletex_connection_definition(sandbox_clean.tripletex_url)  # store: variable
    monkeypatch.setenv("AIRFLOW_CONN_K3Q9ZV1XW2", json.dumps(definition))
    state = MemoryState()
    hook = TripletexHook("K3Q9ZV1XW2", retry=FAST_RETRY)
    hook.__dict__["credential_store"] = VariableCredentialStore(state=state)

    ok, message = hook.test_connection()

    assert ok, message
    assert state.snapshot() == {}
    assert emulator.counters.sessions_created == 1
    assert [s.revoked for s in emulator._sessions.values()] == [True]


# ------------------------------------------------------------------------------------------------
# Number series and customers LedgerLink did not create
# ------------------------------------------------------------------------------------------------
def test_a_customer_made_by_hand_is_never_changed(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any
) -> None:
    """A clerk made customer 4711 in Tripletex; the shop's customer 4711 must not overwrite it."""
    clerk = make_hook(state=MemoryState())  # someone else, with no LedgerLink record
    by_hand = clerk.create("/customer", {"name": "Håndlaget AS", "customerNumber": 4711}, operation="clerk")

    with pytest.raises(ValidationError, match="was not created by LedgerLink") as caught:
        hook.upsert_customer({"name": "Nettkunde AS", "customerNumber": 4711, "email": "x@nett.no"})

    stored = emulator._objects["customer"][by_hand["id"]]
    assert (stored["name"], stored["version"]) == ("Håndlaget AS", by_hand["version"])
    assert "ledgerlink_once_tripletex_" in str(caught.value)


def test_a_customer_ledgerlink_created_is_updated_on_a_later_run(hook: TripletexHook, emulator: Any) -> None:
    created = hook.upsert_customer({"name": "Berg Blomster AS", "customerNumber": 812})
    updated = make_hook().upsert_customer(
        {"name": "Berg Blomster AS", "customerNumber": 812, "email": "ny@berg.no"}
    )

    assert (created.action, updated.action) == ("created", "updated")
    assert updated.value["email"] == "ny@berg.no"
    assert len(emulator.created("customer")) == 1


@pytest.mark.parametrize("number", [100_000, 123_456, 0, "42"])
def test_a_shop_customer_number_in_tripletex_own_series_is_refused_unsent(
    hook: TripletexHook, emulator: Any, number: Any
) -> None:
    """The set-up moves Tripletex's own numbers to 100000 ("Sett kundenummer til 100000")."""
    with pytest.raises(ValidationError, match="from 1 to 99999"):
        hook.upsert_customer({"name": "Feil AS", "customerNumber": number})
    assert emulator.received == []


def test_tripletex_own_customers_and_invoices_are_numbered_clear_of_the_shop(
    client_hook: TripletexHook,
) -> None:
    customers = list(client_hook.get_all("/customer", fields="customerNumber"))
    invoices = list(
        client_hook.get_all(
            "/invoice", window=(date(2026, 9, 21), date(2026, 11, 20)), fields="invoiceNumber"
        )
    )
    own = client_hook.create("/customer", {"name": "Uten Nummer AS"}, operation="create")

    assert min(c["customerNumber"] for c in customers) >= 100_000
    assert min(i["invoiceNumber"] for i in invoices) >= 50_000
    assert own["customerNumber"] >= 100_000


@pytest.fixture
def client_hook(tripletex_connection: str) -> Iterator[TripletexHook]:
    made = make_hook()
    yield made
    made.close()


@pytest.mark.parametrize(
    ("what", "path", "method"),
    [
        ("customer", r"^/v2/customer$", "POST"),
        ("order", r"^/v2/order$", "POST"),
        ("invoice", r"/:invoice", "PUT"),
        ("voucher", r"^/v2/ledger/voucher", "POST"),
    ],
)
def test_a_500_after_booking_is_settled_by_looking_and_a_rerun_books_nothing(
    hook: TripletexHook, emulator: Any, sandbox_clean: Any, what: str, path: str, method: str
) -> None:
    """A 5xx Tripletex does not explain may come after the write was applied (ambiguous): LedgerLink
    looks for it instead of sending it again, and a rerun books nothing."""

    def write(h: TripletexHook) -> Any:
        customer = h.upsert_customer({"name": "Strand Handel AS", "customerNumber": 300})
        if what == "customer":
            return customer
        order = h.create_order(an_order(customer.id), reference="WS-300")
        if what == "order":
            return order
        if what == "invoice":
            return h.invoice_order(order.id, customer_id=customer.id, invoice_date=date(2026, 11, 19))  # type: ignore[arg-type]
        return h.create_voucher(
            {"date": "2026-11-19", "externalVoucherNumber": "POS-300",
             "postings": [{"account": {"id": 3001920}, "amountGross": 5.0}, {"account": {"id": 3003000}, "amountGross": -5.0}]}
        )  # fmt: skip

    sandbox_clean.faults.add(
        status_fault(500, {"status": 500, "code": 1000, "message": "Intern feil"}, vendor="tripletex",
                     path=path, method=method, when="after", nth=[1])
    )  # fmt: skip

    first = write(hook)
    counts = httpx.get(sandbox_clean.url + "/_sandbox/tripletex/objects").json()
    again = write(make_hook())

    assert first.action == "created" and again.action in ("existing", "unchanged")
    assert httpx.get(sandbox_clean.url + "/_sandbox/tripletex/objects").json() == counts
    assert len(emulator.created(what)) == 1


def test_pages_say_where_they_stand_and_get_rows_reads_what_get_all_reads(hook: TripletexHook) -> None:
    pages = list(hook.get_pages("/customer", page_size=50, sorting="id"))

    assert len(pages) > 1
    assert [page.offset for page in pages] == [50 * index for index in range(len(pages))]
    assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
    rows = [row for page in pages for row in page]
    assert list(hook.get_rows("/customer", page_size=50, sorting="id")) == rows
    assert list(hook.get_all("/customer", page_size=50, sorting="id")) == rows
