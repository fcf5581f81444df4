"""Wall tiles and layouts: defaults filled in, and every mistake named by its field."""

from __future__ import annotations

import pytest

from videowall.tiles import Layout, TileError, fit_tiles, parse_layout, parse_tile


def test_a_tile_comes_back_complete() -> None:
    assert parse_tile({"kind": "map", "lat": -6.2, "lon": 106.8}) == {
        "kind": "map",
        "title": "",
        "lat": -6.2,
        "lon": 106.8,
        "zoom": 10,
        "layers": ["cases", "units", "alerts"],
    }
    assert parse_tile({"kind": "camera", "stream_url": "/api/v1/cameras/c1/stream.mjpg"})[
        "refresh_seconds"
    ] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("tile", "field"),
    [
        ("queue", None),
        ({}, "kind"),
        ({"kind": "map", "lat": 0}, "lon"),
        ({"kind": "map", "lat": 0, "lon": 0, "zoom": 30}, "zoom"),
        ({"kind": "follow", "cameras": 9}, "cameras"),
        ({"kind": "camera", "stream_url": "//evil.example/x"}, "stream_url"),
        ({"kind": "camera", "device_id": None}, "device_id"),
        ({"kind": "case", "case_id": 0}, "case_id"),
        ({"kind": "kpis", "title": "x" * 81}, "title"),
    ],
)
def test_a_bad_tile_names_its_field(tile: object, field: str | None) -> None:
    with pytest.raises(TileError) as refused:
        parse_tile(tile)
    assert refused.value.field == field


def test_a_layout_is_padded_and_its_tiles_named_by_position() -> None:
    tiles = parse_layout(Layout(rows=2, columns=2, tiles=[{"kind": "queue"}]))
    assert [tile["kind"] for tile in tiles] == ["queue", "empty", "empty", "empty"]
    with pytest.raises(TileError) as refused:
        parse_layout(Layout(rows=1, columns=2, tiles=[{"kind": "queue"}, {"kind": "case"}]))
    assert refused.value.field == "tiles.1.case_id"
    with pytest.raises(TileError) as refused:
        parse_layout(Layout(rows=1, columns=1, tiles=[{"kind": "queue"}] * 2))
    assert refused.value.field == "tiles"


def test_fit_tiles_cuts_and_pads() -> None:
    three = [{"kind": "queue"}] * 3
    assert len(fit_tiles(three, 2)) == 2
    assert fit_tiles(three, 4)[3] == {"kind": "empty", "title": ""}
