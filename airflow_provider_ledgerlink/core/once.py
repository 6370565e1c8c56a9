"""Sending one write to a vendor at most once: across task retries, new DAG runs, backfills and
concurrent processes.

Most vendor writes are not idempotent: a second POST books a second journal entry, imports a second
batch, creates a second weborder. The risky moments are a retry after an answer that never arrived
(the vendor may have applied the write), a rerun or backfill of a run that already wrote, and two
attempts running at once (a zombie task and its retry, overlapping runs). :class:`WriteOnce` keeps a
small record per write, keyed by *what* is written (the vendor, the account and a content key such as
an administration and its document numbers), never by *who* writes it, in a :class:`SharedState`
(Airflow Variables in a deployment, which every worker and process of it sees alike):

* ``done``: the write was applied; every later attempt returns the recorded result without sending;
* ``sending``: an attempt is sending it, or sent it and never learned the outcome. A concurrent
  attempt waits for the outcome; once the record is older than ``wait`` seconds, every attempt fails
  with :class:`~.errors.AmbiguousWriteError`, which says how to check at the vendor and how to record
  the answer. The record is never removed on an ambiguous answer;
* ``open``: the last attempt was refused outright (nothing applied), so a later one may send.

Airflow Variables offer reads and writes, but no compare-and-set, and listing them needs Airflow 3.3
inside a task. The election of the one attempt that may send therefore uses only reads and writes:
a *splitter* (Moir and Anderson) per round, made of two keys: ``x`` (the last attempt to enter) and
``door``. An attempt writes its id to ``x``; if ``door`` is already closed it loses; otherwise it closes
the door and wins only if ``x`` still holds its id. At most one attempt wins a round; one that runs
alone always wins. Concurrent attempts may all lose; a loser waits ``settle`` seconds for the winner's
record and, when none appears, moves to the next round after a random pause of up to half of
``settle``, so that attempts which collided once do not arrive together again (one that runs
alone through a round wins it). A winner re-reads the record, writes
``sending``, then checks that nobody has moved on to the next round before it sends (each side
writes first and reads the other's key second, so at least one of them sees the other). The round's
keys are deleted once the record says ``done`` or ``open``: an attempt that arrives late and wins an
emptied round re-reads the record before sending, and finds the outcome there.

The guarantee is safety first: no two attempts ever both send. The price is in rare, pathological
interleavings (a winner stalled for longer than ``settle`` between two of its steps): a write that
was not sent may be reported as ambiguous, for a person to check; it is never sent twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_ledgerlink.core.errors import AmbiguousWriteError, LedgerLinkError
from airflow_provider_ledgerlink.core.shared_state import AirflowVariableState, SharedState

log = logging.getLogger(__name__)

__all__ = ["Outcome", "WriteOnce"]

PREFIX = "ledgerlink_once_"


@dataclass(frozen=True)
class Outcome:
    """What :meth:`WriteOnce.run` did: the write's result, and whether this attempt sent it."""

    result: dict[str, Any]
    sent: bool


