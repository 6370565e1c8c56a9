"""CloudPOS on the wire: V1 (``/api/?licname=…&token=…&<function>``) and V2
(``POST /api/v2/<action>``), the envelopes and the control endpoints, routed on the sandbox's shared
:class:`~airflow_provider_ledgerlink.sandbox.server.Router`.

Paths are compared in lower case, without trailing slashes; any other address or method is
``{"success": 0, "errorcode": 404, "message": "Not found"}`` with HTTP 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from airflow_provider_ledgerlink.sandbox.cloudpos.data import ANCHOR, LICENCE, sandbox_cloudpos_token
from airflow_provider_ledgerlink.sandbox.cloudpos.engine import (
    DAILY_LIMIT,
    NOTHING_FOUND,
    V2_SELECTS,
    CloudPosEngine,
    Refusal,
    Weborder,
)
from airflow_provider_ledgerlink.sandbox.server import ANY_PATH, Emulator, Request, Response, Router

# ``(?a)``: the router matches case-insensitively; the paths are lowered first, as CloudPOS compares
# them, and nothing beyond ASCII is folded (without it, "ı" would match "i").
_V1_ROUTE = r"(?a)/api"
_V2_ROUTE = r"(?a)/api/v2/(?P<action>[\s\S]+)"

#: Functions the reference gives "Post filter"s; the others read "Url filter"s only.
_POST_FUNCTIONS = frozenset(
    {
        "get-confirmedweborder",
        "get-invoicesigned",
        "get-offersigned",
        "get-creditnotesigned",
        "get-reservationpersons",
        "get-reservationhours",
    }
)
#: The HTTP status of a V2 login refusal.
_V2_REFUSAL_STATUS = {1001: 401, 1002: 401, 1003: 429, 1004: 403}


def cloudpos_connection_definition(
    cloudpos_url: str, seed: int | str = 42, *, licence: str = LICENCE, token: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The ``ledgerlink_cloudpos`` connection (Airflow's JSON form) for the emulator at ``cloudpos_url``;
    ``extra`` adds connection extras (``daily_request_limit=40``)."""
    return {
        "conn_type": "ledgerlink_cloudpos",
        "host": f"{cloudpos_url.rstrip('/')}/api/",
        "login": licence,
        "password": token or sandbox_cloudpos_token(seed, licence),
        "extra": {"daily_request_limit": DAILY_LIMIT, **extra},
    }


