"""Keep secrets out of httpx's own log lines.

httpx logs every request at INFO (``HTTP Request: PUT https://…?consumerToken=… "HTTP/1.1 200 OK"``).
Inside an Airflow task the secrets masker hides registered values, but the same line also reaches
any other handler (a worker's console, a test's log capture, a log shipper configured before
Airflow's). Vendors that take credentials in the query string (Tripletex's session creation, CloudPOS)
therefore need the line scrubbed where it is made. :func:`redact_httpx_logs` installs a filter on the
``httpx`` logger that rewrites each record with :func:`~airflow_provider_ledgerlink.core.redaction.redact_url`
and :func:`~airflow_provider_ledgerlink.core.redaction.scrub`. It is idempotent.
"""

from __future__ import annotations

import logging
import threading

import httpx

from airflow_provider_ledgerlink.core.redaction import redact_url, scrub

_installed = False
_lock = threading.Lock()


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            args = record.args
            if isinstance(args, tuple) and args:
                record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in args)
            text = record.getMessage()
        except Exception:  # never lose a log line over redaction; drop its arguments instead
            text = str(record.msg)
        record.msg = scrub(text)
        record.args = None
        return True


def redact_httpx_logs() -> None:
    """Install the redacting filter on the ``httpx`` logger (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        logging.getLogger("httpx").addFilter(_RedactingFilter())
        _installed = True
