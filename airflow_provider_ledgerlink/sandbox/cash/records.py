"""CASH's record format, as CASHWeb writes and reads it: no state, no HTTP.

A record is ``<R0101><F0101>000100</F0101>…</R0101>`` (record code, then its fields by field code, in
order); an export wraps the records in ``<cash>`` behind the literal ``Content-type: text/xml ``
prefix of the recorded answers; an import is the same records inside ``<CASH>``; a rejected import's
``err`` is a ``<cash><errors>`` document. Amounts are written with a decimal comma, times as
``YYYY-MM-DD HH:MM:SS`` (Amsterdam wall clock).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from xml.sax.saxutils import escape

EXPORT_PREFIX = 'Content-type: text/xml <?xml version="1.0" encoding="UTF-8"?>'
ERR_PREFIX = '<?xml version="1.0" encoding="UTF-8"?>\n'

Fields = tuple[tuple[str, str], ...]
"""A record's fields: ``(field code, value)`` pairs in the order they are written."""

#: One line of a rejected import: (line number, message, record code, the line's fields).
LineError = tuple[int, str, str, Fields]


def amsterdam_now_text(seconds: float) -> str:
    """Wall-clock seconds as CASH writes times: ``YYYY-MM-DD HH:MM:SS``."""
    return (datetime(1970, 1, 1) + timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


def render_record(code: str, fields: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<F{f}>{escape(v)}</F{f}>" for f, v in fields)
    return f"<R{code}>{body}</R{code}>"


def render_export(records: Iterable[tuple[str, Fields]]) -> str:
    return EXPORT_PREFIX + "<cash>" + "".join(render_record(c, f) for c, f in records) + "</cash>"


def cash_amount(cents: int) -> str:
    """``-126450`` → ``-1264,50``: CASH writes decimals with a comma."""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100},{cents % 100:02d}"


def parse_amount(text: str) -> Decimal | None:
    value = text.strip().replace(" ", "")
    negative = value.endswith("-")
    value = value.rstrip("-")
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return -amount if negative else amount


def is_yymmdd(text: str) -> bool:
    if not re.fullmatch(r"\d{6}", text):
        return False
    try:
        datetime.strptime(text, "%y%m%d")
    except ValueError:
        return False
    return True


def parse_import(text: str) -> list[tuple[str, Fields]]:
    """The records of an import document; ``ValueError`` says what is wrong with it."""
    if "<!doctype" in text[:2048].lower() or "<!entity" in text.lower():
        raise ValueError("DTDs and entity declarations are not allowed")
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as error:
        raise ValueError(f"the XML is not well-formed ({error})") from None
    if root.tag.upper() != "CASH":
        raise ValueError("the root element must be CASH")
    records = []
    for element in root:
        match = re.fullmatch(r"R?(\d{3,4})", element.tag)
        if not match:
            raise ValueError(f"unknown record element <{element.tag}>")
        fields = []
        for child in element:
            field_match = re.fullmatch(r"F(\d{4})", child.tag)
            if not field_match:
                raise ValueError(f"unknown field element <{child.tag}> in <{element.tag}>")
            fields.append((field_match.group(1), (child.text or "").strip()))
        records.append((match.group(1).zfill(4), tuple(fields)))
    if not records:
        raise ValueError("no records to import")
    return records


def error_document(errors: list[LineError]) -> str:
    """The ``err`` of a rejected transaction: one ``<error>`` per refused line."""
    items = "".join(
        f"<error><message>{escape(message)}</message><line>{line}</line>"
        f"<source>{escape(code + '|' + ''.join(f'{f}={v}|' for f, v in fields))}</source></error>"
        for line, message, code, fields in errors
    )
    return f"{ERR_PREFIX}<cash><errors>{items}</errors></cash>\n"
