"""Streaming rows to object storage as gzip JSON Lines, committed by an immutable manifest.

Layout of one extract (one vendor object, one window) under its folder::

    part-00000-<attempt>.jsonl.gz              rows, one JSON object per line, parts of bounded size
    part-00001-<attempt>.jsonl.gz
    _manifest-00000007-<attempt>.json          written last: rows, parts with sha256, window, vendor

The manifest is the commit. Every attempt (a task try, a rerun, a zombie still running) writes its
parts under its own attempt id, so no two writers ever write the same file, and every commit writes a
*new* manifest file with the next version number; a manifest is never rewritten. A reader takes the
latest manifest whose parts are all present and ignores every other file. This needs no atomic
rename or conditional write, so it holds on every ``ObjectStoragePath`` (local, S3, GCS …):

* a run that dies half-way leaves parts no manifest names: never mistaken for a finished one;
* a commit first writes its manifest, then removes the *older* manifests, each before its parts, so
  at no moment does a manifest exist whose parts were removed;
* a writer never touches another attempt's parts unless a superseded manifest named them or the
  attempt is older than ``stale_after`` (a run that died long ago);
* a writer that started *before* an attempt that already committed is the losing writer: its commit
  raises :class:`ConcurrentWriteError` and removes its own parts, and the newer output stays as it is
  (a retry of the losing task reads again and commits a newer version);
* two commits racing for the same version are ordered by attempt id, which starts with the time the
  attempt began: readers agree on the winner, and both manifests are complete.

Parts are written with a fixed gzip timestamp, so the same rows always give the same bytes and the
same checksum (reruns and fault-injected runs can be compared byte for byte).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import IO, Any

from airflow_provider_ledgerlink.core.errors import ConcurrentWriteError, ConfigurationError

#: The manifest of extracts written before manifests were versioned; still read, and removed by the
#: next commit into its folder.
MANIFEST_NAME = "_manifest.json"
MANIFEST_PREFIX = "_manifest-"
MANIFEST_VERSION = 2
#: Parts of an attempt that never committed are left alone this long (it may still be running).
DEFAULT_STALE_AFTER = timedelta(days=2)

_ATTEMPT_TIME = "%Y%m%dT%H%M%S%fZ"
_MANIFEST_RE = re.compile(r"^_manifest-(\d{8})-(\d{8}T\d{12}Z-[0-9a-f]{8})\.json$")
_PART_RE = re.compile(r"^part-\d{5}-(.+)\.jsonl\.gz$")
_TMP_RE = re.compile(r"^\._manifest-.*-(\d{8}T\d{12}Z-[0-9a-f]{8})\.tmp$")


def new_attempt_id(now: datetime | None = None) -> str:
    """A unique id that sorts by the time the attempt started (``20261204T101500123456Z-1a2b3c4d``)."""
    moment = now or datetime.now(timezone.utc)
    return f"{moment:{_ATTEMPT_TIME}}-{uuid.uuid4().hex[:8]}"


def attempt_started(attempt: str) -> datetime | None:
    """When an attempt began, from its id; ``None`` for ids of another form (older releases)."""
    try:
        return datetime.strptime(attempt.split("-", 1)[0], _ATTEMPT_TIME).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


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
    :param stale_after: parts of another attempt that never committed are removed by a commit once
        that attempt is older than this (it died); younger ones may belong to a writer still running.
    :param vendor: named in errors.
    """

    def __init__(
        self,
        folder: Any,
        *,
        part_max_bytes: int = 128 * 1024 * 1024,
        compresslevel: int = 1,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        vendor: str = "LedgerLink",
    ) -> None:
        check_sink_arguments(vendor, part_max_bytes=part_max_bytes, compresslevel=compresslevel)
        self.folder = folder
        self.vendor = vendor
        self._encode_lines = _make_encoder().encode_lines
        self.part_max_bytes = part_max_bytes
        self.compresslevel = compresslevel
        self.stale_after = stale_after
        self.attempt = new_attempt_id()
        self.run_id = self.attempt
        self.rows = 0
        self.parts: list[dict[str, Any]] = []
        self._file: IO[bytes] | None = None
        self._counter: _CountingWriter | None = None
        self._gzip: gzip.GzipFile | None = None
        self._part_rows = 0
        self._part_bytes = 0
        self._committed = False
        self.manifest_path: Any = None
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
        name = f"part-{len(self.parts):05d}-{self.attempt}.jsonl.gz"
        self.parts.append({"path": name, "rows": 0, "bytes": 0, "sha256": None})
        self._file = (self.folder / name).open("wb")
        self._counter = _CountingWriter(self._file)
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._counter, compresslevel=self.compresslevel, mtime=0
        )

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
        """Close the last part, write a new manifest, then remove what older manifests named.

        Raises :class:`ConcurrentWriteError` (after removing this attempt's parts) when an attempt
        that started later has already committed into the folder.
        """
        self._close_part()
        committed = _committed_manifests(self.folder)
        newer = [entry for entry in committed if entry.attempt > self.attempt]
        if newer:
            self.abort()
            winner = newer[-1]
            raise ConcurrentWriteError(
                self.vendor,
                f"commit into {self.folder}",
                f"another attempt ({winner.attempt}) started after this one ({self.attempt}) and "
                "committed first; its output is kept and this attempt's parts were removed",
                hint="Nothing is lost: the folder holds that attempt's complete output. Run the task "
                "again to read anew, and avoid two runs writing the same folder at once (an Airflow "
                "pool with one slot, or max_active_runs=1)",
            )
        version = max((entry.version for entry in committed), default=0) + 1
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "complete": True,
            "version": version,
            "rows": self.rows,
            "parts": self.parts,
            "run_id": self.attempt,
            "written_at": datetime.now(timezone.utc).isoformat(),
            **metadata,
        }
        name = f"{MANIFEST_PREFIX}{version:08d}-{self.attempt}.json"
        tmp = self.folder / f".{name}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, default=_json_default)
        # A rename is one step on a local disk; on S3 or GCS it is a copy, and the copy of one object
        # is still all-or-nothing for a reader. Readers never look at the hidden temporary name.
        tmp.rename(self.folder / name)
        self.manifest_path = self.folder / name
        self._committed = True
        self._remove_superseded(_Entry(version, self.attempt, name))
        return manifest

    def abort(self) -> None:
        """Drop this attempt's parts (the previous complete output, if any, stays published)."""
        try:
            if self._gzip is not None:
                self._gzip.close()
            if self._file is not None:
                self._file.close()
        finally:
            self._gzip = self._counter = self._file = None
            for part in self.parts:
                _unlink(self.folder / part["path"])

    def _remove_superseded(self, mine: _Entry) -> None:
        """Remove older manifests (each before its parts) and parts of attempts that died long ago."""
        keep_attempts = {mine.attempt}
        for entry in _listed_manifests(self.folder):
            if entry.key >= mine.key:
                keep_attempts.add(entry.attempt)
                continue
            named = _load(self.folder / entry.name)
            _unlink(self.folder / entry.name)  # the manifest first: none ever names a missing part
            for part in (named or {}).get("parts", []):
                path = part.get("path") if isinstance(part, dict) else None
                if isinstance(path, str) and "/" not in path and _PART_RE.match(path):
                    _unlink(self.folder / path)
        cutoff = datetime.now(timezone.utc) - self.stale_after
        for child in self.folder.iterdir():
            match = _PART_RE.match(child.name) or _TMP_RE.match(child.name)
            if match is None or match.group(1) in keep_attempts:
                continue
            started = attempt_started(match.group(1))
            if started is None or started < cutoff:
                _unlink(child)

    def __enter__(self) -> JsonLinesSink:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None and not self._committed:
            self.abort()


