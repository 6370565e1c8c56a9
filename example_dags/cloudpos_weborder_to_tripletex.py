"""A webshop order through the restaurant's POS into Tripletex: create the weborder, wait for the
kitchen to confirm it, then book it in Tripletex as an order and its invoice.

1. ``create_weborder`` sends the order to CloudPOS (V2 ``weborder.insert``). Trigger the DAG with
   ``{"order_key": "<the webshop's order number>", "weborder": {…}}`` as run configuration; the
   default is a sample order for the sandbox (its product and customer ids exist only there). The
   weborder is sent once per ``order_key``: a retry, a cleared task or a second run for the same
   order returns the weborder created the first time. An answer that leaves it open (HTTP 200
   without ``weborderid``, a 5xx or a dropped connection after sending) fails the task with how to
   check in the POS.
2. ``wait_for_confirmation`` waits, in the triggerer, until the restaurant confirms the weborder in
   its POS, and returns the confirmed pick-up or delivery time (CloudPOS's ``webordertime``). It
   polls within the licence's daily budget: fifty open weborders share the day's requests instead of
   spending them in an hour. A weborder that does not exist (2003) or an empty weborder id (2002)
   fails the run at once.
3. ``weborder_as_order`` turns the confirmed weborder into an order record for Tripletex: the
   CloudPOS customer (``get-customers``) and product names (``get-products``), two requests of the
   day's budget. The order's key is ``CLOUDPOS-<weborderid>``, its date the confirmed day (Brussels).
   Prices are CloudPOS's, VAT included; CloudPOS's VAT rates are mapped to Tripletex VAT types by
   ``TRIPLETEX_VAT_TYPES`` (have the accountant set it).
4. ``book_in_tripletex`` creates (or finds) the customer, under the CloudPOS customer id as its
   customer number, then the order and its invoice, with ``TripletexCreateInvoicesOperator``. Each is
   looked for before it is written: rerunning the DAG run, clearing the task or a retry after a lost
   answer books nothing twice. The invoice is not sent to the customer.

Amounts are booked as CloudPOS gives them (euro). A Tripletex company that keeps its books in
another currency converts them in ``weborder_as_order``. Before feeding a real company, do
Tripletex's webshop set-up (docs/tripletex.md): customer numbers from 100000, and an invoice series
clear of the shop's.

If weborders reach CloudPOS another way (the restaurant's own webshop), drop ``create_weborder`` and
template the sensor's ``weborder_id`` from the run configuration instead.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_ledgerlink.operators.cloudpos import CloudPosCreateWeborderOperator
from airflow_provider_ledgerlink.operators.tripletex import TripletexCreateInvoicesOperator
from airflow_provider_ledgerlink.sensors.cloudpos import CloudPosWeborderConfirmedSensor

#: A takeaway order of two products, as the webshop would send it (sandbox product and customer ids).
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

#: CloudPOS VAT rate (``producttax``, per cent) -> Tripletex VAT type id. Belgian rates have no
#: Norwegian twin: this is the company's choice (3: output VAT high rate, 31: middle, 33: low).
TRIPLETEX_VAT_TYPES = {21: 3, 12: 31, 6: 33}
#: The Tripletex customer that weborders without a CloudPOS customer are booked on.
WALK_IN_CUSTOMER = {"key": "99999", "name": "CloudPOS webshop customers"}

#: What the DAG page shows under the description: the connections this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `cloudpos_default` (type CloudPOS (LedgerLink)); `tripletex_default` (type Tripletex (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: not used (the weborder goes from CloudPOS to Tripletex; nothing lands in the lake)
"""
)


