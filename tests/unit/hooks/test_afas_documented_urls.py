"""The URLs the AFAS hook sends for UpdateConnectors and the one-time-password calls, checked against
AFAS's own OpenAPI files (``sandbox/specs/afas``) and its UpdateConnector page.

AFAS's shapes: ``POST``/``PUT /connectors/{UpdateConnector}`` (key fields as ``@Key`` in the body);
``POST /connectors/{UpdateConnector}/{SubObject}`` ("POST on SubObject", e.g.
``HrMobility/HrEmployeeMobilityRegistration``; OAS ``/connectors/FbInstalment/FbInstalmentLines``);
``DELETE /connectors/{UpdateConnector}/{Object}/@{Key}/{value}`` (OAS
``/connectors/FiEntries/FiEntryPar/@Year/{Year}``), nested rows with the full key of the main element
and the sub-element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.core.errors import ValidationError
from airflow_provider_ledgerlink.hooks.afas import AfasHook
from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json

TOKEN = "<token><version>1</version><data>" + "AB" * 32 + "</data></token>"
BASE = "https://12345.rest.afas.online/ProfitRestServices"


def oas_paths() -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for name in ("Inrichting.json", "Mutaties.json"):
        paths.update(load_json("afas", name)["paths"])
    return paths


#: Every DELETE path template of AFAS's OAS files: (connector, object, key fields).
OAS_DELETES = sorted(
    (match.group(1), match.group(2), tuple(re.findall(r"/@(\w+)/\{\w+\}", path)))
    for path, operations in oas_paths().items()
    if "delete" in operations
    for match in [re.fullmatch(r"/connectors/(\w+)/(\w+)((?:/@\w+/\{\w+\})+)", path)]
    if match is not None
)


def test_the_oas_files_hold_the_delete_templates_these_tests_rest_on() -> None:
    assert ("FiEntries", "FiEntryPar", ("Year",)) in OAS_DELETES
    assert ("KnCustomK01", "KnCustomK01", ("SqNo",)) in OAS_DELETES
    deletes = [path for path, operations in oas_paths().items() if "delete" in operations]
    assert len(OAS_DELETES) == len(deletes)  # every template has the @Key/{Key} shape


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AfasHook, list[httpx.Request]]]:
    """A hook whose requests are recorded and answered with 200 (201 with results for writes)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_AFAS_URLS",
        json.dumps(
            {"conn_type": "ledgerlink_afas", "password": TOKEN, "extra": {"environment_id": "O12345AA"}}
        ),
    )
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method in ("POST", "PUT") and "/connectors/" in request.url.path:
            return httpx.Response(201, json={"results": {"X": {"Id": "1"}}})
        return httpx.Response(200)

    hook = AfasHook("afas_urls")
    make_client = hook.make_client
    monkeypatch.setattr(
        hook, "make_client", lambda **kwargs: make_client(transport=httpx.MockTransport(answer), **kwargs)
    )
    yield hook, requests
    hook.close()


@pytest.mark.parametrize(("connector", "obj", "key_fields"), OAS_DELETES)
def test_a_delete_fills_the_oas_template(
    sent: tuple[AfasHook, list[httpx.Request]], connector: str, obj: str, key_fields: tuple[str, ...]
) -> None:
    hook, requests = sent
    keys = {field: f"v{n}" for n, field in enumerate(key_fields)}

    hook.delete(connector, obj, keys)

    template = f"/connectors/{connector}/{obj}" + "".join(f"/@{k}/{{{k}}}" for k in key_fields)
    expected = template
    for field, value in keys.items():
        expected = expected.replace(f"{{{field}}}", value)
    assert [(r.method, str(r.url)) for r in requests] == [("DELETE", BASE + expected)]


@pytest.mark.parametrize(
    ("args", "kwargs", "path"),
    [
        # AFAS's FiEntries delete: the OAS template starts with @Year; the record's full key follows.
        (
            ("FiEntries", "FiEntryPar", {"Year": 2026, "UnId": 1, "EnNo": 5811}),
            {},
            "/connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo/5811",
        ),
        # Keys given with their @ are not doubled.
        (("KnSubject", "KnSubject", {"@SbId": 1957}), {}, "/connectors/KnSubject/KnSubject/@SbId/1957"),
        # A nested row: the main element's key, then the sub-element and its key.
        (
            ("FbSalesQuotation", "FbSalesQuotation", {"OrNu": "50000004"}),
            {"nested": [("FbSalesQuotationLines", {"GuLi": "{2D75F7D5-8681-45A6-B0BA-787C114B2B09}"})]},
            "/connectors/FbSalesQuotation/FbSalesQuotation/@OrNu/50000004/FbSalesQuotationLines/@GuLi/"
            "%7B2D75F7D5-8681-45A6-B0BA-787C114B2B09%7D",
        ),
        # Values are URL-encoded: a slash in a key cannot add a segment.
        (
            ("KnCustomK01", "KnCustomK01", {"SqNo": "a/b c"}),
            {},
            "/connectors/KnCustomK01/KnCustomK01/@SqNo/a%2Fb%20c",
        ),
    ],
)
def test_delete_urls(
    sent: tuple[AfasHook, list[httpx.Request]], args: tuple[Any, ...], kwargs: dict[str, Any], path: str
) -> None:
    hook, requests = sent
    hook.delete(*args, **kwargs)
    assert [(r.method, r.url.raw_path.decode()) for r in requests] == [
        ("DELETE", "/ProfitRestServices" + path)
    ]


