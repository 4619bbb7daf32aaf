"""The `eldercare` command: up, migrate, token, secrets, emulate, ingest, broker-config, policy,
subsidy."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from shared import clock
from shared.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "data_dir", None):
        settings.data_dir = Path(args.data_dir)
    return settings


def cmd_up(args: argparse.Namespace) -> int:
    from services.launcher import StartupError, UpOptions, pg_port_from_env, up

    options = UpOptions(
        homes=args.homes,
        emulator=not args.no_emulator,
        seed=args.seed,
        incident_rate=args.incident_rate,
    )
    try:
        return up(_settings(args), pg_port=pg_port_from_env(), options=options)
    except StartupError as exc:
        print(f"eldercare up: {exc}", file=sys.stderr)
        return 2


def cmd_migrate(args: argparse.Namespace) -> int:
    from shared.migrate import upgrade

    settings = _settings(args)
    if not settings.database_url:
        print("eldercare migrate: set ELDERCARE_DATABASE_URL", file=sys.stderr)
        return 2
    upgrade(settings.database_url, args.revision)
    asyncio.run(_seed_calendar(settings.database_url))
    return 0


async def _seed_calendar(database_url: str) -> None:
    from shared.calendar import seed_calendar
    from shared.db import create_engine, create_sessionmaker

    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with create_sessionmaker(engine).begin() as session:
            year = clock.today().year
            await seed_calendar(session, range(year - 1, year + 2))
    finally:
        await engine.dispose()


def cmd_token(args: argparse.Namespace) -> int:
    from shared.auth import TokenCodec
    from shared.errors import Unauthorized

    try:
        token = TokenCodec(_settings(args)).issue(
            role=args.role,
            sub=args.sub,
            region=args.region,
            org=args.org,
            staff=args.staff,
            elder=args.elder,
            ttl=args.ttl,
        )
    except (ValueError, Unauthorized) as exc:
        print(f"eldercare token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    """Fresh secrets as `.env` lines: one set for the whole deployment, every replica."""
    import secrets

    from shared.config import SECRETS

    for name in SECRETS:
        print(f"ELDERCARE_{name.upper()}={secrets.token_urlsafe(32)}")
    for name in args.extra:
        print(f"{name}={secrets.token_urlsafe(24)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from services.launcher import DEMO_INCIDENT_RATE

    parser = argparse.ArgumentParser(prog="eldercare", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="run the whole platform locally (no Docker, no root)")
    p.add_argument("--data-dir", help="where the embedded database and secrets live (.data)")
    p.add_argument("--homes", type=int, default=10, help="emulated homes (default 10)")
    p.add_argument("--no-emulator", action="store_true", help="start no device emulator")
    p.add_argument("--seed", type=int, default=1, help="emulator seed (default 1)")
    p.add_argument(
        "--incident-rate",
        type=float,
        default=DEMO_INCIDENT_RATE,
        help="emulated incidents per home per hour, on the real clock "
        f"(default {DEMO_INCIDENT_RATE:g}: a demo sees some)",
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("migrate", help="apply database migrations (ELDERCARE_DATABASE_URL)")
    p.add_argument("--revision", default="head")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("token", help="mint a JWT signed with this installation's secret")
    p.add_argument(
        "--role",
        required=True,
        choices=[
            "admin",
            "street",
            "community",
            "org_admin",
            "caregiver",
            "family",
            "service",
            "gateway",
        ],
    )
    p.add_argument("--sub")
    p.add_argument("--region", help="division-code prefix (admin/street/community)")
    p.add_argument("--org", help="org id (org_admin/caregiver)")
    p.add_argument("--staff", help="staff id (caregiver)")
    p.add_argument("--elder", help="elder id (family)")
    p.add_argument("--ttl", type=int, default=3600, help="seconds")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser(
        "secrets",
        help="print fresh secrets (JWT, PII keys) as .env lines for a deployment",
    )
    p.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME",
        help="also a random value for NAME (e.g. ELDERCARE_POSTGRES_PASSWORD); repeatable",
    )
    p.set_defaults(func=cmd_secrets)

    from services import emulator
    from services.telemetry import broker_config
    from services.telemetry.ingest import main as ingest

    p = sub.add_parser("ingest", help="telemetry ingest worker: MQTT → PostgreSQL → alerts")
    ingest.add_arguments(p)
    p.set_defaults(func=ingest.run)

    p = sub.add_parser(
        "broker-config", help="generate the Mosquitto password file and ACL from the registry"
    )
    broker_config.add_arguments(p)
    p.set_defaults(func=broker_config.run)

    p = sub.add_parser("emulate", help="device emulator: N homes publishing telemetry over MQTT")
    emulator.add_arguments(p)
    p.set_defaults(func=emulator.run)

    from services.subsidy import cli as subsidy_cli

    subsidy_cli.add_parsers(sub)  # `policy test`, `subsidy run --month`
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
