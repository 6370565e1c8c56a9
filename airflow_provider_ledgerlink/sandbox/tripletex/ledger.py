"""The general ledger: ``/ledger/posting`` (the hot path: a page of a date window in O(page size)),
``/ledger/account`` and the small fixed lists (VAT types, voucher types, currencies, countries).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Request, Response
from airflow_provider_ledgerlink.sandbox.tripletex.data import (
    ACCOUNTS,
    NOK_ID,
    NORWAY_ID,
    VAT_TYPES,
    VOUCHER_TYPE_IDS,
)
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError, NotModified
from airflow_provider_ledgerlink.sandbox.tripletex.model import PATHS
from airflow_provider_ledgerlink.sandbox.tripletex.query import (
    AddRoute,
    TripletexQuery,
    matches,
    parse_fields,
)
from airflow_provider_ledgerlink.sandbox.tripletex.values import dumps

__all__ = ["LedgerHandlers"]


MAX_SORT_ROWS = 100_000
"""Filtering or sorting postings reads the whole window; more rows than this are refused."""


class LedgerHandlers(TripletexQuery):
    def _add_ledger_routes(self, add: AddRoute) -> None:
        add("GET", r"/ledger/posting", self._list_postings)
        add("GET", r"/ledger/posting/(?P<ident>\d+)", self._get_one("posting"))
        add("GET", r"/ledger/account", self._list_of("account", self._accounts))
        add("GET", r"/ledger/account/(?P<ident>\d+)", self._get_one("account"))
        for kind in ("vatType", "voucherType", "currency", "country"):
            add("GET", "/" + PATHS[kind], self._list_catalog(kind))
            add("GET", "/" + PATHS[kind] + r"/(?P<ident>\d+)", self._get_one(kind))

    def _list_postings(self, request: Request) -> Response:
        start_day, end_day = self._window(request, ("dateFrom", "dateTo"))
        lo_v, hi_v = self._voucher_range(start_day, end_day)
        lo, hi = self._first_posting(lo_v), self._first_posting(hi_v)
        first, last = start_day.isoformat(), end_day.isoformat()
        extra = self._runtime("posting", lambda p: first <= p["date"] < last)
        total = hi - lo + len(extra)
        if total > self.max_window_rows:
            raise ApiError(
                422, 23000, "Resultatsettet er for stort.",
                developer=f"Result set too large ({total} rows): use a shorter date window",
            )  # fmt: skip
        filters = {
            name: request.param(name) or ""
            for name in ("accountId", "customerId", "supplierId", "type", "id")
            if request.param(name)
        }
        sorting = (request.param("sorting") or "").strip()
        if filters or sorting not in ("", "id"):
            # Filtering or another order needs the whole window, as a database would scan it.
            if total > MAX_SORT_ROWS:
                raise ApiError(
                    422,
                    23000,
                    "Resultatsettet er for stort.",
                    developer="Too many rows to filter or sort: use a shorter date window",
                )
            items = [self._posting_dict(i) for i in range(lo, hi)] + extra
            items = [item for item in items if matches(item, filters)]
            return self._list_response(request, "posting", items)
        # In id order without filters a page is produced directly: O(page size) at any scale.
        try:
            digest = self._check_not_modified(request)
        except NotModified:
            return Response.empty(304, None)
        offset, count = self._paging(request)
        fields = request.param("fields")
        tree = parse_fields(fields)
        default = tree is None or tree == {"*": None}
        end = min(hi, lo + offset + count)
        with self._lock:
            if default:
                values = [self._posting_json(i) for i in range(lo + offset, end)]
            else:
                values = [
                    dumps(self._project("posting", self._posting_dict(i), tree))
                    for i in range(lo + offset, end)
                ]
        if len(values) < count:
            skip = max(0, offset - (hi - lo))
            for item in extra[skip : skip + count - len(values)]:
                values.append(dumps(self._project("posting", item, tree)))
        return self._envelope(offset, values, total, count, digest)

    def _accounts(self, kind: str, request: Request) -> list[dict[str, Any]]:
        """The chart of accounts, in id order, filtered on ``number`` (a comma list)."""
        result = [a for n, *_ in ACCOUNTS if (a := self._account_dict(n)) is not None]
        number = request.param("number")
        if number:
            wanted = {int(x) for x in number.split(",") if x.strip().isdigit()}
            result = [a for a in result if a["number"] in wanted]
        return result

    def _list_catalog(self, kind: str) -> Callable[..., Response]:
        """The small fixed lists (VAT types, voucher types, currencies, countries), filtered on the
        query parameters the specification gives them that name a field (``id``, ``number``,
        ``code``, ``name``)."""
        idents = {
            "vatType": list(VAT_TYPES),
            "voucherType": list(VOUCHER_TYPE_IDS.values()),
            "currency": [NOK_ID],
            "country": [NORWAY_ID],
        }[kind]

        def handler(request: Request) -> Response:
            items = [obj for ident in idents if (obj := self._object(kind, ident)) is not None]
            filters = {
                name: request.param(name) or "" for name in ("id", "number", "code") if request.param(name)
            }
            items = [item for item in items if matches(item, filters)]
            name = request.param("name")
            if name:
                items = [item for item in items if name.lower() in str(item.get("name", "")).lower()]
            return self._list_response(request, kind, items)

        return handler
