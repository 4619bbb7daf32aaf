"""The broker's in-flight window and the worker's queue bound agree, wherever they are set:
otherwise the queue never fills, and overload is shed by the broker, blind to emergencies."""

from __future__ import annotations

from pathlib import Path

from shared.config import MQTT_MAX_INFLIGHT, Settings
from shared.embedded import EmbeddedBroker

ROOT = Path(__file__).resolve().parents[2]


def conf(text: str) -> dict[str, str]:
    return dict(
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_shipped_queue_bound_fits_inside_the_in_flight_window():
    s = Settings()
    # One batch being stored + the full queue, and room left for urgent messages and the
    # safety net's copies: the queue can fill before the broker stops sending.
    assert s.mqtt_max_inflight == MQTT_MAX_INFLIGHT
    assert s.ingest_queue_max + s.ingest_batch_max <= MQTT_MAX_INFLIGHT // 2 + s.ingest_batch_max
    assert s.ingest_queue_max + s.ingest_batch_max < MQTT_MAX_INFLIGHT


def test_deployed_and_embedded_brokers_use_the_same_window(tmp_path):
    deployed = conf((ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text())
    assert int(deployed["max_inflight_messages"]) == MQTT_MAX_INFLIGHT
    broker = EmbeddedBroker(tmp_path, port=1)
    embedded = conf(broker._mosquitto_config().read_text())
    assert int(embedded["max_inflight_messages"]) == MQTT_MAX_INFLIGHT
    # what waits beyond the window (an outage) is far more than the window itself
    assert int(deployed["max_queued_messages"]) >= 10 * MQTT_MAX_INFLIGHT


def test_the_worker_warns_when_its_queue_could_never_fill(caplog):
    from services.telemetry.ingest.worker import IngestWorker

    IngestWorker(Settings(ingest_queue_max=20_000, database_url="postgresql://x/y"))
    assert "can never fill" in caplog.text
