"""What CASHWeb and the CASHWin process do with a call, without the wire: the API user's login, the
administrations, exports selected from the generated and imported records, imports as transactions,
and the simulated CASHWin that processes the imports of an offline administration.

An operation takes the call's named parameters and answers its output parts (``response`` with
``code`` and ``message``, then ``exportResult`` or ``transaction``), in the WSDL's order;
:mod:`~airflow_provider_ledgerlink.sandbox.cash.app` puts them in a SOAP envelope.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_ledgerlink.sandbox.cash.data import (
    ADMINISTRATIONS,
    ANCHOR,
    API_EMAIL,
    API_USER,
    DEFAULT_ENABLED_RECORDS,
    JOURNALS,
    LEDGER_ACCOUNTS,
    RECORDED_DELIVERY_ADDRESSES,
    RELATION_NUMBER,
    Administration,
    JournalLines,
    Relations,
    sandbox_cash_password,
)
from airflow_provider_ledgerlink.sandbox.cash.records import (
    Fields,
    LineError,
    amsterdam_now_text,
    error_document,
    is_yymmdd,
    parse_amount,
    parse_import,
    render_export,
)
from airflow_provider_ledgerlink.sandbox.data import wallclock_seconds

Parts = list[tuple[str, Any]]
"""An operation's output parts, ``(name, value)`` in order; a mapping value is a structure."""
Operation = Callable[[Mapping[str, Any], Administration], Parts]


def response_part(code: int, message: str) -> tuple[str, Any]:
    return ("response", {"code": code, "message": message})


# ==================================================================================================
# Transactions and the CASHWin process
# ==================================================================================================
@dataclass
class Transaction:
    id: str
    administration: Administration
    records: list[tuple[str, Fields]]
    created: float  # sandbox wall-clock seconds
    status: int = 1
    updated: float | None = None
    err: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "creation": amsterdam_now_text(self.created),
            "lastUpdate": "0000-00-00 00:00:00" if self.updated is None else amsterdam_now_text(self.updated),
            "administration": {"admCode": self.administration.code, "admMap": self.administration.map},
            "initiator": {"relation": RELATION_NUMBER, "user": API_USER},
            "err": self.err,
        }


