"""travel.geo: great-circle distances against known distances between cities."""

from __future__ import annotations

import math

import pytest

from travel.geo import EARTH_RADIUS_KM, Point, distance_matrix, haversine_km, path_km

LONDON = Point(51.5074, -0.1278)
PARIS = Point(48.8566, 2.3522)
NEW_YORK = Point(40.7128, -74.0060)
LOS_ANGELES = Point(34.0522, -118.2437)
SYDNEY = Point(-33.8688, 151.2093)
MELBOURNE = Point(-37.8136, 144.9631)
MADRID = Point(40.4168, -3.7038)
BARCELONA = Point(41.3874, 2.1686)


@pytest.mark.parametrize(
    ("a", "b", "known_km"),
    [
        # Published straight-line distances between the city centres (geodesic, WGS-84).
        (LONDON, PARIS, 344),
        (NEW_YORK, LOS_ANGELES, 3944),
        (LONDON, NEW_YORK, 5570),
        (SYDNEY, MELBOURNE, 714),
        (MADRID, BARCELONA, 505),
        # Equator to pole along a meridian: 10,001.966 km on the WGS-84 ellipsoid.
        (Point(0, 0), Point(90, 0), 10_001.966),
    ],
)
def test_haversine_is_within_half_a_percent_of_known_distances(
    a: Point, b: Point, known_km: float
) -> None:
    assert haversine_km(a, b) == pytest.approx(known_km, rel=0.005)
    assert haversine_km(b, a) == pytest.approx(haversine_km(a, b), abs=1e-9)


def test_the_sphere_s_own_figures_are_exact() -> None:
    assert haversine_km(PARIS, PARIS) == 0
    assert haversine_km(Point(0, 0), Point(0, 1)) == pytest.approx(
        2 * math.pi * EARTH_RADIUS_KM / 360, rel=1e-12
    )
    # Antipodes: half the circumference, with no domain error from rounding.
    assert haversine_km(Point(0, 0), Point(0, 180)) == pytest.approx(
        math.pi * EARTH_RADIUS_KM, rel=1e-12
    )
    assert haversine_km(Point(45, 10), Point(-45, -170)) == pytest.approx(
        math.pi * EARTH_RADIUS_KM, rel=1e-9
    )
    # Across the antimeridian the short way, not round the world.
    assert haversine_km(Point(0, 179.5), Point(0, -179.5)) == pytest.approx(
        2 * math.pi * EARTH_RADIUS_KM / 360, rel=1e-9
    )


def test_paths_and_matrices_add_up_leg_by_leg() -> None:
    points = [LONDON, PARIS, MADRID, BARCELONA]
    matrix = distance_matrix(points)
    assert all(matrix[i][i] == 0 for i in range(4))
    assert all(matrix[i][j] == matrix[j][i] for i in range(4) for j in range(4))
    assert path_km(points) == pytest.approx(matrix[0][1] + matrix[1][2] + matrix[2][3])
    assert path_km([]) == path_km([PARIS]) == 0


@pytest.mark.parametrize(("lat", "lon"), [(90.5, 0), (-91, 0), (0, 180.1), (0, -181)])
def test_a_point_off_the_globe_is_refused(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="latitude"):
        Point(lat, lon)
