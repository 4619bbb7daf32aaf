"""Geodesy on WGS-84 via geographiclib (Karney's algorithm, millimetre accuracy)."""

from __future__ import annotations

from typing import Annotated

from geographiclib.geodesic import Geodesic
from pydantic import Field

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="WGS-84 degrees")]
Longitude = Annotated[
    float, Field(ge=-180, le=180, allow_inf_nan=False, description="WGS-84 degrees")
]

_WGS84 = Geodesic.WGS84


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return _WGS84.Inverse(lat1, lon1, lat2, lon2, Geodesic.DISTANCE)["s12"]
