"""The AFAS Profit emulator, exercised over real localhost HTTP the way a client would use it."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.afas import (
    GET_CONNECTORS,
    AfasEmulator,
    afas_authorization_header,
    sandbox_afas_token,
    sandbox_afas_token_data,
)
from airflow_provider_ledgerlink.sandbox.data import compile_row_encoder, wallclock_z

HEX32 = re.compile(r"^[0-9A-F]{32}$")
AFAS_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=42, port=0) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(sandbox: Sandbox) -> None:
    sandbox.reset(state=True)


@pytest.fixture
def afas(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client configured the way a user would: base URL plus the AfasToken header."""
    with httpx.Client(
        base_url=sandbox.afas_url + "/ProfitRestServices",
        headers={"Authorization": sandbox.afas.authorization_header},
        timeout=30,
    ) as client:
        yield client


def rows(client: httpx.Client, connector: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/connectors/{connector}", params=params)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def everything(client: httpx.Client, connector: str, **params: Any) -> list[dict[str, Any]]:
    return rows(client, connector, skip=-1, take=-1, **params)


def assert_afas_error(response: httpx.Response, message: str | None = None) -> dict[str, Any]:
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"externalMessage", "errorNumber", "profitLogReference"}
    assert HEX32.match(body["profitLogReference"])
    if message is not None:
        assert message in body["externalMessage"]
    return body


# --------------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------------
class TestAuthentication:
    def test_valid_token_is_accepted(self, afas: httpx.Client) -> None:
        response = afas.get("/ProfitVersion")
        assert response.status_code == 200
        assert set(response.json()) == {"version"}

    def test_token_helpers_describe_the_header(self, sandbox: Sandbox) -> None:
        emulator = sandbox.afas
        assert emulator.environment_id == "12345"
        assert re.fullmatch(r"[0-9A-F]{64}", emulator.token_data)
        assert emulator.token_xml == f"<token><version>1</version><data>{emulator.token_data}</data></token>"
        assert emulator.token_xml == sandbox_afas_token(42)
        assert (
            emulator.authorization_header
            == "AfasToken " + base64.b64encode(emulator.token_xml.encode()).decode()
        )

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "Bearer abc",
            "AfasToken",
            "AfasToken " + base64.b64encode(b"<token><version>1</version><data>00</data></token>").decode(),
            "AfasToken not-base64-at-all!",
            # The bare data part is not a token; clients must wrap it in the XML.
            "AfasToken " + base64.b64encode(sandbox_afas_token_data(42).encode()).decode(),
        ],
    )
    def test_missing_or_unknown_token_gives_401_with_empty_body(
        self, sandbox: Sandbox, header: str | None
    ) -> None:
        headers = {"Authorization": header} if header is not None else {}
        response = httpx.get(f"{sandbox.afas_url}/ProfitRestServices/ProfitVersion", headers=headers)
        assert response.status_code == 401
        assert response.content == b""
        assert response.headers["content-length"] == "0"
        assert response.headers["content-type"].startswith("application/xml")

    def test_raw_xml_token_gives_500(self, sandbox: Sandbox) -> None:
        response = httpx.get(
            f"{sandbox.afas_url}/ProfitRestServices/connectors/Profit_Administrations",
            headers={"Authorization": "AfasToken " + sandbox.afas.token_xml},
        )
        assert "Base64" in assert_afas_error(response)["externalMessage"]

    def test_connector_outside_the_app_connector_gives_401(self, afas: httpx.Client) -> None:
        for path in (
            "/connectors/Profit_Salaries",
            "/metainfo/get/Profit_Salaries",
            "/metainfo/update/KnEmployee",
        ):
            response = afas.get(path)
            assert response.status_code == 401
            assert response.content == b""

    def test_paths_are_case_insensitive(self, sandbox: Sandbox) -> None:
        headers = {"Authorization": sandbox.afas.authorization_header}
        for path in (
            "/profitrestservices/profitversion",
            "/ProfitRestServices/MetaInfo",
            "/PROFITRESTSERVICES/metainfo",
        ):
            assert httpx.get(sandbox.afas_url + path, headers=headers).status_code == 200

    def test_unknown_path_gives_404(self, afas: httpx.Client) -> None:
        assert afas.get("/nothing/here").status_code == 404


