"""Tripletex sessions: creating, sharing, reusing, renewing, rotating and deleting session tokens.

Tripletex calls carry HTTP Basic ``<company id>:<session token>``; a session token is created with
``PUT /token/session/:create`` from the consumer token, the employee token and an expiration date
(see :mod:`airflow_provider_ledgerlink.protocol.tripletex`). :class:`TripletexSession` is the part of
:class:`~airflow_provider_ledgerlink.hooks.tripletex.TripletexHook` that keeps one usable session:

* its own, while it lasts longer than the hook's ``session_min_validity``;
* else the one another process of this machine uses (a locked file in the private state directory);
* else a valid one from the connection's credential store;
* else a new one, written to the credential store (``save_sessions``) and to the machine's file.

It reads the connection, the HTTP client (whose rate-limit gate every request passes) and its
settings (``session_days``, ``session_min_validity``, ``save_sessions``) from the hook that holds it,
and logs to the hook's log.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_ledgerlink.core.credentials import NoCredentialStore
from airflow_provider_ledgerlink.core.errors import (
    AuthenticationError,
    ConfigurationError,
    LedgerLinkError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.host_state import locked_json
from airflow_provider_ledgerlink.core.redaction import register_secret
from airflow_provider_ledgerlink.core.rotation import RotationResult, iso, verification_failed
from airflow_provider_ledgerlink.protocol.tripletex import (
    VENDOR,
    Session,
    _json,
    basic_authorization,
    parse_timestamp,
    session_expiration_date,
    session_expires_at,
)

if TYPE_CHECKING:
    from airflow_provider_ledgerlink.hooks.tripletex import TripletexHook

#: Keys LedgerLink reads from (and writes to) the connection's credential store.
STORE_SESSION_TOKEN = "session_token"
STORE_EXPIRES_AT = "expires_at"
STORE_SESSION_OWNER = "session_owner"


class TripletexSession:
    """The session token of one :class:`~airflow_provider_ledgerlink.hooks.tripletex.TripletexHook`.

    ``current`` is the session in use (``None`` before the first call), ``working`` the tokens that
    have answered a call, ``created`` how many sessions this object created. Every method is safe to
    call from the hook's parallel page readers: looking for and creating a session happen under
    ``lock`` (and the machine's file lock).
    """

    def __init__(self, hook: TripletexHook) -> None:
        self.hook = hook
        self.current: Session | None = None
        self.lock = threading.Lock()
        self.working: set[str] = set()
        self.created = 0

    @property
    def owner(self) -> str:
        """Which tokens a stored session belongs to: a short digest, never the tokens themselves."""
        text = f"ledgerlink-tripletex:{self.hook.consumer_token}:{self.hook.employee_token}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def get(self) -> Session:
        """A usable session: the hook's own, the one another process of this machine uses, a valid
        one from the credential store, or a new one.

        Looking and creating happen under the machine's session lock, so parallel tasks on one
        machine create one session between them, not one each.
        """
        with self.lock:
            current = self.current
            if current is not None and current.valid_for(self.hook.now()) > self.hook.session_min_validity:
                return current
            with self._machine_file() as shared:
                session = self._from_machine(shared)
                if session is None:
                    session = self._from_store()
                if session is None:
                    session = self.create()
                self._share(shared, session)
            self.current = session
            return session

    def renew(self, refused: Session) -> Session:
        """A session other than ``refused``: another thread's or process's fresh one, a newer stored
        one, or a new one."""
        with self.lock:
            current = self.current
            if current is not None and current.token != refused.token:
                return current  # another request already replaced it
            with self._machine_file() as shared:
                session = self._from_machine(shared)
                if session is None or session.token == refused.token:
                    session = self._from_store()
                if session is None or session.token == refused.token:
                    session = self.create()
                self._share(shared, session)
            self.current = session
            return session

    @contextlib.contextmanager
    def _machine_file(self) -> Iterator[dict[str, Any] | None]:
        """The session file of this machine, locked: ``None`` when the state directory is unusable.

        The file (mode 0600, in the private state directory) holds the session token, its end and
        a digest of the tokens it belongs to. It is what lets twelve parallel tasks of one worker
        use one session; the token in it reaches no log.
        """
        path = self.hook._state_file("session")
        if path is None:
            yield None
            return
        with locked_json(path) as shared:
            yield shared

    def _from_machine(self, shared: Mapping[str, Any] | None) -> Session | None:
        if not shared or shared.get("owner") != self.owner:
            return None
        token = shared.get("token")
        expires = parse_timestamp(str(shared.get("expires_at") or ""))
        if not isinstance(token, str) or not token or expires is None:
            return None
        session = Session(token, expires, source="machine")
        if session.valid_for(self.hook.now()) <= self.hook.session_min_validity:
            return None
        self._register(session)
        return session

    def _share(self, shared: dict[str, Any] | None, session: Session) -> None:
        """Put the session in the machine's session file (not for a connection Test's session)."""
        if shared is None or (not self.hook.save_sessions and session.source == "created"):
            return
        shared.update(token=session.token, expires_at=session.expires_at.isoformat(), owner=self.owner)

    def _register(self, session: Session) -> None:
        register_secret(session.token)
        register_secret(basic_authorization(self.hook.company_id, session.token).split(" ", 1)[1])

    def _from_store(self) -> Session | None:
        try:
            values = self.hook.credential_store.loaded(self.hook.conn_id)
        except ConfigurationError:
            raise
        except Exception as exc:  # no store reachable (outside Airflow, a store of another kind …)
            self.hook.log.debug("No session read from the credential store: %s", type(exc).__name__)
            return None
        token = values.get(STORE_SESSION_TOKEN)
        if not isinstance(token, str) or not token.strip():
            return None
        owner = values.get(STORE_SESSION_OWNER)
        if owner and owner != self.owner:
            self.hook.log.info("The stored Tripletex session belongs to other tokens; not using it")
            return None
        expires = parse_timestamp(str(values.get(STORE_EXPIRES_AT) or ""))
        if expires is None:
            return None
        session = Session(token.strip(), expires, source="store")
        left = session.valid_for(self.hook.now())
        if left <= self.hook.session_min_validity:
            self.hook.log.info("The stored Tripletex session ends in %s; creating a new one", left)
            return None
        self._register(session)
        self.hook.log.info(
            "Using the Tripletex session from the credential store (valid until %s)", expires.isoformat()
        )
        return session

    def create(self, *, save: bool = True) -> Session:
        expiration = session_expiration_date(self.hook.now(), self.hook.session_days)
        operation = "create session token"
        params = {
            "consumerToken": self.hook.consumer_token,
            "employeeToken": self.hook.employee_token,
            "expirationDate": expiration.isoformat(),
        }
        try:
            response = self.hook.client.request(
                "PUT", "/token/session/:create", params=params, operation=operation
            )
        except ValidationError as error:
            raise self._creation_refused(error) from None
        except (AuthenticationError, PermissionDeniedError, NotFoundError) as error:
            raise AuthenticationError(
                VENDOR,
                operation,
                f"Tripletex refused to create a session: {error.message}",
                hint=(
                    "The employee token (the connection's password) is probably deleted, expired or made "
                    "for another application than the consumer token"
                ),
                reference=error.reference,
                status_code=error.http_status,
            ) from None
        value = _json(response, operation).get("value")
        token = value.get("token") if isinstance(value, Mapping) else None
        if not isinstance(token, str) or not token:
            raise VendorError(
                VENDOR,
                operation,
                "the answer holds no session token",
                reference=response.headers.get("x-tlx-request-id"),
            )
        answered = str(value.get("expirationDate") or "") if isinstance(value, Mapping) else ""
        with contextlib.suppress(ValueError):
            expiration = date.fromisoformat(answered[:10]) if answered else expiration
        session = Session(token, session_expires_at(expiration))
        self._register(session)
        self.created += 1
        self.hook.log.info("Created a Tripletex session (expiration date %s, Oslo)", expiration.isoformat())
        if save:
            self._save(session)
        return session

    def _save(self, session: Session, *, required: bool = False) -> None:
        if not self.hook.save_sessions and not required:
            return
        if required:
            self.hook.credential_store.save(self.hook.conn_id, self._store_values(session))
            return
        try:
            self.hook.credential_store.save(self.hook.conn_id, self._store_values(session))
        except Exception as exc:  # a read-only store, or no Airflow to write to: the session still works
            self.hook.log.debug(
                "The new session was not written to the credential store: %s", type(exc).__name__
            )

    def _store_values(self, session: Session) -> dict[str, Any]:
        return {
            STORE_SESSION_TOKEN: session.token,
            STORE_EXPIRES_AT: session.expires_at.isoformat(),
            STORE_SESSION_OWNER: self.owner,
        }

    def rotate(self, *, dry_run: bool = False) -> RotationResult:
        """Create a new session token, verify it (``whoAmI``), store it, then delete the previous one.

        A session that fails verification is deleted and nothing else changes. When another rotation
        stored its session at the same moment (there should be one writer; see the docs), the one
        stored last wins and the other deletes its own new session, so the store always holds a
        working session. Tasks still using the deleted session get a 401 and pick up the stored one.
        """
        store = self.hook.credential_store
        if isinstance(store, NoCredentialStore):
            raise self.hook.config_error(
                "session rotation needs a credential store, and credential_store is 'none'",
                field="Extra credential_store (variable, airflow_api or a store class)",
            )
        previous = self._stored_token()
        new = self.create(save=False)
        result = RotationResult(
            self.hook.conn_id,
            VENDOR,
            "session rotation",
            "",
            store.label,
            dry_run,
            expires_at=iso(new.expires_at),
        )
        try:
            result.detail = self.verify(new)
        except LedgerLinkError as error:
            self.delete_quietly(new.token, new)
            raise verification_failed(
                self.hook,
                "new session token",
                error,
                "Run the connection's Test; if it fails too, the employee token needs renewing in Tripletex",
            ) from None
        if dry_run:
            self.delete_quietly(new.token, new)
            result.status = "verified (dry run)"
            return result
        self._save(new, required=True)
        if self._stored_token() != new.token:
            self.delete_quietly(new.token, new)
            result.status = "superseded"
            result.detail = "another rotation stored its session at the same time; that one is kept"
            return result
        with self.lock:
            self.current = new
            with self._machine_file() as shared:
                if shared is not None:  # the other processes of this machine switch without a 401
                    shared.update(token=new.token, expires_at=new.expires_at.isoformat(), owner=self.owner)
        if previous and previous != new.token:
            self.delete_quietly(previous, new)
        result.status = "rotated"
        return result

    def _stored_token(self) -> str | None:
        values = self.hook.credential_store.loaded(self.hook.conn_id)
        token = values.get(STORE_SESSION_TOKEN)
        owner = values.get(STORE_SESSION_OWNER)
        if not isinstance(token, str) or (owner and owner != self.owner):
            return None
        return token.strip() or None

    def verify(self, session: Session) -> str:
        """``whoAmI`` with exactly this session (no renewal): which employee and company it reaches."""
        operation = "verify session (whoAmI)"
        response = self.hook.client.request(
            "GET",
            "/token/session/%3EwhoAmI",
            operation=operation,
            params={"fields": "employeeId,companyId"},
            headers={"Authorization": self.authorization(session)},
        )
        value = _json(response, operation).get("value") or {}
        return f"session works for employee {value.get('employeeId', '?')} of company {value.get('companyId', '?')}"

    def delete_quietly(self, token: str, authorized_by: Session) -> None:
        """``DELETE /token/session/{token}``; an already ended session is fine, other errors are
        logged (an undeleted session still expires on its own)."""
        try:
            self.hook.client.request(
                "DELETE",
                f"/token/session/{quote(token, safe='')}",
                operation="delete session token",
                headers={"Authorization": self.authorization(authorized_by)},
                idempotent=True,
            )
        except (AuthenticationError, NotFoundError):
            return
        except LedgerLinkError as error:
            self.hook.log.warning(
                "The previous Tripletex session was not deleted (it expires on its own): %s", error
            )

    def _creation_refused(self, error: ValidationError) -> LedgerLinkError:
        """A 422 on session creation names the token field Tripletex rejected."""
        details = error.details if isinstance(error.details, Mapping) else {}
        fields = [
            str(item.get("field") or item.get("path") or "")
            for item in details.get("validationMessages") or []
            if isinstance(item, Mapping)
        ]
        operation = "create session token"
        rejected = {
            "consumertoken": (
                AuthenticationError,
                "the consumer token (extra consumer_token)",
                f"Check the connection's consumer_token and environment ({self.hook.environment}): a consumer "
                "token of the test environment does not work in production, nor the other way round",
            ),
            "employeetoken": (
                AuthenticationError,
                "the employee token (the connection's password)",
                "Create a new employee token in Tripletex (user settings → API access) for the "
                "application of this consumer token; it is shown only once",
            ),
            "expirationdate": (ValidationError, "the session's expiration date", "Lower session_days"),
        }
        for key, (kind, what, hint) in rejected.items():
            if any(key in field.lower() for field in fields):
                return kind(
                    VENDOR,
                    operation,
                    f"Tripletex rejected {what}: {error.message}",
                    hint=hint,
                    reference=error.reference,
                    status_code=error.http_status,
                )
        return AuthenticationError(
            VENDOR, operation, error.message, reference=error.reference, status_code=error.http_status
        )

    def authorization(self, session: Session) -> str:
        return basic_authorization(self.hook.company_id, session.token)

    def refused_after_creation(self, operation: str, error: AuthenticationError) -> AuthenticationError:
        if self.hook.company_id:
            hint = (
                f"The consumer and employee tokens were accepted, so the employee probably has no login "
                f"access to company {self.hook.company_id} (extra company_id; GET /company/>withLoginAccess "
                "lists the companies it can reach), or the employee token was deleted just now"
            )
        else:
            hint = (
                "The consumer and employee tokens were accepted moments ago: the employee token was "
                "probably deleted or lost its entitlements just now; create a new one in Tripletex"
            )
        return AuthenticationError(
            VENDOR,
            operation,
            f"Tripletex refused a session it had just created (HTTP 401 twice): {error.message}",
            hint=hint,
            reference=error.reference,
            status_code=401,
        )
