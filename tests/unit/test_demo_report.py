"""``make demo``'s closing report lists what the example DAGs landed, read as any reader would."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from airflow_provider_ledgerlink.core.sinks import JsonLinesSink

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.py"


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ledgerlink_demo", DEMO)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_report_lists_the_latest_commit_of_each_extract(tmp_path: Path, monkeypatch, capsys) -> None:
    demo = load_demo()
    monkeypatch.setattr(demo, "LAKE", tmp_path)
    folder = tmp_path / "afas" / "Profit_Debtor" / "full"
    for rows in (3, 5):  # a rerun commits a second manifest: the report counts the latest only
        sink = JsonLinesSink(folder)
        sink.write_rows({"DebtorId": str(n)} for n in range(rows))
        sink.commit()
    (tmp_path / "afas" / "unfinished").mkdir()  # parts without a manifest are not an extract

    assert demo._report(None) == 1
    out = capsys.readouterr().out
    assert "afas/Profit_Debtor/full" in out and "5 rows in 1 part(s)" in out
    assert "5 rows in 1 extracts" in out


def test_an_empty_lake_reports_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    demo = load_demo()
    monkeypatch.setattr(demo, "LAKE", tmp_path)
    assert demo._report(None) == 0
    assert "nothing" in capsys.readouterr().out
