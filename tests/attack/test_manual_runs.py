"""A manual run of an unscheduled DAG has no data interval: the AFAS, CloudPOS and Alasco extracts
read everything (``full/``) instead of failing on ``'data_interval_start' is undefined``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from airflow_provider_ledgerlink.core.sinks import read_manifest

DAG_FILE = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG

    from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator
    from airflow_provider_ledgerlink.operators.alasco import AlascoExtractOperator
    from airflow_provider_ledgerlink.operators.cloudpos import CloudPosExtractOperator

    LAKE = {lake!r}

    with DAG(dag_id="manual_extracts", schedule=None, start_date=pendulum.datetime(2026, 11, 1, tz="UTC")):
        AfasExtractOperator(
            task_id="afas", connector_id="Profit_Transactions", modified_field="Modified",
            destination=LAKE + "/afas", page_size=500,
        )
        CloudPosExtractOperator(task_id="cloudpos", function="orders", destination=LAKE + "/cloudpos")
        AlascoExtractOperator(
            task_id="alasco", resource="contracts", date_field="date_created", destination=LAKE + "/alasco"
        )
    """
)


def test_a_manual_run_without_data_interval_reads_everything(
    monkeypatch: pytest.MonkeyPatch,
    airflow_db: Path,
    afas_connection: str,
    cloudpos_connection: str,
    alasco_connection: str,
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "manual_extracts.py").write_text(DAG_FILE.format(lake=lake.as_uri()))
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    import airflow.settings

    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(dags))  # test() writes this folder's DAGs
    bag = DagBag(dag_folder=str(dags), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["manual_extracts"]
    for task in dag.tasks:
        task.retries = 0

    if hasattr(bag, "sync_to_db"):  # Airflow 3.0 does not write the DAG in test() itself
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db(bundle_name="dags-folder", bundle_version=None)
    if not hasattr(dag, "test"):  # Airflow 3.0.0/3.0.1: only the core DAG has test()
        from airflow.models.dag import DAG as CoreDAG

        dag = CoreDAG.from_sdk_dag(dag)
    dag_run = dag.test()  # a manual run: no logical date, no data interval

    assert dag_run.data_interval_start is None or dag_run.data_interval_start == dag_run.data_interval_end
    assert str(dag_run.state) == "success", [(ti.task_id, ti.state) for ti in dag_run.get_task_instances()]
    from airflow.sdk import ObjectStoragePath

    for vendor in ("afas", "cloudpos", "alasco"):
        (folder,) = (lake / vendor).iterdir()
        assert folder.name == "full", vendor
        manifest = read_manifest(ObjectStoragePath(folder.as_uri()))
        assert manifest is not None and manifest["window"] is None and manifest["rows"] > 0, vendor
