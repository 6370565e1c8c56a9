"""The AFAS example DAG under ``dag.test()`` against the sandbox: each manifest holds exactly the rows
the ``AfasHook`` reads for the same window, and running the same logical date again replaces the
output instead of adding to it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from test_example_dags import (
    EXAMPLE_DAGS,
    LOGICAL_DATE,
    assert_run_succeeded,
    lake,
    load_dag_file,
    run_dag,
    sandbox_env,
)

pytestmark = pytest.mark.timeout(900)

#: The fixtures come from the generic example-DAG test: the sandbox's connections and a fresh lake.
__all__ = ["lake", "sandbox_env"]
AFAS_DAG_ID = "afas_finance_to_lake"


def landed_extracts(lake: Path) -> dict[str, Path]:
    """``{connector_id: folder}`` of every complete AFAS extract in the lake (one per connector)."""
    manifests = sorted((lake / "afas").rglob("_manifest-*.json"))
    found: dict[str, Path] = {}
    for manifest in manifests:
        connector = manifest.parent.parent.name
        assert connector not in found, f"{connector}: more than one complete extract: {manifests}"
        found[connector] = manifest.parent
    return found


def snapshot(folder: Path) -> dict[str, Any]:
    """What a reader of one extract folder sees: manifest, files, part checksums and the rows."""
    from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
    from airflow_provider_ledgerlink.core.sinks import manifest_path, read_manifest, read_rows

    storage = ObjectStoragePath(folder.as_uri())
    manifest = read_manifest(storage)
    assert manifest is not None
    return {
        "manifest": manifest,
        "manifest_name": manifest_path(storage).name,
        "files": sorted(path.name for path in folder.iterdir()),
        "checksums": [(part["rows"], part["sha256"]) for part in manifest["parts"]],
        "rows": list(read_rows(storage)),
    }


def as_multiset(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


@pytest.fixture
def afas_hook(sandbox_env: Any) -> Iterator[Any]:
    from airflow_provider_ledgerlink.hooks.afas import AfasHook

    hook = AfasHook(page_size=250, max_in_flight=1)  # other paging than the tasks', same answer
    yield hook
    hook.close()


def test_afas_dag_lands_what_the_hook_reads_and_a_rerun_replaces_it(
    sandbox_env: Any, afas_hook: Any, lake: Path
) -> None:
    bag = load_dag_file(EXAMPLE_DAGS / "afas_finance_to_lake.py")
    assert not bag.import_errors
    dag = bag.dags[AFAS_DAG_ID]
    extracts = {task.connector_id: task for task in dag.tasks if hasattr(task, "connector_id")}
    assert extracts

    run_id, state = run_dag(bag, dag, LOGICAL_DATE)
    assert_run_succeeded(dag, run_id, state)

    # The run covers the day before its logical date.
    window_start, window_end = datetime(2026, 11, 18, tzinfo=timezone.utc), LOGICAL_DATE
    folders = landed_extracts(lake)
    assert set(folders) == set(extracts)
    first = {connector: snapshot(folder) for connector, folder in folders.items()}
    for connector, task in extracts.items():
        landed = first[connector]
        manifest = landed["manifest"]
        if task.modified_field:
            assert manifest["window"] == {"start": window_start.isoformat(), "end": window_end.isoformat()}
            assert folders[connector].name == "20261118T000000Z_20261119T000000Z"
            filters = [(task.modified_field, ">=", window_start), (task.modified_field, "<", window_end)]
        else:
            assert manifest["window"] is None
            assert folders[connector].name == "full"
            filters = []
        filters += list(task.filters or [])
        expected = list(afas_hook.get_rows(connector, filters=filters, order_by=task.order_by))
        assert manifest["rows"] == len(expected), connector
        assert as_multiset(landed["rows"]) == as_multiset(expected), connector  # the order may differ
        assert landed["files"] == sorted(
            [landed["manifest_name"], *(part["path"] for part in manifest["parts"])]
        )
    assert first["Profit_Transactions"]["manifest"]["rows"] > 0, "the window should hold transactions"

    # The same logical date again: the same rows, written anew, and nothing left of the first run.
    run_id, state = run_dag(bag, dag, LOGICAL_DATE)
    assert_run_succeeded(dag, run_id, state)

    assert landed_extracts(lake) == folders
    for connector, folder in folders.items():
        again = snapshot(folder)
        before = first[connector]
        assert again["manifest"]["run_id"] != before["manifest"]["run_id"], f"{connector} was not rewritten"
        assert again["rows"] == before["rows"], connector
        assert again["checksums"] == before["checksums"], connector
        assert again["files"] == sorted(
            [again["manifest_name"], *(part["path"] for part in again["manifest"]["parts"])]
        ), f"{connector}: files of the first run were left behind"
        assert not set(again["files"]) & set(before["files"])
