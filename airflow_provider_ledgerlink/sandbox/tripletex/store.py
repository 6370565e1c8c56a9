"""Objects created through the API, kept beside the generated ones until ``reset_state()``: the ids
and numbers Tripletex gives them, the change stamps, the write requests as received and the counters
tests read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Request
from airflow_provider_ledgerlink.sandbox.tripletex.data import (
    ANCHOR,
    CUSTOMER_SERIES_START,
    INVOICE_SERIES_START,
    RUNTIME_ID_BASE,
    TripletexData,
)
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError, invalid

__all__ = ["Counters", "TripletexStore"]


@dataclass
class Counters:
    sessions_created: int = 0
    rate_limited: int = 0
    min_remaining: int | None = None
    invoices_sent: int = 0
    requests_by_session: dict[str, int] = field(default_factory=dict)


class TripletexStore(TripletexData):
    """The generated data plus what requests created: ``_object`` finds either, created first."""

    def __init__(self, seed: int = 42, scale: Mapping[str, int] | None = None, anchor: date = ANCHOR) -> None:
        super().__init__(seed, scale, anchor)
        self._lock = threading.RLock()
        self._reset_store()

    def _reset_store(self) -> None:
        """Forget created objects and the write record; the number series start again."""
        with self._lock:
            self._objects: dict[str, dict[int, dict[str, Any]]] = {
                kind: {}
                for kind in (
                    "customer",
                    "supplier",
                    "product",
                    "order",
                    "orderLine",
                    "invoice",
                    "voucher",
                    "posting",
                    "address",
                )
            }
            self._next_id = RUNTIME_ID_BASE
            self.customer_series_start = CUSTOMER_SERIES_START
            self.invoice_series_start = INVOICE_SERIES_START
            self._next_invoice_number = INVOICE_SERIES_START + self.orders
            self._next_voucher_number = self.vouchers + 1
            self._mutations = 0
            self.counters = Counters()
            self.sent_invoices: list[int] = []
            self.received: list[dict[str, Any]] = []
            """The write requests' bodies as received (raw bytes), oldest first."""
            self._started = time.monotonic()

    def now_wall(self) -> int:
        """The data clock: Oslo wall-clock seconds, starting at the anchor when the state was reset."""
        return self._anchor_wall + int(time.monotonic() - self._started)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _object(self, kind: str, ident: int) -> dict[str, Any] | None:
        stored = self._objects.get(kind, {}).get(ident)
        if stored is not None:
            return stored
        return self._generated(kind, ident)

    def _runtime(self, kind: str, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self._lock:
            return [obj for ident, obj in sorted(self._objects[kind].items()) if predicate(obj)]

    def _stamp(self, obj: dict[str, Any], change_type: str) -> None:
        obj.setdefault("changes", []).append(self._change(change_type, self.now_wall()))
        self._mutations += 1

    def _body(self, request: Request) -> dict[str, Any]:
        with self._lock:
            self.received.append({"method": request.method, "path": request.subpath, "body": request.body})
        try:
            body = request.json()
        except ValueError:
            raise ApiError(
                422, 22000, "Ugyldig JSON.", developer="The request body is not valid JSON"
            ) from None
        if not isinstance(body, dict):
            raise ApiError(422, 16000, "Feil i mapping.", developer="Expected a JSON object")
        return body

    def _ref_id(self, body: Mapping[str, Any], name: str, kind: str, *, required: bool = False) -> int | None:
        value = body.get(name)
        if value is None:
            if required:
                raise invalid(name, "Kan ikke være null.", code=15000)
            return None
        ident = value.get("id") if isinstance(value, dict) else None
        if not isinstance(ident, int) or self._object(kind, ident) is None:
            raise invalid(f"{name}.id", f"Finner ikke objektet med id {ident}.", code=15000)
        return ident

    def created(self, kind: str) -> list[dict[str, Any]]:
        """Objects of ``kind`` created through the API (copies), in creation order."""
        with self._lock:
            return [
                json.loads(json.dumps(obj))
                for ident, obj in sorted(self._objects[kind].items())
                if ident > RUNTIME_ID_BASE
            ]

    def configure_number_series(self, customer: int | None = None, invoice: int | None = None) -> None:
        """Tripletex's settings "Kunde – innstillinger: kundenummer" and "Bilagstyper/nummerserier":
        where the next customer and invoice numbers Tripletex gives start (numbers already given
        stay as they are)."""
        with self._lock:
            if customer is not None:
                if int(customer) < 1:
                    raise ValueError("customer must be a positive number")
                self.customer_series_start = int(customer)
            if invoice is not None:
                if int(invoice) < 1:
                    raise ValueError("invoice must be a positive number")
                self.invoice_series_start = int(invoice)
                self._next_invoice_number = int(invoice)
