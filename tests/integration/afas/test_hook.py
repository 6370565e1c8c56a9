"""``AfasHook`` against the AFAS emulator over real localhost HTTP.

Each test reads like a use of the hook: test the connection, page through a large connector,
filter a window, write and delete a journal entry, renew the token by one-time password. What the
hook returns is compared with what the sandbox generated or served directly, and the sandbox's
request counters show what went over the wire.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    ServiceUnavailableError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.hooks.afas import KNOWN_ORDERINGS, MAX_QUERY_LENGTH, AfasHook
from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.afas import GET_CONNECTORS, afas_maintenance_fault
from airflow_provider_ledgerlink.sandbox.connections import sandbox_connections
from airflow_provider_ledgerlink.sandbox.faults import latency_fault, reset_fault, status_fault

pytestmark = pytest.mark.timeout(600)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
SCALED_ROWS = 20_000
TRANSACTION_KEY = KNOWN_ORDERINGS["Profit_Transactions"]
WRONG_TOKEN = "<token><version>1</version><data>" + "0123456789ABCDEF" * 4 + "</data></token>"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
def use_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, sandbox: Sandbox, token: str | None = None
) -> str:
    """Point connection ``conn_id`` at ``sandbox``, with its valid token unless ``token`` is given."""
    definition = sandbox_connections(sandbox.url, sandbox.seed)["afas_default"]
    if token is not None:
        definition["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(definition))
    return conn_id


@pytest.fixture
def make_hook() -> Iterator[Any]:
    """``make_hook(conn_id, **kwargs)``: an ``AfasHook`` that is closed after the test."""
    hooks: list[AfasHook] = []

    def make(conn_id: str = "afas_default", **kwargs: Any) -> AfasHook:
        hook = AfasHook(conn_id, **kwargs)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        hook.close()


@pytest.fixture
def hook(afas_connection: str, make_hook: Any) -> AfasHook:
    return make_hook(afas_connection)


def requests_to(sandbox: Sandbox, method: str, path: str) -> dict[str, int]:
    """``{status: count}`` of the requests the sandbox answered for ``method`` and ``path``."""
    by_path = sandbox.stats.get("afas", {}).get("by_path", {})
    return by_path.get(f"{method} /ProfitRestServices{path}", {})


def afas_requests(sandbox: Sandbox) -> int:
    return sandbox.stats.get("afas", {}).get("requests", 0)


def spy(sandbox: Sandbox, name: str, path: str) -> None:
    """Count the AFAS requests whose path and query match ``path`` (a 1 ms latency rule)."""
    sandbox.faults.add(latency_fault(1, vendor="afas", path=path, name=name))


def spied(sandbox: Sandbox, name: str) -> int:
    return next(rule["matched"] for rule in sandbox.faults.to_list() if rule.get("name") == name)


def read_directly(sandbox: Sandbox, connector: str, **params: Any) -> list[dict[str, Any]]:
    """Rows as the sandbox serves them to a plain HTTP client, without the hook."""
    response = httpx.get(
        f"{sandbox.afas_url}/ProfitRestServices/connectors/{connector}",
        params=params,
        headers={"Authorization": sandbox.afas.authorization_header},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def secret_forms(token_xml: str) -> list[str]:
    data = re.search(r"<data>([0-9A-Fa-f]+)</data>", token_xml)
    assert data is not None
    return [token_xml, data.group(1), base64.b64encode(token_xml.encode()).decode()]


def journal_entry(*lines: tuple[str, str, str], description: str = "LedgerLink test entry") -> dict:
    """A FiEntries body: one entry in administration 1, memorial journal, one line per
    ``(account, debit, credit)``."""
    return {
        "FiEntryPar": {
            "Element": {
                "Fields": {"Year": 2026, "Peri": 11, "UnId": 1, "JoCo": "90"},
                "Objects": {
                    "FiEntries": {
                        "Element": [
                            {
                                "Fields": {
                                    "VaAs": "1",
                                    "AcNr": account,
                                    "EnDa": "2026-11-18",
                                    "BpDa": "2026-11-18",
                                    "BpNr": "MEM-0001",
                                    "Ds": description,
                                    "AmDe": debit,
                                    "AmCr": credit,
                                }
                            }
                            for account, debit, credit in lines
                        ]
                    }
                },
            }
        }
    }


BALANCED = (("4400", "121.00", "0"), ("1600", "0", "121.00"))


# --------------------------------------------------------------------------------------------------
# test_connection
# --------------------------------------------------------------------------------------------------
class TestConnection:
    def test_the_valid_token_connects(self, hook: AfasHook) -> None:
        ok, message = hook.test_connection()

        assert ok, message
        assert "O12345AA" in message and "LedgerLink Sandbox" in message

    @pytest.mark.parametrize("code", ["O12345AA", "O12345", "12345", "o12345aa"])
    def test_the_environment_code_as_profit_shows_it_connects_and_is_named(
        self, code: str, sandbox_clean: Sandbox, monkeypatch: pytest.MonkeyPatch, make_hook: Any
    ) -> None:
        definition = sandbox_connections(sandbox_clean.url, sandbox_clean.seed)["afas_default"]
        definition["extra"] = {"environment_id": code}
        monkeypatch.setenv("AIRFLOW_CONN_AFAS_CODE", json.dumps(definition))

        ok, message = make_hook("afas_code").test_connection()

        assert ok, message
        assert message.startswith(
            "Connected to AFAS environment O12345AA (environment number 12345, production"
        )
        assert "note:" not in message

    def test_a_code_of_another_environment_is_pointed_out(
        self, sandbox_clean: Sandbox, monkeypatch: pytest.MonkeyPatch, make_hook: Any
    ) -> None:
        definition = sandbox_connections(sandbox_clean.url, sandbox_clean.seed)["afas_default"]
        definition["extra"] = {"environment_id": "T12345AA"}
        monkeypatch.setenv("AIRFLOW_CONN_AFAS_OTHER", json.dumps(definition))

        ok, message = make_hook("afas_other").test_connection()

        assert ok, message
        assert "environment number 12345, test" in message
        assert "note: Environment code is T12345AA but AFAS reports O12345AA" in message

    def test_a_wrong_token_fails_once_with_the_likely_causes_and_without_the_token(
        self, sandbox_clean: Sandbox, monkeypatch: pytest.MonkeyPatch, make_hook: Any
    ) -> None:
        conn_id = use_connection(monkeypatch, "afas_wrong", sandbox_clean, token=WRONG_TOKEN)

        ok, message = make_hook(conn_id).test_connection()

        assert not ok
        assert "HTTP 401" in message
        for cause in ("wrong, expired or deleted", "environment number or type", "App connector"):
            assert cause in message
        for form in secret_forms(WRONG_TOKEN):
            assert form not in message
        assert requests_to(sandbox_clean, "GET", "/metainfo") == {"401": 1}  # no retry
        assert afas_requests(sandbox_clean) == 1


# --------------------------------------------------------------------------------------------------
# Paging
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scaled_sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=42, port=0, scale={"Profit_Transactions": SCALED_ROWS}) as running:
        yield running


@pytest.fixture
def scaled(scaled_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    scaled_sandbox.reset(state=True)
    use_connection(monkeypatch, "afas_scaled", scaled_sandbox)
    return scaled_sandbox


class TestPaging:
    def test_pages_in_flight_arrive_in_order_and_complete(self, scaled: Sandbox, make_hook: Any) -> None:
        everything = read_directly(
            scaled, "Profit_Transactions", skip=-1, take=-1, orderbyfieldids=",".join(TRANSACTION_KEY)
        )
        assert len(everything) == SCALED_ROWS
        scaled.reset()
        # A little latency per page so the requests surely overlap, however busy the machine is.
        scaled.faults.add(latency_fault(30, vendor="afas", path="/connectors/Profit_Transactions"))

        rows = list(make_hook("afas_scaled", page_size=500, datetimes="raw").get_rows("Profit_Transactions"))

        assert rows == everything
        stats = scaled.stats["afas"]
        assert 1 < stats["max_in_flight"] <= 5
        pages = requests_to(scaled, "GET", "/connectors/Profit_Transactions")
        assert set(pages) == {"200"}
        # 40 full pages and the empty one that ends the read; at most 5 more were already in flight.
        assert SCALED_ROWS // 500 + 1 <= pages["200"] <= SCALED_ROWS // 500 + 1 + 5

    def test_sequential_paging_reads_the_same_rows(self, scaled: Sandbox, make_hook: Any) -> None:
        parallel = list(
            make_hook("afas_scaled", page_size=700, datetimes="raw").get_rows("Profit_Transactions")
        )
        scaled.reset()

        sequential = list(
            make_hook("afas_scaled", page_size=700, max_in_flight=1, datetimes="raw").get_rows(
                "Profit_Transactions"
            )
        )

        assert sequential == parallel
        assert len({tuple(row[key] for key in TRANSACTION_KEY) for row in sequential}) == SCALED_ROWS
        assert scaled.stats["afas"]["max_in_flight"] == 1
        assert requests_to(scaled, "GET", "/connectors/Profit_Transactions") == {"200": 29}  # 28 full + 1

    def test_a_connector_in_one_page_costs_one_request(self, sandbox_clean: Sandbox, hook: AfasHook) -> None:
        rows = list(hook.get_rows("Profit_Administrations"))

        assert len(rows) == 3
        assert afas_requests(sandbox_clean) == 1

    def test_a_connector_without_known_ordering_is_ordered_by_its_metainfo_fields(
        self, sandbox_clean: Sandbox, afas_connection: str, make_hook: Any
    ) -> None:
        connector = "Profit_Debtor_Invoices"
        assert connector not in KNOWN_ORDERINGS
        fields = [field.id for field in GET_CONNECTORS[connector].fields]  # all of them, in order
        hook = make_hook(afas_connection, page_size=64, datetimes="raw")

        rows = list(hook.get_rows(connector))

        assert requests_to(sandbox_clean, "GET", f"/metainfo/get/{connector}") == {"200": 1}
        assert hook.default_ordering(connector) == fields
        assert rows == read_directly(
            sandbox_clean, connector, skip=-1, take=-1, orderbyfieldids=",".join(fields)
        )
        assert len(rows) == sandbox_clean.afas.row_count(connector) == 400
        assert len({row["InvoiceNr"] for row in rows}) == 400


# --------------------------------------------------------------------------------------------------
# Filters, the window and datetimes
# --------------------------------------------------------------------------------------------------
def real_utc(afas_value: str) -> datetime:
    """The instant an AFAS ``…Z`` value (Amsterdam wall clock) stands for."""
    return datetime.fromisoformat(afas_value[:-1]).replace(tzinfo=AMSTERDAM).astimezone(timezone.utc)


class TestFilters:
    @pytest.mark.parametrize(
        ("start", "hours_ahead"),
        [
            pytest.param(datetime(2026, 10, 1, tzinfo=timezone.utc), 2, id="summer-time"),
            pytest.param(datetime(2026, 11, 10, tzinfo=timezone.utc), 1, id="winter-time"),
        ],
    )
    def test_a_utc_window_selects_the_generated_rows_and_their_times_come_back_in_utc(
        self, sandbox_clean: Sandbox, hook: AfasHook, make_hook: Any, start: datetime, hours_ahead: int
    ) -> None:
        end = start + timedelta(days=2)
        generated = {
            (row["EntryNo"], row["SeqNo"]): row
            for row in sandbox_clean.afas.rows("Profit_Transactions")
            if start <= real_utc(row["Modified"]) < end
        }
        assert generated, "the sandbox should have rows in this window"
        window = [("Modified", ">=", start), ("Modified", "<", end)]

        rows = list(hook.get_rows("Profit_Transactions", filters=window))

        assert {(row["EntryNo"], row["SeqNo"]) for row in rows} == set(generated)
        for row in rows:
            raw = generated[(row["EntryNo"], row["SeqNo"])]["Modified"]
            assert row["Modified"] == real_utc(raw).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert start <= datetime.fromisoformat(row["Modified"].replace("Z", "+00:00")) < end
            local = datetime.fromisoformat(raw[:-1])
            assert local - real_utc(raw).replace(tzinfo=None) == timedelta(hours=hours_ahead)
            assert row["EntryDate"] == raw_date(generated, row, "EntryDate")  # dates stay dates

        as_amsterdam = next(
            iter(make_hook(datetimes="amsterdam").get_rows("Profit_Transactions", filters=window))
        )
        assert as_amsterdam["Modified"].endswith(f"+0{hours_ahead}:00")

    def test_a_value_with_a_comma_is_sent_in_the_json_filter_form(
        self, sandbox_clean: Sandbox, hook: AfasHook
    ) -> None:
        description = "Huur kantoor, november; 2e termijn"
        booked = hook.update_connector("FiEntries", journal_entry(*BALANCED, description=description))
        spy(sandbox_clean, "json-filter", r"[?&]filterjson=")

        rows = list(hook.get_rows("Profit_Transactions", filters=[("Description", "eq", description)]))

        assert [(row["EntryNo"], row["Description"]) for row in rows] == [
            (int(booked["FiEntries"]["EnNo"]), description)
        ] * 2
        assert spied(sandbox_clean, "json-filter") == 1

    def test_the_longest_filter_that_fits_is_sent_and_one_character_more_is_refused_before_sending(
        self, sandbox_clean: Sandbox, hook: AfasHook
    ) -> None:
        def query(value: str) -> str:
            return urllib.parse.urlencode(
                {
                    "skip": 0,
                    "take": hook.page_size,
                    "orderbyfieldids": ",".join(TRANSACTION_KEY),
                    "filterfieldids": "Description",
                    "filtervalues": value,
                    "operatortypes": 1,
                }
            )

        longest = "x" * (MAX_QUERY_LENGTH - len(query("")))
        assert len(query(longest)) == MAX_QUERY_LENGTH
        spy(sandbox_clean, "at-the-limit", rf"\?[^?]{{{MAX_QUERY_LENGTH}}}$")

        assert list(hook.get_rows("Profit_Transactions", filters=[("Description", "eq", longest)])) == []
        assert spied(sandbox_clean, "at-the-limit") == 1
        assert requests_to(sandbox_clean, "GET", "/connectors/Profit_Transactions") == {"200": 1}

        sandbox_clean.reset()
        with pytest.raises(ValidationError, match=str(MAX_QUERY_LENGTH)) as refused:
            list(hook.get_rows("Profit_Transactions", filters=[("Description", "eq", longest + "x")]))
        assert "split it" in str(refused.value)
        assert afas_requests(sandbox_clean) == 0

    def test_a_filter_that_cannot_fit_is_refused_before_sending(
        self, sandbox_clean: Sandbox, hook: AfasHook
    ) -> None:
        many = [("AccountNo", "ne", f"{n:04d}, not this one") for n in range(200)]

        with pytest.raises(ValidationError, match="GetConnector Profit_Transactions") as refused:
            list(hook.get_rows("Profit_Transactions", filters=many))

        assert "more than AFAS accepts" in str(refused.value)
        assert afas_requests(sandbox_clean) == 0


def raw_date(generated: dict, row: dict[str, Any], field: str) -> str:
    value = generated[(row["EntryNo"], row["SeqNo"])][field]
    assert value.endswith("T00:00:00Z")
    return value[:10]


# --------------------------------------------------------------------------------------------------
# Metainfo
# --------------------------------------------------------------------------------------------------
class TestMetainfo:
    def test_the_metainfo_calls(self, sandbox_clean: Sandbox, hook: AfasHook) -> None:
        meta = hook.get_metainfo()
        assert "Profit_Transactions" in {c["id"] for c in meta["getConnectors"]}
        assert "FiEntries" in {c["id"] for c in meta["updateConnectors"]}
        assert meta["info"]["envid"] == "O12345AA"

        fields = hook.get_connector_metainfo("Profit_Transactions")["fields"]
        assert [f["id"] for f in fields[:3]] == TRANSACTION_KEY
        assert {f["id"]: f["dataType"] for f in fields}["Modified"] == "date"

        update = hook.get_update_metainfo("FiEntries")
        assert update["name"] == "FiEntryPar"
        assert update["objects"][0]["name"] == "FiEntries"

        assert hook.profit_version() == "25.3.1"
        assert afas_requests(sandbox_clean) == 4


# --------------------------------------------------------------------------------------------------
# UpdateConnectors
# --------------------------------------------------------------------------------------------------
class TestUpdateConnectors:
    def test_a_balanced_entry_is_booked_and_readable(self, sandbox_clean: Sandbox, hook: AfasHook) -> None:
        result = hook.update_connector("FiEntries", journal_entry(*BALANCED))

        assert set(result) == {"FiEntries"}
        entry = result["FiEntries"]
        assert entry["UnId"] == "1" and entry["EnNo"].isdigit()
        assert requests_to(sandbox_clean, "POST", "/connectors/FiEntries") == {"201": 1}
        booked = list(hook.get_rows("Profit_Transactions", filters=[("EntryNo", "eq", entry["EnNo"])]))
        assert [(r["AccountNo"], r["AmtDebit"], r["AmtCredit"]) for r in booked] == [
            ("4400", 121.0, 0.0),
            ("1600", 0.0, 121.0),
        ]

    def test_an_unbalanced_entry_names_the_afas_message_and_its_reference(
        self, sandbox_clean: Sandbox, hook: AfasHook
    ) -> None:
        with pytest.raises(VendorError) as failed:
            hook.update_connector(
                "FiEntries", journal_entry(("4400", "121.00", "0"), ("1600", "0", "100.00"))
            )

        error = failed.value
        logged = sandbox_clean.afas.updates[-1]["response"]
        assert re.fullmatch(r"[0-9A-F]{32}", error.reference or "")
        assert error.reference == logged["profitLogReference"]
        assert "not in balance" in error.message and "21.00" in error.message
        assert f"(vendor reference: {error.reference})" in str(error)
        assert "AFAS Profit UpdateConnector FiEntries (insert)" in str(error)
        assert not error.retryable
        assert requests_to(sandbox_clean, "POST", "/connectors/FiEntries") == {"500": 1}  # sent once

    def test_a_booked_entry_can_be_deleted(self, sandbox_clean: Sandbox, hook: AfasHook) -> None:
        number = hook.update_connector("FiEntries", journal_entry(*BALANCED))["FiEntries"]["EnNo"]
        by_number = [("EntryNo", "eq", number)]
        assert len(list(hook.get_rows("Profit_Transactions", filters=by_number))) == 2

        key = {"Year": 2026, "UnId": 1, "EnNo": number}
        hook.delete("FiEntries", "FiEntryPar", key)

        assert list(hook.get_rows("Profit_Transactions", filters=by_number)) == []
        assert requests_to(
            sandbox_clean, "DELETE", f"/connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo/{number}"
        ) == {"200": 1}
        with pytest.raises(VendorError, match="does not exist"):
            hook.delete("FiEntries", "FiEntryPar", key)


# --------------------------------------------------------------------------------------------------
# A new token by one-time password
# --------------------------------------------------------------------------------------------------
class TestOneTimePassword:
    def test_request_read_the_mail_validate_and_use_the_new_token(
        self, sandbox_clean: Sandbox, hook: AfasHook, monkeypatch: pytest.MonkeyPatch, make_hook: Any
    ) -> None:
        keys = {
            "api_key": sandbox_clean.afas.api_key,
            "environment_key": sandbox_clean.afas.environment_key,
            "user_id": "12345.ANNA",
        }

        hook.request_otp(**keys)
        mail = httpx.get(
            f"{sandbox_clean.url}/_sandbox/afas/otp", params={"user": keys["user_id"]}, timeout=30
        )
        assert mail.status_code == 200, mail.text
        token = hook.validate_otp(**keys, otp=mail.json()["otp"])

        assert token.startswith("<token><version>1</version><data>") and token.endswith("</token>")
        assert token == token.strip()  # AFAS's trailing CRLF is gone
        assert token != sandbox_clean.afas.token_xml
        use_connection(monkeypatch, "afas_renewed", sandbox_clean, token=token)
        renewed = make_hook("afas_renewed")
        ok, message = renewed.test_connection()
        assert ok, message
        assert len(list(renewed.get_rows("Profit_Administrations"))) == 3

    def test_afas_sends_the_new_token_with_a_trailing_crlf(self, sandbox_clean: Sandbox) -> None:
        # What the hook strips: the answer on the wire, read without the hook.
        keys = {
            "apiKey": sandbox_clean.afas.api_key,
            "apiToken": sandbox_clean.afas.environment_key,
            "userId": "12345.SOPHIE",
        }
        base = f"{sandbox_clean.afas_url}/ProfitRestServices"
        assert httpx.post(f"{base}/otprequest", json=keys, timeout=30).status_code == 200
        code = httpx.get(
            f"{sandbox_clean.url}/_sandbox/afas/otp", params={"user": keys["userId"]}, timeout=30
        )
        answer = httpx.post(f"{base}/otpvalidation", json={**keys, "otp": code.json()["otp"]}, timeout=30)

        assert answer.json()["token"].endswith("</token>\r\n")

    def test_a_one_time_password_works_once(self, sandbox_clean: Sandbox, hook: AfasHook) -> None:
        keys = {
            "api_key": sandbox_clean.afas.api_key,
            "environment_key": sandbox_clean.afas.environment_key,
            "user_id": "12345.BRAM",
        }
        hook.request_otp(**keys)
        code = httpx.get(
            f"{sandbox_clean.url}/_sandbox/afas/otp", params={"user": keys["user_id"]}, timeout=30
        ).json()["otp"]
        hook.validate_otp(**keys, otp=code)

        with pytest.raises(VendorError, match="not valid or has expired"):
            hook.validate_otp(**keys, otp=code)

    @pytest.mark.parametrize(
        ("fault", "error"),
        [
            # Maintenance is retried for any other call; AFAS's "unexpected error" is no verdict (a
            # code may have been mailed), nor is a reset after the request went out.
            (afas_maintenance_fault(retry_after=0, path="/otprequest"), ServiceUnavailableError),
            (
                status_fault(
                    500,
                    {"externalMessage": "An unexpected error has occurred."},
                    vendor="afas",
                    path="/otprequest",
                ),
                AmbiguousWriteError,
            ),
            (reset_fault(vendor="afas", path="/otprequest", when="after"), AmbiguousWriteError),
        ],
    )
    def test_an_otp_request_is_sent_once_whatever_the_answer(
        self, sandbox_clean: Sandbox, hook: AfasHook, fault: Any, error: type[Exception]
    ) -> None:
        sandbox_clean.faults.add(fault)
        keys = {
            "api_key": sandbox_clean.afas.api_key,
            "environment_key": sandbox_clean.afas.environment_key,
            "user_id": "12345.ANNA",
        }

        with pytest.raises(error) as failed:
            hook.request_otp(**keys)

        assert sum(requests_to(sandbox_clean, "POST", "/otprequest").values()) == 1
        assert "It was not repeated" in str(failed.value) or "Look in the mailbox of 12345.ANNA" in str(
            failed.value
        )

    @pytest.mark.parametrize("spelling", ["userid", "userId"])
    def test_the_emulator_takes_the_user_id_as_afas_s_example_and_schema_spell_it(
        self, sandbox_clean: Sandbox, spelling: str
    ) -> None:
        # Inrichting.json: the schema's property is userId, both examples send userid.
        base = f"{sandbox_clean.afas_url}/ProfitRestServices"
        keys = {"apiKey": sandbox_clean.afas.api_key, "apiToken": sandbox_clean.afas.environment_key}
        user = f"12345.{spelling}"

        assert httpx.post(f"{base}/otprequest", json={**keys, spelling: user}, timeout=30).status_code == 200
        mail = httpx.get(f"{sandbox_clean.url}/_sandbox/afas/otp", params={"user": user}, timeout=30)
        answer = httpx.post(
            f"{base}/otpvalidation", json={**keys, spelling: user, "otp": mail.json()["otp"]}, timeout=30
        )

        assert answer.status_code == 200 and answer.json()["token"].startswith("<token>")
