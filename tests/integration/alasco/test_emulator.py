"""The Alasco emulator on its own: deterministic data at any scale, ids, the JSON:API wire format,
paging, filters, redirects, errors, uploads and the document storage. Plain HTTP, no hook."""

from __future__ import annotations

import tracemalloc
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.alasco import (
    DATASETS,
    AlascoEmulator,
    IdCodec,
    Stamps,
    _pdf,
    decode_cursor,
    encode_cursor,
    parse_instant,
    parse_multipart,
)


@pytest.fixture
def api(sandbox_clean: Any) -> Any:
    """An httpx client for the emulator's FinCon base URL with the valid credentials."""
    emulator = sandbox_clean.alasco
    with httpx.Client(
        base_url=sandbox_clean.alasco_url + "/fincon/v1",
        headers={"X-API-KEY": emulator.api_key, "X-API-TOKEN": emulator.api_token},
    ) as client:
        yield client


def q(**filters: str) -> str:
    return "&".join(f"{quote(f'filter[{key}]', safe='')}={value}" for key, value in filters.items())


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_objects_and_another_seed_others():
    one, same, other = AlascoEmulator(seed=7), AlascoEmulator(seed=7), AlascoEmulator(seed=8)

    for name in ("projects", "contracts", "invoices", "reporting/projects"):
        assert one.resources(name, 0, 20) == same.resources(name, 0, 20)
        assert one.resources(name, 0, 5) != other.resources(name, 0, 5)


def test_ids_are_uuids_that_encode_their_row_and_their_dataset():
    codec, other = IdCodec(123456789), IdCodec(987654321)

    for i in (0, 1, 99, 10**6, 2**47):
        text = codec.id(i)
        assert uuid.UUID(text).version == 4
        assert codec.index(text) == i
        assert other.index(text) is None
    assert codec.index("not a uuid") is None
    assert len({codec.id(i)[:8] for i in range(1000)}) > 990  # they look random


def test_creation_times_never_decrease_so_ranges_are_binary_searches():
    stamps = Stamps(parse_instant_dt("2025-01-01"), parse_instant_dt("2026-11-20"), 5000, key=42)

    values = [stamps(i) for i in range(5000)]

    assert values == sorted(values) and len(set(values)) == 5000


def parse_instant_dt(text: str) -> Any:
    from datetime import datetime, timezone

    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_a_million_invoices_cost_no_memory_and_any_page_is_cheap():
    tracemalloc.start()
    with Sandbox(seed=3, scale={"alasco:invoices": 1_000_000, "alasco:contracts": 50_000}) as sandbox:
        emulator = sandbox.alasco
        headers = {"X-API-KEY": emulator.api_key, "X-API-TOKEN": emulator.api_token}
        base = sandbox.alasco_url + "/fincon/v1"
        window = q(**{"date_created.range": "2026-06-01T00:00:00Z,2026-06-02T00:00:00Z"})
        first = httpx.get(f"{base}/invoices/?{window}", headers=headers).json()
        last_id = emulator.world.id("invoices", 999_999)
        last = httpx.get(f"{base}/invoices/{last_id}/", headers=headers).json()
        _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert emulator.row_count("invoices") == 1_000_000
    assert len(first["data"]) == 100 and first["links"]["next"]
    assert all(item["attributes"]["date_created"].startswith("2026-06-01") for item in first["data"])
    assert last["data"]["id"] == last_id
    assert peak < 30 * 1024 * 1024


def test_unknown_or_unscalable_datasets_are_refused():
    with pytest.raises(ValueError, match="no scalable dataset"):
        Sandbox(scale={"alasco:cost_elements": 10})
    with pytest.raises(ValueError, match="no scalable dataset"):
        Sandbox(scale={"alasco:widgets": 10})


def test_invoices_move_through_their_states_along_the_timeline(sandbox_clean):
    invoices = sandbox_clean.alasco.resources("invoices")
    states = [item["attributes"]["invoice_process_state"] for item in invoices]

    assert {"NEW", "CHECKED", "APPROVED", "PAID"} <= set(states)
    assert states[0] == "PAID" and states[-1] in ("NEW", "DETAILS_ENTERED")
    for item in invoices:
        attributes = item["attributes"]
        if attributes["invoice_process_state"] == "PAID":
            gross = Decimal(attributes["payment_amount_gross"]["amount"])
            approved = attributes["discounted_approved_amount"]
            assert gross == Decimal(approved["net"]) + Decimal(approved["tax"])
        if attributes["is_reverse_charge"] and attributes["unaudited_amount"]:
            assert Decimal(attributes["unaudited_amount"]["tax"]) == 0


