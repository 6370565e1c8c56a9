"""Streaming rows to object storage as gzip JSON Lines, with a manifest written last.

Layout of one extract (one vendor object, one window) under its folder::

    part-00000-<run>.jsonl.gz     rows, one JSON object per line, parts of bounded size
    part-00001-<run>.jsonl.gz
    _manifest.json                written last: rows, parts with sha256 checksums, window, vendor

The manifest is the commit: a reader lists the parts named in ``_manifest.json`` and ignores every
other file. A run that dies half-way leaves parts without a manifest naming them, so it is never
mistaken for a finished one. A rerun of the same window writes parts under a new run id, replaces
the manifest in one step, then deletes the files the new manifest does not name. Until that
replacement, readers keep seeing the previous complete output.

Parts are written with a fixed gzip timestamp, so the same rows always give the same bytes and the
same checksum (reruns and fault-injected runs can be compared byte for byte).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import IO, Any

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: money never becomes a float
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _make_encoder() -> Any:
    # msgspec (a dependency of Airflow's Task SDK) encodes about five times faster than the standard
    # library; its output is the same compact UTF-8 JSON, with Decimals as exact strings.
    import msgspec

    return msgspec.json.Encoder(enc_hook=_json_default, decimal_format="string")


class _CountingWriter:
    """A write-only file wrapper that counts and hashes the bytes going through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.size = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.size += len(data)
        self.sha256.update(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class JsonLinesSink:
    """Writes rows to ``folder`` (an ``ObjectStoragePath``); call :meth:`commit` to publish them.

    :param folder: where the parts and the manifest go; created when missing.
    :param part_max_bytes: start a new part once this many uncompressed bytes were written.
    :param compresslevel: gzip level: 1 (the default) is the fastest to write; its parts are about
        5% larger than level 3's and a third larger than gzip's usual 6; 9 is the smallest. An
        extract is usually CPU-bound on the client, so the landing zone trades a little size for speed.
    """

    def __init__(
        self, folder: Any, *, part_max_bytes: int = 128 * 1024 * 1024, compresslevel: int = 1
    ) -> None:
        self.folder = folder
        self._encode_lines = _make_encoder().encode_lines
        self.part_max_bytes = part_max_bytes
        self.compresslevel = compresslevel
        self.run_id = uuid.uuid4().hex[:12]
        self.rows = 0
        self.parts: list[dict[str, Any]] = []
        self._file: IO[bytes] | None = None
        self._counter: _CountingWriter | None = None
        self._gzip: gzip.GzipFile | None = None
        self._part_rows = 0
        self._part_bytes = 0
        self._committed = False
        self.folder.mkdir(parents=True, exist_ok=True)

    # -- writing ---------------------------------------------------------------------------------
    def write_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append rows; returns how many were written. Rows are encoded as one batch per call."""
        batch = rows if isinstance(rows, list) else list(rows)
        if not batch:
            return 0
        data = self._encode_lines(batch)  # one JSON object per line, each line ending in "\n"
        if self._gzip is None:
            self._open_part()
        assert self._gzip is not None
        self._gzip.write(data)
        self._part_rows += len(batch)
        self._part_bytes += len(data)
        self.rows += len(batch)
        if self._part_bytes >= self.part_max_bytes:
            self._close_part()
        return len(batch)

    def _open_part(self) -> None:
        name = f"part-{len(self.parts):05d}-{self.run_id}.jsonl.gz"
        self._file = (self.folder / name).open("wb")
        self._counter = _CountingWriter(self._file)
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._counter, compresslevel=self.compresslevel, mtime=0
        )
        self.parts.append({"path": name, "rows": 0, "bytes": 0, "sha256": None})

    def _close_part(self) -> None:
        if self._gzip is None:
            return
        assert self._counter is not None and self._file is not None
        self._gzip.close()
        self._file.close()
        self.parts[-1].update(
            rows=self._part_rows, bytes=self._counter.size, sha256=self._counter.sha256.hexdigest()
        )
        self._gzip = self._counter = self._file = None
        self._part_rows = self._part_bytes = 0

    # -- publishing ------------------------------------------------------------------------------
    def commit(self, **metadata: Any) -> dict[str, Any]:
        """Close the last part, write the manifest last, then remove files of earlier runs."""
        self._close_part()
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "complete": True,
            "rows": self.rows,
            "parts": self.parts,
            "run_id": self.run_id,
            "written_at": datetime.now(timezone.utc).isoformat(),
            **metadata,
        }
        tmp = self.folder / f".{MANIFEST_NAME}.{self.run_id}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, default=_json_default)
        tmp.rename(self.folder / MANIFEST_NAME)
        self._committed = True
        self._remove_stale_files()
        return manifest

    def abort(self) -> None:
        """Drop this run's parts (the previous complete output, if any, stays published)."""
        try:
            if self._gzip is not None:
                self._gzip.close()
            if self._file is not None:
                self._file.close()
        finally:
            self._gzip = self._counter = self._file = None
            for part in self.parts:
                _unlink(self.folder / part["path"])

    def _remove_stale_files(self) -> None:
        keep = {MANIFEST_NAME, *(p["path"] for p in self.parts)}
        for child in self.folder.iterdir():
            name = child.name
            if name in keep or not (name.startswith("part-") or name.startswith(f".{MANIFEST_NAME}")):
                continue
            _unlink(child)

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None and not self._committed:
            self.abort()


def _unlink(path: Any) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_manifest(folder: Any) -> dict[str, Any] | None:
    """The manifest of a complete extract in ``folder``, or ``None`` when there is none (yet)."""
    path = folder / MANIFEST_NAME
    if not path.exists():
        return None
    with path.open("r", encoding="utf-8") as handle:
        return json.load(handle)


def read_rows(folder: Any) -> Iterable[dict[str, Any]]:
    """Iterate the rows of a complete extract, reading only the parts its manifest names."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(f"no complete extract in {folder}: {MANIFEST_NAME} is missing")
    for part in manifest["parts"]:
        with (folder / part["path"]).open("rb") as raw, gzip.GzipFile(fileobj=raw) as handle:
            for line in handle:
                yield json.loads(line)
