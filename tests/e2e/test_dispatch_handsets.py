"""The emulator's caregiver handsets against the real services: emulated homes registered
through the registry, a button pressed over MQTT by the device emulator, the alert handed to
dispatch by telemetry's outbox, the offer picked up from a handset's task feed, accepted,
travelled, checked in, checked out — and the alert resolved in telemetry. Registry, telemetry
and dispatch each on its own uvicorn, as under ``eldercare up``; only HTTP between them."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import httpx

from services.emulator import handsets
from services.emulator.options import EmulatorOptions
from services.emulator.register import register_homes
from services.emulator.runner import emulate
from shared.auth import TokenCodec
from tests.integration.dispatch_helpers import services_running
from tests.waiting import eventually

BRISK = handsets.Pace(poll_s=0.2, accept_after_s=0.5, on_site_s=1.0, min_travel_s=0.5)


async def test_handsets_answer_a_button_press_until_the_alert_is_resolved(settings, broker):
    options = EmulatorOptions(
        homes=1,
        seed=7171,
        speed=300.0,
        duration=6.0,
        garbage_rate=0.0,
        incident_rate=0.0,
        force_incidents=("emergency",),
        mqtt_url=broker.url,
        progress=False,
        start=datetime.now(UTC),
        register=True,
    )
    async with services_running(settings, broker, registry=True) as s:
        admin = {"Authorization": f"Bearer {TokenCodec(s).issue(role='admin', sub='e2e')}"}
        async with httpx.AsyncClient(base_url=s.service_url("registry"), timeout=30) as reg:
            homes = await register_homes(options, client=reg, token=admin["Authorization"][7:])
        (home,) = homes.values()
        stop, outcomes = threading.Event(), []
        phones = asyncio.create_task(handsets.run(options, s, stop, pace=BRISK, outcomes=outcomes))
        try:
            async with (
                httpx.AsyncClient(base_url=s.service_url("dispatch"), timeout=10) as d,
                httpx.AsyncClient(base_url=s.service_url("telemetry"), timeout=10) as t,
            ):
                # the handsets have enrolled their caregivers before the button is pressed
                async with httpx.AsyncClient(base_url=s.service_url("registry")) as reg:

                    async def enrolled():
                        if phones.done():
                            phones.result()  # raises what stopped them
                        ids = {
                            x["id"]
                            for x in await _org_staff(reg, admin, options.seed)
                            if x["name"].startswith(handsets.NAME)
                        }
                        return len(ids) == handsets.CAREGIVERS and ids

                    staff_ids = await eventually(enrolled, within=20, interval=0.1)
                await asyncio.to_thread(emulate, options, stop=threading.Event(), out=None)

                async def handed_over():
                    alerts = [
                        a
                        for a in (
                            await t.get(
                                "/v1/alerts", params={"elder_id": home.elder_id}, headers=admin
                            )
                        ).json()["items"]
                        if a["kind"] == "emergency"
                    ]
                    if not alerts:
                        return None
                    page = (
                        await d.get(
                            "/v1/dispatches", params={"alert_id": alerts[0]["id"]}, headers=admin
                        )
                    ).json()
                    return page["items"] and (alerts[0], page["items"][0])

                alert, first = await eventually(handed_over, within=30, interval=0.2)
                assert first["staff_id"] in staff_ids  # offered to an emulated caregiver

                async def resolved_in_telemetry():
                    a = (await t.get(f"/v1/alerts/{alert['id']}", headers=admin)).json()
                    return a["status"] == "resolved" and a

                closed = await eventually(resolved_in_telemetry, within=45, interval=0.2)
                assert closed["resolved_by"] == "dispatch-relay"
                final = (await d.get(f"/v1/dispatches/{first['id']}", headers=admin)).json()
                assert final["status"] == "resolved"
                assert [x["action"] for x in final["steps"]] == [
                    "received",
                    "offered",
                    "accepted",
                    "arrived",
                    "resolved",
                ]
                assert final["staff_id"] in staff_ids and final["arrived_at"] is not None
                visit = (await d.get(f"/v1/visits/{final['visit_id']}", headers=admin)).json()
                assert visit["status"] == "checked_out" and visit["items_done"] == ["emergency_aid"]
                assert visit["flags"] == []  # checked in at the home, on time
                assert outcomes == ["resolved"]
        finally:
            stop.set()
            await asyncio.wait_for(phones, 15)


async def _org_staff(reg: httpx.AsyncClient, admin: dict, seed: int) -> list[dict]:
    org = await handsets._org(reg, admin, seed)
    if org is None:
        return []
    return [x async for x in handsets._each(reg, f"/v1/orgs/{org['id']}/staff", admin)]
