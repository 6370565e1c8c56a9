"""The Tripletex object model, read from the OpenAPI 2.72 file that ships with the sandbox, and how
one object refers to another (``{id, url}``).

The emulator builds each object's interesting values by hand (names, amounts, references) and lets
this module give it the *shape*: every property its schema lists, in the schema's order, with a
neutral value for the ones the emulator has nothing to say about. Because the field list is read from
the specification when the sandbox loads, an object cannot lack a documented field, and ``fields=``
accepts every documented field, nested ones too.

Neutral values (the specification never says ``nullable``, yet Tripletex's answers carry ``null``
for empty references, as its own error example does): a reference or an inline object is ``null``,
a list is empty, a flag is ``false``, a number is ``0``, a date, time or enumerated string is
``null`` and any other string is empty.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json

__all__ = [
    "KIND_OF_SCHEMA",
    "PATHS",
    "SCHEMAS",
    "SPEC_FILE",
    "URL_BASE",
    "complete",
    "field_names",
    "list_parameters",
    "missing_defaults",
    "object_ref",
    "object_ref_json",
    "properties",
    "references",
    "specification",
]

SPEC_FILE = "openapi-2.72.00.json"
_DATE_LIKE = re.compile(r"(date|Date|time|Time|timestamp|Timestamp|start|end|Start|End)$")


def specification() -> dict[str, Any]:
    return load_json("tripletex", SPEC_FILE)  # type: ignore[no-any-return]


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


@cache
def properties(schema: str) -> dict[str, dict[str, Any]]:
    """The properties of a component schema (name → property schema), in the schema's order."""
    schemas = specification()["components"]["schemas"]
    if schema not in schemas:
        raise KeyError(f"the Tripletex specification has no schema {schema!r}")
    return dict(schemas[schema].get("properties") or {})


@cache
def field_names(schema: str) -> frozenset[str]:
    return frozenset(properties(schema))


@cache
def references(schema: str) -> dict[str, str]:
    """Which properties hold other schemas' objects (``$ref``, or a list of them): name → schema."""
    result = {}
    for name, prop in properties(schema).items():
        target = prop.get("$ref") or (prop.get("items") or {}).get("$ref")
        if target:
            result[name] = _schema_name(target)
    return result


def _neutral(name: str, prop: Mapping[str, Any]) -> Any:
    if "$ref" in prop:
        return None
    kind = prop.get("type")
    if kind == "array":
        return []
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return 0
    if kind == "string":
        if "enum" in prop or _DATE_LIKE.search(name):
            return None
        return ""
    return None


@cache
def _neutral_values(schema: str) -> tuple[tuple[str, Any], ...]:
    return tuple((name, _neutral(name, prop)) for name, prop in properties(schema).items())


def complete(schema: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with every property of ``schema``, in the schema's order (``changes`` only when
    ``values`` has it). A key the schema lacks is an error in the emulator, so it raises."""
    unknown = set(values) - field_names(schema)
    if unknown:
        raise KeyError(
            f"{schema} has no field(s) {', '.join(sorted(unknown))} in the Tripletex specification"
        )
    result: dict[str, Any] = {}
    for name, neutral in _neutral_values(schema):
        if name in values:
            result[name] = values[name]
        elif name != "changes":
            result[name] = copy.copy(neutral) if isinstance(neutral, list) else neutral
    return result


def missing_defaults(schema: str, present: frozenset[str]) -> dict[str, Any]:
    """The neutral values of the properties of ``schema`` not in ``present`` (``changes`` left out)."""
    return {
        name: value for name, value in _neutral_values(schema) if name not in present and name != "changes"
    }


@cache
def list_parameters(path: str) -> frozenset[str]:
    """The query parameters the specification documents for ``GET path``."""
    operation = specification()["paths"][path]["get"]
    return frozenset(p["name"] for p in operation.get("parameters") or [] if p.get("in") == "query")


URL_BASE = "tripletex.no/v2"
"""Where Tripletex's ``url`` fields point (host-less, as in its answers)."""

# The schema of the Tripletex specification each kind of object follows (its fields, in order, and
# which of them refer to other objects come from the specification: see above).
SCHEMAS: dict[str, str] = {
    "posting": "Posting", "voucher": "Voucher", "account": "Account", "customer": "Customer",
    "supplier": "Supplier", "product": "Product", "order": "Order", "orderLine": "OrderLine",
    "invoice": "Invoice", "address": "Address", "employee": "Employee", "company": "Company",
    "client": "Client", "whoAmI": "LoggedInUserInfo", "vatType": "VatType", "currency": "Currency",
    "country": "Country", "voucherType": "VoucherType", "session": "SessionToken",
    "paymentType": "PaymentType", "productUnit": "ProductUnit", "accountingPeriod": "AccountingPeriod",
    "change": "Change",
}  # fmt: skip
KIND_OF_SCHEMA = {schema: kind for kind, schema in SCHEMAS.items() if kind != "client"}
PATHS = {
    "posting": "ledger/posting", "voucher": "ledger/voucher", "account": "ledger/account",
    "customer": "customer", "supplier": "supplier", "product": "product", "order": "order",
    "orderLine": "order/orderline", "invoice": "invoice", "address": "address", "employee": "employee",
    "company": "company", "vatType": "ledger/vatType", "currency": "currency", "country": "country",
    "voucherType": "ledger/voucherType", "project": "project", "department": "department",
    "closeGroup": "ledger/closeGroup", "document": "document", "paymentType": "invoice/paymentType",
    "productUnit": "product/unit", "accountingPeriod": "ledger/accountingPeriod",
}  # fmt: skip


def object_ref(kind: str, ident: int | None) -> dict[str, Any] | None:
    if ident is None:
        return None
    return {"id": ident, "url": f"{URL_BASE}/{PATHS[kind]}/{ident}"}


def object_ref_json(kind: str, ident: int) -> str:
    return json.dumps(object_ref(kind, ident), separators=(",", ":"))
