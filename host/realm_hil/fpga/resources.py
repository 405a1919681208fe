"""FPGA resource estimates from yosys `synth_xilinx -family xc7` (no Vivado needed).

One hierarchical synthesis of realm_accel (TIMING_EMU=0, INJECT=0, as the FPGA build) gives
the array alone (realm_core), the checking logic (realm_ingress + realm_egress + realm_stats)
and the whole top; the overhead is checking / array in percent. Yosys maps to 7-series
primitives but does not place or optimise across the hierarchy, so the figures are an upper
estimate of what Vivado reports. A run takes about 1.5 minutes at N=8 on two cores, so results
are cached under realm_hil.toolchain.cache_dir("resources"), keyed by the RTL's content.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import filelist
from ..build_cache import content_key
from ..errors import RealmError
from ..repo_files import RTL
from ..toolchain import cache_dir

ARRAY_MODULES = ("realm_core",)
CHECKING_MODULES = ("realm_ingress", "realm_egress", "realm_stats")

# LUTs a LUT-RAM or shift-register primitive occupies (SLICEM LUTs, counted by Vivado as LUTs)
_LUTRAM_LUTS = {
    "RAM32M": 4,
    "RAM64M": 4,
    "RAM32X1D": 2,
    "RAM64X1D": 2,
    "RAM128X1D": 4,
    "RAM32X1S": 1,
    "RAM64X1S": 1,
    "RAM128X1S": 2,
    "RAM256X1S": 4,
    "SRL16E": 1,
    "SRLC32E": 1,
}
_FF = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")


@dataclass(frozen=True)
class Part:
    name: str
    lut: int
    ff: int
    dsp: int
    bram36: int


PARTS = {
    "xc7z020": Part("xc7z020", lut=53_200, ff=106_400, dsp=220, bram36=140),
}
PART_ALIASES = {"pynq-z2": "xc7z020", "xc7z020clg400-1": "xc7z020"}


class YosysError(RealmError):
    """yosys is missing or failed on the RTL."""


@dataclass(frozen=True)
class Resources:
    """Mapped 7-series primitives of one part of the design."""

    lut: int  # logic LUTs plus LUTs used as RAM or shift registers
    lutram: int  # of which used as RAM or shift registers
    ff: int
    dsp: int  # DSP48E1
    ramb18: int
    ramb36: int

    @property
    def bram36(self) -> float:
        """Block RAM in RAMB36 tiles (a RAMB18 is half of one)."""
        return self.ramb36 + self.ramb18 / 2

    @classmethod
    def from_cells(cls, cells: Counter) -> Resources:
        lutram = sum(n * _LUTRAM_LUTS[t] for t, n in cells.items() if t in _LUTRAM_LUTS)
        logic = sum(n for t, n in cells.items() if re.fullmatch(r"LUT[1-6]", t))
        return cls(
            lut=logic + lutram,
            lutram=lutram,
            ff=sum(cells[t] for t in _FF),
            dsp=cells["DSP48E1"],
            ramb18=cells["RAMB18E1"],
            ramb36=cells["RAMB36E1"],
        )

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            *(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other), strict=True))
        )

    def fits(self, part: str = "pynq-z2") -> bool:
        """Whether this fits the part (by its LUT, FF, DSP and BRAM capacity)."""
        cap = PARTS[PART_ALIASES.get(part, part)]
        return self.lut <= cap.lut and self.ff <= cap.ff and self.dsp <= cap.dsp and self.bram36 <= cap.bram36

    def utilisation(self, part: str = "pynq-z2") -> dict[str, float]:
        """Percent of the part used, per resource."""
        cap = PARTS[PART_ALIASES.get(part, part)]
        return {
            "lut": 100 * self.lut / cap.lut,
            "ff": 100 * self.ff / cap.ff,
            "dsp": 100 * self.dsp / cap.dsp,
            "bram36": 100 * self.bram36 / cap.bram36,
        }


@dataclass(frozen=True)
class ResourceReport:
    """Resources of realm_accel at one array size, split into array and checking logic."""

    n: int
    array: Resources  # realm_core: feeder, N x N PEs, drain
    checking: Resources  # ingress checksums, egress deviations, statistics
    top: Resources  # all of realm_accel, including registers and FIFOs
    yosys_version: str
    rtl_sha256: str
    seconds: float  # wall time of the yosys run that produced this (0 never: cached runs keep it)
    problems: tuple[str, ...] = field(default_factory=tuple)  # multi-driven nets etc.; Vivado rejects these

    def overhead_pct(self) -> dict[str, float | None]:
        """Checking logic relative to the array, in percent (None where the array uses none)."""
        return {
            name: (100 * getattr(self.checking, name) / getattr(self.array, name))
            if getattr(self.array, name)
            else None
            for name in ("lut", "ff", "dsp", "bram36")
        }

    def fits(self, part: str = "pynq-z2") -> bool:
        return self.top.fits(part)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["problems"] = list(self.problems)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ResourceReport:
        values = dict(data)
        for key in ("array", "checking", "top"):
            values[key] = Resources(**values[key])
        values["problems"] = tuple(values.get("problems", ()))
        return cls(**values)


def rtl_sources(rtl: Path = RTL) -> list[Path]:
    """realm_accel and everything it instantiates, as rtl/realm_accel.f lists them."""
    return filelist.sources("realm_accel", rtl=rtl)


def _yosys() -> tuple[str, str]:
    exe = shutil.which("yosys")
    if exe is None:
        raise YosysError("yosys not found on PATH (Debian/Ubuntu: apt install yosys)")
    out = subprocess.run([exe, "-V"], capture_output=True, text=True).stdout.strip()
    return exe, out


def _script(sources: list[Path], rtl: Path, n: int, stat_json: Path) -> str:
    files = " ".join(str(s) for s in sources)
    # no I/O pads or clock buffers: in the block design realm_accel is an IP, not the chip top
    return (
        f"read_verilog -I{rtl} {files}\n"
        f"chparam -set N {n} -set TIMING_EMU 0 -set INJECT 0 realm_accel\n"
        "synth_xilinx -family xc7 -top realm_accel -noiopad -noclkbuf\n"
        f"tee -q -o {stat_json} stat -json\n"
    )


def _base_name(module: str) -> str:
    parts = [p for p in re.split(r"\\+", module) if p]
    return parts[1] if parts[0].startswith("$paramod") else parts[0]


def _parse_stat_json(text: str) -> dict:
    """`stat -json` output; yosys 0.23 also prints the plain-text hierarchy tree into it, unquoted."""
    kept = [line for line in text.splitlines() if '"' in line or line.strip() in {"{", "}", "},", "]", "],"}]
    return json.loads("\n".join(kept))


def _totals(modules: dict[str, dict]) -> dict[str, Counter]:
    """Per module, the primitive cells of it and everything below it."""
    memo: dict[str, Counter] = {}

    def total(name: str) -> Counter:
        if name not in memo:
            cells: Counter = Counter()
            for cell_type, count in modules[name]["num_cells_by_type"].items():
                if cell_type in modules:
                    for sub_type, sub_count in total(cell_type).items():
                        cells[sub_type] += count * sub_count
                else:
                    cells[cell_type] += count
            memo[name] = cells
        return memo[name]

    return {name: total(name) for name in modules}


def _instances(modules: dict[str, dict]) -> Counter:
    """How often each module occurs in the design below the top (the module no other instantiates)."""
    children = {t for m in modules.values() for t in m["num_cells_by_type"] if t in modules}
    counts: Counter = Counter()

    def walk(name: str, times: int) -> None:
        counts[name] += times
        for cell_type, count in modules[name]["num_cells_by_type"].items():
            if cell_type in modules:
                walk(cell_type, times * count)

    for top in set(modules) - children:
        walk(top, 1)
    return counts


def _conflicts(log: str) -> tuple[str, ...]:
    # yosys repeats each warning in its closing summary, so bits are counted once each
    bits = {
        (f"{_base_name(m[1])}.{m[2]}", m[3])
        for m in re.finditer(r"multiple conflicting drivers for (\S+?)\.\\(\w+) \[(\d+)\]", log)
    }
    per_wire = Counter(wire for wire, _ in bits)
    return tuple(
        f"{wire}: {count} bit(s) with multiple conflicting drivers"
        for wire, count in sorted(per_wire.items())
    )


def _rtl_key(sources: list[Path], rtl: Path, n: int, yosys_version: str) -> str:
    return content_key(sources + filelist.headers(rtl), n, yosys_version, _script([], RTL, n, Path("stat.json")))


def measure(n: int = 8, rtl: Path = RTL, use_cache: bool = True) -> ResourceReport:
    """Synthesize realm_accel with yosys at array size `n` (or reuse a cached run of the same RTL)."""
    sources = rtl_sources(rtl)
    exe, version = _yosys()
    key = _rtl_key(sources, rtl, n, version)
    cached = cache_dir("resources") / f"{key[:24]}.json"
    if use_cache and cached.exists():
        return ResourceReport.from_dict(json.loads(cached.read_text()))

    with tempfile.TemporaryDirectory(prefix="realm-yosys-") as tmp:
        script = Path(tmp) / "synth.ys"
        stat_json = Path(tmp) / "stat.json"
        script.write_text(_script(sources, rtl, n, stat_json))
        start = time.monotonic()
        run = subprocess.run(
            [exe, "-q", "-l", str(Path(tmp) / "yosys.log"), str(script)], capture_output=True, text=True
        )
        seconds = time.monotonic() - start
        log = (Path(tmp) / "yosys.log").read_text() if (Path(tmp) / "yosys.log").exists() else run.stderr
        if run.returncode != 0 or not stat_json.exists():
            errors = [line for line in log.splitlines() if "ERROR" in line] or log.splitlines()[-1:]
            raise YosysError(f"yosys failed on {rtl}: {' '.join(errors)[:300]}")
        modules = _parse_stat_json(stat_json.read_text())["modules"]

    totals = _totals(modules)
    by_base: dict[str, Counter] = {}
    for name, count in _instances(modules).items():
        cells = by_base.setdefault(_base_name(name), Counter())
        for cell_type, n_cells in totals[name].items():
            cells[cell_type] += count * n_cells

    def part(names: tuple[str, ...]) -> Resources:
        missing = [m for m in names if m not in by_base]
        if missing:
            raise YosysError(f"yosys result has no module {', '.join(missing)}; was the RTL restructured?")
        return sum(
            (Resources.from_cells(by_base[m]) for m in names[1:]), Resources.from_cells(by_base[names[0]])
        )

    report = ResourceReport(
        n=n,
        array=part(ARRAY_MODULES),
        checking=part(CHECKING_MODULES),
        top=part(("realm_accel",)),
        yosys_version=version,
        rtl_sha256=key,
        seconds=round(seconds, 1),
        problems=_conflicts(log),
    )
    cached.write_text(json.dumps(report.to_dict(), indent=2))
    return report
