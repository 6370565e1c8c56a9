"""Keeping secrets out of logs, exceptions, XCom and URLs.

Two layers work together:

* Airflow's secrets masker (``mask_secret``) hides every registered value in task logs. Connection
  passwords are registered by Airflow itself; tokens LedgerLink mints at run time (Tripletex sessions,
  AFAS tokens from the one-time-password flow, base64 header values) are registered by
  :func:`register_secret`.
* Exception messages and URLs are built by LedgerLink and scrubbed here before they exist, so they
  are safe even where the masker does not run (a trigger's event payload, a test's ``pytest.raises``,
  a message in XCom).
"""

from __future__ import annotations

import re
import threading
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "***"

# Query parameters that carry credentials in some vendor's API (CloudPOS puts its token there).
SECRET_QUERY_PARAMS = frozenset({"token", "password", "apikey", "api_key", "apitoken", "secret", "otp"})

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Shorter strings would redact ordinary words and numbers.
_MIN_SECRET_LENGTH = 4


def register_secret(value: str | None, *, airflow_mask: bool = True) -> None:
    """Remember ``value`` as secret: scrubbed from our messages and masked in Airflow's task logs."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    global _pattern
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))
    if airflow_mask:
        _mask_in_airflow(value)


def _mask_in_airflow(value: str) -> None:
    try:
        from airflow_provider_ledgerlink.core.compat import mask_secret

        mask_secret(value)
    except Exception:  # outside a task (tests, the sandbox) there may be no masker to tell
        pass


def scrub(text: str | None) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    if not text:
        return text or ""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(REDACTED, text)


def redact_url(url: str) -> str:
    """A URL safe to log: credentials in the user-info part and in secret query parameters hidden."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return scrub(str(url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        query = "&".join(_redact_query_item(item) for item in query.split("&"))
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def _redact_query_item(item: str) -> str:
    # Works on the raw text so bare flags such as CloudPOS's ``&get-products`` keep their form.
    key, sep, _value = item.partition("=")
    if sep and unquote_plus(key).lower() in SECRET_QUERY_PARAMS:
        return f"{key}={REDACTED}"
    return item