class CashWinSimulator:
    """The CASHWin process running function S0067 ("Inlezen berichten") for the API user.

    It looks for instructions every ``interval`` seconds from the moment it was (re)started; a
    pending import is processed at the first look after it arrived. ``running = False`` stops it.
    """

    def __init__(self, interval: float = 30.0, running: bool = True, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._interval = float(interval)
        self._running = running
        self._started = clock()

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        if value <= 0:
            raise ValueError("the CASHWin interval must be positive")
        self._interval = float(value)
        self._started = self._clock()

    @property
    def running(self) -> bool:
        return self._running

    @running.setter
    def running(self, value: bool) -> None:
        if value and not self._running:
            self._started = self._clock()
        self._running = bool(value)

    def pickup_after(self, arrived: float) -> float | None:
        """The monotonic time CASHWin picks up an instruction that arrived at ``arrived``."""
        if not self._running:
            return None
        since = max(0.0, arrived - self._started)
        cycles = int(since // self._interval) + 1
        return self._started + cycles * self._interval


# ==================================================================================================
# The engine
# ==================================================================================================
class CashEngine:
    """CASHWeb's books per administration and the CASHWin that fills them (see the package docs)."""

    def __init__(
        self,
        seed: int = 42,
        relations: int = 500,
        journal_entries: int = 1000,
        cashwin_interval: float = 30.0,
    ) -> None:
        self.seed = seed
        self.password = sandbox_cash_password(seed)
        self._relation_count = relations
        self._entry_count = journal_entries
        self._build_data()
        self.cashwin = CashWinSimulator(cashwin_interval)
        self.enabled_records: set[str] = set(DEFAULT_ENABLED_RECORDS)
        self._lock = threading.RLock()
        self._clock_origin = time.monotonic()
        self.reset_state()

    def _build_data(self) -> None:
        self.relations = Relations(self.seed, self._relation_count)
        self.journal = JournalLines(self.seed, self._entry_count, self._relation_count)

    def apply_scale(self, scale: dict[str, int]) -> list[str]:
        used = []
        if "CASH_0101" in scale:
            self._relation_count = int(scale["CASH_0101"])
            used.append("CASH_0101")
        if "CASH_0301" in scale:
            self._entry_count = int(scale["CASH_0301"])
            used.append("CASH_0301")
        if used:
            self._build_data()
        return used

    def reset_state(self) -> None:
        with self._lock:
            self.password = sandbox_cash_password(self.seed)
            self._password_generation = 0
            #: True also serves ``Cash.getTransaction`` (no CASH document names it; off by default).
            self.offers_transaction_status = False
            self.transactions: dict[str, Transaction] = {}
            #: Records imported, per (administration code, record): each administration has its own.
            self.imported: dict[tuple[str, str], list[Fields]] = {}
            #: (administration, journal, document number, YY) of every journal entry booked by import.
            self.booked_documents: set[tuple[str, str, str, str]] = set()
            self.import_calls = 0

    def new_password(self) -> str:
        """A new password for the API user, as an administrator sets in CASHWeb; the old one stops
        working at once."""
        with self._lock:
            self._password_generation += 1
            self.password = sandbox_cash_password(f"{self.seed}:{self._password_generation}")
            return self.password

    # -- the sandbox clock -------------------------------------------------------------------------
    def now(self) -> float:
        """Amsterdam wall-clock seconds: the anchor when the emulator was created, then real time."""
        return wallclock_seconds(ANCHOR) + (time.monotonic() - self._clock_origin)

    def _wall(self, monotonic: float) -> float:
        return wallclock_seconds(ANCHOR) + (monotonic - self._clock_origin)

    # -- calls -------------------------------------------------------------------------------------
    def operations(self) -> dict[str, Operation]:
        """The operations offered now, by name (``Cash.getTransaction`` only when switched on)."""
        offered: dict[str, Operation] = {"Cash.export": self.export, "Cash.import": self.import_}
        if self.offers_transaction_status:
            offered["Cash.getTransaction"] = self.get_transaction
        return offered

    def call(self, operation: Operation, params: Mapping[str, Any]) -> Parts:
        """Check the credentials and the administration, let CASHWin catch up, run ``operation``."""
        if (params.get("relatie"), params.get("email"), params.get("pass")) != (
            RELATION_NUMBER,
            API_EMAIL,
            self.password,
        ):
            return [response_part(2, "Error during login")]
        administration = params.get("administration")
        found = None
        if isinstance(administration, Mapping):
            found = next(
                (
                    a
                    for a in ADMINISTRATIONS
                    if a.code.lower() == str(administration.get("admCode", "")).lower()
                    and a.map == str(administration.get("admMap", "")).strip()
                ),
                None,
            )
        if found is None:
            return [response_part(903, "Administration not found or not enabled for synchronisation")]
        with self._lock:
            self._process_due()
            return operation(params, found)

    # -- Cash.export -------------------------------------------------------------------------------
    def export(self, params: Mapping[str, Any], administration: Administration) -> Parts:
        command = str(params.get("export") or "").strip()
        match = re.fullmatch(r"(\d{3,4})([A-Za-z]*)((?:\|[^|]*)*)", command)
        if not match:
            return [response_part(800, f"Invalid export instruction '{command}'")]
        record = match.group(1).zfill(4)
        letters = match.group(2).upper().replace("X", "")
        args = [a for a in match.group(3).split("|")[1:]]
        if record not in self.enabled_records:
            return [response_part(800, f"Record {record} is not enabled for the API")]
        try:
            records = list(self._records(record, letters, args, administration))
        except ValueError as error:
            return [response_part(800, str(error))]
        return [response_part(1, "Success"), ("exportResult", render_export(records))]

    def _records(
        self, record: str, letters: str, args: list[str], administration: Administration
    ) -> Iterator[tuple[str, Fields]]:
        imported = {
            code: rows for (admin, code), rows in self.imported.items() if admin == administration.code
        }
        key = args[0].strip() if args and not letters else None
        if record == "0101":
            indexes: Iterable[int] = range(self.relations.count)
            if letters == "W":
                days = int(args[0]) if args and args[0].strip().isdigit() else 0
                if days < 1:
                    raise ValueError("Property W needs the number of days (W|N)")
                today = int(self.now() // 86400) * 86400
                indexes = self.relations.changed_since(today - (days - 1) * 86400)
            elif letters:
                raise ValueError(f"Unknown property '{letters}' for record 0101")
            for i in indexes:
                fields = self.relations.fields(i)
                if key is None or fields[0][1] == key.zfill(6):
                    yield record, fields
            for fields in imported.get(record, []):
                if letters != "W" and (key is None or dict(fields).get("0101") == key.zfill(6)):
                    yield record, fields
        elif record == "0301":
            first = last = None
            if letters == "T":
                first, last = ([*args, "", ""])[:2]
                if not re.fullmatch(r"\d{4}", first) or not re.fullmatch(r"\d{4}", last):
                    raise ValueError("Property T needs a period range (T|YYMM|YYMM)")
            elif letters:
                raise ValueError(f"Unknown property '{letters}' for record 0301")
            for k in self.journal.in_periods(first, last):
                for fields in self.journal.entry(k):
                    yield record, fields
            for fields in imported.get(record, []):
                period = dict(fields).get("0301") or dict(fields).get("0302", "")[:4]
                if first is None or (last is not None and first <= period <= last):
                    yield record, fields
        elif record == "0201":
            for account, description, kind, vat in LEDGER_ACCOUNTS:
                yield record, (("0201", account), ("0203", description), ("0204", kind), ("0242", vat))
        elif record == "0901":
            for code, name, kind, account in JOURNALS:
                yield record, (("0901", code), ("0902", name), ("0903", kind), ("0201", account))
        elif record == "2229":
            stored = [*RECORDED_DELIVERY_ADDRESSES, *imported.get(record, [])]
            for fields in stored:
                if key is None or dict(fields).get("0101") == key.zfill(6):
                    yield record, fields
        else:
            yield from ((record, f) for f in imported.get(record, []))

    # -- Cash.import -------------------------------------------------------------------------------
    def import_(self, params: Mapping[str, Any], administration: Administration) -> Parts:
        self.import_calls += 1
        text = str(params.get("import") or "")
        try:
            records = parse_import(text)
        except ValueError as error:
            return [response_part(900, f"Import error: {error}")]
        disabled = sorted({code for code, _ in records} - self.enabled_records)
        if disabled:
            return [response_part(900, f"Record {disabled[0]} is not enabled for the API")]
        transaction = Transaction(
            id=uuid.uuid4().hex[:13], administration=administration, records=records, created=self.now()
        )
        self.transactions[transaction.id] = transaction
        if not administration.offline:
            self._apply(transaction, None)
        return [response_part(1, "Success"), ("transaction", transaction.as_dict())]

    # -- Cash.getTransaction -----------------------------------------------------------------------
    def get_transaction(self, params: Mapping[str, Any], administration: Administration) -> Parts:
        transaction = self.transactions.get(str(params.get("id") or "").strip())
        if transaction is None or transaction.administration != administration:
            return [response_part(902, "Transaction does not exist")]
        return [response_part(1, "Success"), ("transaction", transaction.as_dict())]

    # -- processing --------------------------------------------------------------------------------
    def _process_due(self) -> None:
        """Let CASHWin do the work it would have done by now (see the package docs)."""
        now = time.monotonic()
        for transaction in self.transactions.values():
            if transaction.status != 1:
                continue
            arrived = self._clock_origin + (transaction.created - wallclock_seconds(ANCHOR))
            pickup = self.cashwin.pickup_after(arrived)
            if pickup is not None and pickup <= now:
                self._apply(transaction, self._wall(pickup))

    def _apply(self, transaction: Transaction, at: float | None) -> None:
        errors = [
            (line, message, code, fields)
            for line, (code, fields) in enumerate(transaction.records, start=1)
            for message in self._validate(code, fields, transaction.administration)
        ]
        errors += self._balance_errors(transaction.records)
        errors += self._already_booked(transaction.administration, transaction.records)
        transaction.updated = at
        if errors:
            transaction.status = 3
            transaction.err = error_document(errors)
            return
        transaction.status = 2
        for code, fields in transaction.records:
            self.imported.setdefault((transaction.administration.code, code), []).append(fields)
            values = dict(fields)
            if code == "0301" and values.get("0303"):
                self.booked_documents.add(
                    (
                        transaction.administration.code,
                        values.get("0901", ""),
                        values["0303"].zfill(6),
                        values.get("0302", "")[:2],
                    )
                )

    def _validate(self, code: str, fields: Fields, administration: Administration) -> Iterator[str]:
        values = dict(fields)
        relation = values.get("0101")
        if relation is not None and not self._relation_exists(relation, administration):
            yield f"Ongeldige waarde 0101={relation}"
        if code == "0301":
            for required in ("0302", "0901", "0303", "0201", "0307"):
                if not values.get(required, "").strip():
                    yield f"Rubriek {required} is verplicht"
            account = values.get("0201")
            if account and account not in {a[0] for a in LEDGER_ACCOUNTS}:
                yield f"Ongeldige waarde 0201={account}"
            journal = values.get("0901")
            if journal and journal not in {j[0] for j in JOURNALS}:
                yield f"Ongeldige waarde 0901={journal}"
            booked = values.get("0302", "")
            if booked and not is_yymmdd(booked):
                yield f"Ongeldige waarde 0302={booked}"
            amount = values.get("0307")
            if amount and parse_amount(amount) is None:
                yield f"Ongeldige waarde 0307={amount}"
            if values.get("0701") and not (relation and values.get("0309")):
                yield "Subadministratie vereist relatienummer (0101) en factuurnummer (0309)"

    def _balance_errors(self, records: list[tuple[str, Fields]]) -> list[LineError]:
        totals: dict[tuple[str, str], tuple[Decimal, int, Fields]] = {}
        for line, (code, fields) in enumerate(records, start=1):
            if code != "0301":
                continue
            values = dict(fields)
            amount = parse_amount(values.get("0307", "")) or Decimal(0)
            key = (values.get("0901", ""), values.get("0303", ""))
            total, first, first_fields = totals.get(key, (Decimal(0), line, fields))
            totals[key] = (total + amount, first, first_fields)
        return [
            (first, f"Boeking {journal}/{document} is niet in evenwicht ({total})", "0301", fields)
            for (journal, document), (total, first, fields) in totals.items()
            if total != 0
        ]

    def _document_booked(self, administration: str, journal: str, document: str, year: str) -> bool:
        """Whether journal ``journal`` already holds document number ``document`` in year ``YY``
        (a document number is unique per year and journal)."""
        number = document.strip().zfill(6)
        generated = journal == "VK" and number.isdigit() and 1 <= int(number) <= self.journal.entries
        if generated and self.journal.booking_date(int(number) - 1).strftime("%y") == year:
            return True
        return (administration, journal, number, year) in self.booked_documents

    def _already_booked(
        self, administration: Administration, records: list[tuple[str, Fields]]
    ) -> list[LineError]:
        """CASHWin refuses a journal entry whose document number is already booked in that journal and
        year (the sandbox's wording of the refusal; see docs/sandbox.md)."""
        errors = []
        seen: set[tuple[str, str, str]] = set()
        for line, (code, fields) in enumerate(records, start=1):
            values = dict(fields)
            if code != "0301" or not values.get("0303"):
                continue
            key = (values.get("0901", ""), values["0303"].zfill(6), values.get("0302", "")[:2])
            if key in seen:
                continue
            seen.add(key)
            if self._document_booked(administration.code, *key):
                message = f"Stuknummer {key[1]} is al geboekt in dagboek {key[0]}"
                errors.append((line, message, code, fields))
        return errors

    def _relation_exists(self, number: str, administration: Administration) -> bool:
        if not number.isdigit():
            return False
        index = int(number) - 100
        if 0 <= index < self.relations.count:
            return True
        imported = self.imported.get((administration.code, "0101"), [])
        return any(dict(f).get("0101") == number.zfill(6) for f in imported)
