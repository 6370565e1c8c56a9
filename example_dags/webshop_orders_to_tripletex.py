"""A webshop's orders of the day into Tripletex: customers, orders and invoices, each exactly once.

1. ``land_orders`` finds the day's order file in the lake
   (``<LEDGERLINK_LAKE>/webshop/orders/<YYYY-MM-DD>.jsonl``). In a real set-up the shop (or an extract
   DAG) puts it there; for this example, when there is none, the task writes a small sample of
   the day's orders, the same every time for the same day.
2. ``invoice_orders`` reads the file and, for every order, creates or updates the customer (with the
   shop's own customer number, below 100000; a customer LedgerLink did not create is never
   changed), creates the order with its lines and invoices it without sending it
   (``sendToCustomer`` off). Every write is made at most once: running the DAG twice for the same
   day, clearing the task, or a retry after a lost answer creates nothing twice.

Before feeding a real Tripletex company, do the webshop set-up in Tripletex (docs/tripletex.md):
"Kunde – innstillinger: sett kundenummer til 100000", so Tripletex's own customers are numbered from
100000 and the shop's keep their numbers below it; and in "Regnskap – Regnskapsinnstillinger –
Bilagstyper/nummerserier" an invoice series clear of the shop's (which starts at 6000), e.g. 50000.

Set ``LEDGERLINK_LAKE`` to the lake's root. The connection ``tripletex_default`` holds the tokens.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.tripletex import TripletexCreateInvoicesOperator

LAKE = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/")

#: The sample shop's customers (its own customer ids are the keys) and products.
SAMPLE_CUSTOMERS = [
    {"key": "1001", "name": "Fjordkafé AS", "email": "post@fjordkafe.no", "organization_number": "921 654 987",
     "address": {"line1": "Strandkaien 4", "postal_code": "5013", "city": "BERGEN"}},
    {"key": "1002", "name": "Kari Nordmann", "email": "kari@example.no", "private": True,
     "address": {"line1": "Storgata 12", "postal_code": "0155", "city": "OSLO"}},
    {"key": "1003", "name": "Tromsø Turlag", "email": "kontor@tromsoturlag.no", "organization_number": "987 123 456"},
]  # fmt: skip
SAMPLE_PRODUCTS = [("Kaffe 500 g", 89.0), ("Termokopp", 249.0), ("Ullsokker", 179.0), ("Strikkelue", 299.0)]


def sample_orders(day: str) -> list[dict[str, Any]]:
    """Four orders for ``day``, always the same ones for the same day."""
    number = int(day.replace("-", ""))
    orders = []
    for n in range(4):
        customer = SAMPLE_CUSTOMERS[(number + n) % len(SAMPLE_CUSTOMERS)]
        lines = [
            {"description": name, "quantity": 1 + (number + n + k) % 3, "unit_price": price, "vat_type_id": 3}
            for k, (name, price) in enumerate(SAMPLE_PRODUCTS)
            if (number + n + k) % 2 == 0
        ]
        orders.append(
            {"order_key": f"WS-{number}-{n + 1}", "order_date": day, "customer": customer, "lines": lines}
        )
    return orders


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `tripletex_default` (type Tripletex (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (default `file:///tmp/ledgerlink/lake`), where the orders are read and the results land
"""
)

with DAG(
    dag_id="webshop_orders_to_tripletex",
    doc_md=DOC_MD,
    description="The webshop's orders of the day into Tripletex as customers, orders and invoices",
    schedule=CronDataIntervalTimetable("@daily", timezone="Europe/Oslo"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/Oslo"),
    catchup=False,
    max_active_runs=1,  # one day at a time: orders of a day are invoiced in order
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["ledgerlink", "tripletex", "webshop"],
) as dag:

    @task
    def land_orders(data_interval_start: Any = None) -> str:
        """The day's order file; a sample one is written when the lake has none (this example only)."""
        import json

        from airflow.sdk import ObjectStoragePath

        day = pendulum.instance(data_interval_start).in_timezone("Europe/Oslo").to_date_string()
        path = ObjectStoragePath(f"{LAKE}/webshop/orders/{day}.jsonl")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = ObjectStoragePath(f"{path}.tmp")
            with temporary.open("w", encoding="utf-8") as handle:
                for order in sample_orders(day):
                    handle.write(json.dumps(order, ensure_ascii=False) + "\n")
            temporary.rename(path)
        return str(path)

    TripletexCreateInvoicesOperator(
        task_id="invoice_orders",
        records_path=land_orders(),
        own_customer_series_start=100_000,  # Tripletex's own customer numbers, after the set-up
        tripletex_invoice_series_start=50_000,  # Tripletex's invoice series, clear of the shop's 6000…
        send_to_customer=False,
    )
