"""Mosquitto's password file and ACL, generated from the registry's gateway credentials.

Every gateway registered in ``registry.devices`` carries an MQTT username (its device id) and
a Mosquitto-compatible ``$7$`` PBKDF2-SHA512 hash of its password (see
``shared/mqtt_credentials.py``); the password itself is never stored. This
module turns those rows into the two files the broker reads:

``passwd``
    ``username:$7$…`` lines: every active gateway plus the service users (``ingest``, and
    optionally publishers such as the device ``emulator`` or ``ops``).
``acl``
    One block per user. A gateway may publish only under ``eldercare/v1/{its id}/#`` (its
    telemetry, batches and its last-will ``status`` topic) and may read
    ``eldercare/v1/{its id}/cmd/#`` (commands to the gateway, future use). ``ingest`` reads
    the whole tree, directly or through the shared subscription
    ``$share/ingest/eldercare/v1/#``; a publisher service user may write anywhere under
    ``eldercare/v1/#``. Users not in the file get nothing (Mosquitto's ACL is deny by default).

The broker config must set ``allow_anonymous false``, ``password_file`` and ``acl_file``
(``deploy/mosquitto/mosquitto.conf`` does).

Reloading: both files are written atomically (temp file + ``os.replace``), so the broker
never reads a half-written file. Mosquitto re-reads ``password_file`` and ``acl_file`` on
**SIGHUP** (``kill -HUP <pid>``, ``docker compose kill -s HUP mosquitto``); run the generator
after registering or retiring gateways, then send SIGHUP (a gateway registered since the
last run cannot connect until then). ``passwd`` is replaced before ``acl``, so a reload that
lands in between fails closed: a new gateway may log in but may not publish yet.

Permissions: ``passwd`` is written with mode 0600 (``acl`` too: it lists every gateway).
Mosquitto reads both files *after* dropping privileges to its configured ``user`` (and again
on every SIGHUP), so they must be readable by that user: run the generator as that user or
pass ``owner=`` (requires root). Mosquitto 2.0.11 refuses to start when it cannot open the
password file.

Usernames are checked against the registry's ``DEVICE_ID_PATTERN``; on top of it ``:`` is
refused, because Mosquitto splits password-file lines on the first ``:``. The pure functions
refuse anything unsafe with ``ValueError``; :func:`write_broker_config` skips (and logs) a
bad or clashing registry row so one bad row cannot lock every gateway out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import asyncpg

from shared import mqtt_credentials as credentials
from shared.ids import DEVICE_ID_PATTERN

log = logging.getLogger(__name__)

TOPIC_ROOT = "eldercare/v1"
INGEST_USER = "ingest"
SHARE_GROUP = "ingest"

# Roles a service user may be given in ``acl_file(service_users=...)``.
ROLE_INGEST = "ingest"  # read everything, directly and through the shared subscription
ROLE_PUBLISHER = "publisher"  # write anywhere under eldercare/v1/ (emulator, ops)
SERVICE_ROLES = (ROLE_INGEST, ROLE_PUBLISHER)

DEFAULT_OUT_DIR = Path("deploy/mosquitto")
PASSWD_NAME = "passwd"
ACL_NAME = "acl"
INGEST_PASSWORD_ENV = "ELDERCARE_MQTT_INGEST_PASSWORD"
EMULATOR_USER = "emulator"
EMULATOR_PASSWORD_ENV = "ELDERCARE_MQTT_EMULATOR_PASSWORD"

_USERNAME = re.compile(DEVICE_ID_PATTERN)
# mosquitto_passwd's $7$ format: iterations, base64 salt, base64 PBKDF2-SHA512 digest.
_HASH = re.compile(r"\$7\$[1-9][0-9]{0,9}\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}")

SQL_GATEWAYS = """
SELECT mqtt_username, mqtt_password_hash
FROM registry.devices
WHERE kind = 'gateway' AND status = 'active' AND mqtt_username IS NOT NULL
ORDER BY mqtt_username
"""


def is_valid_username(username: object) -> bool:
    """A username that is safe in both files: the registry's device-id pattern, no ``:``.

    ``re.fullmatch`` (not ``match``): ``$`` alone would accept a trailing newline.
    """
    return (
        isinstance(username, str)
        and _USERNAME.fullmatch(username) is not None
        and ":" not in username
    )


def check_username(username: object) -> str:
    if not is_valid_username(username):
        raise ValueError(f"unsafe MQTT username {username!r}")
    return username  # type: ignore[return-value]


def is_valid_hash(password_hash: object) -> bool:
    return isinstance(password_hash, str) and _HASH.fullmatch(password_hash) is not None


def service_user_hash(password: str) -> str:
    """A ``$7$`` hash of a service user's password, as ``mosquitto_passwd`` would write it."""
    if not password:
        raise ValueError("a service user needs a non-empty password")
    return credentials.mosquitto_hash(password)


