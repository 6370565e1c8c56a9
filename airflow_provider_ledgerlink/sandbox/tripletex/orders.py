"""Orders and invoices: date-window lists, ``POST /order`` with nested ``orderLines``, and
``PUT /order/{id}/:invoice?invoiceDate=…`` which books the invoice's voucher and records whether the
invoice was sent (``sendToCustomer`` defaults to true, as at Tripletex).
"""

from __future__ import annotations

import bisect
import json
from datetime import date, timedelta
from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Request, Response
from airflow_provider_ledgerlink.sandbox.tripletex.data import (
    ACCOUNT_ID_BASE,
    NOK_ID,
    RUNTIME_ID_BASE,
    VAT_TYPES,
)
from airflow_provider_ledgerlink.sandbox.tripletex.errors import invalid, not_found
from airflow_provider_ledgerlink.sandbox.tripletex.model import URL_BASE, object_ref
from airflow_provider_ledgerlink.sandbox.tripletex.query import AddRoute, matches
from airflow_provider_ledgerlink.sandbox.tripletex.values import day_number, money, parse_date, to_cents
from airflow_provider_ledgerlink.sandbox.tripletex.vouchers import VoucherHandlers

__all__ = ["OrderHandlers"]


class OrderHandlers(VoucherHandlers):
    def _add_order_routes(self, add: AddRoute) -> None:
        add("GET", r"/order", self._list_of("order", self._dated_orders))
        add("POST", r"/order", self._create_order)
        add("GET", r"/order/(?P<ident>\d+)", self._get_one("order"))
        add("PUT", r"/order/(?P<ident>\d+)/:invoice", self._invoice_order)
        add("GET", r"/order/orderline/(?P<ident>\d+)", self._get_one("orderLine"))
        add("GET", r"/invoice", self._list_of("invoice", self._dated_orders))
        add("GET", r"/invoice/(?P<ident>\d+)", self._get_one("invoice"))

    def _dated_orders(self, kind: str, request: Request) -> list[dict[str, Any]]:
        """The orders or invoices (``kind``) of the request's date window matching its filters, generated
        ones (as changed by requests) first, then created ones."""
        names = ("orderDateFrom", "orderDateTo") if kind == "order" else ("invoiceDateFrom", "invoiceDateTo")
        start, end = self._window(request, names)
        date_field = "orderDate" if kind == "order" else "invoiceDate"
        day_lo, day_hi = day_number(start), day_number(end)
        times = self._order_times

        def day_of(k: int) -> int:
            return times.seconds(k) // 86400

        lo = bisect.bisect_left(range(self.orders), day_lo, key=day_of)
        hi = bisect.bisect_left(range(self.orders), day_hi, key=day_of)
        make = self._order_dict if kind == "order" else self._invoice_dict
        generated = [make(k) for k in range(lo, hi)]
        with self._lock:
            overlay = self._objects[kind]
            generated = [overlay.get(obj["id"], obj) for obj in generated]
        first, last = start.isoformat(), end.isoformat()
        items = generated + self._runtime(
            kind, lambda o: o["id"] > RUNTIME_ID_BASE and first <= o[date_field] < last
        )
        filters: dict[str, str] = {}
        for name in ("id", "number", "customerId", "invoiceNumber", "kid", "isClosed"):
            if request.param(name):
                filters[name] = request.param(name) or ""
        return [item for item in items if matches(item, filters)]

    def _create_order(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            customer = self._ref_id(body, "customer", "customer", required=True)
            order_date = parse_date(body.get("orderDate"), "orderDate", required=True)
            delivery_date = parse_date(body.get("deliveryDate"), "deliveryDate", required=True)
            assert order_date is not None and delivery_date is not None
            including = bool(body.get("isPrioritizeAmountsIncludingVat", False))
            ident = self._new_id()
            line_refs: list[dict[str, Any] | None] = []
            lines = body.get("orderLines") or []
            if not isinstance(lines, list):
                raise invalid("orderLines", "Må være en liste.", code=16000)
            new_lines = []
            for index, line in enumerate(lines):
                new_lines.append(self._new_order_line(line, index, ident, including))
            order = {
                "id": ident,
                "version": 1,
                "url": f"{URL_BASE}/order/{ident}",
                "customer": object_ref("customer", customer),
                "number": str(body.get("number") or 20_000 + self.orders + len(self._objects["order"]) + 1),
                "reference": str(body.get("reference") or ""),
                "orderDate": order_date.isoformat(),
                "deliveryDate": delivery_date.isoformat(),
                "deliveryComment": str(body.get("deliveryComment") or ""),
                "invoiceComment": str(body.get("invoiceComment") or ""),
                "currency": object_ref("currency", NOK_ID),
                "invoicesDueIn": int(body.get("invoicesDueIn") or 14),
                "invoicesDueInType": "DAYS",
                "isClosed": False,
                "isPrioritizeAmountsIncludingVat": including,
                "isSubscription": False,
                "status": "NOT_CHOSEN",
                "orderLines": line_refs,
            }
            for line in new_lines:
                self._objects["orderLine"][line["id"]] = line
                line_refs.append(object_ref("orderLine", line["id"]))
            self._objects["order"][ident] = order
            self._stamp(order, "CREATE")
            return Response.json({"value": self._project("order", order, None)}, 201)

    def _new_order_line(self, line: Any, index: int, order_id: int, including: bool) -> dict[str, Any]:
        where = f"orderLines[{index}]"
        if not isinstance(line, dict):
            raise invalid(where, "Må være et objekt.", code=16000)
        vat = self._ref_id(line, "vatType", "vatType") or 3
        product = self._ref_id(line, "product", "product")
        rate = VAT_TYPES[vat][2]
        excluding, including_price = (
            line.get("unitPriceExcludingVatCurrency"),
            line.get("unitPriceIncludingVatCurrency"),
        )
        if including:
            if including_price is None:
                raise invalid(
                    f"{where}.unitPriceIncludingVatCurrency",
                    "Ordren prioriterer beløp inkl. mva: oppgi unitPriceIncludingVatCurrency.",
                    code=15000,
                )
            gross = to_cents(including_price, f"{where}.unitPriceIncludingVatCurrency")
            net = round(gross * 100 / (100 + rate))
        else:
            if excluding is None and including_price is None:
                raise invalid(f"{where}.unitPriceExcludingVatCurrency", "Kan ikke være null.", code=15000)
            if excluding is not None:
                net = to_cents(excluding, f"{where}.unitPriceExcludingVatCurrency")
                gross = round(net * (100 + rate) / 100)
            else:
                gross = to_cents(including_price, f"{where}.unitPriceIncludingVatCurrency")
                net = round(gross * 100 / (100 + rate))
        quantity = line.get("count", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
            raise invalid(f"{where}.count", "Må være større enn 0.", code=15000)
        ident = self._new_id()
        return {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/order/orderline/{ident}",
            "product": object_ref("product", product),
            "description": str(line.get("description") or ""),
            "count": float(quantity),
            "unitPriceExcludingVatCurrency": money(net),
            "unitPriceIncludingVatCurrency": money(gross),
            "vatType": object_ref("vatType", vat),
            "currency": object_ref("currency", NOK_ID),
            "discount": float(line.get("discount") or 0.0),
            "amountExcludingVatCurrency": money(round(net * quantity)),
            "amountIncludingVatCurrency": money(round(gross * quantity)),
            "order": object_ref("order", order_id),
        }

    def _invoice_order(self, request: Request, ident: str) -> Response:
        invoice_date = parse_date(request.param("invoiceDate"), "invoiceDate", required=True)
        assert invoice_date is not None
        send = (request.param("sendToCustomer") or "true").lower() != "false"
        with self._lock:
            order = self._object("order", int(ident))
            if order is None:
                raise not_found("order", ident)
            lines = [
                line
                for ref in order.get("orderLines") or []
                if (line := self._object("orderLine", ref["id"])) is not None
            ]
            if not lines:
                raise invalid("orderLines", "Ordren har ingen ordrelinjer å fakturere.", code=15000)
            net = sum(round(line["amountExcludingVatCurrency"] * 100) for line in lines)
            gross = sum(round(line["amountIncludingVatCurrency"] * 100) for line in lines)
            invoice_id = self._new_id()
            number = max(self._next_invoice_number, self.invoice_series_start)
            self._next_invoice_number = number + 1
            voucher = self._book_invoice_voucher(invoice_date, number, order["customer"]["id"], net, gross)
            invoice = {
                "id": invoice_id,
                "version": 1,
                "url": f"{URL_BASE}/invoice/{invoice_id}",
                "invoiceNumber": number,
                "invoiceDate": invoice_date.isoformat(),
                "invoiceDueDate": (
                    invoice_date + timedelta(days=int(order.get("invoicesDueIn") or 14))
                ).isoformat(),
                "customer": order["customer"],
                "orders": [object_ref("order", order["id"])],
                "orderLines": [object_ref("orderLine", line["id"]) for line in lines],
                "voucher": object_ref("voucher", voucher),
                "kid": "",
                "comment": "",
                "amount": money(gross),
                "amountCurrency": money(gross),
                "amountExcludingVat": money(net),
                "amountExcludingVatCurrency": money(net),
                "amountOutstanding": money(gross),
                "amountCurrencyOutstanding": money(gross),
                "currency": object_ref("currency", NOK_ID),
                "isCreditNote": False,
                "isCharged": True,
                "isApproved": True,
            }
            self._objects["invoice"][invoice_id] = invoice
            self._stamp(invoice, "CREATE")
            if send:
                self.sent_invoices.append(invoice_id)
                self.counters.invoices_sent += 1
            updated = json.loads(json.dumps(order))
            updated.update(isClosed=True, status="INVOICED", version=updated["version"] + 1)
            self._objects["order"][updated["id"]] = updated
            self._stamp(updated, "UPDATE")
            return Response.json({"value": self._project("invoice", invoice, None)})

    def _book_invoice_voucher(self, day: date, number: int, customer: int, net: int, gross: int) -> int:
        postings = [
            {"account": {"id": ACCOUNT_ID_BASE + 1500}, "amountGross": money(gross), "customer": {"id": customer},
             "row": 1, "description": f"Faktura {number}"},
            {"account": {"id": ACCOUNT_ID_BASE + 3000}, "amountGross": money(-net), "row": 2, "vatType": {"id": 3},
             "description": f"Faktura {number}"},
            {"account": {"id": ACCOUNT_ID_BASE + 2700}, "amountGross": money(net - gross), "row": 3,
             "description": f"Faktura {number}"},
        ]  # fmt: skip
        voucher = self._store_voucher(
            {"date": day.isoformat(), "description": f"Faktura {number}", "postings": postings}, "invoice"
        )
        for ref in voucher["postings"]:
            posting = self._objects["posting"][ref["id"]]
            posting["invoiceNumber"] = str(number)
            if posting["row"] == 1:
                posting["type"] = "OUTGOING_INVOICE_CUSTOMER_POSTING"
        return int(voucher["id"])