class CloudPosEmulator(CloudPosEngine, Emulator):
    """CloudPOS V1 and V2 ``weborder.insert``. See the package docstring for what it covers.

    :param clock: seconds since the epoch (tests replace it to cross midnight or a block's end).
    """

    name = "cloudpos"
    prefix = "/cloudpos"

    def __init__(
        self,
        seed: int = 42,
        scale: Mapping[str, int] | None = None,
        anchor: datetime = ANCHOR,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(seed, scale, anchor, clock)
        self._router = Router()
        self._router.add("*", _V1_ROUTE, self._v1)
        self._router.add("POST", _V2_ROUTE, self._v2)
        self._router.add("*", ANY_PATH, _not_found)  # every other address and method

    def reset_state(self) -> None:
        with self._lock:
            super().reset_state()
            #: Every call as received: function, licence, method and the URL filters or the V2 body.
            self.calls: list[dict[str, Any]] = []

    # -- HTTP --------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = request.subpath.rstrip("/").lower()
        return self._router.dispatch(request, path) or _not_found(request)

    # -- V1 ----------------------------------------------------------------------------------------
    def _v1(self, request: Request) -> Response:
        licence = request.param("licname") or ""
        token = request.param("token") or ""
        refusal = self.login(_address(request), licence, token)
        if refusal is not None:
            return _v1_error(refusal)
        query = parse_qs(request.query_string, keep_blank_values=True)
        flags = [key for key, values in query.items() if values == [""]]
        functions = self.functions()
        function = next((flag.lower() for flag in flags if flag.lower() in functions), None)
        url = {k: v[0] for k, v in query.items() if k not in ("licname", "token") and k.lower() != function}
        with self._lock:
            self.calls.append(
                {"function": function, "licence": licence, "method": request.method, "url": url}
            )
        if function is None:
            return _v1_error(Refusal(1000, "No valid function given"))
        if function in self.unlicensed:
            return _v1_error(Refusal(1005, "No license for this module"))
        try:
            filters = _filters(request, function)
            records = functions[function](filters)
        except Refusal as problem:
            return _v1_error(problem)
        if not records:
            return _v1_error(Refusal(2000, NOTHING_FOUND.get(function, "")))
        if isinstance(records, dict):  # a single answer (webordertime): its fields beside "success"
            return Response.json({"success": 1, **records})
        return Response.json({"success": 1, "data": records})

    # -- V2 ----------------------------------------------------------------------------------------
    def _v2(self, request: Request, action: str) -> Response:
        refusal = self.login(
            _address(request), request.header("licensename") or "", request.header("token") or ""
        )
        if refusal is not None:
            status = _V2_REFUSAL_STATUS.get(refusal.code, 400)
            return Response.json({"error_code": refusal.code, "message": refusal.message}, status)
        call: dict[str, Any] = {
            "function": action,
            "licence": request.header("licensename"),
            "method": "POST",
        }
        with self._lock:
            self.calls.append(call)
        if action != "weborder.insert" and action not in V2_SELECTS:
            return Response.json({"error_code": 404, "message": f"Unknown function {action}"}, 404)
        try:
            body = request.json() if request.body else {}
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return Response.json({"error_code": 400, "message": "Body must be a JSON object"}, 400)
        call["body"] = body
        if action in V2_SELECTS:
            # A bare JSON array, or the V1-style 2000 "No … found" when there is nothing (what
            # CloudPOS's V2 clients handle as an empty list).
            rows = self.select(action, body)
            if not rows:
                return Response.json({"success": 0, "errorcode": 2000, "message": V2_SELECTS[action]})
            return Response.json(rows)
        try:
            weborder_id = self.insert_weborder(body)
        except Refusal as problem:
            return Response.json({"error_code": problem.code, "message": problem.message}, 400)
        return Response.json({"weborderid": weborder_id})

    # -- control endpoints ------------------------------------------------------------------------------
    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        if path == "credentials" and request.method == "GET":
            return Response.json({"licence": self.licence, "token": self.licences.get(self.licence)})
        if path == "credentials" and request.method == "POST":
            try:
                licence = str((request.json() if request.body else {}).get("licence") or self.licence)
            except (ValueError, AttributeError):
                return Response.json({"error": "expected {'licence'?: …}"}, 400)
            return Response.json({"licence": licence, "token": self.new_token(licence)})
        if path == "usage" and request.method == "GET":
            with self._lock:
                return Response.json(
                    {
                        "usage": {f"{lic}@{day}": n for (lic, day), n in self.usage.items()},
                        "bad_logins": dict(self.bad_logins),
                        "blocked_until": dict(self.blocked_until),
                        "calls": len(self.calls),
                        "refusals": {str(code): n for code, n in self.refusals.items()},
                    }
                )
        if path == "config" and request.method == "POST":
            return self._configure(request)
        if path == "licences" and request.method == "POST":
            try:
                data = request.json()
                token = self.add_licence(str(data["licence"]), data.get("token"), data.get("daily_limit"))
            except (ValueError, KeyError, TypeError):
                return Response.json(
                    {"error": "expected {'licence': …, 'token'?: …, 'daily_limit'?: N}"}, 400
                )
            return Response.json({"licence": data["licence"], "token": token})
        if path.startswith("weborders/") and request.method == "POST":
            return self._force_weborder(request, path.split("/", 1)[1])
        return super().handle_control(request, path)

    def _configure(self, request: Request) -> Response:
        try:
            data = request.json()
            with self._lock:
                if "daily_limit" in data:
                    self.default_daily_limit = int(data["daily_limit"])
                if "max_rows_per_call" in data:
                    self.max_rows_per_call = max(1, int(data["max_rows_per_call"]))
                if "confirm_after_seconds" in data:
                    value = data["confirm_after_seconds"]
                    self.confirm_after_seconds = None if value is None else float(value)
                if "confirm_on_poll" in data:
                    value = data["confirm_on_poll"]
                    self.confirm_on_poll = None if value is None else max(1, int(value))
                if "unlicensed" in data:
                    self.unlicensed = {str(name).lower() for name in data["unlicensed"]}
        except (ValueError, TypeError, AttributeError) as error:
            return Response.json({"error": f"bad configuration: {error}"}, 400)
        return Response.json({"status": "ok"})

    def _force_weborder(self, request: Request, raw_id: str) -> Response:
        try:
            weborder_id = int(raw_id)
            state = str(request.json()["state"])
            if state not in ("confirmed", "pending"):
                raise ValueError(state)
        except (ValueError, KeyError, TypeError):
            return Response.json({"error": "expected {'state': 'confirmed'|'pending'}"}, 400)
        with self._lock:
            weborder = self.weborders.setdefault(weborder_id, Weborder(weborder_id, self.clock()))
            weborder.state = state
        return Response.json({"weborderid": weborder_id, "state": state})


def _not_found(request: Request) -> Response:
    return Response.json({"success": 0, "errorcode": 404, "message": "Not found"}, 404)


def _address(request: Request) -> str:
    forwarded = (request.header("x-forwarded-for") or "").split(",")[0].strip()
    return forwarded or "127.0.0.1"


def _v1_error(refusal: Refusal) -> Response:
    return Response.json({"success": 0, "errorcode": refusal.code, "message": refusal.message})


def _filters(request: Request, function: str) -> dict[str, str]:
    """The reference's Post filters from a form (or JSON) body for the functions that take them;
    for the others its URL filters from the query string (``&start=1``, ``&date=…``, the bare flag
    ``&clockinclockout``)."""
    found: dict[str, str] = {}
    if function not in _POST_FUNCTIONS:
        query = parse_qs(request.query_string, keep_blank_values=True)
        for key in ("start", "end", "date", "customerid"):
            if query.get(key, [""])[0]:
                found[key] = query[key][0]
        if "clockinclockout" in query:
            found["clockinclockout"] = ""
        return found
    if not request.body:
        return found
    content_type = (request.header("content-type") or "").lower()
    if "json" in content_type:
        try:
            body = request.json()
        except ValueError:
            raise Refusal(2001, "Invalid body") from None
        if isinstance(body, dict):
            found.update({str(k).lower(): str(v) for k, v in body.items() if v is not None})
        return found
    form = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=False)
    found.update({key.lower(): values[0] for key, values in form.items()})
    return found
