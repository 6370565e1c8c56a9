"""Extracting Alasco contracts and invoices five ways, against the sandbox, for time, CPU and memory.

    .venv/bin/python benchmarks/alasco_extract.py --invoices 100000 --contracts 20000 \\
        --latency-ms 20 --repeat 3 --out docs/benchmarks.md

The sandbox runs in a process of its own (``python -m airflow_provider_ledgerlink.sandbox``), so
its CPU and memory are not the client's (its CPU is reported beside it); it adds ``--latency-ms`` to
every request, as a network would. Each approach reads every object of the resource, in a fresh
subprocess of its own, so each one's memory is measured alone:

``ledgerlink``
    ``AlascoExtractOperator.execute()``, a full load: the read is split on ``date_created`` into
    ``--partitions`` slices, each its own cursor chain, ``--in-flight`` chains at once; rows are
    flattened and written as gzip JSON Lines with a manifest.
``ledgerlink_one_chain``
    The same operator with one slice and one chain: what the splitting is worth.
``sequential``
    The loop Alasco client libraries use: follow ``links.next`` one request at a time and
    ``rows.extend(page["data"])``.
``cpu_fair_ceiling``
    The least program doing the sliced extract's job: the operator's own slices (planned from the
    first page, as the operator does), ``--in-flight`` chains at once with httpx, each page parsed
    with msgspec, the objects a slice owns written as gzip JSON Lines (one file per slice, level 1).
    No flattening, no manifest, no retries.
``raw_ceiling``
    The same chains, each page parsed only to follow ``links.next`` and count what the slice owns,
    then thrown away. (A cursor cannot be followed without reading the page.)

Alasco serves 100 objects per page and no page-size parameter, so every approach makes the same
number of requests per chain. The runs are interleaved: round ``r`` runs every approach once, the
order rotated by one each round; figures are medians with their min–max, ratios are taken between
runs of the same round. Peak RSS is the kernel's high-water mark after the imports (what a task
process has loaded); growth is that peak minus the RSS just before the extract.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness

SECTION_TITLE = "Alasco contracts and invoices extract"
CONN_ID = "alasco_benchmark"
APPROACHES: dict[str, str] = {
    "ledgerlink": "LedgerLink AlascoExtractOperator (sliced, parallel chains)",
    "ledgerlink_one_chain": "LedgerLink AlascoExtractOperator (one chain)",
    "sequential": "sequential links.next loop",
    "cpu_fair_ceiling": "CPU-fair ceiling (fetch, parse, write; same slices)",
    "raw_ceiling": "raw ceiling (fetch, follow the cursor, discard; same slices)",
}


# ------------------------------------------------------------------------------------------------
# The approaches, each run in a child process
# ------------------------------------------------------------------------------------------------
def _operator(resource: str, workdir: Path, partitions: int, in_flight: int) -> Any:
    from airflow_provider_ledgerlink.operators.alasco import AlascoExtractOperator

    return AlascoExtractOperator(
        task_id=f"extract_{resource}",
        resource=resource,
        incremental=False,
        destination=str(workdir / "lake"),
        partitions=partitions,
        max_in_flight=in_flight,
        alasco_conn_id=CONN_ID,
    )


def _operator_runner(resource: str, workdir: Path, partitions: int, in_flight: int) -> harness.Runner:
    operator = _operator(resource, workdir, partitions, in_flight)
    return lambda: {"rows": int(operator.execute({})["rows"])}  # type: ignore[arg-type]


def _headers() -> dict[str, str]:
    from airflow_provider_ledgerlink.sandbox.alasco import sandbox_alasco_api_key, sandbox_alasco_api_token

    return {"X-API-KEY": sandbox_alasco_api_key(42), "X-API-TOKEN": sandbox_alasco_api_token(42)}


def _sequential_runner(resource: str, url: str) -> harness.Runner:
    import httpx

    client = httpx.Client(headers=_headers(), timeout=60, follow_redirects=True)

    def run() -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        next_url: str | None = f"{url}/alasco/fincon/v1/{resource}/"
        while next_url:
            response = client.get(next_url)
            response.raise_for_status()
            page = response.json()
            rows.extend(page["data"])
            next_url = (page.get("links") or {}).get("next")
        client.close()
        return {"rows": len(rows)}

    return run


def _ceiling_runner(args: argparse.Namespace, workdir: Path, *, write: bool) -> harness.Runner:
    import gzip
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urljoin

    import httpx
    import msgspec

    from airflow_provider_ledgerlink.protocol.alasco import (
        build_query,
        resource_path,
        slice_filters,
        slice_owner,
    )

    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()
    operator = _operator(args.resource, workdir, args.partitions, args.in_flight)
    base = f"{args.url}/alasco/fincon/v1{resource_path(args.resource)}"

    def run() -> dict[str, Any]:
        parts = operator.slices(None)  # the operator's plan: costs it (and this) the first page
        client = httpx.Client(
            headers=_headers(),
            timeout=60,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight),
        )

        def chain(index: int) -> int:
            part = parts[index]
            bounded = part.start is not None or part.end is not None
            owns = slice_owner("date_created", part) if bounded else (lambda item: True)
            query = build_query(slice_filters("date_created", part)) if bounded else ""
            url: str | None = base + (f"?{query}" if query else "")
            count = 0
            with (
                gzip.open(workdir / f"part-{index}.jsonl.gz", "wb", compresslevel=harness.CEILING_GZIP_LEVEL)
                if write
                else open(os.devnull, "wb") as out
            ):
                while url:
                    response = client.get(url)
                    response.raise_for_status()
                    document = decoder.decode(response.content)
                    kept = [item for item in document["data"] if owns(item)]
                    if write and kept:
                        out.write(encoder.encode_lines(kept))
                    count += len(kept)
                    following = (document.get("links") or {}).get("next")
                    url = urljoin(url, following) if following else None
            return count

        with ThreadPoolExecutor(max_workers=args.in_flight) as pool:
            total = sum(pool.map(chain, range(len(parts))))
        client.close()
        return {"rows": total}

    return run


def run_child(args: argparse.Namespace) -> None:
    harness.import_task_runtime()
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        workdir = Path(tmp)
        if args.child == "sequential":
            run = _sequential_runner(args.resource, args.url)
        elif args.child in ("cpu_fair_ceiling", "raw_ceiling"):
            run = _ceiling_runner(args, workdir, write=args.child == "cpu_fair_ceiling")
        else:
            chains = args.in_flight if args.child == "ledgerlink" else 1
            parts = args.partitions if args.child == "ledgerlink" else 1
            run = _operator_runner(args.resource, workdir, parts, chains)
        result = harness.measure_here(run)
    harness.write_result(args.result_file, {"approach": args.child, **result})


# ------------------------------------------------------------------------------------------------
# The measurements and the report
# ------------------------------------------------------------------------------------------------
def sandbox_requests(url: str) -> int:
    import httpx

    return int(httpx.get(f"{url}/_sandbox/stats").json()["alasco"]["requests"])


def measure(
    approach: str,
    resource: str,
    url: str,
    env: dict[str, str],
    args: argparse.Namespace,
    workdir: Path,
    sandbox_pid: int | None,
) -> dict[str, Any]:
    import httpx

    httpx.post(f"{url}/_sandbox/reset")
    result_file = workdir / "result.json"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", approach, "--resource", resource, "--url", url,
        "--in-flight", str(args.in_flight), "--partitions", str(args.partitions), "--result-file", str(result_file),
    ]  # fmt: skip
    result = harness.run_child(
        command, env, result_file, sandbox_pid=sandbox_pid, label=f"{approach} on {resource}"
    )
    result.update(resource=resource, requests=sandbox_requests(url))
    return result


def _seconds(run: dict[str, Any]) -> float:
    return float(run["seconds"])


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| resource | approach | objects | runs | wall s | objects/s | client CPU s | client CPU s per 1M objects "
        "| sandbox CPU s | × sequential | of CPU-fair ceiling | of raw ceiling | requests | peak RSS MB "
        "| RSS growth MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for resource in dict.fromkeys(r["resource"] for r in runs):
        of_resource = [r for r in runs if r["resource"] == resource]
        for approach, label in APPROACHES.items():
            mine = [r for r in of_resource if r["approach"] == approach]
            if not mine:
                continue

            def speed_vs(
                other: str, approach: str = approach, runs: list[dict[str, Any]] = of_resource
            ) -> str:
                if other == approach:
                    return "–"
                ratio = harness.paired_ratios(runs, other, approach, key=_seconds)
                return ratio.text(".2f", "×") if other == "sequential" else ratio.text(".0%")

            spread = harness.Spread.of
            lines.append(
                f"| {resource} | {label} | {mine[0]['rows']:,} | {len(mine)} "
                f"| {spread(r['seconds'] for r in mine).text()} "
                f"| {spread(r['rows'] / r['seconds'] for r in mine).text(',.0f')} "
                f"| {spread(r['cpu_seconds'] for r in mine).text()} "
                f"| {spread(r['cpu_seconds'] * 1e6 / max(r['rows'], 1) for r in mine).text('.1f')} "
                f"| {spread(r['sandbox_cpu_seconds'] for r in mine).text()} "
                f"| {speed_vs('sequential')} | {speed_vs('cpu_fair_ceiling')} | {speed_vs('raw_ceiling')} "
                f"| {max(r['requests'] for r in mine):,} | {spread(r['peak_mb'] for r in mine).text('.1f')} "
                f"| {spread(r['growth_mb'] for r in mine).text('.1f')} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--invoices", type=int, default=100_000, help="invoices in the sandbox (default 100000)"
    )
    parser.add_argument(
        "--contracts", type=int, default=20_000, help="contracts in the sandbox (default 20000)"
    )
    parser.add_argument("--latency-ms", type=int, default=20, help="added to every request (default 20)")
    parser.add_argument("--in-flight", type=int, default=4, help="cursor chains at once (default 4)")
    parser.add_argument("--partitions", type=int, default=16, help="slices of the sliced read (default 16)")
    parser.add_argument(
        "--resources", nargs="+", default=["contracts", "invoices"], choices=["contracts", "invoices"]
    )
    parser.add_argument(
        "--approaches", nargs="+", choices=list(APPROACHES), default=list(APPROACHES), metavar="NAME"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds, each running every approach once (default 3)"
    )
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    parser.add_argument("--child", choices=list(APPROACHES), help=argparse.SUPPRESS)
    parser.add_argument("--resource", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeat = max(1, args.repeat)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    from airflow_provider_ledgerlink.sandbox.alasco import alasco_connection_definition

    load_before = harness.one_minute_load()
    machine = harness.machine_description()
    calibration_start = harness.calibrate()
    print(
        f"Machine: {machine['CPU']}, {machine['cores']}; calibration {harness.calibration_text(calibration_start)}"
    )
    command = shlex.join([".venv/bin/python", "benchmarks/alasco_extract.py", *sys.argv[1:]])
    expected = {"invoices": args.invoices, "contracts": args.contracts}
    order = [a for a in APPROACHES if a in args.approaches]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        workdir = Path(tmp)
        sandbox_args = [
            "--latency-ms", str(args.latency_ms), "--alasco-rows", f"invoices={args.invoices}",
            "--alasco-rows", f"contracts={args.contracts}",
        ]  # fmt: skip
        with harness.SandboxProcess(sandbox_args, workdir) as sandbox:
            connection = alasco_connection_definition(f"{sandbox.url}/alasco")
            # Outside a task the default (Variable) credential store would be read through Airflow's
            # ORM, a one-off import (about half a second, 20 MB) that a task, which asks the Execution
            # API, never pays.
            connection["extra"]["credential_store"] = "none"
            env = dict(os.environ)
            env.update(
                AIRFLOW_HOME=str(workdir / "airflow-home"),
                AIRFLOW__CORE__LOAD_EXAMPLES="False",
                **{f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection)},
            )
            for resource in args.resources:
                for number, approaches in enumerate(harness.rounds(order, args.repeat)):
                    for approach in approaches:
                        result = measure(approach, resource, sandbox.url, env, args, workdir, sandbox.pid)
                        result["round"] = number
                        runs.append(result)
                        print(
                            f"  {resource:<9} round {number + 1} {approach:<20} {result['rows']:>8,} rows "
                            f"{result['seconds']:7.2f} s  CPU {result['cpu_seconds']:6.2f} s  sandbox "
                            f"{result['sandbox_cpu_seconds']:6.2f} s  {result['requests']:>6,} requests  "
                            f"peak {result['peak_mb']:6.1f} MB",
                            flush=True,
                        )
    calibration_end = harness.calibrate()
    print()
    print(table(runs))
    wrong = [
        f"{r['approach']} read {r['rows']:,} {r['resource']} (round {r['round'] + 1})"
        for r in runs
        if r["rows"] != expected[r["resource"]]
    ]
    if wrong:
        print("\nOBJECT COUNTS DIFFER: " + "; ".join(wrong), file=sys.stderr)
        return 1
    print("\nEvery approach read every object.")
    note = harness.busy_note(load_before)
    if args.out:
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section = (
            f"## {SECTION_TITLE}\n\n"
            f"Full loads of `contracts` and `invoices` from the sandbox's Alasco emulator (its own process, "
            f"{args.latency_ms} ms added to every request, 100 objects per page as Alasco serves them), each "
            f"approach in a fresh process. The sliced read uses {args.partitions} slices of `date_created` and "
            f"{args.in_flight} cursor chains at once; both ceilings follow the same slices with as many chains "
            f"(the CPU-fair one parses each page with msgspec and writes what a slice owns as gzip JSON "
            f"Lines, level {harness.CEILING_GZIP_LEVEL}; the raw one parses only to follow the cursor). The "
            f"connection's credential store is `none`: outside a task the default Variable store would be "
            f"read through Airflow's ORM, a one-off import a task never pays.\n\n"
            f"{args.repeat} rounds per resource, each running every approach once in a rotated order; "
            f"medians with min–max in brackets, ratios taken within a round (× sequential: how many times "
            f"as fast as the loop; of a ceiling: the share of its speed). Client CPU is the user + system "
            f"time of the approach's process during the extract, sandbox CPU the emulator's.\n"
            + (f"\n> {note}\n" if note else "")
            + f"\n{table(runs)}\n\nMeasured {when} with:\n\n```\n{command}\n```\n\n"
            + harness.machine_lines(machine, calibration_start, calibration_end)
            + "\n"
        )
        harness.write_section(args.out, SECTION_TITLE, section)
        print(f"Wrote the '{SECTION_TITLE}' section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