# --------------------------------------------------------------------------------------------------
# GetConnector paging
# --------------------------------------------------------------------------------------------------
class TestPaging:
    def test_defaults_are_skip_0_take_100(self, afas: httpx.Client) -> None:
        response = afas.get("/connectors/Profit_Transactions")
        body = response.json()
        assert (body["skip"], body["take"], len(body["rows"])) == (0, 100, 100)
        assert response.headers["content-type"].startswith("application/json")
        assert b"\n" not in response.content  # Profit 7 sends JSON on one line

    def test_pages_are_consecutive_slices(self, afas: httpx.Client) -> None:
        order = {"orderbyfieldids": "EntryNo,SeqNo"}
        whole = rows(afas, "Profit_Transactions", skip=0, take=30, **order)
        page = afas.get("/connectors/Profit_Transactions", params={"skip": 10, "take": 7, **order}).json()
        assert page["skip"] == 10 and page["take"] == 7
        assert page["rows"] == whole[10:17]

    def test_last_page_is_short_and_take_is_echoed(self, afas: httpx.Client) -> None:
        body = afas.get("/connectors/Profit_Debtor", params={"skip": 240, "take": 100}).json()
        assert (body["take"], len(body["rows"])) == (100, 10)

    def test_skip_minus_one_returns_everything(self, afas: httpx.Client, sandbox: Sandbox) -> None:
        body = afas.get("/connectors/Profit_Debtor", params={"skip": -1, "take": -1}).json()
        assert (body["skip"], body["take"]) == (-1, -1)
        assert len(body["rows"]) == sandbox.afas.row_count("Profit_Debtor") == 250
        assert len(rows(afas, "Profit_Debtor", skip=-1, take=5)) == 250  # take is ignored

    @pytest.mark.parametrize("params", [{"take": 0}, {"skip": 2, "take": -1}, {"take": "ten"}])
    def test_invalid_take_gives_the_generic_500(self, afas: httpx.Client, params: dict[str, Any]) -> None:
        first = assert_afas_error(afas.get("/connectors/Profit_Debtor", params=params))
        second = assert_afas_error(afas.get("/connectors/Profit_Debtor", params=params))
        assert first["externalMessage"] == "An unexpected error has occurred."
        assert first["errorNumber"] == -2147180999
        assert first["profitLogReference"] != second["profitLogReference"]

    def test_odd_skip_values_count_as_zero(self, afas: httpx.Client) -> None:
        first = rows(afas, "Profit_Debtor", take=3)
        assert rows(afas, "Profit_Debtor", skip=-7, take=3) == first
        assert rows(afas, "Profit_Debtor", skip="x", take=3) == first

    def test_query_string_longer_than_2049_characters_gives_404(self, sandbox: Sandbox) -> None:
        url = f"{sandbox.afas_url}/ProfitRestServices/connectors/Profit_Debtor"
        headers = {"Authorization": sandbox.afas.authorization_header}
        prefix = "filterfieldids=DebtorName&operatortypes=6&filtervalues="
        exactly = prefix + "x" * (2049 - len(prefix))
        assert httpx.get(f"{url}?{exactly}", headers=headers).status_code == 200
        response = httpx.get(f"{url}?{exactly}x", headers=headers)
        assert response.status_code == 404
        assert response.content == b""


