"""Errors say who, what, why and what to do, never leak a secret, and survive pickling.

``redact_url`` makes URLs safe to log, including CloudPOS's query-string token.
"""

from __future__ import annotations

import pickle
import uuid
from datetime import datetime, timezone

import pytest

from airflow_provider_ledgerlink.core.compat import AirflowException
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ConfigurationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    RateLimitedError,
    ServiceUnavailableError,
    TransportError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.redaction import REDACTED, redact_url, register_secret, scrub


def unique_secret() -> str:
    secret = f"tok-{uuid.uuid4().hex}"
    register_secret(secret, airflow_mask=False)
    return secret


# ------------------------------------------------------------------------------------------------
# Messages
# ------------------------------------------------------------------------------------------------
def test_the_message_names_vendor_operation_and_what_went_wrong() -> None:
    error = VendorError("Tripletex", "GET /ledger/voucher", "internal error")

    assert str(error) == "Tripletex GET /ledger/voucher failed: internal error"


def test_the_message_carries_http_status_reference_and_hint() -> None:
    error = VendorError(
        "AFAS Profit",
        "GetConnector Profit_Transactions",
        "the query took too long",
        hint="Use a smaller page size",
        reference="ABC-123",
        status_code=500,
    )

    assert str(error) == (
        "AFAS Profit GetConnector Profit_Transactions failed: the query took too long (HTTP 500) "
        "(vendor reference: ABC-123). Use a smaller page size"
    )


def test_the_parts_of_the_message_are_attributes_too() -> None:
    error = NotFoundError("Alasco", "GET /invoices/7", "gone", reference="r-1", status_code=404, hint="h")

    assert (error.vendor, error.operation, error.message) == ("Alasco", "GET /invoices/7", "gone")
    assert (error.reference, error.http_status, error.hint) == ("r-1", 404, "h")


def test_a_class_default_hint_is_used_when_none_is_given() -> None:
    error = AuthenticationError("CASH", "login", "refused")

    assert error.hint == AuthenticationError.default_hint
    assert str(error).endswith(". Check the credentials in the Airflow connection")


def test_an_explicit_empty_hint_replaces_the_default() -> None:
    error = AuthenticationError("CASH", "login", "refused", hint="")

    assert str(error) == "CASH login failed: refused"


def test_every_error_is_an_airflow_exception() -> None:
    assert isinstance(TransportError("Acme", "op", "reset"), AirflowException)
    assert issubclass(ServiceUnavailableError, RateLimitedError)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (TransportError("Acme", "op", "reset"), True),
        (RateLimitedError("Acme", "op", "slow down"), True),
        (ServiceUnavailableError("Acme", "op", "maintenance"), True),
        (VendorError("Acme", "op", "oops", retryable=True), True),
        (VendorError("Acme", "op", "oops"), False),
        (AuthenticationError("Acme", "op", "no"), False),
        (ValidationError("Acme", "op", "bad"), False),
        (AmbiguousWriteError("Acme", "op", "lost"), False),
        (QuotaExhaustedError("Acme", "op", "spent"), False),
    ],
)
def test_which_errors_may_succeed_when_sent_again(error: LedgerLinkError, retryable: bool) -> None:
    assert error.retryable is retryable


# ------------------------------------------------------------------------------------------------
# Secrets
# ------------------------------------------------------------------------------------------------
def test_a_registered_secret_is_scrubbed_from_message_and_hint() -> None:
    secret = unique_secret()
    error = AuthenticationError(
        "Tripletex", "create session", f"token {secret} expired", hint=f"renew {secret}"
    )

    assert secret not in str(error)
    assert error.message == f"token {REDACTED} expired"
    assert error.hint == f"renew {REDACTED}"


def test_a_longer_secret_containing_a_shorter_one_is_scrubbed_whole() -> None:
    short = unique_secret()
    long = short + "-suffix"
    register_secret(long, airflow_mask=False)

    assert scrub(f"a {long} b") == f"a {REDACTED} b"


def test_very_short_values_are_not_treated_as_secrets() -> None:
    register_secret("0", airflow_mask=False)
    register_secret("", airflow_mask=False)
    register_secret(None, airflow_mask=False)

    assert scrub("page 0 of 10") == "page 0 of 10"


def test_registering_a_secret_outside_a_task_does_not_fail() -> None:
    secret = f"tok-{uuid.uuid4().hex}"
    register_secret(secret)  # tells Airflow's masker too, where there is one

    assert scrub(secret) == REDACTED


