"""Customers and suppliers: lists with ``changedSince`` and the documented filters, single objects,
``POST /customer`` (unique ``customerNumber``, numbered from the company's series when absent) and
``PUT /customer/{id}`` with optimistic locking (a stale ``version`` gives 409 / code 8000).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Request, Response
from airflow_provider_ledgerlink.sandbox.tripletex.data import (
    ACCOUNT_ID_BASE,
    CUSTOMER_SERIES_START,
    NOK_ID,
    NORWAY_ID,
)
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError, invalid, not_found
from airflow_provider_ledgerlink.sandbox.tripletex.model import URL_BASE, object_ref
from airflow_provider_ledgerlink.sandbox.tripletex.query import AddRoute, TripletexQuery

__all__ = ["PartyHandlers"]


class PartyHandlers(TripletexQuery):
    def _add_party_routes(self, add: AddRoute) -> None:
        add("GET", r"/customer", self._list_of("customer", self._register_items))
        add("POST", r"/customer", self._create_customer)
        add("GET", r"/customer/(?P<ident>\d+)", self._get_one("customer"))
        add("PUT", r"/customer/(?P<ident>\d+)", self._update_customer)
        add("GET", r"/supplier", self._list_of("supplier", self._register_items))
        add("GET", r"/supplier/(?P<ident>\d+)", self._get_one("supplier"))

    def _create_customer(self, request: Request) -> Response:
        body = self._body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid("name", "Kan ikke være null.", code=15000)
        with self._lock:
            number = body.get("customerNumber")
            if number in (None, 0):
                number = self._next_customer_number()
            elif not isinstance(number, int) or number < 0:
                raise invalid("customerNumber", "Må være et positivt heltall.", code=15000)
            elif self._customer_number_taken(number):
                raise invalid("customerNumber", f"Kundenummeret {number} er allerede i bruk.", code=15000)
            ident = self._new_id()
            customer = self._new_party("customer", ident, body, number)
            self._objects["customer"][ident] = customer
            self._stamp(customer, "CREATE")
            return Response.json({"value": self._project("customer", customer, None)}, 201)

    def _customer_number_taken(self, number: int) -> bool:
        if CUSTOMER_SERIES_START <= number < CUSTOMER_SERIES_START + self.customers:
            return True
        return any(obj.get("customerNumber") == number for obj in self._objects["customer"].values())

    def _next_customer_number(self) -> int:
        used = [obj.get("customerNumber") or 0 for obj in self._objects["customer"].values()]
        # Tripletex numbers a customer sent without one from the company's own series.
        start = self.customer_series_start
        own = [n for n in used if n >= start]
        if start <= CUSTOMER_SERIES_START + self.customers - 1:
            own.append(CUSTOMER_SERIES_START + self.customers - 1)
        return max(own) + 1 if own else start

    def _new_party(self, kind: str, ident: int, body: Mapping[str, Any], number: int) -> dict[str, Any]:
        party: dict[str, Any] = {
            "id": ident,
            "version": 1,
            "url": f"{URL_BASE}/{kind}/{ident}",
            "name": body["name"].strip(),
            "organizationNumber": str(body.get("organizationNumber") or ""),
            "customerNumber": number,
            "supplierNumber": 0,
            "isCustomer": True,
            "isSupplier": bool(body.get("isSupplier", False)),
            "isInactive": bool(body.get("isInactive", False)),
            "email": str(body.get("email") or ""),
            "invoiceEmail": str(body.get("invoiceEmail") or ""),
            "phoneNumber": str(body.get("phoneNumber") or ""),
            "phoneNumberMobile": str(body.get("phoneNumberMobile") or ""),
            "description": str(body.get("description") or ""),
            "language": str(body.get("language") or "NO"),
            "displayName": f"{body['name'].strip()} ({number})",
            "isPrivateIndividual": bool(body.get("isPrivateIndividual", False)),
            "postalAddress": None,
            "physicalAddress": None,
            "currency": object_ref("currency", NOK_ID),
            "ledgerAccount": object_ref("account", ACCOUNT_ID_BASE + 1500),
            "accountManager": None,
            "invoicesDueIn": int(body.get("invoicesDueIn") or 14),
            "invoicesDueInType": "DAYS",
        }
        address = body.get("postalAddress")
        if isinstance(address, dict) and any(address.get(k) for k in ("addressLine1", "postalCode", "city")):
            address_id = self._new_id()
            self._objects["address"][address_id] = {
                "id": address_id,
                "version": 1,
                "url": f"{URL_BASE}/address/{address_id}",
                "addressLine1": str(address.get("addressLine1") or ""),
                "addressLine2": str(address.get("addressLine2") or ""),
                "postalCode": str(address.get("postalCode") or ""),
                "city": str(address.get("city") or ""),
                "country": object_ref("country", NORWAY_ID),
            }
            party["postalAddress"] = object_ref("address", address_id)
        return party

    def _update_customer(self, request: Request, ident: str) -> Response:
        body = self._body(request)
        with self._lock:
            current = self._object("customer", int(ident))
            if current is None:
                raise not_found("customer", ident)
            current = json.loads(json.dumps(current))
            version = body.get("version")
            if version is not None and version != current["version"]:
                raise ApiError(
                    409,
                    8000,
                    "Objektet er endret av en annen bruker siden det ble hentet.",
                    developer=f"RevisionException: version {version} is stale; the current version is {current['version']}",
                )
            number = body.get("customerNumber")
            if number not in (None, current.get("customerNumber")) and self._customer_number_taken(number):
                raise invalid("customerNumber", f"Kundenummeret {number} er allerede i bruk.", code=15000)
            for key in ("name", "organizationNumber", "email", "invoiceEmail", "phoneNumber", "phoneNumberMobile",
                        "description", "customerNumber", "isInactive", "language", "invoicesDueIn"):  # fmt: skip
                if key in body and body[key] is not None:
                    current[key] = body[key]
            current["displayName"] = f"{current['name']} ({current['customerNumber']})"
            current["version"] += 1
            self._objects["customer"][int(ident)] = current
            self._stamp(current, "UPDATE")
            return Response.json({"value": self._project("customer", current, None)})
