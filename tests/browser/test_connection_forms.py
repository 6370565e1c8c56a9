"""The connection forms as a user sees them: Airflow's own api-server and UI, driven in Debian's
Chromium (``/usr/bin/chromium``; ``make venv`` installs it, no browser is downloaded).

One api-server for the whole module; each LedgerLink connection type's Add form is opened, checked
(labels in the declared order, help texts, choices as selects, secrets as password inputs where the
Airflow version draws them) and photographed. ``LEDGERLINK_UPDATE_SCREENSHOTS=1`` (on Airflow 3.3)
writes the pictures into ``docs/img/`` for the vendor docs; otherwise they go to a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_provider_ledgerlink.get_provider_info import get_provider_info

sys.path.insert(0, str(Path(__file__).parents[1] / "system"))
from airflow_processes import (
    API_USER,
    AirflowProcesses,
    RestApi,
    airflow_env,
    create_api_user,
    free_port,
    wait_for,
)

CHROMIUM = "/usr/bin/chromium"
AIRFLOW = Version(Version(airflow_version).base_version).release[:2]
#: The docs show the forms of the current Airflow line; other versions' pictures stay out of the tree.
DOCS_IMAGES = Path(__file__).parents[2] / "docs" / "img"
#: Airflow 3.0's form draws every extra field as a text input (no password inputs for extras).
MASKS_SECRET_EXTRAS = AIRFLOW >= (3, 1)
#: Airflow 3.0's UI has no Test button; 3.3's tests a connection from the list.
HAS_TEST_BUTTON = AIRFLOW >= (3, 1)
FORMS = {entry["connection-type"]: entry for entry in get_provider_info()["connection-types"]}
SHORT = {
    "ledgerlink_afas": "afas",
    "ledgerlink_tripletex": "tripletex",
    "ledgerlink_alasco": "alasco",
    "ledgerlink_cash": "cash",
    "ledgerlink_cloudpos": "cloudpos",
}

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A signed-in browser page on a running api-server."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: apt-get install -y chromium (make venv does)"
    home = tmp_path_factory.mktemp("airflow-ui")
    dags = home / "dags"
    dags.mkdir()
    port, password = free_port(), create_api_user(home)
    env = airflow_env(home, dags, port, {}, {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"})
    airflow = AirflowProcesses(home, env)
    api = RestApi(f"http://127.0.0.1:{port}")
    try:
        airflow.run("db", "migrate")
        airflow.start("api-server", "api-server", "--port", str(port), "--host", "127.0.0.1")
        wait_for("the api-server", lambda: (airflow.check_alive(), api.healthy())[1], 240)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.set_default_timeout(30_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.fill("input[name=username]", API_USER)
            page.fill("input[name=password]", password)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: "login" not in url)
            page.goto(f"http://127.0.0.1:{port}/connections")
            yield page
            browser.close()
    except BaseException:
        print(airflow.tails("none"))
        raise
    finally:
        api.close()
        airflow.stop()
        shutil.rmtree(home, ignore_errors=True)


def _open_form(page: Any, hook_name: str) -> Any:
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").first.click()
    page.keyboard.type(hook_name.split(" (")[0])
    page.get_by_role("option", name=hook_name).click()
    return dialog


@pytest.mark.parametrize("conn_type", list(FORMS))
def test_connection_form(ui: Any, conn_type: str, tmp_path: Path) -> None:
    form = FORMS[conn_type]
    page = ui
    update_docs = AIRFLOW >= (3, 3) and os.environ.get("LEDGERLINK_UPDATE_SCREENSHOTS") == "1"
    images = DOCS_IMAGES if update_docs else tmp_path
    dialog = _open_form(page, form["hook-name"])
    behaviour = form["ui-field-behaviour"]

    # Standard fields: relabelled, the password an input of type password, the port visible.
    for label in behaviour["relabeling"].values():
        assert dialog.get_by_text(label, exact=True).count() >= 1, label
    assert dialog.locator("input[name=password]").get_attribute("type") == "password"
    assert dialog.locator("input[name=port]").count() == 1
    dialog.screenshot(path=str(images / f"connection-{SHORT[conn_type]}.png"))

    # Extra fields: each label with its help text, in the declared order.
    dialog.get_by_text("Extra Fields", exact=True).click()
    page.wait_for_timeout(500)  # the section's opening animation, for the screenshot only
    text = dialog.inner_text()
    positions = []
    for key, field in form["conn-fields"].items():
        assert field["label"] in text, key
        assert field["description"] in text, key
        positions.append(text.index(field["label"] + "\n"))
        assert dialog.locator(f"[id*=element_{key}], [name*=element_{key}]").count() >= 1, key
        if field["schema"].get("format") == "password" and MASKS_SECRET_EXTRAS:
            assert dialog.locator(f"input[name=element_{key}]").get_attribute("type") == "password", key
        if "enum" in field["schema"]:  # a select, not a text input
            typed = dialog.locator(f"input[name=element_{key}]:not([type=hidden])")
            assert typed.count() == 0, key
    assert positions == sorted(positions)
    dialog.screenshot(path=str(images / f"connection-{SHORT[conn_type]}-extra.png"))
    page.keyboard.press("Escape")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    from airflow_provider_ledgerlink.sandbox import Sandbox

    with Sandbox(seed=42, port=0) as running:
        yield running


WRONG_SECRET = "ledgerlink-wrong-secret-0123456789abcdef"


@pytest.mark.parametrize("conn_type", list(FORMS))
def test_add_save_edit_and_test(ui: Any, sandbox: Any, conn_type: str) -> None:
    """A user adds the connection with the sandbox's credentials, saves it, opens it again (secrets
    masked) and presses Test: success; then with a wrong token, a clear message without the secret."""
    from airflow_provider_ledgerlink.sandbox.connections import sandbox_connections

    page = ui
    form = FORMS[conn_type]
    short = SHORT[conn_type]
    definition = sandbox_connections(sandbox.url, sandbox.seed)[f"{short}_default"]
    conn_id = f"ui_{short}"
    dialog = _open_form(page, form["hook-name"])
    dialog.locator("input[name=connection_id]").fill(conn_id)
    for field in ("host", "login", "password"):
        if definition.get(field):
            dialog.locator(f"input[name={field}]").fill(str(definition[field]))
    dialog.locator("input[name=port]").fill("443")
    dialog.get_by_text("Extra Fields", exact=True).click()
    for key, value in definition.get("extra", {}).items():
        schema = form["conn-fields"][key]["schema"]
        if "enum" in schema or value == schema.get("default"):
            continue
        dialog.locator(f"input[name=element_{key}]").fill(str(value))
    dialog.get_by_role("button", name="Save").click()
    row = page.get_by_role("row").filter(has_text=conn_id)
    row.wait_for()

    # Opened again: the secrets are masked.
    row.get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    password = dialog.locator("input[name=password]")
    assert password.get_attribute("type") == "password"
    html = page.content()
    for secret in _secrets(definition, form):
        assert secret not in html, "a stored secret is shown in the edit form"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")

    if not HAS_TEST_BUTTON:  # Airflow 3.0's UI has no Test button (the docs give the CLI command)
        return
    message = _press_test(page, row)
    assert message.startswith("Test Connection Successful"), message
    assert "Connected to" in message

    # A wrong token: a clear message that names the vendor, and the secret nowhere on the page.
    row.get_by_role("button", name="Edit Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=password]").fill(WRONG_SECRET)
    dialog.get_by_role("button", name="Save").click()
    dialog.wait_for(state="hidden")
    message = _press_test(page, row)
    assert message.startswith("Test Connection Failed"), message
    assert form["hook-name"].split(" (")[0].split(" ")[0] in message, message  # names the vendor
    assert WRONG_SECRET not in page.content()


def _secrets(definition: dict[str, Any], form: dict[str, Any]) -> list[str]:
    secrets = [str(definition["password"])]
    for key, value in definition.get("extra", {}).items():
        if form["conn-fields"][key]["schema"].get("format") == "password":
            secrets.append(str(value))
    return secrets


def _press_test(page: Any, row: Any) -> str:
    """Press the row's Test button and return the text of the notice it shows."""
    from playwright.sync_api import expect

    notices = page.get_by_role("status").filter(has_text="Test Connection")
    expect(notices).to_have_count(0)  # the previous Test's notice has gone
    row.get_by_role("button", name="Test Connection").click()
    expect(notices).to_have_count(1)
    return str(notices.first.inner_text())
