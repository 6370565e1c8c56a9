"""Rotating a connection's credential safely: what every vendor's strategy shares.

The rules, whatever the vendor:

* **verify before replace**: a new credential is used for one cheap authenticated call first; only
  a credential that worked is written to the store. A failed verification changes nothing;
* **nothing secret leaves**: the result (logged, returned to XCom) holds metadata only: which
  connection, what was done, when, until when the new credential is valid;
* **dry run**: verify, report, change nothing.

The *staged promotion* for vendors whose credentials no API rotates (Alasco, CASH, CloudPOS) lives
here: an administrator creates the new credential at the vendor and puts it in the store's staging
slot; :func:`promote_staged` verifies it through the vendor's own ``check_connection`` (so for
CloudPOS the call counts against the daily budget and passes the bad-login guard), promotes it and
clears the slot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.credentials import now_utc, original_connection
from airflow_provider_ledgerlink.core.errors import AuthenticationError, ConfigurationError, LedgerLinkError

if TYPE_CHECKING:
    from airflow_provider_ledgerlink.core.hook import LedgerLinkHook


class NothingStagedError(ConfigurationError):
    """The staging slot is empty: there is nothing to promote."""


@dataclass
class RotationResult:
    """What a rotation did, without any secret: safe to log and to return as the task's XCom."""

    conn_id: str
    vendor: str
    strategy: str
    status: str
    store: str
    dry_run: bool = False
    at: str = field(default_factory=lambda: now_utc().isoformat())
    expires_at: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def verification_failed(
    hook: LedgerLinkHook, what: str, error: LedgerLinkError, hint: str
) -> AuthenticationError:
    """The error for a new credential that did not work; says that nothing was changed."""
    return AuthenticationError(
        hook.vendor,
        f"verify the {what} of connection '{hook.conn_id}'",
        f"the {what} did not work ({type(error).__name__}: {error.message}); nothing was changed, the "
        "connection keeps its current credential",
        hint=hint,
        reference=error.reference,
        status_code=error.http_status,
    )


def promote_staged(hook: LedgerLinkHook, *, dry_run: bool = False, forget: bool = True) -> RotationResult:
    """Verify the credential in the staging slot with one cheap call, then promote it.

    ``forget``: make ``hook`` read the connection again (closing its clients) afterwards.
    Raises :class:`NothingStagedError` when the slot is empty and an
    :class:`~airflow_provider_ledgerlink.core.errors.AuthenticationError` (nothing changed) when the
    staged credential does not work.
    """
    store = hook.credential_store
    connection = original_connection(hook.raw_connection)
    slot = store.staging_slot(hook.conn_id)
    staged = store.staged(hook.conn_id, connection)
    result = RotationResult(hook.conn_id, hook.vendor, "staged promotion", "", store.label, dry_run)
    if not staged:
        raise NothingStagedError(
            hook.vendor,
            f"promote the staged credential of connection '{hook.conn_id}'",
            "nothing is staged",
            hint=f"Create the new credential at {hook.vendor} and put it in {slot}",
        )
    current = hook.connection
    if staged.get("password") == current.password and staged.get("login", current.login) == current.login:
        result.status = "already current"
        result.detail = "the staged credential is the one in use"
        if not dry_run:
            store.clear_staged(hook.conn_id, connection, staged)
            result.detail += "; the staging slot was cleared"
        return result
    probe = hook.trial(staged)
    try:
        answer = probe.check_connection()
    except LedgerLinkError as error:
        raise verification_failed(
            hook,
            "staged credential",
            error,
            f"Check the value in {slot} (copied whole, for this account?) and stage it again",
        ) from None
    finally:
        probe.close()
    result.detail = answer
    if dry_run:
        result.status = "verified (dry run)"
        return result
    store.promote(hook.conn_id, connection, staged)
    if forget:
        hook.forget_connection()
    result.status = "promoted"
    return result
