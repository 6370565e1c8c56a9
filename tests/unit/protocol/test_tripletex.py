"""The Tripletex hook's pure functions: Oslo dates for sessions and windows, change timestamps, the
``fields`` helper, the Basic header, and how Tripletex's error envelope becomes LedgerLink errors."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.hooks.tripletex import (
    OSLO,
    TripletexVersionConflictError,
    basic_authorization,
    format_changed_since,
    last_change,
    map_error,
    oslo_today,
    parse_timestamp,
    session_expiration_date,
    session_expires_at,
    split_dates,
    tripletex_code,
    window_dates,
    with_changes,
)

UTC = timezone.utc


# ------------------------------------------------------------------------------------------------
# Sessions: the Oslo expiry trap
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("now", "oslo_date"),
    [
        (datetime(2026, 11, 19, 12, 0, tzinfo=UTC), date(2026, 11, 19)),
        (datetime(2026, 11, 19, 22, 59, tzinfo=UTC), date(2026, 11, 19)),
        (datetime(2026, 11, 19, 23, 0, tzinfo=UTC), date(2026, 11, 20)),  # winter: UTC+1
        (datetime(2026, 7, 1, 22, 0, tzinfo=UTC), date(2026, 7, 2)),  # summer: UTC+2
    ],
)
def test_today_is_the_date_in_oslo_not_on_the_host(now: datetime, oslo_date: date) -> None:
    assert oslo_today(now) == oslo_date


def test_a_utc_host_late_in_the_day_still_gets_a_session_that_lasts() -> None:
    late = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)  # 00:30 on the 20th in Oslo

    expiration = session_expiration_date(late, days=1)

    # "today + 1" on the UTC host would be the 20th: already today in Oslo, a dead session.
    assert expiration == date(2026, 11, 21)
    assert session_expires_at(expiration) - late > timedelta(hours=23)


@pytest.mark.parametrize("hour", range(24))
def test_every_hour_of_the_day_gives_a_session_of_most_of_a_day_or_more(hour: int) -> None:
    """Two days ahead in Oslo: at least a whole Oslo day remains (23 hours on the night clocks go
    forward), never a session that ends within minutes."""
    now = datetime(2026, 3, 28, hour, 15, tzinfo=UTC)
    expires = session_expires_at(session_expiration_date(now, days=2))
    assert expires - now > timedelta(hours=22)


def test_a_session_ends_at_the_start_of_its_date_in_oslo() -> None:
    assert session_expires_at(date(2026, 11, 21)) == datetime(2026, 11, 20, 23, 0, tzinfo=UTC)
    assert session_expires_at(date(2026, 7, 2)) == datetime(2026, 7, 1, 22, 0, tzinfo=UTC)


def test_a_session_of_less_than_a_day_is_refused() -> None:
    with pytest.raises(ValueError):
        session_expiration_date(datetime.now(UTC), days=0)


def test_the_basic_header_is_company_then_session_token() -> None:
    header = basic_authorization(0, "abc123")
    assert header == "Basic " + base64.b64encode(b"0:abc123").decode()
    assert base64.b64decode(basic_authorization(9100002, "t").split()[1]) == b"9100002:t"


# ------------------------------------------------------------------------------------------------
# Windows
# ------------------------------------------------------------------------------------------------
def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)  # type: ignore[misc]


def test_a_window_on_oslo_midnights_is_exactly_its_days() -> None:
    assert window_dates(oslo(2026, 11, 19), oslo(2026, 11, 20)) == (date(2026, 11, 19), date(2026, 11, 20))
    assert window_dates(oslo(2026, 11, 1), oslo(2026, 12, 1)) == (date(2026, 11, 1), date(2026, 12, 1))


def test_utc_day_windows_give_every_date_to_exactly_one_window() -> None:
    """A UTC-scheduled DAG: each date lands in the window holding its Oslo midnight, none twice."""
    starts = [datetime(2026, 10, 20, tzinfo=UTC) + timedelta(days=n) for n in range(20)]  # crosses DST end
    covered: list[date] = []
    for start in starts:
        day_from, day_to = window_dates(start, start + timedelta(days=1))
        covered += [day_from + timedelta(days=n) for n in range((day_to - day_from).days)]
    assert covered == sorted(set(covered))
    assert covered == [covered[0] + timedelta(days=n) for n in range(len(covered))]


def test_a_window_without_an_oslo_midnight_has_no_dates() -> None:
    day_from, day_to = window_dates(oslo(2026, 11, 19, 8), oslo(2026, 11, 19, 17))
    assert day_from == day_to


def test_naive_window_ends_are_utc() -> None:
    assert window_dates(datetime(2026, 11, 18, 23), datetime(2026, 11, 19, 23)) == (
        date(2026, 11, 19),
        date(2026, 11, 20),
    )


def test_long_windows_are_cut_into_consecutive_pieces() -> None:
    pieces = split_dates(date(2026, 1, 1), date(2026, 3, 15), 31)
    assert pieces == [
        (date(2026, 1, 1), date(2026, 2, 1)),
        (date(2026, 2, 1), date(2026, 3, 4)),
        (date(2026, 3, 4), date(2026, 3, 15)),
    ]
    assert split_dates(date(2026, 1, 1), date(2026, 1, 1), 7) == []
    with pytest.raises(ValueError):
        split_dates(date(2026, 1, 1), date(2026, 1, 2), 0)


# ------------------------------------------------------------------------------------------------
# changedSince and change timestamps
# ------------------------------------------------------------------------------------------------
def test_changed_since_is_sent_as_utc_in_the_documented_datetime_form() -> None:
    assert format_changed_since(oslo(2026, 11, 19)) == "2026-11-18T23:00:00"
    assert format_changed_since(datetime(2026, 11, 19, 6, 30)) == "2026-11-19T06:30:00"


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2025-03-12T15:09:57+01:00", datetime(2025, 3, 12, 14, 9, 57, tzinfo=UTC)),
        ("2025-03-12T15:09:57Z", datetime(2025, 3, 12, 15, 9, 57, tzinfo=UTC)),
        ("2025-03-12T15:09:57", datetime(2025, 3, 12, 14, 9, 57, tzinfo=UTC)),  # Oslo time
        ("2025-07-12T15:09:57.123", datetime(2025, 7, 12, 13, 9, 57, 123000, tzinfo=UTC)),
    ],
)
def test_tripletex_timestamps_in_every_seen_form(text: str, utc: datetime) -> None:
    assert parse_timestamp(text) == utc


def test_garbage_timestamps_are_none() -> None:
    assert parse_timestamp("") is None
    assert parse_timestamp("yesterday") is None


def test_the_last_change_is_the_latest_timestamp() -> None:
    row = {
        "changes": [
            {"timestamp": "2026-11-18T10:00:00+01:00", "changeType": "CREATE"},
            {"timestamp": "2026-11-19T09:00:00+01:00", "changeType": "UPDATE"},
        ]
    }
    assert last_change(row) == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
    assert last_change({"changes": []}) is None
    assert last_change({}) is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (None, "*,changes"),
        ("", "*,changes"),
        ("id,name", "id,name,changes"),
        ("*,changes", "*,changes"),
        ("id,postalAddress(changes)", "id,postalAddress(changes),changes"),
    ],
)
def test_changes_are_added_to_fields_at_the_top_level(fields: str | None, expected: str) -> None:
    assert with_changes(fields) == expected


# ------------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------------
def envelope(status: int, code: int, message: str = "Validering feilet.", **more: object) -> httpx.Response:
    body = {
        "status": status,
        "code": code,
        "message": message,
        "link": "https://www.tripletex.no/tripletex-api-2-0/",
        "developerMessage": None,
        "validationMessages": None,
        "requestId": "e7563c66-b243-440a-a4a0-278fda002eba",
        **more,
    }
    return httpx.Response(
        status, json=body, headers={"x-tlx-request-id": "e7563c66-b243-440a-a4a0-278fda002eba"}
    )


def test_the_request_id_is_the_reference_and_validation_messages_are_named() -> None:
    response = envelope(
        422,
        18000,
        validationMessages=[
            {
                "field": "arg:consumerToken",
                "message": "The consumer token is invalid or does not exist.",
                "path": "arg:consumerToken",
                "rootId": None,
            }
        ],
    )

    error = map_error(response, "create session token")

    assert isinstance(error, ValidationError)
    assert error.reference == "e7563c66-b243-440a-a4a0-278fda002eba"
    assert tripletex_code(error) == 18000
    assert "arg:consumerToken: The consumer token is invalid or does not exist" in str(error)
    assert "Tripletex create session token failed" in str(error)
    assert "e7563c66-b243-440a-a4a0-278fda002eba" in str(error)


def test_a_stale_version_says_so() -> None:
    error = map_error(envelope(409, 8000, "Objektet er endret."), "update customer 7")
    assert isinstance(error, TripletexVersionConflictError)
    assert "changed by someone else" in str(error)


def test_other_conflicts_are_validation_errors() -> None:
    error = map_error(envelope(409, 14000, "Duplikat."), "create")
    assert type(error) is ValidationError


def test_a_result_set_too_large_points_at_the_window() -> None:
    error = map_error(envelope(422, 23000, "Resultatsettet er for stort."), "GET /ledger/posting")
    assert tripletex_code(error) == 23000
    assert "max_window_days" in str(error)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [(401, 3000, AuthenticationError), (403, 9000, PermissionDeniedError), (404, 6000, NotFoundError)],
)
def test_statuses_map_to_their_errors(status: int, code: int, kind: type) -> None:
    assert isinstance(map_error(envelope(status, code, "x"), "op"), kind)


def test_a_429_waits_for_the_reset_header_when_there_is_one() -> None:
    response = envelope(429, 429, "For mange forespørsler.")
    response.headers["X-Rate-Limit-Reset"] = "17"
    error = map_error(response, "GET /customer")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 17


def test_a_429_without_the_reset_header_leaves_the_wait_to_the_backoff() -> None:
    error = map_error(httpx.Response(429), "GET /customer")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after is None


def test_a_500_is_retryable_and_keeps_the_request_id() -> None:
    error = map_error(envelope(500, 1000, "Intern feil."), "GET /customer")
    assert isinstance(error, VendorError)
    assert error.retryable
    assert error.reference == "e7563c66-b243-440a-a4a0-278fda002eba"


def test_an_html_page_is_described_not_dumped() -> None:
    page = httpx.Response(
        502,
        text="<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        headers={"content-type": "text/html", "x-tlx-request-id": "r-1"},
    )
    error = map_error(page, "GET /ledger/posting")
    assert "HTML page" in str(error)
    assert "<html>" not in str(error)
    assert error.reference == "r-1"
