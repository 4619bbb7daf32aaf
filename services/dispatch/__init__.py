"""Dispatch service (:8003, schema ``dispatch``) — the daily home visits a home care bed
promises, and the human response when an alarm fires.

Owns: the service catalogue, plans (recurring visits), visits with electronic visit
verification and anomaly flags, the day's routes, compliance with the service rule,
emergency dispatches with their escalation chains, notifications, and KPIs.

Where things are decided:
- policy figures (radius minutes, speeds, GPS tolerance, 1 h/30 h/3 kinds, KPI targets, the
  default chain): ``services/dispatch/policy.yaml``; the shipped catalogue: ``catalogue.yaml``
- travel time (estimate, OSRM/Valhalla with fallback): ``coverage/travel.py``; nearest
  stations: ``coverage/spatial.py``
- anomaly rules of a visit: ``visits/anomalies.py``; the monthly rule: ``compliance/rules.py``
- who is offered an emergency: ``dispatches/service.py: candidates``; what happens next:
  ``dispatches/chain.py`` (a pure state machine); timers: ``timers.py``
- assignment (VROOM per station + a district pass, the greedy baseline, VROOM's plan mode):
  ``routes/solver.py``
- recurring plans → visits: ``plans/generator.py``
- background loops: ``worker.py`` (delivery loops share ``leasing.py``); notifications out:
  ``notifications/sender.py``
- who may call what: ``access.py``; who may read what: each aggregate's
  ``scope_clause(principal)`` over ``shared.scoping``
"""
