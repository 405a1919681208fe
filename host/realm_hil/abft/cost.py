"""What protection costs: modeled array time, energy, and the counts a recovery policy produces.

Time model (output-stationary n x n array, rtl/README.md "Stream framing"). A tile takes one
header beat and K operand beats in, and n result beats, two checksum beats and ceil(16/n)
statistics beats out; the PE result registers are double-buffered, so back to back tiles cost
max(1 + K, out beats) array cycles each, and every GEMM call adds the feeder skew and drain of one
tile (about 3n cycles). The array clock is taken to set the throughput of the whole datapath, as
in an ASIC or a design whose stream side is widened to match; on the PYNQ build the operand
ingress runs on the safe clock and would cap the gain at its own rate.

Energy model: E = e_mac * (V / V_nom)^2 * MACs issued + P_static * time. Dynamic energy per
operation does not depend on the clock, only on the supply; static energy shrinks with run time.
The default numbers are order-of-magnitude estimates, to be replaced by board measurements:
- e_mac = 3 pJ: an 8-bit multiply (0.2 pJ) plus a 32-bit add (0.1 pJ) in 45 nm ASIC logic
  (Horowitz, ISSCC 2014, "Computing's energy problem") times the ~10x dynamic-power gap between
  FPGA fabric with hard DSP blocks and standard cells (Kuon and Rose, IEEE TCAD 2007).
- P_static = 0.12 W: the programmable-logic static power Xilinx's power estimator reports for an
  XC7Z020 at 25 C, typical process.
Host recomputation is modeled at host_macs_per_s = 1e9 INT8 MAC/s (two Cortex-A9 cores at
650 MHz on the PYNQ-Z2 sustaining somewhat under one NEON INT8 MAC per cycle each) drawing
host_power_w = 1.5 W (the Zynq-7000 processing system under load, same estimator), while the
array idles at its static power.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..tiling import TilePlan


@dataclass(frozen=True)
class CostModel:
    mac_energy_j: float = 3e-12
    static_power_w: float = 0.12
    host_macs_per_s: float = 1e9
    host_power_w: float = 1.5

    def tile_cycles(self, k: int, array_n: int) -> int:
        out_beats = array_n + 2 + -(-16 // array_n)
        return max(1 + k, out_beats)

    def call_cycles(self, tiles: int, k: int, array_n: int) -> int:
        """Array cycles of one GEMM call that computes `tiles` output tiles of reduction length k."""
        return tiles * self.tile_cycles(k, array_n) + 3 * array_n if tiles else 0

    def dynamic_energy(self, macs: int, voltage_ratio: float = 1.0) -> float:
        return self.mac_energy_j * voltage_ratio**2 * macs

    def static_energy(self, seconds: float) -> float:
        return self.static_power_w * seconds

    def host_seconds(self, macs: int) -> float:
        return macs / self.host_macs_per_s

    def host_energy(self, seconds: float) -> float:
        return (self.host_power_w + self.static_power_w) * seconds


@dataclass
class RecoveryCost:
    """Counts and modeled cost of protected GEMMs; `+=` accumulates them over a run."""

    gemms: int = 0
    tiles: int = 0
    useful_macs: int = 0  # M K N of the GEMMs as asked
    array_macs: int = 0  # including the zero padding of partial tiles
    tiles_flagged: int = 0  # tiles the statistics unit asked to recover
    tiles_corrected: int = 0  # fixed in place from the deviations, no recomputation
    tiles_recomputed: int = 0
    recompute_macs: int = 0
    recompute_calls: int = 0
    host_fallback_tiles: int = 0  # recovery-device results that still deviated, redone on the host
    elements_cleared: int = 0  # out-of-range accumulators zeroed by anomaly clearance
    main_seconds: float = 0.0  # modeled main pass at the run clock
    recompute_seconds: float = 0.0
    nominal_seconds: float = 0.0  # the main pass at the nominal clock: the baseline throughput
    energy_j: float = 0.0
    nominal_energy_j: float = 0.0  # the main pass at the nominal clock and voltage, no recovery
    # Measured against the exact result when the ProtectedGemm measures (an oracle, not a cost):
    elements: int = 0
    elements_wrong: int = 0  # before recovery: what the error model did
    elements_wrong_after: int = 0  # after recovery: what the policy let through

    def __iadd__(self, other: RecoveryCost) -> RecoveryCost:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def recompute_fraction(self) -> float:
        return self.tiles_recomputed / self.tiles if self.tiles else 0.0

    @property
    def element_error_rate(self) -> float:
        return self.elements_wrong / self.elements if self.elements else 0.0

    @property
    def seconds(self) -> float:
        return self.main_seconds + self.recompute_seconds

    @property
    def throughput_vs_nominal(self) -> float:
        """Useful MAC/s including recovery, relative to the same GEMMs unprotected at the nominal clock."""
        return self.nominal_seconds / self.seconds if self.seconds else 1.0

    @property
    def energy_vs_nominal(self) -> float:
        """Energy per useful MAC relative to the nominal clock and voltage."""
        return self.energy_j / self.nominal_energy_j if self.nominal_energy_j else 1.0

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "recompute_fraction": self.recompute_fraction,
            "element_error_rate": self.element_error_rate,
            "throughput_vs_nominal": self.throughput_vs_nominal,
            "energy_vs_nominal": self.energy_vs_nominal,
        }


def main_pass_cost(
    plan: TilePlan, model: CostModel, clock_mhz: float, nominal_mhz: float, voltage_ratio: float = 1.0
) -> RecoveryCost:
    """The cost of running a GEMM once on the array, before any recovery."""
    n = plan.array_n
    array_macs = plan.count * n * n * plan.k
    cycles = model.call_cycles(plan.count, plan.k, n)
    seconds = cycles / (clock_mhz * 1e6)
    nominal_seconds = cycles / (nominal_mhz * 1e6)
    return RecoveryCost(
        gemms=1,
        tiles=plan.count,
        useful_macs=plan.macs,
        array_macs=array_macs,
        main_seconds=seconds,
        nominal_seconds=nominal_seconds,
        energy_j=model.dynamic_energy(array_macs, voltage_ratio) + model.static_energy(seconds),
        nominal_energy_j=model.dynamic_energy(array_macs) + model.static_energy(nominal_seconds),
    )
