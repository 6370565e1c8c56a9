"""Operators for Alasco: extract a resource to the lake; register payments, update contract
statuses and submit invoice PDFs, each safe to run again."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.compat import BaseOperator, ObjectStoragePath
from airflow_provider_ledgerlink.core.errors import LedgerLinkError, ValidationError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window, parse_instant
from airflow_provider_ledgerlink.core.hook import xcom_result
from airflow_provider_ledgerlink.core.redaction import redact_url, scrub
from airflow_provider_ledgerlink.hooks.alasco import (
    DEFAULT_MAX_IN_FLIGHT,
    VENDOR,
    AlascoHook,
    Filter,
    Slice,
    flatten_resource,
    normalize_filters,
    open_slices,
    parse_timestamp,
    slice_filters,
    slice_owner,
    split_range,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


@dataclass(frozen=True)
class ResourceInfo:
    """What the extract knows about one list endpoint.

    ``date_field``: the attribute an incremental window filters on (``None``: full loads only);
    ``date_only``: whether it is a date rather than a date-time.
    """

    date_field: str | None = None
    date_only: bool = False


#: The FinCon list endpoints the extract reads, with their usable date filter. Alasco has no
#: "modified" timestamp: ``date_created`` windows pick up new objects, not later changes to old ones
#: (an invoice approved or paid later); read those with ``date_field="date_approved"`` or
#: ``"payment_created"``, or with a full load.
RESOURCES: dict[str, ResourceInfo] = {
    "properties": ResourceInfo("date_created"),
    "projects": ResourceInfo(),
    "contract_units": ResourceInfo(),
    "contracts": ResourceInfo("date_created"),
    "change_orders": ResourceInfo(),
    "invoices": ResourceInfo("date_created"),
    "contractors": ResourceInfo(),
    "contracting_entities": ResourceInfo(),
    "cost_elements": ResourceInfo(),
    "cost_element_tree_templates": ResourceInfo(),
    "budget_shifts": ResourceInfo(),
    "reporting/projects": ResourceInfo(),
    "reporting/contracts": ResourceInfo(),
    "reporting/contract_units": ResourceInfo(),
    "reporting/cost_elements": ResourceInfo(),
    "reporting/cost_elements/contracts": ResourceInfo(),
    "reporting/cost_elements/contract_units": ResourceInfo(),
    "reporting/cash_outflow/cost_elements": ResourceInfo(),
    "reporting/rent_units": ResourceInfo(),
    "reporting/sales_units": ResourceInfo(),
    "reporting/outright_sales": ResourceInfo(),
}
#: Other date attributes a window may use instead of the resource's default.
DATE_FIELDS: dict[str, dict[str, bool]] = {
    "invoices": {
        "date_created": False,
        "date_approved": False,
        "payment_created": False,
        "date_posted": True,
        "date_received": True,
        "date_due": True,
        "payment_date": True,
    },
    "contracts": {"date_created": False, "date_contract": True},
    "properties": {"date_created": False},
    "change_orders": {"acknowledged_at": False, "declined_at": False, "change_order_date": True},
}


class AlascoExtractOperator(LedgerLinkExtractOperator):
    """Land one Alasco list endpoint in object storage, one flat row per object.

    Rows are :func:`~airflow_provider_ledgerlink.hooks.alasco.flatten_resource`: ``id``, ``type``,
    the attributes (money as ``<name>_net`` / ``_tax`` / ``_currency`` decimal strings, exactly as
    sent) and ``<relationship>_id`` columns. Incremental where the resource has a date filter (see
    :data:`RESOURCES`): the window ``[window_start, window_end)`` on ``date_field``. Otherwise, or
    with ``incremental=False``, a full load.

    A date-time window, and a full load of a resource with ``date_created``, is split into
    ``partitions`` slices read as separate cursor chains, ``max_in_flight`` at once, and written in
    slice order; the rows are the same as one sequential read.

    :param resource: the endpoint (templated): ``invoices``, ``reporting/contracts`` … (see
        :data:`RESOURCES`; other FinCon list paths work as full loads).
    :param date_field: the attribute of the window (templated); default from :data:`RESOURCES`.
    :param filters: extra filters (templated), ANDed; see ``AlascoHook.get_all``.
    :param partitions: slices of a window or full load (default: ``max_in_flight``).
    :param max_in_flight: cursor chains read at once (Alasco publishes no limit; default 4).
    :param partition_from: where the evenly spaced slices of a full load start (default: the
        oldest ``date_created`` on the first page, which costs one request; slices before and after
        are open-ended, so nothing is missed whatever the order Alasco lists in).
    :param alasco_conn_id: the Airflow connection.
    """

    vendor = VENDOR
    asset_vendor = "alasco"  # pinned: part of every default Asset URI of this operator
    template_fields: Sequence[str] = (
        *LedgerLinkExtractOperator.template_fields,
        "resource",
        "date_field",
        "filters",
        "alasco_conn_id",
    )
    template_fields_renderers = {"filters": "json"}

    def __init__(
        self,
        *,
        resource: str,
        date_field: str | None = None,
        filters: Any = None,
        partitions: int | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        partition_from: str | None = None,
        alasco_conn_id: str = AlascoHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        resource = str(resource).strip("/")
        info = RESOURCES.get(resource, ResourceInfo())
        date_field = date_field or info.date_field
        kwargs.setdefault("incremental", date_field is not None)
        super().__init__(object_name=resource.replace("/", "_"), conn_id=alasco_conn_id, **kwargs)
        self.resource = resource
        self.date_field = date_field
        self.filters = filters
        self.max_in_flight = max(1, int(max_in_flight))
        self.partitions = max(1, int(partitions)) if partitions else self.max_in_flight
        self.partition_from = partition_from
        self.alasco_conn_id = alasco_conn_id

    @cached_property
    def hook(self) -> AlascoHook:
        return AlascoHook(self.alasco_conn_id, max_in_flight=self.max_in_flight)

    def object_label(self) -> str:
        return self.resource

    def date_only(self) -> bool:
        known = DATE_FIELDS.get(self.resource, {})
        if self.date_field in known:
            return known[self.date_field]
        return RESOURCES.get(self.resource, ResourceInfo()).date_only

    def slices(self, window: Window | None) -> list[Slice]:
        """The parts the read is split into (one, when it cannot be split)."""
        if window is not None:
            if not self.date_field:
                raise ValidationError(
                    VENDOR,
                    f"extract {self.resource}",
                    "an incremental extract needs a date_field; this resource has no date filter",
                    hint="Set incremental=False for a full load, or name a date attribute Alasco filters on",
                )
            if self.date_only():
                return [Slice(window.start, window.end)]
            return split_range(window.start, window.end, self.partitions)
        if self.date_field == "date_created" and self.partitions > 1:
            if self.partition_from:
                first = parse_instant(self.partition_from, name="partition_from", vendor=VENDOR)
            else:
                first = self._oldest_on_first_page()
            if first is not None:
                return open_slices(first, datetime.now(timezone.utc), self.partitions)
        return [Slice(None, None)]

    def _oldest_on_first_page(self) -> datetime | None:
        """Where the data begins, judged from one page: only the balance of the slices depends on it."""
        page = next(self.hook.get_pages(self.resource, filters=self.filters), None)
        stamps = [
            stamp
            for item in (page.data if page else [])
            if (stamp := parse_timestamp((item.get("attributes") or {}).get("date_created"))) is not None
        ]
        return min(stamps) if stamps else None

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        try:
            base = normalize_filters(self.filters)
        except ValueError as exc:
            raise ValidationError(
                VENDOR, f"extract {self.resource}", str(exc), hint="Fix the filters"
            ) from None
        parts = self.slices(window)
        date_only = self.date_only()
        partitions: list[list[Filter]] = []
        owners: list[Callable[[Mapping[str, Any]], bool]] = []
        for part in parts:
            if part.start is None and part.end is None:
                partitions.append([])
                owners.append(lambda resource: True)
                continue
            assert self.date_field is not None
            partitions.append(slice_filters(self.date_field, part, date_only=date_only))
            owners.append(slice_owner(self.date_field, part) if not date_only else (lambda resource: True))
        pages = self.hook.get_pages_partitioned(
            self.resource,
            partitions,
            filters=base,
            keep=lambda index, resource: owners[index](resource),
            max_in_flight=self.max_in_flight,
        )
        for page in pages:
            if page.data:
                yield [flatten_resource(item) for item in page.data]

    def source_details(self) -> dict[str, Any]:
        try:
            base_url = redact_url(self.hook.base_url)
        except LedgerLinkError:
            base_url = ""
        return {
            "resource": self.resource,
            "base_url": base_url,
            "date_field": self.date_field if self.incremental else None,
            "filters": self.filters,
            "partitions": self.partitions,
        }


# ------------------------------------------------------------------------------------------------
# Writes
# ------------------------------------------------------------------------------------------------
class _AlascoWriteOperator(BaseOperator):
    """Sends a list of writes one by one, each checked first by the hook; reports every result.

    A failed write does not stop the others when ``continue_on_error`` is set; the task fails at
    the end either way, with the per-item results in XCom ``results``.
    """

    ui_color = "#fde9d9"
    #: What one item is called in messages.
    item_name = "item"

    def __init__(
        self,
        *,
        continue_on_error: bool = False,
        alasco_conn_id: str = AlascoHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.continue_on_error = continue_on_error
        self.alasco_conn_id = alasco_conn_id

    @cached_property
    def hook(self) -> AlascoHook:
        return AlascoHook(self.alasco_conn_id)

    def items(self) -> list[Mapping[str, Any]]:
        raise NotImplementedError

    def write(self, item: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def describe_item(self, item: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def _as_list(self, value: Any, single: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
        if value is None:
            return [single] if single else []
        if isinstance(value, Mapping):
            return [value]
        if not isinstance(value, list | tuple) or not all(isinstance(item, Mapping) for item in value):
            raise ValidationError(
                VENDOR,
                self.task_id,
                f"expected a list of {self.item_name} objects, not {type(value).__name__}",
                hint="Pass a list of dicts (or an upstream task's XCom holding one)",
            )
        return list(value)

    def execute(self, context: Context) -> dict[str, Any]:
        items = self.items()
        results: list[dict[str, Any]] = []
        failures: list[str] = []
        try:
            for index, item in enumerate(items):
                label = self.describe_item(item)
                try:
                    result = self.write(item)
                except (LedgerLinkError, KeyError, TypeError, ValueError) as exc:
                    message = scrub(
                        str(exc) if isinstance(exc, LedgerLinkError) else f"{type(exc).__name__}: {exc}"
                    )
                    results.append({"index": index, "item": label, "status": "failed", "error": message})
                    failures.append(f"{label}: {message}")
                    self.log.error("%s %s failed: %s", self.item_name, label, message)
                    if not self.continue_on_error:
                        break
                    continue
                self.log.info("%s %s: %s", self.item_name, label, result["status"])
                results.append({"index": index, "item": label, **result})
        finally:
            self.hook.close()
        summary: dict[str, Any] = {"total": len(items), "failed": len(failures)}
        for result in results:
            if result["status"] != "failed":
                summary[result["status"]] = summary.get(result["status"], 0) + 1
        summary["not_attempted"] = len(items) - len(results)
        summary["results"] = results
        summary = xcom_result(summary)  # an error text may quote what a hostile answer echoed
        if failures:
            task_instance = context.get("ti")
            if task_instance is not None:
                task_instance.xcom_push(key="results", value=summary)
            raise ValidationError(
                VENDOR,
                self.task_id,
                f"{len(failures)} of {len(items)} {self.item_name}s failed; first: {failures[0]}",
                hint=(
                    "The per-item results are in XCom 'results'. Fix the cause and rerun: items already "
                    "written are recognised and skipped"
                ),
            )
        return summary


class AlascoRegisterPaymentOperator(_AlascoWriteOperator):
    """Register payments on approved invoices, each at most once.

    ``payments`` (templated) is a list of ``{"invoice_id", "amount_gross", "payment_date",
    "comment"}`` (amounts as decimal strings); one payment can also be given with the single-item
    arguments. An invoice already ``PAID`` is skipped (``already_paid``); a payment sent once is
    never sent again (``already_registered``). Returns counts by status and the per-payment results.
    """

    item_name = "payment"
    template_fields: Sequence[str] = (
        "payments",
        "invoice_id",
        "amount_gross",
        "payment_date",
        "comment",
        "alasco_conn_id",
    )
    template_fields_renderers = {"payments": "json"}

    def __init__(
        self,
        *,
        payments: Any = None,
        invoice_id: str | None = None,
        amount_gross: Any = None,
        payment_date: Any = None,
        comment: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.payments = payments
        self.invoice_id = invoice_id
        self.amount_gross = amount_gross
        self.payment_date = payment_date
        self.comment = comment

    def items(self) -> list[Mapping[str, Any]]:
        single = None
        if self.invoice_id:
            single = {
                "invoice_id": self.invoice_id,
                "amount_gross": self.amount_gross,
                "payment_date": self.payment_date,
                "comment": self.comment,
            }
        return self._as_list(self.payments, single)

    def describe_item(self, item: Mapping[str, Any]) -> str:
        return f"invoice {item.get('invoice_id')}"

    def write(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return self.hook.register_payment(
            str(item["invoice_id"]),
            amount_gross=item["amount_gross"],
            payment_date=str(item["payment_date"])[:10],
            comment=str(item.get("comment") or ""),
        )


class AlascoUpdateContractStatusOperator(_AlascoWriteOperator):
    """Set contracts' statuses (``DRAFT``, ``ORDERED``, ``PARTIAL_COMPLETED``, ``COMPLETED``).

    ``updates`` (templated): a list of ``{"contract_id", "status"}``; or one with ``contract_id`` and
    ``status``. A contract that already has the status is not written (``unchanged``); a status
    sent once is not sent again by a rerun (``already_updated``), so a clerk's later change stands.
    """

    item_name = "contract"
    template_fields: Sequence[str] = ("updates", "contract_id", "status", "alasco_conn_id")
    template_fields_renderers = {"updates": "json"}

    def __init__(
        self, *, updates: Any = None, contract_id: str | None = None, status: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.updates = updates
        self.contract_id = contract_id
        self.status = status

    def items(self) -> list[Mapping[str, Any]]:
        single = {"contract_id": self.contract_id, "status": self.status} if self.contract_id else None
        return self._as_list(self.updates, single)

    def describe_item(self, item: Mapping[str, Any]) -> str:
        return f"contract {item.get('contract_id')}"

    def write(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return self.hook.update_contract_status(str(item["contract_id"]), str(item["status"]))


class AlascoSubmitInvoiceOperator(_AlascoWriteOperator):
    """Submit invoice PDFs to projects (Alasco's "submit invoice"), each once.

    ``invoices`` (templated): a list of ``{"project_id", "pdf_path", "external_identifier"}``
    (``pdf_path`` is any ``ObjectStoragePath`` URI); or one with the single-item arguments. The
    project and the PDF's SHA-256 are the key (kept in a write-once record, not in Alasco): a PDF
    submitted before is not submitted again (``already_submitted``), whatever a clerk has since
    edited. ``external_identifier``, when given, is the real invoice number ("Rechnungsnummer
    (extern)"), set on the new invoice.
    """

    item_name = "invoice"
    template_fields: Sequence[str] = (
        "invoices",
        "project_id",
        "pdf_path",
        "external_identifier",
        "alasco_conn_id",
    )
    template_fields_renderers = {"invoices": "json"}

    def __init__(
        self,
        *,
        invoices: Any = None,
        project_id: str | None = None,
        pdf_path: str | None = None,
        external_identifier: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invoices = invoices
        self.project_id = project_id
        self.pdf_path = pdf_path
        self.external_identifier = external_identifier

    def items(self) -> list[Mapping[str, Any]]:
        single = None
        if self.project_id:
            single = {
                "project_id": self.project_id,
                "pdf_path": self.pdf_path,
                "external_identifier": self.external_identifier,
            }
        return self._as_list(self.invoices, single)

    def describe_item(self, item: Mapping[str, Any]) -> str:
        name = str(item.get("pdf_path") or "").rstrip("/").rsplit("/", 1)[-1]
        return f"{name or '?'} to project {item.get('project_id')}"

    def write(self, item: Mapping[str, Any]) -> dict[str, Any]:
        path = ObjectStoragePath(str(item["pdf_path"]))
        with path.open("rb") as handle:
            pdf = handle.read()
        return self.hook.submit_invoice(
            str(item["project_id"]),
            pdf,
            filename=path.name,
            external_identifier=item.get("external_identifier") or None,
        )