# --------------------------------------------------------------------------------------------------
# Filters and ordering: the answers must equal filtering and sorting all rows by hand
# --------------------------------------------------------------------------------------------------
def key_of(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


class TestFilters:
    @pytest.fixture
    def all_rows(self, afas: httpx.Client) -> list[dict[str, Any]]:
        return everything(afas, "Profit_Transactions", orderbyfieldids="EntryNo,SeqNo")

    def test_comma_is_and(self, afas: httpx.Client, all_rows: list[dict[str, Any]]) -> None:
        found = everything(
            afas,
            "Profit_Transactions",
            filterfieldids="UnitId,JournalId",
            filtervalues="2,70",
            operatortypes="1,1",
        )
        expected = [r for r in all_rows if r["UnitId"] == 2 and r["JournalId"] == "70"]
        assert found and sorted(map(json.dumps, found)) == sorted(map(json.dumps, expected))

    def test_semicolon_is_or(self, afas: httpx.Client, all_rows: list[dict[str, Any]]) -> None:
        found = everything(
            afas,
            "Profit_Transactions",
            filterfieldids="JournalId;AccountNo",
            filtervalues="50;8010",
            operatortypes="1;1",
            orderbyfieldids="EntryNo,SeqNo",
        )
        assert found == [r for r in all_rows if r["JournalId"] == "50" or r["AccountNo"] == "8010"]

    def test_filterjson_ands_fields_and_ors_filters(
        self, afas: httpx.Client, all_rows: list[dict[str, Any]]
    ) -> None:
        document = {
            "Filters": {
                "Filter": [
                    {
                        "@FilterId": "Filter 1",
                        "Field": [
                            {"@FieldId": "UnitId", "@OperatorType": "1", "#text": "1"},
                            {"@FieldId": "AmtDebit", "@OperatorType": "4", "#text": "10000"},
                        ],
                    },
                    {
                        "@FilterId": "Filter 2",
                        "Field": {"@FieldId": "VatCode", "@OperatorType": "1", "#text": "1"},
                    },
                ]
            }
        }
        found = everything(
            afas, "Profit_Transactions", filterjson=json.dumps(document), orderbyfieldids="EntryNo,SeqNo"
        )
        expected = [
            r for r in all_rows if (r["UnitId"] == 1 and r["AmtDebit"] > 10000) or r["VatCode"] == "1"
        ]
        assert found and found == expected

    @pytest.mark.parametrize(
        ("field", "operator", "value", "check"),
        [
            ("AccountNo", 1, "1300", lambda v: v == "1300"),
            ("AmtDebit", 2, "20000", lambda v: v >= 20000),
            ("AmtCredit", 3, "10", lambda v: v <= 10),
            ("EntryNo", 4, "102000", lambda v: v > 102000),
            ("EntryNo", 5, "100123", lambda v: v < 100123),
            ("Description", 6, "inkoopfactuur", lambda v: "inkoopfactuur" in v.lower()),
            ("JournalId", 7, "70", lambda v: v != "70"),
            ("InvoiceId", 8, "", lambda v: v is None),
            ("InvoiceId", 9, "", lambda v: v is not None),
            ("VoucherNo", 10, "60-", lambda v: v.startswith("60-")),
            ("Description", 11, "factuur", lambda v: "factuur" not in v.lower()),
            ("VoucherNo", 12, "6", lambda v: not v.startswith("6")),
            ("AccountNo", 13, "00", lambda v: v.endswith("00")),
            ("AccountNo", 14, "00", lambda v: not v.endswith("00")),
            ("Description", 15, "kasbon", lambda v: "kasbon" in v.lower()),
        ],
    )
    def test_operators(
        self,
        afas: httpx.Client,
        all_rows: list[dict[str, Any]],
        field: str,
        operator: int,
        value: str,
        check: Any,
    ) -> None:
        found = everything(
            afas,
            "Profit_Transactions",
            filterfieldids=field,
            filtervalues=value,
            operatortypes=str(operator),
            orderbyfieldids="EntryNo,SeqNo",
        )
        assert found == [r for r in all_rows if check(r[field])]
        assert 0 < len(found) < len(all_rows)

    def test_empty_operator_accepts_the_documented_quotes(self, afas: httpx.Client) -> None:
        found = everything(
            afas, "Profit_Transactions", filterfieldids="InvoiceId", filtervalues='""', operatortypes="8"
        )
        assert found and all(r["InvoiceId"] is None for r in found)

    @pytest.mark.parametrize("field", ["Modified", "Created", "EntryDate", "EntryNo"])
    def test_range_filters_on_monotonic_fields(
        self, afas: httpx.Client, all_rows: list[dict[str, Any]], field: str
    ) -> None:
        values = sorted({r[field] for r in all_rows})
        low, high = values[len(values) // 3], values[2 * len(values) // 3]
        if isinstance(low, str):  # date filter values go without the Z
            low, high = low.rstrip("Z"), high.rstrip("Z")
        cases = {
            "2,5": lambda v: key_of(low) <= key_of(v) < key_of(high),
            "4,3": lambda v: key_of(low) < key_of(v) <= key_of(high),
        }
        for operators, check in cases.items():
            found = everything(
                afas,
                "Profit_Transactions",
                filterfieldids=f"{field},{field}",
                filtervalues=f"{low},{high}",
                operatortypes=operators,
                orderbyfieldids="EntryNo,SeqNo",
            )
            expected = [
                r for r in all_rows if check(r[field] if not isinstance(r[field], str) else r[field][:19])
            ]
            assert found == expected and found

    def test_year_filters(self, afas: httpx.Client, all_rows: list[dict[str, Any]]) -> None:
        this_year = {"filterfieldids": "Year", "filtervalues": "2026"}
        assert len(everything(afas, "Profit_Transactions", operatortypes="1", **this_year)) == len(all_rows)
        assert everything(afas, "Profit_Transactions", operatortypes="5", **this_year) == []

    def test_daily_window_on_modified(self, afas: httpx.Client, all_rows: list[dict[str, Any]]) -> None:
        found = everything(
            afas,
            "Profit_Transactions",
            filterfieldids="Modified,Modified",
            filtervalues="2026-11-19T00:00:00,2026-11-20T00:00:00",
            operatortypes="2,5",
            orderbyfieldids="Modified",
        )
        assert found == [r for r in all_rows if r["Modified"].startswith("2026-11-19")]
        assert len(found) > 20

    def test_equality_on_a_datetime_matches_the_second(
        self, afas: httpx.Client, all_rows: list[dict[str, Any]]
    ) -> None:
        stamp = all_rows[1000]["Modified"]
        found = everything(afas, "Profit_Transactions", filterfieldids="Modified", filtervalues=stamp[:-1])
        assert found and all(r["Modified"] == stamp for r in found)

    def test_unknown_field_gives_500(self, afas: httpx.Client) -> None:
        response = afas.get(
            "/connectors/Profit_Debtor", params={"filterfieldids": "Nope", "filtervalues": "1"}
        )
        assert_afas_error(response, "Connector field 'Nope' not found")
        response = afas.get("/connectors/Profit_Debtor", params={"orderbyfieldids": "-Nope"})
        assert_afas_error(response, "Connector field 'Nope' not found")

    def test_bad_value_for_a_typed_field_gives_500(self, afas: httpx.Client) -> None:
        response = afas.get(
            "/connectors/Profit_Transactions", params={"filterfieldids": "EntryNo", "filtervalues": "abc"}
        )
        assert_afas_error(response, "EntryNo")


class TestOrdering:
    @pytest.mark.parametrize(
        "order",
        [
            "EntryNo,SeqNo,Year,Period,JournalId,AccountNo,-AmtDebit",
            "UnitId,EntryNo,SeqNo",
            "-UnitId,-EntryNo,-SeqNo",
            "-AmtDebit,EntryNo,SeqNo",
            "AccountNo,-EntryNo,SeqNo",
            "-Modified",
        ],
    )
    def test_pages_follow_the_requested_order(self, afas: httpx.Client, order: str) -> None:
        all_rows = everything(afas, "Profit_Transactions", orderbyfieldids="EntryNo,SeqNo")
        expected = list(all_rows)
        for item in reversed(order.split(",")):
            name = item.lstrip("-")
            expected.sort(key=lambda r, name=name: key_of(r[name]), reverse=item.startswith("-"))
        paged: list[dict[str, Any]] = []
        skip = 0
        while True:
            page = rows(afas, "Profit_Transactions", skip=skip, take=700, orderbyfieldids=order)
            paged += page
            skip += 700
            if len(page) < 700:
                break
        names = [item.lstrip("-") for item in order.split(",")]
        assert [[r[n] for n in names] for r in paged] == [[r[n] for n in names] for r in expected]
        assert sorted(json.dumps(r, sort_keys=True) for r in paged) == sorted(
            json.dumps(r, sort_keys=True) for r in all_rows
        )

    def test_one_administration_is_a_lane(self, afas: httpx.Client) -> None:
        found = everything(
            afas,
            "Profit_Transactions",
            filterfieldids="UnitId",
            filtervalues="3",
            orderbyfieldids="-EntryNo,-SeqNo",
        )
        expected = [
            r
            for r in everything(afas, "Profit_Transactions", orderbyfieldids="EntryNo,SeqNo")
            if r["UnitId"] == 3
        ]
        assert found == expected[::-1]
        page = rows(afas, "Profit_Transactions", skip=100, take=50, filterfieldids="UnitId", filtervalues="3")
        assert page == expected[100:150]


# --------------------------------------------------------------------------------------------------
# Data: types, time zone, determinism, declared orderings, scale
# --------------------------------------------------------------------------------------------------
class TestData:
    def test_amsterdam_wall_clock_with_z(self) -> None:
        assert wallclock_z(datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc)) == "2026-07-01T12:00:00Z"
        assert wallclock_z(datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)) == "2026-12-01T11:00:00Z"

    def test_dates_and_amounts_look_like_afas(self, afas: httpx.Client) -> None:
        for row in rows(afas, "Profit_Transactions", take=200):
            assert AFAS_DATETIME.match(row["Modified"]) and row["Created"] == row["Modified"]
            assert row["EntryDate"].endswith("T00:00:00Z") and row["VoucherDate"].endswith("T00:00:00Z")
            assert row["VoucherDate"] <= row["EntryDate"]
            for amount in (row["AmtDebit"], row["AmtCredit"]):
                assert isinstance(amount, float) and round(amount, 2) == amount
        modified = [r["Modified"] for r in everything(afas, "Profit_Transactions")]
        assert "2026-09-2" < min(modified) < max(modified) < "2026-11-20"

    def test_journal_entries_balance(self, afas: httpx.Client) -> None:
        totals: dict[int, float] = {}
        for row in everything(afas, "Profit_Transactions"):
            totals[row["EntryNo"]] = totals.get(row["EntryNo"], 0) + row["AmtDebit"] - row["AmtCredit"]
        assert len(totals) == 2500
        assert all(abs(total) < 0.005 for total in totals.values())

    def test_metainfo_describes_the_rows(self, afas: httpx.Client) -> None:
        for connector in GET_CONNECTORS:
            meta = afas.get(f"/metainfo/get/{connector}").json()
            assert meta["name"] == connector
            row = rows(afas, connector, take=1)[0]
            assert [f["id"] for f in meta["fields"]] == list(row)
            for item in meta["fields"]:
                value = row[item["id"]]
                if value is None:
                    continue
                expected = {"int": int, "decimal": float, "boolean": bool, "string": str, "date": str}[
                    item["dataType"]
                ]
                assert isinstance(value, expected), (connector, item)
                if item["dataType"] == "date":
                    assert AFAS_DATETIME.match(value)

    def test_same_seed_same_rows_other_seed_other_rows(self) -> None:
        first, again, other = AfasEmulator(seed=42), AfasEmulator(seed=42), AfasEmulator(seed=7)
        for connector in ("Profit_Transactions", "Profit_Debtor", "Profit_DossierItems"):
            assert first.rows(connector, 0, 50) == again.rows(connector, 0, 50)
            assert first.rows(connector, 0, 50) != other.rows(connector, 0, 50)
        assert first.token_xml == again.token_xml != other.token_xml

    @pytest.mark.parametrize("connector", sorted(GET_CONNECTORS))
    def test_declared_orders_hold_and_fast_encoding_is_plain_json(self, connector: str) -> None:
        emulator = AfasEmulator(seed=3)
        spec = GET_CONNECTORS[connector]
        names = [f.id for f in spec.fields]
        generated = emulator.rows(connector)
        assert len(generated) == emulator.row_count(connector)
        dataset = emulator._datasets[connector]  # the encoder is internal; its output must be plain JSON
        for i in range(min(300, dataset.count)):
            row = dataset.row(i)
            plain = json.dumps(dict(zip(names, row, strict=True)), separators=(",", ":"), ensure_ascii=False)
            assert dataset.encode(row) == plain
        for name in spec.monotonic:
            values = [key_of(r[name]) for r in generated]
            assert values == sorted(values), name
        for name, earlier in spec.ordered.items():
            keys = [tuple(key_of(r[n]) for n in (*earlier, name)) for r in generated]
            assert keys == sorted(keys), name
        if spec.unique:
            assert len({tuple(r[n] for n in spec.unique) for r in generated}) == len(generated)

    def test_scale_to_a_million_rows_keeps_pages_cheap(self, capsys: pytest.CaptureFixture[str]) -> None:
        with (
            Sandbox(seed=42, scale={"Profit_Transactions": 1_000_000}) as big,
            httpx.Client(
                base_url=big.afas_url + "/ProfitRestServices",
                headers={"Authorization": big.afas.authorization_header},
                timeout=30,
            ) as client,
        ):
            assert big.afas.row_count("Profit_Transactions") == 1_000_000
            page = rows(
                client, "Profit_Transactions", skip=998_000, take=1000, orderbyfieldids="EntryNo,SeqNo"
            )
            assert [r["EntryNo"] for r in page[::2]] == list(range(100_000 + 499_000, 100_000 + 499_500))
            tail = rows(
                client, "Profit_Transactions", skip=999_500, take=1000, orderbyfieldids="UnitId,EntryNo,SeqNo"
            )
            assert len(tail) == 500 and {r["UnitId"] for r in tail} == {3}
            window = rows(
                client,
                "Profit_Transactions",
                take=100_000,
                filterfieldids="Modified,Modified",
                filtervalues="2026-11-19T12:00:00,2026-11-19T13:00:00",
                operatortypes="2,5",
                orderbyfieldids="Modified",
            )
            assert 500 < len(window) < 1200
            assert all("2026-11-19T12:" in r["Modified"] for r in window)
            every_field = ",".join(f.id for f in GET_CONNECTORS["Profit_Transactions"].fields)
            assert (
                len(rows(client, "Profit_Transactions", skip=900_000, take=10, orderbyfieldids=every_field))
                == 10
            )
            response = client.get(
                "/connectors/Profit_Transactions", params={"take": 10, "orderbyfieldids": "AmtDebit"}
            )
            assert_afas_error(response, "Out of memory")

            started = time.perf_counter()
            for n in range(100):
                params = {"skip": n * 1000 + 500_000, "take": 1000, "orderbyfieldids": "UnitId,EntryNo,SeqNo"}
                assert (
                    len(client.get("/connectors/Profit_Transactions", params=params).json()["rows"]) == 1000
                )
            elapsed = time.perf_counter() - started
        with capsys.disabled():
            print(
                f"\n[sandbox] 100 pages x 1000 AFAS rows over HTTP (client parsing included): {elapsed:.2f} s"
            )


