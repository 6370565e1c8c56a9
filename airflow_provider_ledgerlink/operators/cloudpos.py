"""Operators for CloudPOS: land a V1 list in object storage, create a weborder through V2.

Both work inside the licence's shared daily budget (see :mod:`~airflow_provider_ledgerlink.core.budget`):
an extract reserves the requests it will need before it starts, and either refuses to start or
waits for the next day when they are not there (``on_budget_exhausted``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.budget import BudgetExhaustedError
from airflow_provider_ledgerlink.core.errors import ConfigurationError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator, Window
from airflow_provider_ledgerlink.core.hook import xcom_result
from airflow_provider_ledgerlink.core.once import WriteOnce
from airflow_provider_ledgerlink.core.writes import LedgerLinkWriteOperator
from airflow_provider_ledgerlink.hooks.cloudpos import (
    DEFAULT_MAX_ROWS_PER_CALL,
    VENDOR,
    CloudPosHook,
    function_named,
    validate_weborder,
    window_days,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


def _close_quietly(hook: CloudPosHook, log: Any) -> None:
    """Give back the unused budget and log what is left; never hides the task's own error."""
    try:
        hook.close()
        hook.log_budget()
    except Exception:
        log.warning("Could not release or report the CloudPOS budget", exc_info=True)


def _budget_wait_trigger(error: BudgetExhaustedError, fallback: datetime) -> Any:
    """A trigger firing when the budget is back (Airflow's standard ``DateTimeTrigger``)."""
    try:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    except ImportError:
        raise ConfigurationError(
            VENDOR,
            "waiting for the request budget",
            "on_budget_exhausted='wait' needs the apache-airflow-providers-standard package",
            hint="Install it, or use on_budget_exhausted='fail'",
        ) from error
    return DateTimeTrigger(moment=error.reset_at or fallback)


