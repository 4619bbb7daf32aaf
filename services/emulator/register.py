"""``--register``: create the emulated homes in the registry, through its public API.

Per run (seed): one service organisation with a station. Per home: an elder (valid GB 11643
ID number), an assessment, a co-resident family caregiver (the bed policy requires one), a
home care bed and every device, the gateway first — its response carries the MQTT
credentials the emulator then connects with.

Every POST carries an ``Idempotency-Key`` derived from the seed and the home index, and every
body is a pure function of them too, so re-running ``--register`` with the same seed replays
the first responses (credentials included) instead of creating anything twice. The registry
keeps keys for 24 hours; the assessment date is the first of the month and part of its key,
so a re-run in a new month adds a fresh assessment rather than failing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.emulator.model import Home, build_homes, home_prefix, rng_for
from services.emulator.mqtt import Credentials
from services.emulator.options import EmulatorOptions
from shared.ids import credit_code_check_char
from shared.pii import id_check_char

REGION = "350212"  # 厦门市同安区
_BIRTH_DAYS = 5000  # births from 1930-01-01 over ~13.7 years: the elders are 83–96
_SURNAMES = "陈林黄张李王吴刘蔡杨许郑谢洪郭邱曾廖赖周"


class RegistrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class RegisteredHome:
    index: int
    gateway_id: str
    elder_id: str
    bed_id: str
    device_ids: tuple[str, ...]
    credentials: Credentials


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def credit_code(seed: int) -> str:
    """A valid GB 32100 code per seed (52: a private non-enterprise unit, 民办非企业单位)."""
    body = f"52{REGION}EM{_digest('org', seed) % 10**7:07d}"
    return body + credit_code_check_char(body)


def id_number(seed: int, index: int) -> str:
    """A valid GB 11643 number, distinct for every home of a seed (up to 5 million homes)."""
    k = (_digest("elder", seed) + index) % (_BIRTH_DAYS * 1000)
    born = date(1930, 1, 1) + timedelta(days=k // 1000)
    body = f"{REGION}{born:%Y%m%d}{k % 1000:03d}"
    return body + id_check_char(body)


def elder_body(home: Home) -> dict[str, Any]:
    rng = rng_for(home.seed, home.index, "registry")
    number = id_number(home.seed, home.index)
    female = int(number[16]) % 2 == 0
    return {
        "id_number": number,
        "name": rng.choice(_SURNAMES) + ("阿婆" if female else "阿公"),
        "phone": f"139{_digest('phone', home.seed, home.index) % 10**8:08d}",
        "hukou_region": REGION,
        "address": f"同安区大同街道模拟路{home.index + 1}号",
        "lat": round(24.70 + rng.uniform(0, 0.06), 6),
        "lon": round(118.12 + rng.uniform(0, 0.06), 6),
        "zone": "urban",
        "living_arrangement": "with_family",
    }


def assessed_on(today: date) -> date:
    # Two days back first, so the 1st of a month never lands "in the future" across zones.
    return (today - timedelta(days=2)).replace(day=1)


class _Api:
    def __init__(self, client: httpx.AsyncClient, token: str, seed: int) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seed = seed

    async def post(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
        headers = {**self.headers, "Idempotency-Key": f"emulator:{self.seed}:{key}"}
        r = await self.client.post(path, json=body, headers=headers)
        if r.status_code not in (200, 201):
            raise RegistrationError(f"POST {path} ({key}) → {r.status_code}: {r.text[:500]}")
        return r.json()


async def register_homes(
    options: EmulatorOptions,
    *,
    client: httpx.AsyncClient,
    token: str,
    today: date | None = None,
    concurrency: int = 8,
) -> dict[str, RegisteredHome]:
    """Create (or find again, same seed) every home; returns them by gateway id."""
    api = _Api(client, token, options.seed)
    org = await api.post(
        "/v1/orgs",
        {
            "name": f"模拟居家养老服务中心（emulator {options.seed}）",
            "credit_code": credit_code(options.seed),
            "region": REGION,
        },
        "org",
    )
    station = await api.post(
        f"/v1/orgs/{org['id']}/stations",
        {"name": "模拟服务站", "lat": 24.73, "lon": 118.15, "zone": "urban"},
        "station",
    )
    limit = asyncio.Semaphore(concurrency)
    on = assessed_on(today or date.today())

    async def one(home: Home) -> RegisteredHome:
        async with limit:
            return await _register_home(api, home, org["id"], station["id"], on)

    homes = await asyncio.gather(*(one(h) for h in build_homes(options)))
    return {h.gateway_id: h for h in homes}


async def _register_home(
    api: _Api, home: Home, org_id: str, station_id: str, on: date
) -> RegisteredHome:
    h = f"h{home.index}"
    elder = await api.post("/v1/elders", elder_body(home), f"{h}:elder")
    eid = elder["id"]
    level = rng_for(home.seed, home.index, "registry-level").randint(1, 4)
    await api.post(
        f"/v1/elders/{eid}/assessments",
        {"level": level, "assessed_on": on.isoformat(), "assessor": "设备模拟器"},
        f"{h}:assessment:{on.isoformat()}",
    )
    await api.post(
        f"/v1/elders/{eid}/family-caregivers",
        {
            "name": elder["name"][0] + "家属",
            "relation": "child",
            "phone": f"137{_digest('family', home.seed, home.index) % 10**8:08d}",
            "lives_with": True,
        },
        f"{h}:caregiver",
    )
    bed = await api.post(
        "/v1/beds", {"elder_id": eid, "org_id": org_id, "station_id": station_id}, f"{h}:bed"
    )
    credentials: Credentials | None = None
    # The gateway first: the other devices name it, and only its answer has credentials.
    for device in sorted(home.devices.values(), key=lambda d: d.role != "gateway"):
        answer = await api.post(
            "/v1/devices",
            {
                "device_id": device.device_id,
                "gateway_id": home.gateway_id,
                "kind": device.kind,
                "elder_id": eid,
                "bed_id": bed["id"],
            },
            f"{h}:device:{device.role}",
        )
        if device.role == "gateway":
            mqtt = answer.get("mqtt") or {}
            credentials = Credentials(
                client_id=mqtt.get("client_id", home.gateway_id),
                username=mqtt.get("username"),
                password=mqtt.get("password"),
            )
    assert credentials is not None
    return RegisteredHome(
        index=home.index,
        gateway_id=home.gateway_id,
        elder_id=eid,
        bed_id=bed["id"],
        device_ids=tuple(sorted(home.device_ids())),
        credentials=credentials,
    )


# --- remembered registrations --------------------------------------------------------------
# The registry shows a gateway's MQTT password once, and keeps idempotency keys for a day: a
# second `eldercare up` a week later can neither replay the first registration nor create the
# homes again (their ID numbers and device ids are taken). So the first registration is kept
# in the data dir (mode 0600: it holds the gateways' passwords) and reused while the registry
# still has those gateways.


def save_homes(path: Path, homes: dict[str, RegisteredHome], *, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "seed": seed,
        "homes": [
            {**asdict(h), "device_ids": list(h.device_ids), "credentials": asdict(h.credentials)}
            for h in homes.values()
        ],
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def load_homes(path: Path, *, seed: int, homes: int) -> dict[str, RegisteredHome] | None:
    """The homes registered earlier for this seed, ``None`` if the file is missing, for
    another seed or fewer homes, or unreadable."""
    try:
        body = json.loads(path.read_text())
        if body.get("seed") != seed:
            return None
        found = {}
        for h in body["homes"]:
            home = RegisteredHome(
                index=h["index"],
                gateway_id=h["gateway_id"],
                elder_id=h["elder_id"],
                bed_id=h["bed_id"],
                device_ids=tuple(h["device_ids"]),
                credentials=Credentials(**h["credentials"]),
            )
            found[home.gateway_id] = home
    except (OSError, ValueError, KeyError, TypeError):
        return None
    wanted = {f"{home_prefix(seed, i)}-gw" for i in range(homes)}
    if not wanted <= set(found):
        return None
    return {gw: found[gw] for gw in sorted(wanted)}


async def still_registered(
    homes: dict[str, RegisteredHome], *, client: httpx.AsyncClient, token: str
) -> bool:
    """True when the registry still knows every remembered gateway (a reset database does
    not)."""
    headers = {"Authorization": f"Bearer {token}"}
    for gateway_id in homes:
        r = await client.get(f"/v1/devices/{gateway_id}", headers=headers)
        if r.status_code == 404:
            return False
        if r.status_code != 200:
            raise RegistrationError(f"GET /v1/devices/{gateway_id} → {r.status_code}")
    return True


async def register_or_reuse(
    options: EmulatorOptions,
    *,
    client: httpx.AsyncClient,
    token: str,
    homes_file: Path | None,
) -> dict[str, RegisteredHome]:
    """The homes of ``options``, registered now or remembered from an earlier run."""
    if homes_file is not None:
        known = load_homes(homes_file, seed=options.seed, homes=options.homes)
        if known is not None and await still_registered(known, client=client, token=token):
            return known
    homes = await register_homes(options, client=client, token=token)
    if homes_file is not None:
        save_homes(homes_file, homes, seed=options.seed)
    return homes
