"""Alasco construction costs into a lake folder, once a day.

Each run lands what was created during its data interval (the previous day) for the resources
Alasco can filter by date, the invoices approved and paid during it, and a full copy of the master
data and of the reporting roll-ups (budgets, forecasts, cash outflow), which are current states
rather than histories. Clearing a run, or backfilling days, reads the same windows again and
replaces their folders: nothing is duplicated.

Set ``LEDGERLINK_LAKE`` to the lake's root (``s3://bucket/raw``, ``gs://…``, a local path). The
connection ``alasco_default`` holds the API key and token (see docs/alasco.md).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.alasco import AlascoExtractOperator

LAKE = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/")

#: task id → (resource, date attribute of the window; None for a full copy every run)
EXTRACTS: dict[str, tuple[str, str | None]] = {
    # what happened during the day
    "contracts": ("contracts", "date_created"),
    "invoices_created": ("invoices", "date_created"),
    "invoices_approved": ("invoices", "date_approved"),
    "invoices_paid": ("invoices", "payment_created"),
    # master data: small, and changed in place, so copied whole
    "properties": ("properties", None),
    "projects": ("projects", None),
    "contract_units": ("contract_units", None),
    "change_orders": ("change_orders", None),
    "contractors": ("contractors", None),
    "contracting_entities": ("contracting_entities", None),
    "cost_elements": ("cost_elements", None),
    "budget_shifts": ("budget_shifts", None),
    # the reporting API: today's figures
    "reporting_projects": ("reporting/projects", None),
    "reporting_contract_units": ("reporting/contract_units", None),
    "reporting_contracts": ("reporting/contracts", None),
    "reporting_cost_elements": ("reporting/cost_elements", None),
    "reporting_cash_outflow": ("reporting/cash_outflow/cost_elements", None),
}


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `alasco_default` (type Alasco (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (`s3://bucket/raw`, `gs://…`, a local path; default `file:///tmp/ledgerlink/lake`), where the data lands
"""
)

with DAG(
    dag_id="alasco_costs_to_lake",
    doc_md=DOC_MD,
    description="Alasco costs, invoices, budgets and reporting figures into the lake",
    # A data-interval timetable: each run covers the previous day. (Airflow 3's plain "@daily" gives
    # runs a zero-length interval, which has nothing to extract.)
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    # One account, one key: two extracts at a time, each with up to 4 requests in flight.
    max_active_tasks=2,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["ledgerlink", "alasco"],
) as dag:
    for task_id, (resource, date_field) in EXTRACTS.items():
        AlascoExtractOperator(
            task_id=task_id,
            resource=resource,
            date_field=date_field,
            incremental=date_field is not None,
            # Snapshots land in a dated folder per run; windows name their own folder.
            destination=f"{LAKE}/alasco/{task_id}" + ("" if date_field else "/{{ data_interval_end | ds }}"),
        )
