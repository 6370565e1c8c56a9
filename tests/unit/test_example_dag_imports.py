"""Example DAGs are what users copy: they import only public names of public modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[2] / "example_dags").glob("*.py"))

#: Modules of this package that re-export Airflow's own names for its internal use; a DAG imports
#: those names from Airflow.
INTERNAL_MODULES = {"airflow_provider_ledgerlink.core.compat"}


def _imports(path: Path) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_there_are_example_dags() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_dag_imports_nothing_private(path: Path) -> None:
    private = [
        f"{module}:{name}"
        for module, name in _imports(path)
        if module.startswith("airflow_provider_ledgerlink")
        and (
            any(part.startswith("_") for part in module.split("."))
            or name.startswith("_")
            or module in INTERNAL_MODULES
        )
    ]
    assert private == []


def test_the_check_catches_a_private_import(tmp_path: Path) -> None:
    dag = tmp_path / "dag.py"
    dag.write_text(
        "from airflow_provider_ledgerlink.hooks.cash import _SoapSession\n"
        "from airflow_provider_ledgerlink.core.compat import ObjectStoragePath\n"
    )
    assert len(_imports(dag)) == 2
    with pytest.raises(AssertionError):
        test_an_example_dag_imports_nothing_private(dag)