@pytest.mark.parametrize("keys", [{}, {"Year": ""}, {"": 1}, {"Year": None}])
def test_a_delete_without_a_full_key_is_refused_before_sending(
    sent: tuple[AfasHook, list[httpx.Request]], keys: dict[str, Any]
) -> None:
    hook, requests = sent
    with pytest.raises(ValidationError, match="AFAS Profit UpdateConnector FiEntries \\(delete\\)"):
        hook.delete("FiEntries", "FiEntryPar", keys)
    assert requests == []


def test_put_goes_to_the_connector_with_the_key_in_the_body(
    sent: tuple[AfasHook, list[httpx.Request]],
) -> None:
    hook, requests = sent
    body = {"KnSubject": {"Element": {"@SbId": 1957, "Fields": {"Ds": "Onderwerp"}}}}

    hook.update_connector("KnSubject", body, method="PUT")

    assert [(r.method, str(r.url)) for r in requests] == [("PUT", BASE + "/connectors/KnSubject")]
    assert json.loads(requests[0].content) == body
    assert "put" in oas_paths()["/connectors/KnCustomK01"]  # PUT has no key in the path


def test_post_on_a_sub_object_goes_to_its_documented_url(sent: tuple[AfasHook, list[httpx.Request]]) -> None:
    hook, requests = sent
    assert "post" in oas_paths()["/connectors/FbInstalment/FbInstalmentLines"]

    hook.update_connector("FbInstalment", {"FbInstalment": {"Element": {}}}, sub_path="FbInstalmentLines")

    assert [(r.method, str(r.url)) for r in requests] == [
        ("POST", BASE + "/connectors/FbInstalment/FbInstalmentLines")
    ]


def test_put_on_a_sub_object_url_is_refused_before_sending(
    sent: tuple[AfasHook, list[httpx.Request]],
) -> None:
    hook, requests = sent
    with pytest.raises(ValidationError, match="for POST \\(insert a sub-object\\) only"):
        hook.update_connector(
            "KnSubject", {"KnSubject": {"Element": {}}}, method="PUT", sub_path="KnSubjectLink"
        )
    assert requests == []


# --------------------------------------------------------------------------------------------------
# The one-time-password request
# --------------------------------------------------------------------------------------------------
def oas_example(path: str) -> dict[str, Any]:
    body = oas_paths()[path]["post"]["requestBody"]["content"]["application/json"]
    (example,) = body["examples"].values()
    return dict(example["value"])


def test_the_otp_request_sends_the_fields_of_afas_s_example(
    sent: tuple[AfasHook, list[httpx.Request]],
) -> None:
    hook, requests = sent
    example = oas_example("/OtpRequest")  # {"apiKey", "userid", "apiToken"}: AFAS's spelling is userid

    hook.request_otp(api_key="K" * 32, environment_key="E" * 32, user_id="12345.anna")

    (request,) = requests
    assert (request.method, str(request.url)) == ("POST", BASE + "/otprequest")
    assert "authorization" not in request.headers
    body = json.loads(request.content)
    assert set(body) == set(example) == {"apiKey", "apiToken", "userid"}
    assert body == {"apiKey": "K" * 32, "apiToken": "E" * 32, "userid": "12345.anna"}


def test_the_otp_validation_sends_the_fields_of_afas_s_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_AFAS_OTP",
        json.dumps({"conn_type": "ledgerlink_afas", "password": TOKEN, "extra": {"environment_id": "12345"}}),
    )
    requests: list[httpx.Request] = []
    token = "<token><version>1</version><data>" + "CD" * 32 + "</data></token>"

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"token": token + "\r\n"})

    hook = AfasHook("afas_otp")
    make_client = hook.make_client
    monkeypatch.setattr(
        hook, "make_client", lambda **kwargs: make_client(transport=httpx.MockTransport(answer), **kwargs)
    )
    try:
        assert (
            hook.validate_otp(api_key="K" * 32, environment_key="E" * 32, user_id="u", otp=" 34264813 ")
            == token
        )
    finally:
        hook.close()

    body = json.loads(requests[0].content)
    assert set(body) == set(oas_example("/OtpValidation")) == {"apiKey", "apiToken", "userid", "otp"}
    assert body["otp"] == "34264813"
