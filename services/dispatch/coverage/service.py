"""Service radius (服务半径): one station and elder, or every active bed of an org or region.

Bulk: per org, a k-d tree of its stations picks each bed's k nearest by great-circle distance
(exact, see ``spatial``); travel minutes are computed only for those k candidates — in one
vectorised pass for the estimate, in batched matrix calls for a routing engine.

The bulk read is columnar end to end. PostgreSQL packs each (org, zone) group's ids and
coordinates into one ``bytea`` per column (``uuid_send``/``float8send`` concatenated), which
numpy reads in place: 100 000 beds arrive as a few dozen rows instead of 100 000 Python
objects, and the result stays in arrays until a page (or the CSV) is written.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import LargeBinary, Select, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import policy as dispatch_policy
from services.dispatch.coverage.schemas import BedCoverage, CoverageResult
from services.dispatch.coverage.spatial import StationIndex
from services.dispatch.coverage.travel import EstimateTravel, TravelModel
from shared import readmodel as rm
from shared import scoping
from shared.auth import Principal
from shared.errors import NotFound, Unprocessable
from shared.geo import distance_m
from shared.i18n import T
from shared.pagination import decode_cursor, encode_cursor

K_NEAREST = 3
NIL = uuid.UUID(int=0)  # "no station" inside a packed id column (a bed's station may be unset)


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


def _packed(column: Any) -> Any:
    return func.string_agg(column, literal_column("''::bytea"), type_=LargeBinary)


def beds_statement(
    principal: Principal, org_id: uuid.UUID | None, region: str | None
) -> Select[Any]:
    """Active beds with home coordinates in ``principal``'s scope, one row per (org, zone)
    with every column packed. All aggregates of one group read its rows in the same order,
    so position k of each packed column is the same bed."""
    b, e = rm.beds, rm.elders
    stmt = (
        select(
            b.c.org_id,
            e.c.zone,
            _packed(func.uuid_send(b.c.id)).label("bed_ids"),
            _packed(func.uuid_send(b.c.elder_id)).label("elder_ids"),
            _packed(func.uuid_send(func.coalesce(b.c.station_id, literal(NIL, PgUUID)))).label(
                "station_ids"
            ),
            _packed(func.float8send(e.c.lat)).label("lats"),
            _packed(func.float8send(e.c.lon)).label("lons"),
        )
        .join(e, e.c.id == b.c.elder_id)
        .where(
            b.c.status == "active",
            scoping.bed_scope(principal),
            e.c.lat.is_not(None),
            e.c.lon.is_not(None),
        )
        .group_by(b.c.org_id, e.c.zone)
    )
    if org_id:
        stmt = stmt.where(b.c.org_id == org_id)
    if region:
        stmt = stmt.where(scoping.region_clause(e, region))  # type: ignore[arg-type]
    return stmt


def _plain(u: uuid.UUID) -> uuid.UUID:
    """asyncpg's own UUID subclass as a plain ``uuid.UUID`` (orjson writes only the latter)."""
    return u if type(u) is uuid.UUID else uuid.UUID(bytes=u.bytes)


def _ids(raw: bytes) -> np.ndarray:
    """Packed uuids → (n, 2) uint64, high half first: numeric order is uuid order."""
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 2).astype(np.uint64)


@dataclass(frozen=True)
class Group:
    org_id: uuid.UUID
    zone: str
    bed: np.ndarray
    elder: np.ndarray
    station: np.ndarray
    points: np.ndarray  # (n, 2) lat, lon


@dataclass(frozen=True)
class Stations:
    ids: list[uuid.UUID]
    points: np.ndarray  # (m, 2)
    by_org: dict[uuid.UUID, tuple[int, int]]  # an org's stations are ids[lo:hi]