# --------------------------------------------------------------------------------------------------
# The wire format
# --------------------------------------------------------------------------------------------------
def test_a_list_is_a_jsonapi_document_with_money_as_twelve_decimal_strings(api):
    body = api.get("/contracts/").json()

    assert set(body) == {"data", "included", "links", "errors"}
    contract = body["data"][0]
    assert set(contract) == {"id", "type", "attributes", "relationships"}
    assert contract["type"] == "CONTRACT"
    assert contract["relationships"]["contract_unit"]["data"] == {
        "id": contract["attributes"]["contract_unit"],
        "type": "CONTRACT_UNIT",
    }
    assert contract["relationships"]["invoices"]["links"]["related"].endswith(
        f"/contracts/{contract['id']}/invoices/"
    )
    net = contract["attributes"]["amount"]["net"]
    assert isinstance(net, str) and len(net.split(".")[1]) == 12
    assert contract["attributes"]["date_created"].endswith("Z")


def test_budget_shifts_link_their_relations_as_the_spec_shows(api):
    shift = api.get("/budget_shifts/").json()["data"][0]

    related = shift["relationships"]["project"]["links"]["related"]
    assert related.endswith(f"/projects/{shift['attributes']['project']}/")


def test_pages_follow_a_cursor_bound_to_its_query(api, sandbox_clean):
    seen: list[str] = []
    url = "/invoices/?" + q(**{"invoice_process_state.in": "PAID,APPROVED"})
    while url:
        body = api.get(url).json()
        seen += [item["id"] for item in body["data"]]
        url = body["links"]["next"]
        if url:
            assert "filter%5Binvoice_process_state.in%5D=PAID,APPROVED" in url
            assert url.startswith("http://127.0.0.1:")

    expected = [
        item["id"]
        for item in sandbox_clean.alasco.resources("invoices")
        if item["attributes"]["invoice_process_state"] in ("PAID", "APPROVED")
    ]
    assert seen == expected


def test_a_foreign_or_broken_cursor_is_a_400(api):
    cursor = encode_cursor(100, "0" * 16)

    assert api.get(f"/invoices/?cursor%5Bposition%5D={cursor}").status_code == 400
    assert api.get("/invoices/?cursor%5Bposition%5D=%%%").status_code == 400
    with pytest.raises(Exception, match="400"):
        decode_cursor(cursor, "1" * 16)


def test_the_last_page_has_no_next_link(api):
    body = api.get("/projects/").json()

    assert len(body["data"]) == 18 and body["links"]["next"] is None


def read_all(api: Any, url: str) -> list[dict[str, Any]]:
    body = api.get(url).json()
    rows: list[dict[str, Any]] = body["data"]
    while body["links"]["next"]:
        body = api.get(body["links"]["next"]).json()
        rows += body["data"]
    return rows


@pytest.mark.parametrize(
    ("query", "check"),
    [
        (q(**{"name.contains": "rohbau"}), lambda a: "rohbau" in a["name"].lower()),
        (
            q(**{"status.not_in": "DRAFT,ORDERED"}),
            lambda a: a["status"] in ("PARTIAL_COMPLETED", "COMPLETED"),
        ),
        (q(**{"is_reverse_charge.is": "true"}), lambda a: a["is_reverse_charge"] is True),
        (q(**{"date_contract.is": "null"}), lambda a: a["date_contract"] is None),
        (
            q(**{"date_created.range": "2025-03-01T00:00:00Z,2025-03-31T23:59:59Z"}),
            lambda a: a["date_created"].startswith("2025-03"),
        ),
    ],
)
def test_filters_select_what_they_say(api, sandbox_clean, query, check):
    rows = read_all(api, f"/contracts/?{query}")

    assert rows and all(check(item["attributes"]) for item in rows)
    everything = sandbox_clean.alasco.resources("contracts")
    assert len(rows) == sum(1 for item in everything if check(item["attributes"]))


