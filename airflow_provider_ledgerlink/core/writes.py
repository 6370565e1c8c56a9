"""The one base of every operator that writes to a vendor.

Every write operator (AFAS UpdateConnector, Alasco payments, contract statuses and invoice PDFs,
Tripletex orders, customers and vouchers, the CloudPOS weborder, the CASH import) takes the same
arguments, runs the same loop, reports the same summary and treats failures by the same policy. A
subclass only says how to write one record (:meth:`LedgerLinkWriteOperator.write_one`), or all of
them as one batch (:meth:`~LedgerLinkWriteOperator.write_batch`), and how to name it in messages.

Arguments (all write operators)
    ``records``: the records (templated): a list, an upstream task's XCom holding one, or a single
    record object. ``records_path``: or a landed file or folder (templated ``ObjectStoragePath``
    URI): JSON Lines (``.jsonl``, ``.ndjson``, gzip too), a JSON list, or a LedgerLink extract
    folder, read one record at a time (see :mod:`.landed`). Give one of the two.
    ``continue_on_error``: after a record is refused, write the remaining ones (the task still
    fails at the end). Default: stop at the first refusal. The vendor's own arguments (connection
    id, connector, matching rules …) stay the operator's own.

The loop
    Records are read lazily and written in order, one :meth:`~LedgerLinkWriteOperator.write_one` each.
    The at-most-once guards (:class:`~.once.WriteOnce`) sit in ``write_one`` or in the hook it calls,
    per record, so a rerun, retry or backfill finds what was written before and does not write it again.

The batch form
    Where the vendor takes all records as one write that it accepts or refuses as a whole (a CASH
    import), the subclass sets ``writes_in_one_batch = True`` and implements
    :meth:`~LedgerLinkWriteOperator.write_batch` instead: the base reads every record, calls it once
    and builds the same summary, one result per record. Every record shares the batch's outcome: all
    ``failed`` when it is refused, all ``in_doubt`` when the answer was ambiguous (the batch's error
    on the first result); ``continue_on_error`` changes nothing there.

After the write
    :meth:`~LedgerLinkWriteOperator.finish` turns the summary into the task's return value: the
    summary itself, or the summary with the operator's own keys beside it (the CloudPOS
    ``weborder_id``), or, after waiting for the vendor to process the write (deferring to a trigger
    where the operator can), the summary with what the vendor reported. The hook is closed after it.

The summary (the task's return value, XCom ``return_value``)::

    {"records": n,        # records read
     "created": n,        # written now: a new object at the vendor
     "updated": n,        # written now: an existing object changed
     "already_done": n,   # written before (by an earlier run, or already at the vendor): not written again
     "unchanged": n,      # the vendor already holds these values: nothing to write
     "skipped": n,        # left alone by the operator's own check (e.g. AFAS ``existing_check``)
     "failed": n,         # refused by the vendor or by LedgerLink's checks
     "in_doubt": n,       # the answer left it open whether it was applied (at most 1: the loop
                          # stops; or every record of a batch)
     "not_attempted": n,  # not written because the loop stopped first
     "results": [{"index", "record", "status", ...}]}

    Each result carries ``index``, a non-personal ``record`` label, one of the statuses above and the
    vendor's ids; ``outcome`` keeps the vendor-specific word where it says more (``already_paid``);
    ``error`` the message of a failed record.

The policy
    * A refusal of one record (a validation error, a vendor verdict, a malformed record) is counted
      as ``failed``; the loop goes on with ``continue_on_error`` and stops otherwise.
    * An ambiguous answer (:class:`~.errors.AmbiguousWriteError`) stops the loop at once: nothing
      further is sent.
    * When anything failed, the summary so far is pushed to XCom ``results`` and the task fails:
      with :class:`~.errors.AmbiguousWriteError` naming the vendor, the operation, the record and how
      to check at the vendor when a record is in doubt, else with
      :class:`~.errors.ValidationError` naming the first refused record. A batch fails with the
      error of the batch itself (it names what the batch holds): an
      :class:`~.errors.AmbiguousWriteError` when it is in doubt.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_ledgerlink.core.compat import AirflowProviderDeprecationWarning, BaseOperator
from airflow_provider_ledgerlink.core.errors import AmbiguousWriteError, LedgerLinkError, ValidationError
from airflow_provider_ledgerlink.core.hook import xcom_result
from airflow_provider_ledgerlink.core.landed import iter_landed_records
from airflow_provider_ledgerlink.core.redaction import scrub

if TYPE_CHECKING:
    from airflow.sdk import Context

#: What ``write_one`` may report for a record that did not fail (see the module docs).
WRITE_STATUSES: tuple[str, ...] = ("created", "updated", "already_done", "unchanged", "skipped")
#: The keys of every write summary, in order.
SUMMARY_KEYS: tuple[str, ...] = (
    "records",
    *WRITE_STATUSES,
    "failed",
    "in_doubt",
    "not_attempted",
    "results",
)

#: The errors that mean "this record was not written": counted, and the loop goes on per the policy.
RECORD_ERRORS: tuple[type[Exception], ...] = (LedgerLinkError, ValueError, KeyError, TypeError)


def renamed_arguments(
    operator: str, kwargs: dict[str, Any], renamed: Mapping[str, tuple[str, Any]]
) -> dict[str, Any]:
    """``kwargs`` with the old names of arguments moved to their new names, warning for each.

    ``renamed`` maps an old name to ``(new name, value given)``; a value of ``None`` means the old
    name was not used. Giving both the old and the new name is an error.
    """
    for old, (new, value) in renamed.items():
        if value is None:
            continue
        if kwargs.get(new) is not None:
            raise ValueError(f"{operator}: give {new} only ({old} is its old name)")
        warnings.warn(
            f"{operator}: the argument {old!r} is deprecated; use {new!r} (same value)",
            AirflowProviderDeprecationWarning,
            stacklevel=4,
        )
        kwargs[new] = value
    return kwargs


def empty_summary() -> dict[str, Any]:
    """A summary with every key, all counts zero."""
    summary: dict[str, Any] = dict.fromkeys(SUMMARY_KEYS[:-1], 0)
    summary["results"] = []
    return summary


def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The summary of per-record results (see the module docs)."""
    summary = empty_summary()
    summary["records"] = len(results)
    for result in results:
        summary[result["status"]] += 1
    summary["results"] = list(results)
    return summary


