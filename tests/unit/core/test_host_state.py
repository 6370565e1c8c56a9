"""The machine's private state directory and its locked JSON files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from airflow_provider_ledgerlink.core.host_state import StateDirError, locked, locked_json, private_state_dir


def test_the_state_directory_is_created_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGERLINK_STATE_DIR", str(tmp_path / "state"))

    directory = private_state_dir()

    assert directory == tmp_path / "state"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_state_directory_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    monkeypatch.setenv("LEDGERLINK_STATE_DIR", str(shared))

    with pytest.raises(StateDirError, match=r"open to other users .*chmod 700"):
        private_state_dir()


def test_a_locked_file_is_written_0600_and_only_when_the_block_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with locked_json(path) as value:
        value["token"] = "kept"

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(RuntimeError), locked_json(path) as value:
        value["token"] = "dropped"
        raise RuntimeError("failed half-way")
    with locked_json(path) as value:
        assert value == {"token": "kept"}


def test_a_thread_may_take_a_lock_it_holds(tmp_path: Path) -> None:
    with locked_json(tmp_path / "a.json") as outer:
        outer["n"] = 1
        with locked_json(tmp_path / "b.json") as other, locked(tmp_path / "a.json.lock"):
            other["n"] = 2
    with locked_json(tmp_path / "a.json") as again:
        assert again == {"n": 1}
