"""The emulator's answers for every endpoint LedgerLink uses conform to Tripletex's OpenAPI 2.72.

Each answer is validated against the response schema the specification gives for that operation,
with two adjustments that make the check stricter where it matters and honest where the spec is:

* every object schema with properties is closed (``additionalProperties: false``), so a field the
  emulator invents or misspells fails the test;
* any property may be ``null``. Tripletex's spec never says ``nullable``, yet its answers carry
  ``null`` (its own error example has ``"developerMessage": null`` and ``"rootId": null``).

The specification ships with the sandbox (``sandbox/specs/tripletex/openapi-2.72.00.json``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import jsonschema
import pytest

from airflow_provider_ledgerlink.sandbox.tripletex import field_names, references
from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json


@cache
def specification() -> dict[str, Any]:
    return load_json("tripletex", "openapi-2.72.00.json")


def _strict(schema: Any) -> Any:
    """A schema (not a map of schemas) made strict, all the way down."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):  # a map of names to schemas
            result[key] = {name: _nullable(_strict(item)) for name, item in value.items()}
            result.setdefault("additionalProperties", False)
        else:
            result[key] = _strict(value)
    return result


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"anyOf": [{"$ref": schema["$ref"]}, {"type": "null"}]}
    result = dict(schema)
    kind = result.get("type")
    if isinstance(kind, str):
        result["type"] = [kind, "null"]
    if "enum" in result:
        result["enum"] = [*result["enum"], None]
    return result


@cache
def strict_components() -> dict[str, Any]:
    components = copy.deepcopy(specification()["components"])
    return {"schemas": {name: _strict(schema) for name, schema in components["schemas"].items()}}


def response_schema(method: str, path: str) -> dict[str, Any]:
    operation = specification()["paths"][path][method.lower()]
    return operation["responses"]["default"]["content"]["application/json"]["schema"]


def object_schema(method: str, path: str) -> str:
    """The schema name of the object(s) an operation answers with (inside ``value`` or ``values``)."""
    wrapper = response_schema(method, path)["$ref"].rsplit("/", 1)[-1]
    props = specification()["components"]["schemas"][wrapper]["properties"]
    inner = props.get("value") or props["values"]["items"]
    return str(inner["$ref"].rsplit("/", 1)[-1])


def assert_complete(body: Any, schema: str, what: str, *, with_changes: bool = False) -> None:
    """Every object in the answer carries every field of its schema (``changes`` only when asked)."""
    wanted = set(field_names(schema)) - ({"changes"} if not with_changes else set())
    objects = body["values"] if "values" in body else [body["value"]]
    for obj in objects:
        missing = wanted - set(obj)
        assert not missing, f"{what}: {schema} {obj.get('id')} lacks {sorted(missing)}"


def assert_conforms(body: Any, schema: dict[str, Any], what: str) -> None:
    document = {**schema, "components": strict_components()}
    validator = jsonschema.Draft4Validator(document)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{what}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:200]}" for e in errors[:5]
    )


# ------------------------------------------------------------------------------------------------
# The calls
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def tripletex(sandbox_clean: Any) -> Iterator[tuple[httpx.Client, Any]]:
    specification()  # skip before touching the sandbox when the spec is missing
    emulator = sandbox_clean.tripletex
    base = sandbox_clean.tripletex_url + "/v2"
    created = httpx.put(
        base + "/token/session/:create",
        params={
            "consumerToken": emulator.consumer_token,
            "employeeToken": emulator.employee_token,
            "expirationDate": "2099-01-01",
        },
    )
    assert_conforms(
        created.json(), response_schema("PUT", "/token/session/:create"), "PUT /token/session/:create"
    )
    with httpx.Client(base_url=base, auth=("0", created.json()["value"]["token"])) as client:
        yield client, emulator


DAY = {"dateFrom": "2026-11-19", "dateTo": "2026-11-20"}

