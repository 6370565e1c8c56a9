"""The fast JSON parser gives exactly what the standard library gives, and the same error type."""

from __future__ import annotations

import json

import pytest

from airflow_provider_ledgerlink.core.jsonparse import loads

DOCUMENT = '{"values":[{"id":1,"amount":-1234.5,"name":"Økland Rør AS","ok":true,"none":null,"big":9007199254740993}]}'


@pytest.mark.parametrize("data", [DOCUMENT, DOCUMENT.encode("utf-8")], ids=["text", "bytes"])
def test_the_same_values_as_json_loads(data: str | bytes) -> None:
    assert loads(data) == json.loads(data)


@pytest.mark.parametrize("bad", [b"", b"<html>", b'{"a": 1', b"\xff\xfe"])
def test_what_is_not_json_is_a_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        loads(bad)
