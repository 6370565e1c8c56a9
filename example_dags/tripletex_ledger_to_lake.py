"""Tripletex ledger and customers into a lake folder, one Oslo day per run.

Each run lands what belongs to its data interval, the previous day in Oslo (Tripletex's dates are
Oslo dates, so the schedule runs in Europe/Oslo and every window is exactly one day):

* ``postings`` and ``vouchers`` dated that day (Tripletex's date window, exclusive end);
* ``customers`` whose last change falls in that day (``changedSince`` plus each row's ``changes``);
* ``accounts``, the chart of accounts, as a full copy that is kept as it is while Tripletex's
  checksum says nothing changed.

Clearing a run, or backfilling a range of days, reads the same windows again and replaces their
folders: nothing is duplicated, nothing is skipped. All tasks share one session token (through the
credential store) and Tripletex's rate limit, leaving the configured reserve for the people working
in Tripletex.

Set ``LEDGERLINK_LAKE`` to the lake's root (``s3://bucket/raw``, ``gs://…``, a local path).
The connection ``tripletex_default`` holds the tokens (see docs/tripletex.md).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.tripletex import TripletexExtractOperator

LAKE = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/")

#: What to land, with the fields to ask for (``None``: all of them).
RESOURCES: dict[str, str | None] = {
    "postings": None,
    "vouchers": "id,version,date,number,year,description,externalVoucherNumber,voucherType,postings",
    "customers": None,
    "accounts": None,
}


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `tripletex_default` (type Tripletex (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (`s3://bucket/raw`, `gs://…`, a local path; default `file:///tmp/ledgerlink/lake`), where the data lands
"""
)

with DAG(
    dag_id="tripletex_ledger_to_lake",
    doc_md=DOC_MD,
    description="Tripletex postings, vouchers and customers into the lake, one Oslo day at a time",
    # Each run covers the previous day in Oslo. (Airflow 3's plain "@daily" gives runs a
    # zero-length interval, which has no rows to extract.)
    schedule=CronDataIntervalTimetable("@daily", timezone="Europe/Oslo"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/Oslo"),
    catchup=False,
    # Two extracts at a time: each keeps several pages in flight within the shared rate limit.
    max_active_tasks=2,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["ledgerlink", "tripletex"],
) as dag:
    for resource, fields in RESOURCES.items():
        TripletexExtractOperator(
            task_id=resource,
            resource=resource,
            fields=fields,
            destination=f"{LAKE}/tripletex/{resource}",
        )