READS = [
    ("/token/session/>whoAmI", "/token/session/%3EwhoAmI", {}),
    ("/token/session/>whoAmI", "/token/session/%3EwhoAmI", {"fields": "*,company(*),employee(*)"}),
    ("/company/>withLoginAccess", "/company/%3EwithLoginAccess", {}),
    ("/ledger/posting", "/ledger/posting", DAY),
    (
        "/ledger/posting",
        "/ledger/posting",
        {**DAY, "fields": "*,changes,account(*),voucher(*),vatType(*),currency(*)"},
    ),
    (
        "/ledger/posting",
        "/ledger/posting",
        {"dateFrom": "2026-09-21", "dateTo": "2026-11-20", "customerId": "21000001"},
    ),
    ("/ledger/posting/{id}", "/ledger/posting/28004000", {}),
    ("/ledger/voucher", "/ledger/voucher", DAY),
    ("/ledger/voucher", "/ledger/voucher", {**DAY, "fields": "*,changes,postings(*),voucherType(*)"}),
    ("/ledger/voucher/{id}", "/ledger/voucher/27000100", {}),
    ("/ledger/account", "/ledger/account", {"fields": "*,changes,vatType(*)"}),
    ("/customer", "/customer", {"fields": "*,changes,postalAddress(*),currency(*),ledgerAccount(*)"}),
    ("/customer", "/customer", {"changedSince": "2026-11-01T00:00:00"}),
    ("/customer/{id}", "/customer/21000002", {}),
    ("/supplier", "/supplier", {"fields": "*,changes,postalAddress(*)"}),
    ("/product", "/product", {"fields": "*,changes,vatType(*)"}),
    (
        "/order",
        "/order",
        {
            "orderDateFrom": "2026-11-10",
            "orderDateTo": "2026-11-20",
            "fields": "*,changes,orderLines(*),customer(*)",
        },
    ),
    ("/ledger/vatType", "/ledger/vatType", {}),
    ("/ledger/vatType", "/ledger/vatType", {"number": "3", "fields": "*,changes"}),
    ("/ledger/vatType/{id}", "/ledger/vatType/3", {}),
    ("/ledger/voucherType", "/ledger/voucherType", {}),
    ("/ledger/voucherType/{id}", "/ledger/voucherType/9001", {}),
    ("/currency", "/currency", {"code": "NOK"}),
    ("/currency/{id}", "/currency/1", {}),
    ("/country", "/country", {}),
    ("/country/{id}", "/country/161", {}),
    ("/order/orderline/{id}", "/order/orderline/25000000", {}),
    ("/ledger/account/{id}", "/ledger/account/3001920", {}),
    ("/supplier/{id}", "/supplier/22000001", {}),
    ("/product/{id}", "/product/23000001", {}),
    ("/order/{id}", "/order/24000001", {}),
    ("/invoice/{id}", "/invoice/26000001", {}),
    ("/employee/{id}", "/employee/18301", {}),
    ("/company/{id}", "/company/9100001", {}),
    (
        "/invoice",
        "/invoice",
        {
            "invoiceDateFrom": "2026-11-10",
            "invoiceDateTo": "2026-11-20",
            "fields": "*,changes,orders(*),orderLines(*)",
        },
    ),
]


@pytest.mark.parametrize(("spec_path", "url", "params"), READS, ids=[f"{r[0]} {sorted(r[2])}" for r in READS])
def test_reads_conform(
    tripletex: tuple[httpx.Client, Any], spec_path: str, url: str, params: dict[str, str]
) -> None:
    client, _emulator = tripletex

    answer = client.get(url, params=params)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body.get("values", [body.get("value")]), "nothing to validate"
    assert_conforms(body, response_schema("GET", spec_path), f"GET {spec_path}")
    fields = params.get("fields", "*")
    if fields.split(",")[0] == "*":
        assert_complete(
            body, object_schema("GET", spec_path), f"GET {spec_path}", with_changes="changes" in fields
        )


# Each served kind, a URL that lists some, and the parameters the list needs.
KINDS = [
    ("/ledger/posting", "/ledger/posting", DAY),
    ("/ledger/voucher", "/ledger/voucher", DAY),
    ("/ledger/account", "/ledger/account", {}),
    ("/customer", "/customer", {}),
    ("/supplier", "/supplier", {}),
    ("/product", "/product", {}),
    ("/order", "/order", {"orderDateFrom": "2026-11-10", "orderDateTo": "2026-11-20"}),
    ("/invoice", "/invoice", {"invoiceDateFrom": "2026-11-10", "invoiceDateTo": "2026-11-20"}),
    ("/company/>withLoginAccess", "/company/%3EwithLoginAccess", {}),
    ("/ledger/vatType", "/ledger/vatType", {}),
    ("/ledger/voucherType", "/ledger/voucherType", {}),
    ("/currency", "/currency", {}),
    ("/country", "/country", {}),
]


