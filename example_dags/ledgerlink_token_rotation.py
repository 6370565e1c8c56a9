"""Keep every LedgerLink credential alive: Tripletex sessions daily, promotions when staged, AFAS on demand.

* ``rotate_tripletex_session`` (daily): a new session token, verified with ``whoAmI``, stored in the
  credential store, the previous one deleted. Every Tripletex task after it uses the stored session.
* ``promote_alasco``, ``promote_cash``, ``promote_cloudpos`` (daily, skipped when nothing is
  staged): after an administrator created a new credential at the vendor and put it in the store's
  staging slot (``ledgerlink_staged_password_<conn_id>`` with the default Variable store), the task
  verifies it with one cheap call and promotes it.
* ``renew_afas_token`` (on demand: trigger the DAG with ``renew_afas_token`` ticked): AFAS e-mails a
  one-time password to the connection's ``otp_user_id``; the task waits for a person to enter it in
  Airflow's "Required actions" (Airflow 3.1+), renews the token, verifies and stores it.
* ``check_tripletex`` proves the next task picks up the rotated session.

Tick ``dry_run`` to verify without changing anything. Each rotation task runs one at a time
(``max_active_tis_per_dag=1``, and ``max_active_runs=1`` here); if other DAGs rotate the same
connections, give those tasks one pool with a single slot (see docs/credentials.md).
A summary (metadata only, never a secret) lands in ``$LEDGERLINK_LAKE/_reports``.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.credential_health import CredentialHealthOperator
from airflow_provider_ledgerlink.operators.token_rotation import TokenRotationOperator

REPORTS = os.environ.get("LEDGERLINK_LAKE", "file:///tmp/ledgerlink/lake").rstrip("/") + "/_reports"
#: Connections whose new credential an administrator stages (no vendor API rotates them).
PROMOTED = {"alasco": "alasco_default", "cash": "cash_default", "cloudpos": "cloudpos_default"}


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `tripletex_default`, `afas_default`, `alasco_default`, `cash_default`, `cloudpos_default` (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: the lake's root (default `file:///tmp/ledgerlink/lake`); the summary lands under `_reports`
"""
)

with DAG(
    dag_id="ledgerlink_token_rotation",
    doc_md=DOC_MD,
    description="Rotate Tripletex sessions, promote staged credentials, renew the AFAS token on demand",
    schedule=CronDataIntervalTimetable("30 4 * * *", timezone="Europe/Amsterdam"),
    start_date=pendulum.datetime(2026, 11, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=1,
    params={
        "renew_afas_token": Param(
            False, type="boolean", description="Renew the AFAS token by one-time password"
        ),
        "dry_run": Param(False, type="boolean", description="Verify only; change nothing"),
    },
    tags=["ledgerlink", "credentials"],
) as dag:
    rotate_tripletex = TokenRotationOperator(
        task_id="rotate_tripletex_session",
        conn_id="tripletex_default",
        session_days=2,
        dry_run="{{ params.dry_run }}",
    )
    check_tripletex = CredentialHealthOperator(task_id="check_tripletex", conn_id="tripletex_default")
    rotate_tripletex >> check_tripletex

    promotions = [
        TokenRotationOperator(task_id=f"promote_{vendor}", conn_id=conn_id, dry_run="{{ params.dry_run }}")
        for vendor, conn_id in PROMOTED.items()
    ]

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def afas_renewal_requested(params: dict[str, Any] | None = None) -> bool:
        return bool((params or {}).get("renew_afas_token"))

    renew_afas = TokenRotationOperator(
        task_id="renew_afas_token",
        conn_id="afas_default",
        otp_source="hitl",
        otp_timeout=timedelta(hours=1),
        dry_run="{{ params.dry_run }}",
    )
    afas_renewal_requested() >> renew_afas

    @task(trigger_rule="all_done")
    def summary(ti: Any = None, ds: str | None = None) -> str:
        """What each rotation did (metadata only), as one JSON file per day."""
        from airflow.sdk import ObjectStoragePath

        task_ids = ["rotate_tripletex_session", *(f"promote_{v}" for v in PROMOTED), "renew_afas_token"]
        results = {task_id: ti.xcom_pull(task_ids=task_id) for task_id in task_ids}
        folder = ObjectStoragePath(REPORTS)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"token_rotation_{ds}.json"
        target.write_text(json.dumps(results, indent=2, sort_keys=True))
        return str(target)

    [check_tripletex, *promotions, renew_afas] >> summary()
