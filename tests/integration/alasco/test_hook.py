"""``AlascoHook`` against the Alasco emulator over real localhost HTTP: the connection, paging by
``links.next``, filters and includes, redirects, money, failures and faults, documents, and the
three writes that must be safe to rerun."""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import RetryPolicy
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.hooks.alasco import AlascoHook, flatten_resource
from airflow_provider_ledgerlink.sandbox.alasco import _pdf, sandbox_alasco_api_key, sandbox_alasco_api_token
from airflow_provider_ledgerlink.sandbox.faults import reset_fault, status_fault, truncate_fault

FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, max_elapsed=30)
KEY, TOKEN = sandbox_alasco_api_key(42), sandbox_alasco_api_token(42)


@pytest.fixture
def hook(alasco_connection: str) -> Any:
    made = AlascoHook(alasco_connection, retry=FAST, once_state=MemoryState())
    yield made
    made.close()


@pytest.fixture
def api_as_clerk(sandbox_clean: Any) -> Any:
    """Alasco changed by someone else: a plain client with the account's key and token."""
    import httpx

    emulator = sandbox_clean.alasco
    with httpx.Client(
        base_url=sandbox_clean.alasco_url + "/fincon/v1",
        headers={"X-API-KEY": emulator.api_key, "X-API-TOKEN": emulator.api_token},
    ) as client:
        yield client


def set_connection(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALASCO_DEFAULT", json.dumps({"conn_type": "ledgerlink_alasco", **fields})
    )


def requests_to(sandbox: Any, fragment: str = "") -> int:
    paths = sandbox.stats["alasco"]["by_path"]
    return sum(sum(counts.values()) for path, counts in paths.items() if fragment in path)


# --------------------------------------------------------------------------------------------------
# The connection
# --------------------------------------------------------------------------------------------------
def test_test_connection_makes_one_cheap_call(hook, sandbox_clean):
    ok, message = hook.test_connection()

    assert ok, message
    assert "fincon" in message and "6 properties" in message
    assert sandbox_clean.stats["alasco"]["requests"] == 1


def test_the_api_extra_selects_the_base_path_and_the_host_is_optional(monkeypatch, sandbox_clean):
    set_connection(monkeypatch, login=KEY, password=TOKEN, extra={"api": "capex"})
    assert AlascoHook().base_url == "https://api.alasco.de/capex/v1"
    set_connection(monkeypatch, login=KEY, password=TOKEN, host="proxy.example.com/alasco/fincon/v1")
    assert AlascoHook().base_url == "https://proxy.example.com/alasco/fincon/v1"


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"password": TOKEN}, "API key is empty"),
        ({"login": KEY}, "API token is empty"),
        ({"login": KEY, "password": TOKEN[:10] + " " + TOKEN[10:]}, "spaces"),
        ({"login": KEY, "password": TOKEN, "extra": {"api": "crm"}}, "not one of fincon, capex, esg"),
        ({"login": KEY, "password": TOKEN, "host": "ftp://files.example.com"}, "not an http(s) URL"),
    ],
)
def test_a_malformed_connection_names_the_field_to_fix(monkeypatch, sandbox_clean, fields, what):
    set_connection(monkeypatch, **fields)
    hook = AlascoHook()

    with pytest.raises(ConfigurationError, match=re.escape(what)) as raised:
        hook.check_connection()

    assert "Edit the Airflow connection 'alasco_default'" in str(raised.value)
    assert TOKEN not in str(raised.value)
    ok, message = hook.test_connection()
    assert not ok and what in message


def test_wrong_credentials_fail_at_once_without_retries_and_without_the_secret(
    monkeypatch, sandbox_clean, caplog
):
    wrong = "f" * 64
    set_connection(monkeypatch, host=sandbox_clean.alasco_url, login=KEY, password=wrong)
    hook = AlascoHook(retry=FAST)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthenticationError) as raised:
        list(hook.get_all("invoices"))

    assert sandbox_clean.stats["alasco"]["requests"] == 1
    assert "Integrationen" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in caplog.text
    assert KEY not in str(raised.value) and KEY not in caplog.text
    ok, message = hook.test_connection()
    assert not ok and wrong not in message


