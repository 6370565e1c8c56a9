"""The Alasco emulator's answers against the vendor's own FinCon OpenAPI.

Every endpoint the emulator serves is called, and the body is validated with jsonschema against the
response schema the OpenAPI document gives for that path, method and status (``$ref``s resolved
within the document; formats ``uuid``, ``date`` and ``date-time`` checked). The attributes of each
object must also all be declared in the spec: the emulator may not invent fields.

The OpenAPI document ships with the sandbox (``sandbox/specs/alasco/fincon-openapi.json``).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_ledgerlink.sandbox.alasco import _pdf
from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json

from .test_emulator import api  # the emulator's FinCon API with valid credentials

SPEC_URI = "urn:alasco:fincon-openapi"
__all__ = ["api"]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_json("alasco", "fincon-openapi.json")


@pytest.fixture(scope="module")
def validate(spec: dict[str, Any]) -> Any:
    """``validate(method, template, status, body)``: checks ``body`` against the spec."""
    import jsonschema  # a dev dependency: the check never skips
    import referencing
    from referencing.jsonschema import DRAFT202012

    registry = referencing.Registry().with_resource(
        SPEC_URI, referencing.Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def is_datetime(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    @checker.checks("date", raises=ValueError)
    def is_date(value: object) -> bool:
        if isinstance(value, str):
            date.fromisoformat(value)
        return True

    def pointer(*parts: str) -> str:
        return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)

    def check(method: str, template: str, status: int, body: Any) -> None:
        operation = spec["paths"][template][method.lower()]
        assert str(status) in operation["responses"], f"{method} {template} does not document {status}"
        location = pointer(
            "paths",
            template,
            method.lower(),
            "responses",
            str(status),
            "content",
            "application/json",
            "schema",
        )
        schema = {"$ref": f"{SPEC_URI}#/{location}"}
        validator = jsonschema.Draft202012Validator(schema, registry=registry, format_checker=checker)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {template} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
        )
        declared = _declared_attributes(spec, operation["responses"][str(status)])
        items = body.get("data") if isinstance(body, dict) else None
        for item in items if isinstance(items, list) else [items] if isinstance(items, dict) else []:
            extra = set(item.get("attributes") or {}) - declared
            assert not extra or not declared, f"{method} {template}: undocumented attributes {sorted(extra)}"

    return check


def _resolve(spec: dict[str, Any], schema: Any) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _declared_attributes(spec: dict[str, Any], response: dict[str, Any]) -> set[str]:
    """Names of the attributes the response's data objects may carry (empty: not determinable)."""
    schema = _resolve(spec, (response.get("content") or {}).get("application/json", {}).get("schema"))
    data = _resolve(spec, (schema or {}).get("properties", {}).get("data"))
    options = data.get("anyOf", [data]) if isinstance(data, dict) else []
    names: set[str] = set()
    for option in options:
        option = _resolve(spec, option)
        if option.get("type") == "array":
            option = _resolve(spec, option.get("items"))
        attributes = _resolve(spec, option.get("properties", {}).get("attributes"))
        names |= set((attributes or {}).get("properties", {}))
    return names


LISTS = [
    ("/properties/", ""),
    ("/projects/", ""),
    ("/contract_units/", ""),
    ("/contracts/", "include=contractor,contracting_entity,contract_unit.project.property"),
    ("/change_orders/", ""),
    ("/invoices/", "include=contract.contractor,contract.contract_unit.project.property"),
    ("/contractors/", ""),
    ("/contracting_entities/", ""),
    ("/cost_elements/", ""),
    ("/cost_element_tree_templates/", ""),
    ("/budget_shifts/", "include=project,source_contract_unit,target_contract_unit"),
    ("/reporting/projects/", ""),
    ("/reporting/contracts/", ""),
    ("/reporting/contract_units/", ""),
    ("/reporting/cost_elements/", ""),
    ("/reporting/cost_elements/contracts/", ""),
    ("/reporting/cost_elements/contract_units/", ""),
    ("/reporting/cash_outflow/cost_elements/", ""),
    ("/reporting/rent_units/", ""),
    ("/reporting/sales_units/", ""),
    ("/reporting/outright_sales/", ""),
]


