"""Telemetry read endpoints: vitals (JSON and FHIR R4, paged) and a device's events (paged),
against real PostgreSQL, with the ids the registry and the MQTT contract allow."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle

from tests.integration.telemetry_helpers import make_home, msg
from tests.integration.test_telemetry_api import ingest

FHIR_JSON = "application/fhir+json"
ALL = {"heart_rate": 72, "resp_rate": 16, "spo2": 97, "systolic": 128, "diastolic": 82}


async def add_device(registry, home: dict, device_id: str, kind: str = "vital_monitor") -> str:
    r = await registry.post(
        "/v1/devices",
        {
            "device_id": device_id,
            "gateway_id": home["gateway"],
            "kind": kind,
            "elder_id": home["elder_id"],
        },
    )
    assert r.status_code == 201, r.text
    home["devices"][device_id] = device_id
    return device_id


def assert_valid_r4(bundle: dict) -> None:
    Bundle.model_validate(bundle)
    for entry in bundle.get("entry", []):
        rid = entry["resource"]["id"]
        assert 1 <= len(rid) <= 64, rid


async def test_hostile_device_and_message_ids_export_as_valid_fhir(
    registry, telemetry, database_url
):
    home = await make_home(registry)
    underscored = await add_device(registry, home, f"vm_{uuid.uuid4().hex[:8]}")
    long_id = await add_device(registry, home, ("v" + uuid.uuid4().hex * 2)[:64])
    ts = datetime.now(UTC) - timedelta(minutes=5)
    await ingest(
        database_url,
        msg(home, underscored, "vitals", msg_id="m_1", ts=ts, **ALL),
        msg(
            home, long_id, "vitals", msg_id="测量-" + "x" * 61, ts=ts + timedelta(seconds=1), **ALL
        ),
        msg(home, "vit", "vitals", msg_id="y" * 64, ts=ts + timedelta(seconds=2), spo2=96),
    )
    path = f"/v1/elders/{home['elder_id']}/vitals"
    r = await telemetry.get(path, params={"format": "fhir"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    bundle = r.json()
    assert_valid_r4(bundle)
    assert len(bundle["entry"]) == 4 + 4 + 1  # BP is one panel
    assert len({e["resource"]["id"] for e in bundle["entry"]}) == 9
    # the underscored device cannot be a Device reference: it is named by identifier
    devices = [e["resource"]["device"] for e in bundle["entry"]]
    assert {"identifier": {"system": "urn:eldercare:device-id", "value": underscored}} in devices


async def test_fhir_is_served_on_accept_and_json_stays_the_default(
    registry, telemetry, database_url
):
    home = await make_home(registry)
    await ingest(database_url, msg(home, "vit", "vitals", spo2=97))
    path = f"/v1/elders/{home['elder_id']}/vitals"
    auth = telemetry.auth()
    fhir = await telemetry.client.get(path, headers={**auth, "Accept": FHIR_JSON})
    assert fhir.status_code == 200 and fhir.headers["content-type"].startswith(FHIR_JSON)
    assert fhir.json()["resourceType"] == "Bundle"
    plain = await telemetry.client.get(path, headers={**auth, "Accept": "application/json"})
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["items"][0]["spo2"] == 97
    preferred = await telemetry.client.get(
        path, headers={**auth, "Accept": f"{FHIR_JSON};q=0.5, application/json"}
    )
    assert preferred.headers["content-type"].startswith("application/json")
    explicit = await telemetry.client.get(
        path, params={"format": "json"}, headers={**auth, "Accept": FHIR_JSON}
    )
    assert explicit.headers["content-type"].startswith("application/json")


async def test_one_unexportable_reading_is_skipped_and_counted(
    registry, telemetry, database_url, caplog
):
    home = await make_home(registry)
    now = datetime.now(UTC)
    await ingest(database_url, msg(home, "vit", "vitals", ts=now - timedelta(minutes=1), spo2=97))
    # a row ingest would never write (a hand repair, an older version): its value is text
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO telemetry.events (received_at, device_id, msg_id, device_ts, gateway_id,"
            " elder_id, event, skew_s, data) VALUES ($1, $2, 'broken-1', $3, $4, $5, 'vitals',"
            " 0, $6::jsonb)",
            now,
            home["devices"]["vit"],
            now - timedelta(minutes=2),
            home["gateway"],
            uuid.UUID(home["elder_id"]),
            orjson.dumps({"heart_rate": "fast"}).decode(),
        )
    finally:
        await conn.close()
    path = f"/v1/elders/{home['elder_id']}/vitals"
    metrics_before = await skipped_total(telemetry)
    with caplog.at_level(logging.DEBUG):
        r = await telemetry.get(path, params={"format": "fhir"})
    # the export says it left a reading out, never whose or what: no health data in logs
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("services", "shared", "sqlalchemy", "uvicorn"))
    )
    assert "left out 1 unexportable reading" in logged
    assert home["elder_id"] not in logged and "fast" not in logged and "97" not in logged
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert_valid_r4(bundle)
    modes = [e["search"]["mode"] for e in bundle["entry"]]
    assert modes == ["match", "outcome"]
    assert "1 reading" in bundle["entry"][1]["resource"]["issue"][0]["diagnostics"]
    assert await skipped_total(telemetry) == metrics_before + 1
    # the JSON view shows the reading without the value it cannot vouch for
    items = (await telemetry.get(path)).json()["items"]
    assert [i["msg_id"] for i in items][-1] == "broken-1" and items[-1]["heart_rate"] is None


async def skipped_total(telemetry) -> float:
    text = (await telemetry.client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("eldercare_fhir_skipped_readings_total "):
            return float(line.split()[1])
    return 0.0


async def test_fhir_pages_count_observations_and_link_to_the_next(
    registry, telemetry, database_url
):
    home = await make_home(registry)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    readings = [
        msg(home, "vit", "vitals", msg_id=f"r{i}", ts=t0 + timedelta(minutes=i), **ALL)
        for i in range(3)
    ]
    await ingest(database_url, *readings)  # 3 readings × 4 Observations (BP is one panel)
    url = f"/v1/elders/{home['elder_id']}/vitals"
    params: dict | None = {"format": "fhir", "limit": 5}
    seen: list[str] = []
    pages = 0
    while url:
        r = await telemetry.get(url, params=params)
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert_valid_r4(bundle)
        assert "total" not in bundle  # not computed: absent, never the page size
        entries = bundle.get("entry", [])
        assert len(entries) <= 5
        seen += [e["resource"]["id"] for e in entries]
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert "self" in links
        url, params = links.get("next"), None  # the next link carries everything
        pages += 1
        assert pages <= 4
    assert pages == 3 and len(seen) == 12 and len(set(seen)) == 12
    # newest reading first, its Observations in the contract's order
    assert seen[0].startswith(f"{home['devices']['vit']}.r2.")


async def test_vitals_json_pages_with_a_cursor(registry, telemetry, database_url):
    home = await make_home(registry)
    t0 = datetime.now(UTC) - timedelta(hours=2)
    await ingest(
        database_url,
        *[
            msg(home, "vit", "vitals", msg_id=f"j{i}", ts=t0 + timedelta(minutes=i), spo2=90 + i)
            for i in range(5)
        ],
    )
    path = f"/v1/elders/{home['elder_id']}/vitals"
    got, cursor = [], None
    for _ in range(4):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await telemetry.get(path, params=params)).json()
        assert set(page) >= {"items", "next_cursor", "elder_id", "since", "until"}
        got += [i["msg_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == ["j4", "j3", "j2", "j1", "j0"]


async def test_device_events_page_with_a_cursor(registry, telemetry, database_url):
    home = await make_home(registry)
    for i in range(5):  # one transaction each: distinct arrival times
        await ingest(
            database_url, msg(home, "pir", "motion", msg_id=f"e{i}", room="hall", state="active")
        )
    path = f"/v1/devices/{home['devices']['pir']}/events"
    got, cursor = [], None
    for _ in range(4):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await telemetry.get(path, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        got += [e["msg_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == ["e4", "e3", "e2", "e1", "e0"]


@pytest.mark.parametrize("field", ["since", "until"])
async def test_times_without_an_offset_are_refused_naming_the_field(registry, telemetry, field):
    home = await make_home(registry)
    for path in (
        f"/v1/elders/{home['elder_id']}/vitals",
        f"/v1/devices/{home['devices']['vit']}/events",
    ):
        for bad in ("2026-01-05T08:00:00", "0.5", "1767225600"):  # local time, Unix numbers
            r = await telemetry.get(path, params={field: bad})
            assert r.status_code == 422, (path, bad, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert any(field in e["field"] for e in r.json()["errors"]), r.json()
        ok = await telemetry.get(path, params={field: "2026-01-05T08:00:00+08:00"})
        assert ok.status_code == 200, ok.text


async def test_bad_cursors_and_windows_are_422(registry, telemetry, database_url):
    home = await make_home(registry)
    for i in range(2):
        await ingest(
            database_url, msg(home, "pir", "motion", msg_id=f"c{i}", room="hall", state="idle")
        )
    events = f"/v1/devices/{home['devices']['pir']}/events"
    device_cursor = (await telemetry.get(events, params={"limit": 1})).json()["next_cursor"]
    assert device_cursor
    vitals = f"/v1/elders/{home['elder_id']}/vitals"
    for path, cursor in ((vitals, device_cursor), (vitals, "not-a-cursor"), (events, "%%%")):
        r = await telemetry.get(path, params={"cursor": cursor})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "cursor"
    r = await telemetry.get(
        vitals, params={"since": "2026-01-06T00:00:00Z", "until": "2026-01-05T00:00:00Z"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"
    r = await telemetry.get(vitals, params={"until": "0001-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "until"
    for edge in ("0001-01-02T00:00:00Z", "9999-12-31T23:59:59+14:00"):
        r = await telemetry.get(vitals, params={"until": edge, "format": "fhir"})
        assert r.status_code == 200, (edge, r.text)
    # past either end of the calendar once in UTC: bad input, never a 500 or 503
    events = f"/v1/devices/{home['devices']['pir']}/events"
    for path in (vitals, events):
        for field, value in (
            ("until", "9999-12-31T23:59:59-14:00"),
            ("since", "0001-01-01T00:00:00+14:00"),
        ):
            r = await telemetry.get(path, params={field: value})
            assert r.status_code == 422, (path, field, r.text)
            assert r.json()["errors"][0]["field"].endswith(field)


async def test_openapi_documents_both_vitals_variants_and_pages(telemetry):
    spec = (await telemetry.client.get("/openapi.json")).json()
    ok = spec["paths"]["/v1/elders/{elder_id}/vitals"]["get"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/VitalsPage"}
    fhir_schema = ok[FHIR_JSON]["schema"]
    assert fhir_schema["properties"]["resourceType"]["enum"] == ["Bundle"]
    page = spec["components"]["schemas"]["VitalsPage"]
    assert {"items", "next_cursor"} <= set(page["properties"])
    params = {p["name"] for p in spec["paths"]["/v1/elders/{elder_id}/vitals"]["get"]["parameters"]}
    assert {"since", "until", "cursor", "limit", "format"} <= params
    events = spec["paths"]["/v1/devices/{device_id}/events"]["get"]
    ref = events["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    listed = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"items", "next_cursor"} <= set(listed["properties"])