def order_record(
    confirmation: dict[str, Any],
    weborder: dict[str, Any],
    customers: list[dict[str, Any]],
    products: list[dict[str, Any]],
) -> dict[str, Any]:
    """The Tripletex order record (see ``TripletexCreateInvoicesOperator``) of a confirmed weborder."""
    customer = next(
        (row for row in customers if str(row.get("id")) == str(weborder.get("customerid") or "")), None
    )
    if customer is None:
        booked_on: dict[str, Any] = dict(WALK_IN_CUSTOMER)
    else:  # the reference's field names, its spelling "fistname" included
        person = " ".join(part for part in (customer.get("fistname"), customer.get("name")) if part)
        booked_on = {
            "key": str(customer["id"]),
            "name": customer.get("companyname") or person or f"CloudPOS customer {customer['id']}",
            "email": customer.get("email") or None,
            "private": not customer.get("companyname"),
            "address": {
                "line1": customer.get("street_number") or "",
                "postal_code": customer.get("zipcode") or "",
                "city": customer.get("town") or "",
            },
        }
    names = {str(row.get("id")): row.get("name") for row in products}
    prices = {str(row.get("id")): row.get("price") for row in products}
    lines = []
    for line in weborder.get("weborderdetail") or []:
        product = str(line.get("productid"))
        tax = int(float(line.get("producttax") or 21))
        lines.append(
            {
                "description": names.get(product) or f"CloudPOS product {product}",
                "quantity": line.get("quantity", 1),
                "unit_price_incl_vat": line.get("productprice") or prices.get(product),
                "vat_type_id": TRIPLETEX_VAT_TYPES.get(tax, 3),
            }
        )
    day = (confirmation.get("confirmed_time") or pendulum.now("Europe/Brussels").isoformat())[:10]
    return {
        "order_key": f"CLOUDPOS-{confirmation['weborder_id']}",
        "order_date": day,
        "customer": booked_on,
        "lines": lines,
        "prices_include_vat": True,
        "comment": f"CloudPOS weborder {confirmation['weborder_id']}, ready {confirmation.get('confirmed_time')}",
    }


with DAG(
    dag_id="cloudpos_weborder_to_tripletex",
    doc_md=DOC_MD,
    description="Create a CloudPOS weborder, wait for the POS to confirm it, book it in Tripletex",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/Brussels"),
    catchup=False,
    params={"order_key": "WEB-1001", "weborder": SAMPLE_WEBORDER},
    render_template_as_native_obj=True,  # the weborder stays a dict, not its text
    default_args={"retries": 1, "retry_delay": pendulum.duration(minutes=2)},
    tags=["ledgerlink", "cloudpos", "tripletex"],
) as dag:
    create_weborder = CloudPosCreateWeborderOperator(
        task_id="create_weborder",
        weborder="{{ params.weborder }}",
        reference="webshop/{{ params.order_key }}",  # one weborder per webshop order, whatever the run
    )

    wait_for_confirmation = CloudPosWeborderConfirmedSensor(
        task_id="wait_for_confirmation",
        weborder_id="{{ ti.xcom_pull(task_ids='create_weborder')['weborder_id'] }}",
        deferrable=True,
        poke_interval=60,
        timeout=4 * 60 * 60,
    )

    @task
    def weborder_as_order(
        confirmation: dict[str, Any], params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """The confirmed weborder as a Tripletex order record, with CloudPOS's customer and product names."""
        from airflow_provider_ledgerlink.hooks.cloudpos import CloudPosHook

        with CloudPosHook() as hook:
            customers = list(hook.get_rows("customers"))
            products = list(hook.get_rows("products"))
        return [order_record(confirmation, (params or {}).get("weborder") or {}, customers, products)]

    book_in_tripletex = TripletexCreateInvoicesOperator(
        task_id="book_in_tripletex",
        records=weborder_as_order(wait_for_confirmation.output),
        own_customer_series_start=100_000,  # Tripletex's own customer numbers, after the set-up
        tripletex_invoice_series_start=50_000,  # Tripletex's invoice series, clear of the shop's 6000…
        send_to_customer=False,
    )
    create_weborder >> wait_for_confirmation
