"""realm_axil_regs: every register of rtl/regmap.yaml against a model of the map: reset values,
ro/rw/wo access, byte strobes, sign extension, the L, injection and checksum-L table windows and
their ends, unmapped addresses (read 0, writes ignored, OKAY as the RTL documents), the
configuration outputs, CTRL's self-clearing commands, STATUS and the GEMM totals."""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
import pytest
import yaml
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, gather
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from cocotb_build import rtl_sources, run

REGMAP = Path(__file__).resolve().parents[3] / "rtl" / "regmap.yaml"
WORD = 0xFFFFFFFF

# What the map says in prose (regmap.yaml's docs, rtl/README.md) about each writable register:
# the bits it keeps (registers with fields keep their fields), and which values read back
# sign-extended. The test refuses a map with a writable register missing here.
KEPT_BITS = {"ALPHA": 16, "BETA": 16, "FREQ_MIN": 16, "MSD_THRESH_LO": 32, "MSD_THRESH_HI": 32, "INJ_TAG": 16}
SIGNED = {"ALPHA", "BETA", "L_TABLE", "CK_L_TABLE"}
# tables: bits kept per entry and reset value ("reset 31": exact timing)
TABLES = {"L_TABLE": (8, 31), "INJ_TABLE": (32, 0), "CK_L_TABLE": (8, 31)}
# present only in builds with INJECT=1 (the injection controls) or EMU_CHECKS=1
INJECT_ONLY = {"INJ_TAG", "INJ_TABLE"}
INJECT_ONLY_FIELDS = {"CONFIG": ("INJ_EN", "INJ_MATCH_TAG")}
EMU_CHECKS_ONLY = {"CK_L_TABLE"}


def field_mask(fields: dict, names=None) -> int:
    mask = 0
    for name, (msb, lsb) in fields.items():
        if names is None or name in names:
            mask |= ((1 << (msb - lsb + 1)) - 1) << lsb
    return mask


