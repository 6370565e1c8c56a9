"""The Alasco hook's pure parts: filters and their chunking, query strings, flat rows, money, the
error mapping and the date slices. No network."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.hooks.alasco import (
    Filter,
    Slice,
    build_query,
    flatten_resource,
    format_filter_value,
    format_money,
    make_filter,
    map_error,
    normalize_filters,
    normalize_include,
    open_slices,
    parse_document,
    plan_queries,
    related_id,
    resource_path,
    slice_filters,
    slice_owner,
    split_range,
)

UTC = timezone.utc
ID = "1aae03bc-96d8-47b6-9a8b-07f190400e62"


# --------------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------------
def test_filters_accept_a_mapping_tuples_dicts_and_filter_objects():
    by_mapping = normalize_filters(
        {"date_created.greater_than_equal": date(2026, 11, 1), "filter[status.in]": ["ORDERED", "DRAFT"]}
    )
    by_tuples = normalize_filters(
        [("date_created", ">=", date(2026, 11, 1)), ("status", "in", "ORDERED,DRAFT")]
    )
    by_dicts = normalize_filters(
        [
            {"attribute": "date_created", "operation": "gte", "value": "2026-11-01"},
            {"attribute": "status", "operation": "in", "value": ["ORDERED", "DRAFT"]},
        ]
    )
    expected = [
        Filter("date_created", "greater_than_equal", ("2026-11-01",)),
        Filter("status", "in", ("ORDERED", "DRAFT")),
    ]

    assert by_mapping == by_tuples == by_dicts == expected
    assert normalize_filters(expected) == expected


def test_money_attributes_keep_their_net_or_tax_part():
    (condition,) = normalize_filters({"unaudited_amount.net.greater_than_equal": "1000.00"})

    assert condition.attribute == "unaudited_amount.net"
    assert condition.operation == "greater_than_equal"
    assert condition.key == "filter[unaudited_amount.net.greater_than_equal]"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 11, 19, 1, 2, 3, tzinfo=UTC), "2026-11-19T01:02:03Z"),
        (
            datetime(2026, 11, 19, 2, 2, 3, 500, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-19T01:02:03.000500Z",
        ),
        (datetime(2026, 11, 19, 1, 2, 3), "2026-11-19T01:02:03Z"),  # naive means UTC
        (date(2026, 11, 19), "2026-11-19"),
        (True, "true"),
        (None, "null"),
        (Decimal("1000.10"), "1000.10"),
        (7, "7"),
    ],
)
def test_filter_values_are_formatted_the_way_alasco_reads_them(value, text):
    assert format_filter_value(value) == text


def test_a_float_filter_value_is_refused_so_money_stays_exact():
    with pytest.raises(ValueError, match="float"):
        make_filter("unaudited_amount.net", "greater_than_equal", 1000.1)


@pytest.mark.parametrize(
    ("attribute", "operation", "value", "message"),
    [
        ("status", "between_ish", "x", "unknown filter operation"),
        ("status; drop", "in", "x", "not a filter attribute"),
        ("name", "exact", ["a", "b"], "exactly one value"),
        ("date_created", "range", ["2026-01-01"], "two values"),
        ("id", "in", [], "at least one value"),
        ("name", "in", ["a,b", "c"], "contains a comma"),
    ],
)
def test_bad_filters_are_refused_before_anything_is_sent(attribute, operation, value, message):
    with pytest.raises(ValueError, match=message):
        make_filter(attribute, operation, value)


def test_a_filter_key_without_an_operation_is_explained():
    with pytest.raises(ValueError, match="names no operation"):
        normalize_filters({"property": ID})


def test_in_lists_drop_duplicates():
    assert make_filter("id", "in", ["a", "b", "a"]).values == ("a", "b")


def test_long_in_lists_are_split_into_disjoint_requests_that_cover_every_value():
    ids = [f"id-{n:03d}" for n in range(120)]
    states = make_filter("status", "in", ["A", "B", "C"])
    plans = plan_queries([make_filter("contract", "in", ids), states], chunk_size=50)

    assert len(plans) == 3
    chunks = [plan[0].values for plan in plans]
    assert [len(chunk) for chunk in chunks] == [50, 50, 20]
    assert [value for chunk in chunks for value in chunk] == ids  # each once, in order
    assert all(plan[1] == states for plan in plans)  # short lists stay whole


def test_two_long_in_lists_give_every_combination_of_their_chunks():
    plans = plan_queries(
        [make_filter("a", "in", [str(n) for n in range(4)]), make_filter("b", "in", ["x", "y", "z"])],
        chunk_size=2,
    )

    assert len(plans) == 4
    combos = {(plan[0].values, plan[1].values) for plan in plans}
    assert combos == {
        (("0", "1"), ("x", "y")),
        (("0", "1"), ("z",)),
        (("2", "3"), ("x", "y")),
        (("2", "3"), ("z",)),
    }


def test_no_filters_is_one_plain_request():
    assert plan_queries([], chunk_size=50) == [[]]


def test_the_query_string_encodes_brackets_and_values_but_keeps_separating_commas():
    query = build_query(
        [
            make_filter("name", "contains", "Hunsrück Mitte"),
            make_filter("status", "in", ["ORDERED", "DRAFT"]),
        ],
        ["contract", "contract.contractor"],
    )

    assert query == (
        "filter%5Bname.contains%5D=Hunsr%C3%BCck%20Mitte"
        "&filter%5Bstatus.in%5D=ORDERED,DRAFT"
        "&include=contract,contract.contractor"
    )


def test_a_comma_inside_a_single_value_is_encoded():
    assert (
        make_filter("name", "exact", "Müller, Bau").encoded() == "filter%5Bname.exact%5D=M%C3%BCller%2C%20Bau"
    )


def test_include_paths_are_checked():
    assert normalize_include("contract, contract.contractor,contract") == ["contract", "contract.contractor"]
    with pytest.raises(ValueError, match="relationship path"):
        normalize_include(["contract&x=1"])


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        (("invoices",), "/invoices/"),
        (("/reporting/contracts/",), "/reporting/contracts/"),
        (("invoices", ID.upper()), f"/invoices/{ID}/"),
    ],
)
def test_paths_always_end_with_a_slash(parts, path):
    assert resource_path(*parts) == path


@pytest.mark.parametrize(("resource", "ids"), [("invoices", ("not-a-uuid",)), ("../admin", ()), ("", ())])
def test_bad_paths_and_ids_are_refused(resource, ids):
    with pytest.raises(ValueError):
        resource_path(resource, *ids)


# --------------------------------------------------------------------------------------------------
# Documents and flat rows
# --------------------------------------------------------------------------------------------------
def test_documents_are_parsed_with_exact_decimals():
    response = httpx.Response(200, content=b'{"data": [{"attributes": {"weighting_factor": 0.1, "n": 3}}]}')

    attributes = parse_document(response, "list")["data"][0]["attributes"]

    assert attributes["weighting_factor"] == Decimal("0.1")
    assert isinstance(attributes["weighting_factor"], Decimal)
    assert attributes["n"] == 3


def test_an_html_page_is_not_taken_for_a_document():
    response = httpx.Response(
        200, content=b"<html><body>Wartung</body></html>", headers={"content-type": "text/html"}
    )

    with pytest.raises(VendorError, match="not JSON"):
        parse_document(response, "list invoices")


def test_flat_rows_spread_money_and_add_relationship_ids():
    resource = {
        "id": ID,
        "type": "BUDGET_SHIFT",
        "attributes": {
            "amount": {"currency": "EUR", "net": "1000.000000000000", "tax": "190.000000000000"},
            "project": "11111111-1111-4111-8111-111111111111",
            "children": ["a", "b"],
            "reason": "Umschichtung",
        },
        "relationships": {
            "project": {
                "links": {
                    "related": "https://api.alasco.de/fincon/v1/projects/11111111-1111-4111-8111-111111111111/"
                }
            },
            "target_contract_unit": {
                "links": {"related": f"https://api.alasco.de/fincon/v1/contract_units/{ID}/"}
            },
            "documents": {"links": {"related": f"https://api.alasco.de/fincon/v1/invoices/{ID}/documents/"}},
            "contract": {"data": {"id": "c1", "type": "CONTRACT"}},
            "tags": {"data": [{"id": "t1", "type": "TAG"}, {"id": "t2", "type": "TAG"}]},
        },
    }

    row = flatten_resource(resource)

    assert row == {
        "id": ID,
        "type": "BUDGET_SHIFT",
        "amount_currency": "EUR",
        "amount_net": "1000.000000000000",
        "amount_tax": "190.000000000000",
        "project": "11111111-1111-4111-8111-111111111111",  # the attribute, not a second column
        "children": ["a", "b"],
        "reason": "Umschichtung",
        "target_contract_unit_id": ID,
        "contract_id": "c1",
        "tags_id": ["t1", "t2"],
    }


def test_related_ids_of_to_many_links_are_none():
    assert related_id({"links": {"related": f"https://x/invoices/{ID}/documents/"}}) is None
    assert related_id({"data": None}) is None
    assert related_id("nonsense") is None


# --------------------------------------------------------------------------------------------------
# Money
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1190.00", "1190.00"),
        (Decimal("0.10"), "0.10"),
        (1190, "1190"),
        ("123.123456789012", "123.123456789012"),
    ],
)
def test_amounts_are_sent_as_exact_decimal_strings(value, text):
    assert format_money(value) == text


@pytest.mark.parametrize("value", [1190.0, True, "12,5", "NaN", "1.1234567890123"])
def test_amounts_that_cannot_be_exact_are_refused(value):
    with pytest.raises(ValueError):
        format_money(value)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
def _response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    request = httpx.Request("GET", "https://api.alasco.de/fincon/v1/invoices/")
    request.extensions["ledgerlink_scope"] = "https://api.alasco.de/fincon/v1/"
    return httpx.Response(status, content=content, headers=headers, request=request)


def test_fastapi_validation_errors_name_the_field_and_the_problem():
    body = {
        "detail": [
            {
                "loc": ["query", "filter[foo.exact]"],
                "msg": "Filtering on 'foo' is not supported",
                "type": "value_error",
            }
        ]
    }

    error = map_error(_response(422, body, {"x-request-id": "req-1"}), "list invoices")

    assert isinstance(error, ValidationError)
    assert "query.filter[foo.exact]: Filtering on 'foo' is not supported" in str(error)
    assert "Alasco list invoices failed" in str(error)
    assert error.reference == "req-1"
    assert not error.retryable


def test_jsonapi_errors_are_read_with_title_detail_and_source():
    body = {
        "errors": [
            {
                "status": "400",
                "title": "Bad Request",
                "detail": "Invalid cursor",
                "source": {"parameter": "cursor[position]"},
            }
        ]
    }

    error = map_error(_response(400, body), "list invoices")

    assert isinstance(error, ValidationError)
    assert "Bad Request - Invalid cursor (parameter cursor[position])" in str(error)


@pytest.mark.parametrize(
    ("status", "cls", "words"),
    [
        (401, AuthenticationError, "Integrationen"),
        (403, PermissionDeniedError, "Public API"),
        (404, NotFoundError, "not found"),
        (429, RateLimitedError, "slow down"),
        (503, ServiceUnavailableError, "unavailable"),
    ],
)
def test_undocumented_statuses_get_a_clear_error_even_without_a_body(status, cls, words):
    error = map_error(_response(status, headers={"Retry-After": "7"}), "list invoices")

    assert isinstance(error, cls)
    assert words.lower() in str(error).lower()
    if isinstance(error, RateLimitedError):
        assert error.retry_after == 7
        assert error.retryable


def test_a_503_to_a_write_is_no_verdict():
    """Alasco documents no 503: on a write it may come after the write was applied, so it is no
    documented refusal (core's rule turns it into AmbiguousWriteError, see
    tests/unit/core/test_write_refusals.py); a read is retried as usual."""
    request = httpx.Request("POST", "https://api.alasco.de/fincon/v1/projects/x/submit-invoice/")
    request.extensions["ledgerlink_scope"] = "https://api.alasco.de/fincon/v1/"

    error = map_error(httpx.Response(503, request=request), "submit invoice")

    assert isinstance(error, ServiceUnavailableError) and not error.refused
    assert "unavailable" in str(error)


def test_an_auth_error_is_never_retryable():
    assert not map_error(_response(401, {"errors": [{"title": "Unauthorized"}]}), "x").retryable


def test_an_html_error_page_is_described_not_dumped():
    page = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

    error = map_error(_response(502, page, {"content-type": "text/html"}), "list invoices")

    assert isinstance(error, VendorError)
    assert error.retryable
    assert "HTML page" in str(error)
    assert "nginx" not in str(error)


def test_a_refusal_by_the_document_storage_is_told_apart_from_the_api():
    request = httpx.Request("GET", "https://alasco-files.s3.eu-central-1.amazonaws.com/doc?X-Amz-Signature=x")
    request.extensions["ledgerlink_scope"] = "https://api.alasco.de/fincon/v1/"
    response = httpx.Response(403, content=b"<Error><Code>AccessDenied</Code></Error>", request=request)

    error = map_error(response, "download document")

    assert isinstance(error, VendorError)
    assert "document storage refused" in str(error)
    assert "expired" in str(error)


# --------------------------------------------------------------------------------------------------
# Slices of a date attribute
# --------------------------------------------------------------------------------------------------
START, END = datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC)


def test_a_window_splits_into_adjacent_equal_slices():
    parts = split_range(START, END, 4)

    assert [p.start for p in parts] == [START + timedelta(hours=6 * n) for n in range(4)]
    assert [p.end for p in parts[:-1]] == [p.start for p in parts[1:]]
    assert parts[-1].end == END


def test_a_full_read_is_covered_by_open_ended_slices():
    parts = open_slices(START, END, 4)

    assert parts[0] == Slice(None, START)
    assert parts[-1] == Slice(END, None)
    assert [p.end for p in parts[:-1]] == [p.start for p in parts[1:]]
    assert open_slices(START, END, 1) == [Slice(None, None)]


def test_datetime_slices_filter_both_ends_and_the_owner_drops_the_end():
    part = Slice(START, END)
    filters = slice_filters("date_approved", part)
    owns = slice_owner("date_approved", part)

    assert [(f.operation, f.values) for f in filters] == [
        ("greater_than_equal", ("2026-11-18T00:00:00Z",)),
        ("less_than_equal", ("2026-11-19T00:00:00Z",)),
    ]

    def at(text):
        return {"attributes": {"date_approved": text}}

    assert owns(at("2026-11-18T00:00:00Z"))  # the start belongs to the slice
    assert owns(at("2026-11-18T23:59:59.999999Z"))
    assert not owns(at("2026-11-19T00:00:00.000000Z"))  # the end belongs to the next one
    assert not owns(at("2026-11-17T23:59:59+00:00"))
    assert owns(at("2026-11-18T01:00:00+01:00"))  # offsets are honoured
    assert owns({"attributes": {}})  # no value: Alasco selected it, keep it


def test_date_slices_are_whole_days_with_the_end_day_excluded():
    filters = slice_filters("date_posted", Slice(START, END), date_only=True)

    assert [(f.operation, f.values) for f in filters] == [
        ("greater_than_equal", ("2026-11-18",)),
        ("less_than_equal", ("2026-11-18",)),
    ]
    odd = slice_filters(
        "date_posted", Slice(START + timedelta(hours=1), END + timedelta(hours=1)), date_only=True
    )
    assert [f.values for f in odd] == [("2026-11-19",), ("2026-11-19",)]


def test_a_document_with_errors_and_no_data_is_an_error_even_with_200():
    body = {"data": None, "errors": [{"status": "500", "title": "Internal", "detail": "reporting not ready"}]}

    with pytest.raises(VendorError, match="Internal - reporting not ready"):
        parse_document(httpx.Response(200, content=json.dumps(body).encode()), "list reporting/projects")
