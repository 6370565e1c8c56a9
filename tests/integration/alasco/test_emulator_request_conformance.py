"""Request bodies against the vendor's FinCon OpenAPI, on both sides of the wire.

* What ``AlascoHook`` sends for every write is validated with jsonschema against the request schema
  the spec gives for that path and method, so the hook is pinned to the spec itself, not to our
  emulator: money goes as the spec's decimal strings (``"net": "1000.00"``), never as JSON numbers.
* Every JSON write the emulator serves accepts a body the spec accepts (checked with jsonschema
  first, so the example is known to conform) and answers 422 with FastAPI's ``HTTPValidationError``
  for a body the spec refuses.

The OpenAPI document ships with the sandbox (``sandbox/specs/alasco/fincon-openapi.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from airflow_provider_ledgerlink.core.errors import ValidationError
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook
from airflow_provider_ledgerlink.sandbox.alasco import _pdf
from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json

from .test_emulator import api  # the emulator's FinCon API with valid credentials

SPEC_URI = "urn:alasco:fincon-openapi"
__all__ = ["api"]

Check = Callable[[str, str, Any], list[str]]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_json("alasco", "fincon-openapi.json")


@pytest.fixture(scope="module")
def schema_problems(spec: dict[str, Any]) -> Callable[[str, Any], list[str]]:
    """``schema_problems(ref, value)``: what the spec's schema at ``ref`` (``#/...``) says is wrong."""
    registry = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )

    def check(ref: str, value: Any) -> list[str]:
        validator = jsonschema.Draft202012Validator(
            {"$ref": SPEC_URI + ref}, registry=registry, format_checker=jsonschema.FormatChecker()
        )
        return [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(value)
        ]

    return check


@pytest.fixture(scope="module")
def request_problems(spec: dict[str, Any], schema_problems: Any) -> Check:
    """``request_problems(method, template, body)``: what the spec's request schema says is wrong."""

    def check(method: str, template: str, body: Any) -> list[str]:
        operation = spec["paths"][template][method.lower()]
        return schema_problems(
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"], body
        )

    return check


def _ids(sandbox: Any) -> dict[str, str]:
    emulator = sandbox.alasco
    return {
        "contract_unit": emulator.resources("contract_units", 0, 1)[0]["id"],
        "contracting_entity": emulator.resources("contracting_entities", 0, 1)[0]["id"],
        "contractor": emulator.resources("contractors", 0, 1)[0]["id"],
        "contract": emulator.resources("contracts", 3, 4)[0]["id"],
        "approved": next(
            i["id"]
            for i in emulator.resources("invoices", emulator.row_count("invoices") - 200)
            if i["attributes"]["invoice_process_state"] == "APPROVED"
        ),
        "project": emulator.resources("projects", 0, 1)[0]["id"],
    }


def _relation(kind: str, rid: str) -> dict[str, Any]:
    return {"data": {"type": kind, "id": rid}}


