"""The CASH hook's pure functions: typed values, the hardened streaming export parser, building and
checking imports, the per-line error document, and the incremental selections from a window."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.hooks.cash import (
    DEFAULT_WSDL,
    ERROR,
    FIELDS,
    PENDING,
    SUCCESS,
    ImportExpectation,
    ReadBack,
    UnsafeXmlError,
    build_import,
    changed_within_days,
    compare_read_back,
    export_command,
    find_status_operation,
    format_field,
    iter_export_rows,
    map_response_code,
    parse_cash_date,
    parse_cash_decimal,
    parse_error_document,
    periods_of_window,
    read_back_transaction,
    readable_row,
    strip_export_prefix,
    typed_value,
    wsdl_url_from_host,
)

BILLION_LAUGHS = (
    'Content-type: text/xml <?xml version="1.0"?>'
    '<!DOCTYPE cash [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    "<cash><R0101><F0103>&d;</F0103></R0101></cash>"
)
EXTERNAL_ENTITY = (
    'Content-type: text/xml <?xml version="1.0"?>'
    '<!DOCTYPE cash [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    "<cash><R0101><F0103>&secret;</F0103></R0101></cash>"
)


def balanced_entry(document: int = 1, amount: str = "121.00") -> list[dict]:
    common = {"booking_date": date(2026, 11, 19), "journal": "MM", "document_number": document}
    return [
        {**common, "ledger_account": "1100", "amount": Decimal(amount), "description": "Kassa"},
        {**common, "ledger_account": "8000", "amount": -Decimal(amount), "description": "Omzet"},
    ]


# ------------------------------------------------------------------------------------------------
# Typed values
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("261119", date(2026, 11, 19)),
        ("991231", date(1999, 12, 31)),
        ("06-12-2021", date(2021, 12, 6)),
        ("2026-11-19", date(2026, 11, 19)),
        ("000000", None),
        ("261332", None),
        ("not a date", None),
    ],
)
def test_cash_dates_in_every_form_seen(text: str, expected: date | None) -> None:
    assert parse_cash_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1264,50", Decimal("1264.50")),
        ("-1264,50", Decimal("-1264.50")),
        ("1.264,50", Decimal("1264.50")),
        ("1264.50", Decimal("1264.50")),
        ("1264,50-", Decimal("-1264.50")),
        ("", None),
        ("abc", None),
    ],
)
def test_cash_decimals_with_a_comma_a_point_or_a_trailing_minus(text: str, expected: Decimal | None) -> None:
    assert parse_cash_decimal(text) == expected


def test_typed_values_per_format() -> None:
    assert typed_value(FIELDS["0101"], "000100") == 100
    assert typed_value(FIELDS["0302"], "261119") == "2026-11-19"
    assert typed_value(FIELDS["0301"], "2611") == "2026-11"
    assert typed_value(FIELDS["0307"], "-1264,50") == Decimal("-1264.50")
    assert typed_value(FIELDS["0201"], " 8000 ") == "8000"
    assert typed_value(FIELDS["0101"], "") is None
    assert typed_value(FIELDS["0101"], "12AB") is None  # the raw F0101 keeps the value


def test_a_readable_row_keeps_cash_fields_and_adds_typed_names() -> None:
    row = readable_row("0301", {"F0302": "261119", "F0307": "10,00", "F0306": "Omzet", "F9999": "x"})

    assert row == {
        "record": "0301",
        "F0302": "261119",
        "F0307": "10,00",
        "F0306": "Omzet",
        "F9999": "x",
        "booking_date": "2026-11-19",
        "amount": Decimal("10.00"),
        "description": "Omzet",
    }


# ------------------------------------------------------------------------------------------------
# The export parser
# ------------------------------------------------------------------------------------------------
def test_the_content_type_prefix_is_stripped_and_its_absence_tolerated() -> None:
    assert strip_export_prefix('Content-type: text/xml <?xml version="1.0"?><cash></cash>') == (
        '<?xml version="1.0"?><cash></cash>'
    )
    assert strip_export_prefix("<cash></cash>") == "<cash></cash>"
    assert strip_export_prefix(None) == ""


def test_the_recorded_export_parses_into_rows_and_the_empty_one_into_none(
    cash_recording: Callable[..., Path],
) -> None:
    import json

    recorded = json.loads(cash_recording("delivery-address", "get.json").read_text())
    empty = json.loads(cash_recording("delivery-address", "empty.json").read_text())

    rows = list(iter_export_rows(recorded["exportResult"]))

    assert [record for record, _ in rows] == ["2229", "2229"]
    assert rows[0][1]["F0101"] == "000100"
    assert rows[1][1]["F2228"] == "ABCDEF"
    assert list(iter_export_rows(empty["exportResult"])) == []


def test_rows_are_handed_over_while_the_text_is_still_being_parsed() -> None:
    body = "".join(f"<R0101><F0101>{i:06d}</F0101></R0101>" for i in range(5000))
    text = f"Content-type: text/xml <cash>{body}</cash>"
    rows = iter_export_rows(text, chunk_chars=1024)

    first = next(rows)
    frame = rows.gi_frame  # the generator is suspended after the first chunk, not at the end
    assert frame is not None and frame.f_locals["offset"] < len(text) // 10
    assert first == ("0101", {"F0101": "000000"})
    assert sum(1 for _ in rows) == 4999


@pytest.mark.parametrize(
    "hostile", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"]
)
def test_hostile_xml_in_an_export_is_refused_unread(hostile: str) -> None:
    with pytest.raises(UnsafeXmlError) as caught:
        list(iter_export_rows(hostile))

    message = str(caught.value)
    assert "refused unread" in message
    assert "root:" not in message  # nothing of /etc/passwd
    assert not caught.value.retryable


def test_an_export_over_the_size_limit_is_refused() -> None:
    with pytest.raises(UnsafeXmlError, match="over the limit"):
        list(iter_export_rows("<cash>" + "<R0101><F0101>1</F0101></R0101>" * 100 + "</cash>", max_bytes=500))


def test_an_html_page_instead_of_an_export_is_a_clear_vendor_error() -> None:
    with pytest.raises(VendorError, match="not CASH's"):
        list(iter_export_rows("<html><body>Maintenance</body></html>"))


def test_an_error_document_inside_an_export_raises_with_its_messages() -> None:
    text = "<cash><errors><error><message>Record 2260 niet toegestaan</message></error></errors></cash>"
    with pytest.raises(VendorError, match="Record 2260 niet toegestaan"):
        list(iter_export_rows(text))


# ------------------------------------------------------------------------------------------------
# The per-line error document
# ------------------------------------------------------------------------------------------------
def test_the_recorded_error_document_gives_line_message_and_source(
    cash_recording: Callable[..., Path],
) -> None:
    errors = parse_error_document(cash_recording("errors", "cash-errors.xml").read_text())

    assert len(errors) == 1
    assert errors[0]["line"] == 1
    assert errors[0]["message"] == "Ongeldige waarde 0101=123456"
    assert errors[0]["source"].startswith("2229|0101=123456|2228=123456|")
    assert "John Doe" in errors[0]["source"]  # the line break inside the recorded source is folded


def test_hostile_xml_in_an_error_document_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        parse_error_document(BILLION_LAUGHS.removeprefix("Content-type: text/xml "))


# ------------------------------------------------------------------------------------------------
# Building imports
# ------------------------------------------------------------------------------------------------
def test_fields_are_formatted_the_way_cash_reads_them() -> None:
    assert format_field(FIELDS["0303"], 42) == "000042"
    assert format_field(FIELDS["0307"], Decimal("-1264.5")) == "-1264,50"
    assert format_field(FIELDS["0307"], "1264,50") == "1264,50"
    assert format_field(FIELDS["0307"], 12) == "12,00"
    assert format_field(FIELDS["0302"], date(2026, 11, 19)) == "261119"
    assert format_field(FIELDS["0302"], "2026-11-19") == "261119"
    assert format_field(FIELDS["0301"], "2026-11") == "2611"
    assert format_field(FIELDS["0201"], "abc") == "ABC"
    with pytest.raises(ValueError, match="longer than 25"):
        format_field(FIELDS["0306"], "x" * 26)
    with pytest.raises(ValueError, match="more than 2 decimals"):
        format_field(FIELDS["0307"], Decimal("1.005"))


def test_a_balanced_entry_builds_deterministic_xml() -> None:
    payload = build_import("301", balanced_entry())

    assert payload.record_code == "0301"
    assert payload.records == 2
    assert payload.xml == (
        '<?xml version="1.0" encoding="UTF-8"?><CASH>'
        "<R0301><F0201>1100</F0201><F0302>261119</F0302><F0303>000001</F0303><F0306>Kassa</F0306>"
        "<F0307>121,00</F0307><F0901>MM</F0901></R0301>"
        "<R0301><F0201>8000</F0201><F0302>261119</F0302><F0303>000001</F0303><F0306>Omzet</F0306>"
        "<F0307>-121,00</F0307><F0901>MM</F0901></R0301></CASH>"
    )
    assert payload.sha256 == build_import("0301", balanced_entry()).sha256


def test_rows_read_back_from_an_export_can_be_imported_again() -> None:
    exported = [readable_row("0301", {f"F{k}": v for k, v in line.items()}) for line in (
        {"0302": "261119", "0901": "MM", "0303": "000007", "0201": "1100", "0307": "5,00"},
        {"0302": "261119", "0901": "MM", "0303": "000007", "0201": "8000", "0307": "-5,00"},
    )]  # fmt: skip

    assert build_import("0301", exported).records == 2


def test_every_problem_is_listed_and_nothing_is_built() -> None:
    rows = [
        *balanced_entry(1, "100.00")[:1],  # entry 1 does not balance
        {"booking_date": "2026-13-40", "journal": "MM", "document_number": 2, "ledger_account": "1100",
         "amount": "1,00", "description": "x" * 30, "colour": "red"},
        {"journal": "MM", "document_number": 3, "ledger_account": "8000", "amount": "0,00",
         "subadministration": "DEB"},
    ]  # fmt: skip

    with pytest.raises(ValidationError) as caught:
        build_import("0301", rows)

    message = str(caught.value)
    assert "Nothing was sent" in message
    for expected in (
        "row 2: unknown field 'colour'",
        "row 2: F0302",
        "row 2: F0306",
        "row 3: F0302 (booking_date) is required",
        "row 3: a sub-administration line (F0701) needs a relation (F0101) and an invoice number (F0309)",
        "entry MM/000001 does not balance to zero (off by 100.00)",
        "entry MM/000002 does not balance to zero",
    ):
        assert expected in message


def test_an_empty_import_is_refused() -> None:
    with pytest.raises(ValidationError, match="no rows"):
        build_import("0301", [])


# ------------------------------------------------------------------------------------------------
# Response codes, operations, the connection's host
# ------------------------------------------------------------------------------------------------
def test_response_codes_map_to_ledgerlink_errors() -> None:
    assert isinstance(map_response_code(2, "Error during login", "Cash.export"), AuthenticationError)
    assert isinstance(map_response_code(902, "Transaction does not exist", "x"), NotFoundError)
    assert isinstance(map_response_code(903, "Administration", "x"), ConfigurationError)
    refused = map_response_code(800, "Record 2260 is not enabled", "Cash.export")
    assert isinstance(refused, ValidationError)
    assert "Instellen CashWeb API" in str(refused)
    other = map_response_code(5, "invalid token", "Cash.export")
    assert isinstance(other, VendorError)
    assert "(vendor reference: response code 5)" in str(other)


def test_the_status_operation_is_found_under_the_names_cash_has_used() -> None:
    assert (
        find_status_operation(["Cash.export", "Cash.import", "Cash.getTransaction"]) == "Cash.getTransaction"
    )
    assert find_status_operation(["Export", "Import", "GetTransaction"]) == "GetTransaction"
    assert find_status_operation(["Cash.export", "Cash.import"]) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, DEFAULT_WSDL),
        ("", DEFAULT_WSDL),
        ("www.cashweb.nl", "https://www.cashweb.nl/?api/3.0/wsdl"),
        ("https://www.cashweb.nl/", "https://www.cashweb.nl/?api/3.0/wsdl"),
        ("https://www.cashweb.nl/?api/3.0/wsdl", "https://www.cashweb.nl/?api/3.0/wsdl"),
        ("http://127.0.0.1:8765/cash/service.wsdl", "http://127.0.0.1:8765/cash/service.wsdl"),
    ],
)
def test_the_wsdl_address_from_the_connection_host(host: str | None, expected: str) -> None:
    assert wsdl_url_from_host(host) == expected


def test_export_commands() -> None:
    assert export_command("101") == "0101"
    assert export_command("0101", "W|7") == "0101W|7"
    assert export_command("0301", ["T", "2611", "2611"]) == "0301T|2611|2611"
    assert export_command("2229", key="000100") == "2229|000100"
    with pytest.raises(ValidationError):
        export_command("0101", "<x/>")
    with pytest.raises(ValidationError):
        export_command("relations")


def test_changed_within_days_reaches_back_to_the_window_start_in_amsterdam_days() -> None:
    start = datetime(2026, 11, 18, tzinfo=timezone.utc)
    end = datetime(2026, 11, 19, tzinfo=timezone.utc)

    assert changed_within_days(start, now=datetime(2026, 11, 19, 6, tzinfo=timezone.utc), window_end=end) == 2
    assert changed_within_days(start, now=datetime(2026, 11, 25, tzinfo=timezone.utc), window_end=end) == 8
    # A clock behind the data (a test, a backfill of the future) falls back to the window's length.
    assert changed_within_days(start, now=datetime(2025, 1, 1, tzinfo=timezone.utc), window_end=end) == 2


def test_the_booking_periods_a_window_touches() -> None:
    start = datetime(2026, 10, 31, 23, 30, tzinfo=timezone.utc)  # already 1 November in Amsterdam
    end = datetime(2026, 12, 1, tzinfo=timezone.utc)

    assert periods_of_window(start, end) == ("2611", "2612")
    assert periods_of_window(
        datetime(2026, 11, 18, tzinfo=timezone.utc), datetime(2026, 11, 19, tzinfo=timezone.utc)
    ) == (
        "2611",
        "2611",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("261119", date(2026, 11, 19)),  # YYMMDD: CASH's date fields (F0302)
        ("991231", date(1999, 12, 31)),
        ("06-12-2021", date(2021, 12, 6)),  # DD-MM-YYYY: the recorded 3.0 export (F2306)
        ("6-12-21", date(2021, 12, 6)),
        ("20211217", date(2021, 12, 17)),
        ("2021-12-17", date(2021, 12, 17)),
        ("2021-12-15 14:40:33", date(2021, 12, 15)),  # a transaction's creation
        ("0000-00-00 00:00:00", None),  # a transaction's lastUpdate before processing
        ("000000", None),
        ("00-00-0000", None),
        ("31-02-2021", None),
        ("", None),
        ("gisteren", None),
    ],
)
def test_every_date_form_cash_sends_is_read(text: str, expected: date | None) -> None:
    assert parse_cash_date(text) == expected


def test_the_recorded_30_export_dates_are_read(cash_recording: Callable[..., Path]) -> None:
    recorded = json.loads(cash_recording("delivery-address", "get.json").read_text())
    rows = [readable_row(code, fields) for code, fields in iter_export_rows(recorded["exportResult"])]

    assert [row["F2306"] for row in rows] == ["06-12-2021", "17-12-2021"]  # kept as sent
    assert [row["date_2306"] for row in rows] == ["2021-12-06", "2021-12-17"]


# ------------------------------------------------------------------------------------------------
# Reading an import back
# ------------------------------------------------------------------------------------------------
def journal_lines(document: int, amount: str = "121,00", journal: str = "MM") -> list[dict[str, Any]]:
    common = {"booking_date": "2026-11-19", "journal": journal, "document_number": document}
    return [
        {**common, "ledger_account": "1100", "amount": amount},
        {**common, "ledger_account": "8000", "amount": "-" + amount},
    ]


def exported(lines: list[dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    """Journal lines as an export gives them back: ``F``-prefixed fields, CASH's own formats."""
    return [("0301", {f"F{code}": value for code, value in line.items()}) for line in lines]


