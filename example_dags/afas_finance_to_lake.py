"""AFAS Profit finance data into a lake folder, one incremental window a day.

Each run lands the rows changed during its data interval (the previous day) for the transactional
GetConnectors, and a full copy of the small reference connectors. Clearing a run, or backfilling a
range of days, reads the same windows again and replaces their folders: nothing is duplicated.

Set ``LEDGERLINK_LAKE`` to the lake's root (``s3://bucket/raw``, ``gs://…``, a local path).
The connection ``afas_default`` holds the token and the environment (see docs/afas.md).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator

LAKE = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/")

#: GetConnector → its modified-date field; ``None`` means a full copy every run (reference data,
#: and the outstanding items, which are a current state rather than a history).
FINANCE_CONNECTORS: dict[str, str | None] = {
    "Profit_Transactions": "Modified",
    "Profit_Fin_ChangedEntrydate": "Modified",
    "Profit_Debtor": "ModifiedDate",
    "Profit_Creditor": "ModifiedDate",
    "Profit_Debtor_Invoices": None,
    "Profit_Creditor_Invoices": None,
    "Profit_Administrations": None,
    "Profit_Accounts": None,
    "Profit_Journals": None,
}


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `afas_default` (type AFAS Profit (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (`s3://bucket/raw`, `gs://…`, a local path; default `file:///tmp/ledgerlink/lake`), where the data lands
"""
)

with DAG(
    dag_id="afas_finance_to_lake",
    doc_md=DOC_MD,
    description="AFAS Profit finance GetConnectors into the lake, incrementally",
    # A data-interval timetable: each run covers the previous day. (Airflow 3's plain "@daily" gives
    # runs a zero-length interval, which has no rows to extract.)
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    # Each extract keeps 5 requests in flight, AFAS's guidance for one environment: one at a time.
    max_active_tasks=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["ledgerlink", "afas"],
) as dag:
    for connector_id, modified_field in FINANCE_CONNECTORS.items():
        AfasExtractOperator(
            task_id=connector_id.lower(),
            connector_id=connector_id,
            modified_field=modified_field,
            destination=f"{LAKE}/afas/{connector_id}",
        )
