"""Credential health: does a LedgerLink connection still work, and when does its credential end?

:class:`CredentialHealthOperator` makes the connection's own ``test_connection`` call (one cheap
authenticated request) and fails when it does not work, so the usual task-failure alerts fire. It
then looks for credentials that end soon and reports them as warnings, through ``on_warning`` (a
notifier hook-in) and the task log:

* Tripletex: the stored session's expiry, and the employee token's expiry date when the connection
  records it (extra ``employee_token_expires_on``: Tripletex shows it when the token is made; its API
  does not return it);
* AFAS: ``tokenExpiry`` from the metainfo (AFAS documents no meaning; ``0`` or empty is read as "no
  expiry");
* Alasco, CASH, CloudPOS: the age of the credential promoted last, and a credential left staged but
  not promoted.

The return value (XCom) is metadata only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from airflow_provider_ledgerlink.core.compat import AirflowException, BaseOperator
from airflow_provider_ledgerlink.core.credentials import connection_fingerprint, now_utc, original_connection
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook, hook_for_connection
from airflow_provider_ledgerlink.operators.token_rotation import STAGED_TYPES

#: ``on_warning(context, report)``: called when the report holds warnings.
WarningCallback = Callable[[Any, dict[str, Any]], None]


def parse_moment(value: Any) -> datetime | None:
    """An ISO date or datetime (naive means UTC); ``None`` for empty, ``0`` or unreadable values."""
    text = str(value or "").strip()
    if text in ("", "0"):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(text[:10])
        except ValueError:
            return None
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class CredentialHealthOperator(BaseOperator):
    """Test one LedgerLink connection and warn about its credential ending soon.

    :param conn_id: the connection (any LedgerLink type). Templated.
    :param warn_within: warn when a credential ends within this time (default 14 days).
    :param max_credential_age: warn when a promoted credential is older than this (default 365 days;
        ``None``: never).
    :param on_warning: called as ``on_warning(context, report)`` when there are warnings; e.g.
        ``lambda context, report: SlackNotifier(text=...)(context)``.
    :return: ``conn_id``, ``vendor``, ``ok``, ``checked_at``, ``detail``, ``expiries`` (what → when)
        and ``warnings``; never a secret.
    """

    template_fields: Sequence[str] = ("conn_id",)
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        conn_id: str,
        warn_within: timedelta = timedelta(days=14),
        max_credential_age: timedelta | None = timedelta(days=365),
        on_warning: WarningCallback | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.warn_within = warn_within
        self.max_credential_age = max_credential_age
        self.on_warning = on_warning

    def execute(self, context: Any) -> dict[str, Any]:
        hook = hook_for_connection(self.conn_id)
        conn_type = hook.conn_type
        try:
            ok, detail = hook.test_connection()
            if not ok:
                raise AirflowException(f"{hook.vendor} connection '{self.conn_id}' does not work: {detail}")
            report: dict[str, Any] = {
                "conn_id": self.conn_id,
                "vendor": hook.vendor,
                "ok": True,
                "checked_at": now_utc().isoformat(),
                "detail": detail,
                "expiries": {},
                "warnings": [],
            }
            self._inspect(conn_type, hook, report)
        finally:
            hook.close()
        self.log.info("%s connection '%s' works: %s", hook.vendor, self.conn_id, detail)
        for what, when in report["expiries"].items():
            self.log.info("%s: %s", what, when)
        for warning in report["warnings"]:
            self.log.warning("%s", warning)
        if report["warnings"] and self.on_warning is not None:
            self.on_warning(context, report)
        return report

    # -- what ends when ---------------------------------------------------------------------------
    def _expiry(self, report: dict[str, Any], what: str, when: datetime | None) -> None:
        if when is None:
            return
        report["expiries"][what] = when.isoformat()
        left = when - now_utc()
        if left <= self.warn_within:
            state = "ended" if left.total_seconds() <= 0 else f"ends in {left.days} days"
            report["warnings"].append(
                f"{report['vendor']} connection '{self.conn_id}': the {what} {state} ({when.isoformat()})"
            )

    def _inspect(self, conn_type: str, hook: LedgerLinkHook, report: dict[str, Any]) -> None:
        store = hook.credential_store
        stored = store.load(self.conn_id)
        if conn_type == "ledgerlink_tripletex":
            # Sessions last days and hooks renew them on their own: reported, never a warning.
            session_end = parse_moment(stored.get("expires_at"))
            if session_end is not None:
                report["expiries"]["session token"] = session_end.isoformat()
            self._expiry(report, "employee token", parse_moment(hook.extra("employee_token_expires_on")))
        elif conn_type == "ledgerlink_afas":
            self._expiry(report, "user token", parse_moment(hook.token_expiry()))  # type: ignore[attr-defined]
        elif conn_type in STAGED_TYPES:
            current = stored.get("based_on") == connection_fingerprint(
                original_connection(hook.raw_connection)
            )
            promoted = parse_moment(stored.get("promoted_at")) if current else None
            if promoted is not None:
                report["expiries"]["credential promoted at"] = promoted.isoformat()
                age = now_utc() - promoted
                if self.max_credential_age is not None and age > self.max_credential_age:
                    report["warnings"].append(
                        f"{report['vendor']} connection '{self.conn_id}': the credential was promoted "
                        f"{age.days} days ago; consider rotating it"
                    )
            if store.staged(self.conn_id, original_connection(hook.raw_connection)):
                report["warnings"].append(
                    f"{report['vendor']} connection '{self.conn_id}': a credential is staged in "
                    f"{store.staging_slot(self.conn_id)} but not promoted; run the token rotation"
                )
