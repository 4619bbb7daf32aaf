"""`eldercare subsidy run --month` runs in-process against the real database."""

from __future__ import annotations

from services.cli import main


def test_subsidy_run_from_the_command_line(database_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", database_url)
    monkeypatch.setenv("ELDERCARE_DATA_DIR", str(tmp_path))
    assert main(["subsidy", "run", "--month", "2023-09", "--region", "350212"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2023-09: ") and "elders" in out and "payable" in out
    assert main(["subsidy", "run", "--month", "2023-9"]) == 2
