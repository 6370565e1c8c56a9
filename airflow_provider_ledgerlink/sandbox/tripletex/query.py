"""The query engine every Tripletex list and object goes through: ``fields=`` selection with nested
expansions (checked against the specification's schemas), ``sorting``, ``from``/``count`` paging in the
list envelope, the simple filters, date windows, and ``versionDigest`` / ``If-None-Match`` (304).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from airflow_provider_ledgerlink.sandbox.server import Handler, Request, Response
from airflow_provider_ledgerlink.sandbox.tripletex.errors import ApiError, NotModified, invalid, not_found
from airflow_provider_ledgerlink.sandbox.tripletex.model import (
    KIND_OF_SCHEMA,
    SCHEMAS,
    complete,
    field_names,
    references,
)
from airflow_provider_ledgerlink.sandbox.tripletex.store import TripletexStore
from airflow_provider_ledgerlink.sandbox.tripletex.values import dumps, parse_date, parse_instant_wall

__all__ = [
    "DEFAULT_PAGE_COUNT",
    "MAX_WINDOW_ROWS",
    "NO_DIGEST",
    "AddRoute",
    "FieldTree",
    "TripletexQuery",
    "matches",
    "parse_fields",
]

NO_DIGEST = "'If-None-Match' header not specified"
DEFAULT_PAGE_COUNT = 1_000
MAX_WINDOW_ROWS = 100_000

AddRoute = Callable[[str, str, Handler], None]
"""Registers one route (method, path pattern, handler) of a resource family on the emulator's router."""

FieldTree = dict[str, "FieldTree | None"]


def parse_fields(text: str | None) -> FieldTree | None:
    """``*,account(number,name),changes`` → ``{"*": None, "account": {...}, "changes": None}``.

    ``None`` (no ``fields``) means the default: every field, references as ``{id, url}``.
    """
    if text is None or not text.strip():
        return None
    tree: FieldTree = {}
    stack: list[FieldTree] = [tree]
    name = ""
    for char in text:
        if char == "(":
            child: FieldTree = {}
            stack[-1][name.strip()] = child
            stack.append(child)
            name = ""
        elif char == ")":
            if name.strip():
                stack[-1][name.strip()] = None
            name = ""
            if len(stack) == 1:
                raise ApiError(
                    400, 11000, "Ugyldig filter.", developer=f"Unbalanced parentheses in fields: {text}"
                )
            stack.pop()
        elif char == ",":
            if name.strip():
                stack[-1][name.strip()] = None
            name = ""
        else:
            name += char
    if name.strip():
        stack[-1][name.strip()] = None
    if len(stack) != 1:
        raise ApiError(400, 11000, "Ugyldig filter.", developer=f"Unbalanced parentheses in fields: {text}")
    return tree


def _parse_sorting(text: str | None) -> list[tuple[str, bool]]:
    items = []
    for part in (text or "").split(","):
        part = part.strip()
        if part:
            items.append((part.lstrip("-"), part.startswith("-")))
    return items


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, dict):
        return (1, value.get("id") or 0)
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def matches(item: Mapping[str, Any], filters: Mapping[str, str]) -> bool:
    """Tripletex's simple filters: a comma list of ids or values, compared as text."""
    for name, wanted in filters.items():
        target = "customer" if name == "customerId" else ("account" if name == "accountId" else name)
        if name == "supplierId":
            target = "supplier"
        value = item.get(target)
        if isinstance(value, dict):
            value = value.get("id")
        options = {part.strip().lower() for part in str(wanted).split(",")}
        text = str(value).lower() if not isinstance(value, bool) else ("true" if value else "false")
        if text not in options:
            return False
    return True


def _last_change_wall(obj: Mapping[str, Any]) -> int:
    changes = obj.get("changes") or []
    if not changes:
        return 0
    return max(parse_instant_wall(str(change["timestamp"]), "timestamp") for change in changes)


