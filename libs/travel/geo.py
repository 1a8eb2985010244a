"""Great-circle geography: the distance between two points on the Earth, and along a path.

Distances are haversine distances on a sphere of the Earth's mean radius (IUGG, 6,371.0088
km). Against the WGS-84 ellipsoid that is within about 0.5 % (the tests hold it to that
on known city distances), far closer than any walk follows a straight line, which is all
a day's route needs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

#: The Earth's mean radius (IUGG), in km.
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Point:
    """A place by latitude and longitude, in degrees (north and east positive)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0) or not (-180.0 <= self.lon <= 180.0):
            raise ValueError("latitude must be in [-90, 90] and longitude in [-180, 180]")


def haversine_km(a: Point, b: Point) -> float:
    """The great-circle distance from ``a`` to ``b``, in km."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    half_dlat = (lat2 - lat1) / 2
    half_dlon = math.radians(b.lon - a.lon) / 2
    h = math.sin(half_dlat) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(half_dlon) ** 2
    # min(): rounding can push h a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def distance_matrix(points: Sequence[Point]) -> list[list[float]]:
    """``m[i][j]``: the distance from ``points[i]`` to ``points[j]``, in km (symmetric)."""
    n = len(points)
    matrix = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i][j] = matrix[j][i] = haversine_km(points[i], points[j])
    return matrix


def path_km(points: Sequence[Point]) -> float:
    """The length of the path through ``points`` in their order, in km (0 for fewer than 2)."""
    return sum(haversine_km(a, b) for a, b in itertools.pairwise(points))
