"""Approved Alasco invoices booked in AFAS Profit; their payments registered back in Alasco.

Every day:

1. ``approved_invoices`` reads the invoices approved in Alasco during the run's data interval, with
   their contract and contractor;
2. ``journal_entries`` turns each into a purchase journal entry (``FiEntries``): costs and input VAT
   on the debit side, the contractor's creditor account on the credit side;
3. ``book_in_afas`` sends them to AFAS's ``FiEntries`` UpdateConnector. Each entry carries the
   Alasco invoice id as its entry number (``BpNr``), and an entry whose number AFAS already has is
   skipped: a rerun, a retry or a backfill books nothing twice;
4. ``payments_in_afas`` finds the bank lines in AFAS that settle invoices this DAG booked (the bank
   statement import writes them with the same invoice number, ``InId``);
5. ``register_payments`` registers those payments on the invoices in Alasco, once: an invoice that
   is already paid is skipped.

Connections: ``alasco_default`` and ``afas_default`` (see docs/alasco.md and docs/afas.md). The
ledger accounts below are examples: map them to your chart of accounts.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pendulum
from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_ledgerlink.operators.afas import AfasUpdateConnectorOperator
from airflow_provider_ledgerlink.operators.alasco import AlascoRegisterPaymentOperator

ADMINISTRATION = 1
PURCHASE_JOURNAL = "60"
BANK_JOURNALS = ("50", "51")
COST_ACCOUNT = "7000"
INPUT_VAT_ACCOUNT = "1400"
#: Creditor used when the contractor has no accounts-payable number in Alasco.
FALLBACK_CREDITOR = "70000"
#: AFAS invoice numbers (``InId``, at most 12 characters) of Alasco invoices: this prefix and the
#: first 10 hex digits of the Alasco invoice id.
REFERENCE_PREFIX = "AL"
#: How far back payments are looked for (invoices are paid within this time of their approval).
PAYMENT_LOOKBACK = timedelta(days=120)
CENTS = Decimal("0.01")


def invoice_reference(invoice_id: str) -> str:
    return REFERENCE_PREFIX + uuid.UUID(invoice_id).hex[:10]


def cents(value: Any) -> Decimal:
    return Decimal(str(value or "0")).quantize(CENTS, rounding=ROUND_HALF_UP)


def summarize(invoice: dict[str, Any], related: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """What booking needs of one approved invoice; amounts stay decimal strings."""
    attributes = invoice["attributes"]
    amount = (
        attributes.get("discounted_approved_amount")
        or attributes.get("undiscounted_approved_amount")
        or attributes.get("audited_amount")
        or attributes.get("unaudited_amount")
        or {}
    )
    contract = related.get(("CONTRACT", attributes.get("contract") or ""), {})
    contractor_id = (contract.get("attributes") or {}).get("contractor") or ""
    contractor = (related.get(("CONTRACTOR", contractor_id)) or {}).get("attributes") or {}
    return {
        "invoice_id": invoice["id"],
        "internal_identifier": attributes.get("internal_identifier") or "",
        "external_identifier": attributes.get("external_identifier") or "",
        "date_approved": attributes["date_approved"],
        "net": amount.get("net", "0"),
        "tax": amount.get("tax", "0"),
        "currency": amount.get("currency", "EUR"),
        "contract": (contract.get("attributes") or {}).get("name") or "",
        "contractor": contractor.get("name") or "",
        "creditor": str(contractor.get("accounts_payable_number") or FALLBACK_CREDITOR),
    }


def journal_entry(invoice: dict[str, Any]) -> dict[str, Any]:
    """One ``FiEntries`` record: debit costs (and input VAT), credit the contractor."""
    approved = datetime.fromisoformat(invoice["date_approved"].replace("Z", "+00:00"))
    day = approved.date().isoformat()
    net, tax = cents(invoice["net"]), cents(invoice["tax"])
    common = {
        "EnDa": day,
        "BpDa": day,
        "BpNr": uuid.UUID(invoice["invoice_id"]).hex,  # the key a rerun looks for
        "InId": invoice_reference(invoice["invoice_id"]),
        "Ds": f"Alasco {invoice['internal_identifier']} {invoice['external_identifier']} {invoice['contractor']}"[
            :255
        ],
    }
    lines = [{"Fields": {**common, "VaAs": "1", "AcNr": COST_ACCOUNT, "AmDe": str(net)}}]
    if tax:
        lines.append({"Fields": {**common, "VaAs": "1", "AcNr": INPUT_VAT_ACCOUNT, "AmDe": str(tax)}})
    lines.append({"Fields": {**common, "VaAs": "3", "AcNr": invoice["creditor"], "AmCr": str(net + tax)}})
    return {
        "FiEntryPar": {
            "Element": {
                "Fields": {
                    "Year": approved.year,
                    "Peri": approved.month,
                    "UnId": ADMINISTRATION,
                    "JoCo": PURCHASE_JOURNAL,
                },
                "Objects": [{"FiEntries": {"Element": lines}}],
            }
        }
    }


#: What the DAG page shows under the description: the connections and the lake this DAG needs.
DOC_MD = (
    (__doc__ or "")
    + """