@pytest.mark.parametrize(("path", "query"), LISTS, ids=[path for path, _ in LISTS])
def test_every_list_page_matches_the_spec(api, validate, path, query):
    url = f"{path}?{query}" if query else path
    pages = 0
    while url and pages < 3:  # the first pages, through the cursor
        response = api.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        validate("GET", path, 200, body)
        url = body["links"]["next"]
        pages += 1


DETAILS = {
    "/properties/{id}/": "/properties/",
    "/projects/{id}/": "/projects/",
    "/contract_units/{id}/": "/contract_units/",
    "/contracts/{id}/": "/contracts/",
    "/change_orders/{id}/": "/change_orders/",
    "/invoices/{id}/": "/invoices/",
    "/contractors/{id}/": "/contractors/",
    "/contracting_entities/{id}/": "/contracting_entities/",
    "/cost_element_tree_templates/{id}/": "/cost_element_tree_templates/",
    "/cost_elements/{id}": "/cost_elements/",
    "/reporting/rent_units/{id}/": "/reporting/rent_units/",
    "/reporting/sales_units/{id}/": "/reporting/sales_units/",
    "/reporting/outright_sales/{id}/": "/reporting/outright_sales/",
}


@pytest.mark.parametrize("template", sorted(DETAILS))
def test_every_detail_matches_the_spec(api, validate, template):
    first = api.get(DETAILS[template]).json()["data"][-1]["id"]

    response = api.get(template.replace("{id}", first))

    assert response.status_code == 200
    validate("GET", template, 200, response.json())


SUB_LISTS = {
    "/properties/{property_id}/projects/": "/properties/",
    "/contract_units/{contract_unit_id}/contracts/": "/contract_units/",
    "/contracting_entities/{contracting_entity_id}/contracts/": "/contracting_entities/",
    "/contracting_entities/{contracting_entity_id}/projects/": "/contracting_entities/",
    "/contractors/{contractor_id}/contracts/": "/contractors/",
    "/contracts/{contract_id}/invoices/": "/contracts/",
    "/contracts/{contract_id}/change_orders/": "/contracts/",
    "/cost_element_tree_templates/{id}/cost_elements/": "/cost_element_tree_templates/",
}


@pytest.mark.parametrize("template", sorted(SUB_LISTS))
def test_every_sub_list_matches_the_spec(api, validate, template):
    parent = api.get(SUB_LISTS[template]).json()["data"][0]["id"]

    response = api.get(re.sub(r"\{[a-z_]+\}", parent, template))

    assert response.status_code == 200
    validate("GET", template, 200, response.json())


def test_documents_match_the_spec(api, validate, spec):
    invoice = api.get("/invoices/").json()["data"][0]["id"]
    documents = api.get(f"/invoices/{invoice}/documents/").json()
    validate("GET", "/invoices/{invoice_id}/documents/", 200, documents)
    document = documents["data"][0]["id"]
    detail = api.get(f"/invoices/{invoice}/documents/{document}/").json()
    validate("GET", "/invoices/{invoice_id}/documents/{document_id}/", 200, detail)

    uploaded = api.post(
        f"/invoices/{invoice}/documents/",
        data={"document_type": "ATTACHMENT"},
        files={"upload": ("Aufmaß.pdf", _pdf("Aufmaß"), "application/pdf")},
    )
    assert uploaded.status_code == 201
    validate("POST", "/invoices/{invoice_id}/documents/", 201, uploaded.json())

    contract = api.get("/contracts/").json()["data"][0]["id"]
    attached = api.post(
        f"/contracts/{contract}/documents/",
        data={"document_type": "CONTRACT"},
        files={"upload": ("Vertrag.pdf", _pdf("Vertrag"), "application/pdf")},
    )
    assert attached.status_code == 201
    validate("POST", "/contracts/{contract_id}/documents/", 201, attached.json())
    validate(
        "GET", "/contracts/{contract_id}/documents/", 200, api.get(f"/contracts/{contract}/documents/").json()
    )

    redirect = api.get(f"/invoices/{invoice}/documents/{document}/download/")
    assert redirect.status_code == 302  # the spec's only documented answer besides 422
    assert (
        "302" in spec["paths"]["/invoices/{invoice_id}/documents/{document_id}/download/"]["get"]["responses"]
    )