async def load(
    session: AsyncSession, principal: Principal, org_id: uuid.UUID | None, region: str | None
) -> tuple[list[Group], Stations]:
    groups = [
        Group(
            org_id=_plain(r.org_id),
            zone=r.zone or "urban",
            bed=_ids(r.bed_ids),
            elder=_ids(r.elder_ids),
            station=_ids(r.station_ids),
            points=np.column_stack(
                [np.frombuffer(r.lats, dtype=">f8"), np.frombuffer(r.lons, dtype=">f8")]
            ).astype(float),
        )
        for r in await session.execute(beds_statement(principal, org_id, region))
    ]
    orgs = sorted({g.org_id for g in groups})
    s = rm.stations
    rows = (
        (
            await session.execute(
                select(s.c.id, s.c.org_id, s.c.lat, s.c.lon)
                .where(s.c.org_id.in_(orgs), s.c.lat.is_not(None), s.c.lon.is_not(None))
                .order_by(s.c.org_id, s.c.id)
            )
        ).all()
        if orgs
        else []
    )
    by_org: dict[uuid.UUID, tuple[int, int]] = {}
    for k, r in enumerate(rows):
        org = _plain(r.org_id)
        lo, _ = by_org.get(org, (k, k))
        by_org[org] = (lo, k + 1)
    points = np.array([[r.lat, r.lon] for r in rows], dtype=float).reshape(-1, 2)
    return groups, Stations([_plain(r.id) for r in rows], points, by_org)