# --------------------------------------------------------------------------------------------------
# Metainfo
# --------------------------------------------------------------------------------------------------
class TestMetainfo:
    def test_metainfo_lists_the_app_connector(self, afas: httpx.Client) -> None:
        meta = afas.get("/metainfo").json()
        assert set(meta) == {"updateConnectors", "getConnectors", "info"}
        assert {c["id"] for c in meta["getConnectors"]} == set(GET_CONNECTORS)
        assert {c["id"] for c in meta["updateConnectors"]} == {"FiEntries", "KnSubject"}
        assert meta["info"]["envid"].startswith("O12345")
        assert meta["info"]["tokenExpiry"] == "0"
        assert set(meta["info"]) == {"envid", "appName", "group", "tokenExpiry"}

    def test_get_connector_metainfo(self, afas: httpx.Client) -> None:
        meta = afas.get("/metainfo/get/Profit_Transactions").json()
        fields = {f["id"]: f for f in meta["fields"]}
        assert list(fields)[:3] == ["UnitId", "EntryNo", "SeqNo"]
        assert fields["AmtDebit"]["dataType"] == "decimal" and fields["Modified"]["dataType"] == "date"
        assert set(fields["UnitId"]) == {
            "id", "fieldId", "dataType", "label", "length", "controlType", "decimals", "decimalsFieldId"
        }  # fmt: skip

    def test_update_connector_metainfo(self, afas: httpx.Client) -> None:
        meta = afas.get("/metainfo/update/FiEntries").json()
        assert meta["name"] == "FiEntryPar"
        mandatory = {f["fieldId"] for f in meta["fields"] if f["mandatory"]}
        assert mandatory == {"Year", "Peri", "UnId", "JoCo"}
        lines = meta["objects"][0]
        assert lines["name"] == "FiEntries"
        assert {f["fieldId"] for f in lines["fields"] if f["mandatory"]} == {"VaAs", "AcNr", "EnDa"}


