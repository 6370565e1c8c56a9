"""What importing LedgerLink costs a DAG file, over bare Airflow: every parse of every DAG pays it.

    .venv/bin/python benchmarks/dag_parse_import.py --repeat 15 --out docs/benchmarks.md

Each measurement is a fresh interpreter (nothing cached in ``sys.modules``; the ``.pyc`` files are
warm, as on a DAG processor that has parsed before), timed from just before its first import to
just after its last:

``airflow``
    ``import airflow`` and what the example DAGs import from Airflow and pendulum (``airflow.sdk``'s
    ``DAG``, ``task``, ``Param``, ``ObjectStoragePath``, the cron timetable): the floor every DAG
    file pays.
``ledgerlink``
    The same, then every module of ``airflow_provider_ledgerlink.operators`` and ``.sensors``: what
    a DAG file importing all of LedgerLink's operators and sensors adds. The extra time is measured
    inside the same process (after the Airflow imports), so it is not the difference of two noisy
    process timings.
``dag:<file>``
    The same Airflow imports, then one file of ``example_dags/`` loaded the way Airflow's DagBag
    loads a DAG file (``importlib.util.spec_from_file_location`` and ``exec_module``); the extra time
    is that file's import and DAG construction.

The runs are interleaved: round ``r`` runs every scenario once, the order rotated by one each
round. Reported: milliseconds of wall time and of CPU (median and min–max), modules loaded, and
the modules the LedgerLink part adds, with a check that no vendor-heavy module (``zeep``, ``lxml``,
the sandbox's emulators) is among them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as harness

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "example_dags").glob("*.py"))
SECTION_TITLE = "DAG-parse import cost"

#: Modules that have no place in DAG parsing: the SOAP and XML stacks and the emulators.
HEAVY_PREFIXES = ("zeep", "lxml", "airflow_provider_ledgerlink.sandbox")

# Runs in a fresh interpreter: argv[1] is the Airflow import code, argv[2] a JSON job.
_CHILD = r"""
import importlib, importlib.util, json, os, pkgutil, sys, time

def cpu():
    t = os.times()
    return t.user + t.system

job = json.loads(sys.argv[2])
before = set(sys.modules)
wall0, cpu0 = time.perf_counter(), cpu()
exec(sys.argv[1], {})
wall1, cpu1 = time.perf_counter(), cpu()
after_airflow = set(sys.modules)
if job["kind"] == "ledgerlink":
    for package in ("airflow_provider_ledgerlink.operators", "airflow_provider_ledgerlink.sensors"):
        root = importlib.import_module(package)
        for info in pkgutil.iter_modules(root.__path__):
            importlib.import_module(f"{package}.{info.name}")
