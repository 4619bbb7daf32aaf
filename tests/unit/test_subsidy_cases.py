"""Every bundled policy's case table (facts worked by hand from the seeds → lines, total),
run through the pure engine — the same tables ``eldercare policy test`` runs."""

from __future__ import annotations

import pytest

from services.subsidy.policies.cases import load_tables, run_table
from shared.policy import load_policies

TABLES = load_tables()


def test_every_bundled_policy_has_a_case_table():
    tabled = {t["policy"] for _, t in TABLES}
    assert {p.code for p in load_policies() if p.raw.get("rules")} <= tabled


@pytest.mark.parametrize(("path", "table"), TABLES, ids=[p.name for p, _ in TABLES])
def test_case_table(path, table):
    results = run_table(table)
    assert results, f"{path.name} has no cases"
    failed = [f"{r.name}: {'; '.join(r.problems)}" for r in results if not r.ok]
    assert not failed, "\n".join(failed)


def test_a_wrong_expectation_fails():
    _, table = next((p, t) for p, t in TABLES if t["policy"] == "xm-tongan-family-bed")
    broken = dict(table, cases=[dict(table["cases"][0], expect={"lines": {"operating": "249.99"}})])
    (result,) = run_table(broken)
    assert not result.ok and "operating=249.99" in result.problems[0]