# --------------------------------------------------------------------------------------------------
# What the hook sends
# --------------------------------------------------------------------------------------------------
def _templates(spec: dict[str, Any]) -> list[tuple[str, Any]]:
    import re

    return [
        (template, re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"))
        for template in spec["paths"]
    ]


def test_every_body_the_hook_writes_conforms_and_carries_money_as_strings(
    alasco_connection, sandbox_clean, monkeypatch, spec, request_problems
):
    hook = AlascoHook(alasco_connection, once_state=MemoryState())
    sent: list[tuple[str, str, Any]] = []
    original = hook._request

    def recording(method: str, url: str, **kwargs: Any) -> Any:
        if kwargs.get("content") is not None:
            path = url.split("/fincon/v1", 1)[1].split("?")[0]
            sent.append((method, path, json.loads(kwargs["content"])))
        return original(method, url, **kwargs)

    monkeypatch.setattr(hook, "_request", recording)
    ids = _ids(sandbox_clean)

    created = hook.create(
        "contracts",
        {
            "name": "Rohbau",
            "is_reverse_charge": False,
            "amount": {"currency": "EUR", "net": Decimal("1000.10"), "tax": 190},
            "booking_account_number": 3200,
        },
        resource_type="CONTRACT",
        relationships={
            "contract_unit": _relation("CONTRACT_UNIT", ids["contract_unit"]),
            "contracting_entity": _relation("CONTRACTING_ENTITY", ids["contracting_entity"]),
            "contractor": _relation("CONTRACTOR", ids["contractor"]),
        },
    )
    hook.update(
        "contracts",
        created["id"],
        {"amount": {"currency": "EUR", "net": "2000", "tax": Decimal("380.00")}},
        resource_type="CONTRACT",
    )
    hook.update_contract_status(ids["contract"], "PARTIAL_COMPLETED")
    hook.register_payment(ids["approved"], amount_gross=Decimal("1190.10"), payment_date="2026-11-19")
    hook.submit_invoice(ids["project"], _pdf("RE 77"), external_identifier="RE-77")
    hook.close()

    matchers = _templates(spec)
    written = set()
    for method, path, body in sent:
        template = next(
            t for t, pattern in matchers if pattern.match(path) and method.lower() in spec["paths"][t]
        )
        written.add((method, template))
        assert request_problems(method, template, body) == [], (method, template, body)
    assert written == {
        ("POST", "/contracts/"),
        ("PATCH", "/contracts/{id}/"),
        ("POST", "/invoices/{id}/register-payment/"),
        ("POST", "/invoices/{id}/update-new/"),
    }
    amounts = [
        body["data"]["attributes"]["amount"]
        for _, path, body in sent
        if "amount" in body["data"]["attributes"]
    ]
    assert amounts == [
        {"currency": "EUR", "net": "1000.10", "tax": "190"},
        {"currency": "EUR", "net": "2000", "tax": "380.00"},
    ]
    (payment,) = [body for _, path, body in sent if path.endswith("register-payment/")]
    assert payment["data"]["attributes"]["payment_amount_gross"] == "1190.10"


def test_the_check_is_live_money_as_numbers_fails_it(request_problems):
    body = {
        "data": {
            "type": "CONTRACT",
            "attributes": {"name": "x", "is_reverse_charge": False, "amount": {"net": 1000, "tax": 190}},
            "relationships": {
                "contract_unit": _relation("CONTRACT_UNIT", "1aae03bc-96d8-47b6-9a8b-07f190400e62"),
                "contracting_entity": _relation("CONTRACTING_ENTITY", "1aae03bc-96d8-47b6-9a8b-07f190400e62"),
            },
        }
    }
    (problem,) = request_problems("POST", "/contracts/", body)
    assert problem.startswith("data/attributes/amount")


@pytest.mark.parametrize("amount", [1000.1, "12,50", "a lot"])
def test_money_that_cannot_be_sent_exactly_is_refused_before_sending(
    alasco_connection, sandbox_clean, amount
):
    hook = AlascoHook(alasco_connection, once_state=MemoryState())

    with pytest.raises(ValidationError, match=r"amount\.net") as caught:
        hook.update(
            "contracts",
            "1aae03bc-96d8-47b6-9a8b-07f190400e62",
            {"amount": {"currency": "EUR", "net": amount, "tax": "0"}},
            resource_type="CONTRACT",
        )
    assert "Alasco" in str(caught.value) and "update contracts" in str(caught.value)
    assert sandbox_clean.stats["alasco"]["requests"] == 0


# --------------------------------------------------------------------------------------------------
# What the emulator accepts and refuses
# --------------------------------------------------------------------------------------------------
def _writes(ids: dict[str, str]) -> list[tuple[str, str, str, dict[str, Any], int]]:
    """(method, template, url, a body the spec accepts, the spec's success status) per JSON write."""
    contract, invoice = ids["contract"], ids["approved"]
    return [
        (
            "POST",
            "/contracts/",
            "/contracts/",
            {
                "data": {
                    "type": "CONTRACT",
                    "attributes": {
                        "name": "Fassade",
                        "is_reverse_charge": True,
                        "contract_number": "V-2026-17",
                        "amount": {"currency": "EUR", "net": "123.123456789012", "tax": "0"},
                    },
                    "relationships": {
                        "contract_unit": _relation("CONTRACT_UNIT", ids["contract_unit"]),
                        "contracting_entity": _relation("CONTRACTING_ENTITY", ids["contracting_entity"]),
                    },
                }
            },
            200,
        ),
        (
            "PATCH",
            "/contracts/{id}/",
            f"/contracts/{contract}/",
            {
                "data": {
                    "id": contract,
                    "type": "CONTRACT",
                    "attributes": {
                        "description": "Nachtrag",
                        "contract_number": None,
                        "amount": {"net": "10.5", "tax": "2"},
                    },
                }
            },
            200,
        ),
        (
            "POST",
            "/invoices/{id}/register-payment/",
            f"/invoices/{invoice}/register-payment/",
            {
                "data": {
                    "type": "PAYMENT_DETAILS",
                    "attributes": {
                        "payment_amount_gross": 1190.5,  # the spec takes a number as well as a string
                        "payment_date": "2026-11-19",
                        "payment_comment": "",
                    },
                }
            },
            201,
        ),
    ]


def test_every_json_write_accepts_what_the_spec_accepts(
    api, sandbox_clean, spec, request_problems, schema_problems
):
    ids = _ids(sandbox_clean)
    for method, template, url, body, status in _writes(ids):
        assert request_problems(method, template, body) == [], template  # the example conforms

        response = api.request(method, url, json=body)

        assert response.status_code == status, (template, response.text)
        answer = spec["paths"][template][method.lower()]["responses"][str(status)]
        assert schema_problems(answer["content"]["application/json"]["schema"]["$ref"], response.json()) == []

    submitted = api.post(
        f"/projects/{ids['project']}/submit-invoice/",
        files={"file": ("RE.pdf", _pdf("RE"), "application/pdf")},
    ).json()["data"]["id"]
    for attributes in (
        None,
        {"external_identifier": "RE-1", "unaudited_amount": {"net": "1", "tax": "0.19"}},
    ):
        body = {"data": {"id": submitted, "attributes": attributes}}
        assert request_problems("POST", "/invoices/{id}/update-new/", body) == []
        response = api.post(f"/invoices/{submitted}/update-new/", json=body)
        assert response.status_code == 200, response.text
    assert api.get(f"/invoices/{submitted}/").json()["data"]["attributes"]["external_identifier"] == "RE-1"


@pytest.mark.parametrize(
    ("template", "spoil"),
    [
        ("/contracts/", lambda body: body["data"]["attributes"]["amount"].update(net=123.5)),
        ("/contracts/", lambda body: body["data"]["relationships"].pop("contract_unit")),
        ("/contracts/{id}/", lambda body: body["data"]["attributes"].update(status="CANCELLED")),
        ("/contracts/{id}/", lambda body: body["data"].pop("id")),
        ("/invoices/{id}/register-payment/", lambda body: body["data"]["attributes"].pop("payment_comment")),
        (
            "/invoices/{id}/register-payment/",
            lambda body: body["data"]["attributes"].update(payment_date="19.11.2026"),
        ),
    ],
    ids=["money-as-number", "no-contract-unit", "unknown-status", "no-id", "no-comment", "german-date"],
)
def test_every_json_write_refuses_what_the_spec_refuses(
    api, sandbox_clean, request_problems, schema_problems, spec, template, spoil
):
    ids = _ids(sandbox_clean)
    method, _, url, body, _status = next(write for write in _writes(ids) if write[1] == template)
    spoil(body)
    assert request_problems(method, template, body), "the spoilt body must break the spec"

    response = api.request(method, url, json=body)

    assert response.status_code == 422, response.text
    detail = response.json()
    assert detail["detail"] and detail["detail"][0]["loc"][0] == "body"
    refusal = spec["paths"][template][method.lower()]["responses"]["422"]["content"]["application/json"]
    assert schema_problems(refusal["schema"]["$ref"], detail) == []


def test_the_hooks_multipart_writes_send_the_spec_form_fields(
    alasco_connection, sandbox_clean, spec, monkeypatch
):
    """Uploads and the invoice submission are ``multipart/form-data``: the hook sends exactly the
    form fields the spec's ``Body_…`` schemas name, with a document type from the spec's enum."""
    hook = AlascoHook(alasco_connection, once_state=MemoryState())
    sent: dict[str, dict[str, Any]] = {}
    original = hook._request

    def recording(method: str, url: str, **kwargs: Any) -> Any:
        if "files" in kwargs:
            sent[url.split("/fincon/v1", 1)[1]] = {**kwargs.get("data", {}), **kwargs["files"]}
        return original(method, url, **kwargs)

    monkeypatch.setattr(hook, "_request", recording)
    emulator = sandbox_clean.alasco
    targets = {
        "/invoices/{invoice_id}/documents/": (
            "invoices",
            emulator.resources("invoices", 0, 1)[0]["id"],
            "ATTACHMENT",
        ),
        "/contracts/{contract_id}/documents/": (
            "contracts",
            emulator.resources("contracts", 0, 1)[0]["id"],
            "CONTRACT",
        ),
        "/change_orders/{change_order_id}/documents/": (
            "change_orders",
            emulator.resources("change_orders", 0, 1)[0]["id"],
            "CHANGE_ORDER_OFFER",
        ),
    }
    for parent, rid, kind in targets.values():
        hook.upload_document(parent, rid, _pdf("Anlage"), document_type=kind)
    project = emulator.resources("projects", 0, 1)[0]["id"]
    hook.submit_invoice(project, _pdf("RE 88"))
    hook.close()

    forms = {template: (parent, rid) for template, (parent, rid, _kind) in targets.items()}
    forms["/projects/{id}/submit-invoice/"] = ("projects", project)
    for template, (parent, rid) in forms.items():
        suffix = "submit-invoice/" if parent == "projects" else "documents/"
        fields = sent[f"/{parent}/{rid}/{suffix}"]
        ref = spec["paths"][template]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"][
            "$ref"
        ]
        body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(fields) == set(body["properties"]) == set(body["required"]), template
        if "document_type" in fields:
            kinds = spec["components"]["schemas"][
                body["properties"]["document_type"]["$ref"].rsplit("/", 1)[1]
            ]
            assert fields["document_type"] in kinds["enum"], template
