"""A DAG file that imports LedgerLink's operators and sensors loads nothing vendor-heavy.

Every parse of every DAG file pays for its imports, so the SOAP and XML stacks (zeep, lxml) and the
sandbox's emulators are imported inside the functions that need them, never at a module's top
(docs/benchmarks.md, "DAG-parse import cost", measures what the imports do cost). Checked in a
fresh interpreter, where nothing an earlier test imported hides a module's own imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_provider_ledgerlink

ROOT = Path(airflow_provider_ledgerlink.__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "example_dags").glob("*.py"))

#: Modules that have no place in DAG parsing.
HEAVY_PREFIXES = ("zeep", "lxml", "airflow_provider_ledgerlink.sandbox")

# Imports every operator and sensor module, then loads every example DAG file as Airflow's DagBag
# does (spec_from_file_location + exec_module); prints what got imported at each step.
_IMPORT_ALL = r"""
import importlib, importlib.util, json, pkgutil, sys

found = {}
for package in ("airflow_provider_ledgerlink.operators", "airflow_provider_ledgerlink.sensors"):
    root = importlib.import_module(package)
    for info in pkgutil.iter_modules(root.__path__):
        importlib.import_module(f"{package}.{info.name}")
        found.setdefault("modules", []).append(f"{package}.{info.name}")
found["after_operators"] = sorted(sys.modules)
for index, path in enumerate(json.loads(sys.argv[1])):
    spec = importlib.util.spec_from_file_location(f"example_dag_{index}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
found["after_dags"] = sorted(sys.modules)
print(json.dumps(found))
"""


def heavy(modules: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in HEAVY_PREFIXES))


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "LEDGERLINK_LAKE": f"file://{home}/lake",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, json.dumps([str(p) for p in EXAMPLES])],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_operator_and_sensor_module_was_imported(imported: dict[str, list[str]]) -> None:
    names = imported["modules"]
    assert "airflow_provider_ledgerlink.operators.cash" in names
    assert "airflow_provider_ledgerlink.sensors.cash" in names
    assert len(names) >= 8


def test_operators_and_sensors_load_no_zeep_lxml_or_sandbox(imported: dict[str, list[str]]) -> None:
    assert heavy(imported["after_operators"]) == []


def test_the_example_dags_load_no_zeep_lxml_or_sandbox(imported: dict[str, list[str]]) -> None:
    assert len(EXAMPLES) >= 5
    assert heavy(imported["after_dags"]) == []


def test_the_check_names_each_heavy_module() -> None:
    loaded = [
        "airflow.sdk",
        "zeep.client",
        "lxml.etree",
        "airflow_provider_ledgerlink.sandbox.cash",
        "xml.etree",
    ]
    assert heavy(loaded) == ["airflow_provider_ledgerlink.sandbox.cash", "lxml.etree", "zeep.client"]
    assert heavy(["zeepish", "lxmlx", "airflow_provider_ledgerlink.sandboxes"]) == []
