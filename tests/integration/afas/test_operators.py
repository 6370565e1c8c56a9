"""AFAS extracts and writes when things go wrong: vendor faults, a refused token, a task dying
half-way, a write whose answer is lost, and secrets in everything Airflow prints or stores.

The faults come from the sandbox (maintenance 503s, AFAS's own 500s, proxy 502s, connection
resets, truncated bodies, latency). An extract under faults must land exactly the bytes a
fault-free extract lands: the parts are deterministic gzip, so equal checksums mean no row was
lost, duplicated or reordered.

The hooks the operators build use the default ``RetryPolicy``, whose backoffs suit AFAS, not a test
run; the operators take no retry policy, so the default is shortened here with ``monkeypatch``.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import textwrap
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from test_example_dags import without_mask_requests

from airflow_provider_ledgerlink.core import hook as core_hook
from airflow_provider_ledgerlink.core.errors import (
    AmbiguousWriteError,
    AuthenticationError,
    ValidationError,
    VendorError,
)
from airflow_provider_ledgerlink.core.http import RetryPolicy
from airflow_provider_ledgerlink.core.shared_state import MemoryState
from airflow_provider_ledgerlink.hooks.afas import AfasHook
from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator, AfasUpdateConnectorOperator
from airflow_provider_ledgerlink.sandbox import Sandbox
from airflow_provider_ledgerlink.sandbox.afas import afas_maintenance_fault
from airflow_provider_ledgerlink.sandbox.connections import airflow_connection_env, sandbox_connections
from airflow_provider_ledgerlink.sandbox.faults import (
    FaultRule,
    latency_fault,
    reset_fault,
    status_fault,
    truncate_fault,
)

pytestmark = pytest.mark.timeout(600)

TRANSACTIONS = "/connectors/Profit_Transactions"
#: October 2026: about 2,500 rows, 25 pages of 100, in several parts of at most 50 kB.
WINDOW = ("2026-10-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
WRONG_TOKEN = "<token><version>1</version><data>" + "FEDCBA9876543210" * 4 + "</data></token>"


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hooks built without an explicit policy retry after milliseconds instead of seconds."""
    quick = functools.partial(RetryPolicy, initial_backoff=0.01, max_backoff=0.05, max_elapsed=120)
    monkeypatch.setattr(core_hook, "RetryPolicy", quick)


