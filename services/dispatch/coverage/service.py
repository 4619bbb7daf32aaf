"""Service radius (服务半径): one station and elder, or every active bed of an org or region.

Bulk: per org, a k-d tree of its stations picks each bed's k nearest by great-circle distance
(exact, see ``spatial``); travel minutes are computed only for those k candidates — in one
vectorised pass for the estimate, in batched matrix calls for a routing engine."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import policy as dispatch_policy
from services.dispatch.coverage.schemas import BedCoverage, BulkReport, CoverageResult
from services.dispatch.coverage.spatial import StationIndex
from services.dispatch.coverage.travel import EstimateTravel, TravelModel
from shared import readmodel as rm
from shared import scoping
from shared.auth import Principal
from shared.errors import NotFound
from shared.geo import distance_m
from shared.i18n import T

K_NEAREST = 3


async def check(
    *,
    session: AsyncSession,
    principal: Principal,
    station_id: uuid.UUID,
    elder_id: uuid.UUID,
    travel: TravelModel,
) -> CoverageResult:
    await scoping.require_elder(session, principal, elder_id)
    e, s = rm.elders, rm.stations
    elder = (
        await session.execute(select(e.c.lat, e.c.lon, e.c.zone).where(e.c.id == elder_id))
    ).first()
    station = (
        await session.execute(
            select(s.c.lat, s.c.lon, s.c.zone).where(
                s.c.id == station_id,
                s.c.org_id.in_(select(rm.orgs.c.id).where(scoping.org_scope(principal))),
            )
        )
    ).first()
    if station is None:
        raise NotFound(T(f"未找到服务站 {station_id}", f"station {station_id} not found"))
    if elder is None or elder.lat is None or elder.lon is None:
        raise NotFound(T("该老人没有登记住址坐标", "the elder's home has no coordinates"))
    zone = elder.zone or station.zone
    m = await travel.matrix(
        np.array([[station.lat, station.lon]]), np.array([[elder.lat, elder.lon]]), zone=zone
    )
    minutes = float(m.minutes[0, 0])
    limit = dispatch_policy.load().limit_minutes(zone)
    return CoverageResult(
        within_radius=minutes <= limit,
        travel_minutes=round(minutes, 1),
        limit_minutes=limit,
        method=m.method,
        distance_m=round(distance_m(station.lat, station.lon, elder.lat, elder.lon), 1),
        zone=zone,
    )


async def load_beds(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID | None, region: str | None
) -> tuple[list[Any], list[Any]]:
    b, e, s = rm.beds, rm.elders, rm.stations
    stmt = (
        select(b.c.id, b.c.elder_id, b.c.org_id, b.c.station_id, e.c.lat, e.c.lon, e.c.zone)
        .join(e, e.c.id == b.c.elder_id)
        .where(b.c.status == "active", scoping.bed_scope(principal), e.c.lat.is_not(None))
    )
    if org_id:
        stmt = stmt.where(b.c.org_id == org_id)
    if region:
        stmt = stmt.where(scoping.region_clause(e, region))  # type: ignore[arg-type]
    beds = (await session.execute(stmt)).all()
    orgs = sorted({r.org_id for r in beds})
    stations = (
        (
            await session.execute(
                select(s.c.id, s.c.org_id, s.c.lat, s.c.lon).where(s.c.org_id.in_(orgs))
            )
        ).all()
        if orgs
        else []
    )
    return list(beds), list(stations)


async def compute(
    beds: Sequence[Any], stations: Sequence[Any], travel: TravelModel
) -> tuple[list[BedCoverage], str]:
    """Nearest station (of the bed's own org) and minutes for every bed."""
    policy = dispatch_policy.load()
    by_org_stations: dict[Any, list[Any]] = defaultdict(list)
    for st in stations:
        by_org_stations[st.org_id].append(st)
    by_org_beds: dict[Any, list[Any]] = defaultdict(list)
    for bed in beds:
        by_org_beds[bed.org_id].append(bed)
    out: list[BedCoverage] = []
    methods: set[str] = set()
    for org, org_beds in by_org_beds.items():
        sts = by_org_stations.get(org, [])
        if not sts:
            out += [_row(bed, None, None, policy.limit_minutes(bed.zone)) for bed in org_beds]
            continue
        st_pts = np.array([[s.lat, s.lon] for s in sts], dtype=float)
        bed_pts = np.array([[b.lat, b.lon] for b in org_beds], dtype=float)
        zones = np.array([b.zone or "urban" for b in org_beds])
        near = StationIndex(st_pts).nearest(bed_pts, K_NEAREST)  # (n, k)
        minutes = np.full(near.shape, np.inf)
        for zone in np.unique(zones):
            mask = zones == zone
            if isinstance(travel, EstimateTravel):
                k = near.shape[1]
                a = np.repeat(bed_pts[mask], k, axis=0)
                bb = st_pts[near[mask].ravel()]
                minutes[mask] = travel.pairwise(a, bb, str(zone)).reshape(-1, k)
                methods.add("estimate")
            else:
                # Road times only for the candidate stations: one station × its beds per call.
                rows = np.flatnonzero(mask)
                for j in np.unique(near[mask]):
                    hit_rows, hit_cols = np.nonzero(near[rows] == j)
                    m = await travel.matrix(st_pts[[j]], bed_pts[rows[hit_rows]], zone=str(zone))
                    minutes[rows[hit_rows], hit_cols] = m.minutes[0]
                    methods.add(m.method)
        best = np.argmin(minutes, axis=1)
        for i, bed in enumerate(org_beds):
            st = sts[near[i, best[i]]]
            out.append(_row(bed, st.id, float(minutes[i, best[i]]), policy.limit_minutes(bed.zone)))
    return out, "+".join(sorted(methods)) or "estimate"


def _row(bed: Any, station_id: Any, minutes: float | None, limit: float) -> BedCoverage:
    # model_construct: 100 000 rows of already-typed values need no validation
    return BedCoverage.model_construct(
        bed_id=bed.id,
        elder_id=bed.elder_id,
        org_id=bed.org_id,
        station_id=bed.station_id,
        nearest_station_id=station_id,
        travel_minutes=None if minutes is None else round(minutes, 1),
        limit_minutes=limit,
        within_radius=minutes is not None and minutes <= limit,
    )


async def bulk(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID | None,
    region: str | None,
    travel: TravelModel,
    include_within: bool,
) -> BulkReport:
    beds, stations = await load_beds(session, principal, org_id, region)
    rows, method = await compute(beds, stations, travel)
    outside = [r for r in rows if not r.within_radius]
    return BulkReport(
        beds=len(rows),
        outside=len(outside),
        method=method,
        items=rows if include_within else outside,
    )


def to_csv(rows: Sequence[BedCoverage]) -> str:
    buf = io.StringIO()
    fields = list(BedCoverage.model_fields)
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in rows:
        writer.writerow(r.model_dump(mode="json"))
    return buf.getvalue()