class TripletexQuery(TripletexStore):
    """Projection, lists and single objects over the stored and generated objects."""

    max_window_rows: int
    """A date window holding more rows than this is refused (422 / code 23000)."""

    def _project(self, kind: str, obj: Mapping[str, Any], tree: FieldTree | None) -> dict[str, Any]:
        """``obj`` with every field of its schema, cut down to ``fields`` (``tree``)."""
        schema = SCHEMAS[kind]
        return self._project_schema(schema, complete(schema, obj), tree)

    def _project_schema(self, schema: str, obj: Mapping[str, Any], tree: FieldTree | None) -> dict[str, Any]:
        if tree is None:
            return {key: value for key, value in obj.items() if key != "changes"}
        result: dict[str, Any] = {}
        if "*" in tree:
            result.update((key, value) for key, value in obj.items() if key != "changes")
        known = field_names(schema)
        targets = references(schema)
        for name, sub in tree.items():
            if name == "*":
                continue
            if name not in known:
                raise ApiError(
                    400,
                    11000,
                    "Ugyldig felt i filteret.",
                    developer=f"Illegal field in fields filter: {name}. {name} does not match a field in the model: {schema}DTO",
                )
            value = obj.get(name, [] if name == "changes" else None)
            if sub is None or value is None:
                result[name] = value
                continue
            target = targets.get(name)
            if target is None:
                raise ApiError(
                    400,
                    11000,
                    "Ugyldig felt i filteret.",
                    developer=f"{name} is not an object and cannot be expanded",
                )
            if isinstance(value, list):
                result[name] = [self._expand(target, item, sub) for item in value]
            else:
                result[name] = self._expand(target, value, sub)
        return result

    def _expand(self, schema: str, value: Any, tree: FieldTree) -> Any:
        """A referenced object (``{id, url}``) looked up and projected, or an embedded one projected."""
        if not isinstance(value, dict):
            return value
        kind = KIND_OF_SCHEMA.get(schema)
        found = None
        if kind is not None and "id" in value and set(value) <= {"id", "url"}:
            found = self._object(kind, int(value["id"]))
        return self._project_schema(schema, complete(schema, found if found is not None else value), tree)

    # -- lists -------------------------------------------------------------------------------------
    def _paging(self, request: Request) -> tuple[int, int]:
        try:
            start = int(request.param("from") or 0)
            count = int(request.param("count") or DEFAULT_PAGE_COUNT)
        except ValueError:
            raise invalid("from/count", "Må være et heltall.", code=21000) from None
        if start < 0 or count < 0:
            raise invalid("from/count", "Kan ikke være negativ.", code=21000)
        return start, count

    def _digest(self, request: Request) -> str:
        query = "&".join(sorted(request.query_string.split("&")))
        text = f"{self.company_id}|{request.subpath.lower()}|{query}|{self._mutations}"
        return hashlib.sha1(text.encode()).hexdigest()

    def _check_not_modified(self, request: Request) -> str:
        """The ``versionDigest`` to send, or raise a 304 when the client already has it."""
        sent = request.header("if-none-match")
        if not sent:
            return NO_DIGEST
        digest = self._digest(request)
        if sent.strip().strip('"') == digest:
            raise NotModified()
        return digest

    def _envelope(self, start: int, values_json: list[str], total: int, count: int, digest: str) -> Response:
        full = min(total - start, count) + 1 if total - start > count else max(total - start, 0)
        text = (
            f'{{"fullResultSize":{max(full, 0)},"from":{start},"count":{len(values_json)},'
            f'"versionDigest":{json.dumps(digest)},"values":[{",".join(values_json)}]}}'
        )
        return Response.raw_json(text)

    def _list_response(self, request: Request, kind: str, items: list[dict[str, Any]]) -> Response:
        try:
            digest = self._check_not_modified(request)
        except NotModified:
            return Response.empty(304, None)
        tree = parse_fields(request.param("fields"))
        items = self._sorted(kind, items, request.param("sorting"))
        start, count = self._paging(request)
        page = items[start : start + count]
        values = [dumps(self._project(kind, item, tree)) for item in page]
        return self._envelope(start, values, len(items), count, digest)

    def _sorted(self, kind: str, items: list[dict[str, Any]], sorting: str | None) -> list[dict[str, Any]]:
        for name, descending in reversed(_parse_sorting(sorting)):
            top = name.split(".", 1)[0]
            if top not in field_names(SCHEMAS[kind]):
                raise ApiError(422, 17000, "Ugyldig sortering.", developer=f"Illegal sorting field: {name}")

            path = name.split(".")

            def key(item: dict[str, Any], path: list[str] = path) -> tuple[int, Any]:
                value: Any = item
                for part in path:
                    value = value.get(part) if isinstance(value, dict) else None
                return _sort_key(value)

            items = sorted(items, key=key, reverse=descending)
        return items

    def _window(self, request: Request, names: tuple[str, str]) -> tuple[date, date]:
        start = parse_date(request.param(names[0]), names[0], required=True)
        end = parse_date(request.param(names[1]), names[1], required=True)
        assert start is not None and end is not None
        if end <= start:
            raise invalid(
                names[1], f"{names[1]} må være etter {names[0]} (til og med er ekskludert).", code=15000
            )
        return start, end

    def _list_of(self, kind: str, candidates: Callable[[str, Request], list[dict[str, Any]]]) -> Handler:
        """A list handler: ``candidates(kind, request)`` sorted, paged and cut to ``fields``."""

        def handler(request: Request) -> Response:
            return self._list_response(request, kind, candidates(kind, request))

        return handler

    def _register_items(self, kind: str, request: Request) -> list[dict[str, Any]]:
        """The customers, suppliers or products (``kind``) matching the request's filters, in id order:
        ``changedSince`` (customers and suppliers), numbers, e-mail, name and ``isInactive``."""
        count = {"customer": self.customers, "supplier": self.suppliers, "product": self.products}[kind]
        changed_since = request.param("changedSince")
        lo = 0
        since_wall: int | None = None
        if changed_since and kind in ("customer", "supplier"):
            since_wall = parse_instant_wall(changed_since, "changedSince")
            lo = bisect.bisect_left(range(count), since_wall, key=self._change_times[kind].seconds)
        build: Callable[[int], dict[str, Any]] = (
            self._product_dict if kind == "product" else (lambda k: self._party_dict(kind, k))
        )
        with self._lock:
            overlay = dict(self._objects[kind])
        items = [obj for k in range(lo, count) if (obj := build(k))["id"] not in overlay]
        items += [obj for ident, obj in sorted(overlay.items())]
        if since_wall is not None:
            items = [obj for obj in items if _last_change_wall(obj) >= since_wall]
        items.sort(key=lambda obj: obj["id"])
        filters = {}
        for param, name in (
            ("id", "id"),
            ("customerAccountNumber", "customerNumber"),
            ("supplierNumber", "supplierNumber"),
            ("organizationNumber", "organizationNumber"),
            ("email", "email"),
            ("invoiceEmail", "invoiceEmail"),
            ("number", "number"),
            ("productNumber", "number"),
        ):
            if request.param(param):
                filters[name] = request.param(param) or ""
        inactive = request.param("isInactive")
        if inactive is not None:
            filters["isInactive"] = inactive
        elif kind in ("customer", "supplier"):  # the documented default for these two lists
            filters["isInactive"] = "false"
        name_filter = request.param("customerName") or (request.param("name") if kind == "product" else None)
        result = [item for item in items if matches(item, filters)]
        if name_filter:
            result = [item for item in result if name_filter.lower() in str(item.get("name", "")).lower()]
        return result

    # -- single objects ------------------------------------------------------------------------------
    def _get_one(self, kind: str) -> Callable[..., Response]:
        def handler(request: Request, ident: str) -> Response:
            with self._lock:
                obj = self._object(kind, int(ident))
            if obj is None:
                raise not_found(kind, ident)
            tree = parse_fields(request.param("fields"))
            return Response.json({"value": self._project(kind, obj, tree)})

        return handler