def use_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, sandbox: Sandbox, token: str | None = None
) -> str:
    definition = sandbox_connections(sandbox.url, sandbox.seed)["afas_default"]
    if token is not None:
        definition["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(definition))
    return conn_id


def extract(destination: Path, **kwargs: Any) -> AfasExtractOperator:
    """The extract under test: a month of transactions, small pages and small parts."""
    settings: dict[str, Any] = {
        "task_id": "transactions",
        "connector_id": "Profit_Transactions",
        "modified_field": "Modified",
        "destination": destination.as_uri(),
        "window_start": WINDOW[0],
        "window_end": WINDOW[1],
        "page_size": 100,
        "part_max_bytes": 50_000,
        **kwargs,
    }
    return AfasExtractOperator(**settings)


def landed(summary: dict[str, Any]) -> dict[str, Any]:
    """The extract's output as a reader sees it: the manifest, every file, and the parts' bytes."""
    folder = Path(summary["folder"].removeprefix("file://"))
    (manifest_file,) = folder.glob("_manifest-*.json")
    manifest = json.loads(manifest_file.read_text())
    return {
        "manifest": manifest,
        "files": sorted(path.name for path in folder.iterdir()),
        "parts": [(folder / part["path"]).read_bytes() for part in manifest["parts"]],
        "checksums": [(part["rows"], part["bytes"], part["sha256"]) for part in manifest["parts"]],
    }


def requests_to(sandbox: Sandbox, method: str, path: str) -> dict[str, int]:
    by_path = sandbox.stats.get("afas", {}).get("by_path", {})
    return by_path.get(f"{method} /ProfitRestServices{path}", {})


def afas_requests(sandbox: Sandbox) -> int:
    return sandbox.stats.get("afas", {}).get("requests", 0)


def secret_forms(token_xml: str) -> dict[str, str]:
    """Every form of a token that must never be printed or stored."""
    data = re.search(r"<data>([0-9A-Fa-f]+)</data>", token_xml)
    assert data is not None
    return {
        "token XML": token_xml,
        "token data": data.group(1),
        "Authorization header value": base64.b64encode(token_xml.encode()).decode(),
    }


class RecordingTaskInstance:
    """The part of a task instance ``AfasUpdateConnectorOperator.execute`` uses on failure."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def fault_free(afas_connection: str, sandbox_clean: Sandbox, tmp_path: Path) -> dict[str, Any]:
    """The reference output: the extract without any fault."""
    summary = extract(tmp_path / "fault-free").execute({})
    reference = landed(summary)
    assert reference["manifest"]["rows"] > 2_000
    assert len(reference["parts"]) > 1
    sandbox_clean.reset()
    return reference


# --------------------------------------------------------------------------------------------------
# Transient faults: retried, and the output is byte for byte the fault-free one
# --------------------------------------------------------------------------------------------------
UNEXPECTED_ERROR = {
    "externalMessage": "An unexpected error has occurred.",
    "errorNumber": -2147180999,
    "profitLogReference": "5D1B2C3A4F5E6D7C8B9A0F1E2D3C4B5A",
}
FAULTS: dict[str, list[FaultRule]] = {
    "maintenance-503": [afas_maintenance_fault(retry_after=1, path=TRANSACTIONS, nth=[1, 7])],
    "unexpected-error-500": [
        status_fault(500, UNEXPECTED_ERROR, vendor="afas", path=TRANSACTIONS, nth=[2, 9])
    ],
    "proxy-502": [
        status_fault(
            502,
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            vendor="afas",
            path=TRANSACTIONS,
            content_type="text/html",
            nth=[3, 11],
        )
    ],
    "connection-reset": [reset_fault(vendor="afas", path=TRANSACTIONS, nth=[1, 6, 12])],
    "truncated-body": [truncate_fault(vendor="afas", path=TRANSACTIONS, nth=[4, 13])],
    "latency": [latency_fault(300, vendor="afas", path=TRANSACTIONS, every=4)],
}
FAULTS["all-at-once"] = [
    afas_maintenance_fault(retry_after=1, path=TRANSACTIONS, nth=[5]),
    status_fault(500, UNEXPECTED_ERROR, vendor="afas", path=TRANSACTIONS, nth=[2, 14]),
    status_fault(502, "Bad Gateway", vendor="afas", path=TRANSACTIONS, nth=[8]),
    reset_fault(vendor="afas", path=TRANSACTIONS, nth=[1, 10]),
    truncate_fault(vendor="afas", path=TRANSACTIONS, nth=[3, 17]),
    latency_fault(200, vendor="afas", path=TRANSACTIONS, every=3),
]


@pytest.mark.parametrize("faults", FAULTS.values(), ids=FAULTS.keys())
def test_an_extract_under_faults_lands_exactly_the_fault_free_output(
    faults: list[FaultRule], fault_free: dict[str, Any], sandbox_clean: Sandbox, tmp_path: Path
) -> None:
    for rule in faults:
        sandbox_clean.faults.add(rule)

    summary = extract(tmp_path / "under-faults").execute({})

    for rule in sandbox_clean.faults.to_list():
        assert rule["hits"] > 0, f"the fault {rule} never fired"
    statuses = requests_to(sandbox_clean, "GET", TRANSACTIONS)
    assert statuses["200"] >= len(fault_free["parts"])
    output = landed(summary)
    assert output["manifest"]["rows"] == fault_free["manifest"]["rows"] == summary["rows"]
    assert output["checksums"] == fault_free["checksums"]
    assert output["parts"] == fault_free["parts"]


# --------------------------------------------------------------------------------------------------
# Failures that must not be retried or must not leave half an extract
# --------------------------------------------------------------------------------------------------
def test_a_refused_token_stops_at_the_first_request(
    sandbox_clean: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conn_id = use_connection(monkeypatch, "afas_wrong", sandbox_clean, token=WRONG_TOKEN)

    with pytest.raises(AuthenticationError, match="HTTP 401"):
        extract(tmp_path / "lake", afas_conn_id=conn_id).execute({})

    assert afas_requests(sandbox_clean) == 1
    assert requests_to(sandbox_clean, "GET", TRANSACTIONS) == {"401": 1}
    assert not list((tmp_path / "lake").rglob("_manifest-*.json"))
    assert not list((tmp_path / "lake").rglob("part-*"))


def test_a_task_failing_mid_extract_leaves_the_previous_output_as_it_was(
    sandbox_clean: Sandbox, afas_connection: str, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    before = landed(extract(lake).execute({}))
    sandbox_clean.reset()
    out_of_memory = {
        "externalMessage": "Out of memory",
        "errorNumber": -2147024882,
        "profitLogReference": "A" * 32,
    }
    sandbox_clean.faults.add(status_fault(500, out_of_memory, vendor="afas", path=TRANSACTIONS, nth=[12]))

    with pytest.raises(VendorError, match="Out of memory"):
        extract(lake).execute({})

    assert requests_to(sandbox_clean, "GET", TRANSACTIONS)["200"] >= 10  # it got well under way
    folder = next(lake.rglob("_manifest-*.json")).parent
    assert landed({"folder": folder.as_uri()}) == before  # same manifest, files and bytes


def test_a_first_extract_failing_mid_way_leaves_no_manifest_and_no_parts(
    sandbox_clean: Sandbox, afas_connection: str, tmp_path: Path
) -> None:
    sandbox_clean.faults.add(
        status_fault(400, {"message": "Bad request"}, vendor="afas", path=TRANSACTIONS, nth=[15])
    )

    with pytest.raises(ValidationError):
        extract(tmp_path / "lake").execute({})

    assert requests_to(sandbox_clean, "GET", TRANSACTIONS)["200"] >= 10
    leftovers = [path for path in (tmp_path / "lake").rglob("*") if path.is_file()]
    assert leftovers == []


# --------------------------------------------------------------------------------------------------
# A write whose answer is lost
# --------------------------------------------------------------------------------------------------
VOUCHER = "MEM-2026-1118-01"


def journal_entry(voucher: str = VOUCHER) -> dict[str, Any]:
    lines = [("4400", "121.00", "0"), ("1600", "0", "121.00")]
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
                                    "BpNr": voucher,
                                    "Ds": "Kantoorkosten november",
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


def booked_entries(sandbox: Sandbox, voucher: str = VOUCHER) -> set[str]:
    """Entry numbers in the sandbox carrying ``voucher`` (inserted records only)."""
    return {
        update["response"]["results"]["FiEntries"]["EnNo"]
        for update in sandbox.afas.updates
        if update["method"] == "POST" and update["status"] == 201 and voucher in json.dumps(update["request"])
    }


def booked_entries_in_afas(sandbox: Sandbox, voucher: str) -> set[int]:
    """Entry numbers the emulator holds for ``voucher``, whatever the client was told."""
    return {
        row["EntryNo"]
        for row in sandbox.afas.inserted_rows("Profit_Transactions")
        if row["VoucherNo"] == voucher
    }


@pytest.fixture
def lost_answer(sandbox_clean: Sandbox) -> Sandbox:
    """The next FiEntries insert is applied, then its connection is reset before the answer."""
    sandbox_clean.faults.add(
        reset_fault(vendor="afas", method="POST", path="/connectors/FiEntries", when="after", times=1)
    )
    return sandbox_clean


def test_a_write_whose_answer_is_lost_is_not_sent_again(lost_answer: Sandbox, afas_connection: str) -> None:
    hook = AfasHook(afas_connection)
    try:
        with pytest.raises(AmbiguousWriteError, match="may or may not have been applied"):
            hook.update_connector("FiEntries", journal_entry())
        rows = list(hook.get_rows("Profit_Transactions", filters=[("VoucherNo", "eq", VOUCHER)]))
    finally:
        hook.close()

    assert requests_to(lost_answer, "POST", "/connectors/FiEntries") == {"reset": 1}
    assert len(booked_entries(lost_answer)) == 1
    assert len({row["EntryNo"] for row in rows}) == 1 and len(rows) == 2


def book(voucher: str, **kwargs: Any) -> AfasUpdateConnectorOperator:
    """The write task as a DAG would have it: one journal entry, at-most-once by default."""
    return AfasUpdateConnectorOperator(
        task_id="book_entries", connector_id="FiEntries", records=[journal_entry(voucher)], **kwargs
    )


def new_voucher() -> str:
    """A voucher number of its own, so tests sharing the metadata database share no write record."""
    return f"MEM-{uuid.uuid4().hex[:10]}"


def post_count(sandbox: Sandbox) -> dict[str, int]:
    return requests_to(sandbox, "POST", "/connectors/FiEntries")


def test_a_reset_after_afas_booked_the_entry_books_it_once_and_no_rerun_books_it_again(
    lost_answer: Sandbox, afas_connection: str, airflow_db: Path
) -> None:
    # The default: write records in Airflow Variables, as every worker of a deployment sees them.
    voucher = new_voucher()
    ti = RecordingTaskInstance()

    with pytest.raises(AmbiguousWriteError) as first:
        book(voucher, once_options={"wait": 0}).execute({"ti": ti})

    message = str(first.value)
    assert "may or may not have been applied" in message
    assert (
        f"Check in AFAS Profit whether it was applied: read GetConnector Profit_Transactions filtered on VoucherNo = {voucher}"
        in message
    )
    assert "airflow variables set ledgerlink_once_afasprofit_" in message
    assert (ti.xcom["results"]["in_doubt"], ti.xcom["results"]["failed"]) == (1, 0)
    assert post_count(lost_answer) == {"reset": 1}
    assert len(booked_entries(lost_answer, voucher)) == 1  # AFAS has it once
    assert len(booked_entries_in_afas(lost_answer, voucher)) == 1

    # The task's retry, and a new DAG run: nothing is sent, the doubt is reported again.
    for _attempt in range(2):
        with pytest.raises(AmbiguousWriteError, match="its outcome was never learned"):
            book(voucher, once_options={"wait": 0}).execute({"ti": RecordingTaskInstance()})
    assert post_count(lost_answer) == {"reset": 1}

    # A person finds the entry in Profit and records that; the next run reports it as sent earlier.
    from airflow_provider_ledgerlink.core.once import PREFIX
    from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState

    key = re.search(rf"airflow variables set ({PREFIX}\w+) ", message)
    assert key is not None
    AirflowVariableState().set_json(key.group(1), {"state": "done"})
    summary = book(voucher).execute({"ti": RecordingTaskInstance()})

    assert (summary["created"], summary["already_done"], summary["failed"]) == (0, 1, 0)
    assert post_count(lost_answer) == {"reset": 1}
    assert len(booked_entries(lost_answer, voucher)) == 1


def test_a_booked_entry_is_not_booked_again_by_a_retry_or_a_new_dag_run(
    sandbox_clean: Sandbox, afas_connection: str, airflow_db: Path
) -> None:
    voucher = new_voucher()

    first = book(voucher).execute({"ti": RecordingTaskInstance()})
    again = [book(voucher).execute({"ti": RecordingTaskInstance()}) for _run in range(2)]

    assert (first["created"], first["already_done"]) == (1, 0)
    for summary in again:
        assert (summary["created"], summary["already_done"]) == (0, 1)
        assert summary["results"][0]["result"] == first["results"][0]["result"]  # AFAS's keys
    assert post_count(sandbox_clean) == {"201": 1}
    assert len(booked_entries(sandbox_clean, voucher)) == 1


def test_four_concurrent_tries_book_the_entry_once(sandbox_clean: Sandbox, afas_connection: str) -> None:
    # Slow answers keep the tries overlapping: the others find the write being sent and wait for it.
    sandbox_clean.faults.add(latency_fault(300, vendor="afas", method="POST", path="/connectors/FiEntries"))
    state = MemoryState()
    voucher = new_voucher()
    start = threading.Barrier(4)
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def attempt() -> None:
        operator = book(voucher, once_state=state, once_options={"settle": 2, "poll": 0.05, "wait": 120})
        start.wait()
        try:
            outcomes.append(operator.execute({"ti": RecordingTaskInstance()}))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted((o["created"], o["already_done"]) for o in outcomes) == [(0, 1), (0, 1), (0, 1), (1, 0)]
    assert post_count(sandbox_clean) == {"201": 1}
    assert len(booked_entries(sandbox_clean, voucher)) == 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        # AFAS booked the entry, then answered 500 with its "unexpected error": not a verdict.
        (status_fault(500, UNEXPECTED_ERROR, vendor="afas", method="POST", when="after"), "unexpected error"),
        # A proxy lost AFAS's answer.
        (status_fault(502, "Bad Gateway", vendor="afas", method="POST", when="after"), "HTTP 502"),
        # AFAS booked it, and the answer carries no key: did it book?
        (status_fault(200, "", vendor="afas", method="POST", when="after"), "without the record's key"),
    ],
)
def test_an_answer_that_leaves_the_booking_open_is_ambiguous_and_not_repeated(
    sandbox_clean: Sandbox, afas_connection: str, fault: FaultRule, message: str
) -> None:
    sandbox_clean.faults.add(fault)
    state = MemoryState()
    voucher = new_voucher()

    for _attempt in range(2):  # the failure and the task's retry
        with pytest.raises(AmbiguousWriteError, match=message if _attempt == 0 else "never learned"):
            book(voucher, once_state=state, once_options={"wait": 0}).execute({"ti": RecordingTaskInstance()})

    assert sum(post_count(sandbox_clean).values()) == 1
    assert len(booked_entries_in_afas(sandbox_clean, voucher)) == 1


def test_a_maintenance_503_to_a_booking_is_a_refusal_sent_again_after_the_wait(
    sandbox_clean: Sandbox, afas_connection: str
) -> None:
    # AFAS documents 503 on UpdateConnector calls as "Service unavailable; retry at a later time"
    # (sandbox/specs/afas/Mutaties.json, components.responses.503): the entry was not booked.
    sandbox_clean.faults.add(afas_maintenance_fault(retry_after=0, method="POST", nth=[1]))
    voucher = new_voucher()

    summary = book(voucher, once_state=MemoryState()).execute({"ti": RecordingTaskInstance()})

    assert (summary["created"], summary["in_doubt"]) == (1, 0)
    assert post_count(sandbox_clean) == {"503": 1, "201": 1}
    assert len(booked_entries_in_afas(sandbox_clean, voucher)) == 1


def test_afas_refusing_an_entry_is_no_doubt_and_a_fixed_entry_is_sent(
    sandbox_clean: Sandbox, afas_connection: str
) -> None:
    state = MemoryState()
    voucher = new_voucher()
    unbalanced = journal_entry(voucher)
    unbalanced["FiEntryPar"]["Element"]["Objects"]["FiEntries"]["Element"][1]["Fields"]["AmCr"] = "100.00"

    with pytest.raises(ValidationError, match="not in balance") as refused:
        AfasUpdateConnectorOperator(
            task_id="book_entries", connector_id="FiEntries", records=[unbalanced], once_state=state
        ).execute({"ti": RecordingTaskInstance()})
    assert not isinstance(refused.value, AmbiguousWriteError)

    summary = book(voucher, once_state=state).execute({"ti": RecordingTaskInstance()})

    assert summary["created"] == 1
    assert post_count(sandbox_clean) == {"500": 1, "201": 1}


# --------------------------------------------------------------------------------------------------
# Secrets: not in anything Airflow prints or stores, on success and on an authentication failure
# --------------------------------------------------------------------------------------------------
SECRETS_DAG = textwrap.dedent(
    """
    import os

    import pendulum
    from airflow.sdk import DAG
    from airflow.timetables.interval import CronDataIntervalTimetable

    from airflow_provider_ledgerlink.operators.afas import AfasExtractOperator

    LAKE = os.environ["LEDGERLINK_LAKE"]

    with DAG(
        dag_id="{dag_id}",
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
        catchup=False,
        default_args={{"retries": 0}},
    ):
        AfasExtractOperator(
            task_id="transactions",
            connector_id="Profit_Transactions",
            modified_field="Modified",
            filters=[("JournalId", "ne", "{{{{ params.skip_journal }}}}")],
            params={{"skip_journal": "95"}},
            destination=LAKE + "/afas/Profit_Transactions",
        )
        AfasExtractOperator(
            task_id="transactions_wrong_token",
            afas_conn_id="afas_wrong",
            connector_id="Profit_Transactions",
            modified_field="Modified",
            destination=LAKE + "/afas-wrong/Profit_Transactions",
        )
    """
)


def airflow_version() -> tuple[int, ...]:
    import airflow
    from packaging.version import Version

    return Version(airflow.__version__).release[:2]


def run_dag_file(folder: Path, dag_id: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Load the DAG file in ``folder`` and run it once with ``dag.test()``: ``(run_id, state)``.

    ``dag.test()`` writes the DAGs of the dags folder to the metadata database, so the folder is
    made the dags folder. Airflow 3.0 does not write them itself (and on 3.0.0/3.0.1 only the core
    ``DAG`` class has ``test()``), so there the DagBag is written first.
    """
    import airflow.settings

    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(folder))
    bag = DagBag(dag_folder=str(folder), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    runnable = bag.dags[dag_id]
    if airflow_version() < (3, 1):
        from airflow.dag_processing.bundles.manager import DagBundlesManager

        DagBundlesManager().sync_bundles_to_db()
        bag.sync_to_db(bundle_name="dags-folder", bundle_version=None)
        if not hasattr(runnable, "test"):
            from airflow.models.dag import DAG as CoreDAG

            runnable = CoreDAG.from_sdk_dag(runnable)
    dag_run = runnable.test(logical_date=datetime(2026, 11, 19, tzinfo=timezone.utc))
    return dag_run.run_id, str(dag_run.state)


def stored_for_run(dag_id: str, run_id: str) -> dict[str, Any]:
    """What the metadata database keeps of a run: task states, XCom values, rendered fields."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        states = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
        xcoms = session.execute(
            select(XComModel.task_id, XComModel.key, XComModel.value).where(
                XComModel.dag_id == dag_id, XComModel.run_id == run_id
            )
        ).all()
        rendered = session.execute(
            select(RenderedTaskInstanceFields.task_id, RenderedTaskInstanceFields.rendered_fields).where(
                RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id
            )
        ).all()
    return {
        "states": {task_id: str(state) for task_id, state in states},
        "xcom": {f"{task_id}/{key}": value for task_id, key, value in xcoms},
        "rendered": {task_id: fields for task_id, fields in rendered},
    }


@pytest.fixture
def secrets_dag_env(
    airflow_db: Path, sandbox_clean: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, Any]:
    for name, value in airflow_connection_env(sandbox_clean).items():
        monkeypatch.setenv(name, value)
    use_connection(monkeypatch, "afas_wrong", sandbox_clean, token=WRONG_TOKEN)
    monkeypatch.setenv("LEDGERLINK_LAKE", (tmp_path / "lake").as_uri())
    folder = tmp_path / "dags"
    folder.mkdir()
    dag_id = "afas_secrets_check"
    (folder / f"{dag_id}.py").write_text(SECRETS_DAG.format(dag_id=dag_id))
    return {"folder": folder, "dag_id": dag_id, "home": airflow_db}


LOGGERS_AT_DEBUG = (
    "airflow_provider_ledgerlink",
    "airflow.task.hooks.airflow_provider_ledgerlink",
    "airflow.task.operators.airflow_provider_ledgerlink",
    "httpx",
    "httpcore",
)


def test_no_form_of_a_token_reaches_the_logs_xcom_or_rendered_fields(
    secrets_dag_env: dict[str, Any],
    sandbox_clean: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Everything LedgerLink and the HTTP stack log, down to DEBUG; Airflow's internals at the level
    # Airflow is configured with. (Airflow 3.0's in-process dag.test() supervisor logs each message
    # of its task at DEBUG, including the values a task asks it to mask: not a path of a deployment.)
    for logger in LOGGERS_AT_DEBUG:
        caplog.set_level("DEBUG", logger=logger)
    dag_id = secrets_dag_env["dag_id"]

    run_id, state = run_dag_file(secrets_dag_env["folder"], dag_id, monkeypatch)

    captured = capfd.readouterr()
    task_logs = [
        path.read_text(errors="replace")
        for path in (secrets_dag_env["home"] / "logs").rglob("*")
        if path.is_file() and f"dag_id={dag_id}" in str(path)
    ]
    printed = without_mask_requests("\n".join([captured.out, captured.err, caplog.text, *task_logs]))
    stored = stored_for_run(dag_id, run_id)

    # The run did what the test needs: one extract succeeded, the other failed on the token.
    assert state == "failed"
    assert stored["states"] == {"transactions": "success", "transactions_wrong_token": "failed"}
    assert "AuthenticationError" in printed and "AFAS refused the token" in printed
    assert requests_to(sandbox_clean, "GET", TRANSACTIONS).get("401") == 1
    summary = stored["xcom"]["transactions/return_value"]
    if isinstance(summary, str):  # kept as JSON text by some Airflow versions
        summary = json.loads(summary)
    assert summary["rows"] > 0
    assert "params.skip_journal" not in json.dumps(stored["rendered"]["transactions"], default=str)
    assert "95" in json.dumps(stored["rendered"]["transactions"], default=str)

    everything = {
        "the captured output and task logs": printed,
        "XCom": json.dumps(stored["xcom"], default=str),
        "the rendered template fields": json.dumps(stored["rendered"], default=str),
    }
    tokens = {"valid": sandbox_clean.afas.token_xml, "wrong": WRONG_TOKEN}
    for which, token in tokens.items():
        for form, secret in secret_forms(token).items():
            for where, text in everything.items():
                assert secret not in text, f"the {which} token's {form} appears in {where}"
