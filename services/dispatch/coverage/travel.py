"""Travel time behind one interface.

``EstimateTravel`` (the default) turns geodesic distance into minutes: road distance ≈
detour factor × geodesic distance, at a speed per zone and mode — all policy data. Distances
are a vectorised haversine on the WGS-84 mean radius (``tests`` check it against
geographiclib's geodesic within 0.5 %), so a 100 000 × k matrix costs a few milliseconds.

``RoutingEngineTravel`` asks a self-hosted OSRM (``/table``) or Valhalla
(``/sources_to_targets``) over httpx with a timeout, in batches within the engine's matrix
limit, and falls back to the estimate for any batch the engine does not answer; ``method``
records which one produced the figures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import httpx
import numpy as np

from services.dispatch.policy import DispatchPolicy

log = logging.getLogger(__name__)

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius


def haversine_m(
    lat1: np.ndarray | float,
    lon1: np.ndarray | float,
    lat2: np.ndarray | float,
    lon2: np.ndarray | float,
) -> np.ndarray:
    """Great-circle distance in metres, broadcasting over arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class Matrix:
    minutes: np.ndarray  # sources × targets
    method: str  # "estimate", "osrm", "valhalla", or "<engine>+estimate" when partly fallen back


class TravelModel(Protocol):
    async def matrix(
        self,
        sources: np.ndarray,  # (n, 2) lat, lon
        targets: np.ndarray,  # (m, 2) lat, lon
        *,
        zone: str,
        mode: str | None = None,
    ) -> Matrix: ...


class EstimateTravel:
    def __init__(self, policy: DispatchPolicy) -> None:
        self.policy = policy

    def speed_m_per_min(self, zone: str, mode: str | None) -> float:
        t = self.policy.travel
        zone = zone if zone in t.speed_kmh else "urban"
        mode = mode or t.default_mode[zone]
        return t.speed_kmh[zone][mode] * 1000.0 / 60.0

    def minutes_for_distance(
        self, distance_m: np.ndarray | float, zone: str, mode: str | None = None
    ) -> np.ndarray:
        detour = self.policy.travel.detour_factor.get(
            zone, self.policy.travel.detour_factor["urban"]
        )
        return np.asarray(distance_m) * detour / self.speed_m_per_min(zone, mode)

    def pairwise(
        self, a: np.ndarray, b: np.ndarray, zone: str, mode: str | None = None
    ) -> np.ndarray:
        """Minutes between row i of ``a`` and row i of ``b`` (same length)."""
        return self.minutes_for_distance(
            haversine_m(a[:, 0], a[:, 1], b[:, 0], b[:, 1]), zone, mode
        )

    def matrix_now(
        self, sources: np.ndarray, targets: np.ndarray, zone: str, mode: str | None = None
    ) -> np.ndarray:
        d = haversine_m(
            sources[:, None, 0], sources[:, None, 1], targets[None, :, 0], targets[None, :, 1]
        )
        return self.minutes_for_distance(d, zone, mode)

    async def matrix(
        self, sources: np.ndarray, targets: np.ndarray, *, zone: str, mode: str | None = None
    ) -> Matrix:
        return Matrix(self.matrix_now(sources, targets, zone, mode), "estimate")


class RoutingEngineTravel:
    """OSRM ``/table/v1/{profile}`` or Valhalla ``/sources_to_targets``, estimate as fallback."""

    def __init__(
        self,
        policy: DispatchPolicy,
        *,
        engine: str,
        base_url: str,
        timeout_s: float = 2.0,
        max_matrix: int = 100,  # OSRM's default --max-table-size; Valhalla's is larger
        profile: str = "driving",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if engine not in ("osrm", "valhalla"):
            raise ValueError(f"unknown routing engine {engine!r} (osrm or valhalla)")
        self.engine = engine
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_matrix = max_matrix
        self.profile = profile
        self.fallback = EstimateTravel(policy)
        self.transport = transport

    async def matrix(
        self, sources: np.ndarray, targets: np.ndarray, *, zone: str, mode: str | None = None
    ) -> Matrix:
        out = np.empty((len(sources), len(targets)))
        fell_back = engine_used = False
        # Batches of sources × targets whose total locations stay within the engine's limit.
        step_t = max(1, min(len(targets), self.max_matrix // 2))
        step_s = max(1, self.max_matrix - step_t)
        async with httpx.AsyncClient(timeout=self.timeout_s, transport=self.transport) as client:
            for i in range(0, len(sources), step_s):
                for j in range(0, len(targets), step_t):
                    src, dst = sources[i : i + step_s], targets[j : j + step_t]
                    try:
                        block = await self._ask(client, src, dst)
                        engine_used = True
                    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                        log.warning("%s matrix failed (%s); using the estimate", self.engine, exc)
                        block = self.fallback.matrix_now(src, dst, zone, mode)
                        fell_back = True
                    out[i : i + len(src), j : j + len(dst)] = block
        if engine_used and not fell_back:
            method = self.engine
        elif engine_used:
            method = f"{self.engine}+estimate"
        else:
            method = "estimate"
        return Matrix(out, method)

    async def _ask(self, client: httpx.AsyncClient, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        if self.engine == "osrm":
            points = np.vstack([src, dst])
            coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in points)
            n = len(src)
            params = {
                "sources": ";".join(str(k) for k in range(n)),
                "destinations": ";".join(str(n + k) for k in range(len(dst))),
                "annotations": "duration",
            }
            r = await client.get(f"{self.base_url}/table/v1/{self.profile}/{coords}", params=params)
            r.raise_for_status()
            body = r.json()
            if body.get("code") != "Ok":
                raise ValueError(f"OSRM answered {body.get('code')}")
            seconds = np.array(body["durations"], dtype=float)
        else:
            r = await client.post(
                f"{self.base_url}/sources_to_targets",
                json={
                    "sources": [{"lat": lat, "lon": lon} for lat, lon in src],
                    "targets": [{"lat": lat, "lon": lon} for lat, lon in dst],
                    "costing": "auto",
                },
            )
            r.raise_for_status()
            rows = r.json()["sources_to_targets"]
            seconds = np.array([[c.get("time") for c in row] for row in rows], dtype=float)
        if seconds.shape != (len(src), len(dst)) or np.isnan(seconds).any():
            raise ValueError("incomplete matrix (unroutable points)")
        return seconds / 60.0


def travel_model(policy: DispatchPolicy, settings) -> TravelModel:
    """The model the settings choose: a routing engine when one is configured."""
    if settings.dispatch_routing_engine and settings.dispatch_routing_url:
        return RoutingEngineTravel(
            policy,
            engine=settings.dispatch_routing_engine,
            base_url=settings.dispatch_routing_url,
            timeout_s=settings.dispatch_routing_timeout_s,
            max_matrix=settings.dispatch_routing_max_matrix,
        )
    return EstimateTravel(policy)
