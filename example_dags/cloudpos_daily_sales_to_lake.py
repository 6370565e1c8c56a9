"""CloudPOS sales into a lake folder, one Brussels business day per run, within the daily budget.

Each run lands, for its data interval (the previous day, midnight to midnight Europe/Brussels, the
day CloudPOS counts in):

* the orders and invoices of that day (read with CloudPOS's date filter),
* the products and customers changed that day (CloudPOS has no filter for them: the whole list is
  read in one request and only the records whose ``modtime`` falls in the day are kept),
* a full copy of the categories.

That is five requests a day of the licence's 500. Every request is counted in the licence's shared
budget (Airflow Variables), so this DAG, the weborder sensors and any other DAG using the licence
never cross the limit together; with ``on_budget_exhausted="wait"`` a task that finds the budget spent
waits for the next day (deferred, no worker slot) instead of failing. Clearing a run or backfilling
days reads the same windows again and replaces their folders.

Set ``LEDGERLINK_LAKE`` to the lake's root (``s3://bucket/raw``, ``gs://…``, a local path). The
connection ``cloudpos_default`` holds the licence name and token (see docs/cloudpos.md).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.cloudpos import CloudPosExtractOperator

LAKE = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/")

#: What lands each day: dated lists by date, the rest by ``modtime``, categories as a full copy.
CLOUDPOS_LISTS = ("orders", "invoices", "products", "customers", "categories")


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `cloudpos_default` (type CloudPOS (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (`s3://bucket/raw`, `gs://…`, a local path; default `file:///tmp/ledgerlink/lake`), where the data lands
"""
)

with DAG(
    dag_id="cloudpos_daily_sales_to_lake",
    doc_md=DOC_MD,
    description="CloudPOS orders, invoices and changed master data into the lake, daily",
    # Brussels midnight to midnight: CloudPOS's own day (and the day its request budget resets).
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Europe/Brussels"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/Brussels"),
    catchup=False,
    max_active_tasks=2,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=10)},
    tags=["ledgerlink", "cloudpos"],
) as dag:
    for function in CLOUDPOS_LISTS:
        CloudPosExtractOperator(
            task_id=function,
            function=function,
            destination=f"{LAKE}/cloudpos/{function}",
            on_budget_exhausted="wait",
        )
