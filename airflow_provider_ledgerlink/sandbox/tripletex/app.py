"""The Tripletex emulator's HTTP app, mounted at ``/tripletex`` of the sandbox server: it wires each
resource family's handlers (``sessions``, ``ledger``, ``vouchers``, ``parties``, ``products``,
``orders``) onto the shared ``Router``, renders errors in Tripletex's shape with the request id
(``x-tlx-request-id`` on every answer), and serves the sandbox control endpoints
(``/_sandbox/tripletex/...``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date

from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response, Router
from airflow_provider_ledgerlink.sandbox.tripletex.data import (
    ANCHOR,
    CLIENT_COMPANY_IDS,
    sandbox_tripletex_consumer_token,
    sandbox_tripletex_employee_token,
)
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError
from airflow_provider_ledgerlink.sandbox.tripletex.ledger import LedgerHandlers
from airflow_provider_ledgerlink.sandbox.tripletex.orders import OrderHandlers
from airflow_provider_ledgerlink.sandbox.tripletex.parties import PartyHandlers
from airflow_provider_ledgerlink.sandbox.tripletex.products import ProductHandlers
from airflow_provider_ledgerlink.sandbox.tripletex.query import MAX_WINDOW_ROWS
from airflow_provider_ledgerlink.sandbox.tripletex.sessions import SessionHandlers
from airflow_provider_ledgerlink.sandbox.tripletex.vouchers import VoucherHandlers

__all__ = ["TripletexEmulator"]


class TripletexEmulator(
    SessionHandlers,
    LedgerHandlers,
    PartyHandlers,
    ProductHandlers,
    OrderHandlers,
    VoucherHandlers,
    Emulator,
):
    """Tripletex API v2 for one company. The package docstring says what it covers;
    ``SessionHandlers`` names the session and rate-limit knobs, ``max_window_rows`` the largest date
    window a list answers and ``echo_requests`` turns error answers hostile (they repeat the URL)."""

    name = "tripletex"
    prefix = "/tripletex"

    def __init__(self, seed: int = 42, scale: Mapping[str, int] | None = None, anchor: date = ANCHOR) -> None:
        super().__init__(seed, scale, anchor)
        self.consumer_token = sandbox_tripletex_consumer_token(seed)
        self.employee_token = sandbox_tripletex_employee_token(seed)
        self.reset_state()
        self._router = Router()
        self._routes()

    def reset_state(self) -> None:
        """Forget created objects, sessions, revocations and rate-limit periods, and put the knobs
        (rate limit, session policy and clock, window limit) back to their defaults."""
        with self._lock:
            self.max_window_rows = MAX_WINDOW_ROWS
            self.echo_requests = False
            """When true, error answers repeat the request's URL (a hostile server, for leak tests)."""
            self._reset_sessions()
            self._reset_store()

    def _routes(self) -> None:
        router = self._router
        self._add_session_routes(router)
        add = self._authenticated(router)
        self._add_ledger_routes(add)
        self._add_voucher_routes(add)
        self._add_party_routes(add)
        self._add_product_routes(add)
        self._add_order_routes(add)

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        match = re.fullmatch(r"/v2(/.*)?", request.subpath, re.IGNORECASE)
        rate_headers: dict[str, str] = {}
        request.rate_headers = rate_headers  # type: ignore[attr-defined]
        try:
            if match is None:
                raise ApiError(
                    404, 6000, "Objektet ble ikke funnet.", developer=f"No such path: {request.subpath}"
                )
            path = (match.group(1) or "/").rstrip("/") or "/"
            response = self._router.dispatch(request, path)
            if response is None:
                raise ApiError(404, 6000, "Objektet ble ikke funnet.", developer=f"No such endpoint: {path}")
        except ApiError as error:
            body = error.body(request_id)
            if self.echo_requests:
                # A hostile answer for tests: the request as received (URL-encoded query included)
                # in the error's texts, as a server's diagnostics may show it.
                echo = f"{request.method} {request.path}?{request.query_string}"
                body["developerMessage"] = f"{body['developerMessage'] or ''} [request: {echo}]"
                for item in body["validationMessages"] or []:
                    item["message"] = f"{item['message']} ({echo})"
            response = Response.json(body, error.status, headers=error.headers)
        response.headers["x-tlx-request-id"] = request_id
        for key, value in rate_headers.items():
            response.headers.setdefault(key, value)
        return response

    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        if path == "credentials" and request.method == "GET":
            return Response.json(
                {
                    "consumer_token": self.consumer_token,
                    "employee_token": self.employee_token,
                    "company_id": self.company_id,
                    "client_company_ids": list(CLIENT_COMPANY_IDS),
                }
            )
        if path == "rate-limit" and request.method == "GET":
            settings = self.rate_limit
            return Response.json(
                {
                    "limit": settings.limit,
                    "period": settings.period,
                    "omit_reset_on_429": settings.omit_reset_on_429,
                    "rate_limited": self.counters.rate_limited,
                    "min_remaining": self.counters.min_remaining,
                }
            )
        if path == "rate-limit" and request.method in ("POST", "PUT"):
            try:
                data = request.json()
                self.configure_rate_limit(
                    **{k: data[k] for k in ("limit", "period", "omit_reset_on_429") if k in data}
                )
            except (ValueError, TypeError) as error:
                return Response.json(
                    {"error": f"expected {{'limit', 'period', 'omit_reset_on_429'}}: {error}"}, 400
                )
            return Response.json({"status": "ok"})
        if path == "number-series" and request.method in ("POST", "PUT"):
            try:
                data = request.json()
                self.configure_number_series(customer=data.get("customer"), invoice=data.get("invoice"))
            except (ValueError, TypeError, AttributeError) as error:
                return Response.json({"error": f"expected {{'customer', 'invoice'}}: {error}"}, 400)
            return Response.json(
                {"customer": self.customer_series_start, "invoice": self.invoice_series_start}
            )
        if path == "sessions/expire" and request.method == "POST":
            return Response.json({"expired": self.expire_sessions()})
        if path == "sessions" and request.method == "GET":
            return Response.json({"created": self.counters.sessions_created, "active": len(self._sessions)})
        if path == "tokens/revoke" and request.method == "POST":
            try:
                token = str(request.json()["employee_token"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'employee_token': '…'}"}, 400)
            with self._lock:
                self._revoked_employee_tokens.add(token)
            return Response.json({"revoked": True})
        if path == "objects" and request.method == "GET":
            with self._lock:
                return Response.json({kind: len(items) for kind, items in self._objects.items()})
        return super().handle_control(request, path)
