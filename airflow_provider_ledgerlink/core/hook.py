"""What every LedgerLink hook shares: reading its Airflow connection, clear configuration errors,
one HTTP client per hook, and a ``test_connection`` that never raises and never leaks a secret."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from airflow_provider_ledgerlink.core.compat import BaseHook
from airflow_provider_ledgerlink.core.credentials import (
    CredentialStore,
    OverlaidConnection,
    credential_store_for,
)
from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.http import HttpClient, RetryPolicy, Timeouts, check_base_url
from airflow_provider_ledgerlink.core.httpx_logs import redact_httpx_logs
from airflow_provider_ledgerlink.core.redaction import scrub, scrub_value

_MISSING = object()
_Hook = TypeVar("_Hook", bound="LedgerLinkHook")


def _connection_type(conn_type: str) -> dict[str, Any]:
    from airflow_provider_ledgerlink.get_provider_info import get_provider_info

    for entry in get_provider_info()["connection-types"]:
        if entry["connection-type"] == conn_type:
            return entry
    raise KeyError(f"no connection type {conn_type!r} in the provider info")


def hook_class_for(conn_type: str) -> type[LedgerLinkHook]:
    """The LedgerLink hook class of a connection type (``ledgerlink_tripletex`` → ``TripletexHook``)."""
    import importlib

    try:
        path = _connection_type(conn_type)["hook-class-name"]
    except KeyError:
        raise ConfigurationError(
            "LedgerLink",
            "choosing the hook",
            f"connection type {conn_type!r} is not a LedgerLink connection type",
            hint="Use a connection of type ledgerlink_afas, ledgerlink_tripletex, ledgerlink_alasco, "
            "ledgerlink_cash or ledgerlink_cloudpos",
        ) from None
    module, _, name = path.rpartition(".")
    hook_class: type[LedgerLinkHook] = getattr(importlib.import_module(module), name)
    return hook_class


def hook_for_connection(conn_id: str, **kwargs: Any) -> LedgerLinkHook:
    """The LedgerLink hook of whatever vendor ``conn_id``'s connection type names."""
    conn_type = str(BaseHook.get_connection(conn_id).conn_type or "")
    return hook_class_for(conn_type)(conn_id, **kwargs)


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """The connection form's extra fields for Airflow 3.0 and 3.1, built from the provider info's
    ``conn-fields`` (what Airflow 3.2+ reads), so the two declarations can never drift apart.

    Only wtforms is needed (a dependency of this package): the 3.0/3.1 api-server swaps its field
    classes and validators for stand-ins that turn label, description, default and ``any_of`` into
    the JSON schema its React form draws (help text, pre-filled value, a select for a choice). No
    flask-appbuilder widget or flask-babel text is used, so the form is complete without the FAB
    provider.
    """
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    widgets: dict[str, Any] = {}
    for key, field in _connection_type(conn_type).get("conn-fields", {}).items():
        schema = field["schema"]
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        validators: list[Any] = [Optional()]
        if schema.get("enum"):
            validators.append(any_of(list(schema["enum"])))
        options: dict[str, Any] = {"validators": validators, "description": field.get("description", "")}
        if "default" in schema:
            options["default"] = schema["default"]
        if schema.get("format") == "password":
            widgets[key] = PasswordField(field["label"], **options)
        elif "boolean" in kinds:
            widgets[key] = BooleanField(field["label"], **options)
        elif "integer" in kinds:
            widgets[key] = IntegerField(field["label"], **options)
        else:
            widgets[key] = StringField(field["label"], **options)
    return widgets


_STANDARD_FIELD = re.compile(r"^(Host|Login|Password|Port|Schema)\b(?: \((?P<note>[^)]*)\)?)?$")


