"""Extracting one AFAS GetConnector five ways, against the sandbox, for time, CPU and memory.

    .venv/bin/python benchmarks/afas_extract.py --rows 200000 1000000 --latency-ms 20 --repeat 5 \\
        --out docs/benchmarks.md

The sandbox runs in a process of its own, so its CPU and memory are not counted as the client's
(they are reported beside it). Every approach reads ``Profit_Transactions`` as a full load with the
same page size and ordering, in a fresh subprocess of its own, so each one's memory is its own:

``ledgerlink``
    ``AfasExtractOperator.execute()``: pages requested 5 at a time, datetimes converted, rows
    written as gzip JSON Lines with a manifest (the operator's defaults).
``sequential``
    The loop AFAS client libraries use: one request at a time, ``rows.extend(page)``.
``http_operator``
    Airflow's ``HttpOperator`` with a ``pagination_function`` that returns the next ``skip``; its
    result is the list of page bodies it keeps in memory until the end (what it pushes to XCom).
``cpu_fair_ceiling``
    The least program doing the same job at the same concurrency: the pages fetched 5 at a time with
    httpx, parsed, and written in order as gzip JSON Lines (msgspec, gzip level 1), nothing else.
    LedgerLink's overhead is the gap to this one.
``raw_ceiling``
    The same pages fetched 5 at a time with httpx and thrown away unparsed: the most any client
    can get out of this server at this concurrency.

The runs are interleaved: round ``r`` runs every approach once, the order rotated by one each
round, so a slow minute of the machine falls on every approach alike; ratios are taken between runs
of the same round. The machine's speed is timed with a fixed workload at the start and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness

CONNECTOR = "Profit_Transactions"
ORDER_BY = "UnitId,EntryNo,SeqNo"
AFAS_PATH = "/afas/ProfitRestServices"
LEDGERLINK_CONN_ID = "afas_benchmark"
HTTP_CONN_ID = "afas_benchmark_http"
SECTION_TITLE = "AFAS Profit extract"

APPROACHES: dict[str, str] = {
    "ledgerlink": "LedgerLink AfasExtractOperator",
    "sequential": "sequential skip/take loop",
    "http_operator": "HttpOperator + pagination_function",
    "cpu_fair_ceiling": "CPU-fair ceiling (fetch, parse, write)",
    "raw_ceiling": "raw ceiling (fetch, discard)",
}

#: The targets the figures are judged against.
TARGET_CPU_PER_MILLION = 7.0  # client CPU seconds per 1,000,000 rows
TARGET_VS_CPU_FAIR = 0.90  # share of the CPU-fair ceiling's speed
TARGET_VS_SEQUENTIAL = 3.0  # at 20 ms latency
TARGET_LATENCY_MS = 20
TARGET_MEMORY_MB = 50.0  # peak RSS at the largest size minus at the smallest


# ------------------------------------------------------------------------------------------------
# The approaches (each runs in a child process)
# ------------------------------------------------------------------------------------------------
@dataclass
class Job:
    url: str
    rows: int
    page_size: int
    in_flight: int


def _afas_header() -> str:
    """The sandbox's ``AfasToken …`` header (its token for seed 42, the CLI's default)."""
    from airflow_provider_ledgerlink.sandbox.afas import afas_authorization_header, sandbox_afas_token

    return afas_authorization_header(sandbox_afas_token(42))


def _count_rows_in_body(body: bytes) -> int:
    # A byte count, not a parse: every Profit_Transactions row starts with its UnitId.
    return body.count(b'{"UnitId":')


def _page_offsets(job: Job) -> range:
    """The pages any paging client needs: every full page and the first short (here empty) one."""
    return range(0, (job.rows // job.page_size + 1) * job.page_size, job.page_size)


def _parallel_client(job: Job) -> Any:
    import httpx

    return httpx.Client(
        base_url=job.url + AFAS_PATH,
        headers={"Authorization": _afas_header(), "Accept": "application/json"},
        limits=httpx.Limits(max_connections=job.in_flight, max_keepalive_connections=job.in_flight),
        timeout=60,
    )


def prepare_ledgerlink(job: Job, workdir: Path) -> harness.Runner:
    from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator

    operator = AfasExtractOperator(
        task_id="extract_profit_transactions",
        connector_id=CONNECTOR,
        destination=str(workdir / "lake"),
        incremental=False,
        page_size=job.page_size,
        max_in_flight=job.in_flight,
        afas_conn_id=LEDGERLINK_CONN_ID,
    )

    def run() -> dict[str, Any]:
        summary = operator.execute({})  # type: ignore[arg-type]
        return {"rows": int(summary["rows"])}

    return run


def prepare_sequential(job: Job, workdir: Path) -> harness.Runner:
    import httpx

    header = _afas_header()

    def run() -> dict[str, Any]:
        client = httpx.Client(
            base_url=job.url + AFAS_PATH,
            headers={"Authorization": header, "Accept": "application/json"},
            timeout=60,
        )
        rows: list[dict[str, Any]] = []
        skip = 0
        while True:
            response = client.get(
                f"/connectors/{CONNECTOR}",
                params={"skip": skip, "take": job.page_size, "orderbyfieldids": ORDER_BY},
            )
            response.raise_for_status()
            page = response.json()["rows"]
            rows.extend(page)
            if len(page) < job.page_size:
                break
            skip += job.page_size
        client.close()
        return {"rows": len(rows)}

    return run


def prepare_http_operator(job: Job, workdir: Path) -> harness.Runner:
    from airflow.providers.http.operators.http import HttpOperator

    take = job.page_size

    def next_page(response: Any) -> dict[str, Any] | None:
        body = response.json()
        if len(body["rows"]) < take:
            return None
        return {"data": {"skip": body["skip"] + take}}

    operator = HttpOperator(
        task_id="extract_profit_transactions",
        http_conn_id=HTTP_CONN_ID,
        method="GET",
        endpoint=f"{AFAS_PATH.lstrip('/')}/connectors/{CONNECTOR}",
        data={"skip": 0, "take": take, "orderbyfieldids": ORDER_BY},
        pagination_function=next_page,
        extra_options={"timeout": 60},
    )

    def run() -> Callable[[], dict[str, Any]]:
        bodies: list[str] = operator.execute({})  # type: ignore[arg-type]
        # Counted after the measurement, so counting costs the operator nothing.
        return lambda: {"rows": sum(_count_rows_in_body(body.encode()) for body in bodies)}

    return run


def prepare_cpu_fair_ceiling(job: Job, workdir: Path) -> harness.Runner:
    import gzip
    from concurrent.futures import ThreadPoolExecutor

    import msgspec

    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()
    target = workdir / "ceiling.jsonl.gz"

    def run() -> dict[str, Any]:
        client = _parallel_client(job)

        def fetch(skip: int) -> list[Any]:
            response = client.get(
                f"/connectors/{CONNECTOR}",
                params={"skip": skip, "take": job.page_size, "orderbyfieldids": ORDER_BY},
            )
            response.raise_for_status()
            return decoder.decode(response.content)["rows"]  # type: ignore[no-any-return]

        total = 0
        with (
            ThreadPoolExecutor(max_workers=job.in_flight) as pool,
            gzip.open(target, "wb", compresslevel=harness.CEILING_GZIP_LEVEL) as out,
        ):
            for rows in pool.map(fetch, _page_offsets(job)):  # in page order, in_flight ahead
                if rows:
                    out.write(encoder.encode_lines(rows))
                total += len(rows)
        client.close()
        return {"rows": total}

    return run


def prepare_raw_ceiling(job: Job, workdir: Path) -> harness.Runner:
    from concurrent.futures import ThreadPoolExecutor

    def run() -> dict[str, Any]:
        client = _parallel_client(job)

        def fetch(skip: int) -> int:
            response = client.get(
                f"/connectors/{CONNECTOR}",
                params={"skip": skip, "take": job.page_size, "orderbyfieldids": ORDER_BY},
            )
            response.raise_for_status()
            return _count_rows_in_body(response.content)

        with ThreadPoolExecutor(max_workers=job.in_flight) as pool:
            total = sum(pool.map(fetch, _page_offsets(job)))
        client.close()
        return {"rows": total}

    return run


PREPARE: dict[str, Callable[[Job, Path], harness.Runner]] = {
    "ledgerlink": prepare_ledgerlink,
    "sequential": prepare_sequential,
    "http_operator": prepare_http_operator,
    "cpu_fair_ceiling": prepare_cpu_fair_ceiling,
    "raw_ceiling": prepare_raw_ceiling,
}


def run_child(approach: str, job: Job, result_file: Path) -> None:
    """Run one approach in this (fresh) process and write its figures to ``result_file``."""
    harness.import_task_runtime()
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        result = harness.measure_here(PREPARE[approach](job, Path(tmp)))
    harness.write_result(result_file, {"approach": approach, **result})


# ------------------------------------------------------------------------------------------------
# The sandbox and the child environment
# ------------------------------------------------------------------------------------------------
def warm_up(url: str, page_size: int) -> None:
    """A few requests, so no approach pays for the server's first calls."""
    import httpx

    headers = {"Authorization": _afas_header()}
    with httpx.Client(base_url=url + AFAS_PATH, headers=headers, timeout=60) as client:
        for skip in range(0, 5 * page_size, page_size):
            client.get(
                f"/connectors/{CONNECTOR}",
                params={"skip": skip, "take": page_size, "orderbyfieldids": ORDER_BY},
            ).raise_for_status()


