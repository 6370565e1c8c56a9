"""What every LedgerLink hook shares: reading its Airflow connection, clear configuration errors,
one HTTP client per hook, and a ``test_connection`` that never raises and never leaks a secret."""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

from airflow_provider_ledgerlink.core.compat import BaseHook
from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.http import HttpClient, RetryPolicy, Timeouts
from airflow_provider_ledgerlink.core.redaction import scrub

_MISSING = object()


def _connection_type(conn_type: str) -> dict[str, Any]:
    from airflow_provider_ledgerlink.get_provider_info import get_provider_info

    for entry in get_provider_info()["connection-types"]:
        if entry["connection-type"] == conn_type:
            return entry
    raise KeyError(f"no connection type {conn_type!r} in the provider info")


def connection_form_widgets(conn_type: str) -> dict[str, Any]:
    """The connection form's extra fields for Airflow 3.0 and 3.1, built from the provider info's
    ``conn-fields`` (what Airflow 3.2+ reads), so the two declarations can never drift apart."""
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField

    widgets: dict[str, Any] = {}
    for key, field in _connection_type(conn_type).get("conn-fields", {}).items():
        schema = field["schema"]
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        label = lazy_gettext(field["label"])
        if schema.get("format") == "password":
            widgets[key] = PasswordField(label, widget=BS3PasswordFieldWidget())
        elif "boolean" in kinds:
            widgets[key] = BooleanField(label)
        elif "integer" in kinds:
            widgets[key] = IntegerField(label, widget=BS3TextFieldWidget())
        else:
            widgets[key] = StringField(label, widget=BS3TextFieldWidget())
    return widgets


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

    def __init__(
        self,
        conn_id: str,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()

    # -- the connection ---------------------------------------------------------------------------
    @cached_property
    def connection(self) -> Any:
        return self.get_connection(self.conn_id)

    @cached_property
    def _extras(self) -> dict[str, Any]:
        extras = self.connection.extra_dejson
        return extras if isinstance(extras, dict) else {}

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
        """An error that points at the connection field to fix."""
        return ConfigurationError(
            self.vendor,
            f"reading connection '{self.conn_id}'",
            message,
            hint=f"Edit the Airflow connection '{self.conn_id}' and correct: {field}",
        )

    def make_client(self, *, base_url: str, **kwargs: Any) -> HttpClient:
        return HttpClient(
            vendor=self.vendor, base_url=base_url, retry=self.retry, timeouts=self.timeouts, **kwargs
        )

    # -- the Test button ------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call. Returns ``(ok, message)`` and never raises."""
        try:
            return True, self.check_connection()
        except Exception as exc:
            return False, scrub(str(exc))

    def check_connection(self) -> str:
        """Make one cheap authenticated call and describe what answered; raise on failure."""
        raise NotImplementedError
