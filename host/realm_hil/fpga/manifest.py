"""bitstreams/manifest.json: which overlay exists for which board, and whether a copy can be trusted.

The manifest lists one overlay per board. Its .bit/.hwh files appear in bitstreams/<board>/
after `make -C fpga BOARD=<board> install` (which calls `add` below) or are downloaded from
the release asset named by `url`; they are never committed. `verify_overlay(board)` is what
the board backend calls before handing a bitfile to pynq.Overlay: the files must exist, match
their sha256, and implement the register map this host speaks.

    python -m realm_hil.fpga.manifest add --board pynq-z2 --board-tcl fpga/pynq-z2/board.tcl \\
        --timing fpga/build/pynq-z2/timing.json
    python -m realm_hil.fpga.manifest verify pynq-z2
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import regmap
from ..errors import RealmError
from ..repo_files import BITSTREAMS, RTL
from .tcl_check import board_settings

MANIFEST_PATH = BITSTREAMS / "manifest.json"
SCHEMA_VERSION = 1
BOARDS = ("pynq-z2", "zcu104", "kv260")
DESCRIPTION = (
    "Overlays for realm_accel, one per board. The .bit/.hwh files are not in git: they appear in "
    "bitstreams/<board>/ after `make -C fpga BOARD=<board> install`, or are downloaded from `url` "
    "(a release asset). The host checks sha256 and regmap_version before loading one."
)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_VIVADO = re.compile(r"\d{4}\.\d")
_GIT_REV = re.compile(r"[0-9a-f]{40}(-dirty)?|unknown")


class ManifestError(RealmError, ValueError):
    """The manifest is malformed, or an overlay is missing or does not match it."""


@dataclass(frozen=True)
class Overlay:
    """One built overlay: the files, what they were built from and how fast the array may run."""

    board: str  # one of BOARDS; also the folder under bitstreams/
    bitfile: str  # path relative to bitstreams/, e.g. "pynq-z2/realm_hil.bit"
    hwh: str  # the .hwh beside it, same basename (pynq derives one from the other)
    bit_sha256: str
    hwh_sha256: str
    part: str  # FPGA part the bitstream is for
    array_n: int  # realm_accel parameter N (array rows = columns)
    rated_mhz: float  # array_clk at which the routed design met timing
    safe_mhz: float  # aclk, the fixed clock of the checking logic
    regmap_version: int  # register-map version (16.16) built into the bitstream
    vivado_version: str  # e.g. "2024.1"
    rtl_git_rev: str  # last commit touching rtl/ ("-dirty" when rtl/ had local changes), or "unknown"
    wns_ns: float  # worst setup slack at the rated clock (>= 0)
    whs_ns: float  # worst hold slack (>= 0)
    url: str = ""  # release asset (a .zip with both files) for users who do not build

    def __post_init__(self) -> None:
        where = f"manifest overlay {self.board!r}"
        if self.board not in BOARDS:
            raise ManifestError(f"{where}: unknown board (known: {', '.join(BOARDS)})")
        for name in ("bitfile", "hwh"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.startswith(f"{self.board}/") or ".." in value:
                raise ManifestError(f"{where}: {name} {value!r} must be a path under {self.board}/")
        if Path(self.bitfile).suffix != ".bit" or Path(self.hwh) != Path(self.bitfile).with_suffix(".hwh"):
            raise ManifestError(f"{where}: bitfile must end in .bit and hwh be the same name ending in .hwh")
        for name in ("bit_sha256", "hwh_sha256"):
            if not isinstance(getattr(self, name), str) or not _SHA256.fullmatch(getattr(self, name)):
                raise ManifestError(f"{where}: {name} must be 64 lowercase hex digits")
        if not isinstance(self.array_n, int) or isinstance(self.array_n, bool) or not 4 <= self.array_n <= 32:
            raise ManifestError(f"{where}: array_n {self.array_n!r} must be an integer in 4..32")
        for name in ("rated_mhz", "safe_mhz"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ManifestError(f"{where}: {name} {value!r} must be a positive number")
        if not isinstance(self.regmap_version, int) or not 0 <= self.regmap_version < 1 << 32:
            raise ManifestError(f"{where}: regmap_version {self.regmap_version!r} must be a 32-bit integer")
        if not isinstance(self.vivado_version, str) or not _VIVADO.fullmatch(self.vivado_version):
            raise ManifestError(f"{where}: vivado_version {self.vivado_version!r} must look like 2024.1")
        if not isinstance(self.rtl_git_rev, str) or not _GIT_REV.fullmatch(self.rtl_git_rev):
            raise ManifestError(
                f"{where}: rtl_git_rev {self.rtl_git_rev!r} must be a 40-digit commit or 'unknown'"
            )
        for name in ("wns_ns", "whs_ns"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ManifestError(
                    f"{where}: {name} {value!r} must be >= 0 (a bitstream that misses timing is never listed)"
                )
        if not isinstance(self.part, str) or not self.part or not isinstance(self.url, str):
            raise ManifestError(f"{where}: part must be a non-empty string and url a string")

    def bit_path(self, root: Path = BITSTREAMS) -> Path:
        return root / self.bitfile

    def hwh_path(self, root: Path = BITSTREAMS) -> Path:
        return root / self.hwh


@dataclass(frozen=True)
class Manifest:
    """The whole of bitstreams/manifest.json."""

    schema_version: int = SCHEMA_VERSION
    description: str = DESCRIPTION
    overlays: tuple[Overlay, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION or isinstance(self.schema_version, bool):
            raise ManifestError(
                f"manifest schema_version {self.schema_version!r} "
                f"is not supported (expected {SCHEMA_VERSION})"
            )
        boards = [o.board for o in self.overlays]
        duplicates = sorted({b for b in boards if boards.count(b) > 1})
        if duplicates:
            raise ManifestError(f"manifest lists board(s) {', '.join(duplicates)} more than once")

    def overlay(self, board: str) -> Overlay:
        for overlay in self.overlays:
            if overlay.board == board:
                return overlay
        listed = ", ".join(o.board for o in self.overlays) or "none"
        raise ManifestError(
            f"no overlay for board {board!r} in the manifest (listed: {listed}); "
            f"build one with `make -C fpga BOARD={board} install` or download the release asset"
        )

    def with_overlay(self, overlay: Overlay) -> Manifest:
        others = tuple(o for o in self.overlays if o.board != overlay.board)
        return dataclasses.replace(self, overlays=tuple(sorted(others + (overlay,), key=lambda o: o.board)))

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        for overlay in data["overlays"]:
            overlay["regmap_version"] = f"0x{overlay['regmap_version']:08X}"
        return json.dumps(data, indent=2) + "\n"


def _overlay_from_dict(data: object) -> Overlay:
    if not isinstance(data, dict):
        raise ManifestError("manifest overlay entries must be JSON objects")
    names = {f.name for f in dataclasses.fields(Overlay)}
    required = {f.name for f in dataclasses.fields(Overlay) if f.default is dataclasses.MISSING}
    board = data.get("board", "?")
    if unknown := sorted(set(data) - names):
        raise ManifestError(f"manifest overlay {board!r}: unknown key(s) {', '.join(unknown)}")
    if missing := sorted(required - set(data)):
        raise ManifestError(f"manifest overlay {board!r}: missing key(s) {', '.join(missing)}")
    values = dict(data)
    version = values["regmap_version"]
    if isinstance(version, str):
        try:
            values["regmap_version"] = int(version, 16)
        except ValueError:
            raise ManifestError(
                f"manifest overlay {board!r}: regmap_version {version!r} is not hex"
            ) from None
    return Overlay(**values)


def parse(text: str) -> Manifest:
    """A Manifest from JSON text; ManifestError (a ValueError) names the first problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ManifestError("manifest must be a JSON object")
    if unknown := sorted(set(data) - {"schema_version", "description", "overlays"}):
        raise ManifestError(f"manifest: unknown key(s) {', '.join(unknown)}")
    overlays = data.get("overlays", [])
    if not isinstance(overlays, list):
        raise ManifestError("manifest overlays must be a list")
    return Manifest(
        schema_version=data.get("schema_version"),
        description=data.get("description", DESCRIPTION),
        overlays=tuple(_overlay_from_dict(o) for o in overlays),
    )


