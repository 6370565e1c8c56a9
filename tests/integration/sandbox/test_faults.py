"""Fault injection: the plan's selectors, each fault kind over real HTTP, and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.afas import afas_maintenance_fault
from airflow_provider_ledgerlink.sandbox.faults import (
    FaultDecision,
    FaultPlan,
    FaultRule,
    latency_fault,
    reset_fault,
    status_fault,
    truncate_fault,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
TRANSACTIONS = "/ProfitRestServices/connectors/Profit_Transactions"


def hits(plan: FaultPlan, requests: int, target: str = TRANSACTIONS) -> list[int]:
    """The 1-based numbers of the requests that the plan faults."""
    return [n for n in range(1, requests + 1) if plan.decide("afas", "GET", target).rule is not None]


# --------------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------------
class TestSelectors:
    def test_nth(self) -> None:
        assert hits(FaultPlan([status_fault(503, nth=[2, 5])]), 8) == [2, 5]

    def test_every(self) -> None:
        assert hits(FaultPlan([status_fault(503, every=3)]), 10) == [3, 6, 9]

    def test_times(self) -> None:
        assert hits(FaultPlan([status_fault(503, times=2)]), 5) == [1, 2]
        assert hits(FaultPlan([status_fault(503, every=2, times=2)]), 10) == [2, 4]

    def test_probability_is_seeded(self) -> None:
        def run(seed: int) -> list[int]:
            return hits(FaultPlan([status_fault(503, probability=0.3)], seed=seed), 200)

        assert run(1) == run(1)
        assert run(1) != run(2)
        assert 30 < len(run(1)) < 90

    def test_only_matching_requests_count(self) -> None:
        plan = FaultPlan(
            [status_fault(500, vendor="afas", path=r"Profit_Transactions\?", method="GET", nth=[2])]
        )
        assert plan.decide("afas", "GET", TRANSACTIONS + "?skip=0").rule is None
        assert plan.decide("afas", "GET", "/ProfitRestServices/connectors/Profit_Debtor?skip=0").rule is None
        assert plan.decide("afas", "POST", TRANSACTIONS + "?skip=0").rule is None
        assert plan.decide("tripletex", "GET", TRANSACTIONS + "?skip=0").rule is None
        assert plan.decide("afas", "GET", TRANSACTIONS + "?skip=100").rule is not None
        assert plan.to_list()[0]["matched"] == 2 and plan.to_list()[0]["hits"] == 1

    def test_latency_adds_up_and_first_outcome_wins(self) -> None:
        plan = FaultPlan(
            [
                latency_fault(100),
                latency_fault(50),
                status_fault(503, name="first"),
                status_fault(500, name="second"),
            ]
        )
        decision = plan.decide("afas", "GET", TRANSACTIONS)
        assert decision.latency_ms == 150
        assert decision.rule is not None and decision.rule.name == "first"

    def test_rules_round_trip_through_json(self) -> None:
        rules = [
            afas_maintenance_fault(retry_after=60, nth=[1]),
            latency_fault(25, path="connectors", every=2),
            reset_fault(method="post", when="after", times=1),
            truncate_fault(probability=0.5),
        ]
        data = json.loads(json.dumps([rule.to_dict() for rule in rules]))
        assert [FaultRule.from_dict(item) for item in data] == rules
        assert data[2] == {"kind": "reset", "method": "POST", "times": 1, "when": "after"}

    @pytest.mark.parametrize(
        "data",
        [
            {"kind": "explode"},
            {"status": 503},
            {"kind": "status", "colour": "red"},
            {"kind": "latency"},
            {"kind": "status", "probability": 2},
            {"kind": "reset", "when": "later"},
        ],
    )
    def test_invalid_rules_are_refused(self, data: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            FaultRule.from_dict(data)


# --------------------------------------------------------------------------------------------------
# Each kind over HTTP
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=42, port=0) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(sandbox: Sandbox) -> None:
    sandbox.reset(state=True)
    sandbox.latency_ms = 0


@pytest.fixture
def afas(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=sandbox.afas_url + "/ProfitRestServices",
        headers={"Authorization": sandbox.afas.authorization_header},
        timeout=10,
    ) as client:
        yield client


def page(client: httpx.Client, skip: int = 0) -> httpx.Response:
    return client.get("/connectors/Profit_Transactions", params={"skip": skip, "take": 200})


class TestFaultKinds:
    def test_latency(self, sandbox: Sandbox, afas: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
        # Which request is delayed is read from the plan's decisions, not from wall time (a busy
        # machine can make any request slow); the delay itself is proved by a lower bound only.
        sandbox.faults.add(latency_fault(300, vendor="afas", nth=[2]))
        decide = sandbox.faults.decide
        delays: list[int] = []

        def recording(*args: str) -> FaultDecision:
            decision = decide(*args)
            delays.append(decision.latency_ms)
            return decision

        monkeypatch.setattr(sandbox.faults, "decide", recording)
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            assert page(afas).status_code == 200
            timings.append(time.perf_counter() - started)
        assert delays == [0, 300, 0]
        assert timings[1] >= 0.3

    def test_sandbox_wide_latency(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        sandbox.latency_ms = 150
        started = time.perf_counter()
        afas.get("/ProfitVersion")
        assert time.perf_counter() - started >= 0.15

    def test_maintenance_503_with_retry_after(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        sandbox.faults.add(afas_maintenance_fault(retry_after=120, nth=[2]))
        statuses = [page(afas).status_code for _ in range(3)]
        assert statuses == [200, 503, 200]
        sandbox.faults.replace([afas_maintenance_fault(retry_after=120)])
        response = page(afas)
        assert response.json() == {
            "error": {
                "code": "503",
                "message": "Service temporarily unavailable due to scheduled maintenance. "
                "Please check afasstatus.nl for details.",
            },
            "retry_after": 120,
        }
        assert response.headers["content-type"].startswith("application/json")

    def test_status_with_retry_after_header_and_raw_body(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        sandbox.faults.add(status_fault(429, "slow down", retry_after=7, path="ProfitVersion"))
        response = afas.get("/ProfitVersion")
        assert (response.status_code, response.text, response.headers["retry-after"]) == (
            429,
            "slow down",
            "7",
        )
        assert page(afas).status_code == 200  # other paths are untouched

    def test_status_fault_stops_a_write_from_being_applied(
        self, sandbox: Sandbox, afas: httpx.Client
    ) -> None:
        sandbox.faults.add(status_fault(500, {"externalMessage": "locked"}, method="POST", times=1))
        body = {"KnSubject": {"Element": {"Fields": {"StId": 1, "Ds": "Notitie"}}}}
        assert afas.post("/connectors/KnSubject", json=body).status_code == 500
        assert sandbox.afas.updates == []
        assert afas.post("/connectors/KnSubject", json=body).status_code == 201

    def test_reset_before_the_request_is_handled(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        sandbox.faults.add(reset_fault(vendor="afas", nth=[2]))
        assert page(afas).status_code == 200
        with pytest.raises(httpx.TransportError):
            page(afas)
        assert page(afas).status_code == 200  # a new connection works again
        stats = sandbox.stats["afas"]["by_path"]["GET " + TRANSACTIONS]
        assert stats == {"200": 2, "reset": 1}

    def test_reset_after_the_write_was_applied(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        sandbox.faults.add(reset_fault(method="POST", when="after", times=1))
        body = {"KnSubject": {"Element": {"Fields": {"StId": 1, "Ds": "Dubbel?"}}}}
        with pytest.raises(httpx.TransportError):
            afas.post("/connectors/KnSubject", json=body)
        applied = afas.get(
            "/connectors/Profit_DossierItems", params={"filterfieldids": "Subject", "filtervalues": "Dubbel?"}
        ).json()["rows"]
        assert len(applied) == 1  # the client never heard, but the record exists: do not blindly re-send

    def test_status_after_the_write_was_applied(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        sandbox.faults.add(status_fault(500, {"error": "boom"}, method="POST", when="after", times=1))
        body = {"KnSubject": {"Element": {"Fields": {"StId": 1, "Ds": "Toch geboekt"}}}}
        assert afas.post("/connectors/KnSubject", json=body).status_code == 500
        applied = afas.get(
            "/connectors/Profit_DossierItems",
            params={"filterfieldids": "Subject", "filtervalues": "Toch geboekt"},
        ).json()["rows"]
        assert len(applied) == 1  # answered 500, yet booked: the ambiguous case a write must survive

    def test_truncated_body(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        sandbox.faults.add(truncate_fault(path="Profit_Transactions", every=2))
        assert page(afas).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            page(afas)
        assert len(page(afas).json()["rows"]) == 200

    def test_faults_through_the_control_endpoint(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        rules = [{"kind": "status", "vendor": "afas", "status": 503, "body": {"retry_after": 1}, "nth": [1]}]
        response = httpx.post(sandbox.url + "/_sandbox/faults", json=rules)
        assert response.status_code == 200
        assert page(afas).status_code == 503
        assert page(afas).status_code == 200
        active = httpx.get(sandbox.url + "/_sandbox/faults").json()
        assert active == [{**rules[0], "matched": 2, "hits": 1}]
        bad = httpx.post(sandbox.url + "/_sandbox/faults", json=[{"kind": "melt"}])
        assert bad.status_code == 400
        httpx.post(sandbox.url + "/_sandbox/reset")
        assert httpx.get(sandbox.url + "/_sandbox/faults").json() == []

    def test_latency_through_the_control_endpoint(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        assert httpx.post(sandbox.url + "/_sandbox/latency", json={"latency_ms": 120}).json() == {
            "latency_ms": 120
        }
        started = time.perf_counter()
        afas.get("/ProfitVersion")
        assert time.perf_counter() - started >= 0.12


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def test_command_line_serves_until_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "url.txt"
    fault = json.dumps({"kind": "status", "vendor": "afas", "status": 503, "nth": [1]})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_ledgerlink.sandbox",
            "--port",
            "0",
            "--seed",
            "7",
            "--afas-rows",
            "Profit_Debtor=7",
            "--fault",
            fault,
            "--ready-file",
            str(ready),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("LedgerLink sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert ready.read_text().strip() == url
        credentials = httpx.get(url + "/_sandbox/afas/credentials").json()
        headers = {"Authorization": credentials["authorization"]}
        base = url + "/afas/ProfitRestServices/connectors/Profit_Debtor"
        assert httpx.get(base, headers=headers).status_code == 503
        body = httpx.get(base, params={"skip": -1, "take": -1}, headers=headers).json()
        assert len(body["rows"]) == 7
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
