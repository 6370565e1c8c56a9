"""Reading Tripletex postings five ways, against the sandbox with latency and a rate limit.

    .venv/bin/python benchmarks/tripletex_postings.py --rows 200000 --latency-ms 20 --repeat 3 \\
        --out docs/benchmarks.md

The sandbox runs in a process of its own (its CPU is not the client's, and is reported beside it),
with ``--latency-ms`` added to every request and Tripletex's rate limit switched on (per consumer
and employee token, 429 for every request once a period's budget is spent). Two rate limits are
tried (``--scenario``):

``roomy``
    1000 requests per 60 s: room for a fast read. Here the target is speed.
``tight``
    100 requests per 10 s, about what was measured at Tripletex: the limit, not the client, sets
    the pace, and what counts is that LedgerLink never meets a 429 and leaves the reserve alone.
    Only the approaches that pace themselves run here (``sequential`` and ``ledgerlink``, unless
    ``--approaches`` names others).

Every approach reads all postings of the generated history (60 days) with pages of ``--page-size``
rows, in id order, each in a fresh subprocess:

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
``ledgerlink_extract``
    ``TripletexExtractOperator.execute()``, a full load of ``postings`` from the first day of the
    history: the same reads, written as gzip JSON Lines with a manifest.
``cpu_fair_ceiling``
    The least program doing the extract's job: the session token, then every page of the whole
    history fetched ``--in-flight`` at a time with httpx, parsed with msgspec, written in order as
    gzip JSON Lines; a 429 is waited out. No pacing, no windows, no retries.
``raw_ceiling``
    The same pages fetched ``--in-flight`` at a time and thrown away unparsed.

``sequential``, ``ledgerlink`` and ``ledgerlink_extract`` must read the same rows: the script
compares their count, the sum of their ids and of their amounts (the extract's from its files).
The ceilings count rows. The runs are interleaved (round ``r`` runs every approach once, the order
rotated by one each round) and reported as medians with their min–max.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness

ROWS_KEY = "tripletex.postings"
WINDOW = (date(2026, 9, 21), date(2026, 11, 20))  # the sandbox's generated history
CONN_ID = "tripletex_benchmark"
SECTION_TITLE = "Tripletex postings"
TARGET_VS_SEQUENTIAL = 3.0
DEFAULT_IN_FLIGHT = 6

APPROACHES: dict[str, str] = {
    "sequential": "sequential from/count loop",
    "ledgerlink": "LedgerLink TripletexHook.get_all",
    "ledgerlink_extract": "LedgerLink TripletexExtractOperator",
    "cpu_fair_ceiling": "CPU-fair ceiling (fetch, parse, write)",
    "raw_ceiling": "raw ceiling (fetch, discard)",
}
#: Approaches that keep within the rate limit by themselves (or wait out its 429s one at a time).
PACED = ["sequential", "ledgerlink"]

#: Two rate limits: one with room for a fast read, and one as tight as measured at Tripletex
#: (about 100 requests per 10 seconds), where the limit, not the client, sets the pace.
SCENARIOS = {"roomy": (1000, 60.0), "tight": (100, 10.0)}


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
    """Latency, and a fresh rate-limit period with fresh counters, before each run."""
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
# The approaches (each runs in a child process)
# ------------------------------------------------------------------------------------------------
def fingerprint(rows: Any) -> str:
    """Which rows were read, whatever the order: count, sum of ids, sum of amounts in cents."""
    count = ids = cents = 0
    for row in rows:
        count += 1
        ids += row["id"]
        cents += round(row["amount"] * 100)
    return f"{count}:{ids}:{cents}"


def _session_client(url: str, in_flight: int = 1) -> httpx.Client:
    """An httpx client holding a fresh session token, as a client library would create it."""
    credentials = httpx.get(url + "/_sandbox/tripletex/credentials").json()
    client = httpx.Client(
        base_url=url + "/tripletex/v2",
        timeout=60,
        limits=httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight),
    )
    session = client.put(
        "/token/session/:create",
        params={
            "consumerToken": credentials["consumer_token"],
            "employeeToken": credentials["employee_token"],
            "expirationDate": "2099-01-01",
        },
    ).json()["value"]["token"]
    client.auth = ("0", session)
    return client


def _get_page(client: httpx.Client, start: int, page_size: int) -> tuple[httpx.Response, int]:
    """One page of the whole history; a 429 waited out. Returns the response and the 429s met."""
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
        if response.status_code != 429:
            response.raise_for_status()
            return response, throttled
        throttled += 1
        time.sleep(float(response.headers.get("X-Rate-Limit-Reset") or 1))


def sequential(args: argparse.Namespace) -> dict[str, Any]:
    client = _session_client(args.url)
    rows: list[dict[str, Any]] = []
    start = throttled = 0
    while True:
        response, waited = _get_page(client, start, args.page_size)
        throttled += waited
        page = response.json()["values"]
        rows.extend(page)
        if len(page) < args.page_size:
            break
        start += args.page_size
    client.close()
    return {"rows": len(rows), "fingerprint": fingerprint(rows), "client_429": throttled}


def _connection(url: str) -> None:
    from airflow_provider_ledgerlink.sandbox.tripletex import tripletex_connection_definition

    definition = tripletex_connection_definition(url + "/tripletex", credential_store="none")
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(definition)


def ledgerlink(args: argparse.Namespace) -> dict[str, Any]:
    from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook

    _connection(args.url)
    hook = TripletexHook(
        CONN_ID, page_size=args.page_size, max_in_flight=args.in_flight, rate_limit_reserve=args.reserve
    )
    try:
        rows = hook.get_all("/ledger/posting", window=WINDOW, sorting="id")
        if args.keep_rows:
            rows = list(rows)  # type: ignore[assignment]
        found = fingerprint(rows)
    finally:
        hook.close()
    stats = hook.limiter.stats
    return {
        "rows": int(found.split(":")[0]),
        "fingerprint": found,
        "client_429": stats.throttled,
        "waited_seconds": round(stats.waited_seconds, 2),
    }


def _files_fingerprint(folder: Path) -> str:
    import gzip

    def rows() -> Any:
        for part in sorted(folder.rglob("*.jsonl.gz")):
            with gzip.open(part, "rt") as handle:
                for line in handle:
                    yield json.loads(line)

    return fingerprint(rows())


def prepare_ledgerlink_extract(args: argparse.Namespace, workdir: Path) -> harness.Runner:
    from airflow_provider_ledgerlink.operators.tripletex import TripletexExtractOperator

    _connection(args.url)
    lake = workdir / "lake"
    operator = TripletexExtractOperator(
        task_id="extract_postings",
        resource="postings",
        incremental=False,
        full_load_start=WINDOW[0].isoformat(),
        destination=str(lake),
        page_size=args.page_size,
        max_in_flight=args.in_flight,
        rate_limit_reserve=args.reserve,
        tripletex_conn_id=CONN_ID,
    )

    def run() -> Any:
        summary = operator.execute({})  # type: ignore[arg-type]
        # The files are read back after the measurement.
        return lambda: {"rows": int(summary["rows"]), "fingerprint": _files_fingerprint(lake)}

    return run


_COUNT = re.compile(rb'"count":(\d+)')


def prepare_ceiling(args: argparse.Namespace, workdir: Path, *, write: bool) -> harness.Runner:
    import gzip
    from concurrent.futures import ThreadPoolExecutor

    import msgspec

    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()
    # Every full page of the history and the first short one, as a paging client needs them.
    offsets = range(0, (args.rows // args.page_size + 1) * args.page_size, args.page_size)

    def run() -> dict[str, Any]:
        client = _session_client(args.url, args.in_flight)

        def fetch(start: int) -> tuple[Any, int]:
            response, waited = _get_page(client, start, args.page_size)
            if write:
                return decoder.decode(response.content)["values"], waited
            # The envelope's count, read from its first bytes: nothing is parsed.
            match = _COUNT.search(response.content, 0, 200)
            return int(match.group(1)) if match else 0, waited

        total = throttled = 0
        with ThreadPoolExecutor(max_workers=args.in_flight) as pool:
            if write:
                with gzip.open(
                    workdir / "ceiling.jsonl.gz", "wb", compresslevel=harness.CEILING_GZIP_LEVEL
                ) as out:
                    for rows, waited in pool.map(fetch, offsets):
                        if rows:
                            out.write(encoder.encode_lines(rows))
                        total += len(rows)
                        throttled += waited
            else:
                for count, waited in pool.map(fetch, offsets):
                    total += count
                    throttled += waited
        client.close()
        return {"rows": total, "fingerprint": None, "client_429": throttled}

    return run


def run_child(args: argparse.Namespace) -> None:
    harness.import_task_runtime()
    import airflow_provider_ledgerlink.hooks.tripletex  # noqa: F401  # imported, as in a task

    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        workdir = Path(tmp)
        if args.child == "sequential":
            runner: harness.Runner = lambda: sequential(args)  # noqa: E731
        elif args.child == "ledgerlink":
            runner = lambda: ledgerlink(args)  # noqa: E731
        elif args.child == "ledgerlink_extract":
            runner = prepare_ledgerlink_extract(args, workdir)
        else:
            runner = prepare_ceiling(args, workdir, write=args.child == "cpu_fair_ceiling")
        result = harness.measure_here(runner)
    harness.write_result(args.result_file, {"approach": args.child, **result})


# ------------------------------------------------------------------------------------------------
# Running and reporting
# ------------------------------------------------------------------------------------------------
def child_command(approach: str, url: str, args: argparse.Namespace, result_file: Path) -> list[str]:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", approach, "--url", url,
        "--rows", str(args.rows), "--page-size", str(args.page_size), "--in-flight", str(args.in_flight),
        "--reserve", str(args.reserve), "--result-file", str(result_file),
    ]  # fmt: skip
    return [*command, "--keep-rows"] if args.keep_rows else command


def run_scenario(
    name: str, url: str, args: argparse.Namespace, sandbox_pid: int | None, workdir: Path
) -> list[dict[str, Any]]:
    limit, period = SCENARIOS[name]
    if args.scenario != "both":
        limit, period = args.rate_limit or limit, args.rate_period or period
    order = [
        a for a in APPROACHES if a in args.approaches and (name == "roomy" or a in args.tight_approaches)
    ]
    runs: list[dict[str, Any]] = []
    env = dict(os.environ, AIRFLOW_HOME=str(workdir / "airflow-home"), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    for number, approaches in enumerate(harness.rounds(order, args.repeat)):
        for approach in approaches:
            configure(url, latency_ms=args.latency_ms, limit=limit, period=period)
            result_file = workdir / "result.json"
            result = harness.run_child(
                child_command(approach, url, args, result_file),
                env,
                result_file,
                sandbox_pid=sandbox_pid,
                label=f"{approach} ({name})",
            )
            figures = sandbox_figures(url)
            result.update(
                round=number,
                scenario=name,
                limit=limit,
                period=period,
                requests=figures["requests"],
                rate_limited=figures["rate_limited"],
                min_remaining=figures["min_remaining"],
                max_in_flight=figures["max_in_flight"],
            )
            runs.append(result)
            print(
                f"  {name} round {number + 1} {approach:<19} {result['rows']:>9,} rows {result['seconds']:7.2f} s "
                f"CPU {result['cpu_seconds']:6.2f} s  sandbox {result['sandbox_cpu_seconds']:6.2f} s  "
                f"{result['requests']} requests, {result['rate_limited']} × 429, lowest remaining "
                f"{result['min_remaining']}",
                flush=True,
            )
    return runs


def _seconds(run: dict[str, Any]) -> float:
    return float(run["seconds"])


def table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| approach | rows | runs | wall s | rows/s | client CPU s | client CPU s per 1M rows | sandbox CPU s "
        "| × sequential | of CPU-fair ceiling | of raw ceiling | requests | 429s | lowest remaining "
        "| peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for approach, label in APPROACHES.items():
        mine = [r for r in runs if r["approach"] == approach]
        if not mine:
            continue

        def speed_vs(other: str, approach: str = approach) -> harness.Spread:
            if other == approach:
                return harness.Spread.of([])
            return harness.paired_ratios(runs, other, approach, key=_seconds)

        seconds = harness.Spread.of(r["seconds"] for r in mine)
        lines.append(
            f"| {label} | {mine[0]['rows']:,} | {len(mine)} | {seconds.text()} "
            f"| {harness.Spread.of(r['rows'] / r['seconds'] for r in mine).text(',.0f')} "
            f"| {harness.Spread.of(r['cpu_seconds'] for r in mine).text()} "
            f"| {harness.Spread.of(r['cpu_seconds'] * 1e6 / max(r['rows'], 1) for r in mine).text()} "
            f"| {harness.Spread.of(r['sandbox_cpu_seconds'] for r in mine).text()} "
            f"| {speed_vs('sequential').text('.2f', '×')} | {speed_vs('cpu_fair_ceiling').text('.0%')} "
            f"| {speed_vs('raw_ceiling').text('.0%')} | {max(r['requests'] for r in mine)} "
            f"| {max(r['rate_limited'] for r in mine)} | {min(r['min_remaining'] or 0 for r in mine)} "
            f"| {harness.Spread.of(r['peak_mb'] for r in mine).text('.1f')} |"
        )
    return lines


def verdicts(name: str, runs: list[dict[str, Any]], reserve: int) -> list[harness.Verdict]:
    found: list[harness.Verdict] = []
    ours = [r for r in runs if r["approach"] == "ledgerlink"]
    if not ours:
        return found
    if name == "roomy" and any(r["approach"] == "sequential" for r in runs):
        ratio = harness.paired_ratios(runs, "sequential", "ledgerlink", key=lambda r: r["seconds"])
        found.append(
            harness.Verdict(
                "LedgerLink get_all speed / sequential loop, roomy limit",
                ratio.text(".2f", "×"),
                f"≥ {TARGET_VS_SEQUENTIAL:.0f}×",
                ratio.median >= TARGET_VS_SEQUENTIAL,
            )
        )
    mine = [r for r in runs if r["approach"] in ("ledgerlink", "ledgerlink_extract")]
    throttled = max(r["rate_limited"] for r in mine)
    lowest = min(r["min_remaining"] or 0 for r in mine)
    found.append(
        harness.Verdict(f"LedgerLink 429s, {name} limit (most in a run)", str(throttled), "0", throttled == 0)
    )
    found.append(
        harness.Verdict(
            f"LedgerLink lowest X-Rate-Limit-Remaining, {name} limit",
            str(lowest),
            f"≥ {reserve} (the reserve)",
            lowest >= reserve,
        )
    )
    return found


def main(argv: Sequence[str] | None = None) -> int:
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
    parser.add_argument(
        "--in-flight", type=int, default=DEFAULT_IN_FLIGHT, help="pages at once (LedgerLink, both ceilings)"
    )
    parser.add_argument(
        "--keep-rows",
        action="store_true",
        help="LedgerLink get_all also keeps every row in a list, as the loop does",
    )
    parser.add_argument(
        "--approaches", nargs="+", choices=list(APPROACHES), default=list(APPROACHES), metavar="NAME"
    )
    parser.add_argument(
        "--tight-approaches",
        nargs="+",
        choices=list(APPROACHES),
        default=PACED,
        metavar="NAME",
        help="approaches run with the tight limit (default: sequential ledgerlink)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds, each running every approach once (default 3)"
    )
    parser.add_argument("--markdown", action="store_true", help="print a section for docs/benchmarks.md")
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    parser.add_argument("--child", choices=list(APPROACHES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeat = max(1, args.repeat)
    if args.child:
        run_child(args)
        return 0

    load_before = harness.one_minute_load()
    machine = harness.machine_description()
    calibration_start = harness.calibrate()
    print(
        f"Machine: {machine['CPU']}, {machine['cores']}; calibration {harness.calibration_text(calibration_start)}"
    )
    names = list(SCENARIOS) if args.scenario == "both" else [args.scenario]
    outcome = 0
    sections: list[str] = []
    all_verdicts: list[harness.Verdict] = []
    sandbox = SandboxProcess(args.rows)
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp, sandbox as url:
        for name in names:
            runs = run_scenario(name, url, args, sandbox.pid, Path(tmp))
            prints = {r["fingerprint"] for r in runs if r["fingerprint"] is not None}
            counts = {r["rows"] for r in runs}
            if len(prints) > 1 or len(counts) > 1:
                print(
                    f"The approaches read different rows: {sorted(prints)} {sorted(counts)}", file=sys.stderr
                )
                outcome = 1
            limit, period = runs[0]["limit"], runs[0]["period"]
            setting = (
                f"**{name}**: {args.rows:,} postings, {args.latency_ms} ms latency, rate limit {limit} "
                f"requests per {period:g} s, reserve {args.reserve}, pages of {args.page_size}, "
                f"{args.in_flight} in flight, {args.repeat} rounds"
                + (", get_all keeping its rows in a list" if args.keep_rows else "")
            )
            found = verdicts(name, runs, args.reserve)
            all_verdicts += found
            sections.append("\n".join([setting, "", *table(runs), "", harness.verdict_table(found)]))
    calibration_end = harness.calibrate()
    print()
    print("\n\n".join(sections))
    print()
    print(harness.verdict_lines(all_verdicts))
    note = harness.busy_note(load_before)
    command = shlex.join([".venv/bin/python", "benchmarks/tripletex_postings.py", *(argv or sys.argv[1:])])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## {SECTION_TITLE}\n\n{DOC_INTRO}\n"
        + (f"\n> {note}\n" if note else "")
        + "\n"
        + "\n\n".join(sections)
        + f"\n\nMeasured {when} with:\n\n```\n{command}\n```\n\n"
        + harness.machine_lines(machine, calibration_start, calibration_end)
        + "\n"
    )
    if args.markdown:
        print("\n" + section)
    if args.out:
        harness.write_section(args.out, SECTION_TITLE, section)
        print(f"Wrote the '{SECTION_TITLE}' section of {args.out}")
    return outcome


DOC_INTRO = """\
All postings of the sandbox's 60-day history, read from the Tripletex emulator in a process of its own
with latency added to every request and Tripletex's rate limit switched on; pages in id order, each
run in a fresh process. **sequential**: one `from`/`count` request after the other with httpx, rows
kept in a list, a 429 waited out for `X-Rate-Limit-Reset`. **LedgerLink TripletexHook.get_all**:
31-day windows, several pages in flight, paced on the rate-limit headers with a reserve, rows streamed.
**LedgerLink TripletexExtractOperator**: a full load of `postings` written as gzip JSON Lines with a
manifest. **CPU-fair ceiling**: the same pages fetched as many at a time, parsed with msgspec and
written as gzip JSON Lines (level 1), nothing else (no pacing, no windows). **raw ceiling**: the same
pages fetched and thrown away. The sequential loop, get_all and the extract read the same rows (count,
sum of ids and of amounts compared). Rounds run every approach once in a rotated order; figures are
medians with min–max, ratios are taken within a round. "Lowest remaining" is the lowest
`X-Rate-Limit-Remaining` Tripletex reported; with the tight limit only the approaches that pace
themselves run."""


if __name__ == "__main__":
    sys.exit(main())