def test_text_with_regex_characters_can_be_a_secret() -> None:
    secret = f"a+b*c(d)[{uuid.uuid4().hex}]"
    register_secret(secret, airflow_mask=False)

    assert scrub(f"x{secret}y") == f"x{REDACTED}y"


# ------------------------------------------------------------------------------------------------
# Pickling: errors cross process boundaries (triggerer, executors)
# ------------------------------------------------------------------------------------------------
def round_trip(error: Exception) -> Exception:
    return pickle.loads(pickle.dumps(error))


@pytest.mark.parametrize(
    "error",
    [
        ConfigurationError("Acme", "reading connection 'acme'", "no host", hint="set the host"),
        AuthenticationError("Acme", "login", "refused", status_code=401),
        PermissionDeniedError("Acme", "read", "forbidden", status_code=403),
        NotFoundError("Acme", "read", "missing", status_code=404, reference="r9"),
        ValidationError("Acme", "write", "bad field", status_code=422),
        TransportError("Acme", "read", "reset"),
        AmbiguousWriteError("Acme", "write", "answer lost", hint="check first"),
    ],
)
def test_an_error_pickles_with_its_class_and_message(error: LedgerLinkError) -> None:
    copy = round_trip(error)

    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert (copy.vendor, copy.operation, copy.message, copy.hint) == (
        error.vendor,
        error.operation,
        error.message,
        error.hint,
    )
    assert (copy.reference, copy.http_status) == (error.reference, error.http_status)


def test_a_rate_limit_error_keeps_retry_after_through_pickling() -> None:
    copy = round_trip(RateLimitedError("Acme", "read", "slow down", retry_after=12.5, status_code=429))

    assert isinstance(copy, RateLimitedError)
    assert copy.retry_after == 12.5
    assert copy.http_status == 429


def test_a_service_unavailable_error_keeps_its_class_and_retry_after_through_pickling() -> None:
    copy = round_trip(ServiceUnavailableError("Acme", "read", "maintenance", retry_after=7200.0))

    assert type(copy) is ServiceUnavailableError
    assert copy.retry_after == 7200.0


def test_a_quota_error_keeps_reset_at_through_pickling() -> None:
    reset_at = datetime(2026, 7, 2, 0, 0, tzinfo=timezone.utc)
    copy = round_trip(QuotaExhaustedError("CloudPOS", "get-products", "500 calls used", reset_at=reset_at))

    assert isinstance(copy, QuotaExhaustedError)
    assert copy.reset_at == reset_at


@pytest.mark.parametrize("retryable", [True, False])
def test_a_vendor_error_keeps_retryable_through_pickling(retryable: bool) -> None:
    copy = round_trip(VendorError("Acme", "read", "oops", retryable=retryable, reference="ref-1"))

    assert copy.retryable is retryable
    assert copy.reference == "ref-1"


def test_a_pickled_error_still_has_no_secret() -> None:
    secret = unique_secret()
    data = pickle.dumps(AuthenticationError("Acme", "login", f"bad token {secret}"))

    assert secret.encode() not in data


# ------------------------------------------------------------------------------------------------
# redact_url
# ------------------------------------------------------------------------------------------------
def test_a_token_in_the_query_string_is_hidden() -> None:
    url = "https://api.cloudpos.example/?licname=shop1&token=abc123def&get-products"

    assert redact_url(url) == "https://api.cloudpos.example/?licname=shop1&token=***&get-products"


@pytest.mark.parametrize("name", ["token", "password", "apikey", "api_key", "secret", "otp", "Token"])
def test_every_credential_parameter_is_hidden(name: str) -> None:
    assert redact_url(f"https://h/x?{name}=hunter22&page=2") == f"https://h/x?{name}=***&page=2"


def test_basic_auth_user_info_is_hidden() -> None:
    assert redact_url("https://user:pa55word@host.example:8443/path") == "https://***@host.example:8443/path"


def test_bare_flags_and_ordinary_parameters_keep_their_exact_form() -> None:
    url = "https://h/?licname=shop1&get-products&from=2026-01-01&flag"

    assert redact_url(url) == url


def test_a_url_without_credentials_is_unchanged() -> None:
    url = "https://12345.rest.afas.online/ProfitRestServices/connectors/X?skip=0&take=100"

    assert redact_url(url) == url


def test_a_relative_url_is_redacted_too() -> None:
    assert redact_url("/api?token=abc123def&get-orders") == "/api?token=***&get-orders"


def test_a_registered_secret_elsewhere_in_a_url_is_scrubbed() -> None:
    secret = unique_secret()

    assert secret not in redact_url(f"https://h/sessions/{secret}/whoami")