def test_the_project_filter_follows_the_contract_unit(api, sandbox_clean):
    emulator = sandbox_clean.alasco
    project = emulator.resources("projects", 2, 3)[0]["id"]
    units = {u["id"] for u in emulator.resources("contract_units") if u["attributes"]["project"] == project}

    contracts = read_all(api, "/contracts/?" + q(**{"project.in": project}))
    contractors = read_all(api, "/contractors/?" + q(**{"project.in": project}))

    assert contracts and {c["attributes"]["contract_unit"] for c in contracts} <= units
    assert {c["attributes"]["contractor"] for c in contracts} - {None} == {c["id"] for c in contractors}


def test_money_filters_take_net_or_tax(api):
    body = api.get("/invoices/?" + q(**{"unaudited_amount.net.greater_than_equal": "240000.00"})).json()

    assert body["data"] and all(
        Decimal(i["attributes"]["unaudited_amount"]["net"]) >= 240000 for i in body["data"]
    )


@pytest.mark.parametrize(
    ("query", "status", "where"),
    [
        (q(**{"colour.exact": "x"}), 422, "filter[colour.exact]"),
        (q(**{"status.contains": "x"}), 422, "filter[status.contains]"),
        (q(**{"date_created.greater_than_equal": "gestern"}), 422, "filter[date_created.greater_than_equal]"),
        (q(**{"date_created.range": "2026-01-01"}), 422, "filter[date_created.range]"),
        (q(**{"contractor.in": "not-a-uuid"}), 422, "filter[contractor.in]"),
        ("include=invoices", 422, "include"),
    ],
)
def test_invalid_queries_get_fastapis_422(api, query, status, where):
    response = api.get(f"/contracts/?{query}")

    assert response.status_code == status
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["query", where]
    assert detail["msg"] and detail["type"]
    assert response.headers["x-request-id"]


def test_a_filter_without_an_operation_is_a_400_with_jsonapi_errors(api):
    response = api.get("/contracts/?filter%5Bproperty%5D=x")

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["status"] == "400" and "filter[property]" in error["detail"]


def test_include_adds_each_related_object_once(api):
    body = api.get("/invoices/?include=contract.contract_unit.project.property").json()

    kinds = [item["type"] for item in body["included"]]
    assert set(kinds) == {"CONTRACT", "CONTRACT_UNIT", "PROJECT", "PROPERTY"}
    assert len({(item["type"], item["id"]) for item in body["included"]}) == len(kinds)


def test_paths_without_their_slash_are_redirected_with_307(api):
    plain = api.get("/invoices?include=contract")
    element = api.get("/cost_elements/").json()["data"][0]["id"]
    with_slash = api.get(f"/cost_elements/{element}/")

    assert plain.status_code == 307
    assert plain.headers["location"].endswith("/alasco/fincon/v1/invoices/?include=contract")
    assert with_slash.status_code == 307
    assert with_slash.headers["location"].endswith(f"/cost_elements/{element}")
    assert api.get(f"/cost_elements/{element}").status_code == 200


def test_unknown_paths_ids_and_methods(api):
    assert api.get("/widgets/").json() == {"detail": "Not Found"}
    assert api.delete("/contracts/").status_code == 405
    missing = api.get("/invoices/00000000-0000-4000-8000-000000000000/")
    assert missing.status_code == 404 and missing.json()["errors"][0]["status"] == "404"
    bad = api.get("/invoices/not-a-uuid/")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "id"]


def test_paths_match_case_sensitively(api):
    # Starlette routing (the FastAPI bodies the API answers with) compares paths as sent.
    assert api.get("/Contracts/").json() == {"detail": "Not Found"}
    assert api.get("/CONTRACTS/").status_code == 404
    assert api.get("/contracts/").status_code == 200


def test_credentials_are_checked_and_may_be_rotated(sandbox_clean, api):
    emulator = sandbox_clean.alasco
    base = sandbox_clean.alasco_url + "/fincon/v1/projects/"

    assert httpx.get(base).status_code == 401
    assert (
        httpx.get(base, headers={"X-API-KEY": emulator.api_key, "X-API-TOKEN": "x" * 64}).status_code == 401
    )
    old = (emulator.api_key, emulator.api_token)
    key, token = emulator.mint_credentials(replace=True)
    assert api.get("/projects/").status_code == 401  # the replaced token stopped working
    assert httpx.get(base, headers={"X-API-KEY": key, "X-API-TOKEN": token}).status_code == 200
    sandbox_clean.reset()
    assert (emulator.api_key, emulator.api_token) == old


