"""Credential stores: where rotated credentials live, overlaid on the Airflow connection.

On Airflow 3 a task cannot write a Connection. A credential minted or promoted at run time (a
Tripletex session token, a renewed AFAS token, a promoted Alasco token) is therefore kept in a
*credential store*, and hooks read it on top of their connection: a value in the store wins over the
connection's field of the same name.

The store is chosen per connection with the extra ``credential_store``:

* ``variable`` (the default): :class:`VariableCredentialStore`, Airflow Variables, which tasks and
  triggers may read and write on Airflow 3;
* ``none``: no store; the connection is used as it is;
* a dotted class path (``my_company.vault.VaultCredentialStore``): your own subclass of
  :class:`CredentialStore`, e.g. writing to the secrets backend Airflow reads connections from.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from typing import Any

from airflow_provider_ledgerlink.core.redaction import register_secret

#: Values that are not secret (times, expiry, who promoted); everything else is masked on load.
NON_SECRET_KEYS = frozenset({"updated_at", "expires_at", "promoted_at", "staged_at", "note"})


class CredentialStore(ABC):
    """Rotated credential values per connection id, as a flat ``dict`` of strings."""

    @abstractmethod
    def load(self, conn_id: str) -> dict[str, Any]:
        """The stored values for ``conn_id``; ``{}`` when there are none."""

    @abstractmethod
    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        """Merge ``values`` into what is stored for ``conn_id`` (``None`` removes a key)."""

    def loaded(self, conn_id: str) -> dict[str, Any]:
        """:meth:`load`, with every secret value registered for masking."""
        values = self.load(conn_id)
        for key, value in values.items():
            if key not in NON_SECRET_KEYS and isinstance(value, str):
                register_secret(value)
        return values


class NoCredentialStore(CredentialStore):
    """Nothing stored; the connection is used as it is."""

    def load(self, conn_id: str) -> dict[str, Any]:
        return {}

    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        raise NotImplementedError(
            f"connection '{conn_id}' has credential_store 'none': there is nowhere to keep rotated "
            "credentials. Set the extra credential_store to 'variable' or a store class"
        )


class VariableCredentialStore(CredentialStore):
    """One Airflow Variable per connection, ``ledgerlink_credentials_token_<conn_id>``, holding JSON.

    The name contains ``token`` so Airflow masks the value in the UI and in logs. Tasks and
    triggers can read and write Variables on Airflow 3; every worker sees the same value.
    """

    prefix = "ledgerlink_credentials_token_"

    def key(self, conn_id: str) -> str:
        return f"{self.prefix}{conn_id}"

    def load(self, conn_id: str) -> dict[str, Any]:
        from airflow.sdk import Variable

        raw = Variable.get(self.key(conn_id), default=None)
        if not raw:
            return {}
        try:
            values = json.loads(raw)
        except ValueError:
            return {}
        return values if isinstance(values, dict) else {}

    def save(self, conn_id: str, values: dict[str, Any]) -> None:
        from airflow.sdk import Variable

        merged = {**self.load(conn_id), **values}
        merged = {k: v for k, v in merged.items() if v is not None}
        merged["updated_at"] = datetime.now(timezone.utc).isoformat()
        Variable.set(self.key(conn_id), json.dumps(merged, sort_keys=True))


def credential_store_for(spec: str | None) -> CredentialStore:
    """The store named by a connection's ``credential_store`` extra (see the module docs)."""
    name = (spec or "variable").strip()
    if name.lower() == "variable":
        return VariableCredentialStore()
    if name.lower() == "none":
        return NoCredentialStore()
    module, _, attr = name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        raise ImportError(f"credential_store {name!r} cannot be imported") from None
    if not (isinstance(cls, type) and issubclass(cls, CredentialStore)):
        raise TypeError(f"credential_store {name!r} is not a CredentialStore subclass")
    return cls()
