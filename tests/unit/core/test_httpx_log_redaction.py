"""httpx's own request log lines are scrubbed of secrets before any handler sees them."""

from __future__ import annotations

import logging

import httpx

from airflow_provider_ledgerlink.core.httpx_logs import _RedactingFilter, redact_httpx_logs
from airflow_provider_ledgerlink.core.redaction import register_secret


def httpx_record(url: str) -> logging.LogRecord:
    """A record exactly as httpx makes it for every request."""
    return logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s %d %s"',
        ("PUT", httpx.URL(url), "HTTP/1.1", 200, "OK"), None,
    )  # fmt: skip


def test_registered_secrets_in_the_query_string_are_scrubbed() -> None:
    register_secret("consumer-secret-4711", airflow_mask=False)
    record = httpx_record(
        "https://tripletex.no/v2/token/session/:create?consumerToken=consumer-secret-4711&expirationDate=2026-11-23"
    )

    assert _RedactingFilter().filter(record)

    message = record.getMessage()
    assert "consumer-secret-4711" not in message
    assert "expirationDate=2026-11-23" in message
    assert message.startswith("HTTP Request: PUT https://tripletex.no/v2/token/session/:create?")


def test_credential_query_parameters_are_hidden_even_when_not_registered() -> None:
    record = httpx_record("https://pos.example/api?licname=bistro&token=never-registered-1&get-products")

    _RedactingFilter().filter(record)

    assert "never-registered-1" not in record.getMessage()
    assert "get-products" in record.getMessage()


def test_installing_twice_adds_one_filter() -> None:
    redact_httpx_logs()
    redact_httpx_logs()

    filters = [f for f in logging.getLogger("httpx").filters if isinstance(f, _RedactingFilter)]
    assert len(filters) == 1