def check_sink_arguments(vendor: str, *, part_max_bytes: Any, compresslevel: Any) -> None:
    """Refuse a gzip level or part size that cannot work, before anything is written."""
    if isinstance(compresslevel, bool) or not isinstance(compresslevel, int) or not 0 <= compresslevel <= 9:
        raise ConfigurationError(
            vendor,
            "writing the extract",
            f"compresslevel={compresslevel!r} is not a gzip level",
            hint="Give compresslevel a whole number from 0 (no compression) to 9 (smallest); 1 is the default",
        )
    if isinstance(part_max_bytes, bool) or not isinstance(part_max_bytes, int) or part_max_bytes < 1:
        raise ConfigurationError(
            vendor,
            "writing the extract",
            f"part_max_bytes={part_max_bytes!r} is not a positive number of bytes",
            hint="Give part_max_bytes a whole number of bytes, e.g. 134217728 (128 MiB, the default)",
        )


class _Entry:
    __slots__ = ("attempt", "name", "version")

    def __init__(self, version: int, attempt: str, name: str) -> None:
        self.version = version
        self.attempt = attempt
        self.name = name

    @property
    def key(self) -> tuple[int, str]:
        return (self.version, self.attempt)


def _listed_manifests(folder: Any) -> list[_Entry]:
    """Manifest files in ``folder``, oldest first; the pre-versioning ``_manifest.json`` is version 0."""
    entries = []
    try:
        children = list(folder.iterdir())
    except FileNotFoundError:
        return []
    for child in children:
        name = child.name
        match = _MANIFEST_RE.match(name)
        if match:
            entries.append(_Entry(int(match.group(1)), match.group(2), name))
        elif name == MANIFEST_NAME:
            entries.append(_Entry(0, "", name))
    return sorted(entries, key=lambda entry: entry.key)


def _committed_manifests(folder: Any) -> list[_Entry]:
    return [entry for entry in _listed_manifests(folder) if _load(folder / entry.name) is not None]


def _load(path: Any) -> dict[str, Any] | None:
    try:
        with path.open("r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("complete") is not True:
        return None
    if not isinstance(data.get("parts"), list):
        return None
    return data


def _unlink(path: Any) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def latest_manifest(folder: Any) -> tuple[Any, dict[str, Any]] | None:
    """``(path, manifest)`` of the latest complete extract in ``folder``, or ``None``.

    Manifests are tried newest first; one counts when it is complete and every part it names exists.
    """
    for entry in reversed(_listed_manifests(folder)):
        path = folder / entry.name
        manifest = _load(path)
        if manifest is None:
            continue
        if all((folder / part["path"]).exists() for part in manifest["parts"]):
            return path, manifest
    return None


def read_manifest(folder: Any) -> dict[str, Any] | None:
    """The manifest of the latest complete extract in ``folder``, or ``None`` when there is none (yet)."""
    found = latest_manifest(folder)
    return found[1] if found else None


def manifest_path(folder: Any) -> Any:
    """The path of the latest complete manifest in ``folder``, or ``None``."""
    found = latest_manifest(folder)
    return found[0] if found else None


def read_rows(folder: Any) -> Iterable[dict[str, Any]]:
    """Iterate the rows of the latest complete extract, reading only the parts its manifest names."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(
            f"no complete extract in {folder}: no {MANIFEST_PREFIX}*.json names parts that all exist"
        )
    for part in manifest["parts"]:
        try:
            raw = (folder / part["path"]).open("rb")
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{folder / part['path']} was removed while it was read: a newer extract was committed "
                "into the folder meanwhile; read again"
            ) from None
        with raw, gzip.GzipFile(fileobj=raw) as handle:
            for line in handle:
                yield json.loads(line)