def test_a_rate_limit_answers_429_with_retry_after(api, sandbox_clean):
    sandbox_clean.alasco.rate_limit = (2, 60.0)

    statuses = [api.get("/projects/").status_code for _ in range(3)]
    response = api.get("/projects/")

    assert statuses == [200, 200, 429]
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["errors"][0]["title"] == "Too Many Requests"


def test_large_answers_are_gzipped_when_asked(sandbox_clean, api):
    raw = httpx.get(
        sandbox_clean.alasco_url + "/fincon/v1/contracts/",
        headers={**api.headers, "Accept-Encoding": "gzip"},
    )

    assert raw.headers["content-encoding"] == "gzip"
    assert len(raw.json()["data"]) == 100


# --------------------------------------------------------------------------------------------------
# Writes, uploads and the document storage
# --------------------------------------------------------------------------------------------------
def _patch(api: Any, contract: dict[str, Any], attributes: dict[str, Any], **relationships: Any) -> Any:
    data: dict[str, Any] = {"id": contract["id"], "type": "CONTRACT", "attributes": attributes}
    if relationships:
        data["relationships"] = relationships
    return api.patch(f"/contracts/{contract['id']}/", json={"data": data})


def _contract(sandbox: Any, **wanted: Any) -> dict[str, Any]:
    return next(
        c
        for c in sandbox.alasco.resources("contracts")
        if all(c["attributes"][key] == value for key, value in wanted.items())
    )


def test_a_patch_changes_only_what_it_names_and_keeps_the_status(api, sandbox_clean):
    contract = _contract(sandbox_clean, status="COMPLETED", contract_type="STANDARD")

    response = _patch(api, contract, {"cost_center": "KST-9"})

    after = response.json()["data"]["attributes"]
    assert response.status_code == 200
    assert after["cost_center"] == "KST-9"
    assert {k: v for k, v in after.items() if k != "cost_center"} == {
        k: v for k, v in contract["attributes"].items() if k != "cost_center"
    }


def test_a_contract_without_contractor_cannot_leave_draft(api, sandbox_clean):
    # UpdateContractAttributes.status: "a contractor must be set before the status can be
    # anything other than DRAFT".
    contract = _contract(sandbox_clean, status="DRAFT", contractor=None, contract_type="STANDARD")
    contractor = sandbox_clean.alasco.resources("contractors", 0, 1)[0]["id"]

    refused = _patch(api, contract, {"status": "ORDERED"})
    accepted = _patch(
        api, contract, {"status": "ORDERED"}, contractor={"data": {"id": contractor, "type": "CONTRACTOR"}}
    )

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "data", "attributes", "status"]
    assert accepted.status_code == 200
    assert accepted.json()["data"]["attributes"]["status"] == "ORDERED"
    assert accepted.json()["data"]["attributes"]["contractor"] == contractor


def test_a_multipart_contract_cannot_change_status_via_the_api(api, sandbox_clean):
    contract = _contract(sandbox_clean, status="ORDERED", contract_type="MULTIPART")

    refused = _patch(api, contract, {"status": "COMPLETED"})
    renamed = _patch(api, contract, {"name": "Neu", "status": "ORDERED"})

    assert refused.status_code == 422 and "Multipart" in refused.json()["detail"][0]["msg"]
    assert renamed.status_code == 200 and renamed.json()["data"]["attributes"]["status"] == "ORDERED"