def test_a_replaced_token_stops_working(hook, sandbox_clean):
    assert hook.test_connection()[0]
    sandbox_clean.alasco.mint_credentials(replace=True)

    with pytest.raises(AuthenticationError):
        hook.get("projects", sandbox_clean.alasco.resources("projects", 0, 1)[0]["id"])


def test_an_account_without_api_access_gets_a_permission_error(hook, sandbox_clean):
    sandbox_clean.alasco.access_enabled = False

    with pytest.raises(PermissionDeniedError, match="Pro with Public API access"):
        list(hook.get_all("projects"))


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
def test_every_object_is_read_once_by_following_links_next(hook, sandbox_clean):
    emulator = sandbox_clean.alasco

    ids = [item["id"] for item in hook.get_all("invoices")]

    assert len(ids) == len(set(ids)) == emulator.row_count("invoices") == 4000
    assert requests_to(sandbox_clean, "/invoices/") == 40  # 100 per page


def test_reporting_pages_hold_a_thousand(hook, sandbox_clean):
    pages = list(hook.get_pages("reporting/cost_elements"))

    assert [len(page.data) for page in pages] == [504]
    assert pages[0].next is None


def test_the_next_link_is_followed_exactly_with_its_filters(hook, sandbox_clean):
    filters = {
        "invoice_process_state.in": ["PAID"],
        "date_created.greater_than_equal": "2026-01-01T00:00:00Z",
    }

    pages = list(hook.get_pages("invoices", filters=filters))

    assert len(pages) > 1
    assert all("filter%5Binvoice_process_state.in%5D=PAID" in (page.next or "") for page in pages[:-1])
    states = {item["attributes"]["invoice_process_state"] for page in pages for item in page.data}
    assert states == {"PAID"}


def test_a_cursor_used_with_other_filters_is_refused(hook, sandbox_clean):
    first = next(hook.get_pages("invoices"))
    tampered = first.next.replace(
        "cursor%5Bposition%5D", "filter%5Binvoice_process_state.in%5D=PAID&cursor%5Bposition%5D"
    )

    with pytest.raises(ValidationError, match=r"follow links\.next exactly"):
        hook.get_document(tampered)


def test_a_next_link_to_another_host_is_not_followed(hook, sandbox_clean, monkeypatch):
    def foreign(document, current, operation):
        return AlascoHook._next_link(
            hook, {"links": {"next": "https://evil.example.net/fincon/v1/invoices/?c=1"}}, current, operation
        )

    monkeypatch.setattr(hook, "_next_link", foreign)

    with pytest.raises(VendorError, match="outside the API"):
        list(hook.get_pages("invoices"))


def test_long_in_lists_are_chunked_and_give_the_same_objects(hook, sandbox_clean):
    contracts = [item["id"] for item in hook.get_all("contracts")][:130]
    sandbox_clean.reset_stats()

    chunked = {item["id"] for item in hook.get_all("invoices", filters=[("contract", "in", contracts)])}

    by_contract = set(contracts)
    expected = {
        item["id"] for item in hook.get_all("invoices") if item["attributes"]["contract"] in by_contract
    }
    assert chunked == expected and chunked
    urls = [path for path in sandbox_clean.stats["alasco"]["by_path"] if "/invoices/" in path]
    assert urls  # at least three chains (50 + 50 + 30 ids), each with its own cursor
    assert requests_to(sandbox_clean, "/invoices/") >= 3


def test_includes_arrive_in_included(hook, sandbox_clean):
    page = next(hook.get_pages("invoices", include=["contract", "contract.contractor"]))

    types = {item["type"] for item in page.included}
    assert types == {"CONTRACT", "CONTRACTOR"}
    contracts = {item["id"] for item in page.included if item["type"] == "CONTRACT"}
    assert {item["attributes"]["contract"] for item in page.data} - {None} <= contracts


