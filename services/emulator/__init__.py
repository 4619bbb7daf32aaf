"""Device emulator: N homes of gateways and sensors publishing the telemetry contract over MQTT.

Each home is an elder with a gateway, an emergency button, a bed radar (vital signs), a bed
presence sensor, a blood-pressure cuff, a fall sensor, a door sensor and a PIR per room. A
seeded daily routine (sleep, meals, outings, bathroom at night) drives the sensors, vitals
follow a per-elder baseline with noise, and incidents (button press, fall, abnormal vitals,
long inactivity, gateway dropout, duplicate and out-of-order delivery, garbage payloads) are
injected at configurable rates — so the ingest, the alerting and a load test all get the
messages that real homes send, reproducibly (``--seed``).

Layout: ``options`` (what to emulate), ``model`` (homes and their day), ``incidents``,
``payloads`` (topics, JSON, garbage), ``stream`` (``generate``: the deterministic message
stream, no I/O), ``mqtt`` (one paho client per gateway, one I/O thread), ``register``
(creates the homes through the registry API), ``runner`` (pacing and progress) and ``cli``.

Entry points for the ``eldercare`` CLI: ``add_arguments(parser)`` and ``run(args)``.
"""

from services.emulator.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
