"""A webshop order through the restaurant's POS: create the weborder, wait for the kitchen to confirm
it, then book the sale.

1. ``create_weborder`` sends the order to CloudPOS (V2 ``weborder.insert``). Trigger the DAG with
   ``{"weborder": {…}}`` as run configuration; the default is a sample order for the sandbox (its
   product ids exist only there). A retry never sends the same weborder twice.
2. ``wait_for_confirmation`` waits, in the triggerer, until the restaurant confirms the weborder in
   its POS, and returns the confirmed pick-up or delivery time. It polls within the licence's daily
   budget: fifty open weborders share the day's requests instead of spending them in an hour.
   A weborder that does not exist (2003) or an empty weborder id (2002) fails the run at once.
3. ``land_confirmed_sale`` books the sale. **Invoicing it in Tripletex is the goal of this DAG, but
   the Tripletex operators are not part of LedgerLink yet**: until they are, the confirmed sale
   lands in the lake (``<LEDGERLINK_LAKE>/cloudpos/confirmed_weborders/<weborder id>/``, gzip JSON
   Lines with a manifest) for the invoicing step to pick up. Replace this task with the Tripletex
   invoice operator once it exists.

If weborders reach CloudPOS another way (the restaurant's own webshop), drop ``create_weborder`` and
template the sensor's ``weborder_id`` from the run configuration instead.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_ledgerlink.operators.cloudpos import CloudPosCreateWeborderOperator
from airflow_provider_ledgerlink.sensors.cloudpos import CloudPosWeborderConfirmedSensor

LAKE = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/")

#: A takeaway order of two products, as the webshop would send it (sandbox product ids).
SAMPLE_WEBORDER: dict[str, Any] = {
    "plannedorder": False,
    "autoconfirmation": False,
    "customerid": 12,
    "delivery": 0,
    "onlinepaid": True,
    "discountamount": "0.00",
    "remark": "Webshop order",
    "weborderdetail": [
        {"quantity": 2, "productid": 1000, "productprice": "3.50", "producttax": 6},
        {"quantity": 1, "productid": 1006, "productprice": "2.60", "producttax": 21, "extrainfo": "no ice"},
    ],
}


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `cloudpos_default` (type CloudPOS (LedgerLink)); `tripletex_default` (type Tripletex (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (`s3://bucket/raw`, `gs://…`, a local path; default `file:///tmp/ledgerlink/lake`), where the data lands
"""
)

with DAG(
    dag_id="cloudpos_weborder_to_tripletex",
    doc_md=DOC_MD,
    description="Create a CloudPOS weborder, wait for the POS to confirm it, book the sale",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/Brussels"),
    catchup=False,
    params={"weborder": SAMPLE_WEBORDER},
    render_template_as_native_obj=True,  # the weborder stays a dict, not its text
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=2)},
    tags=["ledgerlink", "cloudpos", "tripletex"],
) as dag:
    create_weborder = CloudPosCreateWeborderOperator(
        task_id="create_weborder",
        weborder="{{ params.weborder }}",
    )

    wait_for_confirmation = CloudPosWeborderConfirmedSensor(
        task_id="wait_for_confirmation",
        weborder_id="{{ ti.xcom_pull(task_ids='create_weborder')['weborder_id'] }}",
        deferrable=True,
        poke_interval=60,
        timeout=4 * 60 * 60,
    )

    @task
    def land_confirmed_sale(
        confirmation: dict[str, Any], params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The confirmed sale, for the invoicing step (Tripletex, once its operators exist)."""
        from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
        from airflow_provider_ledgerlink.core.sinks import JsonLinesSink

        weborder = (params or {}).get("weborder") or {}
        sale = {
            "weborder_id": confirmation["weborder_id"],
            "confirmed_time": confirmation["confirmed_time"],
            "confirmed_time_utc": confirmation["confirmed_time_utc"],
            "customerid": weborder.get("customerid"),
            "delivery": weborder.get("delivery"),
            "lines": weborder.get("weborderdetail", []),
        }
        folder = ObjectStoragePath(f"{LAKE}/cloudpos/confirmed_weborders/{sale['weborder_id']}")
        with JsonLinesSink(folder) as sink:
            sink.write_rows([sale])
            manifest = sink.commit(vendor="CloudPOS", object="confirmed_weborder", window=None)
        return {"folder": str(folder), "rows": manifest["rows"], "weborder_id": sale["weborder_id"]}

    land_confirmed_sale(wait_for_confirmation.output)
    create_weborder >> wait_for_confirmation
