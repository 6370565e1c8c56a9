"""Reading records that an upstream task or system landed as a file, one record at a time.

Write operators take their input from the lake as often as from XCom: a webshop export, a POS
day file, a LedgerLink extract. :func:`iter_landed_records` reads any of these at any
``ObjectStoragePath`` URI and yields one record at a time, so a file of a million orders is never
held in memory:

* a LedgerLink extract folder (read through its manifest, see :mod:`.sinks`);
* JSON Lines, plain or gzip (``.jsonl``, ``.ndjson``, ``.jsonl.gz`` …), streamed line by line;
* a JSON document (``.json``, ``.json.gz``): a list of records, or one record (loaded whole).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import Any

from airflow_provider_ledgerlink.core.compat import ObjectStoragePath
from airflow_provider_ledgerlink.core.sinks import read_rows


def iter_landed_records(source: Any) -> Iterator[Any]:
    """Yield the records of a landed file or extract folder (see the module docs)."""
    path = source if isinstance(source, ObjectStoragePath) else ObjectStoragePath(str(source))
    if path.is_dir():
        yield from read_rows(path)
        return
    name = path.name.lower()
    compressed = name.endswith(".gz")
    whole_document = name.removesuffix(".gz").endswith(".json")
    with path.open("rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if compressed else raw
        if whole_document:
            data = json.loads(stream.read().decode("utf-8-sig"))
            yield from data if isinstance(data, list) else [data]
            return
        text = io.TextIOWrapper(stream, encoding="utf-8-sig")
        for number, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}: line {number} is not JSON ({exc})") from None