def form_wording(conn_type: str, text: str) -> str:
    """``text`` with the connection's fields named as the connection form labels them.

    ``Extra environment_id`` → ``Environment number``; a standard field the form relabels
    (``Password (the employee token)``) → its label (``Employee token``). Users fill in a form and
    never see the keys the values are stored under.
    """
    try:
        entry = _connection_type(conn_type)
    except KeyError:
        return text
    behaviour = entry.get("ui-field-behaviour", {})
    standard = _STANDARD_FIELD.match(text.strip())
    if standard:
        label = behaviour.get("relabeling", {}).get(standard.group(1).lower())
        return label if label else text
    labels = {key: field["label"] for key, field in entry.get("conn-fields", {}).items()}
    if not labels:
        return text
    keys = "|".join(re.escape(key) for key in sorted(labels, key=len, reverse=True))
    # A one-word key (``environment``, ``api``) is a field only where a message marks it as one.
    text = re.sub(rf"\b[Ee]xtras? '?({keys})\b'?", lambda match: labels[match.group(1)], text)
    text = re.sub(rf"'({keys})'", lambda match: labels[match.group(1)], text)
    compound = "|".join(re.escape(key) for key in sorted(labels, key=len, reverse=True) if "_" in key)
    if compound:
        text = re.sub(rf"\b({compound})\b", lambda match: labels[match.group(1)], text)
    return text


def base_url_from_connection(
    vendor: str,
    host: str | None,
    default: str | Callable[[], str],
    *,
    complete: Callable[[str], str] | None = None,
    refuse: Callable[[str, str], ConfigurationError] | None = None,
) -> str:
    """The vendor's address from a connection's host field: the one rule of every LedgerLink hook.

    An empty host gives ``default`` (or what it returns, when it is a function: a default that
    needs settings an override makes unnecessary). A host without a scheme gets ``https://``, and ``complete``
    gives it the vendor's path when it lacks one (AFAS ``/ProfitRestServices``, Tripletex ``/v2``,
    Alasco the API's path, CASH the WSDL's, CloudPOS ``/api/``). The result, default included,
    passes :func:`~airflow_provider_ledgerlink.core.http.check_base_url`: http(s) only, plain http
    only to a loopback host, no user name or password in it, a server named. ``refuse(problem,
    fix)`` builds the error (default: one naming the vendor and the Host field).
    """
    text = (host or "").strip()
    if not text:
        url = default() if callable(default) else default
    else:
        url = text if "://" in text else f"https://{text}"
        if complete is not None:
            # Not a URL at all: the check below says so about what was given.
            with contextlib.suppress(ValueError):
                url = complete(url)
    return check_base_url(vendor, url, refuse=refuse)


def ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """The provider info's ``ui-field-behaviour`` in the form Airflow 3.0 and 3.1 read."""
    behaviour = _connection_type(conn_type).get("ui-field-behaviour", {})
    return {
        "hidden_fields": list(behaviour.get("hidden-fields", [])),
        "relabeling": dict(behaviour.get("relabeling", {})),
        "placeholders": dict(behaviour.get("placeholders", {})),
    }


