"""The emulator also plays caregivers' handsets, through dispatch's public REST API only.

With ``--register`` it adds a few on-duty, insured caregivers to the emulated org (through
the registry, idempotently per seed), then each handset polls its task feed
(``GET /v1/staff/{id}/tasks``): an offered dispatch is accepted after a human delay, the
caregiver "travels" (the offer's travel minutes, sped up like the emulator's clock), checks in
at the home (arrival), stays a while and checks out with the items done — which resolves the
dispatch and, through dispatch's outbox, the alert in telemetry. So ``eldercare up`` shows the
whole loop: button → offer → accepted → on site → resolved.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from services.emulator.options import EmulatorOptions
from services.emulator.register import credit_code
from shared.auth import TokenCodec
from shared.config import Settings

log = logging.getLogger(__name__)

CAREGIVERS = 3
POLL_S = 2.0
ACCEPT_AFTER_S = 4.0
ON_SITE_S = 15.0


@dataclass
class Handset:
    staff_id: str
    org_id: str
    token: str
    busy: set[str] = field(default_factory=set)  # dispatch ids being handled


async def _org(
    client: httpx.AsyncClient, headers: dict[str, str], seed: int
) -> dict[str, Any] | None:
    code, cursor = credit_code(seed), None
    while True:
        r = await client.get(
            "/v1/orgs",
            params={"limit": 200, **({"cursor": cursor} if cursor else {})},
            headers=headers,
        )
        r.raise_for_status()
        page = r.json()
        for org in page["items"]:
            if org["credit_code"] == code:
                return org
        cursor = page.get("next_cursor")
        if not cursor:
            return None


async def enrol(
    options: EmulatorOptions, settings: Settings, registry: httpx.AsyncClient
) -> list[Handset]:
    """The emulated org's caregivers (created once per seed)."""
    codec = TokenCodec(settings)
    admin = {"Authorization": f"Bearer {codec.issue(role='admin', sub='emulator')}"}
    org = await _org(registry, admin, options.seed)
    if org is None:
        raise RuntimeError("the emulated org is not registered (run with --register)")
    stations = (await registry.get(f"/v1/orgs/{org['id']}/stations", headers=admin)).json()
    staff = (await registry.get(f"/v1/orgs/{org['id']}/staff", headers=admin)).json()
    mine = [s for s in staff if s["name"].startswith("模拟护理员")]
    for k in range(len(mine), CAREGIVERS):
        r = await registry.post(
            f"/v1/orgs/{org['id']}/staff",
            json={
                "name": f"模拟护理员{k + 1}",
                "role": "caregiver",
                "phone": f"1360000{options.seed % 1000:03d}{k % 10}",
                "station_id": stations[0]["id"] if stations else None,
                "on_duty": True,
                "insured_until": str((datetime.now(UTC) + timedelta(days=365)).date()),
            },
            headers={**admin, "Idempotency-Key": f"emulator:{options.seed}:staff:{k}"},
        )
        r.raise_for_status()
        mine.append(r.json())
    return [
        Handset(
            s["id"],
            org["id"],
            codec.issue(role="caregiver", org=org["id"], staff=s["id"], ttl=30 * 24 * 3600),
        )
        for s in mine
    ]


async def _handle(
    h: Handset,
    offer: dict[str, Any],
    dispatch: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    admin: dict[str, str],
    speed: float,
) -> None:
    auth = {"Authorization": f"Bearer {h.token}"}
    try:
        await asyncio.sleep(ACCEPT_AFTER_S)
        r = await dispatch.post(f"/v1/dispatches/{offer['id']}/accept", headers=auth)
        if r.status_code != 200:
            return  # the offer moved on meanwhile
        accepted = r.json()
        log.info("handset %s accepted dispatch %s", h.staff_id, offer["id"])
        minutes = next(
            (c["minutes"] for c in accepted["candidates"] if c["staff_id"] == h.staff_id), 5.0
        )
        await asyncio.sleep(max(1.0, minutes * 60 / speed))  # travelling
        elder = (await registry.get(f"/v1/elders/{accepted['elder_id']}", headers=admin)).json()
        here = {"lat": elder["lat"], "lon": elder["lon"]}
        visit = accepted["visit_id"]
        r = await dispatch.post(
            f"/v1/visits/{visit}/check-in",
            json={**here, "at": datetime.now(UTC).isoformat()},
            headers=auth,
        )
        log.info("handset %s on site (%s)", h.staff_id, r.status_code)
        await asyncio.sleep(ON_SITE_S)
        r = await dispatch.post(
            f"/v1/visits/{visit}/check-out",
            json={
                **here,
                "at": datetime.now(UTC).isoformat(),
                "items_done": ["emergency_aid"],
                "note": "模拟：已到场处置",
            },
            headers=auth,
        )
        log.info("handset %s checked out, dispatch resolved (%s)", h.staff_id, r.status_code)
    except httpx.HTTPError as exc:
        log.warning("handset %s: %s", h.staff_id, exc)
    finally:
        h.busy.discard(offer["id"])


async def run(options: EmulatorOptions, settings: Settings, stop: threading.Event) -> None:
    speed = options.speed
    admin = {"Authorization": f"Bearer {TokenCodec(settings).issue(role='admin', sub='emulator')}"}
    async with (
        httpx.AsyncClient(base_url=settings.service_url("registry"), timeout=10) as registry,
        httpx.AsyncClient(base_url=settings.service_url("dispatch"), timeout=10) as dispatch,
    ):
        handsets = await enrol(options, settings, registry)
        log.info(
            "%d caregiver handsets polling %s", len(handsets), settings.service_url("dispatch")
        )
        tasks: set[asyncio.Task] = set()
        while not stop.is_set():
            for h in handsets:
                try:
                    r = await dispatch.get(
                        f"/v1/staff/{h.staff_id}/tasks",
                        headers={"Authorization": f"Bearer {h.token}"},
                    )
                except httpx.HTTPError:
                    continue  # dispatch not up yet, or restarting
                if r.status_code != 200:
                    continue
                for offer in r.json()["offers"]:
                    if offer["id"] not in h.busy:
                        h.busy.add(offer["id"])
                        t = asyncio.create_task(_handle(h, offer, dispatch, registry, admin, speed))
                        tasks.add(t)
                        t.add_done_callback(tasks.discard)
            await asyncio.sleep(POLL_S)
        for t in tasks:
            t.cancel()


def start_in_thread(options: EmulatorOptions, settings: Settings) -> threading.Event:
    """Run the handsets beside the device emulator; set the returned event to stop them."""
    stop = threading.Event()

    def main() -> None:
        for attempt in range(30):  # dispatch may still be starting
            try:
                asyncio.run(run(options, settings, stop))
                return
            except Exception as exc:
                log.warning("caregiver handsets stopped (%s); retrying", exc)
                if stop.wait(min(2.0 * (attempt + 1), 20.0)):
                    return
        time.sleep(0)

    threading.Thread(target=main, name="handsets", daemon=True).start()
    return stop