class LedgerLinkWriteOperator(BaseOperator):
    """Write records to a vendor one by one, each at most once; one summary, one failure policy.

    See the module docs for the arguments, the summary and the policy. Subclasses set
    :attr:`vendor`, provide ``hook`` (with ``close()``) and implement :meth:`write_one`; they may name
    records (:meth:`describe`), offer one record through their own arguments
    (:meth:`single_record`) and name the operation (:attr:`operation`).

    :param records: the records (templated): a list, an XCom holding one, or one record object.
    :param records_path: or a landed file or folder of records (templated ``ObjectStoragePath`` URI).
    :param continue_on_error: write the remaining records after a refusal (the task still fails).
    """

    template_fields: Sequence[str] = ("records", "records_path")
    template_fields_renderers = {"records": "json"}
    ui_color = "#fde9d9"
    #: The vendor's display name, for messages.
    vendor: str = ""
    #: What one record is, for messages (``order``, ``payment`` …).
    record_noun: str = "record"
    #: Whether the operator needs ``records`` or ``records_path`` (else it has single-record arguments).
    records_required: bool = True
    #: Whether the records are written as one batch (:meth:`write_batch`) instead of one by one.
    writes_in_one_batch: bool = False

    def __init__(
        self,
        *,
        records: Any = None,
        records_path: Any = None,
        continue_on_error: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if records is not None and records_path is not None:
            raise ValueError(f"{type(self).__name__}: give either records or records_path, not both")
        if self.records_required and records is None and records_path is None:
            raise ValueError(f"{type(self).__name__}: give records or records_path")
        self.records = records
        self.records_path = records_path
        self.continue_on_error = continue_on_error

    # -- what a subclass provides ------------------------------------------------------------------
    @property
    def hook(self) -> Any:
        """The vendor hook the records are written with (``close()`` is called at the end)."""
        raise NotImplementedError

    @property
    def operation(self) -> str:
        """What the task does, for messages."""
        return f"write {self.record_noun}s"

    def write_one(self, hook: Any, record: Mapping[str, Any], index: int) -> Mapping[str, Any]:
        """Write one record; return its result: ``status`` (one of :data:`WRITE_STATUSES`) and the
        vendor's ids, never personal data. Raise to refuse the record (see the module docs)."""
        raise NotImplementedError

    def write_batch(self, hook: Any, records: list[Any]) -> Sequence[Mapping[str, Any]]:
        """Write every record at once, as one write the vendor accepts or refuses as a whole (used
        instead of :meth:`write_one` when :attr:`writes_in_one_batch` is set). ``records`` are as
        read, in order: check them here. Return one result per record, in order (``status`` and
        ids, as :meth:`write_one`); raise to refuse the batch (see the module docs)."""
        raise NotImplementedError

    def finish(self, context: Context, summary: dict[str, Any]) -> Any:
        """What the task returns once the records are written: the summary. A subclass may add its
        own keys beside the summary's, or follow up on what it wrote (wait for the vendor, and
        defer to a trigger, before the hook is closed)."""
        return summary

    def describe(self, record: Mapping[str, Any], index: int) -> str:
        """A short, non-personal name of a record for messages and results."""
        return f"#{index}"

    def single_record(self) -> Mapping[str, Any] | None:
        """One record given through the operator's own arguments (when neither input is given)."""
        return None

    def close_hook(self) -> None:
        self.hook.close()

    # -- the loop ----------------------------------------------------------------------------------
    def iter_records(self) -> Iterator[Any]:
        """The records, one at a time (a file is streamed, never held whole)."""
        if self.records_path is not None:
            yield from iter_landed_records(self.records_path)
            return
        records = self.records
        if records is None:
            single = self.single_record()
            records = [single] if single is not None else []
        if isinstance(records, Mapping):
            records = [records]
        if isinstance(records, str | bytes) or not isinstance(records, Iterable):
            raise ValidationError(
                self.vendor,
                self.operation,
                f"records must be a list of {self.record_noun} objects, not {type(records).__name__}",
                hint="Pass a list (or an upstream task's XCom holding one), or records_path",
            )
        yield from records

    def execute(self, context: Context) -> Any:
        try:
            if self.writes_in_one_batch:
                summary = self._write_in_one_batch(context)
            else:
                summary = self._write_one_by_one(context)
            return self.finish(context, summary)
        finally:
            self.close_hook()

    def _write_one_by_one(self, context: Context) -> dict[str, Any]:
        """The loop: every record by :meth:`write_one`, then the policy (see the module docs)."""
        results: list[dict[str, Any]] = []
        refused: tuple[str, str] | None = None
        doubt: tuple[str, AmbiguousWriteError] | None = None
        stopped = False
        records = self.iter_records()
        try:
            for index, record in enumerate(self._read(records, results)):
                if stopped:
                    results.append({"index": index, "status": "not_attempted"})
                    continue
                label = self._label(record, index)
                try:
                    if not isinstance(record, Mapping):
                        raise ValidationError(
                            self.vendor,
                            self.operation,
                            f"{self.record_noun} {label} is not an object ({type(record).__name__})",
                            hint=f"Each {self.record_noun} must be a JSON object",
                        )
                    result = dict(self.write_one(self.hook, record, index))
                except AmbiguousWriteError as exc:
                    message = scrub(str(exc))
                    results.append({"index": index, "record": label, "status": "in_doubt", "error": message})
                    self.log.error("%s %s may or may not be written: %s", self.record_noun, label, message)
                    doubt = (label, exc)
                    stopped = True
                    continue
                except RECORD_ERRORS as exc:
                    message = scrub(_describe_error(exc))
                    results.append({"index": index, "record": label, "status": "failed", "error": message})
                    self.log.error("%s %s failed: %s", self.record_noun, label, message)
                    refused = refused or (label, message)
                    stopped = not self.continue_on_error
                    continue
                status = result.get("status")
                if status not in WRITE_STATUSES:
                    raise TypeError(f"{type(self).__name__}.write_one returned status {status!r}")
                self.log.info("%s %s: %s", self.record_noun, label, status)
                results.append({"index": index, "record": label, **result})
        except _ReadFailed as failed:
            self._fail_on_read(context, results, failed.error)
        summary = xcom_result(summarize(results))  # an error text may quote what a hostile answer echoed
        if doubt is not None or refused is not None:
            self._push(context, summary)
        if doubt is not None:
            label, doubtful = doubt
            raise AmbiguousWriteError(
                self.vendor,
                self.operation,
                f"{self.record_noun} {label}: {doubtful.message}",
                hint=(
                    f"{(doubtful.hint or 'Check at the vendor whether it was applied').rstrip('.')}. Nothing "
                    f"further was sent: {self._written(summary)} and {summary['not_attempted']} not "
                    f"attempted; the per-record results are in XCom 'results'"
                ),
                reference=doubtful.reference,
                status_code=doubtful.http_status,
            )
        if refused is not None:
            label, message = refused
            raise ValidationError(
                self.vendor,
                self.operation,
                f"{summary['failed']} of {summary['records']} {self.record_noun}s failed; first: "
                f"{self.record_noun} {label}: {message}",
                hint=(
                    f"{self._written(summary)} and {summary['not_attempted']} not attempted; the "
                    "per-record results are in XCom 'results'. Fix the records and run the task again: "
                    "what was already written is recognised and not written twice"
                ),
            )
        return summary

    def _write_in_one_batch(self, context: Context) -> dict[str, Any]:
        """Every record by one :meth:`write_batch`: all of them share its outcome."""
        records: list[Any] = []
        try:
            for record in self._read(self.iter_records(), records):
                records.append(record)
        except _ReadFailed as failed:
            raise failed.error from None  # nothing was sent
        labels = [self._label(record, index) for index, record in enumerate(records)]
        try:
            written = list(self.write_batch(self.hook, records))
        except AmbiguousWriteError as exc:
            self._fail_batch(context, labels, "in_doubt", exc)
            raise
        except RECORD_ERRORS as exc:
            self._fail_batch(context, labels, "failed", exc)
            raise
        if len(written) != len(records):
            raise TypeError(
                f"{type(self).__name__}.write_batch returned {len(written)} results for {len(records)} records"
            )
        results: list[dict[str, Any]] = []
        for index, (label, result) in enumerate(zip(labels, written, strict=True)):
            if result.get("status") not in WRITE_STATUSES:
                raise TypeError(f"{type(self).__name__}.write_batch returned status {result.get('status')!r}")
            results.append({"index": index, "record": label, **result})
        return xcom_result(summarize(results))  # type: ignore[no-any-return]

    def _fail_batch(self, context: Context, labels: list[str], status: str, error: Exception) -> None:
        """Push the summary of a batch that failed as a whole (its error on the first record)."""
        message = scrub(_describe_error(error))
        self.log.error(
            "The %d %ss, written as one batch: %s: %s", len(labels), self.record_noun, status, message
        )
        results = [{"index": index, "record": label, "status": status} for index, label in enumerate(labels)]
        if results:
            results[0]["error"] = message
        self._push(context, xcom_result(summarize(results)))

    # -- helpers -----------------------------------------------------------------------------------
    def _read(self, records: Iterator[Any], results: list[dict[str, Any]]) -> Iterator[Any]:
        """``records``, with a failure to read them (a bad line, a missing file) set apart."""
        while True:
            try:
                record = next(records)
            except StopIteration:
                return
            except LedgerLinkError as exc:
                raise _ReadFailed(exc) from None
            except (OSError, ValueError) as exc:
                raise _ReadFailed(
                    ValidationError(
                        self.vendor,
                        self.operation,
                        f"could not read the {self.record_noun}s after {len(results)}: "
                        f"{type(exc).__name__}: {exc}",
                        hint="Fix the input (records or records_path) and run the task again: what "
                        "was already written is recognised and not written twice",
                    )
                ) from None
            yield record

    def _fail_on_read(self, context: Context, results: list[dict[str, Any]], error: LedgerLinkError) -> None:
        if results:
            self._push(context, xcom_result(summarize(results)))
        raise error

    def _label(self, record: Any, index: int) -> str:
        if not isinstance(record, Mapping):
            return f"#{index}"
        try:
            return scrub(self.describe(record, index))
        except Exception:  # a label must never fail the write
            return f"#{index}"

    @staticmethod
    def _written(summary: Mapping[str, Any]) -> str:
        return (
            f"{summary['created']} created, {summary['updated']} updated, "
            f"{summary['already_done']} already done"
        )

    @staticmethod
    def _push(context: Context, summary: dict[str, Any]) -> None:
        task_instance = context.get("ti")
        if task_instance is not None:
            task_instance.xcom_push(key="results", value=summary)


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, LedgerLinkError | ValueError):
        return str(exc)
    if isinstance(exc, KeyError):
        return f"the {exc} field is missing"
    return f"{type(exc).__name__}: {exc}"


class _ReadFailed(Exception):
    def __init__(self, error: LedgerLinkError) -> None:
        super().__init__(str(error))
        self.error = error
