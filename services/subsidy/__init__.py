"""Subsidy service (:8002, schema ``subsidy``) — who gets how much, why, and how the money
reaches the service organisations.

Owns: policy versions (the YAML in ``shared/policies`` and admin-posted ones), decision
records of monthly runs, the ledger (append-only, balanced, closed months locked by database
triggers), service vouchers and their redemptions against verified visits, quarterly
settlements, fraud flags, organisation rewards, subsidy applications, and reports.

Where things are decided:
- the rule language: ``services/subsidy/policies/predicates.py``
- validation of policy documents (blanks, undeclared overlaps): ``policies/document.py``
- amounts, proration and rounding, combinations: ``policies/engine.py`` (pure functions)
- which version is in force: ``policies/service.py`` (``in_force``)
- the facts an evaluation reads: ``facts/service.py`` (registry read model, dispatch visits)
- the monthly run (batch, diff, reversals): ``runs/worker.py``
- accounts and postings: ``ledger/service.py``; the ledger's locks: migration ``0020``
- vouchers and co-pay: ``vouchers/service.py``; settlement: ``settlements/service.py``
- who may see what: ``shared/scoping.py`` (elders by region, orgs their own settlements)
"""
