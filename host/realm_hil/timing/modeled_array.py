"""The modeled array of the sim and twin backends: one die at an operating point becomes its L tables."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import numpy as np

from ..abft.cost import CostModel
from ..operating_point import OperatingPoint
from ..tiling import TilePlan
from .device_profile import DeviceProfile, load_profile
from .emulation import L_EXACT
from .slack import check_slack_table, process_factor, slack_table, validate_clock
from .thermal import Environment, HeldJunction, Junction, array_power

# The L tables follow the junction once it has moved more than this from the temperature they were
# computed at. With |k_T| <= 0.05 %/C that is <= 0.0125 % of delay, about 1/40 of one L step
# (tau / period = 0.45 % on pynq-z2), and far finer than an XADC reading (~0.12 C per LSB, ~+-4 C).
TJ_QUANTUM_C = 0.25
_CYCLES = CostModel()


@dataclass(frozen=True)
class DieReading:
    """What a governor can read off a modeled die after each GEMM: its state, not a setting."""

    time_s: float  # modeled device time (the thermal axis: array time x the environment's compression)
    tj_c: float  # junction temperature now
    table_tj_c: float  # the junction temperature the present L tables were computed at
    ambient_c: float | None  # None when the junction is held
    power_w: float  # dissipated over the last GEMM (static power before the first)
    process_factor: float  # the die's delay factor against the slowest die
    in_rated_range: bool  # junction and supply inside the data-sheet ranges, where sign-off holds


@dataclass
class ModeledArray:
    """A die (profile, array size, seed) in an environment at an operating point, and the L tables it implies.

    This is the one place a modeled device turns an operating point into slack: the clock through
    the period, the supply through the profile's alpha-power law, the junction temperature through
    its temperature coefficient, the die through its process factor (docs/timing-error-model.md).
    With checks=True the checksum accumulators are in the overclocked region too and get their own
    table, check_slack (CHECK_GROUPS, n); otherwise check_slack is None. The array starts at the
    nominal clock and at `voltage_v` (None: the nominal supply).

    environment None is the sign-off corner: the slowest die (process factor 1) with its junction
    held at the profile's binding temperature, whatever the seed. Given an environment
    (timing/thermal.py), the die is the seed's: its process factor drawn from the seed, its junction
    held (HeldJunction) or following an ambient trace as the array works (ThermalEnvironment).
    The junction temperature is the die's state, not part of the operating point: the host sets a
    clock and a supply, the temperature follows. spend() advances it after each GEMM; both sim and
    twin call it at the same GEMM boundaries, so they always hold the same tables.
    """

    profile: DeviceProfile
    array_n: int
    seed: int = 0
    checks: bool = False
    voltage_v: InitVar[float | None] = None
    environment: Environment | None = None
    point: OperatingPoint = field(init=False)
    slack: np.ndarray = field(init=False)
    check_slack: np.ndarray | None = field(init=False, default=None)
    process: float = field(init=False)
    junction: Junction = field(init=False)
    table_tj_c: float = field(init=False)

    def __post_init__(self, voltage_v: float | None) -> None:
        self.profile = load_profile(self.profile)
        if self.environment is None:
            self.process = 1.0
            self.junction = Junction(self.profile, HeldJunction(self.profile.signoff_tj_c))
        else:
            self.process = process_factor(self.profile, self.seed)
            self.junction = Junction(self.profile, self.environment)
        self.set(OperatingPoint(self.profile.nominal_clock_mhz, voltage_v))

    @property
    def nominal(self) -> OperatingPoint:
        return OperatingPoint(self.profile.nominal_clock_mhz)

    def _tables(self, point: OperatingPoint, tj_c: float) -> tuple[np.ndarray, np.ndarray | None]:
        die = {"process": self.process, "tj_c": tj_c}
        slack = slack_table(self.profile, point.clock_mhz, self.array_n, self.seed, point.voltage_v, **die)
        check_slack = (check_slack_table(self.profile, point.clock_mhz, self.array_n, self.seed, point.voltage_v,
                                         **die) if self.checks else None)
        return slack, check_slack

    def set(self, point: OperatingPoint, *, force: bool = False) -> OperatingPoint:
        """Move to `point`; returns it. Clocks above the profile's safety ceiling need force.

        Everything is computed before anything is stored: a refused clock or voltage leaves the
        array as it was.
        """
        validate_clock(self.profile, point.clock_mhz, force)
        tj = self.junction.tj_c
        slack, check_slack = self._tables(point, tj)
        self.point, self.slack, self.check_slack, self.table_tj_c = point, slack, check_slack, tj
        return point

    def spend(self, plan: TilePlan) -> bool:
        """Advance device time by the array cycles of one GEMM at the present operating point.

        Returns True when the junction has moved more than TJ_QUANTUM_C from the tables'
        temperature and the tables were recomputed (the sim then reloads its L tables).
        """
        cycles = _CYCLES.call_cycles(plan.count, plan.k, self.array_n)
        if not cycles:
            return False
        activity = plan.count * plan.k / cycles  # operand beats per array cycle
        self.junction.advance(cycles / (self.point.clock_mhz * 1e6),
                              array_power(self.profile, self.point.clock_mhz, self.point.voltage_v, activity))
        tj = self.junction.tj_c
        if abs(tj - self.table_tj_c) <= TJ_QUANTUM_C:
            return False
        self.slack, self.check_slack = self._tables(self.point, tj)
        self.table_tj_c = tj
        return True

    def reading(self) -> DieReading:
        j = self.junction
        return DieReading(j.time_s, j.tj_c, self.table_tj_c, j.ambient_c, j.power_w, self.process,
                          self.profile.in_rated_range(j.tj_c, self.point.voltage_v))

    @property
    def exact(self) -> bool:
        """True when no emulated accumulator (PE, and checksum with checks) can produce a late bit."""
        tables = [self.slack] if self.check_slack is None else [self.slack, self.check_slack]
        return all(bool((t >= L_EXACT).all()) for t in tables)
