"""The AFAS GetConnector query engine: simple and JSON filters, ``orderbyfieldids``, ``skip``/``take``.

Range filters and orderings on monotonic fields are binary searches over the generated rows (see
:class:`~airflow_provider_ledgerlink.sandbox.afas.data.GetConnectorSpec`); everything else scans."""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_ledgerlink.sandbox.afas.data import _UNITS, ConnectorField, GetConnectorSpec, _Dataset
from airflow_provider_ledgerlink.sandbox.afas.errors import (
    VALUE_ERROR_NUMBER,
    AfasError,
    _out_of_memory,
    _unexpected,
)
from airflow_provider_ledgerlink.sandbox.data import (
    format_wallclock,
    parse_wallclock,
)
from airflow_provider_ledgerlink.sandbox.server import Request

MAX_QUERY_LENGTH = 2049
MAX_RESULT_ROWS = 200_000
"""More rows than this in one response, or to sort in memory, gives the AFAS "Out of memory" 500."""


# ==================================================================================================
# Query engine: filters, ordering, paging
# ==================================================================================================
_OPERATORS = range(1, 16)
_RANGE_OPERATORS = (1, 2, 3, 4, 5)
_TEXT_OPERATORS = (6, 10, 11, 12, 13, 14, 15)


def _comparable(data_type: str, value: Any) -> Any:
    """A row value in the form filters compare it in."""
    if data_type == "string":
        return value.casefold()
    if data_type == "date":
        return value[:19]
    return value


def _filter_value(spec_field: ConnectorField, raw: str) -> Any:
    text = raw.strip()
    data_type = spec_field.data_type
    try:
        if data_type == "int":
            number = float(text.replace(",", "."))
            if number != int(number):
                raise ValueError(text)
            return int(number)
        if data_type == "decimal":
            return float(text.replace(",", "."))
        if data_type == "boolean":
            lowered = text.lower()
            if lowered in ("1", "true", "ja", "yes", "-1"):
                return True
            if lowered in ("0", "false", "nee", "no"):
                return False
            raise ValueError(text)
        if data_type == "date":
            seconds = parse_wallclock(text)
            if seconds is None:
                raise ValueError(text)
            return format_wallclock(seconds, "")
    except ValueError:
        raise AfasError(
            f"The value '{raw}' is not valid for field '{spec_field.id}' ({spec_field.label}).",
            VALUE_ERROR_NUMBER,
        ) from None
    return text.casefold()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


@dataclass
class _Condition:
    index: int
    field: ConnectorField
    operator: int
    raw: str

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise _unexpected()
        raw = self.raw
        if raw in ('""', "''"):
            raw = ""
        if self.operator in _TEXT_OPERATORS:
            self.value: Any = raw.strip().strip("%").casefold()
        elif self.operator in (8, 9):
            self.value = None
        else:
            self.value = _filter_value(self.field, raw)

    def test(self) -> Callable[[Sequence[Any]], bool]:
        """A fast predicate on row tuples."""
        index, value, data_type = self.index, self.value, self.field.data_type
        op = self.operator

        def key(row: Sequence[Any]) -> Any:
            cell = row[index]
            return None if cell is None else _comparable(data_type, cell)

        if op == 1:
            return lambda row: key(row) == value
        if op == 2:
            return lambda row: (k := key(row)) is not None and k >= value
        if op == 3:
            return lambda row: (k := key(row)) is not None and k <= value
        if op == 4:
            return lambda row: (k := key(row)) is not None and k > value
        if op == 5:
            return lambda row: (k := key(row)) is not None and k < value
        if op == 7:
            return lambda row: key(row) != value
        if op == 8:
            return lambda row: row[index] is None or row[index] == ""
        if op == 9:
            return lambda row: not (row[index] is None or row[index] == "")
        if op in (6, 15):
            return lambda row: row[index] is not None and value in _text(row[index])
        if op == 11:
            return lambda row: row[index] is None or value not in _text(row[index])
        if op == 10:
            return lambda row: row[index] is not None and _text(row[index]).startswith(value)
        if op == 12:
            return lambda row: row[index] is None or not _text(row[index]).startswith(value)
        if op == 13:
            return lambda row: row[index] is not None and _text(row[index]).endswith(value)
        return lambda row: row[index] is None or not _text(row[index]).endswith(value)


