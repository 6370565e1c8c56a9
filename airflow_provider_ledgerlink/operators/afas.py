"""Operators for AFAS Profit: extract a GetConnector, send records to an UpdateConnector."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.compat import BaseOperator
from airflow_provider_ledgerlink.core.errors import LedgerLinkError, ValidationError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window
from airflow_provider_ledgerlink.hooks.afas import DEFAULT_MAX_IN_FLIGHT, DEFAULT_PAGE_SIZE, VENDOR, AfasHook

if TYPE_CHECKING:
    from airflow.sdk import Context


class AfasExtractOperator(LedgerLinkExtractOperator):
    """Land a GetConnector in object storage, incrementally on a modified-date field.

    With ``modified_field`` set, only rows whose field falls in ``[window_start, window_end)`` are
    read (sent to AFAS as Amsterdam wall-clock times, as AFAS stores them); without it the whole
    connector is read (a full load). Rows are written as gzip JSON Lines with a manifest; see
    :class:`~airflow_provider_ledgerlink.core.extract.LedgerLinkExtractOperator` for the output.

    :param connector_id: the GetConnector (templated), e.g. ``Profit_Transactions``.
    :param modified_field: field holding the last-modified datetime (templated), e.g. ``Modified``.
    :param filters: extra filters (templated), ANDed with the window; see
        :func:`~airflow_provider_ledgerlink.hooks.afas.normalize_filters`.
    :param order_by: unique ordering for paging; derived when omitted (see ``AfasHook.default_ordering``).
    :param page_size: rows per request.
    :param max_in_flight: requests at once (AFAS's guidance: at most 5).
    :param datetimes: ``utc`` (default), ``amsterdam`` or ``raw``; see :class:`AfasHook`.
    :param afas_conn_id: the Airflow connection.
    """

    vendor = VENDOR
    template_fields: Sequence[str] = (
        *LedgerLinkExtractOperator.template_fields,
        "connector_id",
        "modified_field",
        "filters",
        "afas_conn_id",
    )
    template_fields_renderers = {"filters": "json"}

    def __init__(
        self,
        *,
        connector_id: str,
        modified_field: str | None = None,
        filters: Any = None,
        order_by: Sequence[str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        datetimes: str = "utc",
        afas_conn_id: str = AfasHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("incremental", modified_field is not None)
        super().__init__(object_name=connector_id, conn_id=afas_conn_id, **kwargs)
        self.connector_id = connector_id
        self.modified_field = modified_field
        self.filters = filters
        self.order_by = list(order_by) if order_by else None
        self.page_size = page_size
        self.max_in_flight = max_in_flight
        self.datetimes = datetimes
        self.afas_conn_id = afas_conn_id

    @cached_property
    def hook(self) -> AfasHook:
        return AfasHook(
            self.afas_conn_id,
            max_in_flight=self.max_in_flight,
            page_size=self.page_size,
            datetimes=self.datetimes,
        )

    def object_label(self) -> str:
        return self.connector_id

    def window_filters(self, window: Window | None) -> list[Any]:
        conditions = list(_as_conditions(self.filters))
        if window is not None:
            if not self.modified_field:
                raise ValidationError(
                    VENDOR,
                    f"extract {self.connector_id}",
                    "an incremental extract needs modified_field",
                    hint="Name the connector's modified-date field, or set incremental=False",
                )
            conditions += [(self.modified_field, ">=", window.start), (self.modified_field, "<", window.end)]
        return conditions

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        order_by = self.order_by
        if order_by is None and window is not None and self.modified_field:
            # Modified first keeps pages cheap for AFAS; the unique key after it keeps them stable.
            order_by = [self.modified_field, *self.hook.default_ordering(self.connector_id)]
        try:
            yield from self.hook.get_pages(
                self.connector_id, filters=self.window_filters(window), order_by=order_by
            )
        finally:
            self.hook.close()

    def source_details(self) -> dict[str, Any]:
        try:
            environment, kind = self.hook.environment
        except LedgerLinkError:  # a host override without environment_id is allowed
            environment, kind = ("", "")
        return {
            "connector_id": self.connector_id,
            "environment_id": environment,
            "environment_type": kind,
            "modified_field": self.modified_field,
            "datetimes": self.datetimes,
        }


def _as_conditions(filters: Any) -> list[Any]:
    if not filters:
        return []
    if isinstance(filters, Mapping):
        return [filters]
    items = list(filters)
    if items and all(isinstance(g, list | tuple) and g and not isinstance(g[0], str) for g in items):
        raise ValidationError(
            VENDOR,
            "extract",
            "OR-groups of filters cannot be combined with the incremental window",
            hint="Use one AND-list of conditions, or run one extract per group",
        )
    return items


def find_field(record: Any, name: str) -> Any:
    """The first value of ``name`` found in a record's ``Fields`` (depth first), else ``None``."""
    if isinstance(record, Mapping):
        fields = record.get("Fields")
        if isinstance(fields, Mapping) and name in fields:
            return fields[name]
        for value in record.values():
            found = find_field(value, name)
            if found is not None:
                return found
    elif isinstance(record, list):
        for item in record:
            found = find_field(item, name)
            if found is not None:
                return found
    return None


class AfasUpdateConnectorOperator(BaseOperator):
    """Send records to an UpdateConnector, one request per record, and report each result.

    Each record is the documented body, e.g. ``{"FiEntryPar": {"Element": {"Fields": {…},
    "Objects": {"FiEntries": {"Element": [...]}}}}}``. Records come from ``records`` (templated, so
    an upstream task's XCom works) and are sent in order.

    An insert is not idempotent at AFAS, so a task retry could book a record twice. Give
    ``existing_check`` to look each record up first and skip those already there::

        existing_check={"get_connector": "Profit_Transactions", "filter_field": "VoucherNo",
                        "record_field": "BpNr"}

    reads ``BpNr`` from the record's ``Fields`` and skips the record when ``Profit_Transactions``
    has a row with that ``VoucherNo``. A request whose answer was lost is never re-sent blindly.

    :param connector_id: the UpdateConnector (templated), e.g. ``FiEntries``.
    :param records: list of record bodies (templated).
    :param method: ``POST`` (insert) or ``PUT`` (update).
    :param sub_path: optional sub-object path (``KnEmployee/AfasContact``).
    :param existing_check: skip records that already exist (see above).
    :param continue_on_error: send the remaining records after a failure (the task still fails).
    :param afas_conn_id: the Airflow connection.
    :return: ``{"sent": n, "skipped": n, "failed": n, "results": [{index, status, result|error}]}``.
    """

    template_fields: Sequence[str] = ("connector_id", "records", "afas_conn_id")
    template_fields_renderers = {"records": "json"}
    ui_color = "#fde9d9"

    def __init__(
        self,
        *,
        connector_id: str,
        records: Any,
        method: str = "POST",
        sub_path: str | None = None,
        existing_check: Mapping[str, str] | None = None,
        continue_on_error: bool = False,
        afas_conn_id: str = AfasHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connector_id = connector_id
        self.records = records
        self.method = method.upper()
        self.sub_path = sub_path
        self.existing_check = dict(existing_check) if existing_check else None
        self.continue_on_error = continue_on_error
        self.afas_conn_id = afas_conn_id
        if self.method not in ("POST", "PUT"):
            raise ValueError("method must be POST (insert) or PUT (update)")
        if self.existing_check and not {"get_connector", "filter_field", "record_field"} <= set(
            self.existing_check
        ):
            raise ValueError("existing_check needs get_connector, filter_field and record_field")

    @cached_property
    def hook(self) -> AfasHook:
        return AfasHook(self.afas_conn_id)

    def _records(self) -> list[Any]:
        records = self.records
        if isinstance(records, Mapping):
            records = [records]
        if not isinstance(records, list | tuple):
            raise ValidationError(
                VENDOR,
                f"UpdateConnector {self.connector_id}",
                f"records must be a list of record bodies, not {type(records).__name__}",
                hint="Pass a list (or an upstream task's XCom holding one)",
            )
        return list(records)

    def _exists(self, record: Any) -> bool:
        check = self.existing_check
        if not check:
            return False
        value = find_field(record, check["record_field"])
        if value in (None, ""):
            raise ValidationError(
                VENDOR,
                f"UpdateConnector {self.connector_id}",
                f"the record has no {check['record_field']!r} to check for an existing copy",
                hint="Every record needs the field named in existing_check.record_field",
            )
        rows = self.hook.get_pages(
            check["get_connector"],
            filters=[(check["filter_field"], "eq", value)],
            order_by=[check["filter_field"]],
            page_size=1,
            max_in_flight=1,
        )
        return bool(next(rows, []))

    def execute(self, context: Context) -> dict[str, Any]:
        records = self._records()
        results: list[dict[str, Any]] = []
        failures: list[str] = []
        try:
            for index, record in enumerate(records):
                label = _record_label(record, index)
                try:
                    if self._exists(record):
                        self.log.info("Record %s already exists in AFAS: skipped", label)
                        results.append({"index": index, "record": label, "status": "skipped"})
                        continue
                    result = self.hook.update_connector(
                        self.connector_id, record, method=self.method, sub_path=self.sub_path
                    )
                except LedgerLinkError as exc:
                    results.append({"index": index, "record": label, "status": "failed", "error": str(exc)})
                    failures.append(f"record {label}: {exc}")
                    self.log.error("Record %s failed: %s", label, exc)
                    if not self.continue_on_error:
                        break
                    continue
                self.log.info("Record %s sent: %s", label, result)
                results.append({"index": index, "record": label, "status": "sent", "result": result})
        finally:
            self.hook.close()
        summary = {
            "sent": sum(r["status"] == "sent" for r in results),
            "skipped": sum(r["status"] == "skipped" for r in results),
            "failed": len(failures),
            "not_attempted": len(records) - len(results),
            "results": results,
        }
        if failures:
            context["ti"].xcom_push(key="results", value=summary)
            raise ValidationError(
                VENDOR,
                f"UpdateConnector {self.connector_id}",
                f"{len(failures)} of {len(records)} records failed; first: {failures[0]}",
                hint=(
                    f"{summary['sent']} were sent and {summary['not_attempted']} not attempted; "
                    "the per-record results are in XCom 'results'. Fix the records and rerun "
                    "(use existing_check so sent records are skipped)"
                ),
            )
        return summary


def _record_label(record: Any, index: int) -> str:
    """A short, non-sensitive name for a record in messages: its position and first key field."""
    if isinstance(record, Mapping) and len(record) == 1:
        root = next(iter(record))
        element = record[root].get("Element") if isinstance(record[root], Mapping) else None
        if isinstance(element, Mapping):
            keys = [f"{k}={v}" for k, v in element.items() if k.startswith("@")]
            if keys:
                return f"#{index} {root} {' '.join(keys)}"
        return f"#{index} {root}"
    return f"#{index}"
