"""Die temperature and VCCINT of a PYNQ board, from the Linux IIO driver of its system monitor.

pynq does not read them. Zynq-7000 boards (PYNQ-Z2) have the XADC: IIO device "xadc"
(drivers/iio/adc/xilinx-xadc-core.c). Zynq UltraScale+ boards (ZCU104, KV260) have the AMS: IIO device
"xilinx-ams" ("ams" in older Xilinx kernels; drivers/iio/adc/xilinx-ams.c). Channels are found by name,
never by number (their numbers depend on the device tree): a channel's name is the extend_name in its
file names (in_voltage0_vccint_raw) or its *_label file. The value is (raw + offset) x scale, in milli
degrees Celsius or millivolts (the IIO sysfs ABI), with offset and scale as the driver prints them.

- XADC: one temperature channel (in_temp0_*), VCCINT named "vccint".
- AMS: the PL's temperature "pl_temp" (the fabric the array runs in; "ps_temp" is the processors'),
  the PL's VCCINT "vccint". The PS-side "vccint" of the AMS control block is a different supply and
  a mainline kernel names no channel at all: both are refused rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

IIO_DEVICES = Path("/sys/bus/iio/devices")
# IIO device name -> (temperature channel name, None: the driver's only one), VCCINT channel name
DRIVERS = {"xadc": (None, "vccint"), "xilinx-ams": ("pl_temp", "vccint"), "ams": ("pl_temp", "vccint")}
_FILE = re.compile(r"^in_(temp|voltage)(\d+)(?:_(\w+?))?_raw$")


class SensorsUnavailable(Exception):
    """No system monitor to read, or not the channels expected; the message says which."""


@dataclass(frozen=True)
class Channel:
    """One IIO channel: its raw file, and its offset (0 when the driver has none) and scale."""

    raw: Path
    offset: float
    scale: float

    def value(self) -> float:
        """(raw + offset) x scale, in the channel's IIO unit (milli degrees C, millivolts)."""
        return (int(self.raw.read_text().strip()) + self.offset) * self.scale


@dataclass(frozen=True)
class SensorReading:
    die_temp_c: float
    vccint_v: float


@dataclass(frozen=True)
class BoardSensors:
    driver: str  # the IIO device's name: xadc, xilinx-ams or ams
    device: Path
    temperature: Channel
    vccint: Channel

    def read(self) -> SensorReading:
        return SensorReading(self.temperature.value() / 1000.0, self.vccint.value() / 1000.0)


def find_sensors(root: Path = IIO_DEVICES) -> BoardSensors:
    """The board's system monitor under `root` (the IIO devices in sysfs); SensorsUnavailable when there is none."""
    devices = sorted(root.glob("iio:device*")) if root.is_dir() else []
    for device in devices:
        name_file = device / "name"
        name = name_file.read_text().strip() if name_file.exists() else ""
        if name in DRIVERS:
            temp_name, vccint_name = DRIVERS[name]
            return BoardSensors(name, device, _channel(device, "temp", temp_name), _channel(device, "voltage",
                                                                                             vccint_name))
    names = ", ".join(sorted(DRIVERS))
    raise SensorsUnavailable(f"no IIO device named {names} under {root} (is the XADC/AMS driver loaded?)")


def _channel(device: Path, kind: str, wanted: str | None) -> Channel:
    candidates = {}
    for raw in device.glob(f"in_{kind}*_raw"):
        match = _FILE.match(raw.name)
        if not match or match.group(1) != kind:
            continue
        index, extend = match.group(2), match.group(3)
        prefix = f"in_{kind}{index}{f'_{extend}' if extend else ''}"
        label = device / f"in_{kind}{index}_label"
        name = extend or (label.read_text().strip() if label.exists() else None)
        candidates[raw] = (name, prefix)
    if wanted is None:
        chosen = list(candidates) if len(candidates) == 1 else []
    else:
        chosen = [raw for raw, (name, _) in candidates.items() if name == wanted]
    if len(chosen) != 1:
        what = f"a {kind} channel named {wanted}" if wanted else f"exactly one {kind} channel"
        found = ", ".join(sorted(raw.name for raw in candidates)) or "none"
        raise SensorsUnavailable(f"{device} ({(device / 'name').read_text().strip()}) has not {what} "
                                 f"(found: {found})")
    raw = chosen[0]
    prefix = candidates[raw][1]
    return Channel(raw, _number(device, prefix, "offset", default=0.0), _number(device, prefix, "scale"))


def _number(device: Path, prefix: str, attribute: str, default: float | None = None) -> float:
    """The channel's own attribute file, else the one the driver shares across channels of its type."""
    kind = prefix.split("_")[1].rstrip("0123456789")
    for path in (device / f"{prefix}_{attribute}", device / f"in_{kind}_{attribute}"):
        if path.exists():
            return float(path.read_text().strip())
    if default is None:
        raise SensorsUnavailable(f"{device}: no {prefix}_{attribute}")
    return default
