"""The provider as Airflow sees it: registration metadata, hooks, and the connection form.

Airflow finds the provider through the ``apache_airflow_provider`` entry point and validates what
``get_provider_info()`` returns. The Airflow 3 UI draws the connection form from
``GET /ui/connections/hook_meta``. Where that data comes from depends on the Airflow version:

* 3.0 and 3.1 call the hook's ``get_connection_form_widgets()`` / ``get_ui_field_behaviour()``
  (with wtforms and flask-appbuilder mocked);
* 3.2 reads ``conn-fields`` / ``ui-field-behaviour`` from the provider info first, and 3.3 reads only
  those.

So both declarations must exist and say the same thing; these tests hold them to it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.resources
import inspect
import json
import sys
import types
import warnings
from typing import Any

import jsonschema
import pytest
from airflow import __version__ as airflow_version
from packaging.utils import canonicalize_name
from packaging.version import Version

from airflow_provider_ledgerlink import get_provider_info as provider_info_module
from airflow_provider_ledgerlink.get_provider_info import get_provider_info

AIRFLOW_VERSION = Version(Version(airflow_version).base_version)
#: From 3.2 the UI reads the declarative ``conn-fields`` / ``ui-field-behaviour``; before, the hook methods.
UI_READS_PROVIDER_INFO = AIRFLOW_VERSION.release[:2] >= (3, 2)

PACKAGE = "airflow_provider_ledgerlink"
INFO = get_provider_info()
CONNECTION_TYPES = {entry["connection-type"]: entry for entry in INFO["connection-types"]}
LISTED_MODULES = sorted(
    {
        module
        for kind in ("hooks", "operators", "sensors", "triggers")
        for item in INFO.get(kind, [])
        for module in item["python-modules"]
    }
)

#: What the AFAS connection form must show, whichever declaration the UI reads.
AFAS_EXTRA_FIELDS = {
    "environment_id",
    "environment_type",
    "otp_user_id",
    "otp_api_key",
    "otp_environment_token",
    "credential_store",
    "credential_store_conn_id",
}
AFAS_SECRET_EXTRA_FIELDS = {"otp_api_key", "otp_environment_token"}
AFAS_HIDDEN_FIELDS = {"login", "schema"}
#: The fields a connection form may show (the rest of a placeholder's keys would never show).
STANDARD_FIELDS = {"description", "host", "port", "login", "password", "schema"}
#: Extra fields that only matter for credential rotation: every form lists them last.
ROTATION_FIELDS = ("staged_password", "credential_store", "credential_store_conn_id")


def _airflow_schema(name: str) -> dict[str, Any]:
    return json.loads((importlib.resources.files("airflow") / name).read_text())


def _import_string(dotted: str) -> Any:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


# --------------------------------------------------------------------------------------------------
# The provider info dict
# --------------------------------------------------------------------------------------------------
def test_provider_info_validates_against_airflows_schema():

    jsonschema.validate(INFO, _airflow_schema("provider_info.schema.json"))


def test_connection_types_follow_the_declarative_connection_form_schema():
    """``conn-fields`` and ``ui-field-behaviour`` as Airflow 3.2+ defines them (in provider.yaml's schema)."""
    item_schema = _airflow_schema("provider.yaml.schema.json")["properties"]["connection-types"]["items"]
    if "conn-fields" not in item_schema["properties"]:
        assert not UI_READS_PROVIDER_INFO, f"Airflow {airflow_version} should define conn-fields"
        pytest.skip(f"Airflow {airflow_version} predates the declarative connection form (3.2)")

    for entry in INFO["connection-types"]:
        jsonschema.validate(entry, item_schema)
        assert "__" not in entry["connection-type"], "the UI splits extra field keys on '__'"


def test_package_name_is_the_canonical_distribution_name():
    entry_points = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.value.startswith(f"{PACKAGE}.")
    ]
    assert len(entry_points) == 1, entry_points
    assert entry_points[0].load() is get_provider_info
    distribution_name = entry_points[0].dist.metadata["Name"]

    assert INFO["package-name"] == canonicalize_name(distribution_name)


def test_get_provider_info_module_imports_nothing():
    """Every Airflow component calls it, often before anything else is set up."""
    tree = ast.parse(inspect.getsource(provider_info_module))

    imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
    calls = [
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    ]

    assert imports == []
    assert calls == []


@pytest.mark.parametrize("module", LISTED_MODULES)
def test_every_listed_module_imports(module):
    assert importlib.import_module(module)


