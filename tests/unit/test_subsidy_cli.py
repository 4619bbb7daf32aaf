"""`eldercare policy test`: every case table passes; a wrong expectation fails the command."""

from __future__ import annotations

from services.cli import main
from services.subsidy.policies import cases


def test_policy_test_passes_on_the_shipped_tables(capsys):
    assert main(["policy", "test"]) == 0
    out = capsys.readouterr().out
    assert "xm-tongan-family-bed.cases.yaml: 22/22 cases" in out
    assert out.strip().endswith("0 failed")


def test_policy_test_fails_on_a_wrong_case(monkeypatch, capsys):
    (path, table), *_ = [
        (p, t) for p, t in cases.load_tables() if t["policy"] == "xm-tongan-family-bed"
    ]
    broken = dict(table, cases=[dict(table["cases"][0], expect={"lines": {"operating": "1.00"}})])
    monkeypatch.setattr(cases, "load_tables", lambda: [(path, broken)])
    assert main(["policy", "test"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_policy_test_with_no_matching_table_fails(capsys):
    assert main(["policy", "test", "--policy", "no-such-policy"]) == 1
