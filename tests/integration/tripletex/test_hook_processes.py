"""Parallel Tripletex tasks in separate processes share one rate limit and one session.

Tripletex counts requests "for an employee for each API consumer" and, once a period's budget is
spent, answers 429 to everyone using that employee — the people in Tripletex's web application
too. Twelve extract tasks of one connection, each its own process with four pages in flight, must
therefore together keep the reserve, and create one session between them, without an Airflow pool.
The processes share only the machine's state directory and the answers' X-Rate-Limit-* headers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from datetime import date
from pathlib import Path
from typing import Any

from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition

PROCESSES = 12
LIMIT, PERIOD, RESERVE = 120, 10, 20
WINDOW = (date(2026, 11, 1), date(2026, 11, 20))
PAGE_SIZE = 150  # 1582 postings: 11 pages per process, 12 processes: more than one period's budget


def extract(connection: str, state_dir: str, start: Any, results: Any) -> None:
    """One extract task: its own process, its own hook, the connection from the environment."""
    os.environ["AIRFLOW_CONN_TRIPLETEX_DEFAULT"] = connection
    os.environ["LEDGERLINK_STATE_DIR"] = state_dir
    from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook

    hook = TripletexHook(rate_limit_reserve=RESERVE, max_in_flight=4, page_size=PAGE_SIZE)
    try:
        start.wait(timeout=60)
        rows = [row["id"] for row in hook.get_all("/ledger/posting", window=WINDOW, sorting="id")]
        results.put(
            {"rows": rows, "created": hook.sessions_created, "throttled": hook.limiter.stats.throttled}
        )
    except BaseException as error:  # reported to the test, which fails with it
        results.put({"error": repr(error)})
    finally:
        hook.close()


def test_twelve_processes_keep_the_reserve_and_share_one_session(sandbox_clean: Any, tmp_path: Path) -> None:
    emulator = sandbox_clean.tripletex
    emulator.configure_rate_limit(limit=LIMIT, period=PERIOD)
    connection = json.dumps(
        tripletex_connection_definition(sandbox_clean.tripletex_url, credential_store="none")
    )
    state_dir = tmp_path / "state"
    # Forked from a server that holds no threads of this test (the sandbox serves from threads here).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["airflow_provider_ledgerlink.hooks.tripletex"])
    start, results = context.Barrier(PROCESSES), context.Queue()
    workers = [
        context.Process(target=extract, args=(connection, str(state_dir), start, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        outcomes = [results.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()

    assert [outcome.get("error") for outcome in outcomes] == [None] * PROCESSES
    first = outcomes[0]["rows"]
    assert len(first) == 1582 and first == sorted(first)
    assert all(outcome["rows"] == first for outcome in outcomes)
    assert emulator.counters.rate_limited == 0
    assert sum(outcome["throttled"] for outcome in outcomes) == 0
    assert emulator.counters.min_remaining is not None and emulator.counters.min_remaining >= RESERVE
    # More was asked than one period allows, so the reserve was really reached, not just never approached.
    assert sum(requests_to(sandbox_clean).values()) > LIMIT - RESERVE
    assert emulator.counters.sessions_created == 1
    assert sum(outcome["created"] for outcome in outcomes) == 1
    # The token is shared through a file only its owner can read.
    session_files = list(state_dir.glob("tripletex-*.session.json"))
    assert len(session_files) == 1
    assert stat.S_IMODE(session_files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def requests_to(sandbox: Any) -> dict[str, int]:
    return sandbox.stats["tripletex"]["by_path"].get("GET /v2/ledger/posting", {})
