"""Extracting one AFAS GetConnector four ways, against the sandbox, for time and memory.

    .venv/bin/python benchmarks/afas_extract.py --rows 200000 1000000 --latency-ms 20 \\
        --out docs/benchmarks.md

The sandbox runs in a process of its own, so its CPU and memory are not counted. Every approach
reads ``Profit_Transactions`` as a full load with the same page size and ordering, in a fresh
subprocess of its own, so each one's memory is measured alone:

``ledgerlink``
    ``AfasExtractOperator.execute()``: pages requested 5 at a time, datetimes converted, rows
    written as gzip JSON Lines with a manifest (the operator's defaults).
``sequential``
    The loop AFAS client libraries use: one request at a time, ``rows.extend(page)``.
``http_operator``
    Airflow's ``HttpOperator`` with a ``pagination_function`` that returns the next ``skip``; its
    result is the list of page bodies it keeps in memory until the end (what it pushes to XCom).
``raw_ceiling``
    The same pages fetched 5 at a time with httpx and thrown away unparsed: the most any client
    can get out of this server at this concurrency.

Every child imports what a task process has loaded (Airflow's supervisor, which forks it, and the
task runner) before its baseline, so the peak RSS figures are comparable. Each approach's time
includes creating its HTTP client. Peak RSS is the kernel's high-water mark (``VmHWM``), reset after
the imports; growth is that peak minus the RSS just before the extract started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
    "raw_ceiling": "raw ceiling (fetch, discard)",
}

#: What the figures are judged against.
TARGET_VS_SEQUENTIAL = 3.0
TARGET_VS_CEILING = 0.80
TARGET_MEMORY_MB = 50.0


# ------------------------------------------------------------------------------------------------
# Memory and CPU of the running process
# ------------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux 4.0+); ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is None:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    return kb / 1024


def _peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return kb / 1024


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another process (the sandbox), from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------
# The four approaches (each runs in a child process)
# ------------------------------------------------------------------------------------------------
@dataclass
class Job:
    url: str
    rows: int
    page_size: int
    in_flight: int


#: Runs one extract; returns the row count, or a function that counts them after the measurement.
Runner = Callable[[], "int | Callable[[], int]"]


def _afas_header() -> str:
    """The sandbox's ``AfasToken …`` header (its token for seed 42, the CLI's default)."""
    from airflow_provider_ledgerlink.sandbox.afas import afas_authorization_header, sandbox_afas_token

    return afas_authorization_header(sandbox_afas_token(42))


def _count_rows_in_body(body: bytes) -> int:
    # A byte count, not a parse: every Profit_Transactions row starts with its UnitId.
    return body.count(b'{"UnitId":')


def prepare_ledgerlink(job: Job, workdir: Path) -> Runner:
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

    def run() -> int:
        summary = operator.execute({})  # type: ignore[arg-type]
        return int(summary["rows"])

    return run


def prepare_sequential(job: Job, workdir: Path) -> Runner:
    import httpx

    header = _afas_header()

    def run() -> int:
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
        return len(rows)

    return run


def prepare_http_operator(job: Job, workdir: Path) -> Runner:
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

    def run() -> Callable[[], int]:
        bodies: list[str] = operator.execute({})  # type: ignore[arg-type]
        # Counted after the measurement, so counting costs the operator nothing.
        return lambda: sum(_count_rows_in_body(body.encode()) for body in bodies)

    return run


def prepare_raw_ceiling(job: Job, workdir: Path) -> Runner:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    # The pages any paging client needs: every full page and the first short (here empty) one.
    offsets = range(0, (job.rows // job.page_size + 1) * job.page_size, job.page_size)
    header = _afas_header()

    def run() -> int:
        client = httpx.Client(
            base_url=job.url + AFAS_PATH,
            headers={"Authorization": header, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=job.in_flight, max_keepalive_connections=job.in_flight),
            timeout=60,
        )

        def fetch(skip: int) -> int:
            response = client.get(
                f"/connectors/{CONNECTOR}",
                params={"skip": skip, "take": job.page_size, "orderbyfieldids": ORDER_BY},
            )
            response.raise_for_status()
            return _count_rows_in_body(response.content)

        with ThreadPoolExecutor(max_workers=job.in_flight) as pool:
            total = sum(pool.map(fetch, offsets))
        client.close()
        return total

    return run


PREPARE: dict[str, Callable[[Job, Path], Runner]] = {
    "ledgerlink": prepare_ledgerlink,
    "sequential": prepare_sequential,
    "http_operator": prepare_http_operator,
    "raw_ceiling": prepare_raw_ceiling,
}


def run_child(approach: str, job: Job, result_file: Path) -> None:
    """Run one approach in this (fresh) process and write its figures to ``result_file``."""
    import gc

    # Every approach runs as a task would: with what a task process has loaded. It is forked from
    # Airflow's supervisor and runs the task runner.
    import airflow.sdk.execution_time.supervisor
    import airflow.sdk.execution_time.task_runner  # noqa: F401

    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        run = PREPARE[approach](job, Path(tmp))
        gc.collect()
        baseline = _rss_mb()
        exact_peak = _reset_peak_rss()
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        rows = run()
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        peak = _peak_rss_mb()
        if callable(rows):
            rows = rows()
    result = {
        "approach": approach,
        "rows": rows,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "baseline_mb": baseline,
        "peak_mb": peak,
        "growth_mb": peak - baseline,
        "exact_peak": exact_peak,
    }
    result_file.write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------------
# The sandbox process
# ------------------------------------------------------------------------------------------------
class SandboxProcess:
    """``python -m airflow_provider_ledgerlink.sandbox`` in a process of its own."""

    def __init__(self, rows: int, latency_ms: int, workdir: Path) -> None:
        self.rows = rows
        self.latency_ms = latency_ms
        self.ready_file = workdir / f"sandbox-{rows}.url"
        self.log_file = workdir / f"sandbox-{rows}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        command = [
            sys.executable,
            "-m",
            "airflow_provider_ledgerlink.sandbox",
            "--port",
            "0",
            "--ready-file",
            str(self.ready_file),
            "--latency-ms",
            str(self.latency_ms),
            "--afas-rows",
            f"{CONNECTOR}={self.rows}",
        ]
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise SystemExit(f"the sandbox exited early:\n{self.log_file.read_text()}")
            if time.monotonic() > deadline:
                self._stop()
                raise SystemExit("the sandbox did not start within 120 s")
            time.sleep(0.05)
        self.url = self.ready_file.read_text().strip()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def warm_up(self, page_size: int) -> None:
        """A few requests, so no approach pays for the server's first calls."""
        import httpx

        headers = {"Authorization": _afas_header()}
        with httpx.Client(base_url=self.url + AFAS_PATH, headers=headers, timeout=60) as client:
            for skip in range(0, 5 * page_size, page_size):
                client.get(
                    f"/connectors/{CONNECTOR}",
                    params={"skip": skip, "take": page_size, "orderbyfieldids": ORDER_BY},
                ).raise_for_status()

    def _stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __exit__(self, *exc: object) -> None:
        self._stop()


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
        "extra": {
            "Authorization": _afas_header(),
            "Accept": "application/json",
        },
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


