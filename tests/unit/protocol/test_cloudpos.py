"""CloudPOS's wire protocol without a connection: the V1 function table against CloudPOS's reference,
answer envelopes, error codes, Brussels wall-clock times and the weborder checks made before sending
(``protocol/cloudpos.py``; seed ``/work/shared/seeds/003_822423adf79286b0.txt``)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError
from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    PermissionDeniedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.protocol.cloudpos import (
    BRUSSELS,
    FUNCTIONS,
    CloudPosIpBlockedError,
    error_for_code,
    parse_vendor_time,
    read_envelope,
    validate_weborder,
    weborder_status,
)

# --------------------------------------------------------------------------------------------------
# The function table against CloudPOS's V1 reference (tests/fixtures/cloudpos_reference.json)
# --------------------------------------------------------------------------------------------------
REFERENCE = json.loads((Path(__file__).parents[2] / "fixtures" / "cloudpos_reference.json").read_text())


def test_the_hook_knows_every_function_of_the_reference_and_no_other():
    assert {spec.flag for spec in FUNCTIONS.values()} == set(REFERENCE["functions"])


@pytest.mark.parametrize("flag", sorted(REFERENCE["functions"]))
def test_each_function_takes_the_reference_filters_where_the_reference_puts_them(flag):
    documented = REFERENCE["functions"][flag]
    spec = next(spec for spec in FUNCTIONS.values() if spec.flag == flag)
    assert list(spec.url_filters) == documented.get("url_filters", [])
    assert list(spec.filters) == documented.get("post_filters", [])
    own_codes = {str(code) for code in documented["errors"] if code != "2000"}
    assert {str(code) for code in spec.codes} == own_codes


@pytest.mark.parametrize(
    ("answer", "state", "moment"),
    [
        # The reference (seed 003, get-confirmedweborder): "success" = 1 with "webordertime"; 2001 not confirmed, 2002 weborderid can not
        # be empty, 2003 weborderid does not exist.
        ({"success": 1, "webordertime": "2026-07-01 12:15:00"}, "confirmed", "2026-07-01T10:15:00+00:00"),
        ({"success": 0, "errorcode": 2001, "message": "weborder not confirmed"}, "pending", None),
        ({"success": 0, "errorcode": 2002, "message": "weborderid can not be empty"}, "no_weborderid", None),
        ({"success": 0, "errorcode": 2003, "message": "weborderid does not exist"}, "not_found", None),
    ],
)
def test_get_confirmedweborder_answers_as_the_reference_gives_them(answer, state, moment):
    status = weborder_status("5", read_envelope(answer), "V1 get-confirmedweborder")
    assert status.state == state
    assert status.as_event()["confirmed_time_utc"] == moment


# --------------------------------------------------------------------------------------------------
# Envelopes and codes (no HTTP)
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "records"),
    [
        ({"success": 1, "data": [{"id": 1}]}, [{"id": 1}]),
        ({"success": "1", "products": [{"id": 1}]}, [{"id": 1}]),
        ({"success": 1, "data": {"id": 1}}, [{"id": 1}]),
        ({"success": 1, "data": {"1": {"id": 1}, "2": {"id": 2}}}, [{"id": 1}, {"id": 2}]),
        ([{"id": 1}, {"id": 2}], [{"id": 1}, {"id": 2}]),
        ({"weborderid": 8001}, [{"weborderid": 8001}]),
        ({"success": 1}, []),
        ({"success": 1, "data": None}, []),
    ],
)
def test_success_envelopes_in_every_shape(payload, records):
    envelope = read_envelope(payload, "products")
    assert envelope.code is None
    assert envelope.records == records


@pytest.mark.parametrize(
    "payload",
    [
        {"success": 0, "errorcode": 1002, "message": "Token or name not valid"},
        {"errorcode": "1002", "error": "Token or name not valid"},
        {"error_code": 1002, "message": "Token or name not valid"},
    ],
)
def test_error_envelopes_in_every_shape(payload):
    envelope = read_envelope(payload)
    assert (envelope.code, envelope.message) == (1002, "Token or name not valid")


def test_a_failure_without_a_code_is_not_mistaken_for_success():
    with pytest.raises(ValueError, match="no errorcode"):
        read_envelope({"success": 0, "message": "something"})


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (1001, AuthenticationError),
        (1002, AuthenticationError),
        (1003, BudgetExhaustedError),
        (1004, CloudPosIpBlockedError),
        (1005, PermissionDeniedError),
        (2002, ValidationError),
        (9999, VendorError),
    ],
)
def test_error_codes_map_to_errors_with_the_code_as_reference(code, error_type):
    error = error_for_code(code, "text 'x'", "V1 get-products")
    assert type(error) is error_type or isinstance(error, error_type)
    assert error.reference == f"errorcode {code}"
    assert str(error).startswith("CloudPOS V1 get-products failed")


def test_times_in_messages_are_brussels_wall_clock():
    error = error_for_code(
        1004, "5 bad logins reached, your ip adress is blocked till '2026-11-19 14:30:00'", "V1 get-products"
    )
    assert error.blocked_until == datetime(2026, 11, 19, 13, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        # CloudPOS writes times as Brussels wall clock without an offset: CET in winter, CEST in summer.
        ("2026-11-19 18:30:00", datetime(2026, 11, 19, 17, 30, tzinfo=timezone.utc)),
        ("2026-07-01 12:15:00", datetime(2026, 7, 1, 10, 15, tzinfo=timezone.utc)),
        ("2026-07-01T12:15:00+00:00", datetime(2026, 7, 1, 12, 15, tzinfo=timezone.utc)),
    ],
)
def test_vendor_times_are_brussels_wall_clock_unless_they_carry_an_offset(text, utc):
    moment = parse_vendor_time(text)
    assert moment == utc
    assert moment.tzinfo is not None


@pytest.mark.parametrize("value", [None, "", "tomorrow", "19/11/2026"])
def test_what_is_not_a_time_is_none(value):
    assert parse_vendor_time(value) is None


def test_brussels_is_the_zone_of_cloudpos():
    assert datetime(2026, 1, 15, 12, tzinfo=BRUSSELS).utcoffset().total_seconds() == 3600


# --------------------------------------------------------------------------------------------------
# Weborders refused before sending
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("weborder", "problem"),
    [
        ({}, "weborderdetail must be a non-empty list"),
        ({"weborderdetail": [{"quantity": 1}]}, "line 1 has no productid"),
        ({"weborderdetail": [{"productid": 1, "quantity": 0}]}, "quantity above 0"),
        ({"weborderdetail": [{"productid": 1, "quantity": 1, "sub1 id": 4}]}, "write sub1id"),
        ({"delivery": 7, "weborderdetail": [{"productid": 1, "quantity": 1}]}, "delivery must be"),
        ("not json", "not JSON"),
    ],
)
def test_a_bad_weborder_is_refused_before_sending(weborder, problem):
    with pytest.raises(ValidationError, match=problem):
        validate_weborder(weborder)