# --------------------------------------------------------------------------------------------------
# UpdateConnectors
# --------------------------------------------------------------------------------------------------
def sandbox_datasets(afas: httpx.Client) -> dict[str, Any]:
    root = str(afas.base_url).split("/afas/")[0]
    return httpx.get(root + "/_sandbox/afas/datasets").json()


def journal_entry(*lines: tuple[str, str, str], objects_as_list: bool = False) -> dict[str, Any]:
    entries = [
        {
            "Fields": {
                "VaAs": "1",
                "AcNr": account,
                "EnDa": "2026-11-18",
                "BpDa": "2026-11-18",
                "AmDe": debit,
                "AmCr": credit,
            }
        }
        for account, debit, credit in lines
    ]
    objects: Any = {"FiEntries": {"Element": entries}}
    return {
        "FiEntryPar": {
            "Element": {
                "Fields": {"Year": "2026", "Peri": "11", "UnId": "1", "JoCo": "90"},
                "Objects": [objects] if objects_as_list else objects,
            }
        }
    }


class TestUpdateConnectors:
    def test_journal_entry_is_booked_and_readable(self, afas: httpx.Client, sandbox: Sandbox) -> None:
        body = journal_entry(("4400", "121.00", "0"), ("1400", "0", "21"), ("1600", "0", "100"))
        response = afas.post("/connectors/FiEntries", json=body)
        assert response.status_code == 201
        result = response.json()["results"]["FiEntries"]
        assert set(result) == {"EnNo", "UnId", "InID"} and result["UnId"] == "1"
        booked = rows(afas, "Profit_Transactions", filterfieldids="EntryNo", filtervalues=result["EnNo"])
        assert [(r["SeqNo"], r["AccountNo"], r["AmtDebit"], r["AmtCredit"]) for r in booked] == [
            (1, "4400", 121.0, 0.0),
            (2, "1400", 0.0, 21.0),
            (3, "1600", 0.0, 100.0),
        ]
        assert booked[0]["EntryDate"] == "2026-11-18T00:00:00Z"
        assert booked[0]["Modified"].startswith("2026-11-20T00:0")  # the sandbox clock starts at the anchor
        newest = rows(afas, "Profit_Transactions", take=3, orderbyfieldids="-Modified")
        assert {r["EntryNo"] for r in newest} == {int(result["EnNo"])}
        changed = everything(afas, "Profit_Fin_ChangedEntrydate", orderbyfieldids="Modified")
        assert changed[-1]["EntryDate"] == "2026-11-18T00:00:00Z"
        log = httpx.get(sandbox.url + "/_sandbox/afas/updates").json()
        assert [(c["method"], c["connector"], c["status"]) for c in log] == [("POST", "FiEntries", 201)]

    def test_objects_may_be_a_list_and_elements_many(self, afas: httpx.Client) -> None:
        one = journal_entry(("4400", "10", "0"), ("1000", "0", "10"), objects_as_list=True)
        two = journal_entry(("4400", "5", "0"), ("1000", "0", "5"))
        body = {"FiEntryPar": {"Element": [one["FiEntryPar"]["Element"], two["FiEntryPar"]["Element"]]}}
        response = afas.post("/connectors/FiEntries", json=body)
        assert response.status_code == 201
        results = response.json()["results"]["FiEntries"]
        assert isinstance(results, list) and len(results) == 2
        assert int(results[1]["EnNo"]) == int(results[0]["EnNo"]) + 1

    def test_unbalanced_entry_is_refused(self, afas: httpx.Client) -> None:
        response = afas.post(
            "/connectors/FiEntries", json=journal_entry(("4400", "121", "0"), ("1600", "0", "100"))
        )
        assert_afas_error(response, "not in balance")
        assert sandbox_datasets(afas)["Profit_Transactions"]["inserted"] == 0

    def test_mandatory_field_is_named(self, afas: httpx.Client) -> None:
        body = journal_entry(("4400", "1", "0"), ("1000", "0", "1"))
        del body["FiEntryPar"]["Element"]["Objects"]["FiEntries"]["Element"][1]["Fields"]["AcNr"]
        assert_afas_error(afas.post("/connectors/FiEntries", json=body), "'AcNr'")

    def test_unknown_account_and_invalid_json(self, afas: httpx.Client) -> None:
        assert_afas_error(
            afas.post("/connectors/FiEntries", json=journal_entry(("4401", "1", "0"), ("1000", "0", "1"))),
            "Account number",
        )
        response = afas.post(
            "/connectors/FiEntries", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400

    def test_delete_removes_the_entry(self, afas: httpx.Client) -> None:
        result = afas.post(
            "/connectors/FiEntries", json=journal_entry(("4400", "7", "0"), ("1000", "0", "7"))
        ).json()
        number = result["results"]["FiEntries"]["EnNo"]
        response = afas.delete(f"/connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo/{number}")
        assert response.status_code == 200 and response.content == b""
        assert not rows(afas, "Profit_Transactions", filterfieldids="EntryNo", filtervalues=number)
        assert_afas_error(afas.delete(f"/connectors/FiEntries/FiEntryPar/Year/2026/UnId/1/EnNo/{number}"))

    def book(self, afas: httpx.Client) -> str:
        response = afas.post(
            "/connectors/FiEntries", json=journal_entry(("4400", "7", "0"), ("1000", "0", "7"))
        )
        assert response.status_code == 201, response.text
        return str(response.json()["results"]["FiEntries"]["EnNo"])

    @pytest.mark.parametrize(
        "shape",
        [
            # The OAS template /connectors/FiEntries/FiEntryPar/@Year/{Year}, with the record's full key.
            "/connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo/{n}",
            "/connectors/FiEntries/FiEntryPar/@UnId/1/@EnNo/{n}/@Year/2026",
            # AFAS's UpdateConnector page writes the key without @ (KnAppointment/KnAppointment/ApId/123).
            "/connectors/FiEntries/FiEntryPar/Year/2026/UnId/1/EnNo/{n}",
        ],
    )
    def test_delete_takes_the_documented_url_shapes(self, afas: httpx.Client, shape: str) -> None:
        number = self.book(afas)
        assert afas.delete(shape.format(n=number)).status_code == 200
        assert not rows(afas, "Profit_Transactions", filterfieldids="EntryNo", filtervalues=number)

    @pytest.mark.parametrize(
        ("shape", "message"),
        [
            # Without the year: not the full key of FiEntryPar.
            ("/connectors/FiEntries/FiEntryPar/UnId/1/EnNo/{n}", "Key field 'Year' is missing"),
            ("/connectors/FiEntries/FiEntryPar/@UnId/1/@EnNo/{n}", "Key field 'Year' is missing"),
            ("/connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo/{n}/@JoCo/90", "not a key field"),
            ("/connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo", "has no value"),
            ("/connectors/FiEntries/FiEntryPar/@Year/2026/@Year/2026/@UnId/1/@EnNo/{n}", "appears twice"),
            (
                "/connectors/FiEntries/FiEntries/@Year/2026/@UnId/1/@EnNo/{n}",
                "Object 'FiEntries' does not exist",
            ),
            (
                "/connectors/FiEntries/FiEntryPar/@Year/2026/@UnId/1/@EnNo/{n}/FiEntries/@SeNo/1",
                "cannot be deleted separately",
            ),
        ],
    )
    def test_delete_refuses_a_url_without_the_full_key(
        self, afas: httpx.Client, shape: str, message: str
    ) -> None:
        number = self.book(afas)
        assert_afas_error(afas.delete(shape.format(n=number)), message)
        assert len(rows(afas, "Profit_Transactions", filterfieldids="EntryNo", filtervalues=number)) == 2

    def test_dossier_item_insert_update_delete(self, afas: httpx.Client) -> None:
        body = {
            "KnSubject": {
                "Element": {
                    "Fields": {"StId": 2, "Ds": "Factuur verstuurd"},
                    "Objects": [{"KnSubjectLink": {"Element": {"Fields": {"SfTp": 2, "SfId": "10007"}}}}],
                }
            }
        }
        response = afas.post("/connectors/KnSubject", json=body)
        assert response.status_code == 201
        item = response.json()["results"]["KnSubject"]["SbId"]
        found = rows(afas, "Profit_DossierItems", filterfieldids="DossierItemId", filtervalues=item)
        assert [(r["Subject"], r["DebtorId"], r["TypeDescription"]) for r in found] == [
            ("Factuur verstuurd", "10007", "Factuur")
        ]
        update = {"KnSubject": {"Element": {"@SbId": int(item), "Fields": {"Ds": "Factuur herinnering"}}}}
        assert afas.put("/connectors/KnSubject", json=update).status_code == 201
        found = rows(afas, "Profit_DossierItems", filterfieldids="DossierItemId", filtervalues=item)
        assert found[0]["Subject"] == "Factuur herinnering"
        assert afas.delete(f"/connectors/KnSubject/KnSubject/@SbId/{item}").status_code == 200
        assert not rows(afas, "Profit_DossierItems", filterfieldids="DossierItemId", filtervalues=item)

    def test_put_changes_a_generated_dossier_item_as_afas_would(self, afas: httpx.Client) -> None:
        # AFAS's PUT example (UpdateConnector REST/JSON help page): the key as "@SbId", only the
        # fields to change. Any existing item can be changed, also one the emulator generated.
        before = rows(afas, "Profit_DossierItems", take=1, orderbyfieldids="DossierItemId")[0]
        item = before["DossierItemId"]
        update = {"KnSubject": {"Element": {"@SbId": item, "Fields": {"Ds": "Onderwerp gewijzigd"}}}}

        response = afas.put("/connectors/KnSubject", json=update)

        assert response.status_code == 201, response.text
        assert response.json() == {"results": {"KnSubject": {"SbId": str(item)}}}
        after = rows(afas, "Profit_DossierItems", filterfieldids="DossierItemId", filtervalues=str(item))
        assert len(after) == 1  # the changed item, not the generated one as well
        assert after[0]["Subject"] == "Onderwerp gewijzigd"
        unchanged = {k: v for k, v in after[0].items() if k not in ("Subject", "Modified")}
        assert unchanged == {k: v for k, v in before.items() if k not in ("Subject", "Modified")}
        assert after[0]["Modified"] > before["Modified"]
        everything_now = everything(afas, "Profit_DossierItems", orderbyfieldids="DossierItemId")
        ids = [r["DossierItemId"] for r in everything_now]
        assert ids.count(item) == 1 and ids == sorted(ids)  # in its place in the ordering
        newest = rows(afas, "Profit_DossierItems", take=1, orderbyfieldids="-Modified")
        assert newest[0]["DossierItemId"] == item

    def test_a_generated_dossier_item_can_be_deleted(self, afas: httpx.Client) -> None:
        item = rows(afas, "Profit_DossierItems", take=1, orderbyfieldids="-DossierItemId")[0]["DossierItemId"]
        assert afas.delete(f"/connectors/KnSubject/KnSubject/@SbId/{item}").status_code == 200
        assert not rows(afas, "Profit_DossierItems", filterfieldids="DossierItemId", filtervalues=str(item))
        assert_afas_error(afas.delete(f"/connectors/KnSubject/KnSubject/@SbId/{item}"), "does not exist")

    def test_put_on_an_item_that_does_not_exist_is_refused(self, afas: httpx.Client) -> None:
        update = {"KnSubject": {"Element": {"@SbId": 99_999_999, "Fields": {"Ds": "x"}}}}
        assert_afas_error(afas.put("/connectors/KnSubject", json=update), "does not exist")

    def test_post_on_the_attachment_sub_object_updates_the_item_and_adds_the_file(
        self, afas: httpx.Client
    ) -> None:
        # AFAS's "POST on SubObject": the main object's key, the sub-object's elements to insert; the
        # OAS lists POST /connectors/KnSubject/KnSubjectAttachment.
        item = rows(afas, "Profit_DossierItems", take=1, orderbyfieldids="DossierItemId")[0]["DossierItemId"]
        body = {
            "KnSubject": {
                "Element": {
                    "@SbId": item,
                    "Objects": [
                        {
                            "KnSubjectAttachment": {
                                "Element": [{"Fields": {"FileName": "factuur.pdf", "FileStream": "JVBERi0="}}]
                            }
                        }
                    ],
                }
            }
        }

        response = afas.post("/connectors/KnSubject/KnSubjectAttachment", json=body)

        assert response.status_code == 201, response.text
        assert response.json() == {"results": {"KnSubject": {"SbId": str(item)}}}
        found = rows(afas, "Profit_DossierItems", filterfieldids="DossierItemId", filtervalues=str(item))
        assert [r["Attachment"] for r in found] == ["factuur.pdf"]

    @pytest.mark.parametrize(
        ("path", "body", "message"),
        [
            # Not a sub-object POST AFAS's OAS lists.
            (
                "/connectors/KnSubject/KnSubjectLink",
                {"KnSubject": {"Element": {"@SbId": 1000}}},
                "ondersteunt geen POST",
            ),
            ("/connectors/FiEntries/FiEntries", {"FiEntryPar": {"Element": {}}}, "ondersteunt geen POST"),
            # The main record must exist, and the sub-object must be there to insert.
            (
                "/connectors/KnSubject/KnSubjectAttachment",
                {
                    "KnSubject": {
                        "Element": {
                            "@SbId": 99_999_999,
                            "Objects": [
                                {"KnSubjectAttachment": {"Element": {"Fields": {"FileName": "a.pdf"}}}}
                            ],
                        }
                    }
                },
                "does not exist",
            ),
            (
                "/connectors/KnSubject/KnSubjectAttachment",
                {"KnSubject": {"Element": {"@SbId": 1000}}},
                "no 'KnSubjectAttachment'",
            ),
        ],
    )
    def test_post_on_a_sub_object_is_refused_where_afas_does_not_offer_it(
        self, afas: httpx.Client, path: str, body: dict[str, Any], message: str
    ) -> None:
        assert_afas_error(afas.post(path, json=body), message)

    def test_chunked_request_body(self, afas: httpx.Client) -> None:
        body = json.dumps(
            {"KnSubject": {"Element": {"Fields": {"StId": 5, "Ds": "Telefoonnotitie"}}}}
        ).encode()
        parts = iter([body[:10], body[10:]])
        response = afas.post(
            "/connectors/KnSubject", content=parts, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 201

    def test_dossier_item_needs_a_subject(self, afas: httpx.Client) -> None:
        response = afas.post(
            "/connectors/KnSubject", json={"KnSubject": {"Element": {"Fields": {"StId": 1}}}}
        )
        assert_afas_error(response, "'Ds'")

    def test_unknown_update_connector_gives_401(self, afas: httpx.Client) -> None:
        response = afas.post("/connectors/KnEmployee", json={"KnEmployee": {"Element": {"Fields": {}}}})
        assert response.status_code == 401 and response.content == b""


# --------------------------------------------------------------------------------------------------
# One-time passwords
# --------------------------------------------------------------------------------------------------
class TestOneTimePassword:
    def test_otp_flow_issues_a_working_token(self, sandbox: Sandbox) -> None:
        base = sandbox.afas_url + "/ProfitRestServices"
        emulator = sandbox.afas
        credentials = {
            "apiKey": emulator.api_key,
            "apiToken": emulator.environment_key,
            "userid": "anna@example.nl",
        }
        response = httpx.post(base + "/otprequest", json=credentials)
        assert response.status_code == 200 and response.content == b""
        otp = httpx.get(sandbox.url + "/_sandbox/afas/otp", params={"user": "anna@example.nl"}).json()["otp"]
        assert re.fullmatch(r"\d{8}", otp)

        wrong = httpx.post(
            base + "/otpvalidation", json={**credentials, "otp": "00000000" if otp != "00000000" else "1"}
        )
        assert_afas_error(wrong, "one-time password")

        response = httpx.post(base + "/otpvalidation", json={**credentials, "otp": otp})
        assert response.status_code == 200
        token = response.json()["token"]
        assert token.endswith("</token>\r\n") and token.startswith("<token><version>1</version><data>")
        header = {"Authorization": afas_authorization_header(token.strip())}
        assert httpx.get(base + "/ProfitVersion", headers=header).status_code == 200

        # The code is single-use, and revoking the token locks it out again.
        assert httpx.post(base + "/otpvalidation", json={**credentials, "otp": otp}).status_code == 500
        assert emulator.revoke_token(token)
        assert httpx.get(base + "/ProfitVersion", headers=header).status_code == 401

    def test_user_id_spelling_and_wrong_keys(self, sandbox: Sandbox) -> None:
        base = sandbox.afas_url + "/ProfitRestServices"
        emulator = sandbox.afas
        good = {"apiKey": emulator.api_key, "apiToken": emulator.environment_key, "userId": "12345.BRAM"}
        assert httpx.post(base + "/otprequest", json=good).status_code == 200
        assert httpx.get(sandbox.url + "/_sandbox/afas/otp", params={"user": "12345.bram"}).status_code == 200
        bad = {**good, "userId": "12345.SEM", "apiToken": "0" * 32}
        assert httpx.post(base + "/otprequest", json=bad).status_code == 200  # no hint that keys are wrong
        assert httpx.get(sandbox.url + "/_sandbox/afas/otp", params={"user": "12345.sem"}).status_code == 404

    def test_credentials_endpoint_for_other_processes(self, sandbox: Sandbox) -> None:
        data = httpx.get(sandbox.url + "/_sandbox/afas/credentials").json()
        assert data["token"] == sandbox.afas.token_xml
        assert data["authorization"] == sandbox.afas.authorization_header
        assert data["api_key"] == sandbox.afas.api_key


# --------------------------------------------------------------------------------------------------
# Server behaviour the extractors rely on
# --------------------------------------------------------------------------------------------------
class TestServer:
    def test_concurrent_keep_alive_requests_are_served_in_parallel(self, sandbox: Sandbox) -> None:
        sandbox.latency_ms = 100
        try:
            limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
            with httpx.Client(
                base_url=sandbox.afas_url + "/ProfitRestServices",
                headers={"Authorization": sandbox.afas.authorization_header},
                limits=limits,
            ) as client:
                statuses: list[int] = []

                def work(n: int) -> None:
                    for page in range(3):
                        response = client.get(
                            "/connectors/Profit_Debtor", params={"skip": page * 10, "take": 10}
                        )
                        statuses.append(response.status_code)

                threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        finally:
            sandbox.latency_ms = 0
        assert statuses == [200] * 24
        stats = sandbox.stats["afas"]
        # served side by side, not one after the other
        assert stats["requests"] == 24 and 2 <= stats["max_in_flight"] <= 8
        assert stats["by_path"]["GET /ProfitRestServices/connectors/Profit_Debtor"] == {"200": 24}

    def test_control_endpoints(self, sandbox: Sandbox, afas: httpx.Client) -> None:
        health = httpx.get(sandbox.url + "/_sandbox/health").json()
        assert health["status"] == "ok" and "afas" in health["vendors"]  # other vendors are mounted too
        afas.get("/ProfitVersion")
        assert httpx.get(sandbox.url + "/_sandbox/stats").json()["afas"]["requests"] == 1
        assert httpx.post(sandbox.url + "/_sandbox/reset").json() == {"status": "ok"}
        assert httpx.get(sandbox.url + "/_sandbox/stats").json()["afas"]["requests"] == 0
        datasets = httpx.get(sandbox.url + "/_sandbox/afas/datasets").json()
        assert datasets["Profit_Transactions"] == {"rows": 5000, "inserted": 0}

    def test_unknown_scale_key_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="Profit_Nope"):
            Sandbox(scale={"Profit_Nope": 3})


def test_row_encoder_matches_json_dumps_including_nulls() -> None:
    fields = [
        ("n", "int", True),
        ("x", "number", False),
        ("s", "string", True),
        ("d", "ascii", True),
        ("b", "bool", False),
    ]
    encode = compile_row_encoder(fields)
    names = [name for name, _, _ in fields]
    for row in [(1, 2.5, 'quote " and é', "2026-01-01T00:00:00Z", True), (None, 0.1, None, None, False)]:
        assert encode(row) == json.dumps(
            dict(zip(names, row, strict=True)), separators=(",", ":"), ensure_ascii=False
        )
