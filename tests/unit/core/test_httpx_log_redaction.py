"""httpx's own request log lines are scrubbed of secrets before any handler sees them."""

from __future__ import annotations

import logging
from typing import Any

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


def test_httpcore_and_its_child_loggers_are_filtered_too() -> None:
    """A logger's filter does not see its children's records: each logger httpcore uses has one."""
    from airflow_provider_ledgerlink.core.httpx_logs import LOGGERS

    redact_httpx_logs()

    for name in LOGGERS:
        assert any(isinstance(f, _RedactingFilter) for f in logging.getLogger(name).filters), name
    assert {"httpcore.http11", "httpcore.connection"} <= set(LOGGERS)


def test_secret_parameters_in_plain_text_are_hidden_in_any_case() -> None:
    record = logging.LogRecord(
        "httpcore.http11", logging.DEBUG, __file__, 1,
        "send_request_headers.started request=<Request [b'PUT'] /v2/token/session/:create?consumerToken=c%2B1&EMPLOYEETOKEN=e%3D2&expirationDate=2026-11-23>",
        None, None,
    )  # fmt: skip

    _RedactingFilter().filter(record)

    message = record.getMessage()
    assert "c%2B1" not in message and "e%3D2" not in message
    assert "consumerToken=***" in message and "expirationDate=2026-11-23" in message


def test_creating_any_ledgerlink_hook_installs_the_filter(monkeypatch: Any) -> None:
    from airflow_provider_ledgerlink.core import httpx_logs
    from airflow_provider_ledgerlink.hooks.afas import AfasHook

    installed: list[bool] = []
    monkeypatch.setattr(httpx_logs, "_installed", False)
    monkeypatch.setattr(logging.getLogger("httpx"), "filters", [])
    monkeypatch.setattr(httpx_logs.logging.Logger, "addFilter", lambda self, f: installed.append(True))

    AfasHook("afas_default")

    assert len(installed) == len(httpx_logs.LOGGERS)