# ------------------------------------------------------------------------------------------------
# Running, checking and reporting
# ------------------------------------------------------------------------------------------------
@dataclass
class Measurement:
    approach: str
    rows: int
    seconds: float
    cpu_seconds: float
    sandbox_cpu_seconds: float
    baseline_mb: float
    peak_mb: float
    growth_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def measure(
    approach: str, job: Job, sandbox: SandboxProcess, env: dict[str, str], workdir: Path, repeat: int
) -> Measurement:
    runs: list[dict[str, Any]] = []
    for attempt in range(repeat):
        result_file = workdir / f"{approach}-{job.rows}-{attempt}.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            approach,
            "--url",
            job.url,
            "--rows",
            str(job.rows),
            "--page-size",
            str(job.page_size),
            "--in-flight",
            str(job.in_flight),
            "--result-file",
            str(result_file),
        ]
        sandbox_cpu = _process_cpu_seconds(sandbox.pid)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        sandbox_cpu = _process_cpu_seconds(sandbox.pid) - sandbox_cpu
        if done.returncode != 0 or not result_file.exists():
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
            raise SystemExit(f"{approach} at {job.rows:,} rows failed (exit code {done.returncode})")
        result = json.loads(result_file.read_text())
        result["sandbox_cpu_seconds"] = sandbox_cpu
        if not result["exact_peak"]:
            print(f"  note: {approach}: peak RSS is the process's lifetime peak (clear_refs unavailable)")
        runs.append(result)
        print(
            f"  {approach:<14} {result['rows']:>10,} rows  {result['seconds']:7.2f} s  "
            f"peak {result['peak_mb']:7.1f} MB  growth {result['growth_mb']:7.1f} MB",
            flush=True,
        )
    middle = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return Measurement(
        approach=approach,
        rows=middle["rows"],
        seconds=statistics.median(r["seconds"] for r in runs),
        cpu_seconds=middle["cpu_seconds"],
        sandbox_cpu_seconds=middle["sandbox_cpu_seconds"],
        baseline_mb=middle["baseline_mb"],
        peak_mb=max(r["peak_mb"] for r in runs),
        growth_mb=max(r["growth_mb"] for r in runs),
    )


