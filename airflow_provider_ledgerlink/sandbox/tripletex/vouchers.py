"""Vouchers: the date-window list, ``>externalVoucherNumber``, and ``POST /ledger/voucher`` (balanced
postings, gross amounts only). Tripletex has no idempotency key: the same voucher sent twice is
created twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Request, Response
from airflow_provider_ledgerlink.sandbox.tripletex.data import VOUCHER_TYPE_IDS, posting_object
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError, invalid
from airflow_provider_ledgerlink.sandbox.tripletex.model import URL_BASE, object_ref
from airflow_provider_ledgerlink.sandbox.tripletex.query import AddRoute, TripletexQuery, matches
from airflow_provider_ledgerlink.sandbox.tripletex.values import money_text, parse_date, to_cents

__all__ = ["VoucherHandlers"]


class VoucherHandlers(TripletexQuery):
    def _add_voucher_routes(self, add: AddRoute) -> None:
        add("GET", r"/ledger/voucher", self._list_vouchers)
        add("POST", r"/ledger/voucher", self._create_voucher)
        add("GET", r"/ledger/voucher/(?P<ident>\d+)", self._get_one("voucher"))
        add("GET", r"/ledger/voucher/>externalvouchernumber", self._vouchers_by_external_number)

    def _list_vouchers(self, request: Request) -> Response:
        start_day, end_day = self._window(request, ("dateFrom", "dateTo"))
        lo, hi = self._voucher_range(start_day, end_day)
        first, last = start_day.isoformat(), end_day.isoformat()
        extra = self._runtime("voucher", lambda v: first <= v["date"] < last)
        if hi - lo + len(extra) > self.max_window_rows:
            raise ApiError(
                422,
                23000,
                "Resultatsettet er for stort.",
                developer="Result set too large: use a shorter date window",
            )
        items = [self._voucher_dict(v) for v in range(lo, hi)] + extra
        filters = {name: request.param(name) or "" for name in ("id", "number") if request.param(name)}
        items = [item for item in items if matches(item, filters)]
        return self._list_response(request, "voucher", items)

    def _vouchers_by_external_number(self, request: Request) -> Response:
        """``GET /ledger/voucher/>externalVoucherNumber?externalVoucherNumber=…``: the vouchers
        created with that external number (generated vouchers have none)."""
        wanted = request.param("externalVoucherNumber")
        if not wanted:
            raise invalid("externalVoucherNumber", "Kan ikke være null.", code=15000)
        items = self._runtime("voucher", lambda v: v.get("externalVoucherNumber") == wanted)
        return self._list_response(request, "voucher", items)

    def _create_voucher(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            voucher = self._store_voucher(body, "manual")
            return Response.json({"value": self._project("voucher", voucher, None)}, 201)

    def _store_voucher(self, body: Mapping[str, Any], voucher_type: str) -> dict[str, Any]:
        day = parse_date(body.get("date"), "date", required=True)
        assert day is not None
        postings = body.get("postings")
        if not isinstance(postings, list) or len(postings) < 2:
            raise invalid("postings", "Et bilag må ha minst to posteringer.", code=15000)
        total = 0
        prepared = []
        for index, posting in enumerate(postings):
            where = f"postings[{index}]"
            if not isinstance(posting, dict):
                raise invalid(where, "Må være et objekt.", code=16000)
            account = self._ref_id(posting, "account", "account", required=True)
            # POST /ledger/voucher: "Only the gross amounts will be used" (OpenAPI 2.72); Tripletex's
            # own minimal example sends amountGross and amountGrossCurrency. A posting with only
            # ``amount`` is refused, never read as gross.
            gross = posting.get("amountGross")
            if gross is None:
                raise invalid(f"{where}.amountGross", "Kan ikke være null.", code=15000)
            cents = to_cents(gross, f"{where}.amountGross")
            currency_gross = posting.get("amountGrossCurrency")
            if (
                currency_gross is not None
                and to_cents(currency_gross, f"{where}.amountGrossCurrency") != cents
            ):
                raise invalid(
                    f"{where}.amountGrossCurrency",
                    "Beløp i valuta må være lik beløpet i NOK når posteringen er i NOK.",
                    code=15000,
                )
            total += cents
            prepared.append((posting, account, cents))
        if total != 0:
            raise invalid(
                "postings", f"Bilaget er ikke i balanse (differanse {money_text(total)}).", code=15000
            )
        ident = self._new_id()
        number = self._next_voucher_number
        self._next_voucher_number += 1
        refs = []
        for index, (posting, account, cents) in enumerate(prepared):
            posting_id = self._new_id()
            customer = self._ref_id(posting, "customer", "customer")
            supplier = self._ref_id(posting, "supplier", "supplier")
            vat = self._ref_id(posting, "vatType", "vatType") or 0
            stored = posting_object(
                posting_id,
                voucher=ident,
                day=day.isoformat(),
                description=str(posting.get("description") or body.get("description") or ""),
                account=account,
                cents=cents,
                customer=customer,
                supplier=supplier,
                vat=vat,
                row=int(posting.get("row") or index + 1),
            )
            self._objects["posting"][posting_id] = stored
            self._stamp(stored, "CREATE")
            refs.append(object_ref("posting", posting_id))
        voucher = {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/ledger/voucher/{ident}",
            "date": day.isoformat(),
            "number": number,
            "tempNumber": 0,
            "year": day.year,
            "description": str(body.get("description") or ""),
            "voucherType": object_ref("voucherType", VOUCHER_TYPE_IDS[voucher_type]),
            "reverseVoucher": None,
            "postings": refs,
            "document": None,
            "attachment": None,
            "externalVoucherNumber": str(body.get("externalVoucherNumber") or ""),
            "vendorInvoiceNumber": str(body.get("vendorInvoiceNumber") or ""),
            "numberAsString": f"{number}-{day.year}",
            "displayName": f"{number}-{day.year} {body.get('description') or ''}".strip(),
        }
        self._objects["voucher"][ident] = voucher
        self._stamp(voucher, "CREATE")
        return voucher
