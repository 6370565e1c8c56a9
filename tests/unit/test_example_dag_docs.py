"""Each example DAG's page says which connections and which lake it needs (``doc_md``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAG_FILES = sorted((Path(__file__).parents[2] / "example_dags").glob("*.py"))


def _doc_md(path: Path) -> str:
    tree = ast.parse(path.read_text())
    docstring = ast.get_docstring(tree, clean=False) or ""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "DOC_MD" for t in node.targets):
            value = node.value
            assert isinstance(value, ast.BinOp)
            assert isinstance(value.right, ast.Constant)
            return docstring + value.right.value
    raise AssertionError(f"{path.name} defines no DOC_MD")


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_the_dag_page_names_its_connections_and_lake(path):
    source = path.read_text()
    text = _doc_md(path)

    assert "doc_md=DOC_MD" in source
    assert "Airflow connections:" in text
    assert "_default" in text
    assert "`LEDGERLINK_LAKE`" in text