Predicate = Callable[[Sequence[Any]], bool]


def _predicate(groups: Sequence[Sequence[_Condition]]) -> Predicate | None:
    """OR over groups of AND-ed conditions; ``None`` when there is nothing to test."""
    compiled = [[condition.test() for condition in group] for group in groups if group]
    if not compiled:
        return None
    if len(compiled) == 1:
        tests = compiled[0]
        if len(tests) == 1:
            return tests[0]
        return lambda row: all(test(row) for test in tests)
    return lambda row: any(all(test(row) for test in tests) for tests in compiled)


def _split(text: str | None, separator: str) -> list[str]:
    return [] if text is None else text.split(separator)


def _parse_simple_filters(dataset: _Dataset, request: Request) -> list[list[_Condition]]:
    ids = request.param("filterfieldids")
    if ids is None or ids == "":
        return []
    values = request.param("filtervalues")
    operators = request.param("operatortypes")
    id_groups = [group.split(",") for group in ids.split(";")]
    value_groups = [group.split(",") for group in values.split(";")] if values is not None else None
    operator_groups = [group.split(",") for group in operators.split(";")] if operators is not None else None
    groups: list[list[_Condition]] = []
    for g, names in enumerate(id_groups):
        group: list[_Condition] = []
        for n, name in enumerate(names):
            index, spec_field = dataset.lookup(name)
            try:
                raw = value_groups[g][n] if value_groups is not None else ""
                op_text = operator_groups[g][n] if operator_groups is not None else "1"
                operator = int(op_text)
            except (IndexError, ValueError):
                raise _unexpected() from None
            group.append(_Condition(index, spec_field, operator, raw))
        groups.append(group)
    return groups


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _parse_json_filters(dataset: _Dataset, text: str) -> list[list[_Condition]]:
    try:
        document = json.loads(text)
        filters = _as_list(document["Filters"]["Filter"])
    except (ValueError, KeyError, TypeError):
        raise AfasError("The filter (filterjson) is not valid.") from None
    groups: list[list[_Condition]] = []
    for item in filters:
        if not isinstance(item, dict):
            raise AfasError("The filter (filterjson) is not valid.")
        group: list[_Condition] = []
        for spec in _as_list(item.get("Field")):
            if not isinstance(spec, dict) or "@FieldId" not in spec:
                raise AfasError("The filter (filterjson) is not valid.")
            index, spec_field = dataset.lookup(str(spec["@FieldId"]))
            try:
                operator = int(spec.get("@OperatorType", 1))
            except (TypeError, ValueError):
                raise _unexpected() from None
            raw = spec.get("#text", "")
            group.append(_Condition(index, spec_field, operator, "" if raw is None else str(raw)))
        groups.append(group)
    return groups


def _parse_order(dataset: _Dataset, text: str | None) -> list[tuple[str, int, bool]]:
    """``[(field id, tuple index, descending)]`` from ``orderbyfieldids``."""
    order: list[tuple[str, int, bool]] = []
    for item in _split(text, ","):
        name = item.strip()
        if not name:
            continue
        descending = name.startswith("-")
        index, spec_field = dataset.lookup(name.lstrip("-"))
        order.append((spec_field.id, index, descending))
    return order