def load(path: Path = MANIFEST_PATH) -> Manifest:
    if not path.exists():
        raise ManifestError(f"no bitstream manifest at {path}")
    return parse(path.read_text())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _version_text(value: int) -> str:
    return f"{value >> 16}.{value & 0xFFFF}"


def verify_overlay(board: str, manifest_path: Path = MANIFEST_PATH) -> Overlay:
    """The manifest entry for `board` after checking its files; ManifestError says what is wrong."""
    manifest = load(manifest_path)
    overlay = manifest.overlay(board)
    root = manifest_path.parent
    fetch = f"; download {overlay.url}" if overlay.url else f"; run `make -C fpga BOARD={board} install`"
    for path, expected in (
        (overlay.bit_path(root), overlay.bit_sha256),
        (overlay.hwh_path(root), overlay.hwh_sha256),
    ):
        if not path.is_file():
            raise ManifestError(f"overlay file {path} is missing{fetch}")
        actual = sha256_of(path)
        if actual != expected:
            raise ManifestError(
                f"overlay file {path} is corrupt or replaced: sha256 {actual[:12]}... "
                f"!= manifest {expected[:12]}...{fetch}"
            )
    if overlay.regmap_version != regmap.VERSION_VALUE:
        raise ManifestError(
            f"overlay for {board} implements register map {_version_text(overlay.regmap_version)}, "
            f"this host needs {_version_text(regmap.VERSION_VALUE)}; "
            f"rebuild it or install the matching realm-hil"
        )
    return overlay