@pytest.mark.parametrize(
    ("attributes", "loc"),
    [
        ({"status": "CLOSED"}, ["body", "data", "attributes", "status"]),
        (
            {"amount": {"currency": "EUR", "net": 1000, "tax": "0"}},
            ["body", "data", "attributes", "amount", "net"],
        ),
        ({"name": "x" * 251}, ["body", "data", "attributes", "name"]),
        ({"booking_account_number": "3000"}, ["body", "data", "attributes", "booking_account_number"]),
        ({"date_contract": "19.05.2024"}, ["body", "data", "attributes", "date_contract"]),
    ],
)
def test_patch_bodies_are_checked_against_the_specs_request_schema(api, sandbox_clean, attributes, loc):
    contract = _contract(sandbox_clean, contract_type="STANDARD", status="ORDERED")

    response = _patch(api, contract, attributes)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_post_contracts_creates_a_draft_contract_as_the_spec_describes(api, sandbox_clean):
    unit = sandbox_clean.alasco.resources("contract_units", 0, 1)[0]["id"]
    entity = sandbox_clean.alasco.resources("contracting_entities", 0, 1)[0]["id"]
    body = {
        "data": {
            "type": "CONTRACT",
            "attributes": {
                "name": "Rohbau",
                "is_reverse_charge": False,
                "amount": {"currency": "EUR", "net": "1000.00", "tax": "190.00"},
                "contract_number": "23-51112-V3-001",
                "date_contract": "2024-05-19",
            },
            "relationships": {
                "contract_unit": {"data": {"id": unit, "type": "CONTRACT_UNIT"}},
                "contracting_entity": {"data": {"id": entity, "type": "CONTRACTING_ENTITY"}},
            },
        }
    }
    before = len(api.get("/contracts/", params={"filter[contract_unit.in]": unit}).json()["data"])

    created = api.post("/contracts/", json=body)
    as_number = api.post(
        "/contracts/",
        json={
            "data": {**body["data"], "attributes": {**body["data"]["attributes"], "amount": {"net": 1000}}}
        },
    )
    missing = api.post("/contracts/", json={"data": {"type": "CONTRACT", "attributes": {"name": "x"}}})

    assert created.status_code == 200  # the spec's only success answer for this operation
    data = created.json()["data"]
    assert data["type"] == "CONTRACT" and data["attributes"]["status"] == "DRAFT"
    assert data["attributes"]["amount"]["net"] == "1000.000000000000"
    assert api.get(f"/contracts/{data['id']}/").json()["data"] == data
    after = api.get("/contracts/", params={"filter[contract_unit.in]": unit}).json()["data"]
    assert len(after) == before + 1
    assert as_number.status_code == 422
    assert {tuple(d["loc"]) for d in missing.json()["detail"]} >= {
        ("body", "data", "attributes", "is_reverse_charge"),
        ("body", "data", "relationships"),
    }


def test_register_payment_validates_its_body_like_fastapi(api, sandbox_clean):
    invoice = next(
        i
        for i in sandbox_clean.alasco.resources("invoices")
        if i["attributes"]["invoice_process_state"] == "APPROVED"
    )

    missing = api.post(
        f"/invoices/{invoice['id']}/register-payment/",
        json={
            "data": {
                "type": "PAYMENT_DETAILS",
                "attributes": {"payment_date": "2026-11-19", "payment_comment": ""},
            }
        },
    )

    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "data", "attributes", "payment_amount_gross"]


def test_multipart_bodies_are_parsed_byte_for_byte():
    pdf = _pdf("x") + b"\r\n--not-the-boundary\r\n\x00\xff"
    request = httpx.Request(
        "POST",
        "http://x/",
        data={"document_type": "INVOICE"},
        files={"upload": ("a b.pdf", pdf, "application/pdf")},
    )
    body = request.read()

    parts = parse_multipart(request.headers["content-type"], body)

    assert parts["upload"].data == pdf and parts["upload"].filename == "a b.pdf"
    assert parts["document_type"].data == b"INVOICE"
    with pytest.raises(ValueError):
        parse_multipart("application/json", body)


