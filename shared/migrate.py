"""Run the one Alembic history (``alembic.ini`` at the repository root)."""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ("common", "registry", "subsidy", "dispatch", "telemetry")
PARTITION = re.compile(r"^events_(default|\d{4}_\d{2})$")  # made at run time, not by Alembic


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """What Alembic compares: our schemas, without the event partitions made at run time."""
    if type_ == "schema":
        return name in SCHEMAS
    return not (type_ in ("table", "index") and name and PARTITION.match(name))


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
