"""Secrets in Python's repr (httpcore's DEBUG lines print headers as bytes), and in the vendor's own
fields of an error (its reference and details)."""

from __future__ import annotations

import pytest

from airflow_provider_ledgerlink.core.errors import VendorError
from airflow_provider_ledgerlink.core.redaction import encoded_forms, register_secret, scrub

SECRETS = ["qu'ote\"both-9f3a", "back\\slash-7c21", "caf\u00e9-n\u00f8n-ascii-4b8e", "tab\there-51d0"]


@pytest.mark.parametrize("secret", SECRETS)
def test_repr_of_str_and_bytes_is_scrubbed(secret: str) -> None:
    register_secret(secret, airflow_mask=False)
    for text in (
        repr(secret),
        repr(secret.encode("utf-8")),
        repr([(b"authorization", f"Bearer {secret}".encode())]),
        repr({"token": secret}),
    ):
        assert "***" in scrub(text), text
        for form in encoded_forms(secret):
            assert form not in scrub(text), (text, form)


def test_bytes_repr_with_an_escaped_quote_is_scrubbed() -> None:
    secret = "Bearer-a'b\"c-secret"
    register_secret(secret, airflow_mask=False)
    line = f"send_request_headers.started request=<Request [b'GET']> headers=[(b'Authorization', {secret.encode()!r})]"
    assert "\\'" in line
    assert "c-secret" not in scrub(line) and "Bearer-a" not in scrub(line)


def test_an_error_scrubs_the_vendors_reference_operation_and_details() -> None:
    secret = "ref-secret-8d1e<&>"
    register_secret(secret, airflow_mask=False)
    error = VendorError(
        "AFAS Profit",
        f"GET /x?token={secret}",
        "boom",
        reference=f"ref {secret}",
        details={"echo": [secret, {"h": secret}]},
    )
    for text in (
        str(error),
        error.reference or "",
        error.operation,
        repr(error.details),
        repr(error.__reduce__()),
    ):
        assert secret not in text and "***" in text, text
