"""Settings from the environment (prefix ``ELDERCARE_``), one object per process."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_PORTS = {"registry": 8001, "subsidy": 8002, "dispatch": 8003, "telemetry": 8004}
# QoS 1 messages the broker sends one ingest connection before it waits for acks (Mosquitto
# `max_inflight_messages`: deploy/mosquitto/mosquitto.conf and shared/embedded.py use this
# value). It is the most the worker ever holds, and it must exceed ingest_queue_max +
# ingest_batch_max with room to spare, or the worker's queue can never fill and overload is
# shed by the broker — blind to emergencies — instead of by the worker.
MQTT_MAX_INFLIGHT = 10_000

# Deployments where a missing secret may be generated into the data dir. Anywhere else a
# generated secret is a bug waiting: each replica would make its own, and none could read
# another's ciphertexts or accept another's tokens.
DEV_ENVIRONMENTS = frozenset({"development", "dev", "test"})
SECRETS = ("jwt_secret", "pii_key", "pii_hash_key")
# Placeholders from deploy/ templates: refused outside development.
PLACEHOLDER_MARKERS = ("change_me", "dev-only", "changeme")
MIN_SECRET_CHARS = 32


class MissingSecret(RuntimeError):
    """A deployment that is not a developer's machine lacks a secret (or has a placeholder)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ELDERCARE_", extra="ignore")

    # `development` (default: `eldercare up`, tests) generates missing secrets into the data
    # dir; anything else (`production`, `staging`, …) refuses to start without explicit ones.
    env: str = "development"
    data_dir: Path = Path(".data")
    database_url: str | None = None
    mqtt_url: str | None = None
    mqtt_port: int = 1883

    jwt_secret: str | None = None
    jwt_issuer: str = "eldercare"
    jwt_audience: str = "eldercare"
    # Production deployments point these at an OIDC issuer; HS256 with jwt_secret otherwise.
    # With a JWKS, user tokens are verified against the issuer's keys (`jwt_algorithms`, e.g.
    # ["RS256"], and `jwt_issuer` = the issuer's `iss`), and the platform's own `service`
    # tokens (relay → dispatch, …) stay HS256 with jwt_secret, issued as
    # `jwt_service_issuer`: only that role from that issuer is accepted that way.
    jwt_jwks_url: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    jwt_service_issuer: str = "eldercare"
    jwt_jwks_refresh_s: float = 300.0  # background refresh of the issuer's keys
    jwt_jwks_timeout_s: float = 5.0
    jwt_jwks_min_refresh_s: float = 10.0  # an unknown key id refreshes at most this often

    # 32-byte keys, base64url. Generated into the data dir when unset (dev only).
    pii_key: str | None = None
    pii_hash_key: str | None = None

    registry_port: int = SERVICE_PORTS["registry"]
    subsidy_port: int = SERVICE_PORTS["subsidy"]
    dispatch_port: int = SERVICE_PORTS["dispatch"]
    telemetry_port: int = SERVICE_PORTS["telemetry"]
    registry_url: str | None = None
    subsidy_url: str | None = None
    dispatch_url: str | None = None
    telemetry_url: str | None = None

    # MQTT shared subscriptions ($share/ingest/…): None = try, fall back if the broker refuses.
    mqtt_shared: bool | None = None
    ingest_client_id: str | None = None
    ingest_batch_max: int = 500
    ingest_flush_ms: int = 50
    # Bulk messages waiting to be stored; beyond it the oldest non-urgent one is shed. Half the
    # in-flight window: the other half is the batch being stored and the urgent messages.
    ingest_queue_max: int = 5_000
    mqtt_max_inflight: int = MQTT_MAX_INFLIGHT  # what the broker is configured with
    # Prometheus /metrics of the ingest process (it has no HTTP API of its own); 0 = off.
    ingest_metrics_port: int = 9108
    telemetry_retention_days: int = 400
    # Retention of telemetry's bookkeeping (housekeeping in services/telemetry/monitor.py;
    # README "Retention"). The alert log of an alert still active is never pruned, and a
    # client may resume the SSE feed from any position younger than alert_log_retention_days.
    dead_letter_retention_days: int = Field(30, ge=1)
    outbox_retention_days: int = Field(7, ge=1)  # delivered hand-offs; pending ones stay
    alert_log_retention_days: int = Field(400, ge=1)  # after the alert was closed
    device_state_retention_days: int = Field(30, ge=1)  # after the device was retired

    # Dispatch: its background loops (escalation timers, outbox to telemetry, notification
    # delivery, plan generation) run inside each dispatch process unless turned off here
    # (then run `python -m services.dispatch.worker`); every loop is safe to run twice.
    dispatch_background: bool = True
    # Optional self-hosted routing engine for travel times: "osrm" or "valhalla".
    dispatch_routing_engine: str | None = None
    dispatch_routing_url: str | None = None
    dispatch_routing_timeout_s: float = 2.0
    dispatch_routing_max_matrix: int = 100
    # The shipped notifier: a signed webhook (HMAC-SHA256 over "timestamp.body").
    dispatch_webhook_url: str | None = None
    dispatch_webhook_secret: str | None = None

    db_pool_size: int = 10
    db_max_overflow: int = 10
    max_body_bytes: int = 1_048_576
    log_level: str = "INFO"
    log_json: bool = True

    def service_url(self, service: str) -> str:
        explicit = getattr(self, f"{service}_url")
        if explicit:
            return explicit.rstrip("/")
        return f"http://127.0.0.1:{getattr(self, f'{service}_port')}"

    @property
    def is_dev(self) -> bool:
        return self.env.strip().lower() in DEV_ENVIRONMENTS

    def check_secrets(self) -> None:
        """Outside development: every secret set explicitly, none a template placeholder or
        short. Raises ``MissingSecret`` naming the variables at fault."""
        if self.is_dev:
            return
        problems = []
        for name in SECRETS:
            value = getattr(self, name) or ""
            variable = f"ELDERCARE_{name.upper()}"
            if not value:
                problems.append(f"{variable} is not set")
            elif any(marker in value.lower() for marker in PLACEHOLDER_MARKERS):
                problems.append(f"{variable} is a template placeholder")
            elif len(value) < MIN_SECRET_CHARS:
                problems.append(f"{variable} is shorter than {MIN_SECRET_CHARS} characters")
        if problems:
            raise MissingSecret(
                f"ELDERCARE_ENV={self.env} needs explicit secrets, shared by every replica: "
                + "; ".join(problems)
                + " (generate them with `eldercare secrets`; see deploy/README.md)"
            )

    def secret(self, name: str) -> str:
        """A secret from the environment; in development only, one generated once into the
        data dir (so `eldercare up` works from a fresh clone).

        Outside development a missing or placeholder secret raises ``MissingSecret``: the
        service refuses to start rather than run with a key no other replica has.
        """
        self.check_secrets()
        value = getattr(self, name)
        if value:
            return value
        path = self.data_dir / "secrets" / name
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of `eldercare up` won the race
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