def test_a_non_pdf_upload_is_refused(api, sandbox_clean):
    project = sandbox_clean.alasco.resources("projects", 0, 1)[0]

    response = api.post(
        f"/projects/{project['id']}/submit-invoice/", files={"file": ("x.pdf", b"GIF89a", "application/pdf")}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_download_links_are_signed_expire_and_ignore_the_api_headers(api, sandbox_clean, monkeypatch):
    emulator = sandbox_clean.alasco
    invoice = emulator.resources("invoices", 5, 6)[0]
    document = api.get(f"/invoices/{invoice['id']}/documents/").json()["data"][0]
    link = api.get(document["links"]["download"]).headers["location"]

    assert httpx.get(link).status_code == 200
    assert httpx.get(link.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
    # presigned storage ignores headers it does not sign, and refuses a second auth mechanism
    assert httpx.get(link, headers={"X-API-KEY": emulator.api_key}).status_code == 200
    assert httpx.get(link, headers={"Authorization": "Bearer x"}).status_code == 400
    later = emulator.now_micros() + 301 * 1_000_000
    monkeypatch.setattr(emulator, "now_micros", lambda: later)
    expired = httpx.get(link)
    assert expired.status_code == 403 and b"Request has expired" in expired.content


def test_reset_forgets_writes_but_never_generated_data(api, sandbox_clean):
    emulator = sandbox_clean.alasco
    before = emulator.resources("contracts", 0, 3)
    contract = before[0]
    api.patch(
        f"/contracts/{contract['id']}/",
        json={"data": {"id": contract["id"], "attributes": {"status": "COMPLETED"}}},
    )
    project = emulator.resources("projects", 0, 1)[0]
    api.post(
        f"/projects/{project['id']}/submit-invoice/", files={"file": ("x.pdf", _pdf("x"), "application/pdf")}
    )
    assert emulator.contract_updates and emulator.submissions

    sandbox_clean.reset()

    assert emulator.resources("contracts", 0, 3) == before
    assert emulator.contract_updates == [] and emulator.submissions == []
    assert (
        len(
            api.get("/invoices/?" + q(**{"date_created.greater_than_equal": "2026-11-20T00:00:00Z"})).json()[
                "data"
            ]
        )
        == 0
    )


def test_every_dataset_has_a_list_route(api):
    for name, cls in DATASETS.items():
        response = api.get(f"/{cls.path}/")
        assert response.status_code == 200, name
        assert response.json()["data"], name


def test_instants_are_read_with_or_without_a_zone():
    assert (
        parse_instant("2026-11-19")
        == parse_instant("2026-11-19T00:00:00Z")
        == parse_instant("2026-11-19T01:00:00+01:00")
    )
    assert parse_instant("gestern") is None


# --------------------------------------------------------------------------------------------------
# Both bases: the spec's /fincon/v1 and the SDKs' /v1; encoded commas
# --------------------------------------------------------------------------------------------------
def test_the_sdks_base_v1_serves_the_same_objects_and_links_keep_that_base(sandbox_clean, api):
    emulator = sandbox_clean.alasco
    headers = {"X-API-KEY": emulator.api_key, "X-API-TOKEN": emulator.api_token}
    with httpx.Client(base_url=sandbox_clean.alasco_url + "/v1", headers=headers) as sdk:
        via_sdk = sdk.get("/contracts/").json()
        redirect = sdk.get("/contracts")
        second = sdk.get(via_sdk["links"]["next"]).json()
    via_spec = api.get("/contracts/").json()

    assert [item["id"] for item in via_sdk["data"]] == [item["id"] for item in via_spec["data"]]
    assert "/alasco/v1/contracts/?" in via_sdk["links"]["next"]
    assert "/alasco/fincon/v1/contracts/?" in via_spec["links"]["next"]
    assert redirect.status_code == 307 and redirect.headers["location"].endswith("/alasco/v1/contracts/")
    assert second["data"] and second["data"][0]["id"] not in {item["id"] for item in via_sdk["data"]}


def test_percent_encoded_commas_separate_filter_and_include_values_like_literal_ones(api):
    contracts = api.get("/contracts/").json()["data"]
    ids = [contracts[0]["id"], contracts[1]["id"]]
    literal = api.get(f"/contracts/?{q(**{'id.in': ','.join(ids)})}&include=contractor,contract_unit").json()
    encoded = api.get(
        f"/contracts/?{q(**{'id.in': '%2C'.join(ids)})}&include=contractor%2Ccontract_unit"
    ).json()
    # httpx itself encodes the comma in params
    by_params = api.get(
        "/contracts/", params={"filter[id.in]": ",".join(ids), "include": "contractor,contract_unit"}
    )

    assert "%2C" in str(by_params.request.url)
    assert sorted(item["id"] for item in literal["data"]) == sorted(ids)
    assert encoded == literal == by_params.json()
    assert {item["type"] for item in literal["included"]} >= {"CONTRACT_UNIT"}