def machine_description() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    usable = _usable_cores()

    def package(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return {
        "CPU": cpu,
        "cores": f"{usable} usable ({os.cpu_count()} online)",
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Airflow": package("apache-airflow"),
        "apache-airflow-providers-http": package("apache-airflow-providers-http"),
        "httpx": package("httpx"),
        "airflow-provider-ledgerlink": package("airflow-provider-ledgerlink"),
        "load average at start (1/5/15 min)": load,
    }


@dataclass
class Verdict:
    name: str
    value: str
    target: str
    met: bool | None


def verdicts(results: dict[int, dict[str, Measurement]]) -> list[Verdict]:
    found: list[Verdict] = []
    for rows, by_approach in results.items():
        ours = by_approach.get("ledgerlink")
        if ours is None:
            continue
        sequential = by_approach.get("sequential")
        if sequential is not None:
            ratio = ours.rows_per_second / sequential.rows_per_second
            found.append(
                Verdict(
                    f"LedgerLink / sequential, {rows:,} rows",
                    f"{ratio:.2f}×",
                    f"≥ {TARGET_VS_SEQUENTIAL:.0f}×",
                    ratio >= TARGET_VS_SEQUENTIAL,
                )
            )
        ceiling = by_approach.get("raw_ceiling")
        if ceiling is not None:
            share = ours.rows_per_second / ceiling.rows_per_second
            found.append(
                Verdict(
                    f"LedgerLink / raw ceiling, {rows:,} rows",
                    f"{share:.1%}",
                    f"≥ {TARGET_VS_CEILING:.0%}",
                    share >= TARGET_VS_CEILING,
                )
            )
    sizes = sorted(rows for rows, by in results.items() if "ledgerlink" in by)
    if len(sizes) >= 2:
        small, large = results[sizes[0]]["ledgerlink"], results[sizes[-1]]["ledgerlink"]
        peak = large.peak_mb - small.peak_mb
        growth = large.growth_mb - small.growth_mb
        found.append(
            Verdict(
                f"LedgerLink peak RSS, {sizes[-1]:,} minus {sizes[0]:,} rows",
                f"{peak:+.1f} MB (growth {growth:+.1f} MB)",
                f"≤ {TARGET_MEMORY_MB:.0f} MB",
                peak <= TARGET_MEMORY_MB,
            )
        )
    return found


def results_table(results: dict[int, dict[str, Measurement]]) -> str:
    lines = [
        "| approach | rows | seconds | rows/s | peak RSS MB | RSS growth MB | client CPU s | sandbox CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for by_approach in results.values():
        for approach, m in by_approach.items():
            lines.append(
                f"| {APPROACHES[approach]} | {m.rows:,} | {m.seconds:.2f} | {m.rows_per_second:,.0f} "
                f"| {m.peak_mb:.1f} | {m.growth_mb:.1f} | {m.cpu_seconds:.1f} | {m.sandbox_cpu_seconds:.1f} |"
            )
    return "\n".join(lines)


def verdict_table(found: list[Verdict]) -> str:
    lines = ["| figure | measured | target | met |", "|---|---:|---:|:---:|"]
    for v in found:
        met = "n/a" if v.met is None else ("yes" if v.met else "**no**")
        lines.append(f"| {v.name} | {v.value} | {v.target} | {met} |")
    return "\n".join(lines)


def section_markdown(
    results: dict[int, dict[str, Measurement]],
    found: list[Verdict],
    machine: dict[str, str],
    command: str,
    args: argparse.Namespace,
    busy_note: str,
) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine_lines = "\n".join(f"- {key}: {value}" for key, value in machine.items())
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
- **raw ceiling (fetch, discard)**: the same pages fetched {args.in_flight} at a time with httpx
  and thrown away unparsed; no client can do better against this server at this concurrency.

Every approach's time includes creating its HTTP client. Peak RSS is the process's high-water mark
after its imports (what a task process has loaded: Airflow's supervisor and task runner); RSS
growth is that peak minus the RSS just before the extract began. Client and sandbox CPU are the
user + system seconds of the two processes during the extract.
{note}
{results_table(results)}

{verdict_table(found)}

Measured {when} with:

```
{command}
```

{machine_lines}
"""


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's ``##`` section of ``path``, keeping every other section."""
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nReproducible comparisons; scripts in `benchmarks/`.\n"
    )
    pattern = re.compile(rf"^## {re.escape(SECTION_TITLE)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")


def _load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _busy_note(load_before: float) -> str:
    """A warning when other work competed for the CPU: the figures then say little."""
    load = max(load_before, _load_average())
    cores = _usable_cores()
    if load < cores:
        return ""
    return (
        f"The machine was busy during this run (1-minute load average up to {load:.1f} on {cores} "
        "cores): times and ratios are not representative; rerun on an idle machine."
    )


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
    parser.add_argument("--in-flight", type=int, default=5, help="concurrent requests (LedgerLink, ceiling)")
    parser.add_argument(
        "--approaches", nargs="+", choices=list(APPROACHES), default=list(APPROACHES), metavar="NAME"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per approach; the median time counts")
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    # Used by the script to run one approach in a child process.
    parser.add_argument("--child", choices=list(APPROACHES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        job = Job(url=args.url, rows=args.rows[0], page_size=args.page_size, in_flight=args.in_flight)
        run_child(args.child, job, args.result_file)
        return 0

    load_before = _load_average()
    machine = machine_description()
    print("Machine:")
    for key, value in machine.items():
        print(f"  {key}: {value}")
    command = shlex.join([".venv/bin/python", "benchmarks/afas_extract.py", *sys.argv[1:]])
    # The approaches in a fixed order, the ceiling first so the others meet a warmed-up server.
    order = [a for a in ("raw_ceiling", "ledgerlink", "sequential", "http_operator") if a in args.approaches]
    results: dict[int, dict[str, Measurement]] = {}
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        workdir = Path(tmp)
        airflow_home = workdir / "airflow-home"
        airflow_home.mkdir()
        for rows in args.rows:
            print(f"\n{CONNECTOR}: {rows:,} rows, {args.page_size} per page, {args.latency_ms} ms latency")
            with SandboxProcess(rows, args.latency_ms, workdir) as sandbox:
                sandbox.warm_up(args.page_size)
                env = child_environment(sandbox.url, airflow_home)
                job = Job(url=sandbox.url, rows=rows, page_size=args.page_size, in_flight=args.in_flight)
                results[rows] = {
                    approach: measure(approach, job, sandbox, env, workdir, max(1, args.repeat))
                    for approach in order
                }

    print()
    print(results_table(results))
    found = verdicts(results)
    print()
    print(verdict_table(found))

    wrong = [
        f"{m.approach} read {m.rows:,} rows of {rows:,}"
        for rows, by_approach in results.items()
        for m in by_approach.values()
        if m.rows != rows
    ]
    if wrong:
        print("\nROW COUNTS DIFFER: " + "; ".join(wrong), file=sys.stderr)
        return 1
    print("\nEvery approach read every row.")
    busy_note = _busy_note(load_before)
    if busy_note:
        print(f"\n{busy_note}")
    if args.out:
        write_section(args.out, section_markdown(results, found, machine, command, args, busy_note))
        print(f"Wrote the '{SECTION_TITLE}' section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
