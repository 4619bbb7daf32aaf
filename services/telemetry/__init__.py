"""Telemetry service (:8004, schema ``telemetry``) — 24-hour remote monitoring (远程监测).

Owns: every event home gateways publish over MQTT (``events``), the messages it refused
(``dead_letters``), the last known state of gateways and devices, alerts with their
lifecycle, and the outbox that hands emergencies to dispatch.

Processes: the ingest worker (``eldercare ingest``: MQTT → PostgreSQL → rules), and the REST
app (``services.telemetry.app:create_app``: alerts, SSE stream, vitals, FHIR export), which
also runs the background monitor (offline, inactivity, escalation) and the outbox relay.

One folder per aggregate, each with ``models``, ``schemas``, ``service``, ``router``:
``alerts`` (+ ``lifecycle``: every state change of an alert; ``rules``; ``stream``: SSE),
``events`` (readings, FHIR export), ``gateways`` (online state, device state),
``monitoring`` (per-elder thresholds and schedule, VISIT mode), ``deadletters``. Background
work in its own modules: ``ingest/``, ``outbox/relay.py``, ``monitor.py``.

Where things are decided:
- what a valid message is: ``services/telemetry/contract.py``
- which readings raise alerts: ``services/telemetry/alerts/rules.py`` (+ ``thresholds.yaml``)
- how an alert changes state: ``services/telemetry/alerts/lifecycle.py``
"""
