"""The AFAS hook's pure functions: tokens, environments, AFAS's Amsterdam-with-a-Z datetimes, filters
and the GetConnector query string, how AFAS's error answers become LedgerLink errors, and the
UpdateConnector URLs the hook sends (against AFAS's OpenAPI files, through a mock transport)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pendulum
import pytest

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.get_provider_info import get_provider_info
from airflow_provider_ledgerlink.hooks.afas import (
    ENVIRONMENT_CODE_HELP,
    ENVIRONMENT_CODE_PATTERN,
    MAX_QUERY_LENGTH,
    AfasHook,
    afas_datetime_to_amsterdam,
    afas_datetime_to_utc,
    authorization_header,
    base_url_for,
    build_get_query,
    map_error,
    normalize_filters,
    normalize_token,
    parse_environment,
    to_afas_filter_value,
)
from airflow_provider_ledgerlink.sandbox.vendor_specs import load_json

DATA = "A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90"
TOKEN_XML = f"<token><version>1</version><data>{DATA}</data></token>"


def query_params(query: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()}


# ------------------------------------------------------------------------------------------------
# normalize_token
# ------------------------------------------------------------------------------------------------
def test_the_token_xml_is_taken_as_it_is() -> None:
    assert normalize_token(TOKEN_XML) == TOKEN_XML


def test_the_bare_hexadecimal_data_part_is_wrapped_in_the_token_xml() -> None:
    assert normalize_token(DATA) == TOKEN_XML


def test_the_base64_of_the_token_xml_is_decoded() -> None:
    encoded = base64.b64encode(TOKEN_XML.encode()).decode()

    assert normalize_token(encoded) == TOKEN_XML


@pytest.mark.parametrize(
    "pasted",
    [
        f"  {TOKEN_XML}\r\n",
        f"\t{DATA}\n",
        base64.b64encode(TOKEN_XML.encode()).decode() + "\r\n",
        base64.b64encode(f"{TOKEN_XML}\r\n".encode()).decode(),
    ],
    ids=["xml", "hex", "base64", "base64-of-xml-ending-in-crlf"],
)
def test_surrounding_whitespace_and_crlf_are_ignored(pasted: str) -> None:
    assert normalize_token(pasted) == TOKEN_XML


def test_base64_wrapped_over_several_lines_is_accepted() -> None:
    encoded = base64.b64encode(TOKEN_XML.encode()).decode()
    wrapped = "\r\n".join(encoded[i : i + 40] for i in range(0, len(encoded), 40))

    assert normalize_token(wrapped) == TOKEN_XML


def test_token_xml_spread_over_several_lines_is_accepted() -> None:
    pretty = f"<token>\r\n  <version>1</version>\r\n  <data>{DATA}</data>\r\n</token>"

    assert normalize_token(pretty) == pretty


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "not a token at all, hunter2-secret",
        "<token><version>1</version><data>zz-hunter2-secret</data></token>",
        "<foo>hunter2-secret</foo>",
        base64.b64encode(b"<foo>hunter2-secret</foo>").decode(),
        base64.b64encode(b"\xff\xfehunter2-secret").decode(),
    ],
    ids=["empty", "blank", "text", "xml-bad-data", "other-xml", "base64-other-xml", "base64-binary"],
)
def test_bad_input_raises_value_error_without_echoing_the_input(bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalize_token(bad)

    assert "hunter2" not in str(caught.value)
    assert "token" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# authorization_header, parse_environment, base_url_for
# ------------------------------------------------------------------------------------------------
def test_the_authorization_header_is_afastoken_and_the_base64_of_the_xml() -> None:
    header = authorization_header(TOKEN_XML)

    scheme, value = header.split(" ")
    assert scheme == "AfasToken"
    assert base64.b64decode(value).decode() == TOKEN_XML


#: Every form of the environment code AFAS shows or documents, with the URL it stands for. The seed
#: (004, Visionplanner's AFAS Online instructions) says to copy "de omgevingscode ... Deze zie je
#: bovenaan in de balk staan"; AFAS's quick start: the first letter is the platform, "Production (O),
#: Test (T), and Accept (A)"; its metainfo example's envid is "A123456AC"; the OAS servers are
#: https://{id}.rest|resttest|restaccept.afas.online/ProfitRestServices with a "5 digit environment number".
ENVIRONMENT_FORMS = [
    ("O12345AA", None, "https://12345.rest.afas.online/ProfitRestServices"),
    ("T12345AA", None, "https://12345.resttest.afas.online/ProfitRestServices"),
    ("A12345AA", None, "https://12345.restaccept.afas.online/ProfitRestServices"),
    ("A123456AC", None, "https://123456.restaccept.afas.online/ProfitRestServices"),
    ("O12345", None, "https://12345.rest.afas.online/ProfitRestServices"),
    ("T12345", None, "https://12345.resttest.afas.online/ProfitRestServices"),
    ("A12345", None, "https://12345.restaccept.afas.online/ProfitRestServices"),
    ("12345", None, "https://12345.rest.afas.online/ProfitRestServices"),
    ("12345", "production", "https://12345.rest.afas.online/ProfitRestServices"),
    ("12345", "test", "https://12345.resttest.afas.online/ProfitRestServices"),
    ("12345", "accept", "https://12345.restaccept.afas.online/ProfitRestServices"),
    ("o12345aa", None, "https://12345.rest.afas.online/ProfitRestServices"),
    (" T12345AA ", "test", "https://12345.resttest.afas.online/ProfitRestServices"),
    (12345, None, "https://12345.rest.afas.online/ProfitRestServices"),
]
#: What is not an AFAS environment code.
NOT_ENVIRONMENT_CODES = [
    "", None, "1234", "1234567", "abcde", "X12345", "X12345AA", "12345a", "12345AA", "O12345A",
    "O12345AAA", "O12345A1", "12 345", "O-12345", "O 12345AA",
]  # fmt: skip


@pytest.mark.parametrize(("environment_id", "environment_type", "url"), ENVIRONMENT_FORMS)
def test_every_form_of_the_environment_code_builds_the_documented_url(
    environment_id: object, environment_type: str | None, url: str
) -> None:
    assert base_url_for(*parse_environment(environment_id, environment_type)) == url


@pytest.mark.parametrize(
    ("environment_id", "environment_type", "expected"),
    [
        ("12345", None, ("12345", "production")),
        (12345, None, ("12345", "production")),
        (" 12345 ", "test", ("12345", "test")),
        ("12345", "Accept", ("12345", "accept")),
        ("O12345", None, ("12345", "production")),
        ("o12345", None, ("12345", "production")),
        ("T12345", None, ("12345", "test")),
        ("A12345", None, ("12345", "accept")),
        ("T12345", "test", ("12345", "test")),
        ("O12345", "production", ("12345", "production")),
        ("T12345", "", ("12345", "test")),
        ("O12345AA", "production", ("12345", "production")),
        ("A12345AA", "accept", ("12345", "accept")),
    ],
)
def test_environment_number_and_type_are_read_from_all_usual_forms(
    environment_id: object, environment_type: str | None, expected: tuple[str, str]
) -> None:
    assert parse_environment(environment_id, environment_type) == expected


@pytest.mark.parametrize("code", ["T12345", "T12345AA"])
def test_a_letter_that_contradicts_the_environment_type_is_an_error(code: str) -> None:
    with pytest.raises(
        ValueError, match=f"{code} is a test environment but environment_type says production"
    ):
        parse_environment(code, "production")


@pytest.mark.parametrize("bad", NOT_ENVIRONMENT_CODES)
def test_a_malformed_environment_code_is_an_error_showing_the_forms(bad: object) -> None:
    with pytest.raises(ValueError, match="is not an AFAS environment code") as raised:
        parse_environment(bad, None)
    assert "O12345AA" in str(raised.value) and "12345" in str(raised.value)


def _form_field() -> dict[str, Any]:
    info = get_provider_info()
    afas = next(c for c in info["connection-types"] if c["connection-type"] == "ledgerlink_afas")
    return afas["conn-fields"]["environment_id"]


def test_the_connection_form_pattern_and_help_are_the_hooks() -> None:
    field = _form_field()
    assert field["schema"]["pattern"] == ENVIRONMENT_CODE_PATTERN
    assert field["description"] == ENVIRONMENT_CODE_HELP
    for form in ("O12345AA", "T12345AA", "A12345AA", "12345"):
        assert form in field["description"]


@pytest.mark.parametrize("value", [f for f, _t, _u in ENVIRONMENT_FORMS if isinstance(f, str)])
def test_the_form_pattern_accepts_every_form_the_hook_accepts(value: str) -> None:
    assert re.match(_form_field()["schema"]["pattern"], value)


@pytest.mark.parametrize("value", [b for b in NOT_ENVIRONMENT_CODES if b])
def test_the_form_pattern_refuses_what_the_hook_refuses(value: str) -> None:
    assert not re.match(_form_field()["schema"]["pattern"], value)


def test_an_unknown_environment_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="not one of production, test, accept"):
        parse_environment("12345", "staging")


@pytest.mark.parametrize(
    ("environment_type", "expected"),
    [
        ("production", "https://12345.rest.afas.online/ProfitRestServices"),
        ("test", "https://12345.resttest.afas.online/ProfitRestServices"),
        ("accept", "https://12345.restaccept.afas.online/ProfitRestServices"),
    ],
)
def test_each_environment_type_has_its_own_host(environment_type: str, expected: str) -> None:
    assert base_url_for("12345", environment_type) == expected


# ------------------------------------------------------------------------------------------------
# Datetimes: AFAS sends Amsterdam wall-clock time with a "Z"
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("afas", "utc"),
    [
        ("2026-01-15T12:00:00Z", "2026-01-15T11:00:00Z"),  # winter: UTC+1
        ("2026-07-01T12:00:00Z", "2026-07-01T10:00:00Z"),  # summer: UTC+2
        ("2026-01-01T00:30:00Z", "2025-12-31T23:30:00Z"),  # crosses midnight and the year
        ("2026-03-29T01:30:00Z", "2026-03-29T00:30:00Z"),  # just before the spring change
        ("2026-03-29T03:30:00Z", "2026-03-29T01:30:00Z"),  # just after it
        ("2026-10-25T02:30:00Z", "2026-10-25T00:30:00Z"),  # the repeated autumn hour: summer time
    ],
)
def test_afas_datetimes_become_real_utc(afas: str, utc: str) -> None:
    assert afas_datetime_to_utc(afas) == utc


def test_a_date_only_value_becomes_a_date_in_utc_mode() -> None:
    assert afas_datetime_to_utc("2026-07-01T00:00:00Z") == "2026-07-01"


@pytest.mark.parametrize(
    ("afas", "amsterdam"),
    [
        ("2026-01-15T12:00:00Z", "2026-01-15T12:00:00+01:00"),
        ("2026-07-01T12:00:00Z", "2026-07-01T12:00:00+02:00"),
        ("2026-07-01T00:00:00Z", "2026-07-01"),
    ],
)
def test_afas_datetimes_get_their_amsterdam_offset(afas: str, amsterdam: str) -> None:
    assert afas_datetime_to_amsterdam(afas) == amsterdam


def converted(rows: list[dict[str, object]], datetimes: str = "utc") -> list[dict[str, object]]:
    convert = AfasHook("afas_unused", datetimes=datetimes)._row_converter()
    convert(rows)
    return rows


def test_a_page_converts_every_datetime_value_also_when_it_repeats() -> None:
    page = [
        {"EntryNo": 1, "Created": "2026-07-01T12:00:00Z", "EntryDate": "2026-07-01T00:00:00Z"},
        {"EntryNo": 1, "Created": "2026-07-01T12:00:00Z", "EntryDate": "2026-07-01T00:00:00Z"},
        {"EntryNo": 2, "Created": "2026-01-15T12:00:00.5Z", "EntryDate": None},
        {"EntryNo": 3, "EntryDate": "2026-07-02T00:00:00Z"},  # no Created at all
    ]
    assert converted(page) == [
        {"EntryNo": 1, "Created": "2026-07-01T10:00:00Z", "EntryDate": "2026-07-01"},
        {"EntryNo": 1, "Created": "2026-07-01T10:00:00Z", "EntryDate": "2026-07-01"},
        {"EntryNo": 2, "Created": "2026-01-15T11:00:00.500000Z", "EntryDate": None},
        {"EntryNo": 3, "EntryDate": "2026-07-02"},
    ]


def test_values_that_are_not_afas_datetimes_stay_as_they_are() -> None:
    page = [
        {"Modified": "2026-07-01T12:00:00Z", "Description": "2026-07-01T12:00:00Z ok", "Code": 7},
        {"Modified": "not a date", "Description": "x", "Code": 8},
        {"Modified": 20260701, "Description": "y", "Code": 9},
    ]
    assert converted(page) == [
        {"Modified": "2026-07-01T10:00:00Z", "Description": "2026-07-01T12:00:00Z ok", "Code": 7},
        {"Modified": "not a date", "Description": "x", "Code": 8},
        {"Modified": 20260701, "Description": "y", "Code": 9},
    ]


def test_a_page_in_amsterdam_mode_keeps_the_wall_clock_and_adds_the_offset() -> None:
    page = [{"Created": "2026-07-01T12:00:00Z"}, {"Created": "2026-07-01T12:00:00Z"}]
    assert converted(page, "amsterdam") == [{"Created": "2026-07-01T12:00:00+02:00"}] * 2


def test_raw_mode_has_no_converter() -> None:
    assert AfasHook("afas_unused", datetimes="raw")._row_converter() is None


# ------------------------------------------------------------------------------------------------
# Filter values
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc), "2026-07-01T12:00:00"),
        (datetime(2026, 1, 15, 10, 0, tzinfo=timezone.utc), "2026-01-15T11:00:00"),
        (pendulum.datetime(2026, 7, 1, 10, 0, tz="UTC"), "2026-07-01T12:00:00"),
        (pendulum.datetime(2026, 7, 1, 12, 0, tz="Europe/Amsterdam"), "2026-07-01T12:00:00"),
        (datetime(2026, 7, 1, 10, 0), "2026-07-01T10:00:00"),  # naive: taken as Amsterdam already
        (date(2026, 7, 1), "2026-07-01"),
        (True, "true"),
        (False, "false"),
        (None, ""),
        (42, "42"),
        (Decimal("1.50"), "1.50"),
        ("Café", "Café"),
    ],
)
def test_filter_values_are_written_as_afas_expects(value: object, expected: str) -> None:
    assert to_afas_filter_value(value) == expected


def test_an_aware_datetime_filter_value_carries_no_z_and_no_offset() -> None:
    text = to_afas_filter_value(datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc))

    assert not text.endswith("Z")
    assert "+" not in text


# ------------------------------------------------------------------------------------------------
# normalize_filters
# ------------------------------------------------------------------------------------------------
def test_no_filters_give_no_groups() -> None:
    assert normalize_filters(None) == []
    assert normalize_filters([]) == []


def test_a_list_of_conditions_is_one_and_group() -> None:
    assert normalize_filters([("UnitId", "eq", 1), ("Amount", ">", 100)]) == [
        [("UnitId", 1, "1"), ("Amount", 4, "100")]
    ]


def test_a_list_of_lists_is_or_groups() -> None:
    filters = [[("UnitId", "eq", 1), ("JournalId", "eq", "50")], [("UnitId", "eq", 2)]]

    assert normalize_filters(filters) == [
        [("UnitId", 1, "1"), ("JournalId", 1, "50")],
        [("UnitId", 1, "2")],
    ]


def test_a_single_dict_is_one_condition() -> None:
    assert normalize_filters({"field": "UnitId", "op": "ge", "value": 3}) == [[("UnitId", 2, "3")]]


def test_dicts_may_say_operator_and_default_to_equals() -> None:
    filters = [{"field": "A", "operator": "contains", "value": "x"}, {"field": "B", "value": "y"}]

    assert normalize_filters(filters) == [[("A", 6, "x"), ("B", 1, "y")]]


def test_or_groups_of_dicts() -> None:
    filters = [[{"field": "A", "value": 1}], [{"field": "B", "value": 2}]]

    assert normalize_filters(filters) == [[("A", 1, "1")], [("B", 1, "2")]]


@pytest.mark.parametrize(
    ("name", "symbol", "code"),
    [("eq", "=", 1), ("ge", ">=", 2), ("le", "<=", 3), ("gt", ">", 4), ("lt", "<", 5), ("ne", "!=", 7)],
)
def test_operators_by_name_and_by_symbol_mean_the_same(name: str, symbol: str, code: int) -> None:
    assert (
        normalize_filters([("F", name, 1)]) == normalize_filters([("F", symbol, 1)]) == [[("F", code, "1")]]
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("contains", 6),
        ("starts_with", 10),
        ("not_contains", 11),
        ("not_starts_with", 12),
        ("ends_with", 13),
        ("not_ends_with", 14),
        ("quick_filter", 15),
        ("EQ", 1),
        (6, 6),
    ],
)
def test_other_operators_by_name_case_or_code(name: object, code: int) -> None:
    assert normalize_filters([("F", name, "x")]) == [[("F", code, "x")]]


@pytest.mark.parametrize("op", ["like", "~", 0, 16])
def test_an_unknown_operator_is_an_error_that_lists_the_known_ones(op: object) -> None:
    with pytest.raises(ValueError, match="unknown filter operator") as caught:
        normalize_filters([("F", op, "x")])

    assert "contains" in str(caught.value)


@pytest.mark.parametrize(("op", "code"), [("empty", 8), ("not_empty", 9)])
def test_empty_and_not_empty_need_no_value(op: str, code: int) -> None:
    assert normalize_filters([("Email", op)]) == [[("Email", code, "")]]
    assert normalize_filters({"field": "Email", "op": op}) == [[("Email", code, "")]]


def test_datetime_values_are_converted_in_filters() -> None:
    start = datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)

    assert normalize_filters([("Modified", ">=", start)]) == [[("Modified", 2, "2026-07-01T12:00:00")]]


@pytest.mark.parametrize("bad", [["UnitId"], [("UnitId",)], [("A", "eq", 1, 2)], [42]])
def test_a_malformed_condition_is_an_error(bad: list[object]) -> None:
    with pytest.raises(ValueError, match="filter condition"):
        normalize_filters(bad)


def test_a_condition_without_a_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="has no field"):
        normalize_filters({"op": "eq", "value": 1})


# ------------------------------------------------------------------------------------------------
# build_get_query
# ------------------------------------------------------------------------------------------------
def test_paging_only_query() -> None:
    assert build_get_query(skip=2000, take=1000) == "skip=2000&take=1000"


def test_ordering_is_kept_in_the_given_order_with_descending_fields() -> None:
    query = build_get_query(skip=0, take=100, order_by=["UnitId", "-EntryNo", "SeqNo"])

    assert query == "skip=0&take=100&orderbyfieldids=UnitId%2C-EntryNo%2CSeqNo"


def test_the_simple_filter_form_uses_comma_for_and_and_semicolon_for_or() -> None:
    filters = normalize_filters([[("UnitId", "eq", 1), ("Amount", ">=", 5)], [("UnitId", "eq", 2)]])

    query = build_get_query(skip=0, take=100, order_by=["UnitId"], filters=filters)

    assert query_params(query) == {
        "skip": "0",
        "take": "100",
        "orderbyfieldids": "UnitId",
        "filterfieldids": "UnitId,Amount;UnitId",
        "filtervalues": "1,5;2",
        "operatortypes": "1,2;1",
    }


def test_the_query_lists_paging_ordering_then_filters() -> None:
    filters = normalize_filters([("UnitId", "eq", 1)])

    query = build_get_query(skip=0, take=10, order_by=["UnitId"], filters=filters)

    keys = [item.split("=", 1)[0] for item in query.split("&")]
    assert keys == ["skip", "take", "orderbyfieldids", "filterfieldids", "filtervalues", "operatortypes"]


def test_an_empty_filter_value_is_sent_empty() -> None:
    query = build_get_query(skip=0, take=10, filters=normalize_filters([("Email", "empty")]))

    assert query_params(query)["filtervalues"] == ""
    assert query_params(query)["operatortypes"] == "8"


@pytest.mark.parametrize("value", ["Smith, John", "a;b"])
def test_a_value_with_a_comma_or_semicolon_switches_to_filterjson(value: str) -> None:
    filters = normalize_filters([[("Name", "eq", value), ("UnitId", "eq", 1)], [("UnitId", "eq", 2)]])

    params = query_params(build_get_query(skip=0, take=10, order_by=["UnitId"], filters=filters))

    assert set(params) == {"skip", "take", "orderbyfieldids", "filterjson"}
    assert json.loads(params["filterjson"]) == {
        "Filters": {
            "Filter": [
                {
                    "@FilterId": "Filter 1",
                    "Field": [
                        {"@FieldId": "Name", "@OperatorType": "1", "#text": value},
                        {"@FieldId": "UnitId", "@OperatorType": "1", "#text": "1"},
                    ],
                },
                {
                    "@FilterId": "Filter 2",
                    "Field": [{"@FieldId": "UnitId", "@OperatorType": "1", "#text": "2"}],
                },
            ]
        }
    }


def _query_with_value_of_length(n: int) -> str:
    return build_get_query(
        skip=0, take=100, filters=normalize_filters([("Description", "contains", "x" * n)])
    )


def test_a_simple_query_of_exactly_the_limit_is_accepted() -> None:
    overhead = len(_query_with_value_of_length(0))
    query = _query_with_value_of_length(MAX_QUERY_LENGTH - overhead)

    assert len(query) == MAX_QUERY_LENGTH
    assert "filterfieldids=" in query


def test_a_query_one_character_over_the_limit_is_refused_with_advice() -> None:
    # The JSON form is never shorter than the simple one, so past the limit nothing fits.
    overhead = len(_query_with_value_of_length(0))

    with pytest.raises(ValueError, match=r"more than AFAS accepts \(2049\); split it"):
        _query_with_value_of_length(MAX_QUERY_LENGTH - overhead + 1)


def test_a_json_filter_that_is_too_long_is_refused() -> None:
    filters = normalize_filters([("Name", "eq", "a,b" * 700)])

    with pytest.raises(ValueError, match="characters of query string"):
        build_get_query(skip=0, take=100, filters=filters)


# ------------------------------------------------------------------------------------------------
# map_error
# ------------------------------------------------------------------------------------------------
def test_401_with_an_empty_body_is_an_authentication_error_listing_likely_causes() -> None:
    error = map_error(httpx.Response(401), "GetConnector Profit_Accounts")

    assert isinstance(error, AuthenticationError)
    assert error.http_status == 401
    message = str(error)
    assert message.startswith("AFAS Profit GetConnector Profit_Accounts failed")
    for cause in ("expired", "environment number or type", "App connector"):
        assert cause in message


def test_500_with_a_profit_log_reference_is_a_vendor_error_carrying_it() -> None:
    body = {
        "externalMessage": "Het veld 'Rekening' is verplicht.",
        "errorNumber": -2147180999,
        "profitLogReference": "3A4CA18A0F6B4D5E8C1B2A3F4E5D6C7B",
    }
    error = map_error(httpx.Response(500, json=body), "UpdateConnector FiEntries (insert)")

    assert isinstance(error, VendorError)
    assert error.reference == "3A4CA18A0F6B4D5E8C1B2A3F4E5D6C7B"
    assert error.http_status == 500
    assert "Het veld 'Rekening' is verplicht. (errorNumber -2147180999)" in str(error)
    assert "(vendor reference: 3A4CA18A0F6B4D5E8C1B2A3F4E5D6C7B)" in str(error)
    assert error.retryable is False


def test_500_saying_the_query_took_too_long_may_be_retried() -> None:
    body = {"externalMessage": "De maximale tijdsduur is overschreden", "profitLogReference": "R1"}

    assert map_error(httpx.Response(500, json=body), "GetConnector X").retryable is True


def test_400_with_an_external_message_is_a_validation_error_with_reference() -> None:
    body = {"externalMessage": "Ongeldige waarde", "profitLogReference": "R2"}
    error = map_error(httpx.Response(400, json=body), "UpdateConnector KnSubject")

    assert isinstance(error, ValidationError)
    assert error.reference == "R2"


def test_503_with_retry_after_in_the_body_is_service_unavailable_with_that_wait() -> None:
    body = {
        "error": {
            "code": {"example": "503"},
            "message": {"example": "Service temporarily unavailable due to scheduled maintenance."},
        },
        "retry_after": 7200,
    }
    error = map_error(httpx.Response(503, json=body), "GetConnector X")

    assert isinstance(error, ServiceUnavailableError)
    assert error.retry_after == 7200.0
    assert "scheduled maintenance" in str(error)


def test_503_with_a_plain_message_is_read_too() -> None:
    body = {"error": {"code": "503", "message": "Onderhoud"}, "retry_after": 60}
    error = map_error(httpx.Response(503, json=body), "GetConnector X")

    assert error.retry_after == 60.0
    assert "Onderhoud" in str(error)


def test_503_without_a_body_falls_back_to_the_retry_after_header() -> None:
    error = map_error(httpx.Response(503, headers={"Retry-After": "30"}), "GetConnector X")

    assert isinstance(error, ServiceUnavailableError)
    assert error.retry_after == 30.0


def test_403_is_permission_denied_pointing_at_ip_restrictions() -> None:
    error = map_error(httpx.Response(403), "metainfo")

    assert isinstance(error, PermissionDeniedError)
    assert "IP restrictions" in str(error)


def test_404_mentions_the_query_length_limit() -> None:
    error = map_error(httpx.Response(404), "GetConnector X")

    assert isinstance(error, NotFoundError)
    assert "2049" in str(error)


@pytest.mark.parametrize("status", [500, 502])
def test_an_html_page_gives_a_clear_message_instead_of_markup(status: int) -> None:
    page = "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Oops</h1></body></html>"
    error = map_error(httpx.Response(status, text=page, headers={"Content-Type": "text/html"}), "metainfo")

    assert isinstance(error, VendorError)
    assert "HTML page instead of data" in str(error)
    assert "<h1>" not in str(error)


# --------------------------------------------------------------------------------------------------
# The URLs the AFAS hook sends for UpdateConnectors and the one-time-password calls, checked against
# AFAS's own OpenAPI files (``sandbox/specs/afas``) and its UpdateConnector page.
#
# AFAS's shapes: ``POST``/``PUT /connectors/{UpdateConnector}`` (key fields as ``@Key`` in the body);
# ``POST /connectors/{UpdateConnector}/{SubObject}`` ("POST on SubObject", e.g.
# ``HrMobility/HrEmployeeMobilityRegistration``; OAS ``/connectors/FbInstalment/FbInstalmentLines``);
# ``DELETE /connectors/{UpdateConnector}/{Object}/@{Key}/{value}`` (OAS
# ``/connectors/FiEntries/FiEntryPar/@Year/{Year}``), nested rows with the full key of the main element
# and the sub-element.
# --------------------------------------------------------------------------------------------------
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
