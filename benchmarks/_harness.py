"""What every extract benchmark in this folder shares.

* **Interleaved runs.** :func:`rounds` orders the runs so that round ``r`` runs every approach once,
  the order rotated by one each round: a slow minute of the machine hits every approach alike, and
  paired ratios (:func:`paired_ratios`) compare runs taken side by side.
* **A fresh process per run.** :func:`run_child` starts the script again in a child that measures one
  approach with :func:`measure_here` (wall, its own user + system CPU, peak RSS from a reset
  high-water mark) and writes the figures to a file; the parent adds the sandbox's CPU over that run.
* **The machine.** :func:`machine_description` (CPU model, cores, RAM, versions, load average) and
  :func:`calibrate` (a fixed pure-Python, JSON and gzip workload, timed at the start and at the end
  of a run), so a reader can tell a slower machine from a slower LedgerLink.
* **Reporting.** :class:`Spread` (median, min–max, quartiles) and :func:`write_section`, which
  replaces one ``##`` section of ``docs/benchmarks.md`` and keeps the others.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The pages every ceiling writes are compressed at the level LedgerLink's sinks use by default.
CEILING_GZIP_LEVEL = 1


# ------------------------------------------------------------------------------------------------
# Memory and CPU of a process
# ------------------------------------------------------------------------------------------------
def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            match = re.search(rf"^{field}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux 4.0+); ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    if kb is None:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    return kb / 1024


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return kb / 1024


def cpu_seconds() -> float:
    """User + system CPU of this process, all its threads."""
    times = os.times()
    return times.user + times.system


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU of another process (the sandbox), from ``/proc/<pid>/stat``."""
    if pid is None:
        return float("nan")
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: Runs one extract; returns a dict with at least ``rows``, or a function returning that dict after
#: the measurement (so counting costs the approach nothing).
Runner = Callable[[], "dict[str, Any] | Callable[[], dict[str, Any]]"]


def measure_here(run: Runner) -> dict[str, Any]:
    """Run ``run`` in this process and return its wall time, CPU and memory figures.

    Peak RSS is the kernel's high-water mark, reset just before the run (after the imports), so it
    is this run's own; growth is that peak minus the RSS just before the run.
    """
    import gc

    gc.collect()
    baseline = rss_mb()
    exact_peak = reset_peak_rss()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    outcome = run()
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    peak = peak_rss_mb()
    if callable(outcome):
        outcome = outcome()
    return {
        **outcome,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "baseline_mb": baseline,
        "peak_mb": peak,
        "growth_mb": peak - baseline,
        "exact_peak": exact_peak,
    }


def import_task_runtime() -> None:
    """What a task process has loaded before it runs an operator: Airflow's supervisor (which forks
    it) and the task runner. Every approach imports it before its baseline, so peaks compare."""
    import airflow.sdk.execution_time.supervisor
    import airflow.sdk.execution_time.task_runner  # noqa: F401


# ------------------------------------------------------------------------------------------------
# Child processes and the order of the runs
# ------------------------------------------------------------------------------------------------
def rounds(approaches: Sequence[str], repeat: int) -> list[list[str]]:
    """``repeat`` rounds, each running every approach once; the order rotates by one per round."""
    count = len(approaches)
    return [[approaches[(r + i) % count] for i in range(count)] for r in range(max(1, repeat))]


def run_child(
    command: Sequence[str], env: dict[str, str], result_file: Path, *, sandbox_pid: int | None, label: str
) -> dict[str, Any]:
    """Run ``command`` (the script in its ``--child`` mode), return what it wrote to ``result_file``
    plus ``sandbox_cpu_seconds``, the sandbox's CPU over the child's whole life."""
    result_file.unlink(missing_ok=True)
    before = process_cpu_seconds(sandbox_pid)
    done = subprocess.run(list(command), env=env, capture_output=True, text=True, check=False)
    sandbox_cpu = process_cpu_seconds(sandbox_pid) - before
    if done.returncode != 0 or not result_file.exists():
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
        raise SystemExit(f"{label} failed (exit code {done.returncode})")
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["sandbox_cpu_seconds"] = sandbox_cpu
    if not result.get("exact_peak", True):
        print(f"  note: {label}: peak RSS is the process's lifetime peak (clear_refs unavailable)")
    return result


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result))


class SandboxProcess:
    """``python -m airflow_provider_ledgerlink.sandbox`` in a process of its own (its CPU and memory
    are not the client's)."""

    def __init__(self, arguments: Sequence[str], workdir: Path, name: str = "sandbox") -> None:
        self.arguments = list(arguments)
        self.ready_file = workdir / f"{name}.url"
        self.log_file = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> SandboxProcess:
        self.ready_file.unlink(missing_ok=True)
        command = [
            sys.executable, "-m", "airflow_provider_ledgerlink.sandbox", "--port", "0",
            "--ready-file", str(self.ready_file), *self.arguments,
        ]  # fmt: skip
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not self.ready_file.exists() or not self.ready_file.read_text().strip():
            if self.process.poll() is not None:
                raise SystemExit(f"the sandbox exited early:\n{self.log_file.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the sandbox did not start within 120 s")
            time.sleep(0.05)
        self.url = self.ready_file.read_text().strip()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------------