def test_journal_lines_are_keyed_by_journal_document_number_and_year() -> None:
    payload = build_import("0301", [*journal_lines(1), *journal_lines(2, journal="VK")])

    assert payload.expectation is not None
    assert sorted(payload.expectation.entries) == ["MM/000001/2026", "VK/000002/2026"]
    assert payload.expectation.exports == ("0301T|2611|2611",)
    assert payload.content_key == "R0301 MM/000001/2026,VK/000002/2026"
    assert payload.label == "journal MM document 000001 (2026), journal VK document 000002 (2026)"
    # The key is what is booked, not how it is written: the same entry with another description is
    # the same document.
    described = [{**line, "description": "Kassa"} for line in journal_lines(1)]
    assert build_import("0301", described).content_key == build_import("0301", journal_lines(1)).content_key


def test_a_read_back_tells_booked_pending_and_booked_with_other_lines() -> None:
    payload = build_import("0301", [*journal_lines(1), *journal_lines(2)])
    expectation = payload.expectation
    assert expectation is not None
    ours = [
        {"0301": "2611", "0302": "261119", "0303": "000001", "0901": "MM", "0201": "1100", "0307": "121,00"},
        {"0301": "2611", "0302": "261119", "0303": "1", "0901": "mm", "0201": "8000", "0307": "-121.00"},
    ]
    someone_elses = [
        {"0302": "261119", "0303": "000002", "0901": "MM", "0201": "1100", "0307": "5,00"},
        {"0302": "261119", "0303": "000002", "0901": "MM", "0201": "8000", "0307": "-5,00"},
    ]

    nothing = read_back_transaction("t1", expectation, [])
    half = read_back_transaction("t1", expectation, exported(ours))
    clash = read_back_transaction("t1", expectation, exported(ours + someone_elses))
    both = build_import("0301", journal_lines(1)).expectation
    assert both is not None
    booked = read_back_transaction("t1", both, exported(ours))

    assert nothing.status == PENDING and nothing.read_back["missing"] == ["MM/000001/2026", "MM/000002/2026"]
    assert half.status == PENDING and half.read_back["booked"] == 1
    assert (
        clash.status == ERROR
        and "document 000002 (2026) is in CASH with other lines" in clash.describe_errors()
    )
    assert booked.status == SUCCESS
    assert compare_read_back(both, exported(ours)) == ReadBack(("MM/000001/2026",), (), ())


