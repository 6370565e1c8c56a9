"""Credential stores: where rotated credentials live, overlaid on the Airflow connection.

On Airflow 3 a task cannot write a Connection. A credential minted or promoted at run time (a
Tripletex session token, a renewed AFAS token, a promoted Alasco token) is therefore kept in a
*credential store*, and hooks read it on top of their connection.

The store is chosen per connection with the extra ``credential_store`` (or per operator):

* ``variable`` (the default): :class:`VariableCredentialStore`, Airflow Variables, which tasks and
  triggers may read and write on Airflow 3;
* ``airflow_api``: :class:`AirflowApiCredentialStore`, which rewrites the connection itself through
  Airflow's REST API (the connection must live in the metadata database);
* ``none``: no store; the connection is used as it is;
* a dotted class path (``my_company.vault.VaultCredentialStore``): your own subclass of
  :class:`CredentialStore`, e.g. writing to the secrets backend Airflow reads connections from.

Three kinds of value live in a store, per connection id:

* **replacements** for the connection's ``password`` (and ``login``): a promoted or renewed
  credential. A replacement records a fingerprint of the connection it replaced (``based_on``); when
  an administrator later edits the connection's password or login, the connection wins again, so an
  old replacement can never lock a pipeline out;
* **state** a hook keeps between tasks (a Tripletex session token and its expiry);
* the **staging slot**: a new credential an administrator created at the vendor and put here, for
  :class:`~airflow_provider_ledgerlink.operators.token_rotation.TokenRotationOperator` to verify and
  promote.

Keys holding secrets are registered with Airflow's secret masker when read; the keys in
:data:`NON_SECRET_KEYS` are metadata (times, fingerprints) and may be logged.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from typing import Any, ClassVar

from airflow_provider_ledgerlink.core.redaction import register_secret, scrub
from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState, SharedState

log = logging.getLogger(__name__)

#: Values that are not secret (times, fingerprints); everything else is masked on load.
NON_SECRET_KEYS = frozenset(
    {
        "updated_at",
        "expires_at",
        "promoted_at",
        "replaced_at",
        "staged_at",
        "based_on",
        "session_owner",
        "source",
        "note",
    }
)
#: The connection fields a store may replace.
CREDENTIAL_FIELDS = ("login", "password")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def connection_fingerprint(connection: Any) -> str:
    """A short one-way fingerprint of a connection's login and password: tells "changed" from "the
    same" and nothing else."""
    material = f"{getattr(connection, 'login', None) or ''}\x00{getattr(connection, 'password', None) or ''}"
    return hashlib.sha256(f"ledgerlink-credentials\x00{material}".encode()).hexdigest()[:16]


def secret_fingerprint(value: str) -> str:
    """A short one-way fingerprint of one secret (safe to log and to return as metadata)."""
    return hashlib.sha256(f"ledgerlink-credential\x00{value}".encode()).hexdigest()[:12]


def _register(values: dict[str, Any]) -> dict[str, Any]:
    for key, value in values.items():
        if key not in NON_SECRET_KEYS and isinstance(value, str) and value:
            register_secret(value)
    return values


def parse_staged(raw: Any) -> dict[str, str]:
    """A staged credential: a bare secret (the new password or token) or a JSON object with
    ``password`` and optionally ``login``."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        values = raw
    else:
        text = str(raw).strip()
        if not text:
            return {}
        values = {"password": text}
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                values = parsed
    staged = {
        key: str(values[key]).strip()
        for key in CREDENTIAL_FIELDS
        if isinstance(values.get(key), (str, int)) and str(values[key]).strip()
    }
    return _register(staged) if "password" in staged else {}


class OverlaidConnection:
    """An Airflow connection with its login and/or password replaced; everything else is the
    connection's own."""

    def __init__(self, connection: Any, replacements: dict[str, str]) -> None:
        self._connection = connection
        self._replacements = dict(replacements)

    @property
    def login(self) -> Any:
        return self._replacements.get("login", self._connection.login)

    @property
    def password(self) -> Any:
        return self._replacements.get("password", self._connection.password)

    @property
    def original(self) -> Any:
        """The connection as Airflow returned it."""
        return self._connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def original_connection(connection: Any) -> Any:
    return connection.original if isinstance(connection, OverlaidConnection) else connection


