"""Extracting Alasco contracts and invoices three ways, against the sandbox, for time and memory.

    .venv/bin/python benchmarks/alasco_extract.py --invoices 100000 --contracts 20000 \\
        --latency-ms 20 --out docs/benchmarks.md

The sandbox runs in a process of its own (``python -m airflow_provider_ledgerlink.sandbox``), so
its CPU and memory are not counted; it adds ``--latency-ms`` to every request, as a network would.
Each approach reads every object of the resource, in a fresh subprocess of its own, so each one's
memory is measured alone:

``ledgerlink``
    ``AlascoExtractOperator.execute()``, a full load: the read is split on ``date_created`` into
    ``--partitions`` slices, each its own cursor chain, ``--in-flight`` chains at once; rows are
    flattened and written as gzip JSON Lines with a manifest.
``ledgerlink_one_chain``
    The same operator with one slice and one chain: what the splitting is worth.
``sequential``
    The loop Alasco client libraries use: follow ``links.next`` one request at a time and
    ``rows.extend(page["data"])``.

Alasco serves 100 objects per page and no page-size parameter, so every approach makes the same
number of requests per chain. Peak RSS is the kernel's high-water mark after the imports (Airflow
loaded in every child); growth is that peak minus the RSS just before the extract.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# The machine description and the RSS readings are the AFAS benchmark's (same folder).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import cpu_seconds as _cpu_seconds
from _harness import machine_description
from _harness import peak_rss_mb as _peak_rss_mb
from _harness import reset_peak_rss as _reset_peak_rss
from _harness import rss_mb as _rss_mb

SECTION_TITLE = "Alasco contracts and invoices extract"
CONN_ID = "alasco_benchmark"
APPROACHES: dict[str, str] = {
    "ledgerlink": "LedgerLink AlascoExtractOperator (sliced, parallel chains)",
    "ledgerlink_one_chain": "LedgerLink AlascoExtractOperator (one chain)",
    "sequential": "sequential links.next loop",
}


# ------------------------------------------------------------------------------------------------
# The approaches, each run in a child process
# ------------------------------------------------------------------------------------------------
def _operator_runner(resource: str, workdir: Path, partitions: int, in_flight: int) -> Callable[[], int]:
    from airflow_provider_ledgerlink.operators.alasco import AlascoExtractOperator

    operator = AlascoExtractOperator(
        task_id=f"extract_{resource}",
        resource=resource,
        incremental=False,
        destination=str(workdir / "lake"),
        partitions=partitions,
        max_in_flight=in_flight,
        alasco_conn_id=CONN_ID,
    )
    return lambda: int(operator.execute({})["rows"])  # type: ignore[arg-type]


def _sequential_runner(resource: str, url: str) -> Callable[[], int]:
    import httpx

    from airflow_provider_ledgerlink.sandbox.alasco import sandbox_alasco_api_key, sandbox_alasco_api_token

    headers = {"X-API-KEY": sandbox_alasco_api_key(42), "X-API-TOKEN": sandbox_alasco_api_token(42)}
    client = httpx.Client(headers=headers, timeout=60, follow_redirects=True)

    def run() -> int:
        rows: list[dict[str, Any]] = []
        next_url: str | None = f"{url}/alasco/fincon/v1/{resource}/"
        while next_url:
            response = client.get(next_url)
            response.raise_for_status()
            page = response.json()
            rows.extend(page["data"])
            next_url = (page.get("links") or {}).get("next")
        client.close()
        return len(rows)

    return run


def run_child(args: argparse.Namespace) -> None:
    import gc

    import airflow.sdk  # noqa: F401  # every approach runs as a task would: with Airflow loaded

    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        if args.child == "sequential":
            run = _sequential_runner(args.resource, args.url)
        else:
            chains = args.in_flight if args.child == "ledgerlink" else 1
            parts = args.partitions if args.child == "ledgerlink" else 1
            run = _operator_runner(args.resource, Path(tmp), parts, chains)
        gc.collect()
        baseline = _rss_mb()
        exact = _reset_peak_rss()
        cpu = _cpu_seconds()
        started = time.perf_counter()
        rows = run()
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu
        peak = _peak_rss_mb()
    args.result_file.write_text(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_mb": peak,
                "growth_mb": peak - baseline,
                "exact_peak": exact,
            }
        )
    )


# ------------------------------------------------------------------------------------------------
# The sandbox and the measurements
# ------------------------------------------------------------------------------------------------
def start_sandbox(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    ready = workdir / "sandbox.url"
    command = [
        sys.executable, "-m", "airflow_provider_ledgerlink.sandbox", "--port", "0", "--ready-file", str(ready),
        "--latency-ms", str(args.latency_ms), "--alasco-rows", f"invoices={args.invoices}",
        "--alasco-rows", f"contracts={args.contracts}",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the sandbox did not start")
        time.sleep(0.05)
    return process, ready.read_text().strip()


def sandbox_requests(url: str) -> int:
    import httpx

    return int(httpx.get(f"{url}/_sandbox/stats").json()["alasco"]["requests"])


def measure(
    approach: str, resource: str, url: str, env: dict[str, str], args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    import httpx

    httpx.post(f"{url}/_sandbox/reset")
    result_file = workdir / f"{approach}-{resource}.json"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", approach, "--resource", resource, "--url", url,
        "--in-flight", str(args.in_flight), "--partitions", str(args.partitions), "--result-file", str(result_file),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not result_file.exists():
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
        raise SystemExit(f"{approach} on {resource} failed (exit code {done.returncode})")
    result = json.loads(result_file.read_text())
    result.update(approach=approach, resource=resource, requests=sandbox_requests(url))
    print(
        f"  {resource:<9} {approach:<21} {result['rows']:>8,} rows {result['seconds']:7.2f} s "
        f"{result['requests']:>6,} requests  peak {result['peak_mb']:6.1f} MB  growth {result['growth_mb']:6.1f} MB",
        flush=True,
    )
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| resource | approach | objects | seconds | objects/s | requests | peak RSS MB | RSS growth MB | client CPU s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rate = r["rows"] / r["seconds"] if r["seconds"] else 0
        lines.append(
            f"| {r['resource']} | {APPROACHES[r['approach']]} | {r['rows']:,} | {r['seconds']:.2f} | {rate:,.0f} "
            f"| {r['requests']:,} | {r['peak_mb']:.1f} | {r['growth_mb']:.1f} | {r['cpu_seconds']:.1f} |"
        )
    for resource in dict.fromkeys(r["resource"] for r in results):
        by = {r["approach"]: r for r in results if r["resource"] == resource}
        if "ledgerlink" in by and "sequential" in by:
            lines.append("")
            lines.append(
                f"{resource}: LedgerLink sliced / sequential loop = "
                f"{by['sequential']['seconds'] / by['ledgerlink']['seconds']:.2f}× as fast"
            )
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's ``##`` section of ``path``, keeping every other section."""
    import re

    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nReproducible comparisons; scripts in `benchmarks/`.\n"
    )
    pattern = re.compile(rf"^## {re.escape(SECTION_TITLE)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    text = pattern.sub("", text).rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--contracts", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=int, default=20, help="added to every request (default 20)")
    parser.add_argument("--in-flight", type=int, default=4, help="cursor chains at once (default 4)")
    parser.add_argument("--partitions", type=int, default=16, help="slices of the sliced read (default 16)")
    parser.add_argument(
        "--resources", nargs="+", default=["contracts", "invoices"], choices=["contracts", "invoices"]
    )
    parser.add_argument("--approaches", nargs="+", choices=list(APPROACHES), default=list(APPROACHES))
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    parser.add_argument("--child", choices=list(APPROACHES), help=argparse.SUPPRESS)
    parser.add_argument("--resource", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return 0
    from airflow_provider_ledgerlink.sandbox.alasco import alasco_connection_definition

    machine = machine_description()
    command = shlex.join([".venv/bin/python", "benchmarks/alasco_extract.py", *sys.argv[1:]])
    expected = {"invoices": args.invoices, "contracts": args.contracts}
    results = []
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        workdir = Path(tmp)
        process, url = start_sandbox(args, workdir)
        try:
            connection = alasco_connection_definition(f"{url}/alasco")
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
                for approach in args.approaches:
                    results.append(measure(approach, resource, url, env, args, workdir))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    print()
    print(table(results))
    wrong = [
        f"{r['approach']} read {r['rows']:,} {r['resource']}"
        for r in results
        if r["rows"] != expected[r["resource"]]
    ]
    if wrong:
        print("\nOBJECT COUNTS DIFFER: " + "; ".join(wrong), file=sys.stderr)
        return 1
    print("\nEvery approach read every object.")
    if args.out:
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        machine_lines = "\n".join(f"- {key}: {value}" for key, value in machine.items())
        section = (
            f"## {SECTION_TITLE}\n\n"
            f"Full loads of `contracts` and `invoices` from the sandbox's Alasco emulator (its own process, "
            f"{args.latency_ms} ms added to every request, 100 objects per page as Alasco serves them), each "
            f"approach in a fresh process. The sliced read uses {args.partitions} slices of `date_created` and "
            f"{args.in_flight} cursor chains at once. The connection's credential store is `none`: outside "
            f"a task the default Variable store would be read through Airflow's ORM, a one-off import a task "
            f"never pays.\n\n{table(results)}\n\nMeasured {when} with:\n\n"
            f"```\n{command}\n```\n\n{machine_lines}\n"
        )
        write_section(args.out, section)
        print(f"Wrote the '{SECTION_TITLE}' section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
