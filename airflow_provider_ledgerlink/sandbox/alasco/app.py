"""The Alasco FinCon app: credentials, routes, access checks, documents and storage, the writes."""

from __future__ import annotations

import base64
import bisect
import gzip
import hashlib
import hmac
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

from airflow_provider_ledgerlink.sandbox.alasco.data import (
    _ANCHOR_MICROS,
    DATASETS,
    Dataset,
    IdCodec,
    World,
    _pdf,
    iso_instant,
    money,
    parse_instant,
)
from airflow_provider_ledgerlink.sandbox.alasco.errors import AlascoError, jsonapi_error, validation_error
from airflow_provider_ledgerlink.sandbox.alasco.query import (
    Condition,
    _is_cursor,
    _query_hash,
    _query_items,
    _split_values,
    _test,
    decode_cursor,
    encode_cursor,
    parse_filters,
    parse_include,
)
from airflow_provider_ledgerlink.sandbox.alasco.writes import (
    _CONTRACT_TEXTS,
    _DECIMAL_RE,
    FormPart,
    _form,
    _money_body,
    _pdf_part,
)
from airflow_provider_ledgerlink.sandbox.data import derive_key
from airflow_provider_ledgerlink.sandbox.server import Emulator, Request, Response, Router
from airflow_provider_ledgerlink.sandbox.spec_validation import request_schema, validate
from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json

API_PREFIX = "/fincon/v1"
# The spec's servers name ``/fincon/v1``; both published SDKs (``alasco`` on PyPI and its httpx
# rewrite) use ``https://api.alasco.de/v1``. The emulator answers under both, and every link it
# writes keeps the base the client used.
API_PREFIXES = (API_PREFIX, "/v1")


def api_prefix(subpath: str) -> str | None:
    """The API base ``subpath`` starts with (``/fincon/v1`` or ``/v1``), or None."""
    for prefix in API_PREFIXES:
        if subpath.startswith(prefix + "/"):
            return prefix
    return None


FILES_PREFIX = "/_files/"


LINK_TTL_SECONDS = 300
GZIP_MIN_BYTES = 1024


# ==================================================================================================
# Credentials
# ==================================================================================================
def _digest(seed: int | str, label: str, length: int) -> str:
    return hashlib.sha256(f"ledgerlink-sandbox:{seed}:{label}".encode()).hexdigest()[:length]


def sandbox_alasco_api_key(seed: int | str = 42, generation: int = 0) -> str:
    """The sandbox account's API key (40 characters, as Alasco's are)."""
    return _digest(seed, f"alasco-key-{generation}", 40)


def sandbox_alasco_api_token(seed: int | str = 42, generation: int = 0) -> str:
    """The sandbox account's API token (64 characters)."""
    return _digest(seed, f"alasco-token-{generation}", 64)


def alasco_connection_definition(url: str, seed: int | str = 42) -> dict[str, Any]:
    """The ``alasco_default`` connection (Airflow's JSON form) for the emulator mounted at ``url``."""
    return {
        "conn_type": "ledgerlink_alasco",
        "host": url.rstrip("/"),
        "login": sandbox_alasco_api_key(seed),
        "password": sandbox_alasco_api_token(seed),
        "extra": {"api": "fincon"},
    }


# ==================================================================================================
# The emulator
# ==================================================================================================
_DOCUMENT_TYPES: dict[str, tuple[str, frozenset[str], bool]] = {
    # parent dataset: (document type, document types accepted on upload, has an annotated download)
    "invoices": (
        "INVOICE_DOCUMENT",
        frozenset({"INVOICE", "ATTACHMENT", "COVERSHEET_EXTERNAL", "AUDITED_INVOICE", "INTERNAL_CORRESPONDENCE",
                   "EXTERNAL_CORRESPONDENCE", "VALUATIONS", "PLANS", "REVISED_INVOICE", "PAYMENT_CERTIFICATE",
                   "PROTOCOL", "OTHER"}),
        True,
    ),
    "contracts": ("CONTRACT_DOCUMENT", frozenset({"CONTRACT", "ATTACHMENT"}), False),
    "change_orders": (
        "CHANGE_ORDER_DOCUMENT",
        frozenset({"CHANGE_ORDER_OFFER", "ATTACHMENT", "COVERSHEET_EXTERNAL", "AUDITED_CHANGE_ORDER",
                   "INTERNAL_CORRESPONDENCE", "EXTERNAL_CORRESPONDENCE", "VALUATIONS", "PLANS", "CHANGE_ORDER",
                   "PROTOCOL", "OTHER"}),
        True,
    ),
}  # fmt: skip
_PARENT_TYPES = {"invoices": "INVOICE", "contracts": "CONTRACT", "change_orders": "CHANGE_ORDER"}
_SINGULAR = {"invoices": "invoice", "contracts": "contract", "change_orders": "change_order"}
#: Sub-lists: (parent dataset, segment) → (child dataset, attribute of the child holding the parent id)
_SUB_LISTS: dict[tuple[str, str], tuple[str, str]] = {
    ("properties", "projects"): ("projects", "property"),
    ("contract_units", "contracts"): ("contracts", "contract_unit"),
    ("contracting_entities", "contracts"): ("contracts", "contracting_entity"),
    ("contracting_entities", "projects"): ("projects", "default_contracting_entity"),
    ("contractors", "contracts"): ("contracts", "contractor"),
    ("contracts", "invoices"): ("invoices", "contract"),
    ("contracts", "change_orders"): ("change_orders", "contract"),
    ("cost_element_tree_templates", "cost_elements"): ("cost_elements", "cost_element_tree_template"),
}
#: Detail routes (``/<path>/{id}/``); the reporting API has them only for these three.
_DETAILS = frozenset({
    "properties", "projects", "contract_units", "contracts", "change_orders", "invoices", "contractors",
    "contracting_entities", "cost_element_tree_templates", "reporting/rent_units", "reporting/sales_units",
    "reporting/outright_sales",
})  # fmt: skip
_CONTRACT_RELATIONS = {
    "contract_unit": "contract_units",
    "contractor": "contractors",
    "contracting_entity": "contracting_entities",
}


