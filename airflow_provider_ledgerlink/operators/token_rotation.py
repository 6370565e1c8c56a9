"""Keeping LedgerLink connections' credentials alive: one operator, the vendor's strategy.

:class:`TokenRotationOperator` picks the strategy from the connection type:

* **Tripletex** (``session rotation``): create a session token with the configured lifetime, verify
  it (``whoAmI``), store it, delete the previous one. Hooks use the stored session until shortly
  before it expires.
* **AFAS** (``one-time password``): ask AFAS to e-mail a code to the connection's ``otp_user_id``,
  obtain the code from a person in Airflow's human-in-the-loop UI (Airflow 3.1+) or from a callable
  (one that reads a mailbox, say), exchange it for a new token, verify the token, store it. The old
  token is deleted in AFAS itself (Profit has no API for it).
* **Alasco, CASH, CloudPOS** (``staged promotion``): verify the credential an administrator put in
  the store's staging slot with one cheap call, promote it, clear the slot. With nothing staged the
  task is skipped (or fails, with ``skip_when_nothing_staged=False``).

Whatever the vendor: a new credential is verified before it replaces the old; a failed verification
changes nothing; ``dry_run`` verifies and reports without changing anything; the return value (XCom)
and the logs hold metadata only. Rotations of one connection must not run at the same time: the
operator defaults to ``max_active_tis_per_dag=1``, and a pool with one slot per connection covers
several DAGs (see the docs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from airflow_provider_ledgerlink.core.compat import (
    AirflowException,
    AirflowSkipException,
    BaseOperator,
    await_human_input,
    human_input_available,
    mask_secret,
)
from airflow_provider_ledgerlink.core.credentials import CredentialStore
from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.hook import LedgerLinkHook, hook_for_connection, xcom_result
from airflow_provider_ledgerlink.core.rotation import NothingStagedError, RotationResult, promote_staged

#: The connection types whose credential no vendor API rotates.
STAGED_TYPES = ("ledgerlink_alasco", "ledgerlink_cash", "ledgerlink_cloudpos")

#: ``otp_source(user_id, context) -> code``: returns the one-time password AFAS e-mailed to user_id.
OtpSource = Callable[[str, Any], str]


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class TokenRotationOperator(BaseOperator):
    """Rotate, renew or promote the credential of one LedgerLink connection (see the module docs).

    :param conn_id: the connection (any LedgerLink type). Templated.
    :param dry_run: verify and report, change nothing (``True``/``"true"``; templated). For AFAS a
        dry run checks the current token and its expiry and requests no code.
    :param credential_store: a store (or its name) instead of the connection's extra ``credential_store``.
    :param session_days: Tripletex: the new session's lifetime in days (default: the hook's, 2).
    :param otp_source: AFAS: ``"hitl"`` to ask a person in Airflow's UI (Airflow 3.1+), or a callable
        ``(user_id, context) -> code``. Default: ``"hitl"`` where available.
    :param otp_timeout: AFAS: how long to wait for the person (default one hour).
    :param skip_when_nothing_staged: staged promotion: skip the task when nothing is staged (the
        default, for daily "promote when staged" runs); ``False`` fails instead.
    :return: metadata only: ``conn_id``, ``vendor``, ``strategy``, ``status``, ``at``, ``expires_at``,
        ``store``, ``dry_run`` and a short ``detail``.
    """

    template_fields: Sequence[str] = ("conn_id", "verify_only")
    ui_color = "#f4e3c1"

    def __init__(
        self,
        *,
        conn_id: str,
        dry_run: bool | str = False,
        credential_store: CredentialStore | str | None = None,
        session_days: int | None = None,
        otp_source: str | OtpSource | None = None,
        otp_timeout: timedelta = timedelta(hours=1),
        skip_when_nothing_staged: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_active_tis_per_dag", 1)
        super().__init__(**kwargs)
        if isinstance(otp_source, str) and otp_source != "hitl":
            raise ValueError("otp_source must be 'hitl' or a callable (user_id, context) -> code")
        self.conn_id = conn_id
        #: ``dry_run`` (``BaseOperator`` has a ``dry_run`` method of its own).
        self.verify_only = dry_run
        self.credential_store = credential_store
        self.session_days = session_days
        self.otp_source = otp_source
        self.otp_timeout = otp_timeout
        self.skip_when_nothing_staged = skip_when_nothing_staged

    # -- the hook of the connection, whatever its vendor -------------------------------------------
    def _hook(self) -> LedgerLinkHook:
        hook = hook_for_connection(self.conn_id, credential_store=self.credential_store)
        if hook.conn_type == "ledgerlink_tripletex" and self.session_days:
            hook.session_days = max(1, int(self.session_days))  # type: ignore[attr-defined]
        return hook

    def _report(self, result: RotationResult) -> dict[str, Any]:
        summary = result.to_dict()
        self.log.info(
            "%s credential of connection '%s': %s (%s%s) in the %s",
            result.vendor,
            result.conn_id,
            result.status,
            result.strategy,
            f", valid until {result.expires_at}" if result.expires_at else "",
            result.store,
        )
        if result.detail:
            self.log.info("%s", result.detail)
        return xcom_result(summary)

    # -- execution --------------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        dry_run = _as_bool(self.verify_only)
        hook = self._hook()
        conn_type = hook.conn_type
        try:
            if conn_type == "ledgerlink_tripletex":
                return self._report(hook.rotate_session(dry_run=dry_run))  # type: ignore[attr-defined]
            if conn_type == "ledgerlink_afas":
                return self._renew_afas(hook, context, dry_run)
            if conn_type in STAGED_TYPES:
                try:
                    return self._report(promote_staged(hook, dry_run=dry_run))
                except NothingStagedError as nothing:
                    if self.skip_when_nothing_staged:
                        raise AirflowSkipException(str(nothing)) from None
                    raise
        finally:
            hook.close()
        raise ConfigurationError(
            "LedgerLink",
            f"rotate the credential of connection '{self.conn_id}'",
            f"connection type {conn_type!r} has no rotation strategy",
        )

    # -- AFAS: the one-time-password flow ---------------------------------------------------------
    def _renew_afas(self, hook: Any, context: Any, dry_run: bool) -> dict[str, Any]:
        if dry_run:
            result = RotationResult(
                self.conn_id, hook.vendor, "one-time password", "", hook.credential_store.label
            )
            result.dry_run = True
            result.detail = hook.check_connection()
            result.expires_at = hook.token_expiry()
            result.status = "current token works (dry run; no code requested)"
            return self._report(result)
        user_id = hook.start_token_renewal()
        source = self.otp_source or ("hitl" if human_input_available() else None)
        if callable(source):
            code = str(source(user_id, context) or "")
            mask_secret(code)
            return self._finish_afas(hook, code)
        if source != "hitl" or not human_input_available():
            raise ConfigurationError(
                "AFAS Profit",
                f"renew the token of connection '{self.conn_id}'",
                "no way to obtain the one-time password",
                hint="Pass otp_source=<callable (user_id, context) -> code>; asking a person in the UI "
                "needs Airflow 3.1 or later",
            )
        self.log.info("AFAS e-mailed a one-time password to %s; waiting for it in the UI", user_id)
        await_human_input(
            self,
            context,
            subject=f"AFAS one-time password for connection '{self.conn_id}'",
            body=(
                f"AFAS sent a one-time password to the e-mail address of user **{user_id}**. Enter it "
                "below to renew the token of this connection. The code works once and only for a short "
                "time; if it expired, clear this task to request a new one."
            ),
            params={"otp": ""},
            timeout=self.otp_timeout,
            method_name="execute_complete",
        )
        raise AirflowException("unreachable: the task waits for the one-time password")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Resume with the person's answer from the human-in-the-loop UI."""
        if "error" in event:
            raise AirflowException(
                f"AFAS Profit: no one-time password was entered for connection '{self.conn_id}' "
                f"({event.get('error_type', 'error')}); nothing was changed. Run the task again to "
                "request a new code"
            )
        code = str((event.get("params_input") or {}).get("otp") or "").strip()
        mask_secret(code)
        hook = self._hook()
        try:
            return self._finish_afas(hook, code)
        finally:
            hook.close()

    def _finish_afas(self, hook: Any, code: str) -> dict[str, Any]:
        return self._report(hook.finish_token_renewal(code))
