"""The main job, end to end: the example DAGs in real Airflow against the bundled sandbox.

What it does, in order:

1. starts the sandbox (the vendor emulators) on a free localhost port;
2. prepares a throw-away Airflow home (``demo-output/airflow``) with the embedded SQLite metastore
   and the sandbox's connections as ``AIRFLOW_CONN_*`` variables;
3. runs every DAG in ``example_dags/`` with ``airflow dags test`` for one day inside the sandbox's
   data, exactly as a scheduler would run that day;
4. prints what landed under ``demo-output/lake`` (folders, row counts, manifests).

Run it with ``make demo``; it takes a minute or two.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "demo-output"
LAKE = OUTPUT / "lake"
AIRFLOW_HOME = OUTPUT / "airflow"
#: The day the demo runs: the sandbox's data covers the weeks before 2026-11-20.
LOGICAL_DATE = "2026-11-19T00:00:00+00:00"


def main() -> int:
    from airflow_provider_ledgerlink.sandbox import Sandbox
    from airflow_provider_ledgerlink.sandbox.connections import airflow_connection_env

    shutil.rmtree(OUTPUT, ignore_errors=True)
    LAKE.mkdir(parents=True)
    AIRFLOW_HOME.mkdir(parents=True)

    with Sandbox(seed=42) as sandbox:
        print(f"Sandbox serving the vendor emulators on {sandbox.url}")
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "LEDGERLINK_LAKE": LAKE.as_uri(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **airflow_connection_env(sandbox),
        }
        airflow = [sys.executable, "-m", "airflow"]
        _run([*airflow, "db", "migrate"], env, quiet=True)
        failures = []
        for dag_file in sorted((ROOT / "example_dags").glob("*.py")):
            dag_id = dag_file.stem
            if dag_id == "ledgerlink_token_rotation":
                _stage_new_credentials(sandbox, airflow, env)
            started = time.monotonic()
            print(f"\n=== {dag_id}: airflow dags test {dag_id} {LOGICAL_DATE}")
            log_file = OUTPUT / "logs" / f"{dag_id}.log"
            log_file.parent.mkdir(exist_ok=True)
            with log_file.open("w") as log:
                result = subprocess.run(
                    [*airflow, "dags", "test", dag_id, LOGICAL_DATE],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            took = time.monotonic() - started
            status = "success" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
            print(f"=== {dag_id}: {status} in {took:.1f} s (Airflow's log: {log_file.relative_to(ROOT)})")
            if result.returncode != 0:
                print(log_file.read_text()[-6000:])
                failures.append(dag_id)
        stats = sandbox.stats
    extracts = _report(stats)
    if not extracts:
        failures.append("(no extract landed)")
    if failures:
        print(f"\nFailed DAGs: {', '.join(failures)}; their logs are under {AIRFLOW_HOME / 'logs'}")
        return 1
    return 0


def _stage_new_credentials(sandbox, airflow: list[str], env: dict[str, str]) -> None:
    """What administrators do before a promotion: create a new credential at the vendor (the sandbox
    mints it; the old one stops working) and stage it in Airflow for the rotation DAG to verify and
    promote. The values are never printed."""
    new = {
        "alasco_default": sandbox.alasco.mint_credentials(replace=True)[1],
        "cash_default": sandbox.cash.new_password(),
        "cloudpos_default": sandbox.cloudpos.new_token(),
    }
    for conn_id, secret in new.items():
        _run([*airflow, "variables", "set", f"ledgerlink_staged_password_{conn_id}", secret], env, quiet=True)
    print(f"\n(new credentials created in the sandbox and staged for {', '.join(new)})")


def _run(cmd: list[str], env: dict[str, str], *, quiet: bool = False, check: bool = True):
    result = subprocess.run(cmd, env=env, cwd=ROOT, text=True, capture_output=quiet, check=False)
    if check and result.returncode != 0:
        if quiet:
            print(result.stdout[-4000:], result.stderr[-4000:])
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {result.returncode}")
    return result


def _report(stats) -> int:
    """Print what landed; returns the number of extracts."""
    from airflow_provider_ledgerlink.core.sinks import read_manifest

    print("\nWhat landed in the lake:")
    # A folder holds a manifest per commit; the latest complete one is the extract.
    folders = sorted({path.parent for path in LAKE.rglob("_manifest*.json")})
    landed = [(folder, read_manifest(folder)) for folder in folders]
    landed = [(folder, manifest) for folder, manifest in landed if manifest is not None]
    if not landed:
        print("  nothing")
        return 0
    width = max(len(str(folder.relative_to(LAKE))) for folder, _ in landed)
    total = 0
    for folder, manifest in landed:
        total += manifest["rows"]
        name = folder.relative_to(LAKE)
        print(f"  {name!s:<{width}}  {manifest['rows']:>8,} rows in {len(manifest['parts'])} part(s)")
    print(f"\n  {total:,} rows in {len(landed)} extracts under {LAKE}")
    print(
        "  Read a part:  zcat " + str(next(iter(sorted(LAKE.rglob("*.jsonl.gz"))), "<part>")) + " | head -3"
    )
    for report in sorted((LAKE / "_reports").glob("*.json")):
        print(f"  Report: {report}")
        for key, value in json.loads(report.read_text()).items():
            status = (
                value.get("status") or ("ok" if value.get("ok") else "?")
                if isinstance(value, dict)
                else value or "skipped (nothing to do)"
            )
            print(f"    {key}: {status}")
    if isinstance(stats, dict):
        calls = {vendor: s.get("requests", 0) for vendor, s in stats.items() if isinstance(s, dict)}
        print(f"  Sandbox requests served: {calls}")
    return len(landed)


if __name__ == "__main__":
    sys.exit(main())