def child_environment(url: str, airflow_home: Path) -> dict[str, str]:
    from urllib.parse import urlsplit

    from airflow_provider_ledgerlink.sandbox.connections import sandbox_connections

    address = urlsplit(url)
    ledgerlink = sandbox_connections(url)["afas_default"]
    # Outside a task the default (Variable) credential store would be read through Airflow's ORM, a
    # one-off import of about half a second that a task, which asks the Execution API, never pays.
    ledgerlink["extra"]["credential_store"] = "none"
    http = {
        "conn_type": "http",
        "host": address.hostname,
        "port": address.port,
        "schema": address.scheme,
        # HttpHook sends every extra key as a request header.
        "extra": {"Authorization": _afas_header(), "Accept": "application/json"},
    }
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            f"AIRFLOW_CONN_{LEDGERLINK_CONN_ID.upper()}": json.dumps(ledgerlink),
            f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": json.dumps(http),
        }
    )
    return env


def child_command(approach: str, job: Job, result_file: Path) -> list[str]:
    return [
        sys.executable, str(Path(__file__).resolve()), "--child", approach, "--url", job.url,
        "--rows", str(job.rows), "--page-size", str(job.page_size), "--in-flight", str(job.in_flight),
        "--result-file", str(result_file),
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Summaries, targets and the report
# ------------------------------------------------------------------------------------------------
@dataclass
class Summary:
    """One approach at one size, over its runs."""

    approach: str
    rows: int
    runs: int
    seconds: harness.Spread
    cpu: harness.Spread
    cpu_per_million: harness.Spread
    sandbox_cpu: harness.Spread
    peak_mb: harness.Spread
    growth_mb: harness.Spread
    vs_sequential: harness.Spread
    vs_cpu_fair: harness.Spread
    vs_raw: harness.Spread


def _speed_vs(runs: list[dict[str, Any]], approach: str, other: str) -> harness.Spread:
    """How fast ``approach`` was against ``other``, run by run in the same round: other's seconds /
    this one's (2.0: twice as fast)."""
    if approach == other:
        return harness.Spread.of([])
    return harness.paired_ratios(runs, other, approach, key=lambda r: r["seconds"])


def summarize(rows: int, runs: list[dict[str, Any]]) -> dict[str, Summary]:
    found: dict[str, Summary] = {}
    for approach in APPROACHES:
        mine = [r for r in runs if r["approach"] == approach]
        if not mine:
            continue
        found[approach] = Summary(
            approach=approach,
            rows=int(statistics.median(r["rows"] for r in mine)),
            runs=len(mine),
            seconds=harness.Spread.of(r["seconds"] for r in mine),
            cpu=harness.Spread.of(r["cpu_seconds"] for r in mine),
            cpu_per_million=harness.Spread.of(r["cpu_seconds"] * 1e6 / max(r["rows"], 1) for r in mine),
            sandbox_cpu=harness.Spread.of(r["sandbox_cpu_seconds"] for r in mine),
            peak_mb=harness.Spread.of(r["peak_mb"] for r in mine),
            growth_mb=harness.Spread.of(r["growth_mb"] for r in mine),
            vs_sequential=_speed_vs(runs, approach, "sequential"),
            vs_cpu_fair=_speed_vs(runs, approach, "cpu_fair_ceiling"),
            vs_raw=_speed_vs(runs, approach, "raw_ceiling"),
        )
    return found


def verdicts(results: dict[int, dict[str, Summary]], latency_ms: int) -> list[harness.Verdict]:
    found: list[harness.Verdict] = []
    for rows, by in results.items():
        ours = by.get("ledgerlink")
        if ours is None:
            continue
        found.append(
            harness.Verdict(
                f"LedgerLink client CPU per 1M rows, {rows:,} rows",
                ours.cpu_per_million.text(".2f", " s"),
                f"≤ {TARGET_CPU_PER_MILLION:.0f} s",
                ours.cpu_per_million.median <= TARGET_CPU_PER_MILLION,
            )
        )
        if "cpu_fair_ceiling" in by:
            found.append(
                harness.Verdict(
                    f"LedgerLink speed / CPU-fair ceiling, {rows:,} rows",
                    ours.vs_cpu_fair.text(".1%"),
                    f"≥ {TARGET_VS_CPU_FAIR:.0%}",
                    ours.vs_cpu_fair.median >= TARGET_VS_CPU_FAIR,
                )
            )
        if "sequential" in by:
            judged = latency_ms == TARGET_LATENCY_MS
            found.append(
                harness.Verdict(
                    f"LedgerLink speed / sequential loop, {rows:,} rows, {latency_ms} ms latency",
                    ours.vs_sequential.text(".2f", "×"),
                    f"≥ {TARGET_VS_SEQUENTIAL:.0f}× at {TARGET_LATENCY_MS} ms",
                    ours.vs_sequential.median >= TARGET_VS_SEQUENTIAL if judged else None,
                )
            )
    sizes = sorted(rows for rows, by in results.items() if "ledgerlink" in by)
    if len(sizes) >= 2:
        small, large = results[sizes[0]]["ledgerlink"], results[sizes[-1]]["ledgerlink"]
        peak = large.peak_mb.median - small.peak_mb.median
        worst = large.peak_mb.high - small.peak_mb.low
        found.append(
            harness.Verdict(
                f"LedgerLink peak RSS, {sizes[-1]:,} minus {sizes[0]:,} rows",
                f"{peak:+.1f} MB (largest minus smallest run {worst:+.1f} MB)",
                f"≤ {TARGET_MEMORY_MB:.0f} MB",
                peak <= TARGET_MEMORY_MB,
            )
        )
    return found


def results_table(results: dict[int, dict[str, Summary]]) -> str:
    lines = [
        "| approach | rows | runs | wall s | client CPU s | client CPU s per 1M rows | sandbox CPU s "
        "| × sequential | of CPU-fair ceiling | of raw ceiling | peak RSS MB | RSS growth MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for by in results.values():
        for s in by.values():
            lines.append(
                f"| {APPROACHES[s.approach]} | {s.rows:,} | {s.runs} | {s.seconds.text()} | {s.cpu.text()} "
                f"| {s.cpu_per_million.text()} | {s.sandbox_cpu.text()} | {s.vs_sequential.text('.2f', '×')} "
                f"| {s.vs_cpu_fair.text('.0%')} | {s.vs_raw.text('.0%')} | {s.peak_mb.text('.1f')} "
                f"| {s.growth_mb.text('.1f')} |"
            )
    return "\n".join(lines)


def section_markdown(
    results: dict[int, dict[str, Summary]],
    found: list[harness.Verdict],
    machine: str,
    command: str,
    args: argparse.Namespace,
    busy_note: str,
) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    note = f"\n> {busy_note}\n" if busy_note else ""
    return f"""## {SECTION_TITLE}

`{CONNECTOR}` read in full from the sandbox's AFAS emulator, which runs in a process of its own
with {args.latency_ms} ms added to every request. Every approach asks for {args.page_size} rows per
page in the same order (`{ORDER_BY}`) and runs in a fresh process:

- **LedgerLink AfasExtractOperator**: `execute()` with its defaults: {args.in_flight} pages in
  flight, datetimes converted to UTC, gzip JSON Lines and a manifest written to a local folder. The
  connection's credential store is `none`: outside a task the default Variable store would be read
  through Airflow's ORM, a one-off import of about half a second a task never pays (it asks the
  Execution API).
- **sequential skip/take loop**: one request at a time with httpx, `rows.extend(page)`, as AFAS
  client libraries do.
- **HttpOperator + pagination_function**: apache-airflow-providers-http's `HttpOperator` (GET,
  `data` holding `skip`/`take`, the `AfasToken` header in the connection's extra) with a pagination
  function returning the next `skip` until a short page; its result is the list of page bodies.
- **CPU-fair ceiling (fetch, parse, write)**: the same pages fetched {args.in_flight} at a time with
  httpx, parsed with msgspec and written in order as gzip JSON Lines (level
  {harness.CEILING_GZIP_LEVEL}, LedgerLink's default): the same job with nothing else (no datetime
  conversion, no manifest, no retries). LedgerLink's overhead is its distance to this one.
- **raw ceiling (fetch, discard)**: the same pages fetched {args.in_flight} at a time with httpx
  and thrown away unparsed; no client can do better against this server at this concurrency.

{args.repeat} rounds per size; each round runs every approach once, the order rotated by one per
round, so a slow spell of the machine falls on all of them alike. Figures are medians with the
min–max over the rounds in brackets; the ratios (× sequential, share of each ceiling's speed) are
taken between runs of the same round. Wall time includes creating the HTTP client. Client CPU is the
user + system time of the approach's process during the extract, sandbox CPU the emulator's over
the child's life: on two cores they compete, so CPU per row is the steadier figure. Peak RSS is the
process's high-water mark after its imports (what a task process has loaded: Airflow's supervisor
and task runner); RSS growth is that peak minus the RSS just before the extract began.
{note}
{results_table(results)}

Targets:

{harness.verdict_table(found)}

Measured {when} with:

```
{command}
```

{machine}
"""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])

    def even_rows(text: str) -> int:
        value = int(text.replace("_", ""))
        if value < 1 or value % 2:
            # The emulator generates Profit_Transactions in debit/credit pairs.
            raise argparse.ArgumentTypeError("row counts must be positive and even")
        return value

    parser.add_argument("--rows", type=even_rows, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--latency-ms", type=int, default=20, help="added to every request (default 20)")
    parser.add_argument("--page-size", type=int, default=1000, help="rows per request for all approaches")
    parser.add_argument(
        "--in-flight", type=int, default=5, help="concurrent requests (LedgerLink, both ceilings)"
    )
    parser.add_argument(
        "--approaches", nargs="+", choices=list(APPROACHES), default=list(APPROACHES), metavar="NAME"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds, each running every approach once (default 3)"
    )
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    # Used by the script to run one approach in a child process.
    parser.add_argument("--child", choices=list(APPROACHES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeat = max(1, args.repeat)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        job = Job(url=args.url, rows=args.rows[0], page_size=args.page_size, in_flight=args.in_flight)
        run_child(args.child, job, args.result_file)
        return 0

    load_before = harness.one_minute_load()
    machine = harness.machine_description(["apache-airflow-providers-http"])
    calibration_start = harness.calibrate()
    print("Machine:")
    for key, value in machine.items():
        print(f"  {key}: {value}")
    print(f"  calibration: {harness.calibration_text(calibration_start)}")
    command = shlex.join([".venv/bin/python", "benchmarks/afas_extract.py", *sys.argv[1:]])
    order = [a for a in APPROACHES if a in args.approaches]
    results: dict[int, dict[str, Summary]] = {}
    all_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        workdir = Path(tmp)
        airflow_home = workdir / "airflow-home"
        airflow_home.mkdir()
        for rows in args.rows:
            print(f"\n{CONNECTOR}: {rows:,} rows, {args.page_size} per page, {args.latency_ms} ms latency")
            sandbox_args = ["--latency-ms", str(args.latency_ms), "--afas-rows", f"{CONNECTOR}={rows}"]
            runs: list[dict[str, Any]] = []
            with harness.SandboxProcess(sandbox_args, workdir, f"sandbox-{rows}") as sandbox:
                warm_up(sandbox.url, args.page_size)
                env = child_environment(sandbox.url, airflow_home)
                job = Job(url=sandbox.url, rows=rows, page_size=args.page_size, in_flight=args.in_flight)
                for number, approaches in enumerate(harness.rounds(order, args.repeat)):
                    for approach in approaches:
                        result_file = workdir / "result.json"
                        result = harness.run_child(
                            child_command(approach, job, result_file),
                            env,
                            result_file,
                            sandbox_pid=sandbox.pid,
                            label=f"{approach} at {rows:,} rows",
                        )
                        result.update(round=number, expected=rows)
                        runs.append(result)
                        print(
                            f"  round {number + 1} {approach:<17} {result['rows']:>10,} rows "
                            f"{result['seconds']:7.2f} s  CPU {result['cpu_seconds']:6.2f} s  "
                            f"sandbox {result['sandbox_cpu_seconds']:6.2f} s  peak {result['peak_mb']:7.1f} MB",
                            flush=True,
                        )
            results[rows] = summarize(rows, runs)
            all_runs.extend(runs)
    calibration_end = harness.calibrate()

    found = verdicts(results, args.latency_ms)
    print()
    print(results_table(results))
    print()
    print(harness.verdict_lines(found))
    print(f"\nCalibration: {harness.calibration_text(calibration_start, calibration_end)}")

    wrong = [
        f"{r['approach']} read {r['rows']:,} rows of {r['expected']:,} (round {r['round'] + 1})"
        for r in all_runs
        if r["rows"] != r["expected"]
    ]
    if wrong:
        print("\nROW COUNTS DIFFER: " + "; ".join(wrong), file=sys.stderr)
        return 1
    print("\nEvery approach read every row.")
    note = harness.busy_note(load_before)
    if note:
        print(f"\n{note}")
    if args.out:
        described = harness.machine_lines(machine, calibration_start, calibration_end)
        harness.write_section(
            args.out, SECTION_TITLE, section_markdown(results, found, described, command, args, note)
        )
        print(f"Wrote the '{SECTION_TITLE}' section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
