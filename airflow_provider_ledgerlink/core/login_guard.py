"""Refusing to log in again with credentials that just failed, across a whole deployment.

Some vendors punish wrong credentials harder than with an error: CloudPOS blocks the caller's IP
address for 30 minutes after 5 bad logins, which takes every integration of the restaurant down. A
DAG with a mistyped token would get there within minutes: several tasks, each retried, each trying
again. :class:`LoginGuard` keeps one shared row per account (``ledgerlink_login_guard_<key>``) and
applies these rules before every request:

* **after a failed login**, requests with the same credentials are refused at once, without
  contacting the vendor, until the credentials are changed in Airflow (the guard compares a
  fingerprint) or, when a ``cooldown`` is configured, until it has passed (then one attempt is
  allowed; each further failure doubles the wait);
* **after** ``max_failures`` **failed logins in a row** (any credentials), everything is refused until
  someone resets the guard (:meth:`reset`, or delete the Variable) — a mistake that keeps being
  repeated never reaches the vendor's own block;
* **when the vendor blocks** (CloudPOS 1004: "your IP is blocked till …"), every request waits for
  the end of the block as a refusal with that time;
* **credentials not yet known to work** are tried by one holder at a time; the others wait for the
  verdict. Electing that holder takes two steps:

  1. on one machine, an exclusive ``flock`` on a lock file per account in the machine's private
     state directory (:mod:`.host_state`, ``$LEDGERLINK_STATE_DIR``). The kernel grants it to one
     process at a time, atomically, and takes it back when the holder's process dies;
  2. across machines, the holder that has the lock writes an intent row, lists the intents, and goes
     ahead only if it finds no other live one. The same write-then-read argument as :mod:`.budget`
     shows two holders can never both go ahead (listing needs Airflow 3.3 in tasks; before that,
     holders on *different* machines starting at the same moment may each try once).

  The elected holder then reads the verdict row once more before it sends: a holder that read "no
  verdict" just before the previous attempt wrote "failed" and withdrew its intent would otherwise
  send the same failing credentials a second time.

The fingerprint is a truncated SHA-256 of the credentials with a fixed prefix, never the credentials.
A request racing a revocation (credentials that worked a moment ago) can still fail once per holder
in flight; the first failure stops all later ones.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import time as _time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from airflow_provider_ledgerlink.core.budget import parse_stored_time, state_slug
from airflow_provider_ledgerlink.core.compat import to_thread
from airflow_provider_ledgerlink.core.errors import AuthenticationError
from airflow_provider_ledgerlink.core.host_state import StateDirError, private_state_dir
from airflow_provider_ledgerlink.core.shared_state import SharedState

log = logging.getLogger(__name__)

__all__ = ["LoginGuard", "LoginRefusedError", "credentials_fingerprint"]


class LoginRefusedError(AuthenticationError):
    """LedgerLink refused to send a request, so as not to add a failed login at the vendor."""

    def __init__(self, *args: Any, retry_at: datetime | None = None, **kwargs: Any) -> None:
        self.retry_at = retry_at
        super().__init__(*args, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"retry_at": self.retry_at}


def credentials_fingerprint(*parts: str | None) -> str:
    """A short one-way fingerprint of credentials: tells "changed" from "the same" and nothing else."""
    material = "\x00".join(p or "" for p in parts)
    return hashlib.sha256(f"ledgerlink-login-guard\x00{material}".encode()).hexdigest()[:16]


class LoginGuard:
    """The shared "do not try these credentials again" rule for one account.

    :param key: the account (``cloudpos:<host>:<licence>``); never a secret.
    :param state: where the row lives (Airflow Variables in a deployment).
    :param holder: who is asking (one id per task instance).
    :param vendor: display name, for messages.
    :param cooldown: after a failure, allow one new attempt with the same credentials this much
        later (doubling each time); ``None``: only after the credentials change.
    :param max_failures: failed logins in a row after which nothing is sent until :meth:`reset`.
    :param probe_wait: how long a holder waits for another holder that is trying new credentials.
    :param lock_dir: where this machine's lock files live (default: the private state directory).
    """

    prefix = "ledgerlink_login_guard"
    #: An intent older than this belongs to a holder that died mid-attempt and is ignored.
    probe_ttl = timedelta(minutes=2)

    def __init__(
        self,
        key: str,
        *,
        state: SharedState,
        holder: str,
        vendor: str = "",
        cooldown: timedelta | None = None,
        max_failures: int = 4,
        probe_wait: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = _time.sleep,
        lock_dir: str | None = None,
    ) -> None:
        self.key = key
        self.state = state
        self.holder = holder
        self.vendor = vendor or "LedgerLink"
        self.cooldown = cooldown
        self.max_failures = max(1, int(max_failures))
        self.probe_wait = probe_wait
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._sleep = sleep
        self.slug = state_slug(key)
        self._probing: str | None = None
        self._known_good: str | None = None
        self.lock_dir = lock_dir
        self._lock_file: IO[bytes] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lock_file"] = None  # a lock belongs to the process that took it
        return state

    @property
    def row_key(self) -> str:
        return f"{self.prefix}_{self.slug}"

    @property
    def probe_prefix(self) -> str:
        return f"{self.prefix}_probe_{self.slug}_"

    def now(self) -> datetime:
        return self._clock()

    # -- before a request ---------------------------------------------------------------------------
    def check(self, fingerprint: str) -> None:
        """Return if a request with these credentials may go out; raise :class:`LoginRefusedError` if not."""
        deadline = self.now() + self.probe_wait
        while True:
            row = self.state.get_json(self.row_key) or {}
            self._refuse_if_blocked(row, fingerprint)
            if fingerprint in (row.get("verified"), self._probing):
                return
            if self._try_probe(fingerprint):
                return
            if self.now() >= deadline:
                raise self._refused(
                    "another task has been checking these credentials for too long",
                    "Try again in a few minutes",
                )
            self._sleep(random.uniform(0.5, 1.5))  # wait for the other holder's verdict

    def _refuse_if_blocked(self, row: dict[str, Any], fingerprint: str) -> None:
        now = self.now()
        blocked_until = parse_stored_time(row.get("blocked_until"))
        if blocked_until is not None and blocked_until > now:
            raise self._refused(
                f"the vendor blocked access until {blocked_until.isoformat()}: "
                f"{row.get('blocked_reason') or 'too many failed logins'}",
                "Nothing is sent until then. Check every system that uses these credentials from this "
                "address, and correct the Airflow connection",
                retry_at=blocked_until,
            )
        failures = int(row.get("failures") or 0)
        if failures >= self.max_failures:
            raise self._refused(
                f"{failures} logins in a row failed (last: {row.get('message') or 'rejected'}); "
                "nothing more is sent so the vendor does not block this address",
                f"Correct the credentials in the Airflow connection, then reset the guard: delete the "
                f"Airflow Variable '{self.row_key}'",
            )
        if failures and row.get("failed") == fingerprint:
            retry_at = parse_stored_time(row.get("retry_at"))
            if retry_at is None or retry_at > now:
                when = f"until {retry_at.isoformat()} or " if retry_at else ""
                raise self._refused(
                    f"these credentials failed to log in at {row.get('failed_at')} "
                    f"({row.get('message') or 'rejected'}); no further attempt is made with them "
                    f"{when}until they are changed",
                    "Correct the credentials in the Airflow connection; the next task then tries once",
                    retry_at=retry_at,
                )

    def _try_probe(self, fingerprint: str) -> bool:
        """Become the one holder trying these new credentials, or learn that someone else is.

        ``True``: go ahead (as the prober, or because the verdict meanwhile says the credentials
        work); ``False``: another holder is trying, wait for its verdict. Raises
        :class:`LoginRefusedError` when the verdict meanwhile says they failed."""
        if not self._take_local_lock():
            log.info("%s: another process is trying these credentials first; waiting for it", self.vendor)
            return False
        mine = self.probe_prefix + self.holder
        try:
            if self.state.can_list:
                now = self.now()
                self.state.set_json(mine, {"fingerprint": fingerprint, "at": now.isoformat()})
                for key in self.state.keys(self.probe_prefix):
                    if key == mine:
                        continue
                    row = self.state.get_json(key) or {}
                    started = parse_stored_time(row.get("at"))
                    if started is not None and now - started < self.probe_ttl:
                        self.state.delete(mine)
                        self._drop_local_lock()
                        log.info(
                            "%s: another task is trying these credentials first; waiting for it", self.vendor
                        )
                        return False
            self._probing = fingerprint
            # Elected: read the verdict once more, the previous prober may have just written it.
            row = self.state.get_json(self.row_key) or {}
            self._refuse_if_blocked(row, fingerprint)
            if row.get("verified") == fingerprint:
                self._end_probe()
        except BaseException:
            self._probing = None
            if self.state.can_list:
                self.state.delete(mine)
            self._drop_local_lock()
            raise
        return True

    def _take_local_lock(self) -> bool:
        """The account's lock file on this machine, without waiting (see the module docs)."""
        if self._lock_file is not None:
            return True
        try:
            import fcntl
        except ImportError:  # not a POSIX system: the Variable election alone
            return True
        if self.lock_dir is not None:
            os.makedirs(self.lock_dir, exist_ok=True)
            directory = self.lock_dir
        else:
            try:
                directory = str(private_state_dir())
            except StateDirError as exc:  # the Variable election alone, as on other systems
                log.warning("%s login guard: no lock on this machine (%s)", self.vendor, exc)
                return True
        handle = open(os.path.join(directory, f"{self.slug}.lock"), "ab")  # noqa: SIM115 (held)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    def _drop_local_lock(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            handle.close()  # closing the file releases the flock

    # -- after a request ----------------------------------------------------------------------------
    def succeeded(self, fingerprint: str) -> None:
        """The vendor accepted the credentials: remember them as good and clear past failures."""
        if self._known_good == fingerprint and self._probing is None:
            return
        row = self.state.get_json(self.row_key) or {}
        if row.get("verified") != fingerprint or row.get("failures"):
            row.update(verified=fingerprint, failures=0, failed=None, retry_at=None, message=None)
            self.state.set_json(self.row_key, row)
        self._known_good = fingerprint
        self._end_probe()

    def failed(self, fingerprint: str, message: str) -> None:
        """The vendor rejected the credentials: refuse them from now on (see the module docs)."""
        now = self.now()
        row = self.state.get_json(self.row_key) or {}
        same = int(row.get("same_failures") or 0) + 1 if row.get("failed") == fingerprint else 1
        retry_at = now + self.cooldown * 2 ** (same - 1) if self.cooldown else None
        row.update(
            failures=int(row.get("failures") or 0) + 1,
            same_failures=same,
            failed=fingerprint,
            failed_at=now.isoformat(),
            retry_at=retry_at.isoformat() if retry_at else None,
            message=message[:300],
        )
        if row.get("verified") == fingerprint:
            row["verified"] = None
        self.state.set_json(self.row_key, row)
        self._known_good = None
        self._end_probe()

    def blocked(self, until: datetime, reason: str) -> None:
        """The vendor blocked access until ``until``: refuse everything until then."""
        row = self.state.get_json(self.row_key) or {}
        row.update(blocked_until=until.isoformat(), blocked_reason=reason[:300])
        self.state.set_json(self.row_key, row)
        self._end_probe()

    def inconclusive(self) -> None:
        """The request got no verdict (a network error): let another holder try."""
        self._end_probe()

    def reset(self) -> None:
        """Forget failures and blocks (after the credentials were corrected)."""
        self.state.delete(self.row_key)
        self._known_good = None

    def _end_probe(self) -> None:
        if self._probing is not None:
            self._probing = None
            if self.state.can_list:
                self.state.delete(self.probe_prefix + self.holder)
        self._drop_local_lock()

    def _refused(self, message: str, hint: str, retry_at: datetime | None = None) -> LoginRefusedError:
        return LoginRefusedError(self.vendor, "login guard", message, hint=hint, retry_at=retry_at)

    # -- asyncio (triggers): the same calls in a worker thread, see :mod:`.shared_state` -------------
    async def acheck(self, fingerprint: str) -> None:
        await to_thread(self.check, fingerprint)

    async def asucceeded(self, fingerprint: str) -> None:
        await to_thread(self.succeeded, fingerprint)

    async def afailed(self, fingerprint: str, message: str) -> None:
        await to_thread(self.failed, fingerprint, message)

    async def ablocked(self, until: datetime, reason: str) -> None:
        await to_thread(functools.partial(self.blocked, until, reason))

    async def ainconclusive(self) -> None:
        await to_thread(self.inconclusive)
