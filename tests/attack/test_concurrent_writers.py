"""Two writers of one extract folder, a zombie and its retry, and kill -9: nothing is ever lost.

Each writer is a separate process (``writer_process.py``) steered through files, so the interleaving
is fixed by the test, not by timing. After every scenario the latest manifest is read in full and
every manifest left in the folder names only parts that exist.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_ledgerlink.core.errors import ConcurrentWriteError
from airflow_provider_ledgerlink.core.extract import LedgerLinkExtractOperator
from airflow_provider_ledgerlink.core.sinks import JsonLinesSink, read_manifest, read_rows

WRITER = Path(__file__).with_name("writer_process.py")
ROWS = 400  # 50 rows a batch and 2,000-byte parts: about 10 parts a writer


class Writer:
    def __init__(self, folder: ObjectStoragePath, control: Path, name: str, first: int, hold: bool) -> None:
        self.control = control
        self.name = name
        if hold:
            (control / f"{name}.hold").touch()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), str(folder), str(first), str(ROWS), str(control), name],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_written(self) -> None:
        marker = self.control / f"{self.name}.written"
        while not marker.exists():
            assert self.process.poll() is None, self.process.communicate()[1]
            time.sleep(0.01)

    def release(self) -> None:
        (self.control / f"{self.name}.go").touch()

    def finish(self) -> tuple[int, str]:
        _out, err = self.process.communicate(timeout=120)
        return self.process.returncode, err


@pytest.fixture
def folder(tmp_path: Path) -> ObjectStoragePath:
    return ObjectStoragePath(f"file://{tmp_path}/lake/attack/rows/full")


@pytest.fixture
def control(tmp_path: Path) -> Path:
    path = tmp_path / "control"
    path.mkdir()
    return path


def assert_every_manifest_is_whole(folder: ObjectStoragePath) -> None:
    import json

    for child in folder.iterdir():
        if child.name.startswith("_manifest"):
            manifest = json.loads(child.read_text())
            missing = [p["path"] for p in manifest["parts"] if not (folder / p["path"]).exists()]
            assert not missing, f"{child.name} names removed parts {missing}"


def ids(folder: ObjectStoragePath) -> list[int]:
    return [row["id"] for row in read_rows(folder)]


def test_a_zombie_committing_after_its_retry_loses_cleanly(folder: ObjectStoragePath, control: Path) -> None:
    zombie = Writer(folder, control, "zombie", first=0, hold=True)
    zombie.wait_written()  # the zombie has written all its parts and is about to commit
    retry = Writer(folder, control, "retry", first=10_000, hold=False)
    assert retry.finish()[0] == 0
    zombie.release()

    code, err = zombie.finish()

    assert code == 3, err
    assert "started after this one" in err
    assert ids(folder) == list(range(10_000, 10_000 + ROWS))  # the retry's output, in full
    assert not [c for c in folder.iterdir() if "zombie" in c.name]
    assert {c.name.split("-", 2)[-1] for c in folder.iterdir() if c.name.startswith("part-")} == {
        read_manifest(folder)["run_id"] + ".jsonl.gz"  # type: ignore[index]
    }
    assert_every_manifest_is_whole(folder)


def test_an_older_run_committing_first_is_replaced_whole_by_the_newer(
    folder: ObjectStoragePath, control: Path
) -> None:
    older = Writer(folder, control, "older", first=0, hold=True)
    older.wait_written()
    newer = Writer(folder, control, "newer", first=10_000, hold=True)
    newer.wait_written()
    older.release()
    assert older.finish()[0] == 0
    assert ids(folder) == list(range(ROWS))
    newer.release()

    assert newer.finish()[0] == 0

    assert ids(folder) == list(range(10_000, 10_000 + ROWS))
    assert not [c for c in folder.iterdir() if c.name.startswith("part-") and "older" in c.name]
    assert_every_manifest_is_whole(folder)


def test_a_writer_never_removes_parts_of_a_writer_still_running(
    folder: ObjectStoragePath, control: Path
) -> None:
    running = Writer(folder, control, "running", first=0, hold=True)
    running.wait_written()
    parts_before = {c.name for c in folder.iterdir() if c.name.startswith("part-")}
    other = Writer(folder, control, "other", first=10_000, hold=False)
    assert other.finish()[0] == 0

    assert parts_before <= {c.name for c in folder.iterdir()}  # still there: it may yet commit
    running.release()
    assert running.finish()[0] == 3
    assert ids(folder) == list(range(10_000, 10_000 + ROWS))
    assert_every_manifest_is_whole(folder)


@pytest.mark.parametrize("round_", range(1))
def test_two_writers_racing_freely_leave_one_complete_output(
    folder: ObjectStoragePath, control: Path, round_: int
) -> None:
    first = Writer(folder, control, f"a{round_}", first=0, hold=False)
    second = Writer(folder, control, f"b{round_}", first=10_000, hold=False)
    codes = [first.finish()[0], second.finish()[0]]

    assert set(codes) <= {0, 3} and 0 in codes
    assert ids(folder) in (list(range(ROWS)), list(range(10_000, 10_000 + ROWS)))
    assert_every_manifest_is_whole(folder)


def test_kill_9_mid_extract_never_presents_partial_output(folder: ObjectStoragePath, control: Path) -> None:
    with JsonLinesSink(folder) as sink:
        sink.write_rows([{"id": i} for i in range(7)])
        sink.commit()
    victim = Writer(folder, control, "victim", first=10_000, hold=True)
    victim.wait_written()  # parts on disk, no manifest yet

    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()

    assert ids(folder) == list(range(7))  # the previous complete output, not the victim's parts
    retry = Writer(folder, control, "retry", first=20_000, hold=False)
    assert retry.finish()[0] == 0
    assert ids(folder) == list(range(20_000, 20_000 + ROWS))
    assert_every_manifest_is_whole(folder)


def test_kill_9_of_a_first_extract_leaves_no_complete_output(
    folder: ObjectStoragePath, control: Path
) -> None:
    victim = Writer(folder, control, "victim", first=0, hold=True)
    victim.wait_written()

    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait()

    assert read_manifest(folder) is None
    with pytest.raises(FileNotFoundError, match="no complete extract"):
        list(read_rows(folder))


class _ListExtract(LedgerLinkExtractOperator):
    vendor = "Attack"

    def __init__(self, *, pages: list[list[dict[str, Any]]], **kwargs: Any) -> None:
        super().__init__(object_name="rows", conn_id="attack", **kwargs)
        self.pages = pages

    def object_label(self) -> str:
        return "rows"

    def extract_pages(self, window: Any) -> Any:
        yield from self.pages


def test_two_full_extracts_into_one_folder_keep_the_newer_complete_output(tmp_path: Path) -> None:
    """``incremental=False`` runs all write ``full/``: the later-started run wins, whole."""
    destination = str(tmp_path / "lake")
    older = _ListExtract(task_id="older", destination=destination, incremental=False, pages=[])
    newer = _ListExtract(
        task_id="newer", destination=destination, incremental=False, pages=[[{"id": i} for i in range(5)]]
    )
    older_pages = iter([[{"id": -1}] * 3])

    def older_pages_then_newer_run(window: Any) -> Any:
        yield next(older_pages)
        newer.execute({})  # the newer run starts and commits while the older one is still reading

    older.extract_pages = older_pages_then_newer_run  # type: ignore[method-assign]

    with pytest.raises(ConcurrentWriteError, match=r"Attack commit into .*full"):
        older.execute({})

    full = ObjectStoragePath(f"file://{tmp_path}/lake/full")
    assert ids(full) == list(range(5))
    assert_every_manifest_is_whole(full)