@pytest.mark.parametrize(("spec_path", "url", "params"), KINDS, ids=[k[0] for k in KINDS])
def test_fields_accepts_every_documented_field_and_every_expansion(
    tripletex: tuple[httpx.Client, Any], spec_path: str, url: str, params: dict[str, str]
) -> None:
    """``fields=`` naming each field of the schema, and ``name(*)`` for each reference, is accepted
    and answers exactly those fields (Tripletex: "Fields filter pattern", ``*,orderLines(*)``)."""
    client, _emulator = tripletex
    schema = object_schema("GET", spec_path)
    names = sorted(field_names(schema))
    expanded = [f"{name}(*)" for name in sorted(references(schema)) if name != "changes"]

    plain = client.get(url, params={**params, "fields": ",".join(names), "count": 3})
    nested = client.get(url, params={**params, "fields": ",".join(["*", *expanded]), "count": 3})

    assert plain.status_code == 200, plain.text
    assert nested.status_code == 200, nested.text
    for value in plain.json()["values"]:
        assert set(value) == set(names)
    assert_conforms(plain.json(), response_schema("GET", spec_path), f"GET {spec_path} all fields")
    assert_conforms(nested.json(), response_schema("GET", spec_path), f"GET {spec_path} all expansions")


@pytest.mark.parametrize(
    ("url", "params", "fields"),
    [
        ("/supplier", {}, "id,bankAccounts,displayName"),
        ("/ledger/account", {}, "id,saftCode"),
        ("/product", {}, "id,displayNumber"),
        ("/customer", {}, "shoeSize"),
        ("/ledger/voucher", DAY, "*,postings(*,shoeSize)"),
    ],
)
def test_fields_refuses_only_what_the_schema_lacks(
    tripletex: tuple[httpx.Client, Any], url: str, params: dict[str, str], fields: str
) -> None:
    client, _emulator = tripletex

    answer = client.get(url, params={**params, "fields": fields})

    if "shoeSize" in fields:
        assert (answer.status_code, answer.json()["code"]) == (400, 11000)
    else:
        assert answer.status_code == 200, answer.text


def test_the_check_catches_an_invented_field_and_a_wrong_type() -> None:
    schema = response_schema("GET", "/customer/{id}")
    with pytest.raises(AssertionError, match="shoeSize"):
        assert_conforms({"value": {"id": 1, "shoeSize": 44}}, schema, "invented")
    with pytest.raises(AssertionError, match="customerNumber"):
        assert_conforms({"value": {"id": 1, "customerNumber": "ten"}}, schema, "wrong type")


def test_writes_conform(tripletex: tuple[httpx.Client, Any]) -> None:
    client, _emulator = tripletex

    customer = client.post(
        "/customer",
        json={"name": "Samsvar AS", "customerNumber": 100777, "email": "post@samsvar.no",
              "postalAddress": {"addressLine1": "Storgata 1", "postalCode": "0150", "city": "OSLO"}},
    )  # fmt: skip
    assert_conforms(customer.json(), response_schema("POST", "/customer"), "POST /customer")
    value = customer.json()["value"]
    updated = client.put(
        f"/customer/{value['id']}", json={"version": value["version"], "phoneNumber": "+47 1"}
    )
    assert_conforms(updated.json(), response_schema("PUT", "/customer/{id}"), "PUT /customer/{id}")

    order = client.post(
        "/order",
        json={"customer": {"id": value["id"]}, "orderDate": "2026-11-19", "deliveryDate": "2026-11-19", "reference": "WS-1",
              "orderLines": [{"description": "Ullpledd", "count": 1, "unitPriceExcludingVatCurrency": 499, "vatType": {"id": 3}}]},
    )  # fmt: skip
    assert_conforms(order.json(), response_schema("POST", "/order"), "POST /order")
    invoice = client.put(
        f"/order/{order.json()['value']['id']}/:invoice",
        params={"invoiceDate": "2026-11-19", "sendToCustomer": "false"},
    )
    assert_conforms(
        invoice.json(), response_schema("PUT", "/order/{id}/:invoice"), "PUT /order/{id}/:invoice"
    )

    voucher = client.post(
        "/ledger/voucher",
        json={"date": "2026-11-19", "description": "Kasse", "externalVoucherNumber": "POS-1",
              "postings": [{"account": {"id": 3001920}, "amountGross": 10.0}, {"account": {"id": 3003000}, "amountGross": -10.0}]},
    )  # fmt: skip
    assert_conforms(voucher.json(), response_schema("POST", "/ledger/voucher"), "POST /ledger/voucher")


