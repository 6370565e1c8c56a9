"""A registered secret is scrubbed in every form an echoing server or a library may give it.

Each case encodes the secret the way one real encoder does (the standard library's, httpx's own
query encoding, an XML serializer, a JSON encoder, a Basic or AfasToken header) and embeds it in
surrounding text; the scrubbed text must not contain the secret in that form nor, decoded, at all.
"""

from __future__ import annotations

import base64
import html
import json
import uuid
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote, unquote_plus
from xml.sax.saxutils import escape as xml_escape

import httpx
import pytest

from airflow_provider_ledgerlink.core.redaction import (
    REDACTED,
    encoded_forms,
    register_basic_auth,
    register_secret,
    scrub,
    scrub_exception,
    scrub_value,
)


def hostile_secret() -> str:
    # Characters every encoder treats differently: reserved URL characters, XML specials, a quote,
    # a space, a slash, a non-ASCII letter.
    return f"Pw&<{uuid.uuid4().hex[:8]}>/+ 'é\"%="


def httpx_query(secret: str) -> str:
    return str(httpx.URL("https://api.example.no/v2/token", params={"employeeToken": secret}))


ENCODERS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "url (quote, safe='')": lambda s: quote(s, safe=""),
    "url (quote)": quote,
    "url (quote_plus)": quote_plus,
    "url (lower-case hex)": lambda s: "".join(
        chr(b) if chr(b).isascii() and chr(b).isalnum() else f"%{b:02x}" for b in s.encode("utf-8")
    ),
    "url (httpx query)": httpx_query,
    "xml (saxutils)": xml_escape,
    "xml (numeric references)": lambda s: "".join(f"&#{ord(c)};" if not c.isalnum() else c for c in s),
    "xml (hex references)": lambda s: "".join(f"&#x{ord(c):X};" if not c.isalnum() else c for c in s),
    "html (quote=True)": lambda s: html.escape(s, quote=True),
    "json (ascii)": lambda s: json.dumps({"token": s}),
    "json (utf-8)": lambda s: json.dumps({"token": s}, ensure_ascii=False),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "base64 url-safe": lambda s: base64.urlsafe_b64encode(s.encode()).decode(),
    "basic header": lambda s: "Basic " + base64.b64encode(f"0:{s}".encode()).decode(),
    "basic header, longer user": lambda s: "Basic " + base64.b64encode(f"12345:{s}".encode()).decode(),
    "afas token header": lambda s: (
        "AfasToken "
        + base64.b64encode(f"<token><version>1</version><data>{s}</data></token>".encode()).decode()
    ),
}


@pytest.mark.parametrize("encoding", list(ENCODERS))
def test_a_secret_is_scrubbed_in_every_encoding(encoding: str) -> None:
    secret = hostile_secret()
    register_secret(secret, airflow_mask=False)
    encoded = ENCODERS[encoding](secret)
    text = f"Fault: the request <q>{encoded}</q> was refused"

    scrubbed = scrub(text)

    assert REDACTED in scrubbed
    assert encoded not in scrubbed or encoded == ""
    for decode in (unquote, unquote_plus, html.unescape):
        assert secret not in decode(scrubbed)
    assert scrubbed.startswith("Fault: the request <q>") and scrubbed.endswith("</q> was refused")


def test_a_plain_alphanumeric_token_in_base64_at_every_offset() -> None:
    secret = uuid.uuid4().hex
    register_secret(secret, airflow_mask=False)
    for prefix in ("", "a", "ab", "abc", "0:", "user:"):
        for suffix in ("", "x", "xy"):
            encoded = base64.b64encode(f"{prefix}{secret}{suffix}".encode()).decode()
            assert REDACTED in scrub(f"Authorization: Basic {encoded}"), (prefix, suffix)


def test_unrelated_text_is_left_alone() -> None:
    register_secret(hostile_secret(), airflow_mask=False)
    text = "GET /v2/ledger/voucher?from=0&count=1000 -> 200 OK; Basic MDpzb21ldGhpbmctZWxzZQ=="

    assert scrub(text) == text


def test_short_values_are_not_secrets() -> None:
    register_secret("abc", airflow_mask=False)

    assert scrub("abc abc") == "abc abc"


def test_basic_auth_registers_the_header_value() -> None:
    user, password = "0", f"session-{uuid.uuid4().hex}"
    register_basic_auth(user, password, airflow_mask=False)
    header = base64.b64encode(f"{user}:{password}".encode()).decode()

    assert scrub(f"Authorization: Basic {header}") == f"Authorization: Basic {REDACTED}"


def test_encoded_forms_are_literal_strings_for_airflows_masker() -> None:
    secret = "a&b<c d"
    forms = encoded_forms(secret)

    assert {secret, "a%26b%3Cc%20d", "a%26b%3Cc+d", "a&amp;b&lt;c d"} <= set(forms)


def test_scrub_value_cleans_nested_payloads() -> None:
    secret = hostile_secret()
    register_secret(secret, airflow_mask=False)
    payload = {"status": "error", "message": f"echo {quote(secret)}", "items": [secret, (1, secret)]}

    cleaned = scrub_value(payload)

    assert cleaned == {"status": "error", "message": f"echo {REDACTED}", "items": [REDACTED, (1, REDACTED)]}
    assert payload["items"][0] == secret  # the original is not changed


def test_scrub_exception_cleans_the_whole_chain() -> None:
    secret = hostile_secret()
    register_secret(secret, airflow_mask=False)

    class Fault(Exception):
        def __init__(self, message: str) -> None:
            super().__init__(message)
            self.message = message

    try:
        try:
            raise Fault(f"<faultstring>{xml_escape(secret)}</faultstring>")
        except Fault as inner:
            raise RuntimeError(f"wrapped: {quote_plus(secret)}") from inner
    except RuntimeError as outer:
        error = scrub_exception(outer)

    assert REDACTED in str(error)
    cause = error.__cause__
    assert isinstance(cause, Fault)
    assert xml_escape(secret) not in str(cause) and xml_escape(secret) not in cause.message
