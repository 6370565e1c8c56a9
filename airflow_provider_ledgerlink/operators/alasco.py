"""Operators for Alasco: extract a resource to the lake; register payments, update contract
statuses and submit invoice PDFs, each safe to run again."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
from airflow_provider_ledgerlink.core.errors import LedgerLinkError, ValidationError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window, parse_instant
from airflow_provider_ledgerlink.core.redaction import redact_url
from airflow_provider_ledgerlink.core.writes import LedgerLinkWriteOperator, renamed_arguments
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
#: Alasco's words for what happened to one write, as the write base's statuses.
_STATUSES = {
    "registered": "created",
    "submitted": "created",
    "updated": "updated",
    "unchanged": "unchanged",
    "already_registered": "already_done",
    "already_submitted": "already_done",
    "already_updated": "already_done",
    "already_paid": "skipped",
}


class _AlascoWriteOperator(LedgerLinkWriteOperator):
    """The write base (see :mod:`~airflow_provider_ledgerlink.core.writes`) with an Alasco hook.

    Each result keeps Alasco's own word for what happened in ``outcome`` (``already_paid`` …). One
    write can also be given with the single-item arguments instead of ``records``.
    """

    vendor = VENDOR
    records_required = False
    #: The old name of ``records`` (still accepted, with a deprecation warning).
    old_records_name = ""

    def __init__(self, *, alasco_conn_id: str = AlascoHook.default_conn_name, **kwargs: Any) -> None:
        old = self.old_records_name
        kwargs = renamed_arguments(type(self).__name__, kwargs, {old: ("records", kwargs.pop(old, None))})
        super().__init__(**kwargs)
        self.alasco_conn_id = alasco_conn_id

    @cached_property
    def hook(self) -> AlascoHook:
        return AlascoHook(self.alasco_conn_id)

    @property
    def operation(self) -> str:
        return self.task_id

    def write(self, item: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def write_one(self, hook: AlascoHook, record: Mapping[str, Any], index: int) -> dict[str, Any]:
        result = dict(self.write(record))
        outcome = result.pop("status")
        return {"status": _STATUSES[outcome], "outcome": outcome, **result}


class AlascoRegisterPaymentOperator(_AlascoWriteOperator):
    """Register payments on approved invoices, each at most once.

    ``records`` (templated; or ``records_path``, a JSON Lines file) is a list of ``{"invoice_id",
    "amount_gross", "payment_date", "comment"}`` (amounts as decimal strings); one payment can also
    be given with the single-item arguments. A payment sent once is never sent again (status
    ``already_done``, outcome ``already_registered``); an invoice already ``PAID`` is left alone
    (``skipped``, outcome ``already_paid``). Returns the write summary. ``payments`` is the old name
    of ``records``.
    """

    record_noun = "payment"
    old_records_name = "payments"
    template_fields: Sequence[str] = (
        *LedgerLinkWriteOperator.template_fields,
        "invoice_id",
        "amount_gross",
        "payment_date",
        "comment",
        "alasco_conn_id",
    )

    def __init__(
        self,
        *,
        invoice_id: str | None = None,
        amount_gross: Any = None,
        payment_date: Any = None,
        comment: str = "",
        payments: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(payments=payments, **kwargs)
        self.invoice_id = invoice_id
        self.amount_gross = amount_gross
        self.payment_date = payment_date
        self.comment = comment

    def single_record(self) -> Mapping[str, Any] | None:
        if not self.invoice_id:
            return None
        return {
            "invoice_id": self.invoice_id,
            "amount_gross": self.amount_gross,
            "payment_date": self.payment_date,
            "comment": self.comment,
        }

    def describe(self, record: Mapping[str, Any], index: int) -> str:
        return f"invoice {record.get('invoice_id')}"

    def write(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return self.hook.register_payment(
            str(item["invoice_id"]),
            amount_gross=item["amount_gross"],
            payment_date=str(item["payment_date"])[:10],
            comment=str(item.get("comment") or ""),
        )


class AlascoUpdateContractStatusOperator(_AlascoWriteOperator):
    """Set contracts' statuses (``DRAFT``, ``ORDERED``, ``PARTIAL_COMPLETED``, ``COMPLETED``).

    ``records`` (templated; or ``records_path``): a list of ``{"contract_id", "status"}``; or one
    with ``contract_id`` and ``status``. A contract that already has the status is not written
    (``unchanged``); a status sent once is not sent again by a rerun (``already_done``, outcome
    ``already_updated``), so a clerk's later change stands. ``updates`` is the old name of
    ``records``.
    """

    record_noun = "contract"
    old_records_name = "updates"
    template_fields: Sequence[str] = (
        *LedgerLinkWriteOperator.template_fields,
        "contract_id",
        "status",
        "alasco_conn_id",
    )

    def __init__(
        self, *, contract_id: str | None = None, status: str | None = None, updates: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(updates=updates, **kwargs)
        self.contract_id = contract_id
        self.status = status

    def single_record(self) -> Mapping[str, Any] | None:
        return {"contract_id": self.contract_id, "status": self.status} if self.contract_id else None

    def describe(self, record: Mapping[str, Any], index: int) -> str:
        return f"contract {record.get('contract_id')}"

    def write(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return self.hook.update_contract_status(str(item["contract_id"]), str(item["status"]))


class AlascoSubmitInvoiceOperator(_AlascoWriteOperator):
    """Submit invoice PDFs to projects (Alasco's "submit invoice"), each once.

    ``records`` (templated; or ``records_path``): a list of ``{"project_id", "pdf_path",
    "external_identifier"}`` (``pdf_path`` is any ``ObjectStoragePath`` URI); or one with the
    single-item arguments. The project and the PDF's SHA-256 are the key (kept in a write-once
    record, not in Alasco): a PDF submitted before is not submitted again (``already_done``, outcome
    ``already_submitted``), whatever a clerk has since edited. ``external_identifier``, when given,
    is the real invoice number ("Rechnungsnummer (extern)"), set on the new invoice. ``invoices`` is
    the old name of ``records``.
    """

    record_noun = "invoice"
    old_records_name = "invoices"
    template_fields: Sequence[str] = (
        *LedgerLinkWriteOperator.template_fields,
        "project_id",
        "pdf_path",
        "external_identifier",
        "alasco_conn_id",
    )

    def __init__(
        self,
        *,
        project_id: str | None = None,
        pdf_path: str | None = None,
        external_identifier: str | None = None,
        invoices: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(invoices=invoices, **kwargs)
        self.project_id = project_id
        self.pdf_path = pdf_path
        self.external_identifier = external_identifier

    def single_record(self) -> Mapping[str, Any] | None:
        if not self.project_id:
            return None
        return {
            "project_id": self.project_id,
            "pdf_path": self.pdf_path,
            "external_identifier": self.external_identifier,
        }

    def describe(self, record: Mapping[str, Any], index: int) -> str:
        name = str(record.get("pdf_path") or "").rstrip("/").rsplit("/", 1)[-1]
        return f"{name or '?'} to project {record.get('project_id')}"

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
