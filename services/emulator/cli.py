"""``eldercare emulate``: argparse in, ``EmulatorOptions`` out; the logic lives elsewhere."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

from services.emulator.incidents import KINDS
from services.emulator.mqtt import Credentials
from services.emulator.options import LOCAL_TZ, EmulatorOptions
from shared.config import Settings, get_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the emulator, for a sub-command parser of the ``eldercare`` CLI."""
    add = parser.add_argument
    add("--homes", type=int, default=10, help="number of homes (default 10)")
    add("--seed", type=int, default=1, help="same seed, same homes and messages (default 1)")
    add("--rate", type=float, help="fixed total messages/s for load tests (default: --speed)")
    add(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (default 1: real time). Faster clocks stamp "
        "readings in the future: for load tests and offline generation only",
    )
    add("--duration", type=float, help="stop after this many real seconds")
    add("--batch", action="store_true", help="gateways batch non-urgent messages")
    add(
        "--incident-rate",
        type=float,
        default=0.05,
        help="incidents per home per simulated hour (default 0.05)",
    )
    add(
        "--garbage-rate",
        type=float,
        default=0.001,
        help="chance that a message is followed by an invalid one (default 0.001)",
    )
    add(
        "--force-incident",
        action="append",
        choices=KINDS,
        default=[],
        metavar="KIND",
        help=f"fire this incident in every home at the start (repeatable): {', '.join(KINDS)}",
    )
    add("--start", type=datetime.fromisoformat, help="simulated start, ISO 8601 (default now)")
    add("--register", action="store_true", help="create the homes through the registry API")
    add(
        "--homes-file",
        type=Path,
        help="keep the registered homes (ids, MQTT credentials) here and reuse them while the "
        "registry still has them; without --register, connect with the credentials in it",
    )
    add("--registry-url", help="registry base URL (default from settings)")
    add("--token", help="admin bearer token for --register (default: minted locally)")
    add("--mqtt-url", help="mqtt://[user:pass@]host:port (default from settings)")
    add("--quiet", action="store_true", help="no progress line")


def options_from_args(args: argparse.Namespace, settings: Settings) -> EmulatorOptions:
    start = args.start or datetime.now(LOCAL_TZ).replace(microsecond=0)
    if start.tzinfo is None:
        start = start.replace(tzinfo=LOCAL_TZ)
    return EmulatorOptions(
        homes=args.homes,
        seed=args.seed,
        rate=args.rate,
        speed=args.speed,
        duration=args.duration,
        batch=args.batch,
        incident_rate=args.incident_rate,
        garbage_rate=args.garbage_rate,
        force_incidents=tuple(args.force_incident),
        start=start,
        mqtt_url=args.mqtt_url or settings.mqtt_url or f"mqtt://127.0.0.1:{settings.mqtt_port}",
        register=args.register,
        registry_url=args.registry_url or settings.service_url("registry"),
        token=args.token,
        progress=not args.quiet,
    )


def run(args: argparse.Namespace) -> int:
    """Run the emulator until ``--duration`` or Ctrl-C. 0 ok, 1 nothing acknowledged, 2 bad
    options or registration failed."""
    from services.emulator.register import RegistrationError
    from services.emulator.runner import emulate

    settings = get_settings()
    try:
        options = options_from_args(args, settings)
    except ValueError as exc:
        print(f"eldercare emulate: {exc}", file=sys.stderr)
        return 2
    credentials = None
    homes_file = getattr(args, "homes_file", None)
    if options.register:
        try:
            credentials = asyncio.run(register(options, settings, homes_file=homes_file))
        except (RegistrationError, OSError, ValueError) as exc:
            print(f"eldercare emulate: registration failed: {exc}", file=sys.stderr)
            return 2
        print(f"registered {len(credentials)} homes at {options.registry_url}", file=sys.stderr)
    elif homes_file is not None:
        from services.emulator.register import load_homes

        homes = load_homes(homes_file, seed=options.seed, homes=options.homes)
        if homes is None:
            print(
                f"eldercare emulate: no homes for seed {options.seed} in {homes_file}",
                file=sys.stderr,
            )
            return 2
        credentials = {gw: home.credentials for gw, home in homes.items()}
    if credentials is not None:
        from services.emulator import handsets

        handsets.start_in_thread(options, settings)  # caregivers' handsets talk to dispatch
    try:
        stats = emulate(options, credentials=credentials)
    except KeyboardInterrupt:
        return 0
    if stats.errors and not stats.acked:
        print(f"eldercare emulate: nothing acknowledged; {stats.last_error}", file=sys.stderr)
        return 1
    return 0


async def register(
    options: EmulatorOptions, settings: Settings, *, homes_file: Path | None = None
) -> dict[str, Credentials]:
    """Register (or find again) the homes of ``options``; their gateways' MQTT credentials."""
    import httpx

    from services.emulator.register import register_or_reuse
    from shared.auth import TokenCodec

    # A stable subject: the registry remembers idempotency keys per caller.
    token = options.token or TokenCodec(settings).issue(role="admin", sub="emulator")
    async with httpx.AsyncClient(base_url=options.registry_url, timeout=30) as client:
        homes = await register_or_reuse(options, client=client, token=token, homes_file=homes_file)
    return {gw: home.credentials for gw, home in homes.items()}