**Needs**

- Airflow connections: `alasco_default` (type Alasco (LedgerLink)); `tripletex_default` (type Tripletex (LedgerLink)) (Admin → Connections; see the vendor's page in the LedgerLink docs)
- `LEDGERLINK_LAKE`: not used
"""
)

with DAG(
    dag_id="alasco_approved_invoices_to_ledger",
    doc_md=DOC_MD,
    description="Approved Alasco invoices into AFAS journal entries; AFAS payments back to Alasco",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    tags=["ledgerlink", "alasco", "afas"],
) as dag:

    @task
    def approved_invoices(
        data_interval_start: Any = None, data_interval_end: Any = None
    ) -> list[dict[str, Any]]:
        """Invoices approved during the data interval (approved or already paid by now)."""
        from airflow_provider_ledgerlink.hooks.alasco import AlascoHook, Slice, slice_filters, slice_owner

        window = Slice(data_interval_start, data_interval_end)
        owns = slice_owner("date_approved", window)
        filters = [
            *slice_filters("date_approved", window),
            ("invoice_process_state", "in", ["APPROVED", "PAID"]),
        ]
        found = []
        with AlascoHook() as hook:
            for page in hook.get_pages(
                "invoices", filters=filters, include=["contract", "contract.contractor"]
            ):
                related = {(item["type"], item["id"]): item for item in page.included}
                found += [summarize(invoice, related) for invoice in page if owns(invoice)]
        return found

    @task
    def journal_entries(invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [journal_entry(invoice) for invoice in invoices]

    book_in_afas = AfasUpdateConnectorOperator(
        task_id="book_in_afas",
        connector_id="FiEntries",
        records=journal_entries(approved_invoices()),
        existing_check={
            "get_connector": "Profit_Transactions",
            "filter_field": "VoucherNo",
            "record_field": "BpNr",
        },
        continue_on_error=True,
    )

    @task
    def payments_in_afas(data_interval_end: Any = None) -> list[dict[str, Any]]:
        """Bank lines that settle invoices this DAG booked, one payment per invoice."""
        from airflow_provider_ledgerlink.hooks.afas import AfasHook

        since = (data_interval_end - PAYMENT_LOOKBACK).date()
        booked: dict[str, str] = {}
        paid: dict[str, dict[str, Any]] = {}
        with AfasHook() as hook:
            rows = hook.get_rows(
                "Profit_Transactions",
                filters=[("InvoiceId", "starts_with", REFERENCE_PREFIX), ("EntryDate", ">=", since)],
            )
            for row in rows:
                reference = row.get("InvoiceId") or ""
                if row.get("JournalId") == PURCHASE_JOURNAL and row.get("VoucherNo"):
                    booked[reference] = row["VoucherNo"]
                elif row.get("JournalId") in BANK_JOURNALS and row.get("AmtDebit"):
                    payment = paid.setdefault(reference, {"amount": Decimal(0), "date": "", "entries": []})
                    payment["amount"] += cents(row["AmtDebit"])
                    payment["date"] = max(payment["date"], str(row["EntryDate"])[:10])
                    payment["entries"].append(str(row["EntryNo"]))
        return [
            {
                "invoice_id": str(uuid.UUID(hex=booked[reference])),
                "amount_gross": str(payment["amount"]),
                "payment_date": payment["date"],
                "comment": f"AFAS bank entry {', '.join(payment['entries'])}",
            }
            for reference, payment in sorted(paid.items())
            if reference in booked
        ]

    payments = payments_in_afas()
    book_in_afas >> payments
    AlascoRegisterPaymentOperator(task_id="register_payments", records=payments, continue_on_error=True)