@pytest.mark.parametrize("conn_type", sorted(CONNECTION_TYPES))
def test_hook_class_matches_its_connection_type_entry(conn_type):
    entry = CONNECTION_TYPES[conn_type]
    hook_class = _import_string(entry["hook-class-name"])

    assert hook_class.conn_type == conn_type
    assert hook_class.hook_name == entry["hook-name"]
    assert hook_class.conn_name_attr
    assert hook_class.default_conn_name
    assert hook_class.conn_name_attr in inspect.signature(hook_class.__init__).parameters


# --------------------------------------------------------------------------------------------------
# The two declarations of the connection form agree
# --------------------------------------------------------------------------------------------------
class _FakeField:
    """Stands in for a wtforms field: keeps the label and the field class the hook chose."""

    def __init__(self, label: str | None = None, validators: Any = None, **kwargs: Any) -> None:
        self.label = label
        self.validators = validators or []
        self.description = kwargs.pop("description", "")
        self.default = kwargs.pop("default", None)
        self.kwargs = kwargs


class _FakeStringField(_FakeField):
    pass


class _FakeAnyOf:
    def __init__(self, values: list[Any]) -> None:
        self.values = values


class _FakePasswordField(_FakeField):
    pass


@pytest.fixture
def fake_form_libraries(monkeypatch):
    """wtforms, flask-babel and flask-appbuilder, as far as the legacy form methods use them.

    Airflow 3 does not install them; where they are installed (the FAB provider brings them), the
    3.0/3.1 api-server patches the same names with its own stand-ins before calling the methods.
    """

    def module(name: str, **attributes: Any) -> types.ModuleType:
        created = types.ModuleType(name)
        created.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, created)
        return created

    fields = {
        "StringField": _FakeStringField,
        "PasswordField": _FakePasswordField,
        "IntegerField": type("IntegerField", (_FakeField,), {}),
        "BooleanField": type("BooleanField", (_FakeField,), {}),
    }
    validators = module("wtforms.validators", Optional=lambda *a, **k: None, any_of=_FakeAnyOf)
    simple = module("wtforms.fields.simple", **fields)
    module(
        "wtforms", validators=validators, fields=module("wtforms.fields", simple=simple, **fields), **fields
    )
    module("flask_babel", lazy_gettext=lambda text: text)
    widgets = {
        name: type(name, (), {})
        for name in ("BS3TextFieldWidget", "BS3TextAreaFieldWidget", "BS3PasswordFieldWidget")
    }
    module("flask_appbuilder", fieldwidgets=module("flask_appbuilder.fieldwidgets", **widgets))


@pytest.mark.parametrize("conn_type", sorted(CONNECTION_TYPES))
def test_conn_fields_match_the_legacy_form_widgets(conn_type, fake_form_libraries):
    entry = CONNECTION_TYPES[conn_type]
    hook_class = _import_string(entry["hook-class-name"])
    # Airflow looks the methods up on the class itself: they are not inherited.
    assert "get_connection_form_widgets" in hook_class.__dict__
    widgets = hook_class.get_connection_form_widgets()
    conn_fields = entry.get("conn-fields", {})

    assert list(widgets) == list(conn_fields)  # the same fields in the same order
    for key, field in conn_fields.items():
        widget = widgets[key]
        assert widget.label == field["label"], key
        assert widget.description == field["description"], key  # the help text under the field
        assert widget.default == field["schema"].get("default"), key
        is_secret = field["schema"].get("format") == "password"
        assert isinstance(widget, _FakePasswordField) == is_secret, key
        choices = [v.values for v in widget.validators if isinstance(v, _FakeAnyOf)]
        assert choices == ([field["schema"]["enum"]] if "enum" in field["schema"] else []), key


def test_form_widgets_need_neither_flask_appbuilder_nor_flask_babel(fake_form_libraries, monkeypatch):
    """Airflow 3.0 installs neither; a hook whose form method imports them shows no fields there."""
    monkeypatch.setitem(sys.modules, "flask_appbuilder", None)
    monkeypatch.setitem(sys.modules, "flask_appbuilder.fieldwidgets", None)
    monkeypatch.setitem(sys.modules, "flask_babel", None)
    for entry in INFO["connection-types"]:
        hook_class = _import_string(entry["hook-class-name"])
        assert set(hook_class.get_connection_form_widgets()) == set(entry["conn-fields"])


@pytest.mark.parametrize("conn_type", sorted(CONNECTION_TYPES))
def test_form_order_connect_first_rotation_last(conn_type):
    keys = list(CONNECTION_TYPES[conn_type]["conn-fields"])
    rotation = [key for key in keys if key in ROTATION_FIELDS]
    assert keys[len(keys) - len(rotation) :] == rotation, keys
    assert [k for k in ROTATION_FIELDS if k in rotation] == rotation