_UUID = r"[0-9A-Za-z-]+"


@dataclass
class _Document:
    id: str
    parent: str
    parent_id: str
    filename: str
    document_type: str
    uploaded_at: str
    content: bytes


class AlascoEmulator(Emulator):
    """The Alasco FinCon API of one account. See the package docstring for what it covers.

    ``api_key`` / ``api_token`` are the valid credentials; ``payments``, ``contract_updates``,
    ``submissions``, ``uploads`` and ``downloads`` record the writes and the storage fetches.
    """

    name = "alasco"
    prefix = "/alasco"

    def __init__(self, seed: int = 42, scale: Mapping[str, int] | None = None) -> None:
        self.seed = seed
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self._secret = hashlib.sha256(f"alasco-storage:{seed}".encode()).digest()
        self._counts: dict[str, int] = {}
        self.world = World(seed, self._counts)
        self._document_codec = IdCodec(derive_key(seed, "alasco-id", "invoice_documents"))
        # Paths match case-sensitively, as Starlette (FastAPI) matches them: ``/Contracts/`` is a 404.
        self._router = Router(case_sensitive=True)
        self._add_routes()
        self.reset_state()

    # -- set-up ------------------------------------------------------------------------------------
    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        known = {}
        for key, value in scale.items():
            vendor, _, dataset = key.partition(":")
            if vendor != "alasco":
                continue
            cls = DATASETS.get(dataset)
            if cls is None or not cls.scalable:
                scalable = sorted(name for name, c in DATASETS.items() if c.scalable)
                raise ValueError(
                    f"alasco has no scalable dataset {dataset!r}; scalable: {', '.join(scalable)}"
                )
            if int(value) < 0:
                raise ValueError(f"row count for {key} must not be negative")
            known[dataset] = int(value)
        if known:
            self._counts.update(known)
            self.world = World(self.seed, self._counts)
            self.reset_state()
        return [f"alasco:{name}" for name in known]

    def reset_state(self) -> None:
        with self._lock:
            self._overrides: dict[tuple[str, int], dict[str, Any]] = {}
            self._inserted: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            self._private: dict[str, dict[str, Any]] = {}
            self._documents: dict[str, _Document] = {}
            self._documents_of: dict[tuple[str, str], list[str]] = {}
            self._credentials: dict[str, set[str]] = {
                sandbox_alasco_api_key(self.seed): {sandbox_alasco_api_token(self.seed)}
            }
            self._generation = 0
            self.api_key = sandbox_alasco_api_key(self.seed)
            self.api_token = sandbox_alasco_api_token(self.seed)
            self.access_enabled = True
            self.rate_limit: tuple[int, float] | None = None
            self._recent: list[float] = []
            self.payments: list[dict[str, Any]] = []
            self.contract_updates: list[dict[str, Any]] = []
            self.contract_creations: list[dict[str, Any]] = []
            self.submissions: list[dict[str, Any]] = []
            self.uploads: list[dict[str, Any]] = []
            self.downloads: list[dict[str, Any]] = []

    def now_micros(self) -> int:
        """The sandbox clock: the anchor plus the time since the emulator started."""
        return _ANCHOR_MICROS + int((time.monotonic() - self._started) * 1_000_000)

    def dataset(self, name: str) -> Dataset:
        return self.world.datasets[name]

    def row_count(self, name: str) -> int:
        """Generated rows of a dataset (objects created at runtime not included)."""
        return self.dataset(name).count

    def resources(self, name: str, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Generated objects as the list endpoint renders them (relationship links on localhost)."""
        dataset = self.dataset(name)
        stop = dataset.count if stop is None else min(stop, dataset.count)
        base = f"http://localhost{self.prefix}{API_PREFIX}"
        return [self._resource(dataset, *self._row(dataset, i), base) for i in range(start, stop)]

    def mint_credentials(self, *, replace: bool = True) -> tuple[str, str]:
        """A new credential set, as an Admin creates under "Integrationen": the account's API key
        stays the same, the token is new; ``replace`` invalidates the previous token at once (one
        credential set per account), otherwise both tokens work until one is revoked."""
        with self._lock:
            self._generation += 1
            key = self.api_key
            token = sandbox_alasco_api_token(self.seed, self._generation)
            if replace:
                self._credentials.clear()
            self._credentials.setdefault(key, set()).add(token)
            self.api_key, self.api_token = key, token
            return key, token

    def revoke_token(self, token: str) -> bool:
        with self._lock:
            for tokens in self._credentials.values():
                if token in tokens:
                    tokens.discard(token)
                    return True
        return False

    # -- rows --------------------------------------------------------------------------------------
    def _total(self, dataset: Dataset) -> int:
        return dataset.count + len(self._inserted.get(dataset.name, ()))

    def _row(self, dataset: Dataset, i: int) -> tuple[str, dict[str, Any]]:
        if i < dataset.count:
            attributes = dataset.attributes(i)
            override = self._overrides.get((dataset.name, i))
            if override:
                attributes = {**attributes, **override}
            return self.world.id(dataset.name, i), attributes
        return self._inserted[dataset.name][i - dataset.count]

    def _find(self, dataset: Dataset, text: str) -> int | None:
        index = self.world.index(dataset.name, text)
        if index is None or index >= self._total(dataset):
            return None
        return index

    def _stamp(self, dataset: Dataset, i: int) -> int:
        if i < dataset.count:
            return dataset.stamp(i)
        value = self._inserted[dataset.name][i - dataset.count][1].get(dataset.monotonic or "")
        return parse_instant(str(value)) or 0

    def _update(self, dataset: Dataset, i: int, changes: Mapping[str, Any]) -> None:
        if i < dataset.count:
            self._overrides.setdefault((dataset.name, i), {}).update(changes)
        else:
            self._inserted[dataset.name][i - dataset.count][1].update(changes)

    def _insert(self, dataset: Dataset, attributes: dict[str, Any]) -> tuple[str, int]:
        rows = self._inserted.setdefault(dataset.name, [])
        index = dataset.count + len(rows)
        rid = self.world.id(dataset.name, index)
        rows.append((rid, attributes))
        return rid, index

    # -- rendering ---------------------------------------------------------------------------------
    def _base(self, request: Request) -> str:
        host = request.header("host") or "localhost"
        return f"http://{host}{self.prefix}{api_prefix(request.subpath) or API_PREFIX}"

    def _resource(self, dataset: Dataset, rid: str, attributes: dict[str, Any], base: str) -> dict[str, Any]:
        relationships: dict[str, Any] = {}
        for name, target in dataset.to_one.items():
            value = attributes.get(name)
            target_set = self.world.datasets[target]
            if dataset.linked_to_one:
                related = f"{base}/{target_set.path}/{value}/" if value else None
                relationships[name] = {"links": {"related": related}}
            else:
                relationships[name] = {"data": {"id": value, "type": target_set.type} if value else None}
        for name in dataset.to_many:
            relationships[name] = {"links": {"related": f"{base}/{dataset.path}/{rid}/{name}/"}}
        return {
            "id": rid,
            "type": dataset.type,
            "attributes": attributes,
            "relationships": relationships or None,
        }

    def _included(
        self, dataset: Dataset, rows: Sequence[tuple[str, dict[str, Any]]], paths: Sequence[str], base: str
    ) -> list[dict[str, Any]]:
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for _rid, attributes in rows:
            for path in paths:
                current, values = dataset, attributes
                for relation in path.split("."):
                    target = self.world.datasets[current.to_one[relation]]
                    value = values.get(relation)
                    index = self._find(target, str(value)) if value else None
                    if index is None:
                        break
                    rid, values = self._row(target, index)
                    if (target.type, rid) not in seen:
                        seen[(target.type, rid)] = self._resource(target, rid, values, base)
                    current = target
        return list(seen.values())

    def _document_resource(self, document: _Document, base: str) -> dict[str, Any]:
        kind, _types, annotated = _DOCUMENT_TYPES[document.parent]
        own = f"{base}/{document.parent}/{document.parent_id}/documents/{document.id}/"
        links = {"self": own, "download": own + "download/"}
        if annotated:
            links["download_annotated"] = own + "download-annotated/"
        parent_type = _PARENT_TYPES[document.parent]
        return {
            "id": document.id,
            "type": kind,
            "attributes": {
                "filename": document.filename,
                "uploaded_at": document.uploaded_at,
                "document_type": document.document_type,
            },
            "links": links,
            "relationships": {
                _SINGULAR[document.parent]: {"data": {"id": document.parent_id, "type": parent_type}}
            },
        }

    # -- routing -----------------------------------------------------------------------------------
    def _add_routes(self) -> None:
        add = self._router.add
        for name, cls in DATASETS.items():
            add("GET", rf"/{re.escape(cls.path)}/", self._list_route(name))
            if name in _DETAILS:
                add("GET", rf"/{re.escape(cls.path)}/(?P<rid>{_UUID})/", self._detail_route(name))
        add("GET", rf"/cost_elements/(?P<rid>{_UUID})", self._detail_route("cost_elements"))
        for (parent, segment), _child in _SUB_LISTS.items():
            add("GET", rf"/{parent}/(?P<rid>{_UUID})/{segment}/", self._sub_list_route(parent, segment))
        for parent in _DOCUMENT_TYPES:
            base = rf"/{parent}/(?P<rid>{_UUID})/documents/"
            add("GET", base, self._documents_route(parent))
            add("POST", base, self._upload_route(parent))
            add("GET", base + rf"(?P<doc>{_UUID})/", self._document_route(parent, "detail"))
            add("GET", base + rf"(?P<doc>{_UUID})/download/", self._document_route(parent, "download"))
            if _DOCUMENT_TYPES[parent][2]:
                add(
                    "GET",
                    base + rf"(?P<doc>{_UUID})/download-annotated/",
                    self._document_route(parent, "annotated"),
                )
        add("POST", r"/contracts/", self._create_contract)
        add("PATCH", rf"/contracts/(?P<rid>{_UUID})/", self._patch_contract)
        add("POST", rf"/invoices/(?P<rid>{_UUID})/register-payment/", self._register_payment)
        add("POST", rf"/invoices/(?P<rid>{_UUID})/update-new/", self._update_new)
        add("POST", rf"/projects/(?P<rid>{_UUID})/submit-invoice/", self._submit_invoice)

    def handle(self, request: Request) -> Response:
        try:
            response = self._handle(request)
        except AlascoError as error:
            response = error.response
        if response.status >= 400:
            response.headers.setdefault("x-request-id", uuid.uuid4().hex)
        return _compress(request, response)

    def _handle(self, request: Request) -> Response:
        if request.subpath.startswith(FILES_PREFIX):
            return self._storage(request, request.subpath[len(FILES_PREFIX) :])
        prefix = api_prefix(request.subpath)
        if prefix is None:
            return Response.json({"detail": "Not Found"}, 404)
        path = request.subpath[len(prefix) :]
        handler, arguments, exists = self._router.match(request.method, path)
        if not exists:
            # Starlette's redirect_slashes: the same path with (or without) the trailing slash.
            other = path[:-1] if path.endswith("/") else path + "/"
            if self._router.match(request.method, other)[2]:
                return self._redirect(request, prefix + other, 307)
            return Response.json({"detail": "Not Found"}, 404)
        if handler is None:
            return Response.json({"detail": "Method Not Allowed"}, 405)
        failure = self._check_access(request)
        if failure is not None:
            return failure
        for name, value in arguments.items():
            try:
                uuid.UUID(value)
            except ValueError:
                loc = "id" if name == "rid" else "document_id"
                raise validation_error(
                    ["path", loc], "Input should be a valid UUID", "uuid_parsing", value
                ) from None
        return handler(request, **arguments)

    def _redirect(self, request: Request, subpath: str, status: int) -> Response:
        host = request.header("host") or "localhost"
        location = f"http://{host}{self.prefix}{subpath}"
        if request.query_string:
            location += "?" + request.query_string
        return Response(status, b"", None, {"Location": location})

    def _check_access(self, request: Request) -> Response | None:
        key = request.header("x-api-key")
        token = request.header("x-api-token")
        with self._lock:
            valid = bool(key and token and token in self._credentials.get(key, ()))
        if not valid:
            return jsonapi_error(401, "Unauthorized", "Invalid or missing API key or API token.").response
        if not self.access_enabled:
            return jsonapi_error(
                403, "Forbidden", "The account is not activated for public API access."
            ).response
        limit = self.rate_limit
        if limit is not None:
            requests, seconds = limit
            now = time.monotonic()
            with self._lock:
                self._recent = [t for t in self._recent if now - t < seconds]
                if len(self._recent) >= requests:
                    wait = max(1, int(seconds - (now - self._recent[0])) + 1)
                    response = jsonapi_error(429, "Too Many Requests", "Rate limit exceeded.").response
                    response.headers["Retry-After"] = str(wait)
                    return response
                self._recent.append(now)
        return None

    # -- lists and details -------------------------------------------------------------------------
    def _list_route(self, name: str) -> Callable[..., Response]:
        def list_all(request: Request) -> Response:
            return self._list(request, self.world.datasets[name])

        return list_all

    def _sub_list_route(self, parent: str, segment: str) -> Callable[..., Response]:
        child, attribute = _SUB_LISTS[(parent, segment)]

        def sub_list(request: Request, rid: str) -> Response:
            self._require(parent, rid)
            return self._list(request, self.world.datasets[child], parent=(attribute, rid.lower()))

        return sub_list

    def _require(self, name: str, rid: str) -> int:
        dataset = self.world.datasets[name]
        index = self._find(dataset, rid)
        if index is None:
            raise jsonapi_error(
                404, "Not Found", f"{dataset.type.replace('_', ' ').title()} {rid} does not exist."
            )
        return index

    def _list(self, request: Request, dataset: Dataset, parent: tuple[str, str] | None = None) -> Response:
        items = _query_items(request.query_string)
        conditions = parse_filters(dataset, items)
        include = parse_include(dataset, items)
        base = self._base(request)
        with self._lock:
            total = self._total(dataset)
            lo, hi, rest = self._bounds(dataset, conditions, total)
            tests = [_test(condition) for condition in rest]
            if parent is not None:
                attribute, wanted = parent
                tests.append(lambda rid, attrs: str(attrs.get(attribute) or "").lower() == wanted)
            query_hash = _query_hash(request.subpath, items)
            start = lo
            for key, raw in items:
                if key == "cursor[position]":
                    start = max(lo, decode_cursor(unquote_plus(raw), query_hash))
            rows: list[tuple[str, dict[str, Any]]] = []
            i = start
            while i < hi and len(rows) < dataset.page_size:
                rid, attributes = self._row(dataset, i)
                if all(test(rid, attributes) for test in tests):
                    rows.append((rid, attributes))
                i += 1
            next_position = None
            if len(rows) == dataset.page_size:
                for j in range(i, hi):
                    if not tests or all(test(*self._row(dataset, j)) for test in tests):
                        next_position = j
                        break
            data = [self._resource(dataset, rid, attributes, base) for rid, attributes in rows]
            included = self._included(dataset, rows, include, base) if include else None
        next_link = None
        if next_position is not None:
            kept = [part for part in request.query_string.split("&") if part and not _is_cursor(part)]
            kept.append(f"cursor%5Bposition%5D={encode_cursor(next_position, query_hash)}")
            next_link = (
                f"{base}{request.subpath[len(api_prefix(request.subpath) or API_PREFIX) :]}?{'&'.join(kept)}"
            )
        return Response.json(
            {"data": data, "included": included, "links": {"next": next_link}, "errors": None}
        )

    def _bounds(
        self, dataset: Dataset, conditions: Sequence[Condition], total: int
    ) -> tuple[int, int, list[Condition]]:
        """Rows ``[lo, hi)`` that can match the ranges on the monotonic attribute; the other
        conditions are left to test row by row."""
        lo, hi = 0, total
        rest = []
        for condition in conditions:
            if condition.attribute != dataset.monotonic or condition.operation not in (
                "greater_than_equal",
                "less_than_equal",
                "range",
            ):
                rest.append(condition)
                continue

            def key(i: int) -> int:
                return self._stamp(dataset, i)

            if condition.operation in ("greater_than_equal", "range"):
                lo = max(lo, bisect.bisect_left(range(total), condition.values[0], key=key))
            if condition.operation in ("less_than_equal", "range"):
                hi = min(hi, bisect.bisect_right(range(total), condition.values[-1], key=key))
        return lo, max(lo, hi), rest

    def _detail_route(self, name: str) -> Callable[..., Response]:
        def detail(request: Request, rid: str) -> Response:
            dataset = self.world.datasets[name]
            items = _query_items(request.query_string)
            include = parse_include(dataset, items)
            base = self._base(request)
            with self._lock:
                index = self._require(name, rid)
                found, attributes = self._row(dataset, index)
                document = {
                    "data": self._resource(dataset, found, attributes, base),
                    "included": self._included(dataset, [(found, attributes)], include, base)
                    if include
                    else None,
                    "links": None,
                    "errors": None,
                }
            return Response.json(document)

        return detail

    # -- documents ---------------------------------------------------------------------------------
    def _documents_for(self, parent: str, rid: str) -> list[_Document]:
        documents = [self._documents[doc] for doc in self._documents_of.get((parent, rid.lower()), [])]
        if parent == "invoices":
            index = self._require("invoices", rid)
            dataset = self.world.datasets["invoices"]
            if index < dataset.count:
                documents.insert(0, self._generated_document(index))
        return documents

    def _generated_document(self, index: int) -> _Document:
        rid, attributes = self._row(self.world.datasets["invoices"], index)
        return _Document(
            id=self._document_codec.id(index),
            parent="invoices",
            parent_id=rid,
            filename=f"{attributes['internal_identifier']}.pdf",
            document_type="INVOICE",
            uploaded_at=attributes["date_created"],
            content=b"",
        )

    def _document_content(self, document: _Document) -> bytes:
        if document.content:
            return document.content
        _rid, attributes = self._row(
            self.world.datasets["invoices"], self._require("invoices", document.parent_id)
        )
        amount = attributes.get("unaudited_amount") or {}
        return _pdf(
            f"Rechnung {attributes['internal_identifier']}",
            [f"Rechnungsnummer: {attributes.get('external_identifier') or '-'}",
             f"Netto: {amount.get('net', '-')} EUR", f"Steuer: {amount.get('tax', '-')} EUR"],
        )  # fmt: skip

    def _documents_route(self, parent: str) -> Callable[..., Response]:
        def documents(request: Request, rid: str) -> Response:
            base = self._base(request)
            with self._lock:
                self._require(parent, rid)
                data = [self._document_resource(doc, base) for doc in self._documents_for(parent, rid)]
            items = _query_items(request.query_string)
            for key, raw in items:
                if key == "filter[document_type.in]":
                    wanted = set(_split_values(raw))
                    data = [doc for doc in data if doc["attributes"]["document_type"] in wanted]
            return Response.json({"data": data, "included": None, "links": {"next": None}, "errors": None})

        return documents

    def _document_route(self, parent: str, action: str) -> Callable[..., Response]:
        def document(request: Request, rid: str, doc: str) -> Response:
            with self._lock:
                self._require(parent, rid)
                found = next((d for d in self._documents_for(parent, rid) if d.id == doc.lower()), None)
                if found is None:
                    raise jsonapi_error(404, "Not Found", f"Document {doc} does not exist.")
                if action == "detail":
                    return Response.json(
                        {"data": self._document_resource(found, self._base(request)), "errors": None}
                    )
                content = self._document_content(found)
            if action == "annotated":
                return Response(200, content, "application/pdf", {})
            expires = self.now_micros() // 1_000_000 + LINK_TTL_SECONDS
            token = (
                base64.urlsafe_b64encode(f"{parent}/{rid.lower()}/{found.id}".encode()).decode().rstrip("=")
            )
            signature = self._sign(token, expires)
            host = request.header("host") or "localhost"
            location = (
                f"http://{host}{self.prefix}{FILES_PREFIX}{token}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                f"&X-Amz-Expires={LINK_TTL_SECONDS}&X-Amz-Date={expires}&X-Amz-Signature={signature}"
            )
            return Response(302, b"", None, {"Location": location})

        return document

    def _sign(self, token: str, expires: int) -> str:
        return hmac.new(self._secret, f"{token}:{expires}".encode(), hashlib.sha256).hexdigest()

    def _storage(self, request: Request, token: str) -> Response:
        """The object storage behind the pre-signed links: the signature in the URL is the only
        authority. Like presigned object storage (S3 and the like), it ignores headers it does not
        know, the API's ``X-API-KEY``/``X-API-TOKEN`` included, so a client that leaks them there
        gets its file all the same; only an ``Authorization`` header is refused, as S3 refuses a
        second authentication mechanism. Every fetch is recorded with the headers it carried, so
        tests can see what a client sent to a host that is not Alasco."""
        carried = sorted(
            name for name in ("x-api-key", "x-api-token", "authorization") if request.header(name)
        )
        record = {
            "path": token,
            "credentials_sent": carried,
            "headers": dict(request.headers),
            "status": 200,
        }
        try:
            expires = int(request.param("X-Amz-Date") or "")
        except ValueError:
            expires = -1
        signature = request.param("X-Amz-Signature") or ""
        if request.header("authorization"):
            response = _storage_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Signature query parameter or the "
                "Authorization header should be specified",
            )
        elif expires < 0 or not hmac.compare_digest(signature, self._sign(token, expires)):
            response = _storage_error(403, "SignatureDoesNotMatch", "The request signature does not match")
        elif self.now_micros() // 1_000_000 > expires:
            response = _storage_error(403, "AccessDenied", "Request has expired")
        else:
            try:
                parent, rid, doc = (
                    base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("/")
                )
                with self._lock:
                    found = next(d for d in self._documents_for(parent, rid) if d.id == doc)
                    content = self._document_content(found)
                response = Response(200, content, "application/pdf", {})
            except (ValueError, StopIteration, KeyError, AlascoError):
                response = _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        record["status"] = response.status
        with self._lock:
            self.downloads.append(record)
        return response

    def _upload_route(self, parent: str) -> Callable[..., Response]:
        def upload(request: Request, rid: str) -> Response:
            parts = _form(request)
            _kind, accepted, _annotated = _DOCUMENT_TYPES[parent]
            document_type = parts.get("document_type")
            if document_type is None:
                raise validation_error(["body", "document_type"], "Field required", "missing")
            type_text = document_type.data.decode("utf-8", "replace").strip()
            if type_text not in accepted:
                raise validation_error(
                    ["body", "document_type"],
                    f"Input should be one of {', '.join(sorted(accepted))}",
                    "enum",
                    type_text,
                )
            upload_part = _pdf_part(parts, "upload")
            with self._lock:
                self._require(parent, rid)
                document = self._store_document(parent, rid.lower(), upload_part, type_text)
                self.uploads.append(
                    {
                        "parent": parent,
                        "id": rid.lower(),
                        "document": document.id,
                        "filename": document.filename,
                    }
                )
                body = {"data": self._document_resource(document, self._base(request)), "errors": None}
            return Response.json(body, 201)

        return upload

    def _store_document(self, parent: str, rid: str, part: FormPart, document_type: str) -> _Document:
        document = _Document(
            id=str(
                uuid.UUID(
                    bytes=hashlib.sha256(f"{self.seed}:{len(self._documents)}:{rid}".encode()).digest()[:16],
                    version=4,
                )
            ),
            parent=parent,
            parent_id=rid,
            filename=part.filename or "document.pdf",
            document_type=document_type,
            uploaded_at=iso_instant(self.now_micros()),
            content=part.data,
        )
        self._documents[document.id] = document
        self._documents_of.setdefault((parent, rid), []).append(document.id)
        return document

    # -- writes ------------------------------------------------------------------------------------
    def _checked_body(self, request: Request, path: str, method: str) -> dict[str, Any]:
        """The JSON body, checked against the spec's request schema of ``method path`` (422 as
        FastAPI answers when it does not conform)."""
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            raise validation_error(["body"], "JSON decode error", "json_invalid") from None
        spec = load_json("alasco", "fincon-openapi.json")
        problems = validate(spec, request_schema(spec, path, method), body)
        if problems:
            raise AlascoError(Response.json({"detail": problems}, 422))
        return dict(body)

    def _relationship_ids(self, data: Mapping[str, Any]) -> dict[str, str | None]:
        """``relationships.<name>.data.id`` of a body, each checked to exist (422 otherwise)."""
        found: dict[str, str | None] = {}
        for name, value in (data.get("relationships") or {}).items():
            dataset = _CONTRACT_RELATIONS.get(name)
            if dataset is None:
                continue
            if value is None:
                found[name] = None
                continue
            rid = str(value["data"]["id"]).lower()
            if self.world.index(dataset, rid) is None and not self._is_inserted(dataset, rid):
                raise validation_error(
                    ["body", "data", "relationships", name, "data", "id"],
                    f"{name.replace('_', ' ').capitalize()} {rid} does not exist",
                    value=rid,
                )
            found[name] = rid
        return found

    def _is_inserted(self, dataset: str, rid: str) -> bool:
        return any(found == rid for found, _ in self._inserted.get(dataset, ()))

    def _create_contract(self, request: Request) -> Response:
        # CreateContractRequestFincon: name and is_reverse_charge required, contract_unit and
        # contracting_entity required relationships, contractor optional. The spec answers 200.
        body = self._checked_body(request, "/contracts/", "post")
        data = body["data"]
        attributes = data["attributes"]
        relations = self._relationship_ids(data)
        amount = attributes.get("amount")
        reverse_charge = bool(attributes["is_reverse_charge"])
        dataset = self.world.datasets["contracts"]
        now = self.now_micros()
        row = {
            "name": attributes["name"],
            # The read schema (ReadContractAttributesFincon) requires these as strings, never null:
            # one the request leaves out (or sends as null) reads back as "" (our assumption).
            "contract_number": attributes.get("contract_number") or "",
            "cost_center": attributes.get("cost_center") or "",
            "description": attributes.get("description") or "",
            "status": "DRAFT",
            "contract_type": "STANDARD",
            "is_reverse_charge": reverse_charge,
            "date_contract": attributes.get("date_contract"),
            "date_created": iso_instant(now),
            "contract_unit": relations["contract_unit"],
            "contractor": relations.get("contractor"),
            "contracting_entity": relations["contracting_entity"],
            "amount": _money_body(amount, ["body", "data", "attributes", "amount"])
            if amount
            else money(0, 0),
            "reserve_amount": money(0, 0),
            "booking_account_number": attributes.get("booking_account_number"),
        }
        with self._lock:
            found, index = self._insert(dataset, row)
            self.contract_creations.append({"contract": found, "attributes": dict(row)})
            resource = self._resource(dataset, found, self._row(dataset, index)[1], self._base(request))
        return Response.json({"data": resource, "errors": None})

    def _patch_contract(self, request: Request, rid: str) -> Response:
        body = self._checked_body(request, "/contracts/{id}/", "patch")
        data = body["data"]
        attributes = data["attributes"]
        if str(data["id"]).lower() != rid.lower():
            raise validation_error(
                ["body", "data", "id"], "The id in the body does not match the URL", value=data.get("id")
            )
        relations = self._relationship_ids(data)
        # Only what the request names changes: the schema's default DRAFT for status is not applied
        # to a PATCH without status (it would reopen every contract a client renames).
        changes: dict[str, Any] = {}
        for name in (
            "name",
            "contract_number",
            "cost_center",
            "description",
            "date_contract",
            "booking_account_number",
        ):
            if name in attributes:
                changes[name] = attributes[name]
        for name in _CONTRACT_TEXTS:
            if name in changes and changes[name] is None:
                changes[name] = ""  # a null clears the text; the read schema has no null for it
        if "amount" in attributes:
            amount = attributes["amount"]
            changes["amount"] = (
                None if amount is None else _money_body(amount, ["body", "data", "attributes", "amount"])
            )
        changes.update(relations)
        dataset = self.world.datasets["contracts"]
        status_loc = ["body", "data", "attributes", "status"]
        with self._lock:
            index = self._require("contracts", rid)
            current = self._row(dataset, index)[1]
            before = current["status"]
            if "status" in attributes and attributes["status"] != before:
                status = attributes["status"]
                # UpdateContractAttributes.status: "Multipart contracts cannot change status via the
                # API, and a contractor must be set before the status can be anything other than DRAFT."
                if current["contract_type"] == "MULTIPART":
                    raise validation_error(
                        status_loc, "Multipart contracts cannot change status via the API", value=status
                    )
                changes["status"] = status
            status = changes.get("status", before)
            contractor = changes.get("contractor", current["contractor"])
            if status != "DRAFT" and not contractor:
                raise validation_error(
                    status_loc,
                    "A contractor must be set before the status can be anything other than DRAFT",
                    value=status,
                )
            self._update(dataset, index, changes)
            found, after = self._row(dataset, index)
            self.contract_updates.append(
                {"contract": found, "before": before, "after": after["status"], "changes": changes}
            )
            body = {"data": self._resource(dataset, found, after, self._base(request)), "errors": None}
        return Response.json(body)

    def _register_payment(self, request: Request, rid: str) -> Response:
        # InvoicePayment: payment_date (date), payment_amount_gross (number or decimal string) and
        # payment_comment (string) are all required.
        attributes = self._checked_body(request, "/invoices/{id}/register-payment/", "post")["data"][
            "attributes"
        ]
        loc = ["body", "data", "attributes"]
        amount = attributes["payment_amount_gross"]
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float | str)
            or not _DECIMAL_RE.fullmatch(str(amount))
        ):
            raise validation_error(
                [*loc, "payment_amount_gross"], "Input should be a valid decimal", "decimal_parsing", amount
            )
        if (
            not isinstance(attributes["payment_date"], str)
            or parse_instant(attributes["payment_date"]) is None
        ):
            raise validation_error(
                [*loc, "payment_date"],
                "Input should be a valid date",
                "date_parsing",
                attributes["payment_date"],
            )
        if not isinstance(attributes["payment_comment"], str):
            raise validation_error([*loc, "payment_comment"], "Input should be a valid string", "string_type")
        dataset = self.world.datasets["invoices"]
        with self._lock:
            index = self._require("invoices", rid)
            found, current = self._row(dataset, index)
            state = current["invoice_process_state"]
            if state != "APPROVED":
                raise jsonapi_error(
                    400,
                    "Bad Request",
                    f"A payment can only be registered for an approved invoice (state {state}).",
                )
            gross = Decimal(str(amount))
            changes: dict[str, Any] = {
                "invoice_process_state": "PAID",
                "payment_amount_gross": {"currency": "EUR", "amount": f"{gross:.12f}"},
                "payment_date": attributes["payment_date"][:10],
                "payment_comment": attributes["payment_comment"],
                "payment_created": iso_instant(self.now_micros()),
            }
            self._update(dataset, index, changes)
            found, after = self._row(dataset, index)
            self.payments.append({"invoice": found, **{k: changes[k] for k in ("payment_date", "payment_comment")},
                                  "amount": changes["payment_amount_gross"]["amount"]})  # fmt: skip
            body = {"data": self._resource(dataset, found, after, self._base(request)), "errors": None}
        return Response.json(body, 201)

    def _update_new(self, request: Request, rid: str) -> Response:
        # UpdateNewInvoiceDetailsRequest: data.id required, attributes optional (null: nothing to change)
        attributes = (
            self._checked_body(request, "/invoices/{id}/update-new/", "post")["data"].get("attributes") or {}
        )
        allowed = ("date_discount", "date_due", "date_posted", "date_received", "external_identifier",
                   "internal_identifier", "invoice_type", "unaudited_amount")  # fmt: skip
        changes = {name: attributes[name] for name in allowed if name in attributes}
        if "unaudited_amount" in changes and changes["unaudited_amount"] is not None:
            changes["unaudited_amount"] = _money_body(
                changes["unaudited_amount"], ["body", "data", "attributes", "unaudited_amount"]
            )
        dataset = self.world.datasets["invoices"]
        with self._lock:
            index = self._require("invoices", rid)
            state = self._row(dataset, index)[1]["invoice_process_state"]
            if state != "NEW":
                raise jsonapi_error(
                    400, "Bad Request", f"Only invoices in status New can be updated (state {state})."
                )
            self._update(dataset, index, changes)
            found, after = self._row(dataset, index)
            body = {"data": self._resource(dataset, found, after, self._base(request)), "errors": None}
        return Response.json(body)

    def _submit_invoice(self, request: Request, rid: str) -> Response:
        part = _pdf_part(_form(request), "file")
        dataset = self.world.datasets["invoices"]
        with self._lock:
            self._require("projects", rid)
            now = self.now_micros()
            attributes: dict[str, Any] = {name: None for name in dataset.attributes(0)}
            attributes.update(
                invoice_process_state="NEW",
                is_reverse_charge=False,
                date_created=iso_instant(now),
                date_received=iso_instant(now)[:10],
            )
            invoice_id, _index = self._insert(dataset, attributes)
            self._private[invoice_id] = {"project": rid.lower()}
            document = self._store_document("invoices", invoice_id, part, "INVOICE")
            self.submissions.append({"project": rid.lower(), "invoice": invoice_id, "filename": document.filename,
                                     "bytes": len(part.data)})  # fmt: skip
        created = {
            "id": invoice_id,
            "type": "INVOICE",
            "attributes": {
                "date_created": attributes["date_created"],
                "date_received": attributes["date_received"],
                "invoice_process_state": "NEW",
            },
            "relationships": {
                "documents": {"links": {"related": f"{self._base(request)}/invoices/{invoice_id}/documents/"}}
            },
        }
        return Response.json({"data": created, "errors": None}, 201)

    # -- sandbox control ---------------------------------------------------------------------------
    def handle_control(self, request: Request, path: str) -> Response:
        path = path.strip("/").lower()
        method = request.method
        if path == "credentials" and method == "GET":
            return Response.json({"api_key": self.api_key, "api_token": self.api_token})
        if path == "credentials" and method == "POST":
            try:
                replace = bool((request.json() if request.body else {}).get("replace", True))
            except (ValueError, AttributeError):
                return Response.json({"error": "expected {'replace': true|false}"}, 400)
            key, token = self.mint_credentials(replace=replace)
            return Response.json({"api_key": key, "api_token": token})
        if path == "credentials/revoke" and method == "POST":
            try:
                token = str(request.json()["api_token"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'api_token': '...'}"}, 400)
            return Response.json({"revoked": self.revoke_token(token)})
        if path == "access" and method == "POST":
            try:
                self.access_enabled = bool(request.json()["enabled"])
            except (ValueError, KeyError, TypeError):
                return Response.json({"error": "expected {'enabled': true|false}"}, 400)
            return Response.json({"enabled": self.access_enabled})
        if path == "rate_limit" and method == "POST":
            try:
                data = request.json()
                requests = data.get("requests")
                self.rate_limit = (
                    None if requests is None else (int(requests), float(data.get("per_seconds", 1)))
                )
            except (ValueError, TypeError, AttributeError):
                return Response.json(
                    {"error": "expected {'requests': N, 'per_seconds': S} or {'requests': null}"}, 400
                )
            return Response.json({"rate_limit": self.rate_limit})
        if path == "datasets" and method == "GET":
            with self._lock:
                return Response.json(
                    {
                        name: {"rows": ds.count, "inserted": len(self._inserted.get(name, ()))}
                        for name, ds in self.world.datasets.items()
                    }
                )
        logs = {"payments": self.payments, "contract_updates": self.contract_updates,
                "contract_creations": self.contract_creations,
                "submissions": self.submissions, "uploads": self.uploads, "downloads": self.downloads}  # fmt: skip
        if path in logs and method == "GET":
            with self._lock:
                return Response.json(list(logs[path]))
        return super().handle_control(request, path)


def _storage_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(status, body.encode(), "application/xml", {})


def _compress(request: Request, response: Response) -> Response:
    accepted = (request.header("accept-encoding") or "").lower()
    if (
        "gzip" in accepted
        and len(response.body) >= GZIP_MIN_BYTES
        and (response.content_type or "").startswith("application/json")
    ):
        response.body = gzip.compress(response.body, compresslevel=1, mtime=0)
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Vary"] = "Accept-Encoding"
    return response