# The machine
# ------------------------------------------------------------------------------------------------
def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def machine_description(packages: Iterable[str] = ()) -> dict[str, str]:
    """CPU model, cores, RAM, OS, Python and package versions, and the load average now."""
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

    def package(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    found = {
        "CPU": cpu,
        "cores": f"{usable_cores()} usable ({os.cpu_count()} online)",
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "Airflow": package("apache-airflow"),
    }
    for name in ("httpx", "msgspec", *packages, "airflow-provider-ledgerlink"):
        found[name] = package(name)
    found["load average at start (1/5/15 min)"] = load_average()
    return found


def _calibration_inputs() -> tuple[bytes, bytes]:
    """A fixed JSON document (rows like an extract's) and a fixed, compressible buffer."""
    rows = [
        {"UnitId": 1, "EntryNo": i, "SeqNo": i % 7, "Amount": f"{i * 37 % 100000 / 100:.2f}",
         "Description": f"Entry {i} of the calibration ledger", "Date": "2026-11-20T00:00:00Z"}
        for i in range(20_000)
    ]  # fmt: skip
    document = json.dumps({"rows": rows}).encode()
    return document, document * 8


def calibrate(repeat: int = 3) -> dict[str, float]:
    """The machine's speed now: the best of ``repeat`` timings (seconds) of three fixed workloads.

    ``python``: a pure-Python loop of 2 million additions and multiplications; ``json``: parsing a
    2.5 MB JSON document 4 times; ``gzip``: compressing 20 MB at level 1. The same code on a slower or
    busier machine takes longer; the same machine with a slower LedgerLink does not.
    """
    document, buffer = _calibration_inputs()

    def python_loop() -> None:
        total = 0
        for i in range(2_000_000):
            total += i * i % 7
        assert total > 0

    def json_parse() -> None:
        for _ in range(4):
            assert json.loads(document)["rows"]

    def gzip_write() -> None:
        assert gzip.compress(buffer, compresslevel=1, mtime=0)

    timings: dict[str, float] = {}
    for name, work in (("python", python_loop), ("json", json_parse), ("gzip", gzip_write)):
        best = float("inf")
        for _ in range(max(1, repeat)):
            started = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - started)
        timings[name] = best
    timings["total"] = sum(timings.values())
    return timings


def calibration_text(start: dict[str, float], end: dict[str, float] | None = None) -> str:
    def one(t: dict[str, float]) -> str:
        return (
            f"{t['total']:.3f} s (Python loop {t['python']:.3f}, JSON parse {t['json']:.3f}, "
            f"gzip {t['gzip']:.3f})"
        )

    text = f"at start {one(start)}"
    if end is not None:
        text += f"; at end {one(end)}"
    return text


# ------------------------------------------------------------------------------------------------
# Statistics and reporting
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spread:
    """The median of some runs with their spread."""

    median: float
    low: float
    high: float
    q1: float
    q3: float
    count: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        data = sorted(v for v in values if v == v)  # NaN dropped
        if not data:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan, 0)
        if len(data) >= 2:
            q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
        else:
            q1 = q3 = data[0]
        return cls(statistics.median(data), data[0], data[-1], q1, q3, len(data))

    def text(self, fmt: str = ".2f", suffix: str = "") -> str:
        """``1.23 (1.10–1.40)``: the median and, over several runs, min–max."""
        if self.count == 0:
            return "–"
        median = f"{format(self.median, fmt)}{suffix}"
        if self.count == 1:
            return median
        return f"{median} ({format(self.low, fmt)}–{format(self.high, fmt)})"


def paired_ratios(
    runs: Sequence[dict[str, Any]], numerator: str, denominator: str, key: Callable[[dict[str, Any]], float]
) -> Spread:
    """``key(numerator run) / key(denominator run)`` for each round both ran in, as a spread."""
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_round.setdefault(run["round"], {})[run["approach"]] = run
    ratios = []
    for pair in by_round.values():
        if numerator in pair and denominator in pair:
            bottom = key(pair[denominator])
            if bottom:
                ratios.append(key(pair[numerator]) / bottom)
    return Spread.of(ratios)


@dataclass
class Verdict:
    name: str
    value: str
    target: str
    met: bool | None


def verdict_table(found: Sequence[Verdict]) -> str:
    lines = ["| figure | measured (median, min–max) | target | met |", "|---|---:|---:|:---:|"]
    for v in found:
        met = "n/a" if v.met is None else ("yes" if v.met else "**no**")
        lines.append(f"| {v.name} | {v.value} | {v.target} | {met} |")
    return "\n".join(lines)


def verdict_lines(found: Sequence[Verdict]) -> str:
    """One plain sentence per target, for the terminal and the docs."""
    out = []
    for v in found:
        state = "not judged" if v.met is None else ("MET" if v.met else "NOT MET")
        out.append(f"- {v.name}: {v.value} (target {v.target}): {state}")
    return "\n".join(out)


def busy_note(load_before: float) -> str:
    """A warning when other work competed for the CPU during the run."""
    load = max(load_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0)
    cores = usable_cores()
    if load < cores:
        return ""
    return (
        f"The machine was busy during this run (1-minute load average up to {load:.1f} on {cores} "
        "cores): compare the calibration timings and the CPU columns, which load moves far less than "
        "wall time."
    )


def one_minute_load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def machine_lines(machine: dict[str, str], start: dict[str, float], end: dict[str, float]) -> str:
    lines = [f"- {key}: {value}" for key, value in machine.items()]
    lines.append(f"- load average at end (1/5/15 min): {load_average()}")
    lines.append(f"- calibration (best of 3, lower is faster): {calibration_text(start, end)}")
    return "\n".join(lines)


def write_section(path: Path, title: str, section: str) -> None:
    """Replace the ``## title`` section of ``path`` (and the ``###`` ones under it), keeping every
    other section; append it when there is none."""
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nReproducible comparisons; scripts in `benchmarks/`.\n"
    )
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n")
