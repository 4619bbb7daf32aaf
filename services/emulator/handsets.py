"""The emulator also plays caregivers' handsets, through dispatch's public REST API only.

With ``--register`` it adds a few on-duty, insured caregivers to the emulated org (through
the registry, idempotently per seed), then each handset polls its task feed
(``GET /v1/staff/{id}/tasks``): an offered dispatch is accepted after a human delay, the
caregiver "travels" (the offer's travel minutes, sped up like the emulator's clock), checks in
at the home (arrival), stays a while and checks out with the items done — which resolves the
dispatch and, through dispatch's outbox, the alert in telemetry. So ``eldercare up`` shows the
whole loop: button → offer → accepted → on site → resolved, one log line per step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
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
NAME = "模拟护理员"


@dataclass(frozen=True)
class Pace:
    """How a person at a handset behaves, in real seconds (tests make it brisk)."""

    poll_s: float = 2.0  # how often the handset looks at its task feed
    accept_after_s: float = 4.0  # reading the offer, then tapping "accept"
    on_site_s: float = 15.0  # with the elder, between check-in and check-out
    min_travel_s: float = 1.0  # the offer's travel minutes, sped up, but never less


@dataclass
class Handset:
    staff_id: str
    org_id: str
    token: str
    busy: set[str] = field(default_factory=set)  # dispatch ids being handled

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _each(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> AsyncIterator[dict[str, Any]]:
    """Every item of a registry list, page by page (``{items, next_cursor}``; a plain list
    is read whole)."""
    cursor = None
    while True:
        r = await client.get(
            path, params={"limit": 200, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        r.raise_for_status()
        body = r.json()
        for item in body["items"] if isinstance(body, dict) else body:
            yield item
        cursor = body.get("next_cursor") if isinstance(body, dict) else None
        if not cursor:
            return


async def _org(client: httpx.AsyncClient, headers: dict[str, str], seed: int) -> dict | None:
    code = credit_code(seed)
    async for org in _each(client, "/v1/orgs", headers):
        if org["credit_code"] == code:
            return org
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
    stations = [s async for s in _each(registry, f"/v1/orgs/{org['id']}/stations", admin)]
    staff = [s async for s in _each(registry, f"/v1/orgs/{org['id']}/staff", admin)]
    mine = [s for s in staff if s["name"].startswith(NAME)]
    for k in range(len(mine), CAREGIVERS):
        r = await registry.post(
            f"/v1/orgs/{org['id']}/staff",
            json={
                "name": f"{NAME}{k + 1}",
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


async def respond(
    h: Handset,
    offer: dict[str, Any],
    dispatch: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    speed: float,
    pace: Pace,
) -> str:
    """One caregiver's answer to one offer: accept, travel, check in, stay, check out.
    Returns how it ended (``resolved``, or where it stopped)."""
    try:
        await asyncio.sleep(pace.accept_after_s)
        r = await dispatch.post(f"/v1/dispatches/{offer['id']}/accept", headers=h.auth)
        if r.status_code != 200:
            log.info("handset %s: offer %s moved on (%s)", h.staff_id, offer["id"], r.status_code)
            return "moved_on"
        accepted = r.json()
        log.info("handset %s accepted dispatch %s", h.staff_id, offer["id"])
        minutes = next(
            (c["minutes"] for c in accepted["candidates"] if c["staff_id"] == h.staff_id), 5.0
        )
        await asyncio.sleep(max(pace.min_travel_s, minutes * 60 / speed))  # travelling
        visit = accepted.get("visit_id")
        if not visit:
            log.warning("handset %s: dispatch %s has no visit to check in", h.staff_id, offer["id"])
            return "no_visit"
        elder = (await registry.get(f"/v1/elders/{accepted['elder_id']}", headers=admin)).json()
        here = {"lat": elder["lat"], "lon": elder["lon"]}
        r = await dispatch.post(
            f"/v1/visits/{visit}/check-in",
            json={**here, "at": datetime.now(UTC).isoformat()},
            headers=h.auth,
        )
        if r.status_code not in (200, 201):
            log.warning("handset %s: check-in refused (%s): %s", h.staff_id, r.status_code, r.text)
            return "check_in_refused"
        log.info("handset %s on site for dispatch %s", h.staff_id, offer["id"])
        await asyncio.sleep(pace.on_site_s)
        r = await dispatch.post(
            f"/v1/visits/{visit}/check-out",
            json={
                **here,
                "at": datetime.now(UTC).isoformat(),
                "items_done": ["emergency_aid"],
                "note": "模拟：已到场处置",
            },
            headers=h.auth,
        )
        if r.status_code not in (200, 201):
            log.warning("handset %s: check-out refused (%s): %s", h.staff_id, r.status_code, r.text)
            return "check_out_refused"
        log.info("handset %s checked out: dispatch %s resolved", h.staff_id, offer["id"])
        return "resolved"
    except httpx.HTTPError as exc:
        log.warning("handset %s: %s", h.staff_id, exc)
        return "unreachable"
    finally:
        h.busy.discard(offer["id"])


async def run(
    options: EmulatorOptions,
    settings: Settings,
    stop: threading.Event,
    *,
    pace: Pace = Pace(),
    outcomes: list[str] | None = None,
) -> None:
    """Poll every handset's feed until ``stop``; ``outcomes`` collects how each offer ended."""
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

        def done(t: asyncio.Task) -> None:
            tasks.discard(t)
            if outcomes is not None and not t.cancelled() and t.exception() is None:
                outcomes.append(t.result())

        while not stop.is_set():
            for h in handsets:
                try:
                    r = await dispatch.get(f"/v1/staff/{h.staff_id}/tasks", headers=h.auth)
                except httpx.HTTPError:
                    continue  # dispatch not up yet, or restarting
                if r.status_code != 200:
                    continue
                for offer in r.json()["offers"]:
                    if offer["id"] not in h.busy:
                        h.busy.add(offer["id"])
                        log.info("handset %s offered dispatch %s", h.staff_id, offer["id"])
                        t = asyncio.create_task(
                            respond(
                                h, offer, dispatch, registry, admin, speed=options.speed, pace=pace
                            )
                        )
                        tasks.add(t)
                        t.add_done_callback(done)
            await asyncio.sleep(pace.poll_s)
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def start_in_thread(options: EmulatorOptions, settings: Settings) -> threading.Event:
    """Run the handsets beside the device emulator; set the returned event to stop them."""
    stop = threading.Event()

    def main() -> None:
        for attempt in range(30):  # dispatch or the registry may still be starting
            try:
                asyncio.run(run(options, settings, stop))
                return
            except Exception as exc:
                log.warning("caregiver handsets stopped (%s); retrying", exc)
                if stop.wait(min(2.0 * (attempt + 1), 20.0)):
                    return

    threading.Thread(target=main, name="handsets", daemon=True).start()
    return stop
