"""Small files that every process of one machine shares: a private state directory with file locks.

Several tasks of one Airflow worker (Celery worker slots, LocalExecutor processes, a task that reads
with several threads) run in separate processes. What they must share at once and often — how much
of a vendor's rate limit is in flight right now, the session token they all use — is too hot for
Airflow Variables (a database round trip per request, and no atomic update) and too cold for a
process's memory. It lives here instead: small JSON files in one private directory, each read and
rewritten under an exclusive ``fcntl.flock`` lock, so an update is atomic for every process of the
machine.

The directory is ``$LEDGERLINK_STATE_DIR`` when set, else ``$XDG_RUNTIME_DIR/ledgerlink`` (a per-user
directory that lives in memory and is emptied at logout or reboot), else ``<temp dir>/ledgerlink-<uid>``.
It is created with mode ``0700`` and refused when another user owns it or others may read it; files
are written with mode ``0600``. Files may therefore hold a secret (a Tripletex session token), which
never reaches a log this way; keep ``LEDGERLINK_STATE_DIR`` out of shared volumes.

Scope: one machine. Processes on other machines have their own files; the vendor's own answers (rate
limit headers) and the credential store are what they share.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["ENV_STATE_DIR", "StateDirError", "locked", "locked_json", "private_state_dir"]

ENV_STATE_DIR = "LEDGERLINK_STATE_DIR"

#: Serialises the threads of this process; ``flock`` serialises the processes.
_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()
#: The locks each thread holds: a thread that takes one again must not ``flock`` a second descriptor
#: (that would wait for itself).
_held = threading.local()


class StateDirError(RuntimeError):
    """The state directory cannot be used safely (owned by someone else, readable by others …)."""


def private_state_dir() -> Path:
    """The machine's LedgerLink state directory for this user, created ``0700`` if missing.

    Raises :class:`StateDirError` when the directory exists but is not private to this user: a file
    holding a session token must never land where another user can read or replace it.
    """
    configured = os.environ.get(ENV_STATE_DIR, "").strip()
    if configured:
        directory = Path(configured).expanduser()
    elif os.environ.get("XDG_RUNTIME_DIR", "").strip():
        directory = Path(os.environ["XDG_RUNTIME_DIR"]) / "ledgerlink"
    else:
        directory = Path(tempfile.gettempdir()) / f"ledgerlink-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(directory)
    except OSError as exc:
        raise StateDirError(f"cannot create the state directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateDirError(f"the state directory {directory} is not a directory")
    if info.st_uid != os.getuid():
        raise StateDirError(f"the state directory {directory} belongs to another user")
    if info.st_mode & 0o077:
        raise StateDirError(
            f"the state directory {directory} is open to other users (mode {stat.S_IMODE(info.st_mode):o}); "
            f"make it private (chmod 700) or set {ENV_STATE_DIR}"
        )
    return directory


def _thread_lock(path: Path) -> threading.RLock:
    with _thread_locks_guard:
        return _thread_locks.setdefault(str(path), threading.RLock())


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the machine-wide lock named ``path`` (a ``.lock`` file, created ``0600``); re-entrant."""
    held: set[str] = _held.__dict__.setdefault("paths", set())
    key = str(path)
    if key in held:
        yield
        return
    with _thread_lock(path):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        held.add(key)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            held.discard(key)
            os.close(descriptor)  # closing releases the lock


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("Ignoring the unreadable state file %s", path.name)
        return {}
    return value if isinstance(value, dict) else {}


def _write(path: Path, value: dict[str, Any]) -> None:
    # A new file moved into place: a reader never sees half a document, and the mode is 0600 from
    # the first byte on.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(value, handle, sort_keys=True, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def locked_json(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON object in ``path`` (``{}`` when missing), under the machine-wide lock.

    Changes made to the yielded dict are written back when the block ends without an exception (and
    only if something changed).
    """
    with locked(path.with_name(path.name + ".lock")):
        value = _read(path)
        before = json.dumps(value, sort_keys=True)
        yield value
        if json.dumps(value, sort_keys=True) != before:
            _write(path, value)