def test_lists_in_filters_and_includes_read_the_same_with_literal_or_encoded_commas(
    hook, sandbox_clean, api_as_clerk, monkeypatch
):
    """``filter[...]`` and ``include`` values are comma-separated; httpx and requests send the
    comma of a ``params=`` value as ``%2C``. Alasco reads both the same, and so must the emulator:
    the hook's request, the literal form and httpx's encoded form give the same page."""
    import httpx

    sent: list[str] = []
    original = hook._request

    def recording(method: str, url: str, **kwargs: Any) -> Any:
        sent.append(url)
        return original(method, url, **kwargs)

    monkeypatch.setattr(hook, "_request", recording)
    states, include = ["APPROVED", "PAID"], ["contract", "contract.contractor"]

    page = next(hook.get_pages("invoices", filters={"invoice_process_state.in": states}, include=include))
    params = {"filter[invoice_process_state.in]": "APPROVED,PAID", "include": "contract,contract.contractor"}
    encoded = api_as_clerk.get("/invoices/", params=params)
    literal = api_as_clerk.get(
        "/invoices/?filter%5Binvoice_process_state.in%5D=APPROVED,PAID&include=contract,contract.contractor"
    )

    assert "APPROVED%2CPAID" in str(encoded.request.url) and "contract%2Ccontract.contractor" in str(
        encoded.request.url
    )  # what httpx makes of a comma in params
    assert "=APPROVED,PAID" in sent[0] and "include=contract,contract.contractor" in sent[0]
    assert page.data and {i["attributes"]["invoice_process_state"] for i in page.data} <= set(states)
    for answer in (encoded, literal):
        assert answer.status_code == 200, answer.text
        assert [i["id"] for i in answer.json()["data"]] == [i["id"] for i in page.data]
        assert [i["id"] for i in answer.json()["included"]] == [i["id"] for i in page.included]
    # and the next link of each form holds the same query, so paging goes on alike
    assert httpx.URL(encoded.json()["links"]["next"]).params.get("include") == "contract,contract.contractor"


def test_a_comma_inside_a_single_value_stays_part_of_the_value(hook, sandbox_clean, monkeypatch):
    sent: list[str] = []
    original = hook._request
    monkeypatch.setattr(hook, "_request", lambda m, url, **kw: sent.append(url) or original(m, url, **kw))
    name = "Richter Garten- und Landschaftsbau GmbH & Co. KG"

    by_name = list(hook.get_all("contractors", filters={"name.exact": name}))
    with_comma = list(hook.get_all("contractors", filters={"name.contains": "GmbH & Co., KG"}))

    assert [c["attributes"]["name"] for c in by_name] == [name]
    assert with_comma == []  # one value "GmbH & Co., KG", not the two values "GmbH & Co." and " KG"
    assert "GmbH%20%26%20Co.%2C%20KG" in sent[1]
    with pytest.raises(ValidationError, match="contains a comma"):
        list(hook.get_all("contractors", filters={"name.in": ["a,b"]}))


def test_an_unknown_filter_is_a_clear_validation_error(hook, sandbox_clean):
    with pytest.raises(
        ValidationError, match=r"query\.filter\[colour\.exact\]: Filtering on 'colour' is not supported"
    ):
        list(hook.get_all("invoices", filters={"colour.exact": "blue"}))
    assert sandbox_clean.stats["alasco"]["requests"] == 1


def test_a_missing_trailing_slash_is_followed_through_the_307(hook, sandbox_clean):
    element = next(hook.get_all("cost_elements"))

    found = hook.get("cost_elements", element["id"])  # sent with a slash, redirected to none

    assert found["id"] == element["id"]
    by_path = sandbox_clean.stats["alasco"]["by_path"]
    assert by_path[f"GET /fincon/v1/cost_elements/{element['id']}/"] == {"307": 1}
    assert hook.get_document("/projects")["data"]  # and the other way round


def test_an_unknown_id_is_not_found(hook, sandbox_clean):
    with pytest.raises(NotFoundError):
        hook.get("invoices", "00000000-0000-4000-8000-000000000000")


def test_money_is_never_a_float(hook, sandbox_clean):
    invoice = next(hook.get_all("invoices", filters={"invoice_process_state.in": ["PAID"]}))
    change_order = next(
        item for item in hook.get_all("change_orders") if item["attributes"]["weighting_factor"] is not None
    )

    amount = invoice["attributes"]["unaudited_amount"]
    assert isinstance(amount["net"], str) and Decimal(amount["net"]).as_tuple().exponent == -12
    assert isinstance(change_order["attributes"]["weighting_factor"], Decimal)
    row = flatten_resource(invoice)
    assert row["unaudited_amount_net"] == amount["net"]


