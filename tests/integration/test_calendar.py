from __future__ import annotations

from shared.calendar import seed_calendar


async def test_seeded_calendar_and_deadlines(registry):
    async with registry.app.state.sessionmaker.begin() as session:
        await seed_calendar(session, [2025, 2026])
    days = {}
    cursor = None
    while True:  # walk the pages: a year has more exceptions than one small page holds
        params = {"year": 2025, "limit": 10, **({"cursor": cursor} if cursor else {})}
        page = (await registry.get("/v1/calendar", params=params)).json()
        days |= {d["day"]: d for d in page["items"]}
        if not (cursor := page["next_cursor"]):
            break
    assert len(days) > 10 and sorted(days) == list(days)
    assert days["2025-10-01"]["is_working"] is False
    assert days["2025-09-28"]["is_working"] is True  # Sunday make-up working day
    # From Fri 2025-09-26: Sun 9-28 and Sat 10-11 are make-up working days, 10-1…10-8 off
    r = await registry.get(
        "/v1/calendar/deadline", params={"start": "2025-09-26", "working_days": 10}
    )
    assert r.json()["deadline"] == "2025-10-16"


async def test_admin_edits_a_year_the_package_lacks(registry):
    r = await registry.client.put(
        "/v1/calendar/2031-02-03",
        json={"is_working": False, "name": "春节"},
        headers=registry.auth("admin"),
    )
    assert r.status_code == 200 and r.json()["source"] == "admin"
    r = await registry.get(
        "/v1/calendar/deadline", params={"start": "2031-01-31", "working_days": 1}
    )
    assert r.json()["deadline"] == "2031-02-04"  # Mon 02-03 is now a holiday
    r = await registry.client.put(
        "/v1/calendar/2031-02-03",
        json={"is_working": False},
        headers=registry.auth("community", region="3502"),
    )
    assert r.status_code == 403
    # seeding again never overwrites an admin's edit
    async with registry.app.state.sessionmaker.begin() as session:
        await seed_calendar(session, [2031])
    days = (await registry.get("/v1/calendar", params={"year": 2031})).json()["items"]
    assert {d["day"]: d["source"] for d in days}["2031-02-03"] == "admin"