class CredentialStore(ABC):
    """Rotated credential values per connection id, as a flat ``dict`` of strings."""

    #: How the store is named in messages.
    label: ClassVar[str] = "credential store"

    @abstractmethod
    def load(self, conn_id: str) -> dict[str, Any]:
        """The stored values for ``conn_id``; ``{}`` when there are none."""

    @abstractmethod
    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        """Merge ``values`` into what is stored for ``conn_id`` (``None`` removes a key)."""

    def loaded(self, conn_id: str) -> dict[str, Any]:
        """:meth:`load`, with every secret value registered for masking."""
        return _register(self.load(conn_id))

    # -- replacements of the connection's login/password --------------------------------------------
    def replacements(self, conn_id: str, connection: Any) -> dict[str, str]:
        """The login/password that replace ``connection``'s, or ``{}``.

        A replacement written for another version of the connection (an administrator edited its
        password or login since) is ignored: the connection wins.
        """
        values = self.loaded(conn_id)
        fields = {k: values[k] for k in CREDENTIAL_FIELDS if isinstance(values.get(k), str) and values[k]}
        if not fields:
            return {}
        if values.get("based_on") != connection_fingerprint(original_connection(connection)):
            log.info(
                "The credential in the %s for connection '%s' was written for an earlier version of the "
                "connection, which has been edited since; using the connection's own",
                self.label,
                conn_id,
            )
            return {}
        return fields

    def replace(self, conn_id: str, connection: Any, fields: dict[str, str], **meta: Any) -> None:
        """Make ``fields`` (``password``, optionally ``login``) the connection's credential."""
        connection = original_connection(connection)
        self.save(
            conn_id,
            {
                **fields,
                "based_on": connection_fingerprint(connection),
                "replaced_at": now_utc().isoformat(),
                **meta,
            },
        )

    # -- the staging slot -------------------------------------------------------------------------
    def staged(self, conn_id: str, connection: Any) -> dict[str, str]:
        """The credential waiting to be promoted (``{"password": …, "login"?: …}``), or ``{}``."""
        return {}

    def clear_staged(self, conn_id: str, connection: Any, staged: dict[str, str]) -> None:
        """Empty the staging slot if it still holds ``staged`` (a store without a slot has nothing to do)."""
        return None

    def staging_slot(self, conn_id: str) -> str:
        """Where an administrator puts a new credential, in words (for messages and docs)."""
        return "nowhere: this store has no staging slot"

    def promote(self, conn_id: str, connection: Any, staged: dict[str, str], **meta: Any) -> None:
        """Make a verified staged credential the connection's credential and clear the slot."""
        self.replace(conn_id, connection, staged, promoted_at=now_utc().isoformat(), **meta)
        self.clear_staged(conn_id, connection, staged)


class NoCredentialStore(CredentialStore):
    """Nothing stored; the connection is used as it is."""

    label = "no credential store"

    def load(self, conn_id: str) -> dict[str, Any]:
        return {}

    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        raise NotImplementedError(
            f"connection '{conn_id}' has credential_store 'none': there is nowhere to keep rotated "
            "credentials. Set the extra credential_store to 'variable', 'airflow_api' or a store class"
        )


class VariableCredentialStore(CredentialStore):
    """Airflow Variables: ``ledgerlink_credentials_token_<conn_id>`` holds the JSON of replacements
    and state, ``ledgerlink_staged_password_<conn_id>`` is the staging slot.

    Both names contain a word Airflow treats as sensitive, so the values are masked in the UI and in
    logs. Tasks and triggers can read and write Variables on Airflow 3; every worker sees the same
    values. Keep these keys out of secrets backends and ``AIRFLOW_VAR_…`` variables: Airflow reads
    those first, so writes would never be seen.
    """

    label = "Airflow Variable credential store"
    prefix = "ledgerlink_credentials_token_"
    staged_prefix = "ledgerlink_staged_password_"

    def __init__(self, state: SharedState | None = None) -> None:
        self.state = state or AirflowVariableState()

    def key(self, conn_id: str) -> str:
        return f"{self.prefix}{conn_id}"

    def staged_key(self, conn_id: str) -> str:
        return f"{self.staged_prefix}{conn_id}"

    def load(self, conn_id: str) -> dict[str, Any]:
        return self.state.get_json(self.key(conn_id)) or {}

    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        merged = {**self.load(conn_id), **values}
        merged = {k: v for k, v in merged.items() if v is not None}
        merged["updated_at"] = now_utc().isoformat()
        self.state.set_json(self.key(conn_id), merged)

    def staged(self, conn_id: str, connection: Any) -> dict[str, str]:
        return parse_staged(self.state.get(self.staged_key(conn_id)))

    def clear_staged(self, conn_id: str, connection: Any, staged: dict[str, str]) -> None:
        if self.staged(conn_id, connection) == staged:  # not a newer one staged meanwhile
            self.state.delete(self.staged_key(conn_id))

    def staging_slot(self, conn_id: str) -> str:
        return f"the Airflow Variable '{self.staged_key(conn_id)}'"


