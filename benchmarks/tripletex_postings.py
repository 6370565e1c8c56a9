"""Reading Tripletex postings two ways, against the sandbox with latency and a rate limit.

    .venv/bin/python benchmarks/tripletex_postings.py --rows 200000 --latency-ms 20

The sandbox runs in a process of its own (its CPU is not the client's), with ``--latency-ms`` added
to every request and Tripletex's rate limit switched on (per consumer and employee token, 429 for
every request once a period's budget is spent). Two rate limits are tried (``--scenario``):

``roomy``
    1000 requests per 60 s: room for a fast read. Here the target is speed.
``tight``
    100 requests per 10 s, about what was measured at Tripletex: the limit, not the client, sets
    the pace, and what counts is that LedgerLink never meets a 429 and leaves the reserve alone.

Both approaches read all postings of the generated history (60 days) with pages of ``--page-size``
rows, in id order, and keep every row:

``sequential``
    The loop Tripletex client libraries use: one ``from``/``count`` request after the other, the
    next page only when the previous one was full, every row kept in a list (what such libraries
    return). It waits out a 429 for ``X-Rate-Limit-Reset`` seconds (one second when the header is
    missing) and asks again.
``ledgerlink``
    ``TripletexHook.get_all``: the history cut into windows of 31 days, ``--in-flight`` pages
    requested at once, paced on the rate-limit headers so that ``--reserve`` requests of every
    period stay free for the people working in Tripletex. Rows are streamed, as the extract
    operator does (memory stays bounded); ``--keep-rows`` keeps them in a list like the loop.

Both read the same rows: the script compares their count, the sum of their ids and of their amounts.

For each approach the script prints rows per second, the requests Tripletex saw, how many were
refused with 429, the lowest ``X-Rate-Limit-Remaining`` of the run, and the CPU seconds the client and
the sandbox used (when they add up to about the wall time times the cores, the machine, not the
network, set the pace: run it on a quiet machine). The targets: with the roomy
limit LedgerLink at least 3× the sequential loop; in both, no 429 for LedgerLink and the lowest
remaining never below the reserve.
``--markdown`` prints the same as a section for the docs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from datetime import date
from typing import Any

import httpx

ROWS_KEY = "tripletex.postings"
WINDOW = (date(2026, 9, 21), date(2026, 11, 20))  # the sandbox's generated history
CONN_ID = "tripletex_benchmark"
TARGET_VS_SEQUENTIAL = 3.0
DEFAULT_IN_FLIGHT = 6


# ------------------------------------------------------------------------------------------------
# The sandbox, in a process of its own
# ------------------------------------------------------------------------------------------------
def _serve(rows: int, ready: Any, stop: Any) -> None:
    from airflow_provider_ledgerlink.sandbox import Sandbox

    with Sandbox(seed=42, scale={ROWS_KEY: rows}) as sandbox:
        sandbox.tripletex.max_window_rows = 10 * rows  # a window is never "too large" here
        ready.put(sandbox.url)
        stop.wait()


class SandboxProcess:
    def __init__(self, rows: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready = context.Queue()
        self._stop = context.Event()
        self._process = context.Process(target=_serve, args=(rows, self._ready, self._stop), daemon=True)

    def __enter__(self) -> str:
        self._process.start()
        return str(self._ready.get(timeout=120))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()

    @property
    def pid(self) -> int | None:
        return self._process.pid


def configure(url: str, *, latency_ms: int, limit: int, period: float) -> None:
    """Latency, and a fresh rate-limit period with fresh counters, before each approach."""
    httpx.post(url + "/_sandbox/reset").raise_for_status()  # stats and faults; created data stays
    httpx.post(url + "/_sandbox/latency", json={"latency_ms": latency_ms}).raise_for_status()
    httpx.post(
        url + "/_sandbox/tripletex/rate-limit", json={"limit": limit, "period": period}
    ).raise_for_status()


def sandbox_figures(url: str) -> dict[str, Any]:
    stats = httpx.get(url + "/_sandbox/stats").json()["tripletex"]
    limit = httpx.get(url + "/_sandbox/tripletex/rate-limit").json()
    return {"requests": stats["requests"], "max_in_flight": stats["max_in_flight"], **limit}


# ------------------------------------------------------------------------------------------------
# The two approaches
# ------------------------------------------------------------------------------------------------
def sequential(url: str, page_size: int) -> dict[str, Any]:
    credentials = httpx.get(url + "/_sandbox/tripletex/credentials").json()
    base = url + "/tripletex/v2"
    with httpx.Client(base_url=base, timeout=60) as client:
        session = client.put(
            "/token/session/:create",
            params={
                "consumerToken": credentials["consumer_token"],
                "employeeToken": credentials["employee_token"],
                "expirationDate": "2099-01-01",
            },
        ).json()["value"]["token"]
        client.auth = ("0", session)
        rows: list[dict[str, Any]] = []
        start = 0
        lowest: int | None = None
        throttled = 0
        while True:
            response = client.get(
                "/ledger/posting",
                params={
                    "dateFrom": WINDOW[0].isoformat(),
                    "dateTo": WINDOW[1].isoformat(),
                    "from": start,
                    "count": page_size,
                    "sorting": "id",
                },
            )
            remaining = response.headers.get("X-Rate-Limit-Remaining")
            if remaining is not None:
                lowest = int(remaining) if lowest is None else min(lowest, int(remaining))
            if response.status_code == 429:
                throttled += 1
                time.sleep(float(response.headers.get("X-Rate-Limit-Reset") or 1))
                continue
            response.raise_for_status()
            page = response.json()["values"]
            rows.extend(page)
            if len(page) < page_size:
                break
            start += page_size
    return {
        "rows": len(rows),
        "fingerprint": fingerprint(rows),
        "client_429": throttled,
        "client_min_remaining": lowest,
    }


def fingerprint(rows: Any) -> str:
    """Which rows were read, whatever the order: count, sum of ids, sum of amounts in cents."""
    count = ids = cents = 0
    for row in rows:
        count += 1
        ids += row["id"]
        cents += round(row["amount"] * 100)
    return f"{count}:{ids}:{cents}"


def ledgerlink(url: str, page_size: int, in_flight: int, reserve: int, keep_rows: bool) -> dict[str, Any]:
    from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook
    from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition

    definition = tripletex_connection_definition(url + "/tripletex", credential_store="none")
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(definition)
    hook = TripletexHook(CONN_ID, page_size=page_size, max_in_flight=in_flight, rate_limit_reserve=reserve)
    try:
        rows = hook.get_all("/ledger/posting", window=WINDOW, sorting="id")
        if keep_rows:
            rows = list(rows)  # type: ignore[assignment]
        found = fingerprint(rows)
    finally:
        hook.close()
    stats = hook.limiter.stats
    return {
        "rows": int(found.split(":")[0]),
        "fingerprint": found,
        "client_429": stats.throttled,
        "client_min_remaining": stats.min_remaining,
        "waited_seconds": round(stats.waited_seconds, 2),
    }


def _cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of this process, or of another one (the sandbox) from ``/proc``."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    name: str, run: Any, url: str, args: argparse.Namespace, sandbox_pid: int | None
) -> dict[str, Any]:
    configure(url, latency_ms=args.latency_ms, limit=args.rate_limit, period=args.rate_period)
    cpu, sandbox_cpu = _cpu_seconds(), _cpu_seconds(sandbox_pid)
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    cpu, sandbox_cpu = _cpu_seconds() - cpu, _cpu_seconds(sandbox_pid) - sandbox_cpu
    figures = sandbox_figures(url)
    return {
        "approach": name,
        "seconds": round(seconds, 2),
        "rows_per_second": round(result["rows"] / seconds),
        **result,
        "requests": figures["requests"],
        "rate_limited": figures["rate_limited"],
        "min_remaining": figures["min_remaining"],
        "max_in_flight": figures["max_in_flight"],
        "client_cpu_seconds": round(cpu, 2),
        "sandbox_cpu_seconds": round(sandbox_cpu, 2),
    }


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
def verdict(results: dict[str, dict[str, Any]], reserve: int, *, speed: bool) -> list[str]:
    ours, theirs = results["ledgerlink"], results["sequential"]
    ratio = ours["rows_per_second"] / max(theirs["rows_per_second"], 1)
    inside = ours["rate_limited"] == 0 and (ours["min_remaining"] or 0) >= reserve
    target = (
        f" (target ≥ {TARGET_VS_SEQUENTIAL:.0f}×: {'met' if ratio >= TARGET_VS_SEQUENTIAL else 'NOT met'})"
    )
    return [
        f"- LedgerLink / sequential: {ratio:.2f}×{target if speed else ' (the rate limit sets the pace)'}",
        f"- LedgerLink inside the rate limit and its reserve of {reserve}: "
        f"{'yes' if inside else 'NO'} ({ours['rate_limited']} × 429, lowest remaining {ours['min_remaining']})",
        f"- sequential loop: {theirs['rate_limited']} × 429, lowest remaining {theirs['min_remaining']}",
    ]


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| approach | rows | seconds | rows/s | requests | 429s | lowest remaining | most in flight "
        "| client CPU s | sandbox CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results.values():
        lines.append(
            f"| {result['approach']} | {result['rows']:,} | {result['seconds']} | {result['rows_per_second']:,} | "
            f"{result['requests']} | {result['rate_limited']} | {result['min_remaining']} | {result['max_in_flight']} "
            f"| {result['client_cpu_seconds']} | {result['sandbox_cpu_seconds']} |"
        )
    return lines


#: Two rate limits: one with room for a fast read, and one as tight as measured at Tripletex
#: (about 100 requests per 10 seconds), where the limit, not the client, sets the pace.
SCENARIOS = {"roomy": (1000, 60.0), "tight": (100, 10.0)}


def run_scenario(url: str, args: argparse.Namespace, sandbox_pid: int | None) -> dict[str, dict[str, Any]]:
    return {
        "sequential": measure(
            "sequential from/count loop", lambda: sequential(url, args.page_size), url, args, sandbox_pid
        ),
        "ledgerlink": measure(
            f"LedgerLink TripletexHook.get_all ({args.in_flight} in flight, "
            f"{'kept in a list' if args.keep_rows else 'streamed'})",
            lambda: ledgerlink(url, args.page_size, args.in_flight, args.reserve, args.keep_rows),
            url,
            args,
            sandbox_pid,
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="postings in the sandbox (default 200000)")
    parser.add_argument("--latency-ms", type=int, default=20, help="added to every request (default 20)")
    parser.add_argument(
        "--scenario", choices=[*SCENARIOS, "both"], default="both", help="which rate limit (default both)"
    )
    parser.add_argument("--rate-limit", type=int, help="requests per period (overrides the scenario's)")
    parser.add_argument("--rate-period", type=float, help="period in seconds (overrides the scenario's)")
    parser.add_argument(
        "--reserve", type=int, default=20, help="requests LedgerLink leaves free (default 20)"
    )
    parser.add_argument("--page-size", type=int, default=1000, help="rows per request (default 1000)")
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT, help="LedgerLink's pages at once")
    parser.add_argument(
        "--keep-rows", action="store_true", help="LedgerLink also keeps every row in a list, as the loop does"
    )
    parser.add_argument("--markdown", action="store_true", help="print a section for docs/benchmarks.md")
    args = parser.parse_args(argv)

    # Imported before any measurement, as a task process would have it (importing Airflow takes a
    # second of CPU that is no part of reading).
    import airflow_provider_ledgerlink.hooks.tripletex  # noqa: F401

    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    outcome = 0
    sections: list[str] = []
    sandbox = SandboxProcess(args.rows)
    with sandbox as url:
        for name in names:
            limit, period = SCENARIOS[name]
            args.rate_limit = args.rate_limit if args.scenario != "both" and args.rate_limit else limit
            args.rate_period = args.rate_period if args.scenario != "both" and args.rate_period else period
            results = run_scenario(url, args, sandbox.pid)
            if results["ledgerlink"]["fingerprint"] != results["sequential"]["fingerprint"]:
                print("The two approaches read different rows", file=sys.stderr)
                outcome = 1
            setting = (
                f"**{name}**: {args.rows:,} postings, {args.latency_ms} ms latency, rate limit {args.rate_limit} "
                f"requests per {args.rate_period:g} s, reserve {args.reserve}, pages of {args.page_size}"
            )
            checks = verdict(results, args.reserve, speed=name == "roomy")
            sections.append("\n".join([setting, "", *table(results), "", *checks]))
            if not args.markdown:
                print(json.dumps(results, indent=2))
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    if args.markdown:
        print("## Tripletex postings\n")
        print(
            f"`.venv/bin/python benchmarks/tripletex_postings.py {' '.join(argv or sys.argv[1:])}`".rstrip()
        )
        print(f"({machine})\n")
    else:
        print(machine)
    print("\n\n".join(sections))
    return outcome


if __name__ == "__main__":
    sys.exit(main())