# --------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------
def test_transient_faults_change_nothing_in_what_is_read(hook, sandbox_clean, caplog):
    clean = [item["id"] for item in hook.get_all("contracts")]
    faults = sandbox_clean.faults
    faults.add(
        status_fault(
            502, "<html><body>Bad Gateway</body></html>", vendor="alasco", nth=[2], content_type="text/html"
        )
    )
    faults.add(
        status_fault(
            429, {"errors": [{"title": "Too Many Requests"}]}, vendor="alasco", nth=[4], retry_after=0
        )
    )
    faults.add(reset_fault(vendor="alasco", nth=[6]))
    faults.add(truncate_fault(vendor="alasco", nth=[8]))
    faults.add(status_fault(503, vendor="alasco", nth=[10]))
    caplog.set_level(logging.DEBUG)

    again = [item["id"] for item in hook.get_all("contracts")]

    assert again == clean
    assert hook.client.retries >= 5
    assert TOKEN not in caplog.text and KEY not in caplog.text


def test_a_persistent_server_error_gives_up_with_the_status(alasco_connection, sandbox_clean):
    hook = AlascoHook(
        alasco_connection, retry=RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    )
    sandbox_clean.faults.add(status_fault(500, {"detail": "Internal Server Error"}, vendor="alasco"))

    with pytest.raises(VendorError, match="Internal Server Error") as raised:
        list(hook.get_all("projects"))

    assert raised.value.http_status == 500
    assert sandbox_clean.stats["alasco"]["requests"] == 3


def test_a_rate_limit_with_retry_after_is_waited_out(hook, sandbox_clean):
    sandbox_clean.alasco.rate_limit = (3, 1.0)

    ids = [item["id"] for item in hook.get_all("contracts")]

    assert len(ids) == 900
    statuses = [status for counts in sandbox_clean.stats["alasco"]["by_path"].values() for status in counts]
    assert "429" in statuses


# --------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------
def test_a_download_follows_the_redirect_without_our_credentials(hook, sandbox_clean):
    invoice = next(hook.get_all("invoices"))
    (document,) = hook.list_documents("invoices", invoice["id"])

    pdf = hook.download_document("invoices", invoice["id"], document["id"])

    assert pdf.startswith(b"%PDF-") and invoice["attributes"]["internal_identifier"].encode() in pdf
    (fetch,) = sandbox_clean.alasco.downloads
    assert fetch["credentials_sent"] == [] and fetch["status"] == 200
    assert hook.download_document("invoices", invoice["id"], document["id"], annotated=True) == pdf


def test_the_storage_behind_the_redirect_never_sees_the_key_or_token(hook, sandbox_clean):
    """The storage ignores the API headers, as presigned storage does, so a leak there would go
    unnoticed by a refusal: the storage records every header it received, and none may hold the
    key or the token in any encoding."""
    from airflow_provider_ledgerlink.core.redaction import encoded_forms

    invoice = next(hook.get_all("invoices"))
    (document,) = hook.list_documents("invoices", invoice["id"])
    contract = next(hook.get_all("contracts"))
    uploaded = hook.upload_document("contracts", contract["id"], _pdf("LV"), document_type="CONTRACT")
    hook.download_document("invoices", invoice["id"], document["id"])
    hook.download_document("contracts", contract["id"], uploaded["id"])

    assert len(sandbox_clean.alasco.downloads) == 2
    forms = {form for secret in (KEY, TOKEN) for form in encoded_forms(secret) if len(form) >= 6}
    for fetch in sandbox_clean.alasco.downloads:
        received = json.dumps(fetch["headers"]) + fetch["path"]
        assert fetch["headers"] and not any(form in received for form in forms)
        assert {"x-api-key", "x-api-token", "authorization"}.isdisjoint(fetch["headers"])


