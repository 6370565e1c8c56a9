"""Request bodies of the Alasco writes: multipart forms and their PDF parts, money objects."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_ledgerlink.sandbox.alasco.errors import validation_error
from airflow_provider_ledgerlink.sandbox.server import Request


# ==================================================================================================
# Multipart bodies (the upload endpoints)
# ==================================================================================================
@dataclass
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, FormPart]:
    """The parts of a ``multipart/form-data`` body by field name; raises ``ValueError``."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        raise ValueError("expected a multipart/form-data body")
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: dict[str, FormPart] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part has no header block")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        field_name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if field_name is None:
            raise ValueError("a part has no field name")
        parts[field_name.group(1)] = FormPart(
            field_name.group(1),
            filename.group(1) if filename else None,
            headers.get("content-type"),
            data[:-2] if data.endswith(b"\r\n") else data,
        )
    return parts


_DECIMAL_RE = re.compile(r"[+-]?\d{1,16}(\.\d{0,12})?")


#: Contract attributes the read schema requires as strings (a PATCH may send null for them).
_CONTRACT_TEXTS = ("contract_number", "cost_center", "description")


def _money_body(value: Any, loc: list[str]) -> dict[str, str]:
    if not isinstance(value, dict):
        raise validation_error(loc, "Input should be a valid dictionary", "dict_type", value)
    result = {"currency": str(value.get("currency") or "EUR")}
    for part in ("net", "tax"):
        text = str(value.get(part, "0"))
        if not _DECIMAL_RE.fullmatch(text):
            raise validation_error(
                [*loc, part], "Input should be a valid decimal", "decimal_parsing", value.get(part)
            )
        result[part] = f"{Decimal(text):.12f}"
    return result


def _form(request: Request) -> dict[str, FormPart]:
    try:
        return parse_multipart(request.header("content-type") or "", request.body)
    except ValueError as error:
        raise validation_error(["body"], f"Invalid multipart body: {error}", "value_error") from None


def _pdf_part(parts: Mapping[str, FormPart], name: str) -> FormPart:
    part = parts.get(name)
    if part is None:
        raise validation_error(["body", name], "Field required", "missing")
    if not part.data.startswith(b"%PDF-"):
        raise validation_error(["body", name], "The file must be a valid PDF.", "value_error")
    return part