def password_file(entries: Iterable[tuple[str, str]]) -> str:
    """``username:hash`` lines, sorted by username; refuses unsafe or duplicate usernames and
    anything but a ``$7$`` hash (so no line can smuggle in a newline or a second entry)."""
    seen: set[str] = set()
    pairs = []
    for username, password_hash in entries:
        check_username(username)
        if username in seen:
            raise ValueError(f"duplicate MQTT username {username!r}")
        if not is_valid_hash(password_hash):
            raise ValueError(f"password hash of {username!r} is not a mosquitto $7$ hash")
        seen.add(username)
        pairs.append((username, password_hash))
    return "".join(f"{username}:{password_hash}\n" for username, password_hash in sorted(pairs))


def _service_block(username: str, role: str) -> list[str]:
    if role == ROLE_INGEST:
        return [
            f"user {username}",
            f"topic read {TOPIC_ROOT}/#",
            f"topic read $share/{SHARE_GROUP}/{TOPIC_ROOT}/#",
        ]
    if role == ROLE_PUBLISHER:
        return [f"user {username}", f"topic write {TOPIC_ROOT}/#"]
    raise ValueError(f"unknown role {role!r} for service user {username!r}; one of {SERVICE_ROLES}")


def acl_file(gateways: Iterable[str], *, service_users: Mapping[str, str]) -> str:
    """The ACL: service users first (sorted), then one block per gateway (sorted).

    ``service_users`` maps a username to its role, ``"ingest"`` or ``"publisher"``. A gateway
    whose name is also a service user's is refused: Mosquitto merges blocks of the same user,
    so a gateway registered as ``ingest`` would otherwise read every home's telemetry.
    """
    blocks: list[list[str]] = []
    for username in sorted(service_users):
        check_username(username)
        blocks.append(_service_block(username, service_users[username]))
    seen: set[str] = set()
    for gateway in sorted(gateways):
        check_username(gateway)
        if gateway in service_users:
            raise ValueError(f"gateway {gateway!r} clashes with a service user")
        if gateway in seen:
            raise ValueError(f"duplicate gateway {gateway!r}")
        seen.add(gateway)
        blocks.append(
            [
                f"user {gateway}",
                f"topic write {TOPIC_ROOT}/{gateway}/#",
                f"topic read {TOPIC_ROOT}/{gateway}/cmd/#",
            ]
        )
    header = [
        "# Generated by services.telemetry.broker_config from registry.devices; do not edit.",
        "# Reload with SIGHUP after regenerating.",
    ]
    return "\n\n".join("\n".join(block) for block in [header, *blocks]) + "\n"


