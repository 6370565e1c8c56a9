"""CASH: relations and journal lines into the lake, and the day's journal entry into CASH.

Each daily run (its data interval is the previous day):

* ``relations`` lands the relations (record 0101) changed since the interval began (CASH's ``W|N``
  selection), ``journal_lines`` the journal lines (0301) of the booking period the day falls in;
* ``land_daily_journal`` stands in for the system upstream of CASH (a webshop or till settlement):
  it lands the day's journal entry as a JSON Lines file in the outbox;
* ``import_journal`` imports that file into CASH and waits, in the triggerer, until the CASHWin
  process of the API user has processed it, reading the entry back from CASH every 30 seconds; it
  never imports the same entry twice: a retry, a rerun or a backfill of the day finds its document
  number recorded and follows the earlier import instead of sending it again;
* ``delivery_addresses`` lands the delivery addresses (2229) of one relation, chosen with the DAG's
  own param ``relation``: CASH's export properties go in ``export_params`` (``params`` is Airflow's).

Set ``LEDGERLINK_LAKE`` to the lake's root (``s3://bucket/raw``, ``gs://…``, a local path). The
connection ``cash_default`` holds the API user and the administration (see docs/cash.md).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from decimal import Decimal

import pendulum
from airflow.sdk import DAG, ObjectStoragePath, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.cash import CashExtractOperator, CashImportOperator

LAKE = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/")
OUTBOX = f"{LAKE}/outbox/cash/journal"
#: CASHWin looks for new instructions about every 30 seconds; there is no point asking more often.
POLL_INTERVAL = float(os.environ.get("LEDGERLINK_CASH_POLL_INTERVAL", "30"))


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `cash_default` (type CASH (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (`s3://bucket/raw`, `gs://…`, a local path; default `file:///tmp/ledgerlink/lake`), where the data lands
"""
)

with DAG(
    dag_id="cash_relations_and_journal",
    doc_md=DOC_MD,
    description="CASH relations and journal lines to the lake; the day's journal entry into CASH",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    # CASH accepts 100 requests a minute per API user: one CASH task at a time keeps far below it.
    max_active_tasks=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=2)},
    tags=["ledgerlink", "cash"],
    params={
        "relation": Param("000100", type="string", description="Relation whose delivery addresses to land")
    },
) as dag:
    relations = CashExtractOperator(
        task_id="relations",
        record_code="0101",
        destination=f"{LAKE}/cash/relations",
    )
    journal_lines = CashExtractOperator(
        task_id="journal_lines",
        record_code="0301",
        destination=f"{LAKE}/cash/journal_lines",
    )

    @task
    def land_daily_journal(data_interval_start: datetime | None = None) -> str:
        """The day's takings as one balanced memorial entry (bank, revenue, VAT), landed as JSON Lines."""
        day = pendulum.instance(data_interval_start or pendulum.now("UTC")).in_timezone("Europe/Amsterdam")
        gross = Decimal(1000 + day.day_of_year * 7).quantize(Decimal("0.01"))
        net = (gross / Decimal("1.21")).quantize(Decimal("0.01"))
        document = f"9{day:YYDDDD}"  # unique per year and journal: 9 + year + day of the year
        common = {"booking_date": day.to_date_string(), "journal": "MM", "document_number": document}
        lines = [
            {**common, "ledger_account": "1100", "amount": str(gross), "description": f"Kassa {day:DD-MM}"},
            {**common, "ledger_account": "8000", "amount": str(-net), "description": f"Omzet {day:DD-MM}"},
            {
                **common,
                "ledger_account": "1600",
                "amount": str(net - gross),
                "description": f"Btw {day:DD-MM}",
            },
        ]
        path = ObjectStoragePath(f"{OUTBOX}/{day.to_date_string()}.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        return str(path)

    landed = land_daily_journal()
    import_journal = CashImportOperator(
        task_id="import_journal",
        record_code="0301",
        records_path=landed,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
    )
    delivery_addresses = CashExtractOperator(
        task_id="delivery_addresses",
        record_code="2229",
        export_params="|{{ params.relation }}",  # 2229|000100: one relation's delivery addresses
        destination=f"{LAKE}/cash/delivery_addresses",
    )
    relations >> journal_lines >> import_journal >> delivery_addresses
