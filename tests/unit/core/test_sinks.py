"""``JsonLinesSink``: gzip JSON Lines parts, a manifest written last, and reruns that replace the
previous output without a moment where a reader could see a half-written extract."""

from __future__ import annotations

import gzip
import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_ledgerlink.core.sinks import (
    MANIFEST_PREFIX,
    JsonLinesSink,
    manifest_path,
    read_manifest,
    read_rows,
)


@pytest.fixture
def folder(tmp_path: Path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}") / "afas" / "transactions" / "2026-07-01"


def sample_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"row {i}", "amount": Decimal(f"{i}.10")} for i in range(start, start + n)]


def file_names(folder: ObjectStoragePath) -> set[str]:
    return {child.name for child in folder.iterdir()}


def part_names(folder: ObjectStoragePath) -> set[str]:
    return {name for name in file_names(folder) if name.startswith("part-")}


def write_extract(folder: ObjectStoragePath, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    with JsonLinesSink(folder, **kwargs) as sink:
        for row in rows:
            sink.write_rows([row])
        return sink.commit(vendor="AFAS Profit")


# ------------------------------------------------------------------------------------------------
# Writing and reading back
# ------------------------------------------------------------------------------------------------
def test_rows_round_trip_through_read_rows(folder: ObjectStoragePath) -> None:
    rows = [{"id": 1, "name": "Café Ørsted", "tags": ["a", "b"], "note": None, "ok": True}]

    write_extract(folder, rows)

    assert list(read_rows(folder)) == rows


def test_rows_keep_their_order_across_calls_and_parts(folder: ObjectStoragePath) -> None:
    write_extract(folder, sample_rows(50), part_max_bytes=200)

    assert [row["id"] for row in read_rows(folder)] == list(range(50))


def test_write_rows_returns_how_many_rows_it_wrote(folder: ObjectStoragePath) -> None:
    with JsonLinesSink(folder) as sink:
        assert sink.write_rows(sample_rows(3)) == 3
        assert sink.write_rows([]) == 0
        assert sink.write_rows(row for row in sample_rows(2)) == 2
        manifest = sink.commit()

    assert manifest["rows"] == 5


def test_a_decimal_stays_exact_and_is_written_as_a_string(folder: ObjectStoragePath) -> None:
    write_extract(folder, [{"amount": Decimal("0.1"), "big": Decimal("12345678901234567890.000000001")}])

    (row,) = read_rows(folder)
    assert row == {"amount": "0.1", "big": "12345678901234567890.000000001"}
    assert Decimal(row["amount"]) * 3 == Decimal("0.3")


def test_the_folder_is_created_when_missing(folder: ObjectStoragePath) -> None:
    assert not folder.exists()

    write_extract(folder, sample_rows(1))

    assert manifest_path(folder).exists()


def test_an_extract_without_rows_has_a_manifest_and_no_parts(folder: ObjectStoragePath) -> None:
    manifest = write_extract(folder, [])

    assert manifest["rows"] == 0
    assert manifest["parts"] == []
    assert list(read_rows(folder)) == []
    assert part_names(folder) == set()


# ------------------------------------------------------------------------------------------------
# Parts and the manifest
# ------------------------------------------------------------------------------------------------
def test_parts_are_split_by_part_max_bytes(folder: ObjectStoragePath) -> None:
    rows = sample_rows(30)
    line_bytes = len(json.dumps(rows[0], default=str, separators=(",", ":"))) + 1

    manifest = write_extract(folder, rows, part_max_bytes=line_bytes * 5)

    assert len(manifest["parts"]) >= 5
    assert sum(part["rows"] for part in manifest["parts"]) == 30
    assert part_names(folder) == {part["path"] for part in manifest["parts"]}


def test_one_part_when_everything_fits(folder: ObjectStoragePath) -> None:
    manifest = write_extract(folder, sample_rows(100))

    assert len(manifest["parts"]) == 1
    assert manifest["parts"][0]["rows"] == 100


def test_the_manifest_counts_rows_and_parts_with_checksums_of_the_file_bytes(
    folder: ObjectStoragePath,
) -> None:
    manifest = write_extract(folder, sample_rows(40), part_max_bytes=300)

    assert manifest["complete"] is True
    assert manifest["rows"] == 40
    for part in manifest["parts"]:
        data = (folder / part["path"]).read_bytes()
        assert part["bytes"] == len(data)
        assert part["sha256"] == hashlib.sha256(data).hexdigest()
        assert len(gzip.decompress(data).splitlines()) == part["rows"]


def test_the_manifest_on_storage_is_the_one_commit_returned(folder: ObjectStoragePath) -> None:
    manifest = write_extract(folder, sample_rows(3))

    assert read_manifest(folder) == manifest
    assert manifest["vendor"] == "AFAS Profit"


def test_metadata_given_to_commit_is_in_the_manifest(folder: ObjectStoragePath) -> None:
    with JsonLinesSink(folder) as sink:
        sink.write_rows(sample_rows(1))
        sink.commit(window={"start": "2026-07-01", "end": "2026-07-02"}, connector="Profit_Transactions")

    manifest = read_manifest(folder)
    assert manifest is not None
    assert manifest["window"] == {"start": "2026-07-01", "end": "2026-07-02"}
    assert manifest["connector"] == "Profit_Transactions"


def test_the_same_rows_give_the_same_bytes_and_checksums(tmp_path: Path) -> None:
    root = ObjectStoragePath(f"file://{tmp_path}")

    first = write_extract(root / "one", sample_rows(20), part_max_bytes=250)
    second = write_extract(root / "two", sample_rows(20), part_max_bytes=250)

    assert [p["sha256"] for p in first["parts"]] == [p["sha256"] for p in second["parts"]]


def test_before_commit_there_is_no_manifest_and_no_complete_extract(folder: ObjectStoragePath) -> None:
    with JsonLinesSink(folder, part_max_bytes=100) as sink:
        sink.write_rows(sample_rows(10))

        assert read_manifest(folder) is None
        with pytest.raises(FileNotFoundError, match=MANIFEST_PREFIX):
            list(read_rows(folder))

        sink.commit()

    assert read_manifest(folder) is not None


# ------------------------------------------------------------------------------------------------
# Reruns and failures
# ------------------------------------------------------------------------------------------------
def test_a_rerun_replaces_the_previous_output_and_removes_its_parts(folder: ObjectStoragePath) -> None:
    old = write_extract(folder, sample_rows(30), part_max_bytes=200)
    old_parts = {part["path"] for part in old["parts"]}

    new = write_extract(folder, sample_rows(5, start=100))

    assert [row["id"] for row in read_rows(folder)] == list(range(100, 105))
    assert part_names(folder) == {part["path"] for part in new["parts"]}
    assert not old_parts & part_names(folder)
    assert file_names(folder) == {manifest_path(folder).name, *part_names(folder)}


def test_a_rerun_keeps_files_that_are_not_extract_parts(folder: ObjectStoragePath) -> None:
    write_extract(folder, sample_rows(3))
    (folder / "README.txt").write_text("kept")

    write_extract(folder, sample_rows(3))

    assert (folder / "README.txt").read_text() == "kept"


def test_a_run_removes_parts_left_behind_by_a_run_that_died(folder: ObjectStoragePath) -> None:
    write_extract(folder, sample_rows(3))
    crashed = folder / "part-00000-0123456789ab.jsonl.gz"
    crashed.write_bytes(gzip.compress(b'{"id": -1}\n'))

    write_extract(folder, sample_rows(3))

    assert not crashed.exists()


def test_a_failure_inside_the_sink_keeps_the_previous_output_intact(folder: ObjectStoragePath) -> None:
    previous = write_extract(folder, sample_rows(10))
    files_before = file_names(folder)

    with (
        pytest.raises(RuntimeError, match="vendor went away"),
        JsonLinesSink(folder, part_max_bytes=100) as sink,
    ):
        sink.write_rows(sample_rows(50, start=1000))
        raise RuntimeError("vendor went away")

    assert file_names(folder) == files_before
    assert read_manifest(folder) == previous
    assert [row["id"] for row in read_rows(folder)] == list(range(10))


def test_a_failure_on_a_first_run_leaves_no_parts_and_no_manifest(folder: ObjectStoragePath) -> None:
    with pytest.raises(RuntimeError), JsonLinesSink(folder) as sink:
        sink.write_rows(sample_rows(5))
        raise RuntimeError("boom")

    assert read_manifest(folder) is None
    assert part_names(folder) == set()


def test_leaving_the_sink_without_commit_or_error_publishes_nothing(folder: ObjectStoragePath) -> None:
    with JsonLinesSink(folder) as sink:
        sink.write_rows(sample_rows(5))

    assert read_manifest(folder) is None


def test_read_rows_ignores_parts_the_manifest_does_not_name(folder: ObjectStoragePath) -> None:
    write_extract(folder, sample_rows(3))
    stray = folder / "part-99999-deadbeef.jsonl.gz"
    stray.write_bytes(gzip.compress(b'{"id": -1}\n'))

    assert [row["id"] for row in read_rows(folder)] == [0, 1, 2]
