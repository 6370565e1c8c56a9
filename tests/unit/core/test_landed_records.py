"""Records landed as files are read one at a time, in every form a lake holds them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
from airflow_provider_ledgerlink.core.landed import iter_landed_records
from airflow_provider_ledgerlink.core.sinks import JsonLinesSink

RECORDS = [{"order_key": "WS-1", "total": 12.5}, {"order_key": "WS-2", "note": "æøå"}]


def test_json_lines_are_streamed_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(
        "\ufeff" + "\n\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n", encoding="utf-8"
    )

    records = iter_landed_records(path.as_uri())

    assert next(records) == RECORDS[0]  # lazily: one record at a time
    assert list(records) == RECORDS[1:]


def test_gzip_json_lines_and_json_documents(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "a.ndjson.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(r) for r in RECORDS))
    (tmp_path / "b.json").write_text(json.dumps(RECORDS))
    (tmp_path / "c.json").write_text(json.dumps(RECORDS[0]))

    assert list(iter_landed_records(str(tmp_path / "a.ndjson.gz"))) == RECORDS
    assert list(iter_landed_records(str(tmp_path / "b.json"))) == RECORDS
    assert list(iter_landed_records(str(tmp_path / "c.json"))) == RECORDS[:1]


def test_a_ledgerlink_extract_folder_is_read_through_its_manifest(tmp_path: Path) -> None:
    folder = ObjectStoragePath((tmp_path / "extract").as_uri())
    with JsonLinesSink(folder) as sink:
        sink.write_rows(RECORDS)
        sink.commit(vendor="Test", object="orders", window=None)

    assert list(iter_landed_records(folder)) == RECORDS


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"ok": 1}\n{not json\n')

    with pytest.raises(ValueError, match="line 2 is not JSON"):
        list(iter_landed_records(str(path)))