def _rtl_git_rev() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=RTL.resolve(), capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        rev = git("log", "-1", "--format=%H", "--", ".")
        dirty = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not rev:
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def add(board: str, board_tcl: Path, timing_json: Path, manifest_path: Path = MANIFEST_PATH) -> Overlay:
    """Record the installed bitstreams/<board>/realm_hil.{bit,hwh} in the manifest (`make install`)."""
    from ..regmap_gen import load as load_regmap

    settings = board_settings(board_tcl)
    timing = json.loads(timing_json.read_text())
    root = manifest_path.parent
    bitfile, hwh = f"{board}/realm_hil.bit", f"{board}/realm_hil.hwh"
    overlay = Overlay(
        board=board,
        bitfile=bitfile,
        hwh=hwh,
        bit_sha256=sha256_of(root / bitfile),
        hwh_sha256=sha256_of(root / hwh),
        part=timing["part"],
        array_n=int(settings["realm_n"]),
        rated_mhz=float(timing["rated_mhz"]),
        safe_mhz=float(timing["safe_mhz"]),
        regmap_version=load_regmap()["version"],
        vivado_version=timing["vivado_version"],
        rtl_git_rev=_rtl_git_rev(),
        wns_ns=float(timing["wns_ns"]),
        whs_ns=float(timing["whs_ns"]),
    )
    manifest = load(manifest_path) if manifest_path.exists() else Manifest()
    manifest_path.write_text(manifest.with_overlay(overlay).to_json())
    return overlay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_add = sub.add_parser("add", help="record an installed overlay (run by `make -C fpga install`)")
    p_add.add_argument("--board", required=True, choices=BOARDS)
    p_add.add_argument("--board-tcl", required=True, type=Path)
    p_add.add_argument("--timing", required=True, type=Path, help="timing.json written by check_timing.tcl")
    p_verify = sub.add_parser("verify", help="check an overlay's files against the manifest")
    p_verify.add_argument("board", choices=BOARDS)
    args = parser.parse_args(argv)
    try:
        if args.command == "add":
            overlay = add(args.board, args.board_tcl, args.timing)
            print(f"{MANIFEST_PATH}: {overlay.board} {overlay.bitfile} sha256 {overlay.bit_sha256[:12]}...")
        else:
            overlay = verify_overlay(args.board)
            print(f"{overlay.bit_path()}: ok (N={overlay.array_n}, rated {overlay.rated_mhz} MHz)")
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
