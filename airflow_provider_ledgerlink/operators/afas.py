"""Operators for AFAS Profit: extract a GetConnector, send records to an UpdateConnector."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.errors import AmbiguousWriteError, LedgerLinkError, ValidationError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window
from airflow_provider_ledgerlink.core.once import WriteOnce
from airflow_provider_ledgerlink.core.shared_state import SharedState
from airflow_provider_ledgerlink.core.writes import LedgerLinkWriteOperator
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
    asset_vendor = "afas"  # pinned: part of every default Asset URI of this operator
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
        yield from self.hook.get_pages(
            self.connector_id, filters=self.window_filters(window), order_by=order_by
        )

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


class AfasUpdateConnectorOperator(LedgerLinkWriteOperator):
    """Send records to an UpdateConnector, one request per record, each at most once.

    Each record is the documented body, e.g. ``{"FiEntryPar": {"Element": {"Fields": {…},
    "Objects": {"FiEntries": {"Element": [...]}}}}}``. Records come from ``records`` (templated, so
    an upstream task's XCom works) or ``records_path`` (a landed JSON Lines file) and are sent in
    order by the write base (see :mod:`~airflow_provider_ledgerlink.core.writes`).

    An AFAS insert is not idempotent: sending a journal entry twice books it twice. Every record is
    therefore sent through :class:`~airflow_provider_ledgerlink.core.once.WriteOnce`, keyed by the
    AFAS environment, the connector and the record's content (or ``record_key``): a task retry, a new
    DAG run, a backfill or a concurrent attempt finds the write recorded and does not send it again
    (the record's earlier result is reported with status ``already_done``). The records live in
    Airflow Variables named ``ledgerlink_once_afasprofit_…``.

    An answer that leaves it open whether AFAS applied the record (the connection reset after the
    request went out, a 5xx that is not AFAS's verdict on the record, a success answer without the
    new record's key when one is expected) fails the task with
    :class:`~airflow_provider_ledgerlink.core.errors.AmbiguousWriteError`, saying how to check in
    Profit and how to record the answer; the record is not sent again until a person does, and no
    later record of the task is sent.

    ``existing_check`` additionally looks each record up first and skips those already in AFAS
    (e.g. booked by hand or by another tool; status ``skipped``)::

        existing_check={"get_connector": "Profit_Transactions", "filter_field": "VoucherNo",
                        "record_field": "BpNr"}

    :param connector_id: the UpdateConnector (templated), e.g. ``FiEntries``.
    :param records: list of record bodies (templated).
    :param records_path: or a landed file of them (templated URI): JSON Lines, a JSON list, or an
        extract folder, read one record at a time.
    :param method: ``POST`` (insert) or ``PUT`` (update).
    :param sub_path: POST only: the sub-object to insert (``KnSubject/KnSubjectLink`` style, AFAS's
        "POST on SubObject").
    :param record_key: a field of the record (found in its ``Fields``, e.g. ``BpNr``) that identifies
        the write instead of the record's whole content: a corrected record with the same value is
        still the same write.
    :param expect_result: the answer must carry the record's key (AFAS's ``results``); default: for
        POST. A success answer without it is ambiguous.
    :param existing_check: skip records that already exist (see above).
    :param continue_on_error: send the remaining records after a failure (the task still fails).
    :param once_options: ``settle``, ``wait`` and ``poll`` seconds for ``WriteOnce`` (how long an
        attempt waits for a concurrent attempt's outcome before calling it ambiguous; default 300).
    :param afas_conn_id: the Airflow connection.
    :return: the write summary: a record sent now is ``created`` (POST) or ``updated`` (PUT), with
        AFAS's answer as ``result``; one sent by an earlier run ``already_done``, with its result then.
    """

    template_fields: Sequence[str] = (
        *LedgerLinkWriteOperator.template_fields,
        "connector_id",
        "afas_conn_id",
    )
    vendor = VENDOR

    def __init__(
        self,
        *,
        connector_id: str,
        method: str = "POST",
        sub_path: str | None = None,
        record_key: str | None = None,
        expect_result: bool | None = None,
        existing_check: Mapping[str, str] | None = None,
        once_options: Mapping[str, float] | None = None,
        once_state: SharedState | None = None,
        afas_conn_id: str = AfasHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.connector_id = connector_id
        self.method = method.upper()
        self.sub_path = sub_path
        self.record_key = record_key
        self.expect_result = self.method == "POST" if expect_result is None else bool(expect_result)
        self.existing_check = dict(existing_check) if existing_check else None
        self.once_options = {k: float(v) for k, v in (once_options or {}).items()}
        #: Where the write records live (default: Airflow Variables). For tests and custom set-ups.
        self.once_state = once_state
        self.afas_conn_id = afas_conn_id
        self._target = ""
        if self.method not in ("POST", "PUT"):
            raise ValueError("method must be POST (insert) or PUT (update)")
        if sub_path and self.method != "POST":
            raise ValueError("sub_path is for POST only: AFAS documents the sub-object URL for inserts")
        unknown = set(self.once_options) - {"settle", "wait", "poll"}
        if unknown:
            raise ValueError(f"once_options takes settle, wait and poll, not {', '.join(sorted(unknown))}")
        if self.existing_check and not {"get_connector", "filter_field", "record_field"} <= set(
            self.existing_check
        ):
            raise ValueError("existing_check needs get_connector, filter_field and record_field")

    @cached_property
    def hook(self) -> AfasHook:
        return AfasHook(self.afas_conn_id)

    @property
    def operation(self) -> str:
        return f"UpdateConnector {self.connector_id} ({'insert' if self.method == 'POST' else 'update'})"

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

    # -- at most once ------------------------------------------------------------------------------
    def _account(self) -> str:
        """Which AFAS environment the writes go to (never a secret)."""
        try:
            number, kind = self.hook.environment
            return f"environment {number} {kind}"
        except LedgerLinkError:  # a host override without environment_id
            return self.hook.base_url

    def _write_key(self, record: Any) -> tuple[str, str]:
        """``(key, label)``: what makes two sends the same write, and how messages name it."""
        target = f"{self.connector_id} {self.method}" + (f" {self.sub_path}" if self.sub_path else "")
        if self.record_key:
            value = find_field(record, self.record_key)
            if value in (None, ""):
                raise ValidationError(
                    VENDOR,
                    self.operation,
                    f"the record has no {self.record_key!r} (record_key) in its Fields",
                    hint="Every record needs the field named in record_key, or leave record_key unset",
                )
            return (
                f"{target} {self.record_key}={value}",
                f"{self.connector_id} record {self.record_key}={value}",
            )
        content = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        voucher = find_field(record, "BpNr")
        label = f"{self.connector_id} record {_record_label(record, 0)[3:]}".rstrip()
        if voucher not in (None, ""):
            label += f" BpNr={voucher}"
        return f"{target} content {digest}", f"{label} (content {digest[:12]})"

    def _check_hint(self, record: Any) -> str:
        voucher = find_field(record, "BpNr")
        if self.connector_id.lower() == "fientries" and voucher not in (None, ""):
            where = (
                f"read GetConnector Profit_Transactions filtered on VoucherNo = {voucher} (or look the "
                "entry up in Profit's financial entries)"
            )
        else:
            where = "look the record up in Profit (or with a GetConnector filtered on its key fields)"
        return (
            f"Check in AFAS Profit whether it was applied: {where}; the environment's logbook in Profit "
            "lists the UpdateConnector calls"
        )

    def _send(self, record: Any) -> dict[str, Any]:
        result = self.hook.update_connector(
            self.connector_id, record, method=self.method, sub_path=self.sub_path
        )
        if self.expect_result and not _has_key(result):
            raise AmbiguousWriteError(
                VENDOR,
                self.operation,
                "AFAS answered success without the record's key (no 'results'), so it is not certain "
                "that the record was applied",
                hint="It was not sent again. Check in Profit whether it exists",
            )
        return result

    def describe(self, record: Mapping[str, Any], index: int) -> str:
        return _record_label(record, index)

    def execute(self, context: Context) -> dict[str, Any]:
        self._target = ""  # which environment the writes go to, read once at the first record
        return super().execute(context)

    def write_one(self, hook: AfasHook, record: Mapping[str, Any], index: int) -> dict[str, Any]:
        label = _record_label(record, index)
        if not record:
            raise ValidationError(
                VENDOR,
                self.operation,
                f"record {label} is empty",
                hint='Send the documented envelope, e.g. {"FiEntryPar": {"Element": {...}}}',
            )
        if self._exists(record):
            self.log.info("Record %s already exists in AFAS: skipped", label)
            return {"status": "skipped"}
        if not self._target:
            self._target = self._account()
        key, write_label = self._write_key(record)
        once = WriteOnce(
            vendor=VENDOR,
            operation=self.operation,
            account=self._target,
            key=key,
            label=write_label,
            state=self.once_state,
            settle=self.once_options.get("settle", 5.0),
            wait=self.once_options.get("wait", 300.0),
            poll=self.once_options.get("poll", 0.5),
        )
        outcome = once.run(functools.partial(self._send, record), check_hint=self._check_hint(record))
        if not outcome.sent:
            return {"status": "already_done", "result": outcome.result}
        return {"status": "created" if self.method == "POST" else "updated", "result": outcome.result}


def _has_key(result: Any) -> bool:
    """Whether AFAS's ``results`` name the applied record (any non-empty value at any depth)."""
    if isinstance(result, Mapping):
        return any(_has_key(value) for value in result.values())
    if isinstance(result, list):
        return any(_has_key(item) for item in result)
    return result not in (None, "")


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