def test_error_bodies_conform_to_the_api_error_schema(
    tripletex: tuple[httpx.Client, Any], sandbox_clean: Any
) -> None:
    client, emulator = tripletex
    api_error = {"$ref": "#/components/schemas/ApiError"}
    emulator.configure_rate_limit(limit=1000)
    customer = client.get("/customer/21000003").json()["value"]
    client.put(f"/customer/{customer['id']}", json={"version": customer["version"], "email": "x@y.no"})

    answers = {
        "401": httpx.get(sandbox_clean.tripletex_url + "/v2/customer"),
        "404": client.get("/customer/1"),
        "400": client.get("/customer", params={"fields": "nope"}),
        "409": client.put(
            f"/customer/{customer['id']}", json={"version": customer["version"], "email": "z@y.no"}
        ),
        "422": client.get("/ledger/posting"),
        "422 session": httpx.put(
            sandbox_clean.tripletex_url + "/v2/token/session/:create", params={"consumerToken": "x"}
        ),
    }
    emulator.configure_rate_limit(limit=1)
    client.get("/ledger/account")
    answers["429"] = client.get("/ledger/account")

    for name, answer in answers.items():
        assert str(answer.status_code) == name.split()[0], (name, answer.text)
        assert_conforms(answer.json(), api_error, f"error {name}")


def test_voucher_lookup_by_external_number_conforms(tripletex: tuple[httpx.Client, Any]) -> None:
    client, _emulator = tripletex
    client.post(
        "/ledger/voucher",
        json={"date": "2026-11-19", "externalVoucherNumber": "EXT-9",
              "postings": [{"account": {"id": 3001920}, "amountGross": 1.0}, {"account": {"id": 3003000}, "amountGross": -1.0}]},
    )  # fmt: skip

    found = client.get("/ledger/voucher/%3EexternalVoucherNumber", params={"externalVoucherNumber": "EXT-9"})

    assert [v["externalVoucherNumber"] for v in found.json()["values"]] == ["EXT-9"]
    assert_conforms(
        found.json(), response_schema("GET", "/ledger/voucher/>externalVoucherNumber"), "by external"
    )


def request_schema(method: str, path: str) -> dict[str, Any]:
    operation = specification()["paths"][path][method.lower()]
    content = operation["requestBody"]["content"]
    return next(iter(content.values()))["schema"]  # type: ignore[no-any-return]


def test_the_hook_sends_request_bodies_the_specification_accepts(
    tripletex_connection: str, sandbox_clean: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests, not only answers: every body LedgerLink writes validates against the operation's
    request schema (closed objects, so an invented field fails)."""
    from datetime import date

    from airflow_provider_ledgerlink.core.shared_state import MemoryState
    from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook

    emulator = sandbox_clean.tripletex
    hook = TripletexHook(state=MemoryState(), recheck_delay=0)
    customer = hook.upsert_customer(
        {"name": "Forespørsel AS", "customerNumber": 77, "email": "a@b.no", "isCustomer": True,
         "postalAddress": {"addressLine1": "Storgata 1", "postalCode": "0150", "city": "OSLO"}}
    )  # fmt: skip
    hook.upsert_customer({"name": "Forespørsel AS", "customerNumber": 77, "email": "ny@b.no"})
    order = hook.create_order(
        {"customer": {"id": customer.id}, "orderDate": "2026-11-19",
         "orderLines": [{"description": "Kaffe", "count": 1, "unitPriceExcludingVatCurrency": 10.0, "vatType": {"id": 3}}]},
        reference="REQ-1",
    )  # fmt: skip
    hook.invoice_order(order.id, customer_id=customer.id, invoice_date=date(2026, 11, 19))  # type: ignore[arg-type]
    hook.create_voucher(
        {"date": "2026-11-19", "externalVoucherNumber": "REQ-V",
         "postings": [{"account": {"id": 3001920}, "amountGross": 3.0}, {"account": {"id": 3003000}, "amountGross": -3.0}]}
    )  # fmt: skip
    hook.close()

    paths = {("POST", "/v2/customer"): "/customer", ("POST", "/v2/order"): "/order",
             ("POST", "/v2/ledger/voucher"): "/ledger/voucher"}  # fmt: skip
    checked = set()
    for sent in emulator.received:
        method, path = sent["method"], sent["path"]
        spec_path = paths.get((method, path)) or (
            "/customer/{id}" if path.startswith("/v2/customer/") else None
        )
        assert spec_path is not None, f"unexpected write {method} {path}"
        assert_conforms(
            json.loads(sent["body"]), request_schema(method, spec_path), f"{method} {spec_path} body"
        )
        checked.add(spec_path)
    assert checked == {"/customer", "/customer/{id}", "/order", "/ledger/voucher"}