class WriteOnce:
    """At most one send of one write (see the module docs).

    :param vendor: the vendor's display name, for messages and the record's key.
    :param operation: what the write does (``V2 weborder.insert``), for messages.
    :param account: which vendor account it goes to (never a secret): the same content sent to two
        accounts is two writes.
    :param key: what makes two writes the same write — content, never the attempt (``administration
        1 documents 2026-001,2026-002``). Only its hash is stored; :paramref:`label` is shown.
    :param label: how messages and the record name the write (default: ``key``, shortened).
    :param state: where records live (default: Airflow Variables).
    :param settle: seconds a losing attempt waits for the winner's record before trying again.
    :param wait: seconds an attempt waits for another one's outcome before calling it ambiguous.
    """

    def __init__(
        self,
        *,
        vendor: str,
        operation: str,
        account: str,
        key: str,
        label: str | None = None,
        state: SharedState | None = None,
        settle: float = 5.0,
        wait: float = 300.0,
        poll: float = 0.5,
        max_rounds: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.vendor = vendor
        self.operation = operation
        self.label = label if label is not None else (key if len(key) <= 200 else key[:197] + "...")
        self.state = state if state is not None else AirflowVariableState()
        self.settle = settle
        self.wait = wait
        self.poll = poll
        self.max_rounds = max_rounds
        self._sleep = sleep
        self._clock = clock
        self.holder = uuid.uuid4().hex
        self._rng = random.Random(self.holder)
        digest = hashlib.sha256("\x00".join((vendor, account, key)).encode("utf-8")).hexdigest()[:32]
        slug = re.sub(r"[^a-z0-9]+", "", vendor.lower())[:16] or "vendor"
        #: The Variable holding this write's record (named in every message about it).
        self.record_key = f"{PREFIX}{slug}_{digest}"

    # -- the record ----------------------------------------------------------------------------
    def record(self) -> dict[str, Any] | None:
        """The current record, or ``None`` when this write was never attempted (or was released)."""
        return self.state.get_json(self.record_key)

    def _write(self, state: str, **fields: Any) -> None:
        self.state.set_json(
            self.record_key,
            {
                "state": state,
                "vendor": self.vendor,
                "operation": self.operation,
                "write": self.label,
                "at": self._now_iso(),
                **fields,
            },
        )

    def release(self) -> None:
        """Allow the write to be sent again (after a person checked that the vendor does not have it)."""
        round_ = _int((self.record() or {}).get("round")) + 1
        self._write("open", round=round_, released=True)

    def mark_done(self, result: Mapping[str, Any] | None = None) -> None:
        """Record the write as applied (after a person found it at the vendor)."""
        self._write("done", result=dict(result or {}), resolved_by_hand=True)

    # -- the election --------------------------------------------------------------------------
    def _key(self, name: str, round_: int) -> str:
        return f"{self.record_key}_{name}{round_}"

    def _split(self, round_: int) -> bool:
        """One pass through round ``round_``'s splitter; ``True`` when this attempt won it."""
        self.state.set(self._key("x", round_), self.holder)
        if self.state.get(self._key("door", round_)):
            return False
        self.state.set(self._key("door", round_), "closed")
        return self.state.get(self._key("x", round_)) == self.holder

    def _forget_round(self, round_: int) -> None:
        for name in ("x", "door"):
            try:
                self.state.delete(self._key(name, round_))
            except Exception:  # leftovers are harmless: the record decides
                log.debug("Could not delete %s", self._key(name, round_), exc_info=True)

    # -- the write ---------------------------------------------------------------------------------
    def run(self, send: Callable[[], Mapping[str, Any]], *, check_hint: str) -> Outcome:
        """Send the write through ``send`` unless it was (or is being) sent already.

        ``send`` returns a JSON-safe mapping (kept in the record and returned to later attempts);
        it raises :class:`AmbiguousWriteError` when the vendor may have applied the write, another
        :class:`LedgerLinkError` when it certainly did not. Any other exception counts as ambiguous.
        Validate the request before calling this: a failure inside ``send`` is taken as a failure
        of the write.

        :param check_hint: how a person checks at the vendor whether the write was applied.
        """
        floor = 0  # rounds below this one are known to have no usable winner
        empty_rounds = 0
        for _ in range(4 * self.max_rounds):  # a bound on passes; each one normally ends or votes
            if empty_rounds >= self.max_rounds:
                break
            record = self.record() or {}
            state = record.get("state")
            if state == "done":
                return self._earlier(record)
            if state == "sending":
                outcome = self._await_outcome(record, check_hint)
                if outcome is not None:
                    return outcome
                continue  # refused or released meanwhile: this attempt may try
            round_ = max(floor, _int(record.get("round")) if state == "open" else 0)
            if not self._split(round_):
                if self._await_winner(round_) is None:  # nobody won this round: try the next one
                    floor = round_ + 1
                    empty_rounds += 1
                    self._sleep(self._rng.uniform(0, self.settle / 2))
                continue
            current = self.record() or {}
            if current.get("state") in ("done", "sending") or _int(current.get("round")) > round_:
                floor = _int(current.get("round"))
                continue  # the record moved on while this attempt was in the splitter
            self._write("sending", round=round_, holder=self.holder)
            if self.state.get(self._key("door", round_ + 1)):
                # Someone gave up waiting for this round's winner and moved on: leave it to them.
                log.info("%s %s: another attempt took over %s", self.vendor, self.operation, self.label)
                continue
            return self._send(send, round_, check_hint)
        raise AmbiguousWriteError(
            self.vendor,
            self.operation,
            f"{self.label}: concurrent attempts kept colliding; it was not sent by this attempt",
            hint=f"Run the task again. The record is the Airflow Variable '{self.record_key}'",
        )

    def _send(self, send: Callable[[], Mapping[str, Any]], round_: int, check_hint: str) -> Outcome:
        try:
            result = dict(send())
        except AmbiguousWriteError as error:
            raise AmbiguousWriteError(
                error.vendor,
                error.operation,
                error.message,
                hint=self._resolution(check_hint),
                reference=error.reference,
                status_code=error.http_status,
            ) from None
        except LedgerLinkError:
            self._write("open", round=round_ + 1)  # refused outright: a later attempt may send
            self._forget_round(round_)
            raise
        # Anything else (a crash, a bug, an interrupt) leaves the record at "sending": ambiguous.
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            result = json.loads(json.dumps(result, default=str))
        self._write("done", round=round_, result=result)
        self._forget_round(round_)
        return Outcome(result=result, sent=True)

    def _earlier(self, record: Mapping[str, Any]) -> Outcome:
        log.info(
            "%s %s: %s was sent earlier (%s): not sent again",
            self.vendor,
            self.operation,
            self.label,
            record.get("at"),
        )
        result = record.get("result")
        return Outcome(result=dict(result) if isinstance(result, Mapping) else {}, sent=False)

    def _await_winner(self, round_: int) -> dict[str, Any] | None:
        """After losing ``round_``: the record once the winner wrote it, ``None`` when none did."""
        deadline = self._clock() + self.settle
        while True:
            record = self.record() or {}
            state = record.get("state")
            if state in ("done", "sending") or (state == "open" and _int(record.get("round")) > round_):
                return record
            if self._clock() >= deadline:
                return None
            self._sleep(self.poll)

    def _await_outcome(self, record: Mapping[str, Any], check_hint: str) -> Outcome | None:
        """Wait while another attempt sends: its outcome; ``None`` when the record was reopened;
        :class:`AmbiguousWriteError` once the ``sending`` record is ``wait`` seconds old."""
        while True:
            state = record.get("state")
            if state == "done":
                return self._earlier(record)
            if state != "sending":
                return None
            age = self._clock() - _timestamp(record.get("at"), default=self._clock())
            if age >= self.wait:
                raise AmbiguousWriteError(
                    self.vendor,
                    self.operation,
                    f"{self.label}: an attempt started sending it at {record.get('at')} and its outcome "
                    "was never learned, so it may or may not have been applied; it was not sent again",
                    hint=self._resolution(check_hint),
                )
            self._sleep(self.poll)
            record = self.record() or {}

    def _resolution(self, check_hint: str) -> str:
        return (
            f"{check_hint.rstrip('. ')}. If it is there, record that with "
            f'`airflow variables set {self.record_key} \'{{"state": "done"}}\'`; if it is not, allow '
            f"one new attempt with {self.reopen_command()}. Then clear the task"
        )

    def reopen_command(self) -> str:
        """The command a person runs to allow one new attempt at this write (after checking at the
        vendor that the earlier one was not applied), for messages."""
        round_ = _int((self.record() or {}).get("round")) + 1
        return f'`airflow variables set {self.record_key} \'{{"state": "open", "round": {round_}}}\'`'

    def _now_iso(self) -> str:
        return datetime.fromtimestamp(self._clock(), tz=timezone.utc).isoformat()


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _timestamp(value: Any, *, default: float) -> float:
    if not isinstance(value, str):
        return default
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()
