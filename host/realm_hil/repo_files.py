"""The repository's top-level folders that the package reads at run time, found inside the package.

realm_hil/repo/ mirrors the repository's top level. In a checkout (and so in an editable install)
its entries are relative symlinks to rtl/, sim_fallback/, fpga/ and bitstreams/, which stay the one
copy in git; building a wheel follows the symlinks and copies the files that pyproject's
package-data names, so an installed package finds the same files at the same place.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# the package is always installed unpacked (never zipped), so its resources are plain files
ROOT = Path(str(files("realm_hil") / "repo"))
RTL = ROOT / "rtl"  # the Verilog, its .f source lists and regmap.yaml
HARNESS = ROOT / "sim_fallback"  # the C++ harness of the Verilated accelerator
FPGA = ROOT / "fpga"  # the Vivado scripts; board.tcl holds each board's part and clocks
BITSTREAMS = ROOT / "bitstreams"  # the overlay manifest; the .bit/.hwh files beside it are never shipped