class AirflowApiCredentialStore(CredentialStore):
    """Rewrites the connection itself through Airflow's REST API (``PATCH /api/v2/connections/{id}``
    with an update mask).

    The API is reached with the Airflow connection ``api_conn_id`` (the vendor connection's extra
    ``credential_store_conn_id``, default ``ledgerlink_airflow_api``): host = the api-server's base
    URL; login and password = a user of the auth manager (exchanged at ``/auth/token`` for a JWT), or
    an empty login and a JWT as password. The user needs permission to edit connections.

    Replacements go into the connection's password (and login); state goes into extras prefixed
    ``ledgerlink_``; the staging slot is the connection's extra ``staged_password`` (and
    ``staged_login``). Connections defined in environment variables or a secrets backend cannot be
    changed this way; use another store for those.
    """

    label = "Airflow REST API credential store"
    default_api_conn_id = "ledgerlink_airflow_api"
    extra_prefix = "ledgerlink_"

    def __init__(self, api_conn_id: str | None = None, *, timeout: float = 30.0) -> None:
        self.api_conn_id = api_conn_id or self.default_api_conn_id
        self.timeout = timeout

    # -- reading goes through the task's own connection lookup (the REST API masks secrets) -------
    def _connection(self, conn_id: str) -> Any:
        from airflow_provider_ledgerlink.core.compat import BaseHook

        return BaseHook.get_connection(conn_id)

    @staticmethod
    def _extras(connection: Any) -> dict[str, Any]:
        extras = connection.extra_dejson
        return dict(extras) if isinstance(extras, dict) else {}

    def load(self, conn_id: str) -> dict[str, Any]:
        extras = self._extras(self._connection(conn_id))
        n = len(self.extra_prefix)
        return {k[n:]: v for k, v in extras.items() if k.startswith(self.extra_prefix)}

    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        connection = self._connection(conn_id)
        extras = self._extras(connection)
        for key, value in {**values, "updated_at": now_utc().isoformat()}.items():
            if value is None:
                extras.pop(self.extra_prefix + key, None)
            else:
                extras[self.extra_prefix + key] = value
        self._patch(conn_id, connection, {"extra": extras})

    def replacements(self, conn_id: str, connection: Any) -> dict[str, str]:
        return {}  # the connection itself holds the current credential

    def replace(self, conn_id: str, connection: Any, fields: dict[str, str], **meta: Any) -> None:
        self._replace(conn_id, fields, clear_staged=False, **meta)

    def promote(self, conn_id: str, connection: Any, staged: dict[str, str], **meta: Any) -> None:
        self._replace(conn_id, staged, clear_staged=True, promoted_at=now_utc().isoformat(), **meta)

    def _replace(self, conn_id: str, fields: dict[str, str], *, clear_staged: bool, **meta: Any) -> None:
        connection = self._connection(conn_id)
        extras = self._extras(connection)
        if clear_staged and self._staged_in(extras) == fields:  # not a newer one staged meanwhile
            extras.pop("staged_password", None)
            extras.pop("staged_login", None)
        meta = {"replaced_at": now_utc().isoformat(), "updated_at": now_utc().isoformat(), **meta}
        extras.update({self.extra_prefix + k: v for k, v in meta.items() if v is not None})
        changes: dict[str, Any] = {k: fields[k] for k in CREDENTIAL_FIELDS if k in fields}
        changes["extra"] = extras
        self._patch(conn_id, connection, changes)

    @staticmethod
    def _staged_in(extras: dict[str, Any]) -> dict[str, str]:
        return parse_staged({"password": extras.get("staged_password"), "login": extras.get("staged_login")})

    def staged(self, conn_id: str, connection: Any) -> dict[str, str]:
        return self._staged_in(self._extras(self._connection(conn_id)))

    def clear_staged(self, conn_id: str, connection: Any, staged: dict[str, str]) -> None:
        current = self._connection(conn_id)
        extras = self._extras(current)
        if self._staged_in(extras) == staged:
            extras.pop("staged_password", None)
            extras.pop("staged_login", None)
            self._patch(conn_id, current, {"extra": extras})

    def staging_slot(self, conn_id: str) -> str:
        return f"the extra 'staged_password' of the Airflow connection '{conn_id}'"

    # -- the REST API -----------------------------------------------------------------------------
    def _fail(self, operation: str, message: str, hint: str) -> Exception:
        from airflow_provider_ledgerlink.core.errors import ConfigurationError

        return ConfigurationError("Airflow REST API", operation, scrub(message), hint=hint)

    def _api(self) -> tuple[str, dict[str, str]]:
        """The api-server's base URL and the headers that authenticate this store."""
        from airflow_provider_ledgerlink.core.compat import BaseHook

        operation = f"reading connection '{self.api_conn_id}'"
        try:
            api = BaseHook.get_connection(self.api_conn_id)
        except Exception as exc:
            raise self._fail(
                operation,
                f"the connection for Airflow's REST API cannot be read ({type(exc).__name__})",
                f"Create the Airflow connection '{self.api_conn_id}': host = the api-server's URL, login "
                "and password = a user allowed to edit connections",
            ) from None
        base = (api.host or "").strip().rstrip("/")
        if not base:
            raise self._fail(operation, "the host is empty", "Set the host to the api-server's base URL")
        if "://" not in base:
            base = f"{api.schema or 'http'}://{base}"
        if api.port and base.count(":") < 2:
            base = f"{base}:{api.port}"
        secret = api.password or ""
        register_secret(secret)
        if not api.login:
            if not secret:
                raise self._fail(operation, "neither login nor password is set", "Set a user and password")
            return base, {"Authorization": f"Bearer {secret}"}
        response = self._send("POST", f"{base}/auth/token", json={"username": api.login, "password": secret})
        if response.status_code not in (200, 201):
            raise self._fail(
                "signing in to the Airflow REST API",
                f"the api-server answered {response.status_code} at /auth/token",
                f"Check the login and password of the Airflow connection '{self.api_conn_id}'",
            )
        token = str(response.json().get("access_token") or "")
        register_secret(token)
        return base, {"Authorization": f"Bearer {token}"}

    def _send(self, method: str, url: str, **kwargs: Any) -> Any:
        """One request; a 5xx or a lost connection is tried again (4 attempts, 1-4 s apart): both
        calls are idempotent, and a busy api-server (a locked SQLite database) answers 500."""
        import time

        import httpx

        for delay in (1, 2, 4, None):
            try:
                response = httpx.request(method, url, timeout=self.timeout, **kwargs)
                if response.status_code < 500 or delay is None:
                    return response
            except httpx.TransportError:
                if delay is None:
                    raise self._fail(
                        f"{method} {httpx.URL(url).path}",
                        "the api-server cannot be reached",
                        f"Check the host of the Airflow connection '{self.api_conn_id}'",
                    ) from None
            time.sleep(delay)
        return None  # not reached: the last attempt returns or raises

    def _patch(self, conn_id: str, connection: Any, changes: dict[str, Any]) -> None:
        base, headers = self._api()
        body: dict[str, Any] = {"connection_id": conn_id, "conn_type": connection.conn_type}
        mask = []
        for key, value in changes.items():
            body[key] = json.dumps(value, sort_keys=True) if key == "extra" else value
            mask.append(key)
        for value in changes.values():
            if isinstance(value, str):
                register_secret(value)
        response = self._send(
            "PATCH",
            f"{base}/api/v2/connections/{conn_id}",
            params=[("update_mask", key) for key in mask],
            json=body,
            headers=headers,
        )
        if response.status_code != 200:
            hints = {
                401: f"The user of connection '{self.api_conn_id}' is not accepted; check its password",
                403: f"The user of connection '{self.api_conn_id}' may not edit connections; grant it that",
                404: (
                    f"Connection '{conn_id}' is not in Airflow's database (defined in an environment variable "
                    "or a secrets backend?); use credential_store 'variable' or a store for that backend"
                ),
            }
            raise self._fail(
                f"updating connection '{conn_id}'",
                f"the api-server answered {response.status_code}",
                hints.get(response.status_code, "See the api-server's log"),
            )


def credential_store_for(spec: str | None, *, api_conn_id: str | None = None) -> CredentialStore:
    """The store named by a connection's ``credential_store`` extra (see the module docs)."""
    name = (spec or "variable").strip()
    if name.lower() == "variable":
        return VariableCredentialStore()
    if name.lower() == "none":
        return NoCredentialStore()
    if name.lower() in ("airflow_api", "api"):
        return AirflowApiCredentialStore(api_conn_id)
    module, _, attr = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        raise ImportError(f"credential_store {name!r} cannot be imported") from None
    if not (isinstance(cls, type) and issubclass(cls, CredentialStore)):
        raise TypeError(f"credential_store {name!r} is not a CredentialStore subclass")
    return cls()
