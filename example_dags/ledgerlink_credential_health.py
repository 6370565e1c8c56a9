"""Every morning: does each LedgerLink connection still work, and does a credential end soon?

One mapped task per connection makes the connection's own test call (one cheap authenticated
request; a failure fails the task, so your usual failure alerts fire) and reports what ends when:
the Tripletex session and employee token, the AFAS token's ``tokenExpiry``, the age of promoted
Alasco, CASH and CloudPOS credentials and any credential left staged. Warnings go to
``warn_people``: replace its body with your notifier, e.g.
``SlackNotifier(slack_conn_id="slack", text=...)(context)``. A summary (metadata only) lands in
``$LEDGERLINK_LAKE/_reports``.

``LEDGERLINK_CONNECTIONS`` (comma-separated) lists the connections to check; on Airflow 3 a task
cannot list connections itself.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.credential_health import CredentialHealthOperator

REPORTS = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/") + "/_reports"
CONNECTIONS = [
    conn_id.strip()
    for conn_id in os.environ.get(
        "LEDGERLINK_CONNECTIONS",
        "afas_default,tripletex_default,alasco_default,cash_default,cloudpos_default",
    ).split(",")
    if conn_id.strip()
]

log = logging.getLogger(__name__)


def warn_people(context: Any, report: dict[str, Any]) -> None:
    """The notifier hook-in: called with the task's context and the report when there are warnings."""
    for warning in report["warnings"]:
        log.warning("Credential warning: %s", warning)


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: every id in `LEDGERLINK_CONNECTIONS` (default `afas_default`, `tripletex_default`, `alasco_default`, `cash_default`, `cloudpos_default`) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (default `file:///tmp/ledgerlink/lake`); the summary lands under `_reports`
"""
)

with DAG(
    dag_id="ledgerlink_credential_health",
    doc_md=DOC_MD,
    description="Test every LedgerLink connection and warn before a credential ends",
    schedule=CronDataIntervalTimetable("0 6 * * *", timezone="Europe/Amsterdam"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/Amsterdam"),
    catchup=False,
    tags=["ledgerlink", "credentials"],
) as dag:
    checks = CredentialHealthOperator.partial(
        task_id="check", warn_within=timedelta(days=14), on_warning=warn_people
    ).expand(conn_id=CONNECTIONS)

    @task(trigger_rule="all_done")
    def summary(reports: list[dict[str, Any] | None], ds: str | None = None) -> str:
        from airflow.sdk import ObjectStoragePath

        folder = ObjectStoragePath(REPORTS)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"credential_health_{ds}.json"
        checked: dict[str, Any] = {conn_id: "failed: see the task's log" for conn_id in CONNECTIONS}
        checked.update({report["conn_id"]: report for report in reports if report})
        target.write_text(json.dumps(checked, indent=2, sort_keys=True, default=str))
        return str(target)

    summary(checks.output)
