"""Keep secrets out of httpx's and httpcore's own log lines.

httpx logs every request at INFO (``HTTP Request: PUT https://…?consumerToken=… "HTTP/1.1 200 OK"``),
and httpcore traces at DEBUG. Inside an Airflow task the secrets masker hides registered values, but
the same lines also reach any other handler (a worker's or scheduler's console, a test's log capture, a
log shipper configured before Airflow's), and they are made outside tasks too. Vendors that take
credentials in the query string (Tripletex's session creation, CloudPOS) therefore need each line
scrubbed where it is made. :func:`redact_httpx_logs` installs a filter on the ``httpx`` and
``httpcore`` loggers and their children (a logger's filter does not see its children's records) that
rewrites each record: every URL argument with
:func:`~airflow_provider_ledgerlink.core.redaction.redact_url`, then the whole text with
:func:`~airflow_provider_ledgerlink.core.redaction.scrub` (registered secrets, in every encoding) and
with the secret query parameters of
:data:`~airflow_provider_ledgerlink.core.redaction.SECRET_QUERY_PARAMS` hidden wherever they appear.
It is generic (every vendor), idempotent, and installed whenever a LedgerLink hook is created.
"""

from __future__ import annotations

import logging
import re
import threading

import httpx

from airflow_provider_ledgerlink.core.redaction import REDACTED, SECRET_QUERY_PARAMS, redact_url, scrub

__all__ = ["LOGGERS", "redact_httpx_logs", "redact_secret_params"]

#: The loggers httpx and httpcore write to (httpcore logs under its module names).
LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)

_installed = False
_lock = threading.Lock()
_PARAM = re.compile(
    r"(?P<key>(?:^|(?<=[?&;\s'\"(]))(?:"
    + "|".join(sorted(map(re.escape, SECRET_QUERY_PARAMS), key=len, reverse=True))
    + r")=)(?P<value>[^&\s'\"#)>]+)",
    re.IGNORECASE,
)


def redact_secret_params(text: str) -> str:
    """``text`` with the value of every secret query parameter (``consumerToken=…``) hidden."""
    return _PARAM.sub(lambda m: f"{m.group('key')}{REDACTED}", text)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            args = record.args
            if isinstance(args, tuple) and args:
                record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in args)
            text = record.getMessage()
        except Exception:  # never lose a log line over redaction; drop its arguments instead
            text = str(record.msg)
        record.msg = redact_secret_params(scrub(text))
        record.args = None
        return True


def redact_httpx_logs() -> None:
    """Install the redacting filter on the httpx and httpcore loggers (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        redacting = _RedactingFilter()
        for name in LOGGERS:
            logging.getLogger(name).addFilter(redacting)
        _installed = True
