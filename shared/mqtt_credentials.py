"""MQTT credentials for gateways, hashed the way Mosquitto's password file expects (the
registry issues them, telemetry's broker-config writes them out: both read them here).

Mosquitto 2 reads ``username:$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>`` lines, so the
broker's password file can be generated from the registry without ever storing a password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

ITERATIONS = 101  # mosquitto_passwd's default for $7$
SALT_BYTES = 12


def new_password() -> str:
    return secrets.token_urlsafe(24)


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> str:
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, stored: str) -> bool:
    """True when ``password`` matches a ``$7$`` hash; any malformed hash is simply False."""
    try:
        _, scheme, iterations, salt_b64, digest_b64 = stored.split("$")
        if scheme != "7":
            return False
        salt = base64.b64decode(salt_b64, validate=True)
        expected = mosquitto_hash(password, salt=salt, iterations=int(iterations))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(expected.split("$")[-1], digest_b64)


def topic_prefix(gateway_id: str) -> str:
    return f"eldercare/v1/{gateway_id}/"
