"""bitstreams/manifest.json: schema validation and refusal of overlays that do not match it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from realm_hil import regmap
from realm_hil.fpga import manifest as mf

REPO = Path(__file__).resolve().parents[2]


def _overlay(tmp_path: Path, board: str = "pynq-z2", **overrides) -> mf.Overlay:
    folder = tmp_path / board
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "realm_hil.bit").write_bytes(b"\x00\x09bitstream")
    (folder / "realm_hil.hwh").write_text("<MODULES/>")
    values = dict(
        board=board,
        bitfile=f"{board}/realm_hil.bit",
        hwh=f"{board}/realm_hil.hwh",
        bit_sha256=mf.sha256_of(folder / "realm_hil.bit"),
        hwh_sha256=mf.sha256_of(folder / "realm_hil.hwh"),
        part="xc7z020clg400-1",
        array_n=8,
        rated_mhz=150.0,
        safe_mhz=100.0,
        regmap_version=regmap.VERSION_VALUE,
        vivado_version="2024.1",
        rtl_git_rev="a" * 40,
        wns_ns=0.05,
        whs_ns=0.02,
    )
    values.update(overrides)
    return mf.Overlay(**values)


def _write(tmp_path: Path, *overlays: mf.Overlay) -> Path:
    path = tmp_path / "manifest.json"
    path.write_text(mf.Manifest(overlays=overlays).to_json())
    return path


def test_committed_manifest_is_valid_and_lists_no_binaries():
    manifest = mf.load(REPO / "bitstreams" / "manifest.json")
    assert manifest.overlays == ()
    assert "make -C fpga" in manifest.description


def test_schema_file_mirrors_the_dataclass():
    schema = json.loads((REPO / "bitstreams" / "manifest.schema.json").read_text())
    item = schema["properties"]["overlays"]["items"]
    fields = {f.name for f in dataclasses.fields(mf.Overlay)}
    required = {f.name for f in dataclasses.fields(mf.Overlay) if f.default is dataclasses.MISSING}
    assert set(item["properties"]) == fields
    assert set(item["required"]) == required
    assert set(schema["properties"]) == {f.name for f in dataclasses.fields(mf.Manifest)}
    assert item["properties"]["board"]["enum"] == list(mf.BOARDS)


def test_round_trip_and_verify(tmp_path):
    path = _write(tmp_path, _overlay(tmp_path))
    assert json.loads(path.read_text())["overlays"][0]["regmap_version"] == f"0x{regmap.VERSION_VALUE:08X}"
    overlay = mf.verify_overlay("pynq-z2", path)
    assert overlay.array_n == 8 and overlay.bit_path(tmp_path).is_file()


def test_with_overlay_replaces_the_board_entry(tmp_path):
    first = _overlay(tmp_path)
    manifest = mf.Manifest(overlays=(first,)).with_overlay(dataclasses.replace(first, rated_mhz=160.0))
    assert [o.rated_mhz for o in manifest.overlays] == [160.0]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"board": "zedboard"}, "unknown board"),
        ({"bitfile": "zcu104/realm_hil.bit"}, "must be a path under pynq-z2/"),
        ({"hwh": "pynq-z2/other.hwh"}, "same name ending in .hwh"),
        ({"bit_sha256": "XYZ"}, "bit_sha256 must be 64 lowercase hex digits"),
        ({"array_n": 64}, "array_n 64 must be an integer in 4..32"),
        ({"rated_mhz": 0}, "rated_mhz 0 must be a positive number"),
        ({"wns_ns": -0.1}, "a bitstream that misses timing is never listed"),
        ({"vivado_version": "latest"}, "must look like 2024.1"),
        ({"rtl_git_rev": "main"}, "must be a 40-digit commit"),
    ],
)
def test_invalid_overlay_fields_are_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message) as info:
        _overlay(tmp_path, **overrides)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"schema_version": 2, "overlays": []}', "schema_version 2 is not supported"),
        ('{"schema_version": 1, "overlays": {}}', "overlays must be a list"),
        ('{"schema_version": 1, "overlays": [], "extra": 1}', "unknown key"),
        ('{"schema_version": 1, "overlays": [{"board": "kv260"}]}', "'kv260': missing key"),
    ],
)
def test_malformed_manifest_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        mf.parse(text)


def test_duplicate_board_is_refused(tmp_path):
    overlay = _overlay(tmp_path)
    with pytest.raises(ValueError, match="more than once"):
        mf.Manifest(overlays=(overlay, overlay))


def test_corrupted_bitstream_is_refused(tmp_path):
    path = _write(tmp_path, _overlay(tmp_path))
    (tmp_path / "pynq-z2" / "realm_hil.bit").write_bytes(b"\x00\x09tampered")
    with pytest.raises(
        ValueError, match=r"realm_hil\.bit is corrupt or replaced: sha256 .* != manifest .*make -C fpga"
    ):
        mf.verify_overlay("pynq-z2", path)


def test_wrong_regmap_version_is_refused(tmp_path):
    path = _write(tmp_path, _overlay(tmp_path, regmap_version=regmap.VERSION_VALUE + 0x10000))
    with pytest.raises(ValueError, match=r"implements register map \d+\.\d+, this host needs \d+\.\d+"):
        mf.verify_overlay("pynq-z2", path)


def test_missing_file_points_at_the_release_asset(tmp_path):
    path = _write(tmp_path, _overlay(tmp_path, url="https://example.org/realm_hil-pynq-z2.zip"))
    (tmp_path / "pynq-z2" / "realm_hil.hwh").unlink()
    with pytest.raises(ValueError, match=r"realm_hil\.hwh is missing; download https://example.org/"):
        mf.verify_overlay("pynq-z2", path)


def test_unknown_board_says_how_to_get_one(tmp_path):
    path = _write(tmp_path)
    with pytest.raises(ValueError, match=r"no overlay for board 'kv260' .*make -C fpga BOARD=kv260 install"):
        mf.verify_overlay("kv260", path)


def test_add_records_an_installed_build(tmp_path):
    overlay = _overlay(tmp_path)
    timing = tmp_path / "timing.json"
    timing.write_text(
        json.dumps(
            {
                "vivado_version": "2024.1",
                "part": "xc7z020clg400-1",
                "wns_ns": 0.123,
                "whs_ns": 0.011,
                "array_clk_mhz": 150.0,
                "rated_mhz": 150,
                "safe_mhz": 100,
            }
        )
    )
    path = tmp_path / "manifest.json"
    added = mf.add("pynq-z2", REPO / "fpga" / "pynq-z2" / "board.tcl", timing, path)
    assert added.bit_sha256 == overlay.bit_sha256 and added.array_n == 8 and added.wns_ns == 0.123
    assert added.regmap_version == regmap.VERSION_VALUE
    assert mf.verify_overlay("pynq-z2", path) == added