class _Lane:
    """Generated rows ``i`` in ``[lo, hi)`` whose block ``i // block`` is ``phase`` modulo ``stride``.

    With ``stride == 1`` this is just ``range(lo, hi)``. With ``stride == 3`` and ``block == 2`` it is
    the rows of one administration in a rotation of three: counting and indexing stay O(1).
    """

    __slots__ = ("block", "phase", "start", "stop", "stride")

    def __init__(self, block: int, stride: int, phase: int, lo: int, hi: int) -> None:
        self.block, self.stride, self.phase = block, stride, phase
        self.start = self._rank(lo)
        self.stop = max(self.start, self._rank(hi))

    def _rank(self, x: int) -> int:
        """How many lane rows have a row number below ``x``."""
        if self.stride == 1:
            return x
        full, rest = divmod(x, self.block * self.stride)
        return full * self.block + min(max(rest - self.phase * self.block, 0), self.block)

    def __len__(self) -> int:
        return self.stop - self.start

    def row_numbers(self, first: int, last: int, descending: bool) -> Iterable[int]:
        """Row numbers of lane positions ``[first, last)`` (counted from the end when descending)."""
        if descending:
            first, last = len(self) - last, len(self) - first
        if self.stride == 1:
            numbers: Iterable[int] = range(self.start + first, self.start + last)
        else:
            block, stride, phase = self.block, self.stride, self.phase
            numbers = (
                (phase + (q // block) * stride) * block + q % block
                for q in range(self.start + first, self.start + last)
            )
        return reversed(list(numbers)) if descending else numbers


@dataclass
class _Segment:
    """A run of result candidates in output order: a lane of generated rows or a list of rows."""

    dataset: _Dataset
    predicate: Predicate | None
    lane: _Lane | None = None
    descending: bool = False
    rows: list[tuple[Any, ...]] | None = None

    def __len__(self) -> int:
        return len(self.lane) if self.lane is not None else len(self.rows or ())

    def slice(self, first: int, last: int) -> Iterator[tuple[Any, ...]]:
        if self.lane is None:
            yield from (self.rows or [])[first:last]
            return
        row = self.dataset.row
        for i in self.lane.row_numbers(first, last, self.descending):
            yield row(i)


def _range_bounds(dataset: _Dataset, conditions: Iterable[_Condition], lo: int, hi: int) -> tuple[int, int]:
    """Narrow ``[lo, hi)`` with range conditions on fields that never decrease with the row number."""
    row = dataset.row
    for condition in conditions:
        index, data_type = condition.index, condition.field.data_type

        def key(i: int, index: int = index, data_type: str = data_type) -> Any:
            return _comparable(data_type, row(i)[index])

        value, op = condition.value, condition.operator
        if op in (1, 2):
            lo = max(lo, bisect.bisect_left(range(dataset.count), value, lo, hi, key=key))
        if op == 4:
            lo = max(lo, bisect.bisect_right(range(dataset.count), value, lo, hi, key=key))
        if op in (1, 3):
            hi = min(hi, bisect.bisect_right(range(dataset.count), value, lo, hi, key=key))
        if op == 5:
            hi = min(hi, bisect.bisect_left(range(dataset.count), value, lo, hi, key=key))
        if hi <= lo:
            return lo, lo
    return lo, hi


def _order_shape(spec: GetConnectorSpec, order: Sequence[tuple[str, int, bool]]) -> str:
    """``natural`` (row order), ``partition`` (per administration, then row order) or ``sort``.

    Fields after a complete unique key are ignored: they cannot break ties that do not exist.
    """
    if not order:
        return "natural"
    items = list(order)
    shape = "natural"
    direction = items[0][2]
    if spec.partition and items[0][0] == spec.partition:
        items = items[1:]
        shape = "partition"
    seen: set[str] = set()
    for name, _, descending in items:
        if spec.unique and set(spec.unique) <= seen:
            break
        needs = spec.ordered.get(name)
        if descending != direction or needs is None or not set(needs) <= seen:
            return "sort"
        seen.add(name)
    return shape


def _sort_key(data_type: str, index: int) -> Callable[[Sequence[Any]], Any]:
    def key(row: Sequence[Any]) -> Any:
        value = row[index]
        return (0, 0) if value is None else (1, _comparable(data_type, value))

    return key


def _sort(rows: list[tuple[Any, ...]], dataset: _Dataset, order: Sequence[tuple[str, int, bool]]) -> None:
    for name, index, descending in reversed(order):
        data_type = dataset.positions[name.lower()][1].data_type
        rows.sort(key=_sort_key(data_type, index), reverse=descending)


def _run_get_connector(
    dataset: _Dataset,
    groups: list[list[_Condition]],
    order: list[tuple[str, int, bool]],
    skip: int,
    take: int | None,
) -> list[tuple[Any, ...]]:
    """Rows ``skip .. skip+take`` of the filtered, ordered connector (``take=None``: all of them)."""
    spec = dataset.spec
    inserted: list[tuple[Any, ...]] = list(dataset.inserted)
    lo, hi = 0, dataset.count
    units: Sequence[int] | None = None
    generated_groups = groups
    if len(groups) == 1:
        rest: list[_Condition] = []
        bisectable: list[_Condition] = []
        for condition in groups[0]:
            name = condition.field.id
            if name in spec.monotonic and condition.operator in _RANGE_OPERATORS:
                bisectable.append(condition)
            elif name == spec.partition and condition.operator == 1:
                units = [u for u in (units if units is not None else _UNITS) if u == condition.value]
            else:
                rest.append(condition)
        lo, hi = _range_bounds(dataset, bisectable, lo, hi)
        generated_groups = [rest] if rest else []
    generated_predicate = _without_hidden(_predicate(generated_groups), dataset.hidden)
    inserted_predicate = _predicate(groups)
    # A changed generated row sits among the inserted ones, out of the generated order: sort.
    shape = "sort" if dataset.hidden else _order_shape(spec, order)
    descending = bool(order) and order[0][2]
    block, stride = dataset.generator.block, len(_UNITS)

    if shape == "sort":
        if hi - lo + len(inserted) > MAX_RESULT_ROWS:
            raise _out_of_memory()
        if units is not None and spec.partition:
            lanes = [_Lane(block, stride, _UNITS.index(u), lo, hi) for u in units]
        else:
            lanes = [_Lane(1, 1, 0, lo, hi)]
        candidates = [row for lane in lanes for row in _Segment(dataset, None, lane).slice(0, len(lane))]
        if dataset.hidden:
            candidates = [row for row in candidates if row[0] not in dataset.hidden]
        candidates += inserted
        if inserted_predicate is not None:
            candidates = [row for row in candidates if inserted_predicate(row)]
        _sort(candidates, dataset, order)
        end = len(candidates) if take is None else skip + take
        return candidates[skip:end]

    if inserted and order:
        # Inserted records always come after the generated ones on the ordered fields (they get
        # higher numbers and later timestamps); among themselves they still need sorting.
        _sort(inserted, dataset, [(name, index, False) for name, index, _ in order])
    segments: list[_Segment] = []
    if shape == "partition" or (units is not None and spec.partition):
        partition_index = dataset.positions[spec.partition.lower()][0] if spec.partition else 0
        for unit in units if units is not None else _UNITS:
            lane = _Lane(block, stride, _UNITS.index(unit), lo, hi)
            segments.append(_Segment(dataset, generated_predicate, lane, descending))
            mine = [row for row in inserted if row[partition_index] == unit]
            segments.append(_Segment(dataset, inserted_predicate, rows=mine[::-1] if descending else mine))
    else:
        segments.append(_Segment(dataset, generated_predicate, _Lane(1, 1, 0, lo, hi), descending))
        segments.append(
            _Segment(dataset, inserted_predicate, rows=inserted[::-1] if descending else inserted)
        )
    if descending:
        segments.reverse()
    return _collect(segments, skip, take)


def _without_hidden(predicate: Predicate | None, hidden: set[Any]) -> Predicate | None:
    """``predicate``, also refusing generated rows whose key an UpdateConnector replaced."""
    if not hidden:
        return predicate
    if predicate is None:
        return lambda row: row[0] not in hidden
    return lambda row: row[0] not in hidden and predicate(row)


def _collect(segments: Sequence[_Segment], skip: int, take: int | None) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    remaining = take
    for segment in segments:
        if remaining == 0:
            break
        size = len(segment)
        if segment.predicate is None:
            if skip >= size:
                skip -= size
                continue
            last = size if remaining is None else min(size, skip + remaining)
            if len(out) + last - skip > MAX_RESULT_ROWS:
                raise _out_of_memory()
            out.extend(segment.slice(skip, last))
            if remaining is not None:
                remaining -= last - skip
            skip = 0
            continue
        predicate = segment.predicate
        for row in segment.slice(0, size):
            if not predicate(row):
                continue
            if skip:
                skip -= 1
                continue
            out.append(row)
            if len(out) > MAX_RESULT_ROWS:
                raise _out_of_memory()
            if remaining is not None:
                remaining -= 1
                if remaining == 0:
                    break
    return out