elif job["kind"] == "dag":
    spec = importlib.util.spec_from_file_location("ledgerlink_dag_under_test", job["path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
wall2, cpu2 = time.perf_counter(), cpu()
extra = sorted(set(sys.modules) - after_airflow - {"ledgerlink_dag_under_test"})
print(json.dumps({
    "airflow_ms": (wall1 - wall0) * 1000, "airflow_cpu_ms": (cpu1 - cpu0) * 1000,
    "extra_ms": (wall2 - wall1) * 1000, "extra_cpu_ms": (cpu2 - cpu1) * 1000,
    "total_ms": (wall2 - wall0) * 1000, "total_cpu_ms": (cpu2 - cpu0) * 1000,
    "modules": len(set(sys.modules) - before), "extra_modules": extra,
}))
"""


def airflow_imports(paths: Sequence[Path] = EXAMPLES) -> str:
    """The Airflow and pendulum imports of the example DAGs, merged: the code a DAG file runs
    before it reaches anything of LedgerLink."""
    plain: set[str] = set()
    names: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                plain.update(a.name for a in node.names if _is_airflow(a.name))
            elif isinstance(node, ast.ImportFrom) and node.module and _is_airflow(node.module):
                names.setdefault(node.module, set()).update(a.name for a in node.names)
    lines = ["import airflow", *(f"import {m}" for m in sorted(plain - {"airflow"}))]
    lines += [f"from {m} import {', '.join(sorted(n))}" for m, n in sorted(names.items())]
    return "\n".join(lines)


def _is_airflow(module: str) -> bool:
    top = module.split(".")[0]
    return top in ("airflow", "pendulum")


def heavy_modules(modules: Sequence[str]) -> list[str]:
    """The vendor-heavy modules among ``modules``."""
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in HEAVY_PREFIXES))


def scenarios(with_dags: bool) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {"airflow": {"kind": "airflow"}, "ledgerlink": {"kind": "ledgerlink"}}
    if with_dags:
        for path in EXAMPLES:
            found[f"dag:{path.name}"] = {"kind": "dag", "path": str(path)}
    return found


def run_once(code: str, job: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, code, json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-6000:])
        raise SystemExit(f"the {job['kind']} import run failed (exit code {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summary_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    spread = harness.Spread.of
    lines = [
        "| scenario | runs | Airflow imports ms | Airflow CPU ms | LedgerLink / DAG file ms | its CPU ms "
        "| total ms | modules loaded | modules added by LedgerLink / the file | vendor-heavy modules |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, mine in runs.items():
        extra = mine[0]["extra_modules"]
        heavy = heavy_modules(extra)
        added = "–" if name == "airflow" else str(len(extra))
        lines.append(
            f"| {name} | {len(mine)} | {spread(r['airflow_ms'] for r in mine).text('.0f')} "
            f"| {spread(r['airflow_cpu_ms'] for r in mine).text('.0f')} "
            f"| {'–' if name == 'airflow' else spread(r['extra_ms'] for r in mine).text('.0f')} "
            f"| {'–' if name == 'airflow' else spread(r['extra_cpu_ms'] for r in mine).text('.0f')} "
            f"| {spread(r['total_ms'] for r in mine).text('.0f')} | {mine[0]['modules']} | {added} "
            f"| {', '.join(heavy) if heavy else 'none'} |"
        )
    return "\n".join(lines)


def added_by_package(modules: Sequence[str]) -> str:
    counts = Counter(m.split(".")[0] for m in modules)
    return ", ".join(f"`{name}` {count}" for name, count in counts.most_common())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=15, help="rounds, each running every scenario once")
    parser.add_argument(
        "--no-dags", action="store_true", help="leave out the example DAG files (only airflow and ledgerlink)"
    )
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    args = parser.parse_args(argv)

    load_before = harness.one_minute_load()
    machine = harness.machine_description()
    calibration_start = harness.calibrate()
    code = airflow_imports()
    jobs = scenarios(not args.no_dags)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
    with tempfile.TemporaryDirectory(prefix="ledgerlink-bench-") as tmp:
        env = dict(os.environ, AIRFLOW_HOME=tmp, AIRFLOW__CORE__LOAD_EXAMPLES="False")
        env.setdefault("LEDGERLINK_LAKE", f"file://{tmp}/lake")
        run_once(code, jobs["ledgerlink"], env)  # compiles any stale .pyc before the counted runs
        for number, order in enumerate(harness.rounds(list(jobs), args.repeat)):
            for name in order:
                runs[name].append(run_once(code, jobs[name], env))
            last = runs["ledgerlink"][-1]
            print(
                f"  round {number + 1}: airflow {runs['airflow'][-1]['total_ms']:.0f} ms, "
                f"airflow + ledgerlink {last['total_ms']:.0f} ms (ledgerlink part {last['extra_ms']:.0f} ms)",
                flush=True,
            )
    calibration_end = harness.calibrate()
    table = summary_table(runs)
    extra = runs["ledgerlink"][0]["extra_modules"]
    heavy = heavy_modules(extra)
    ours = harness.Spread.of(r["extra_ms"] for r in runs["ledgerlink"])
    floor = harness.Spread.of(r["total_ms"] for r in runs["airflow"])
    share = harness.Spread.of(
        r["extra_ms"] / r["airflow_ms"] for r in runs["ledgerlink"] if r["airflow_ms"] > 0
    )
    verdict = (
        f"Importing every LedgerLink operator and sensor adds {ours.text('.0f', ' ms')} to a DAG file's "
        f"parse, {share.text('.0%')} of the Airflow imports in the same process (bare Airflow: "
        f"{floor.text('.0f', ' ms')}), and {len(extra)} modules ({added_by_package(extra)}). "
        + (
            "No vendor-heavy module (zeep, lxml, the sandbox) is loaded."
            if not heavy
            else f"VENDOR-HEAVY MODULES LOADED: {', '.join(heavy)}."
        )
    )
    print()
    print(table)
    print()
    print(verdict)
    note = harness.busy_note(load_before)
    if args.out:
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        command = shlex.join([".venv/bin/python", "benchmarks/dag_parse_import.py", *(argv or sys.argv[1:])])
        section = f"""## {SECTION_TITLE}

Every parse of every DAG file pays for what the file imports. Each figure is a fresh interpreter
(warm `.pyc` files, nothing in `sys.modules`), timed from just before its first import to just
after its last: **airflow** runs the Airflow and pendulum imports of the example DAGs
(`{code.replace(chr(10), "; ")}`); **ledgerlink** runs the same, then imports every module of
`airflow_provider_ledgerlink.operators` and `.sensors`, the LedgerLink part timed on its own in the
same process; **dag:&lt;file&gt;** runs the same Airflow imports, then loads one example DAG file as
Airflow's DagBag does (`spec_from_file_location` + `exec_module`), which includes building its DAG.
{args.repeat} rounds, each running every scenario once in a rotated order; medians with min–max.
{chr(10) + "> " + note + chr(10) if note else ""}
{table}

{verdict}

`tests/unit/test_dag_parse_imports.py` holds the no-heavy-module rule for every operator and sensor
module and every example DAG file (without timing anything).

Measured {when} with:

```
{command}
```

{harness.machine_lines(machine, calibration_start, calibration_end)}
"""
        harness.write_section(args.out, SECTION_TITLE, section)
        print(f"Wrote the '{SECTION_TITLE}' section of {args.out}")
    return 1 if heavy else 0


if __name__ == "__main__":
    sys.exit(main())