class LedgerLinkHook(BaseHook):
    """Base of the vendor hooks. Subclasses set the Airflow hook attributes and ``vendor``."""

    #: The vendor's display name, used in every message.
    vendor: ClassVar[str] = ""
    conn_type: ClassVar[str] = ""

    # -- connection form (Airflow 3.0–3.1; 3.2+ read conn-fields from the provider info) ----------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return connection_form_widgets(cls.conn_type)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return ui_field_behaviour(cls.conn_type)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Airflow 3.0 and 3.1 only call the two form methods when they stand in the hook class's own
        # __dict__, so every vendor hook (a class that names its connection type) gets them there.
        if cls.__dict__.get("conn_type"):
            for name in ("get_connection_form_widgets", "get_ui_field_behaviour"):
                setattr(cls, name, LedgerLinkHook.__dict__[name])

    def __init__(
        self,
        conn_id: str,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        credential_store: CredentialStore | str | None = None,
        credential_overrides: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self._store_argument = credential_store
        #: Login/password to use instead of the connection's and the store's (a credential on trial).
        self.credential_overrides = dict(credential_overrides) if credential_overrides else None
        redact_httpx_logs()  # httpx logs every request URL at INFO, credentials in the query included

    # -- the connection ---------------------------------------------------------------------------
    @cached_property
    def raw_connection(self) -> Any:
        """The connection as Airflow returns it."""
        return self.get_connection(self.conn_id)

    @cached_property
    def connection(self) -> Any:
        """The connection with the credential store's replacements (or the overrides) applied."""
        return self.overlay(self.raw_connection)

    def overlay(self, connection: Any) -> Any:
        """``connection`` with its login/password replaced by the overrides or by the store's
        rotated values. A store that cannot be read leaves the connection as it is (logged)."""
        if self.credential_overrides is not None:
            return OverlaidConnection(connection, self.credential_overrides)
        try:
            replacements = self.credential_store.replacements(self.conn_id, connection)
        except ConfigurationError:
            raise
        except Exception as exc:  # outside Airflow, or the store is down: the connection still works
            self.log.debug("No rotated credential read for '%s': %s", self.conn_id, type(exc).__name__)
            return connection
        return OverlaidConnection(connection, replacements) if replacements else connection

    async def aoverlay(self, connection: Any) -> Any:
        """:meth:`overlay` for triggers: the store is read in a worker thread, off the event loop."""
        from airflow_provider_ledgerlink.core.compat import to_thread

        return await to_thread(self.overlay, connection)

    #: Cached properties built from the credential, dropped by :meth:`forget_connection`.
    credential_dependents: ClassVar[tuple[str, ...]] = ()

    def forget_connection(self, *, keep_clients: bool = False) -> None:
        """Read the connection and the store again on next use (after a rotation). ``keep_clients``:
        only the connection is read again; clients and what :attr:`credential_dependents` names stay."""
        dependents = () if keep_clients else self.credential_dependents
        if not keep_clients:
            self.close()
        for name in ("raw_connection", "connection", "_extras", *dependents):
            self.__dict__.pop(name, None)

    def close(self) -> None:
        """Release the HTTP connections (subclasses with clients override this). Closing twice is
        harmless, and a closed hook opens new connections when it is used again."""

    # -- ``with AfasHook() as hook:`` closes what the hook opened ------------------------------------
    def __enter__(self: _Hook) -> _Hook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- a credential on trial (rotation) ---------------------------------------------------------
    def trial_kwargs(self) -> dict[str, Any]:
        """Constructor arguments a hook on trial shares with this one (shared budgets, guards …)."""
        return {"retry": self.retry, "timeouts": self.timeouts, "credential_store": self.credential_store}

    def trial(self: _Hook, credential: dict[str, str]) -> _Hook:
        """A hook of the same connection that uses ``credential`` (``password``, optionally ``login``)
        instead of the current one: for verifying a new credential before it replaces the old."""
        return type(self)(self.conn_id, credential_overrides=credential, **self.trial_kwargs())

    @cached_property
    def _extras(self) -> dict[str, Any]:
        # Airflow logs an extra that is not JSON and hands over {}: the hook would then run on
        # defaults (another limit, a "missing" token). Read the raw text and say what is wrong.
        raw = getattr(self.raw_connection, "extra", _MISSING)
        if raw is _MISSING:  # a connection-like object that only offers the parsed extra
            parsed = getattr(self.raw_connection, "extra_dejson", None)
            return parsed if isinstance(parsed, dict) else {}
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return {}
        if isinstance(raw, str):
            import json

            try:
                parsed = json.loads(raw)
            except RecursionError:
                raise self.config_error("the extra is nested too deeply to read", field="Extra") from None
            except ValueError as exc:
                raise self.config_error(
                    f"the extra is not valid JSON ({exc.__class__.__name__} at character "
                    f"{getattr(exc, 'pos', '?')})",
                    field='Extra (a JSON object such as {"key": "value"})',
                ) from None
            if not isinstance(parsed, dict):
                raise self.config_error(
                    f"the extra is JSON but not an object (it is a {type(parsed).__name__})",
                    field='Extra (a JSON object such as {"key": "value"})',
                )
            return parsed
        extras = self.raw_connection.extra_dejson
        return extras if isinstance(extras, dict) else {}

    @cached_property
    def credential_store(self) -> CredentialStore:
        """Where rotated credentials of this connection live (argument, else extra ``credential_store``)."""
        if isinstance(self._store_argument, CredentialStore):
            return self._store_argument
        try:
            return credential_store_for(
                self._store_argument or self.extra("credential_store"),
                api_conn_id=self.extra("credential_store_conn_id"),
            )
        except (ImportError, TypeError) as exc:
            raise self.config_error(str(exc), field="Extra credential_store") from None

    def extra(self, key: str, default: Any = None) -> Any:
        """An extra field, read under its bare name or the old ``extra__<type>__<key>`` form."""
        extras = self._extras
        value = extras.get(key, _MISSING)
        if value is _MISSING or value in ("", None):
            value = extras.get(f"extra__{self.conn_type}__{key}", _MISSING)
        if value is _MISSING or value in ("", None):
            return default
        return value

    def config_error(self, message: str, *, field: str) -> ConfigurationError:
        """An error that points at the connection field to fix, named as the form labels it."""
        label = form_wording(self.conn_type, field)
        if self._testing:  # the connection form's Test: the connection has a random temporary id
            return ConfigurationError(
                self.vendor, "reading the connection", message, hint=f"Correct the field: {label}"
            )
        return ConfigurationError(
            self.vendor,
            f"reading connection '{self.conn_id}'",
            message,
            hint=f"Edit the Airflow connection '{self.conn_id}' and correct: {label}",
        )

    def base_url_from_host(
        self, default: str | Callable[[], str], *, complete: Callable[[str], str] | None = None
    ) -> str:
        """:func:`base_url_from_connection` for this hook's connection: an unusable host is refused
        naming the connection, the form's label of its host field and the fix."""

        def refuse(problem: str, fix: str) -> ConfigurationError:
            return self.config_error(f"{problem} ({fix})", field="Host")

        return base_url_from_connection(
            self.vendor, self.connection.host, default, complete=complete, refuse=refuse
        )

    def make_client(self, *, base_url: str, **kwargs: Any) -> HttpClient:
        return HttpClient(
            vendor=self.vendor, base_url=base_url, retry=self.retry, timeouts=self.timeouts, **kwargs
        )

    # -- the Test button ------------------------------------------------------------------------
    #: True while :meth:`test_connection` runs: messages then speak of the form, not of a connection
    #: id (the api-server tests a copy of the form under a random temporary id).
    _testing: bool = False

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call that leaves nothing behind. Returns ``(ok, message)`` and
        never raises; the message names fields by their form labels and no temporary id."""
        self._testing = True
        try:
            ok, message = True, self.check_connection()
        except Exception as exc:
            ok, message = False, scrub(str(exc))
        finally:
            self._testing = False
        return ok, self.form_message(message)

    def form_message(self, message: str) -> str:
        """``message`` as the connection form's user reads it: the fields by their labels, the
        connection as "this connection" rather than by the temporary id Airflow tested it under."""
        message = form_wording(self.conn_type, message)
        if self.conn_id:
            message = message.replace(f"connection '{self.conn_id}'", "this connection")
            message = message.replace(self.conn_id, "this connection")
        return message

    def check_connection(self) -> str:
        """Make one cheap authenticated call and describe what answered; raise on failure."""
        raise NotImplementedError


def trigger_event(payload: dict[str, Any]) -> Any:
    """A ``TriggerEvent`` whose payload is scrubbed of every registered secret, in any encoding.

    Trigger events are stored in the metadata database and shown in the UI; every LedgerLink trigger
    builds its events here, so an event never carries what a vendor echoed back.
    """
    from airflow.triggers.base import TriggerEvent

    return TriggerEvent(scrub_value(payload))


def xcom_result(value: Any) -> Any:
    """An operator's return value (XCom) scrubbed of every registered secret, in any encoding."""
    return scrub_value(value)
