"""What to emulate, as one immutable value: the CLI builds it, tests build it directly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

# Homes are in China: timestamps carry +08:00 and the daily routine follows local time.
LOCAL_TZ = timezone(timedelta(hours=8), "CST")
# A fixed default keeps ``generate`` deterministic; ``run`` starts at the wall clock instead.
DEFAULT_START = datetime(2026, 1, 5, 7, 0, tzinfo=LOCAL_TZ)


@dataclass(frozen=True)
class EmulatorOptions:
    homes: int = 10
    seed: int = 1
    # None: simulated time runs at ``speed`` × real time. A number: exactly that many
    # messages per second in total, whatever the simulated clock says.
    rate: float | None = None
    # Real time by default: readings are stamped with the wall clock, as a home's would be.
    # A faster clock stamps them in the future (load tests, offline generation only).
    speed: float = 1.0
    duration: float | None = None  # real seconds; None runs until interrupted
    batch: bool = False
    incident_rate: float = 0.05  # per home per simulated hour
    garbage_rate: float = 0.001  # probability that a message is followed by a garbage one
    # Incidents fired in every home a few simulated seconds after the start (tests, demos).
    force_incidents: tuple[str, ...] = ()
    start: datetime = DEFAULT_START
    heartbeat_s: float = 60.0
    vitals_s: float = 120.0  # bed radar period while the elder is in bed
    batch_size: int = 25
    batch_window_s: float = 10.0
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    register: bool = False
    registry_url: str | None = None
    token: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.homes < 1:
            raise ValueError("homes must be at least 1")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if self.incident_rate < 0 or not 0 <= self.garbage_rate <= 1:
            raise ValueError("incident rate must be >= 0 and garbage rate within 0..1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://user:pass@host:port`` → its parts (port 1883 when absent)."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp"):
        raise ValueError(f"unsupported MQTT URL scheme {parts.scheme!r} (use mqtt://)")
    return MqttTarget(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 1883,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