class CloudPosExtractOperator(LedgerLinkExtractOperator):
    """Land one CloudPOS V1 list (orders, invoices, products, customers …) in object storage.

    How the window is applied depends on the list:

    * ``orders``, ``invoices`` (dated): read day by day with CloudPOS's ``&date=YYYY-MM-DD`` filter,
      continued by id range (``&start=``/``&end=``) when an answer is full, and every record checked
      on its own time (``ordertime``, ``date``), so exactly the rows of the window land;
    * ``products``, ``subproducts``, ``customers``, ``gift_vouchers``: CloudPOS has no filter for
      them, so the whole
      list is read (one request) and only records whose ``modtime`` falls in the window are kept;
    * everything else (``categories``, ``users`` …): a full copy (``incremental=False``).

    Before it starts, the operator reserves every request it will need from the licence's daily
    budget: with too few left it fails, or with ``on_budget_exhausted="wait"`` it waits (deferred,
    no worker slot) until the budget resets, then runs. The budget left is logged at the end.

    :param function: the list to read (``orders``, ``get-orders`` …; not templated).
    :param chunk: ignored (CloudPOS filters dated lists by one day); kept for existing DAGs.
    :param max_rows_per_call: a dated answer with this many rows is continued by id range.
    :param include_national_register_numbers: keep users' ``secnr`` (left out by default).
    :param on_budget_exhausted: ``fail`` or ``wait``; default from the connection (``fail``).
    :param cloudpos_conn_id: the Airflow connection.
    """

    vendor = VENDOR
    asset_vendor = "cloudpos"  # pinned: part of every default Asset URI of this operator
    template_fields: Sequence[str] = (*LedgerLinkExtractOperator.template_fields, "cloudpos_conn_id")

    def __init__(
        self,
        *,
        function: str,
        chunk: timedelta = timedelta(days=1),
        max_rows_per_call: int = DEFAULT_MAX_ROWS_PER_CALL,
        include_national_register_numbers: bool = False,
        on_budget_exhausted: str | None = None,
        cloudpos_conn_id: str = CloudPosHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        name, spec = function_named(function)
        kwargs.setdefault("incremental", spec.window is not None)
        super().__init__(object_name=name, conn_id=cloudpos_conn_id, **kwargs)
        if kwargs["incremental"] and spec.window is None:
            raise ValueError(f"CloudPOS {spec.flag} has no date or modtime: use incremental=False")
        if on_budget_exhausted not in (None, "fail", "wait"):
            raise ValueError("on_budget_exhausted must be 'fail' or 'wait'")
        self.function = name
        self.spec = spec
        self.chunk = chunk
        self.max_rows_per_call = max_rows_per_call
        self.include_national_register_numbers = include_national_register_numbers
        self.on_budget_exhausted = on_budget_exhausted
        self.cloudpos_conn_id = cloudpos_conn_id

    @cached_property
    def hook(self) -> CloudPosHook:
        return CloudPosHook(self.cloudpos_conn_id)

    def object_label(self) -> str:
        return self.function

    def requests_needed(self, window: Window | None) -> int:
        """Requests the extract will send at least: one per chunk for dated lists, else one."""
        if window is not None and self.spec.window == "date":
            return sum(1 for _ in window_days(window.start, window.end))
        return 1

    def extract_pages(self, window: Window | None) -> Iterator[list[dict[str, Any]]]:
        if window is not None and self.spec.window == "date":
            yield from self.hook.get_pages(
                self.function,
                window=(window.start, window.end),
                max_rows_per_call=self.max_rows_per_call,
            )
            return
        for page in self.hook.get_pages(
            self.function, include_sensitive=self.include_national_register_numbers
        ):
            if window is not None and self.spec.window == "modtime":
                page.data = [row for row in page if _modified_within(row, window)]
            yield page

    def source_details(self) -> dict[str, Any]:
        return {
            "function": self.spec.flag,
            "licence": self.hook.settings.licence,
            "window_on": self.spec.window,
            "national_register_numbers": self.include_national_register_numbers,
        }

    def extract(self, context: Context) -> dict[str, Any]:
        hook = self.hook
        mode = self.on_budget_exhausted or hook.settings.on_budget_exhausted
        try:
            needed = self.requests_needed(self.resolve_window())
            status = hook.budget.reserve(needed)
            self.log.info("Reserved %d CloudPOS request(s); %s", needed, status.describe())
            return super().extract(context)
        except BudgetExhaustedError as exc:
            if mode != "wait":
                raise
            trigger = _budget_wait_trigger(exc, hook.budget.resets_at())
            self.log.warning("%s; waiting until %s (deferred, no worker slot held)", exc, trigger.moment)
            self.defer(trigger=trigger, method_name="execute_after_budget_reset")

    def close_hook(self) -> None:
        """Close the hook (which gives back the unused budget) and log the budget left."""
        if "hook" in self.__dict__:
            _close_quietly(self.hook, self.log)

    def execute_after_budget_reset(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resumed when the budget was due back: run the extract from the start."""
        return self.execute(context)


def _modified_within(row: Mapping[str, Any], window: Window) -> bool:
    moment = row.get("modtime")
    try:
        changed = datetime.fromtimestamp(float(moment), tz=timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return True  # no usable modtime: kept, so nothing is ever lost
    return window.start <= changed < window.end


class CloudPosCreateWeborderOperator(LedgerLinkWriteOperator):
    """Create a weborder with CloudPOS's V2 ``weborder.insert`` (headers ``Licensename``/``Token``).

    Based on how a public client uses V2; CloudPOS's own V2 documentation was not available. The body
    is that client's (``weborderdetail`` lines with ``productid``, ``quantity``, prices, up to ten
    sub-products ``sub1id``…); it is checked before sending.

    A weborder is not idempotent at CloudPOS. So each one has a ``reference`` (by default the DAG,
    run, task and map index), and :class:`~airflow_provider_ledgerlink.core.once.WriteOnce` elects the
    one attempt that may send it (concurrent tries included) and records "sending" before and the
    new ``weborderid`` after. A task retry then returns the weborder already created instead of
    sending it again. An HTTP 200 without ``weborderid``, a 5xx or a connection dropped after sending
    raises :class:`~airflow_provider_ledgerlink.core.errors.AmbiguousWriteError`, which says how to
    check in the POS and how to record the answer; the "sending" mark is never removed for it.

    It is the write base (:class:`~airflow_provider_ledgerlink.core.writes.LedgerLinkWriteOperator`)
    with one record, given by its own arguments: one weborder per task, as its ``reference`` is
    one (``records`` and ``records_path`` are not taken).

    :param weborder: the ``weborder.insert`` body (templated; a dict or its JSON).
    :param reference: what makes this weborder unique (templated).
    :param cloudpos_conn_id: the Airflow connection.
    :return: the write summary of one record (see :mod:`~airflow_provider_ledgerlink.core.writes`):
        ``created`` 1 when sent now, ``already_done`` 1 when an earlier attempt created it; plus
        ``weborder_id`` and ``reference`` at the top, for the tasks that follow.
    """

    template_fields: Sequence[str] = ("weborder", "reference", "cloudpos_conn_id")
    template_fields_renderers = {"weborder": "json"}
    vendor = VENDOR
    record_noun = "weborder"
    records_required = False
    #: How long an attempt waits for another one sending the same weborder before it calls the
    #: outcome ambiguous: longer than one V2 request can take.
    sending_wait = 180.0

    def __init__(
        self,
        *,
        weborder: Any,
        reference: str = "{{ dag.dag_id }}/{{ run_id }}/{{ task.task_id }}/{{ ti.map_index }}",
        cloudpos_conn_id: str = CloudPosHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        for name in ("records", "records_path"):
            if kwargs.get(name) is not None:
                raise ValueError(
                    f"{type(self).__name__} creates one weborder: give weborder (and its reference), "
                    f"not {name}; map the task over the weborders to create several"
                )
        super().__init__(**kwargs)
        self.weborder = weborder
        self.reference = reference
        self.cloudpos_conn_id = cloudpos_conn_id

    @cached_property
    def hook(self) -> CloudPosHook:
        return CloudPosHook(self.cloudpos_conn_id)

    @property
    def operation(self) -> str:
        return "V2 weborder.insert"

    def write_once(self) -> WriteOnce:
        """The record that keeps this weborder from being created twice (keyed by ``reference``)."""
        return WriteOnce(
            vendor=VENDOR,
            operation="V2 weborder.insert",
            account=self.hook.settings.account_key,
            key=f"weborder {self.reference}",
            state=self.hook.state,
            wait=self.sending_wait,
        )

    def record_key(self) -> str:
        """The Airflow Variable that records this weborder's write."""
        return self.write_once().record_key

    def single_record(self) -> Mapping[str, Any]:
        """The weborder, checked before anything is sent (a bad one fails the task before sending)."""
        return validate_weborder(self.weborder)

    def describe(self, record: Mapping[str, Any], index: int) -> str:
        return f"weborder {self.reference}"

    def write_one(self, hook: CloudPosHook, record: Mapping[str, Any], index: int) -> dict[str, Any]:
        body = validate_weborder(record)
        outcome = self.write_once().run(
            lambda: {"weborder_id": hook.create_weborder(body)},
            check_hint=f"Look in the CloudPOS back office (Weborders) for the weborder of {self.reference!r}",
        )
        weborder_id = str(outcome.result.get("weborder_id") or "")
        if outcome.sent:
            self.log.info("Created CloudPOS weborder %s for %s", weborder_id, self.reference)
        else:
            self.log.info("Weborder %s (%s) was created earlier: not sent again", weborder_id, self.reference)
        return {"status": "created" if outcome.sent else "already_done", "weborder_id": weborder_id}

    def finish(self, context: Context, summary: dict[str, Any]) -> dict[str, Any]:
        """The summary, with the weborder's id and reference at the top for the tasks that follow."""
        [result] = summary["results"]
        return xcom_result({**summary, "weborder_id": result["weborder_id"], "reference": self.reference})

    def close_hook(self) -> None:
        """Close the hook (which gives back the unused budget) and log the budget left."""
        if "hook" in self.__dict__:
            _close_quietly(self.hook, self.log)
