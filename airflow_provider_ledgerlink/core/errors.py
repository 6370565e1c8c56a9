"""One error hierarchy that every vendor maps into.

Every message names the vendor, the operation and what to do about it, and carries the vendor's own
error reference when it sent one (AFAS ``profitLogReference``, Tripletex ``requestId``). Messages are
scrubbed of registered secrets before they are built, so an exception is always safe to log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_provider_ledgerlink.core.redaction import scrub, scrub_value

try:
    import airflow  # noqa: F401
except ImportError:  # Airflow is not installed: the vendor protocol modules are used on their own
    AirflowException = Exception
else:
    from airflow_provider_ledgerlink.core.compat import AirflowException  # type: ignore[assignment]


class LedgerLinkError(AirflowException):
    """Base class of every error LedgerLink raises.

    :param vendor: the vendor's display name (``AFAS Profit``, ``Tripletex`` …).
    :param operation: what we were doing (``GetConnector Profit_Transactions``).
    :param message: what went wrong, in the vendor's words where it gave any.
    :param hint: what the user can do about it.
    :param reference: the vendor's own error reference, for their support desk.
    :param status_code: the HTTP status, when there was one.
    """

    #: Whether the same request may succeed when sent again later.
    retryable = False
    #: A default hint, used when the raiser gives none.
    default_hint = ""

    def __init__(
        self,
        vendor: str,
        operation: str,
        message: str,
        *,
        hint: str | None = None,
        reference: str | None = None,
        status_code: int | None = None,
        details: Any = None,
    ) -> None:
        self.vendor = vendor
        self.operation = scrub(operation)
        self.message = scrub(message)
        self.hint = scrub(hint if hint is not None else self.default_hint)
        # The vendor's reference and details are the vendor's words: an echoing vendor can put a
        # secret there as well.
        self.reference = scrub(reference) if reference else reference
        self.http_status = status_code
        self.details = scrub_value(details)  # a vendor's error body may echo the request
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.vendor} {self.operation} failed: {self.message}"
        if self.http_status is not None and f"HTTP {self.http_status}" not in self.message:
            text += f" (HTTP {self.http_status})"
        if self.reference:
            # Round brackets: `airflow connections test` prints messages as rich markup, where a
            # square-bracketed text is a style tag and vanishes.
            text += f" (vendor reference: {self.reference})"
        if self.hint:
            text += f". {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions cross process boundaries (triggerer, executors): keep them picklable.
        return (
            _rebuild,
            (
                type(self),
                self.vendor,
                self.operation,
                self.message,
                {
                    "hint": self.hint,
                    "reference": self.reference,
                    "status_code": self.http_status,
                    "details": self.details,
                    **self._extra_state(),
                },
            ),
        )

    def _extra_state(self) -> dict[str, Any]:
        return {}


def _rebuild(cls: type[LedgerLinkError], vendor: str, operation: str, message: str, kwargs: dict) -> Any:
    return cls(vendor, operation, message, **kwargs)


class ConfigurationError(LedgerLinkError):
    """The Airflow connection or the operator arguments are unusable as given."""


class AuthenticationError(LedgerLinkError):
    """The vendor did not accept the credentials. Never retried."""

    default_hint = "Check the credentials in the Airflow connection"


class PermissionDeniedError(LedgerLinkError):
    """The credentials are valid but may not do this."""


class NotFoundError(LedgerLinkError):
    """The resource does not exist (or is not visible to these credentials)."""


class ValidationError(LedgerLinkError):
    """The vendor (or LedgerLink, before sending) rejected the input."""


class RateLimitedError(LedgerLinkError):
    """The vendor asked us to slow down; ``retry_after`` says for how long (seconds), when known.

    :param refused: the vendor documents that a request answered this way was not processed, so a
        write may be sent again after the wait (AFAS's maintenance 503, Tripletex's 429). Without it
        a write answered this way may have been applied: ``core/http.py`` turns it into an
        :class:`AmbiguousWriteError`. Reads are retried either way.
    """

    retryable = True

    def __init__(
        self, *args: Any, retry_after: float | None = None, refused: bool = False, **kwargs: Any
    ) -> None:
        self.retry_after = retry_after
        self.refused = refused
        super().__init__(*args, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after, "refused": self.refused}


class ServiceUnavailableError(RateLimitedError):
    """The vendor is down for maintenance or overloaded (503); ``retry_after`` when it said."""


class QuotaExhaustedError(LedgerLinkError):
    """A request budget is spent; ``reset_at`` says when the next request is possible."""

    def __init__(self, *args: Any, reset_at: datetime | None = None, **kwargs: Any) -> None:
        self.reset_at = reset_at
        super().__init__(*args, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"reset_at": self.reset_at}


class BudgetExhaustedError(QuotaExhaustedError):
    """The day's request budget is spent (or the vendor said so); ``reset_at`` is the next chance.

    Kept by ``core/budget.py``, which offers this class under its own name too.
    """

    default_hint = (
        "Wait for the budget to reset, spread the work over more days, or ask the vendor for a "
        "higher limit and raise it in the Airflow connection"
    )


class VendorError(LedgerLinkError):
    """The vendor reported an error of its own (usually a 5xx with a reference).

    :param retryable: the same request may succeed later.
    :param refused: the vendor's answer is a verdict on the request (it was processed and not
        applied), as opposed to a failure that leaves it open what happened. A write answered with a
        5xx that is not a verdict is an :class:`AmbiguousWriteError` (see ``core/http.py``).
    """

    def __init__(self, *args: Any, retryable: bool = False, refused: bool = False, **kwargs: Any) -> None:
        self.retryable = retryable
        self.refused = refused
        super().__init__(*args, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"retryable": self.retryable, "refused": self.refused}


class TransportError(LedgerLinkError):
    """The network failed us (connection refused or reset, timeout, a truncated body)."""

    retryable = True


class AmbiguousWriteError(LedgerLinkError):
    """A write may or may not have been applied: the answer never arrived.

    Raised instead of re-sending a non-idempotent request. The hint tells the user how to check.
    """


class ConcurrentWriteError(LedgerLinkError):
    """Another attempt committed output into the same place first; this attempt published nothing."""


class EndlessPagingError(LedgerLinkError):
    """The vendor kept answering pages that repeat or go past its own total; nothing was committed."""