def test_the_writes_answer_as_the_spec_says(api, validate, sandbox_clean):
    emulator = sandbox_clean.alasco
    approved = next(
        i["id"]
        for i in emulator.resources("invoices")
        if i["attributes"]["invoice_process_state"] == "APPROVED"
    )
    paid = api.post(
        f"/invoices/{approved}/register-payment/",
        json={
            "data": {
                "type": "PAYMENT_DETAILS",
                "attributes": {
                    "payment_amount_gross": "1190.00",
                    "payment_date": "2026-11-19",
                    "payment_comment": "SEPA",
                },
            }
        },
    )
    assert paid.status_code == 201
    validate("POST", "/invoices/{id}/register-payment/", 201, paid.json())

    contract = emulator.resources("contracts", 3, 4)[0]["id"]
    patched = api.patch(
        f"/contracts/{contract}/",
        json={"data": {"id": contract, "type": "CONTRACT", "attributes": {"status": "ORDERED"}}},
    )
    assert patched.status_code == 200
    validate("PATCH", "/contracts/{id}/", 200, patched.json())

    created = api.post(
        "/contracts/",
        json={
            "data": {
                "type": "CONTRACT",
                "attributes": {
                    "name": "Rohbau",
                    "is_reverse_charge": False,
                    "amount": {"currency": "EUR", "net": "1000.00", "tax": "190.00"},
                },
                "relationships": {
                    name: {"data": {"type": name.upper(), "id": emulator.resources(dataset, 0, 1)[0]["id"]}}
                    for name, dataset in (
                        ("contract_unit", "contract_units"),
                        ("contracting_entity", "contracting_entities"),
                        ("contractor", "contractors"),
                    )
                },
            }
        },
    )
    assert created.status_code == 200  # the spec documents 200 (not 201) for POST /contracts/
    validate("POST", "/contracts/", 200, created.json())
    validate("GET", "/contracts/{id}/", 200, api.get(f"/contracts/{created.json()['data']['id']}/").json())

    project = emulator.resources("projects", 0, 1)[0]["id"]
    submitted = api.post(
        f"/projects/{project}/submit-invoice/", files={"file": ("RE.pdf", _pdf("RE"), "application/pdf")}
    )
    assert submitted.status_code == 201
    validate("POST", "/projects/{id}/submit-invoice/", 201, submitted.json())

    new_id = submitted.json()["data"]["id"]
    updated = api.post(
        f"/invoices/{new_id}/update-new/",
        json={"data": {"id": new_id, "type": "INVOICE", "attributes": {"external_identifier": "RE-1"}}},
    )
    assert updated.status_code == 200
    validate("POST", "/invoices/{id}/update-new/", 200, updated.json())


@pytest.mark.parametrize(
    ("method", "template", "url", "kwargs"),
    [
        ("GET", "/invoices/", "/invoices/?" + quote("filter[colour.exact]", safe="") + "=x", {}),
        ("GET", "/invoices/{id}/", "/invoices/not-a-uuid/", {}),
        (
            "POST",
            "/invoices/{id}/register-payment/",
            "/invoices/1aae03bc-96d8-47b6-9a8b-07f190400e62/register-payment/",
            {"json": {"data": {}}},
        ),
        (
            "POST",
            "/projects/{id}/submit-invoice/",
            "/projects/1aae03bc-96d8-47b6-9a8b-07f190400e62/submit-invoice/",
            {"files": {"other": ("a", b"x")}},
        ),
    ],
)
def test_validation_errors_match_httpvalidationerror(api, validate, method, template, url, kwargs):
    response = api.request(method, url, **kwargs)

    assert response.status_code == 422
    validate(method, template, 422, response.json())


def test_the_check_is_live_a_wrong_body_fails_it(api, validate):
    """A guard against a validator that passes everything: spoilt bodies must fail."""
    body = api.get("/contracts/").json()
    missing = json.loads(json.dumps(body))
    del missing["data"][0]["attributes"]["status"]
    as_float = json.loads(json.dumps(body))
    as_float["data"][0]["attributes"]["amount"]["net"] = 1000.0
    invented = json.loads(json.dumps(body))
    invented["data"][0]["attributes"]["colour"] = "blue"
    bad_uuid = json.loads(json.dumps(body))
    bad_uuid["data"][0]["attributes"]["contract_unit"] = "VE-300"

    for spoilt in (missing, as_float, invented, bad_uuid):
        with pytest.raises(AssertionError):
            validate("GET", "/contracts/", 200, spoilt)