def test_the_storage_ignores_the_api_headers_as_presigned_storage_does(sandbox_clean):
    import httpx

    emulator = sandbox_clean.alasco
    invoice = emulator.resources("invoices", 0, 1)[0]
    base = sandbox_clean.alasco_url + "/fincon/v1"
    headers = {"X-API-KEY": emulator.api_key, "X-API-TOKEN": emulator.api_token}
    documents = httpx.get(f"{base}/invoices/{invoice['id']}/documents/", headers=headers).json()["data"]
    naive = httpx.get(documents[0]["links"]["download"], headers=headers, follow_redirects=True)
    basic = httpx.get(naive.url, headers={"Authorization": "Basic eDp5"})

    assert naive.status_code == 200 and naive.content.startswith(b"%PDF-")
    assert emulator.downloads[-2]["credentials_sent"] == ["x-api-key", "x-api-token"]
    assert basic.status_code == 400 and b"InvalidArgument" in basic.content  # one auth mechanism


def test_an_uploaded_pdf_comes_back_byte_for_byte(hook, sandbox_clean):
    contract = next(hook.get_all("contracts"))
    pdf = _pdf("Auftrag", ["Leistungsverzeichnis"])

    created = hook.upload_document(
        "contracts", contract["id"], pdf, document_type="CONTRACT", filename="LV 1.pdf"
    )

    assert created["type"] == "CONTRACT_DOCUMENT"
    assert created["attributes"]["filename"] == "LV 1.pdf"
    assert hook.download_document("contracts", contract["id"], created["id"]) == pdf


def test_only_pdfs_are_uploaded(hook, sandbox_clean):
    with pytest.raises(ValidationError, match="not a PDF"):
        hook.upload_document("contracts", "1aae03bc-96d8-47b6-9a8b-07f190400e62", b"PK\x03\x04 a zip")
    assert sandbox_clean.stats["alasco"]["requests"] == 0


# --------------------------------------------------------------------------------------------------
# Writes, each safe to rerun
# --------------------------------------------------------------------------------------------------
def approved_invoice(hook: AlascoHook) -> dict[str, Any]:
    return next(hook.get_all("invoices", filters={"invoice_process_state.in": ["APPROVED"]}))


def test_a_payment_is_registered_once(hook, sandbox_clean):
    invoice = approved_invoice(hook)

    first = hook.register_payment(
        invoice["id"], amount_gross=Decimal("1190.10"), payment_date="2026-11-19", comment="SEPA 1"
    )
    second = hook.register_payment(
        invoice["id"], amount_gross="1190.10", payment_date="2026-11-19", comment="SEPA 1"
    )

    assert first["status"] == "registered"
    assert first["payment"]["payment_amount_gross"] == "1190.100000000000"
    assert second["status"] == "already_paid"
    assert len(sandbox_clean.alasco.payments) == 1
    assert hook.get("invoices", invoice["id"])["attributes"]["invoice_process_state"] == "PAID"


def test_a_payment_whose_answer_was_lost_is_found_on_the_check(hook, sandbox_clean):
    invoice = approved_invoice(hook)
    sandbox_clean.faults.add(
        reset_fault(vendor="alasco", method="POST", path="register-payment", when="after", times=1)
    )

    result = hook.register_payment(invoice["id"], amount_gross="10.00", payment_date="2026-11-19")

    assert result["status"] == "registered"
    assert len(sandbox_clean.alasco.payments) == 1  # not sent twice


def test_a_payment_lost_before_it_arrived_is_ambiguous_and_never_resent(hook, sandbox_clean):
    invoice = approved_invoice(hook)
    sandbox_clean.faults.add(
        reset_fault(vendor="alasco", method="POST", path="register-payment", when="before", times=1)
    )

    with pytest.raises(AmbiguousWriteError, match="may or may not have been applied") as caught:
        hook.register_payment(invoice["id"], amount_gross="10.00", payment_date="2026-11-19")
    assert f"open invoice {invoice['id']}" in str(caught.value)

    hook.once_wait = 0  # a rerun does not wait for the lost attempt's outcome
    with pytest.raises(AmbiguousWriteError, match="never learned"):  # nor send: even another amount
        hook.register_payment(invoice["id"], amount_gross="20.00", payment_date="2026-11-20")
    assert sandbox_clean.alasco.payments == []

    # a person found no payment in Alasco and allowed one new attempt, as the message says
    hook.once_state.set_json(_record_key(caught.value), {"state": "open", "round": 1})
    result = hook.register_payment(invoice["id"], amount_gross="10.00", payment_date="2026-11-19")
    assert result["status"] == "registered" and len(sandbox_clean.alasco.payments) == 1