@pytest.mark.parametrize("conn_type", sorted(CONNECTION_TYPES))
def test_every_field_has_help_and_placeholders_target_fields_that_show_them(conn_type):
    """The Airflow 3 forms show placeholders only for the standard fields, a description for every
    extra field; the port stays visible (Airflow 3.3.0–3.3.2's Test needs a stored port)."""
    entry = CONNECTION_TYPES[conn_type]
    behaviour = entry["ui-field-behaviour"]
    assert set(behaviour.get("placeholders", {})) <= STANDARD_FIELDS - set(behaviour["hidden-fields"])
    assert "port" not in behaviour["hidden-fields"]
    assert "443" in behaviour["placeholders"]["port"]
    for key, field in entry["conn-fields"].items():
        assert field.get("description"), key


def test_tripletex_tokens_sit_together():
    """The employee token is the form's password, the last standard field before the extras; the
    consumer token is the first extra field, right after it."""
    entry = CONNECTION_TYPES["ledgerlink_tripletex"]
    assert entry["ui-field-behaviour"]["relabeling"]["password"] == "Employee token"
    assert next(iter(entry["conn-fields"])) == "consumer_token"


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("12345", True),
        ("O12345AA", True),
        ("T12345AA", True),
        ("A12345AA", True),
        ("O12345", True),
        ("1234", False),
        ("X12345AA", False),
        ("12345AAA", False),
    ],
)
def test_afas_environment_pattern(value, accepted):
    import re

    pattern = CONNECTION_TYPES["ledgerlink_afas"]["conn-fields"]["environment_id"]["schema"]["pattern"]
    assert bool(re.fullmatch(pattern, value)) == accepted


@pytest.mark.parametrize("conn_type", sorted(CONNECTION_TYPES))
def test_ui_field_behaviour_matches_the_legacy_method(conn_type):
    entry = CONNECTION_TYPES[conn_type]
    hook_class = _import_string(entry["hook-class-name"])
    assert "get_ui_field_behaviour" in hook_class.__dict__
    legacy = hook_class.get_ui_field_behaviour()  # snake_case keys
    declared = entry.get("ui-field-behaviour", {})  # kebab-case keys

    assert set(legacy.get("hidden_fields", [])) == set(declared.get("hidden-fields", []))
    assert legacy.get("relabeling", {}) == declared.get("relabeling", {})
    for field, placeholder in declared.get("placeholders", {}).items():
        assert legacy.get("placeholders", {}).get(field) == placeholder, field


def test_afas_declares_the_expected_connection_form():
    entry = CONNECTION_TYPES["ledgerlink_afas"]

    assert set(entry["conn-fields"]) == AFAS_EXTRA_FIELDS
    assert {k for k, f in entry["conn-fields"].items() if f["schema"].get("format") == "password"} == (
        AFAS_SECRET_EXTRA_FIELDS
    )
    assert set(entry["ui-field-behaviour"]["hidden-fields"]) == AFAS_HIDDEN_FIELDS
    assert entry["ui-field-behaviour"]["relabeling"]["password"] == "User token"


# --------------------------------------------------------------------------------------------------
# What a running Airflow makes of it
# --------------------------------------------------------------------------------------------------
def _hooks_as_tasks_see_them() -> Any:
    """Connection type → hook, as workers resolve it (the task SDK's own manager from Airflow 3.2)."""
    try:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
    except ImportError:
        assert not UI_READS_PROVIDER_INFO
        from airflow.providers_manager import ProvidersManager

        return ProvidersManager().hooks
    return ProvidersManagerTaskRuntime().hooks


def test_providers_manager_lists_the_provider_and_its_hooks():
    from airflow.providers_manager import ProvidersManager

    providers = ProvidersManager().providers

    assert INFO["package-name"] in providers
    assert providers[INFO["package-name"]].version == importlib.metadata.version(INFO["package-name"])
    hooks = _hooks_as_tasks_see_them()
    for conn_type, entry in CONNECTION_TYPES.items():
        hook = hooks.get(conn_type)
        assert hook is not None, f"{conn_type} is not registered (import error?)"
        assert hook.hook_class_name == entry["hook-class-name"]
        assert hook.package_name == INFO["package-name"]
        assert hook.hook_name == entry["hook-name"]


def _json_table(stdout: str) -> list[dict[str, Any]]:
    """The JSON table a CLI command printed (Airflow 3.0 logs plugin set-up lines on stdout first)."""
    for line in stdout.splitlines():
        if line.startswith("["):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise AssertionError(f"no JSON table in the output:\n{stdout[-2000:]}")