def sign_extend(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return (value - (1 << bits) if value >> (bits - 1) else value) & WORD


def merge(old: int, data: int, strb: int) -> int:
    return sum(((data if strb >> b & 1 else old) & (0xFF << 8 * b)) for b in range(4))


@dataclass
class Tile:
    """One tile_done pulse of the statistics unit."""

    any_err: int
    recover: int
    msd: int
    max_abs: int
    freq: int
    freq_eff: int
    row_freq: int
    hist: list[int]


class RegisterModel:
    """The register file as regmap.yaml and rtl/README.md describe it, for one build."""

    def __init__(self, spec: dict, n: int, timing_emu: int, inject: int, emu_checks: int):
        self.spec = spec
        self.n = n
        self.inject = bool(inject)
        self.params = n | timing_emu << 8 | inject << 9 | emu_checks << 10
        self.regs = {r["name"]: r for r in spec["registers"]}
        self.offset = {name: r["offset"] for name, r in self.regs.items()}
        self.name_at = {r["offset"]: name for name, r in self.regs.items()}
        self.tables = {}
        for a in spec["arrays"]:
            count = {"32": 32, "N*N": n * n, "3*N": 3 * n}[str(a["count"])]
            present = not (a["name"] in INJECT_ONLY and not inject) and not (a["name"] in EMU_CHECKS_ONLY
                                                                              and not emu_checks)
            self.tables[a["name"]] = (a["offset"], count, a["access"], present)
        self.kept = {}
        for name, r in self.regs.items():
            if r["access"] != "rw":
                continue
            if "fields" in r:
                names = None
                if not inject and name in INJECT_ONLY_FIELDS:
                    names = set(r["fields"]) - set(INJECT_ONLY_FIELDS[name])
                self.kept[name] = field_mask(r["fields"], names)
            else:
                assert name in KEPT_BITS, f"regmap.yaml has a writable {name} this test does not model"
                self.kept[name] = 0 if name in INJECT_ONLY and not inject else (1 << KEPT_BITS[name]) - 1
        self.reset()
        self.busy = 0

    def reset(self):
        self.rw = dict.fromkeys(self.kept, 0)
        self.table = {name: [TABLES[name][1] if name in TABLES else 0] * count
                      for name, (_, count, _, _) in self.tables.items()}
        self.framing_err = 0
        self.clear_totals()

    def clear_totals(self):
        self.totals = dict.fromkeys(["TILES_DONE", "TILES_ERR", "TILES_RECOVER", "FREQ_TOTAL", "FREQ_EFF_TOTAL",
                                     "MAX_ABS", "ROW_FREQ_TOTAL", "BUSY_CYCLES"], 0)
        self.msd_total = 0
        self.table["HIST"] = [0] * 32

    def decode(self, addr: int):
        """(kind, name, index) of a word address: kind reg, table or None (unmapped)."""
        if addr in self.name_at:
            return "reg", self.name_at[addr], None
        for name, (base, count, _, present) in self.tables.items():
            if present and base <= addr < base + 4 * count:
                return "table", name, (addr - base) // 4
        return None, None, None

    def where(self, addr: int) -> str:
        kind, name, index = self.decode(addr)
        return f"{name}[{index}]" if kind == "table" else name or "unmapped"

    def mapped(self) -> list[int]:
        words = list(self.name_at)
        for base, count, _, present in self.tables.values():
            if present:
                words += [base + 4 * i for i in range(count)]
        return sorted(words)

    def write(self, addr: int, data: int, strb: int) -> list[str]:
        """Apply one write; returns the commands it issued (CTRL)."""
        kind, name, index = self.decode(addr)
        if kind == "table":
            base, count, access, _ = self.tables[name]
            if access == "rw":
                bits = TABLES[name][0]
                self.table[name][index] = merge(self.table[name][index], data, strb) & ((1 << bits) - 1)
            return []
        if kind is None:
            return []
        access = self.regs[name]["access"]
        if access == "rw":
            self.rw[name] = merge(self.rw[name], data, strb) & self.kept[name]
        elif name == "CTRL" and strb & 1:
            fields = self.regs["CTRL"]["fields"]
            done = [cmd for cmd in ("SOFT_RESET", "CLEAR_STATS") if data >> fields[cmd][1] & 1]
            if "SOFT_RESET" in done:
                self.framing_err = 0
            if done:
                self.clear_totals()
            return done
        return []

    def read(self, addr: int) -> int:
        kind, name, index = self.decode(addr)
        if kind == "table":
            value = self.table[name][index]
            return sign_extend(value, TABLES[name][0]) if name in SIGNED else value
        if kind is None:
            return 0
        if name in self.rw:
            value = self.rw[name]
            return sign_extend(value, 16) if name in SIGNED else value
        fixed = {"ID": self.spec["id"], "VERSION": self.spec["version"], "PARAMS": self.params, "CTRL": 0,
                 "STATUS": self.busy | self.framing_err << 1,
                 "MSD_TOTAL_LO": self.msd_total & WORD, "MSD_TOTAL_HI": self.msd_total >> 32,
                 "BUSY_CYCLES_LO": self.totals["BUSY_CYCLES"] & WORD,
                 "BUSY_CYCLES_HI": self.totals["BUSY_CYCLES"] >> 32}
        return fixed[name] if name in fixed else self.totals[name]

    def tile(self, t: Tile):
        tot = self.totals
        tot["TILES_DONE"] += 1
        tot["TILES_ERR"] += t.any_err
        tot["TILES_RECOVER"] += t.recover
        tot["FREQ_TOTAL"] = (tot["FREQ_TOTAL"] + t.freq) & WORD
        tot["FREQ_EFF_TOTAL"] = (tot["FREQ_EFF_TOTAL"] + t.freq_eff) & WORD
        tot["ROW_FREQ_TOTAL"] = (tot["ROW_FREQ_TOTAL"] + t.row_freq) & WORD
        tot["MAX_ABS"] = max(tot["MAX_ABS"], t.max_abs)
        self.msd_total = (self.msd_total + t.msd) % (1 << 64)
        self.table["HIST"] = [(h + b) & WORD for h, b in zip(self.table["HIST"], t.hist, strict=True)]

    def outputs(self) -> dict:
        """The configuration ports the datapath sees."""
        cfg = self.regs["CONFIG"]["fields"]

        def bit(name):
            return self.rw["CONFIG"] >> cfg[name][1] & 1

        def pack(values, bits):
            return sum(v << (bits * i) for i, v in enumerate(values))

        ck = self.table["CK_L_TABLE"] if self.tables["CK_L_TABLE"][3] else [31] * (3 * self.n)
        return {
            "timing_en": bit("TIMING_EN"), "inj_en": bit("INJ_EN"), "inj_match_tag": bit("INJ_MATCH_TAG"),
            "inj_tag": self.rw["INJ_TAG"], "policy_mode": self.rw["POLICY"], "alpha": self.rw["ALPHA"],
            "beta": self.rw["BETA"], "freq_min": self.rw["FREQ_MIN"],
            "msd_thresh": self.rw["MSD_THRESH_HI"] << 32 | self.rw["MSD_THRESH_LO"],
            "l_table": pack(self.table["L_TABLE"], 8), "ck_l_table": pack(ck, 8),
        }

    def inj_row(self, row: int) -> int:
        if not self.inject:
            return 0
        n = self.n
        return sum(v << (32 * c) for c, v in enumerate(self.table["INJ_TABLE"][row * n:(row + 1) * n]))


def cycle_pause(_channel: int = 0):
    return itertools.cycle([1, 1, 1, 0])


def random_pause(seed: int, p: float = 0.4):
    rng = random.Random(seed)
    while True:
        yield int(rng.random() < p)


class TB:
    def __init__(self, dut, seed: int = 0):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.rng = random.Random(seed)
        self.n = int(dut.N.value)
        self.model = RegisterModel(yaml.safe_load(REGMAP.read_text()), self.n, int(dut.TIMING_EMU.value),
                                   int(dut.INJECT.value), int(dut.EMU_CHECKS.value))
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        logging.getLogger(f"cocotb.{dut._name}.s_axil").setLevel(logging.WARNING)
        for name in ("busy", "framing_err", "tile_done", "tile_any_err", "tile_recover", "tile_msd", "tile_max_abs",
                     "tile_freq", "tile_freq_eff", "tile_row_freq", "tile_hist", "inj_row_idx"):
            getattr(dut, name).value = 0
        self.soft_resets = 0
        self.commands = {"SOFT_RESET": 0, "CLEAR_STATS": 0}
        cocotb.start_soon(self._watch())

    def set_idle_generator(self, generator=None):
        if generator:
            self.axil.write_if.aw_channel.set_pause_generator(generator(1))
            self.axil.write_if.w_channel.set_pause_generator(generator(2))
            self.axil.read_if.ar_channel.set_pause_generator(generator(3))

    def set_backpressure_generator(self, generator=None):
        if generator:
            self.axil.write_if.b_channel.set_pause_generator(generator(4))
            self.axil.read_if.r_channel.set_pause_generator(generator(5))

    async def cycle_reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        self.model.reset()

    async def _watch(self):
        """Count soft_reset pulses (one cycle each) and busy cycles, and hold B and R to the AXI
        rules: a response stays valid with the same payload until taken."""
        dut = self.dut
        prev_soft = 0
        held_b = held_r = None
        while True:
            await ReadOnly()
            soft = int(dut.soft_reset.value)
            assert not (soft and prev_soft), "soft_reset longer than one cycle"
            self.soft_resets += soft
            prev_soft = soft
            self.model.totals["BUSY_CYCLES"] += int(dut.busy.value)
            b = (int(dut.s_axil_bvalid.value), int(dut.s_axil_bresp.value))
            r = (int(dut.s_axil_rvalid.value), int(dut.s_axil_rdata.value), int(dut.s_axil_rresp.value))
            assert held_b is None or b == held_b, f"B changed before bready: {held_b} -> {b}"
            assert held_r is None or r == held_r, f"R changed before rready: {held_r} -> {r}"
            held_b = b if b[0] and not dut.s_axil_bready.value else None
            held_r = r if r[0] and not dut.s_axil_rready.value else None
            await RisingEdge(dut.clk)

    async def write(self, addr: int, data: int, strb: int = 0xF):
        """Write the bytes of `data` selected by `strb` (contiguous lanes) to word `addr`."""
        lanes = [b for b in range(4) if strb >> b & 1]
        first, last = lanes[0], lanes[-1]
        assert lanes == list(range(first, last + 1))
        payload = (data & WORD).to_bytes(4, "little")[first:last + 1]
        resp = await self.axil.write(addr + first, payload)
        assert resp.resp == AxiResp.OKAY, f"write 0x{addr:04x}: {resp.resp}"
        self.commands_issued(self.model.write(addr, data, strb))

    def commands_issued(self, commands: list[str]):
        for cmd in commands:
            self.commands[cmd] += 1

    async def read(self, addr: int) -> int:
        resp = await self.axil.read(addr, 4)
        assert resp.resp == AxiResp.OKAY, f"read 0x{addr:04x}: {resp.resp}"
        return int.from_bytes(resp.data, "little")

    async def read_bytes(self, addr: int, strb: int) -> int:
        """Read the contiguous byte lanes of `strb` from word `addr` (an unaligned address for a
        sub-word read, as a CPU's byte load gives); the other lanes come back 0."""
        lanes = [b for b in range(4) if strb >> b & 1]
        resp = await self.axil.read(addr + lanes[0], len(lanes))
        assert resp.resp == AxiResp.OKAY, f"read 0x{addr + lanes[0]:04x}: {resp.resp}"
        return int.from_bytes(resp.data, "little") << (8 * lanes[0])

    async def check_read(self, addr: int, strb: int = 0xF):
        got = await self.read_bytes(addr, strb)
        mask = sum(0xFF << (8 * b) for b in range(4) if strb >> b & 1)
        want = self.model.read(addr) & mask
        assert got == want, (
            f"0x{addr:04x} ({self.model.where(addr)}) lanes {strb:04b}: read 0x{got:08x}, want 0x{want:08x}")

    async def check_all(self, extra: list[int] = ()):
        """Every mapped word, the given unmapped ones, and every configuration output."""
        words = self.model.mapped() + list(extra)
        # the master keeps several reads in flight, as a CPU's interconnect would
        results = await gather(*(self.axil.read(a, 4) for a in words))
        for addr, resp in zip(words, results, strict=True):
            assert resp.resp == AxiResp.OKAY
            got = int.from_bytes(resp.data, "little")
            want = self.model.read(addr)
            assert got == want, f"0x{addr:04x} ({self.model.where(addr)}): read 0x{got:08x}, want 0x{want:08x}"
        await self.check_outputs()

    async def check_outputs(self):
        dut = self.dut
        await FallingEdge(dut.clk)
        for name, want in self.model.outputs().items():
            got = int(getattr(dut, name).value)
            assert got == want, f"output {name}: 0x{got:x}, want 0x{want:x}"
        for row in range(self.n):
            dut.inj_row_idx.value = row
            await FallingEdge(dut.clk)
            assert int(dut.inj_row.value) == self.model.inj_row(row), f"inj_row {row}"
        assert self.soft_resets == self.commands["SOFT_RESET"], (
            f"{self.soft_resets} soft_reset pulses for {self.commands['SOFT_RESET']} commands")

    def unmapped(self) -> list[int]:
        """Unmapped words: every gap of the first 256 bytes, the words right past each table and
        the ends of each window, and a random sample of the rest."""
        mapped = set(self.model.mapped())
        edges = list(range(0, 0x100, 4)) + [0x100, 0xFFC, 0x3FFC]
        for base, count, _, _ in self.model.tables.values():
            edges += [base + 4 * count, base + 4 * count + 4, (base | 0xFFF) - 3, base]
        edges += [4 * self.rng.randrange(0x1000) for _ in range(64)]
        return sorted({a for a in edges if a not in mapped and a < 0x4000})

    async def tile_done(self, t: Tile):
        dut = self.dut
        dut.tile_any_err.value = t.any_err
        dut.tile_recover.value = t.recover
        dut.tile_msd.value = t.msd
        dut.tile_max_abs.value = t.max_abs
        dut.tile_freq.value = t.freq
        dut.tile_freq_eff.value = t.freq_eff
        dut.tile_row_freq.value = t.row_freq
        dut.tile_hist.value = sum(b << (8 * i) for i, b in enumerate(t.hist))
        dut.tile_done.value = 1
        await RisingEdge(dut.clk)
        dut.tile_done.value = 0
        self.model.tile(t)

    def random_tile(self) -> Tile:
        rng = self.rng
        big = rng.random() < 0.3
        return Tile(rng.getrandbits(1), rng.getrandbits(1),
                    rng.getrandbits(64) if big else rng.getrandbits(36), rng.getrandbits(32),
                    rng.getrandbits(16), rng.getrandbits(16), rng.getrandbits(16),
                    [rng.getrandbits(8) if rng.random() < 0.5 else 0 for _ in range(32)])

    def random_value(self) -> int:
        return self.rng.choice([0, WORD, 0x80, 0x7F, 0x8000, 0x7FFF, 0x80000000, 0xFFFFFF80, 31, 32,
                                self.rng.getrandbits(32), self.rng.getrandbits(32)])

    def random_strb(self) -> int:
        first = self.rng.randrange(4)
        last = self.rng.randrange(first, 4)
        return self.rng.choice([0xF, 0xF, ((1 << (last + 1)) - 1) & ~((1 << first) - 1)])


@cocotb.test()
async def run_test_reset_values(dut):
    """After reset every mapped word reads its reset value, every unmapped one 0, outputs idle."""
    tb = TB(dut)
    await tb.cycle_reset()
    assert await tb.read(tb.model.offset["ID"]) == tb.model.spec["id"]
    await tb.check_all(tb.unmapped())


@cocotb.test()
@cocotb.parametrize(idle_inserter=[None, cycle_pause, random_pause], backpressure_inserter=[None, random_pause])
async def run_test_access(dut, idle_inserter, backpressure_inserter):
    """Random writes with random byte strobes to registers, tables and unmapped words, each read
    back: rw keep their bits, ro ignore writes, wo read 0, signed values read sign-extended."""
    tb = TB(dut, seed=1)
    await tb.cycle_reset()
    tb.set_idle_generator(idle_inserter)
    tb.set_backpressure_generator(backpressure_inserter)
    model = tb.model
    rw = [model.offset[name] for name in model.kept]
    other = [a for name, a in model.offset.items() if name not in model.kept and name != "CTRL"]
    tables = [a for a in model.mapped() if model.decode(a)[0] == "table"]
    unmapped = tb.unmapped()
    for i in range(300):
        addr = tb.rng.choice(tb.rng.choice([rw, rw, other, tables, tables, unmapped]))
        await tb.write(addr, tb.random_value(), tb.random_strb())
        await tb.check_read(addr, tb.random_strb())
        if i % 100 == 99:
            await tb.check_all()
    # a reset brings every register and table back, whatever was written
    await tb.cycle_reset()
    await tb.check_all()


@cocotb.test()
async def run_test_sub_word(dut):
    """Each byte and half-word of every writable register and of the first table entries, written
    and read through its own (unaligned) address with the matching strobes."""
    tb = TB(dut, seed=4)
    await tb.cycle_reset()
    model = tb.model
    words = [model.offset[name] for name in model.kept]
    words += [base for base, _, access, present in model.tables.values() if present and access == "rw"]
    for addr in words:
        for strb in (0x1, 0x2, 0x4, 0x8, 0x3, 0xC, 0x6, 0xE, 0x7):
            await tb.write(addr, tb.rng.getrandbits(32), strb)
            await tb.check_read(addr)
            await tb.check_read(addr, strb)
    await tb.check_all()


@cocotb.test()
@cocotb.parametrize(backpressure_inserter=[None, random_pause])
async def run_test_in_flight(dut, backpressure_inserter):
    """Reads and writes issued together, many in flight on both channels, to different words."""
    tb = TB(dut, seed=2)
    await tb.cycle_reset()
    tb.set_idle_generator(random_pause)
    tb.set_backpressure_generator(backpressure_inserter)
    model = tb.model
    words = model.mapped()
    for _ in range(6):
        tb.rng.shuffle(words)
        writes = [(a, tb.random_value(), tb.random_strb()) for a in words[:40]
                  if model.decode(a)[1] not in ("CTRL", "STATUS")]
        reads = words[40:80]
        want = [model.read(a) for a in reads]
        ops = [tb.write(*w) for w in writes] + [tb.read(a) for a in reads]
        results = await gather(*ops)
        for addr, got, expected in zip(reads, results[len(writes):], want, strict=True):
            assert got == expected, f"0x{addr:04x}: read 0x{got:08x} while writing elsewhere, want 0x{expected:08x}"
        await tb.check_all()


@cocotb.test()
async def run_test_totals_and_commands(dut):
    """GEMM totals from tile_done (with 64-bit msd wrap), BUSY_CYCLES and STATUS from the datapath,
    CLEAR_STATS and SOFT_RESET clear them (SOFT_RESET also FRAMING_ERR) and keep the configuration."""
    tb = TB(dut, seed=3)
    await tb.cycle_reset()
    dut = tb.dut
    model = tb.model
    ctrl = model.offset["CTRL"]
    status = model.offset["STATUS"]
    fields = model.regs["CTRL"]["fields"]
    for name in model.kept:
        await tb.write(model.offset[name], tb.random_value())
    for round_ in range(4):
        for _ in range(tb.rng.randrange(5, 40)):
            await tb.tile_done(tb.random_tile())
            await ClockCycles(dut.clk, tb.rng.choice([0, 0, 1, 3]))
        # STATUS.BUSY follows the datapath's busy live; BUSY_CYCLES counts the cycles it was high
        dut.busy.value = 1
        model.busy = 1
        await tb.check_read(status)
        await ClockCycles(dut.clk, tb.rng.randrange(200))
        dut.busy.value = 0
        model.busy = 0
        await tb.check_read(status)
        await tb.check_read(model.offset["BUSY_CYCLES_LO"])
        if round_ == 1:
            dut.framing_err.value = 1
            await RisingEdge(dut.clk)
            dut.framing_err.value = 0
            model.framing_err = 1
        await tb.check_all()
        # the write strobe must cover byte 0 for a command to act
        await tb.write(ctrl, WORD, 0xE)
        await tb.check_all()
        command = ["CLEAR_STATS", "SOFT_RESET"][round_ % 2]
        await tb.write(ctrl, 1 << fields[command][1])
        await tb.check_all()
        assert model.totals["TILES_DONE"] == 0
    assert tb.commands == {"SOFT_RESET": 2, "CLEAR_STATS": 2}


@pytest.mark.rtl
@pytest.mark.parametrize(("n", "timing_emu", "inject", "emu_checks"), [(4, 1, 1, 1), (8, 0, 0, 0)])
def test_realm_axil_regs(n, timing_emu, inject, emu_checks):
    run(
        toplevel="realm_axil_regs",
        sources=rtl_sources("realm_axil_regs"),
        test_module="test_realm_axil_regs",
        test_dir=Path(__file__).parent,
        parameters={"N": n, "TIMING_EMU": timing_emu, "INJECT": inject, "EMU_CHECKS": emu_checks},
    )