def test_a_payment_answered_with_a_5xx_after_it_was_applied_counts_as_registered(hook, sandbox_clean):
    invoice = approved_invoice(hook)
    sandbox_clean.faults.add(
        status_fault(503, vendor="alasco", method="POST", path="register-payment", when="after", times=3)
    )

    result = hook.register_payment(invoice["id"], amount_gross="10.00", payment_date="2026-11-19")

    assert result["status"] == "registered" and result["payment"]["payment_date"] == "2026-11-19"
    assert len(sandbox_clean.alasco.payments) == 1


def test_a_payment_on_an_invoice_not_yet_approved_is_refused_before_sending(hook, sandbox_clean):
    invoice = next(hook.get_all("invoices", filters={"invoice_process_state.in": ["CHECKED"]}))

    with pytest.raises(ValidationError, match="state CHECKED"):
        hook.register_payment(invoice["id"], amount_gross="1.00", payment_date="2026-11-19")
    assert sandbox_clean.alasco.payments == []


@pytest.mark.parametrize(("amount", "day"), [(12.5, "2026-11-19"), ("12.50", "19.11.2026")])
def test_a_payment_with_an_inexact_amount_or_a_bad_date_is_refused(hook, sandbox_clean, amount, day):
    with pytest.raises(ValidationError):
        hook.register_payment("1aae03bc-96d8-47b6-9a8b-07f190400e62", amount_gross=amount, payment_date=day)
    assert sandbox_clean.stats["alasco"]["requests"] == 0


def test_a_contract_status_is_written_only_when_it_changes(hook, sandbox_clean):
    contract = next(hook.get_all("contracts", filters={"status.in": ["ORDERED"]}))

    first = hook.update_contract_status(contract["id"], "partial_completed")
    second = hook.update_contract_status(contract["id"], "PARTIAL_COMPLETED")

    assert first == {
        "contract_id": contract["id"],
        "status": "updated",
        "previous": "ORDERED",
        "current": "PARTIAL_COMPLETED",
    }
    assert second["status"] == "unchanged"
    assert len(sandbox_clean.alasco.contract_updates) == 1
    with pytest.raises(ValidationError, match="not one of"):
        hook.update_contract_status(contract["id"], "CANCELLED")


def test_a_status_set_once_does_not_overrule_a_clerk_on_a_rerun(hook, sandbox_clean, api_as_clerk):
    contract = next(hook.get_all("contracts", filters={"status.in": ["ORDERED"]}))

    first = hook.update_contract_status(contract["id"], "COMPLETED")
    api_as_clerk.patch(  # the clerk reopens the contract in Alasco
        f"/contracts/{contract['id']}/",
        json={"data": {"id": contract["id"], "type": "CONTRACT", "attributes": {"status": "ORDERED"}}},
    ).raise_for_status()
    rerun = hook.update_contract_status(contract["id"], "COMPLETED")

    assert first["status"] == "updated"
    assert rerun == {
        "contract_id": contract["id"],
        "status": "already_updated",
        "previous": "ORDERED",
        "current": "ORDERED",
    }
    assert [u["after"] for u in sandbox_clean.alasco.contract_updates] == ["COMPLETED", "ORDERED"]


def test_a_status_whose_answer_was_lost_is_checked_on_the_contract(hook, sandbox_clean):
    contract = next(hook.get_all("contracts", filters={"status.in": ["ORDERED"]}))
    sandbox_clean.faults.add(
        reset_fault(vendor="alasco", method="PATCH", path="contracts", when="after", times=1)
    )

    result = hook.update_contract_status(contract["id"], "COMPLETED")

    assert result["status"] == "updated" and result["current"] == "COMPLETED"
    assert len(sandbox_clean.alasco.contract_updates) == 1  # not sent twice


