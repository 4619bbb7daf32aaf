"""The one outbound interface for notifications, and the shipped implementation: a signed
webhook. A district plugs in its SMS or push provider by implementing ``Notifier``.

Signature: ``X-Eldercare-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` with
``X-Eldercare-Timestamp`` (Unix seconds), so a receiver can refuse replays older than a few
minutes; ``Idempotency-Key: notification:<id>`` lets it drop a retried delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson


@dataclass(frozen=True)
class Outgoing:
    id: int
    event: str
    recipient_kind: str
    payload: dict[str, Any]


class DeliveryError(Exception):
    """The provider did not take the message; it is retried later."""


class Notifier(Protocol):
    async def send(self, message: Outgoing) -> None: ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300
) -> bool:
    """What a receiver does (used by the tests and documented for integrators)."""
    if abs(time.time() - float(timestamp)) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.client = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def send(self, message: Outgoing) -> None:
        body = orjson.dumps(
            {
                "id": message.id,
                "event": message.event,
                "recipient_kind": message.recipient_kind,
                **message.payload,
            }
        )
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Eldercare-Event": message.event,
            "X-Eldercare-Timestamp": ts,
            "X-Eldercare-Signature": sign(self.secret, ts, body),
            "Idempotency-Key": f"notification:{message.id}",
        }
        try:
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")

    async def close(self) -> None:
        await self.client.aclose()


class LogNotifier:
    """No provider configured (a laptop demo): the message is only logged as delivered; the
    handset still sees offers in its task feed."""

    def __init__(self) -> None:
        import logging

        self.log = logging.getLogger("services.dispatch.notifications")

    async def send(self, message: Outgoing) -> None:
        self.log.info("notification %s %s → %s", message.id, message.event, message.recipient_kind)

    async def close(self) -> None:
        return None


def notifier_from(settings: Any) -> Notifier:
    if settings.dispatch_webhook_url:
        return WebhookNotifier(
            settings.dispatch_webhook_url, settings.secret("dispatch_webhook_secret")
        )
    return LogNotifier()