def test_a_delivery_address_reads_back_from_the_recorded_export(
    cash_recording: Callable[..., Path],
) -> None:
    """CASH's own recorded export of relation 000100's delivery addresses finds "ABCDEF" there."""
    recorded = json.loads(cash_recording("delivery-address", "get.json").read_text())
    payload = build_import("2229", [{"relation_number": "100", "delivery_address_code": "abcdef"}])
    expectation = payload.expectation
    assert expectation is not None and expectation.exports == ("2229|000100",)

    found = read_back_transaction("t", expectation, iter_export_rows(recorded["exportResult"]))

    assert found.status == SUCCESS and found.read_back["booked"] == 1


def test_a_read_back_description_survives_json_and_refuses_garbage() -> None:
    expectation = build_import("0301", journal_lines(1)).expectation
    assert expectation is not None

    assert ImportExpectation.from_dict(json.loads(json.dumps(expectation.as_dict()))) == expectation
    with pytest.raises(ConfigurationError, match="read-back description is not usable"):
        ImportExpectation.from_dict({"record_code": "0301"})


def test_records_without_their_keys_cannot_be_read_back() -> None:
    payload = build_import("0450", [{"F0450": "X"}])

    assert payload.expectation is None
    assert payload.content_key == f"R0450 sha256 {payload.sha256}"