def test_a_status_lost_before_it_arrived_is_ambiguous_and_never_resent(hook, sandbox_clean):
    contract = next(hook.get_all("contracts", filters={"status.in": ["ORDERED"]}))
    sandbox_clean.faults.add(
        reset_fault(vendor="alasco", method="PATCH", path="contracts", when="before", times=1)
    )

    with pytest.raises(AmbiguousWriteError, match="look whether its status is COMPLETED") as caught:
        hook.update_contract_status(contract["id"], "COMPLETED")
    assert "airflow variables set ledgerlink_once_alasco_" in str(caught.value)
    hook.once_wait = 0
    with pytest.raises(AmbiguousWriteError, match="never learned"):
        hook.update_contract_status(contract["id"], "COMPLETED")
    assert sandbox_clean.alasco.contract_updates == []


def test_an_invoice_pdf_is_submitted_once(hook, sandbox_clean):
    project = next(hook.get_all("projects"))
    pdf = _pdf("Rechnung 4711", ["Müller Bau GmbH"])

    first = hook.submit_invoice(project["id"], pdf, filename="RE 4711.pdf", external_identifier="RE-4711")
    second = hook.submit_invoice(project["id"], pdf, filename="RE 4711.pdf")
    other = hook.submit_invoice(project["id"], _pdf("Rechnung 4712"))

    assert first["status"] == "submitted" and second["status"] == "already_submitted"
    assert second["invoice_id"] == first["invoice_id"]
    assert other["status"] == "submitted" and other["invoice_id"] != first["invoice_id"]
    assert len(sandbox_clean.alasco.submissions) == 2
    created = hook.get("invoices", first["invoice_id"])["attributes"]
    assert created["invoice_process_state"] == "NEW"
    assert created["external_identifier"] == "RE-4711"  # the real invoice number, not a hash
    (document,) = hook.list_documents("invoices", first["invoice_id"])
    assert hook.download_document("invoices", first["invoice_id"], document["id"]) == pdf


def _submissions(sandbox: Any) -> int:
    return len(sandbox.alasco.submissions)


def test_a_clerks_edit_of_the_invoice_number_does_not_let_a_rerun_submit_again(
    hook, sandbox_clean, alasco_connection
):
    project = next(hook.get_all("projects"))
    pdf = _pdf("Rechnung 5001")
    first = hook.submit_invoice(project["id"], pdf, external_identifier="RE-5001")
    hook._send_json(  # a clerk corrects the number in Alasco
        "POST",
        f"/invoices/{first['invoice_id']}/update-new/",
        {
            "data": {
                "id": first["invoice_id"],
                "type": "INVOICE",
                "attributes": {"external_identifier": "5001/26"},
            }
        },
        operation="clerk edit",
        idempotent=True,
    )
    rerun = AlascoHook(alasco_connection, retry=FAST, once_state=hook.once_state)

    again = rerun.submit_invoice(project["id"], pdf, external_identifier="RE-5001")

    assert again == {**first, "status": "already_submitted"}
    assert _submissions(sandbox_clean) == 1
    assert hook.get("invoices", first["invoice_id"])["attributes"]["external_identifier"] == "5001/26"


def test_an_invoice_that_left_new_is_not_submitted_again(hook, sandbox_clean):
    project = next(hook.get_all("projects"))
    pdf = _pdf("Rechnung 5002")
    first = hook.submit_invoice(project["id"], pdf)
    for rid, attributes in sandbox_clean.alasco._inserted["invoices"]:  # approved in Alasco meanwhile
        if rid == first["invoice_id"]:
            attributes["invoice_process_state"] = "APPROVED"

    again = hook.submit_invoice(project["id"], pdf)

    assert hook.get("invoices", first["invoice_id"])["attributes"]["invoice_process_state"] == "APPROVED"
    assert again["status"] == "already_submitted" and again["invoice_id"] == first["invoice_id"]
    assert _submissions(sandbox_clean) == 1