@dataclass(frozen=True)
class Table:
    """Coverage of every bed, column by column (row k is one bed)."""

    bed: np.ndarray  # (n, 2) uint64 ids
    elder: np.ndarray
    org: np.ndarray  # index into ``orgs``
    station: np.ndarray  # the bed's own station, (n, 2) uint64 (0 for none)
    nearest: np.ndarray  # index into ``stations`` (-1: the org has no station)
    minutes: np.ndarray  # nan where no station
    limit: np.ndarray
    orgs: list[uuid.UUID]
    stations: list[uuid.UUID]
    method: str

    @property
    def within(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.minutes <= self.limit


async def compute(groups: Sequence[Group], stations: Stations, travel: TravelModel) -> Table:
    """Nearest station (of the bed's own org) and minutes for every bed."""
    policy = dispatch_policy.load()
    orgs = sorted({g.org_id for g in groups})
    org_index = {o: k for k, o in enumerate(orgs)}
    trees: dict[uuid.UUID, StationIndex] = {}
    methods: set[str] = set()
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # nearest, minutes, limit
    for g in groups:
        n = len(g.bed)
        limit = np.full(n, policy.limit_minutes(g.zone))
        lo, hi = stations.by_org.get(g.org_id, (0, 0))
        if hi == lo:
            parts.append((np.full(n, -1), np.full(n, np.nan), limit))
            continue
        st_pts = stations.points[lo:hi]
        tree = trees.get(g.org_id) or trees.setdefault(g.org_id, StationIndex(st_pts))
        near = tree.nearest(g.points, K_NEAREST)  # (n, k), indices into the org's stations
        k = near.shape[1]
        if isinstance(travel, EstimateTravel):
            minutes = travel.pairwise(
                np.repeat(g.points, k, axis=0), st_pts[near.ravel()], g.zone
            ).reshape(n, k)
            methods.add("estimate")
        else:
            # Road times only for the candidate stations: one station × its beds per call.
            minutes = np.full(near.shape, np.inf)
            for j in np.unique(near):
                rows, cols = np.nonzero(near == j)
                m = await travel.matrix(st_pts[[j]], g.points[rows], zone=g.zone)
                minutes[rows, cols] = m.minutes[0]
                methods.add(m.method)
        best = np.argmin(minutes, axis=1)
        pick = np.arange(n)
        parts.append((lo + near[pick, best], minutes[pick, best], limit))

    def cat(arrays: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.empty(shape, dtype=dtype)

    return Table(
        bed=cat([g.bed for g in groups], (0, 2), np.uint64),
        elder=cat([g.elder for g in groups], (0, 2), np.uint64),
        org=cat([np.full(len(g.bed), org_index[g.org_id]) for g in groups], (0,), int),
        station=cat([g.station for g in groups], (0, 2), np.uint64),
        nearest=cat([p[0] for p in parts], (0,), int),
        minutes=cat([p[1] for p in parts], (0,), float),
        limit=cat([p[2] for p in parts], (0,), float),
        orgs=orgs,
        stations=stations.ids,
        method="+".join(sorted(methods)) or "estimate",
    )


def _uuid(pair: np.ndarray) -> uuid.UUID:
    return uuid.UUID(int=(int(pair[0]) << 64) | int(pair[1]))


def rows(table: Table, indices: Sequence[int] | np.ndarray) -> Iterator[dict[str, Any]]:
    """The report's items (``BedCoverage`` fields) for these rows."""
    within = table.within
    for i in indices:
        station = table.station[i]
        nearest = int(table.nearest[i])
        minutes = float(table.minutes[i])
        yield {
            "bed_id": _uuid(table.bed[i]),
            "elder_id": _uuid(table.elder[i]),
            "org_id": table.orgs[int(table.org[i])],
            "station_id": None if not station.any() else _uuid(station),
            "nearest_station_id": table.stations[nearest] if nearest >= 0 else None,
            "travel_minutes": None if minutes != minutes else round(minutes, 1),
            "limit_minutes": float(table.limit[i]),
            "within_radius": bool(within[i]),
        }


def page(
    table: Table, *, include_within: bool, cursor: str | None, limit: int
) -> tuple[np.ndarray, str | None]:
    """Row indices of one page in bed-id order after ``cursor``, and the next cursor."""
    mask = np.ones(len(table.bed), dtype=bool) if include_within else ~table.within
    after = decode_cursor(cursor)
    if after is not None:
        if not isinstance(after, uuid.UUID):
            raise Unprocessable(
                T("分页游标无效", "cursor is not valid"),
                errors=[("cursor", T("不是有效的分页游标", "not a cursor"))],
            )
        hi, lo = np.uint64(after.int >> 64), np.uint64(after.int & (2**64 - 1))
        mask &= (table.bed[:, 0] > hi) | ((table.bed[:, 0] == hi) & (table.bed[:, 1] > lo))
    candidates = np.flatnonzero(mask)
    ordered = candidates[np.lexsort((table.bed[candidates, 1], table.bed[candidates, 0]))]
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, encode_cursor(_uuid(table.bed[chosen[-1]])) if more else None


async def bulk(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID | None,
    region: str | None,
    travel: TravelModel,
) -> Table:
    groups, stations = await load(session, principal, org_id, region)
    return await compute(groups, stations, travel)


def report(table: Table, *, include_within: bool, cursor: str | None, limit: int) -> dict[str, Any]:
    """A ``BulkReport`` as plain data (its items are one page)."""
    chosen, nxt = page(table, include_within=include_within, cursor=cursor, limit=limit)
    return {
        "beds": len(table.bed),
        "outside": int((~table.within).sum()),
        "method": table.method,
        "items": list(rows(table, chosen)),
        "next_cursor": nxt,
    }


def _uuid_texts(ids: np.ndarray) -> list[str]:
    """(n, 2) uint64 ids as canonical uuid strings, '' for the nil id, in one hex pass."""
    h = ids.astype(">u8").tobytes().hex()
    return [
        ""
        if h[k : k + 32] == "0" * 32
        else f"{h[k : k + 8]}-{h[k + 8 : k + 12]}-{h[k + 12 : k + 16]}-{h[k + 16 : k + 20]}-"
        f"{h[k + 20 : k + 32]}"
        for k in range(0, len(h), 32)
    ]


def to_csv(table: Table) -> str:
    """Every bed, in bed-id order, written column by column (100 000 rows of objects would
    cost seconds)."""
    order = np.lexsort((table.bed[:, 1], table.bed[:, 0]))
    orgs = [str(o) for o in table.orgs]
    stations = [*(str(s) for s in table.stations), ""]  # index -1: no station
    minutes = np.round(table.minutes[order], 1).tolist()
    columns = [
        _uuid_texts(table.bed[order]),
        _uuid_texts(table.elder[order]),
        [orgs[k] for k in table.org[order].tolist()],
        _uuid_texts(table.station[order]),
        [stations[k] for k in table.nearest[order].tolist()],
        ["" if m != m else str(m) for m in minutes],
        [str(m) for m in table.limit[order].tolist()],
        ["true" if w else "false" for w in table.within[order].tolist()],
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(BedCoverage.model_fields))
    writer.writerows(zip(*columns, strict=True))
    return buf.getvalue()
