"""How a simulated station moves: along its route at its speed, round and round, with the
course of the leg it is on; and what it accepts as a station."""

from __future__ import annotations

import pytest

from radio.simulator import SimStation, cli_stations, loop_route

#: Two points about 1.11 km apart due north, then back.
NORTH = [(0.0, 100.0), (0.01, 100.0)]
LEG = 1111.95  # metres


def test_a_station_walks_its_route_and_loops() -> None:
    sim = SimStation("YB0WLK", NORTH, speed=3.6)  # one metre a second
    assert sim.fix_at(0).lat == 0.0
    half = sim.fix_at(LEG / 2)
    assert half.lat == pytest.approx(0.005, abs=1e-5)
    assert half.course == 0
    assert half.knots == pytest.approx(3.6 / 1.852)
    back = sim.fix_at(LEG * 1.5)
    assert back.lat == pytest.approx(0.005, abs=1e-5)
    assert back.course == 180
    # Once round the loop it starts again.
    assert sim.fix_at(LEG * 2 + LEG / 4).lat == pytest.approx(sim.fix_at(LEG / 4).lat, abs=1e-6)


def test_a_station_with_one_point_or_no_speed_stays() -> None:
    still = SimStation("YB0STL", [(-6.2, 106.8)])
    assert still.fix_at(1000).lat == -6.2
    assert still.position_at(1000).speed is None
    parked = SimStation("YB0PRK", NORTH, speed=0)
    assert parked.fix_at(1000).lat == 0.0


def test_the_beaconed_position_carries_course_speed_and_format() -> None:
    sim = SimStation("YB0POS", NORTH, speed=36.0, beacon_format="compressed", comment="patroli")
    position = sim.position_at(10)
    assert position.format == "compressed"
    assert position.messaging
    assert position.course == 360  # due north; 0 would mean "unknown"
    assert position.speed == pytest.approx(36.0 / 1.852, abs=0.1)
    assert position.comment == "patroli"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"callsign": "TAGANA-01"}, "callsign"),
        ({"route": []}, "route"),
        ({"route": [(91.0, 0.0)]}, "position"),
        ({"beacon_format": "smoke"}, "beacon_format"),
        ({"loss": 1.5}, "loss"),
        ({"beacon_every": 0}, "intervals"),
        ({"group": "TOOLONG"}, "group"),
    ],
)
def test_a_station_refuses_what_the_air_cannot_carry(
    changes: dict[str, object], match: str
) -> None:
    options: dict[str, object] = {"callsign": "YB0OK", "route": NORTH, **changes}
    with pytest.raises(ValueError, match=match):
        SimStation(**options)  # type: ignore[arg-type]


def test_callsigns_are_normalised_and_groups_matched() -> None:
    sim = SimStation("yb0low-0", NORTH, group="sar")
    assert sim.callsign == "YB0LOW"
    assert sim.wants_bulletin("BLN0SAR")
    assert sim.wants_bulletin("BLN5")
    assert not sim.wants_bulletin("BLN0MEDIS")


def test_a_loop_route_goes_round_its_centre() -> None:
    route = loop_route((-6.0, 106.0), 1.0, corners=4)
    assert len(route) == 4
    assert route[0][0] == pytest.approx(-6.0 + 1 / 111.2, abs=1e-6)
    assert route[2][0] == pytest.approx(-6.0 - 1 / 111.2, abs=1e-6)


def test_the_command_lines_stations_take_turns_at_formats_and_callsigns() -> None:
    stations = cli_stations(17, seed=3)
    assert [s.callsign for s in stations[:2]] == ["YB0SIM-1", "YB0SIM-2"]
    assert stations[15].callsign == "YB1SIM-1"
    assert [s.beacon_format for s in stations[:4]] == [
        "uncompressed",
        "compressed",
        "mic-e",
        "uncompressed",
    ]
    assert [s.route for s in cli_stations(17, seed=3)] == [s.route for s in stations]
