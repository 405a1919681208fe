"""The overlay of the simulated ZU board that `realm-hil serve --pynq-remote` stands in for.

A .bit, a .hwh and a manifest entry, as `make -C fpga install` would leave them, describing the PL
the PYNQ.remote sim server simulates: the block design of fpga/common/build_bd.tcl (realm_accel, its
AXI DMA and the Clocking Wizard behind the PS) at ZynqMP addresses, or that design without its
wizard. The client loads it exactly like a built overlay: sha256 and register map checked against
the manifest, .hwh parsed by pynq, .bit converted by pynq and written to the board's fpga_manager.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from .. import regmap
from ..errors import InputError
from ..fpga import manifest as mf
from ..fpga.tcl_check import board_settings
from ..repo_files import FPGA

# /proc/device-tree/chosen/pynq_board on the PYNQ images (pynq's selftest matches it lowercased)
BOARD_NAMES = {"zcu104": "ZCU104", "kv260": "KV260"}
# the PL on M_AXI_HPM0_FPD, where Vivado's assign_bd_address puts it on ZynqMP
PL_ACCEL_BASE = 0xA000_0000
PL_DMA_BASE = 0xA001_0000
PL_WIZARD_BASE = 0xA002_0000
PL_DMA_RANGE = 0x1_0000
WIZARD_RANGE = 0x1_0000


@dataclass(frozen=True)
class SimBoardConfig:
    board: str = "zcu104"  # the ZU board simulated: its name, timing profile and overlay entry
    array_n: int = 8
    seed: int = 0  # per-PE variation map of the modeled array clock
    clock_wizard: bool = True  # False: a PL whose array clock no host can move (realm-hil refuses it)

    def __post_init__(self) -> None:
        if self.board not in BOARD_NAMES:
            raise InputError(f"PYNQ.remote runs on ZU boards: choose one of {', '.join(BOARD_NAMES)}, "
                             f"got {self.board!r}")


def _board_tcl(board: str) -> dict[str, str]:
    return board_settings(FPGA / board / "board.tcl")


def sim_bitfile(config: SimBoardConfig) -> bytes:
    """A .bit whose configuration data names the simulated PL; pynq reads its header like any other."""
    part = _board_tcl(config.board)["realm_part"]

    def field(key: bytes, text: str) -> bytes:
        value = text.encode() + b"\x00"
        return key + struct.pack(">H", len(value)) + value

    wizard = "" if config.clock_wizard else ", no clocking wizard"
    payload = (f"realm-hil simulated PL: {config.board}, realm_accel N={config.array_n}{wizard}, "
               f"register map {regmap.VERSION_VALUE:#010x}").encode()
    payload += b"\x00" * (-len(payload) % 4)  # fpga_manager takes whole 32-bit words
    return b"".join([
        struct.pack(">H", 9), bytes.fromhex("0ff00ff00ff00ff000"), struct.pack(">H", 1),
        field(b"a", "realm_hil;UserID=0XFFFFFFFF;Version=sim"),
        field(b"b", part),
        field(b"c", "2000/01/01"),
        field(b"d", "00:00:00"),
        b"e", struct.pack(">I", len(payload)), payload,
    ])


def sim_hwh(config: SimBoardConfig) -> str:
    """The .hwh of the simulated PL: what pynq needs of the block design to build its ip_dict and clocks."""
    n = config.array_n
    safe_mhz = float(_board_tcl(config.board)["realm_safe_mhz"])
    root = ElementTree.Element("EDKSYSTEM", EDWVERSION="1.2")
    ElementTree.SubElement(root, "SYSTEMINFO", NAME="realm_hil", ARCH="zynquplus")
    ElementTree.SubElement(root, "EXTERNALPORTS")
    ElementTree.SubElement(root, "EXTERNALINTERFACES")
    modules = ElementTree.SubElement(root, "MODULES")

    def module(name: str, vlnv: str, params: dict, slaves=(), masters=()) -> ElementTree.Element:
        # IS_PL as Vivado writes it: pynqmetadata before 0.2 (with pynq 3.x) finds the PS by it alone
        modtype = vlnv.split(":")[2]
        element = ElementTree.SubElement(modules, "MODULE", FULLNAME=f"/{name}", INSTANCE=name,
                                         IS_PL="FALSE" if modtype == "zynq_ultra_ps_e" else "TRUE",
                                         MODTYPE=modtype, VLNV=vlnv)
        parameters = ElementTree.SubElement(element, "PARAMETERS")
        for key, value in params.items():
            ElementTree.SubElement(parameters, "PARAMETER", NAME=key, VALUE=str(value))
        ElementTree.SubElement(element, "PORTS")
        interfaces = ElementTree.SubElement(element, "BUSINTERFACES")
        for kind, names in (("SLAVE", slaves), ("MASTER", masters)):
            for itf in names:
                ElementTree.SubElement(interfaces, "BUSINTERFACE", NAME=itf, TYPE=kind,
                                       VLNV="xilinx.com:interface:aximm:1.0")
        return element

    # HPM0 and HP0 at 128 bits: Overlay.download programs those AXI port widths into the PS; pl_clk0
    # is the fixed clock of the AXI side and the wizard's input
    ps_params = {"C_MAXIGP0_DATA_WIDTH": 128, "C_SAXIGP2_DATA_WIDTH": 128}
    for i in range(4):
        ps_params.update({
            f"PSU__FPGA_PL{i}_ENABLE": int(i == 0),
            f"PSU__CRL_APB__PL{i}_REF_CTRL__SRCSEL": "IOPLL",
            f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR0": 15,
            f"PSU__CRL_APB__PL{i}_REF_CTRL__DIVISOR1": 1,
            f"PSU__CRL_APB__PL{i}_REF_CTRL__ACT_FREQMHZ": safe_mhz,
        })
    ps = module("ps", "xilinx.com:ip:zynq_ultra_ps_e:3.5", ps_params,
                slaves=["S_AXI_HP0_FPD"], masters=["M_AXI_HPM0_FPD"])
    memory_map = ElementTree.SubElement(ps, "MEMORYMAP")
    cells = regmap.BD_CELLS
    slaves = [(cells["accelerator"], "s_axil", PL_ACCEL_BASE, regmap.WINDOW),
              (cells["dma"], "S_AXI_LITE", PL_DMA_BASE, PL_DMA_RANGE)]
    if config.clock_wizard:
        slaves.append((cells["clock_wizard"], "s_axi_lite", PL_WIZARD_BASE, WIZARD_RANGE))
    for cell, itf, base, size in slaves:
        ElementTree.SubElement(memory_map, "MEMRANGE", ADDRESSBLOCK="Reg", BASENAME="C_BASEADDR",
                               BASEVALUE=f"0x{base:08X}", HIGHNAME="C_HIGHADDR",
                               HIGHVALUE=f"0x{base + size - 1:08X}", INSTANCE=cell,
                               MASTERBUSINTERFACE="M_AXI_HPM0_FPD", MEMTYPE="REGISTER", SLAVEBUSINTERFACE=itf)
    module(cells["accelerator"], "realm_hil:hil:realm_accel:1.0", {"N": n},
           slaves=["s_axil"])
    module(cells["dma"], "xilinx.com:ip:axi_dma:7.1", {
        "c_include_sg": 0, "c_micro_dma": 0, "c_sg_length_width": 26,
        "c_include_mm2s": 1, "c_include_s2mm": 1, "c_include_mm2s_dre": 0, "c_include_s2mm_dre": 0,
        "c_m_axi_mm2s_data_width": 16 * n, "c_m_axis_mm2s_tdata_width": 16 * n,
        "c_m_axi_s2mm_data_width": 32 * n, "c_s_axis_s2mm_tdata_width": 32 * n,
    }, slaves=["S_AXI_LITE"], masters=["M_AXI_MM2S", "M_AXI_S2MM"])
    if config.clock_wizard:
        module(cells["clock_wizard"], "xilinx.com:ip:clk_wiz:6.0",
               {"USE_DYN_RECONFIG": "true", "USE_SAFE_CLOCK_STARTUP": "true"}, slaves=["s_axi_lite"])
    return ElementTree.tostring(root, encoding="unicode")


def write_sim_overlay(directory: Path, config: SimBoardConfig | None = None) -> Path:
    """The simulated board's overlay in a bitstreams/-style folder with its manifest; returns the manifest path."""
    config = config or SimBoardConfig()
    folder = directory / config.board
    folder.mkdir(parents=True, exist_ok=True)
    bit, hwh = folder / "realm_hil.bit", folder / "realm_hil.hwh"
    bit.write_bytes(sim_bitfile(config))
    hwh.write_text(sim_hwh(config))
    tcl = _board_tcl(config.board)
    entry = mf.Overlay(
        board=config.board,
        bitfile=f"{config.board}/{bit.name}",
        hwh=f"{config.board}/{hwh.name}",
        bit_sha256=mf.sha256_of(bit),
        hwh_sha256=mf.sha256_of(hwh),
        part=tcl["realm_part"],
        array_n=config.array_n,
        rated_mhz=float(tcl["realm_rated_mhz"]),
        safe_mhz=float(tcl["realm_safe_mhz"]),
        regmap_version=regmap.VERSION_VALUE,
        vivado_version="0000.0",  # not built by Vivado: the manifest's format has no word for that
        rtl_git_rev="unknown",
        wns_ns=0.0,
        whs_ns=0.0,
    )
    path = directory / "manifest.json"
    path.write_text(mf.Manifest(overlays=(entry,)).to_json())
    return path