@pytest.mark.parametrize(
    "fault",
    [
        reset_fault(vendor="alasco", method="POST", path="submit-invoice", when="after", times=1),
        status_fault(502, vendor="alasco", method="POST", path="submit-invoice", when="after", times=1),
        status_fault(503, vendor="alasco", method="POST", path="submit-invoice", when="after", times=1),
        status_fault(
            200,
            {"data": {"type": "INVOICE"}},
            vendor="alasco",
            method="POST",
            path="submit-invoice",
            when="after",
            times=1,
        ),
    ],
    ids=["reset-after-applied", "502-after-applied", "503-after-applied", "200-without-id"],
)
def test_a_submission_whose_answer_was_lost_is_found_by_its_document(hook, sandbox_clean, fault):
    project = next(hook.get_all("projects"))
    pdf = _pdf("Rechnung 5003")
    sandbox_clean.faults.add(fault)

    first = hook.submit_invoice(project["id"], pdf)
    again = hook.submit_invoice(project["id"], pdf)

    assert first["status"] == "submitted" and again["invoice_id"] == first["invoice_id"]
    assert _submissions(sandbox_clean) == 1
    assert sandbox_clean.alasco.submissions[0]["invoice"] == first["invoice_id"]


def test_a_submission_lost_before_it_arrived_is_ambiguous_and_never_resent(hook, sandbox_clean):
    project = next(hook.get_all("projects"))
    pdf = _pdf("Rechnung 5004")
    sandbox_clean.faults.add(
        reset_fault(vendor="alasco", method="POST", path="submit-invoice", when="before", times=1)
    )

    with pytest.raises(AmbiguousWriteError, match="find_submitted_invoice") as caught:
        hook.submit_invoice(project["id"], pdf)
    assert "SHA-256" in str(caught.value)
    record = hook.once_state.get_json(caught.value.message and _record_key(caught.value))
    assert record["state"] == "sending"  # kept: a later attempt waits, then fails, never sends
    assert _submissions(sandbox_clean) == 0


def _record_key(error: AmbiguousWriteError) -> str:
    return re.search(r"ledgerlink_once_alasco_[0-9a-f]+", str(error)).group(0)  # type: ignore[union-attr]


def test_four_concurrent_submissions_of_one_pdf_create_one_invoice(sandbox_clean, alasco_connection):
    from concurrent.futures import ThreadPoolExecutor

    state = MemoryState()
    hooks = [AlascoHook(alasco_connection, retry=FAST, once_state=state) for _ in range(4)]
    project = next(hooks[0].get_all("projects"))
    pdf = _pdf("Rechnung 5005")

    def submit(h: AlascoHook) -> Any:
        try:
            return h.submit_invoice(project["id"], pdf)
        except AmbiguousWriteError as error:
            return error

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(submit, hooks))
    for h in hooks:
        h.close()

    assert _submissions(sandbox_clean) == 1
    ids = {r["invoice_id"] for r in results if isinstance(r, dict)}
    assert ids == {sandbox_clean.alasco.submissions[0]["invoice"]}


def test_a_submitted_invoice_shows_up_in_the_next_extract(hook, sandbox_clean):
    project = next(hook.get_all("projects"))
    before = sandbox_clean.alasco.row_count("invoices")

    created = hook.submit_invoice(project["id"], _pdf("Neu"))

    newest = list(
        hook.get_all("invoices", filters={"date_created.greater_than_equal": "2026-11-20T00:00:00Z"})
    )
    assert [item["id"] for item in newest] == [created["invoice_id"]]
    assert sum(1 for _ in hook.get_all("invoices")) == before + 1


def test_pages_say_where_they_stand_and_get_rows_reads_what_get_all_reads(hook, sandbox_clean):
    filters = {"invoice_process_state.in": ["PAID"]}
    pages = list(hook.get_pages("invoices", filters=filters))

    assert len(pages) > 1
    assert [page.last for page in pages] == [False] * (len(pages) - 1) + [True]
    assert [page.offset for page in pages] == [sum(len(p) for p in pages[:i]) for i in range(len(pages))]
    assert all(page.data is page for page in pages)
    rows = [row for page in pages for row in page]
    assert (
        list(hook.get_rows("invoices", filters=filters))
        == rows
        == list(hook.get_all("invoices", filters=filters))
    )