async def load_gateways(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """Active gateways' ``(mqtt_username, mqtt_password_hash)``, ordered by username.

    Read-only SQL into the registry's schema, which DESIGN allows for this purpose.
    """
    rows = await conn.fetch(SQL_GATEWAYS)
    return [(row["mqtt_username"], row["mqtt_password_hash"]) for row in rows]


def _usable_gateways(
    rows: Iterable[tuple[str, str]], reserved: Iterable[str]
) -> list[tuple[str, str]]:
    """The rows that can go into the files; the others are logged and left out."""
    reserved = set(reserved)
    usable = []
    for username, password_hash in rows:
        if not is_valid_username(username):
            log.warning("gateway %r left out of the broker config: unsafe username", username)
        elif username in reserved:
            log.warning(
                "gateway %r left out of the broker config: clashes with a service user", username
            )
        elif not is_valid_hash(password_hash):
            log.warning("gateway %r left out of the broker config: not a $7$ hash", username)
        else:
            usable.append((username, password_hash))
    return usable


def _write_atomic(path: Path, text: str, *, mode: int, owner: str | int | None) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if owner is not None:
            shutil.chown(tmp, user=owner)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def write_broker_config(
    database_url: str,
    out_dir: Path,
    *,
    ingest_password: str,
    extra_users: Mapping[str, str] = {},
    owner: str | int | None = None,
) -> tuple[Path, Path]:
    """Write ``passwd`` and ``acl`` into ``out_dir`` from the registry; returns their paths.

    ``extra_users`` maps a username to a *password* for publisher service users (e.g.
    ``{"emulator": "..."}``): they may write anywhere under ``eldercare/v1/#``. ``owner`` (a
    user name or uid) chowns both files, for a broker that runs as another user.
    Send the broker SIGHUP afterwards.
    """
    from shared.db import plain_url

    if INGEST_USER in extra_users:
        raise ValueError(f"{INGEST_USER!r} is reserved for the ingest workers")
    service_roles = {INGEST_USER: ROLE_INGEST, **dict.fromkeys(extra_users, ROLE_PUBLISHER)}
    service_entries = [(INGEST_USER, service_user_hash(ingest_password))] + [
        (check_username(user), service_user_hash(password))
        for user, password in extra_users.items()
    ]
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        rows = await load_gateways(conn)
    finally:
        await conn.close()
    gateways = _usable_gateways(rows, service_roles)
    passwd_text = password_file([*service_entries, *gateways])
    acl_text = acl_file([user for user, _ in gateways], service_users=service_roles)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd_path, acl_path = out_dir / PASSWD_NAME, out_dir / ACL_NAME
    _write_atomic(passwd_path, passwd_text, mode=0o600, owner=owner)
    _write_atomic(acl_path, acl_text, mode=0o600, owner=owner)
    log.info("broker config: %d gateways written to %s", len(gateways), out_dir)
    return passwd_path, acl_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for an ``eldercare broker-config`` sub-command."""
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"directory for {PASSWD_NAME} and {ACL_NAME} (default {DEFAULT_OUT_DIR})",
    )
    parser.add_argument(
        "--ingest-password",
        default=os.environ.get(INGEST_PASSWORD_ENV),
        help=f"password of the MQTT user 'ingest' (default: ${INGEST_PASSWORD_ENV})",
    )
    parser.add_argument(
        "--emulator-password",
        default=os.environ.get(EMULATOR_PASSWORD_ENV),
        help=f"also create publisher user '{EMULATOR_USER}' (default: ${EMULATOR_PASSWORD_ENV})",
    )
    parser.add_argument(
        "--owner",
        help="chown both files to this user (the broker's user; needs root)",
    )


def run(args: argparse.Namespace) -> int:
    """Generate the files; 0 ok, 2 bad options or database unreachable."""
    from shared.config import get_settings

    settings = get_settings()
    if not settings.database_url:
        print("eldercare broker-config: set ELDERCARE_DATABASE_URL", file=sys.stderr)
        return 2
    password = args.ingest_password or os.environ.get(INGEST_PASSWORD_ENV)
    if not password:
        print(
            f"eldercare broker-config: give --ingest-password or set {INGEST_PASSWORD_ENV}",
            file=sys.stderr,
        )
        return 2
    emulator_password = getattr(args, "emulator_password", None)
    extra_users = {EMULATOR_USER: emulator_password} if emulator_password else {}
    try:
        passwd, acl = asyncio.run(
            write_broker_config(
                settings.database_url,
                Path(args.out),
                ingest_password=password,
                extra_users=extra_users,
                owner=getattr(args, "owner", None),
            )
        )
    except (OSError, ValueError, LookupError, asyncpg.PostgresError) as exc:
        print(f"eldercare broker-config: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {passwd} and {acl}; send the broker SIGHUP to reload them")
    return 0