def test_providers_cli_lists_the_provider_and_its_hooks(airflow_cli):
    providers = _json_table(airflow_cli("providers", "list", "--output", "json"))
    hooks = _json_table(airflow_cli("providers", "hooks", "--output", "json"))

    ours = [p for p in providers if p["package_name"] == INFO["package-name"]]
    assert len(ours) == 1
    assert ours[0]["version"] == importlib.metadata.version(INFO["package-name"])
    listed = {h["connection_type"]: h for h in hooks if h["package_name"] == INFO["package-name"]}
    assert set(listed) == set(CONNECTION_TYPES)
    assert listed["ledgerlink_afas"]["class"] == CONNECTION_TYPES["ledgerlink_afas"]["hook-class-name"]
    assert listed["ledgerlink_afas"]["conn_id_attribute_name"] == "afas_conn_id"


def _fresh_providers_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the process-wide ProvidersManager for this test (restored afterwards)."""
    from airflow.providers_manager import ProvidersManager

    instances = getattr(type(ProvidersManager), "_instances", None)  # 3.0: a Singleton metaclass
    if instances is not None:
        monkeypatch.delitem(instances, ProvidersManager, raising=False)
    else:
        monkeypatch.setattr(ProvidersManager, "_instance", None)


@pytest.fixture
def hook_meta(fake_form_libraries, monkeypatch) -> dict[str, dict[str, Any]]:
    """What ``GET /ui/connections/hook_meta`` serves the UI's connection form, per connection type.

    On Airflow 3.0/3.1 it comes from the hook methods, evaluated when the providers manager first
    loads the hooks, and only if wtforms is importable (without it Airflow shows no provider's
    custom fields). So there the test starts from a fresh providers manager, with the form
    libraries present.
    """
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    if not UI_READS_PROVIDER_INFO:
        _fresh_providers_manager(monkeypatch)
    HookMetaService.hook_meta_data.cache_clear()
    try:
        items = HookMetaService.hook_meta_data()
    finally:
        HookMetaService.hook_meta_data.cache_clear()
    return {item.connection_type: item.model_dump(mode="json") for item in items}


def test_hook_meta_shows_the_afas_connection_form(hook_meta):
    """The Airflow 3 UI's connection form for AFAS: labelled extras, the token, hidden fields."""
    afas = hook_meta.get("ledgerlink_afas")
    assert afas is not None, sorted(hook_meta)
    assert afas["hook_class_name"] == CONNECTION_TYPES["ledgerlink_afas"]["hook-class-name"]
    assert afas["hook_name"] == CONNECTION_TYPES["ledgerlink_afas"]["hook-name"]

    standard = afas["standard_fields"]
    # The token goes in the connection's password field: stored encrypted, masked in logs, drawn as
    # a password input.
    assert standard["password"] == {
        "hidden": False,
        "title": "User token",
        "placeholder": "<token><version>1</version><data>…</data></token>",
    }
    assert standard["login"]["hidden"] is True
    assert standard["port"]["hidden"] is False
    assert standard["url_schema"]["hidden"] is True
    assert standard["host"]["hidden"] is False

    extras = afas["extra_fields"]
    assert set(extras) == AFAS_EXTRA_FIELDS
    declared = CONNECTION_TYPES["ledgerlink_afas"]["conn-fields"]
    for key, field in extras.items():
        assert field["schema"]["title"] == declared[key]["label"], key
        assert (field["schema"].get("format") == "password") == (key in AFAS_SECRET_EXTRA_FIELDS), key
    # Help texts, choices and defaults on every Airflow 3 (3.0/3.1 through the hook's form method).
    assert list(extras) == list(declared)
    assert extras["environment_id"]["description"] == declared["environment_id"]["description"]
    assert extras["environment_type"]["schema"]["enum"] == ["production", "test", "accept"]
    assert extras["environment_type"]["value"] == "production"


def test_hook_meta_route_is_protected_and_serves_the_same(airflow_db, hook_meta):
    """Through the real API app: the route needs a signed-in user and answers with the service's data."""
    with warnings.catch_warnings():  # starlette's own deprecation notice about its test client
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    try:
        app = create_app(apps="core")
    except TypeError as exc:
        # Airflow 3.0.0's routes do not load on the FastAPI releases after it (no constraints file).
        if UI_READS_PROVIDER_INFO:
            raise
        pytest.skip(f"the API app of Airflow {airflow_version} does not load with this FastAPI: {exc}")

    with TestClient(app) as client:
        anonymous = client.get("/ui/connections/hook_meta")
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
        response = client.get("/ui/connections/hook_meta", headers={"Authorization": f"Bearer {token}"})

    assert anonymous.status_code == 401
    assert response.status_code == 200, response.text
    served = {item["connection_type"]: item for item in response.json()}
    assert served["ledgerlink_afas"] == hook_meta["ledgerlink_afas"]
