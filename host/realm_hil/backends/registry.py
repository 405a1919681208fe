"""The backend table: each backend's typed options, what it can do, and why it may be unavailable here.

Everything that opens, lists or checks a backend reads this table (open_accelerator, `realm-hil
info`, `run`, `compare`, `sweep-clock`, `serve`, realm_hil.BACKENDS), so what a backend takes and
can do is said once. A backend's own modules are imported only when it is opened.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailable, InputError
from .board_address import is_served_address

if TYPE_CHECKING:
    from ..accelerator import Accelerator
    from ..sim.binding import WaveOptions
    from ..timing.device_profile import DeviceProfile
    from ..timing.thermal import Environment

DEFAULT_ARRAY_N = 8
DEFAULT_PROFILE = "pynq-z2"


@dataclass(frozen=True)
class ReferenceOptions:
    array_n: int = DEFAULT_ARRAY_N
    nominal_mhz: float = 100.0  # the clock it stands in for: recorded, as its voltage, since it never errs
    voltage_v: float | None = None


@dataclass(frozen=True)
class TwinOptions:
    array_n: int = DEFAULT_ARRAY_N
    profile: str | DeviceProfile = DEFAULT_PROFILE  # device timing profile: a shipped name or a YAML path
    seed: int = 0  # the per-PE variation map of the modeled die
    voltage_v: float | None = None  # supply voltage at open [the profile's nominal]
    emulate_checks: bool = False  # the checksum accumulators are overclocked too (EMU_CHECKS=1)
    # the die's surroundings (timing/thermal.py): the seed's die, its junction held or following an
    # ambient trace [None: the sign-off corner, the slowest die held at the binding temperature]
    environment: Environment | None = None


@dataclass(frozen=True)
class SimOptions(TwinOptions):
    waves: WaveOptions | None = None  # an FST trace of the Verilated model


@dataclass(frozen=True)
class BoardOptions:
    # None: this machine's board (or the first of $PYNQ_REMOTE_DEVICES); "HOST:PORT": a `realm-hil
    # serve` host; "pynq://HOST[:PORT]": a ZU board running the PYNQ.remote image
    address: str | None = None
    board_name: str | None = None  # the overlay to load [the board's own: $BOARD here, a pynq:// board's name]
    manifest: Path | None = None  # the bitstream manifest, the overlay files beside it [bitstreams/manifest.json]
    token: str | bytes | None = None  # a `realm-hil serve` host's [$REALM_HIL_TOKEN]

    def __post_init__(self) -> None:
        if self.manifest is not None:
            object.__setattr__(self, "manifest", Path(self.manifest))
        served = is_served_address(self.address)
        if served and (self.board_name or self.manifest):
            raise InputError("a board name or manifest picks the overlay on this machine's board or a pynq:// "
                             "one; `realm-hil serve` loads its own")
        if self.token is not None and not served:
            raise InputError(f"a token is for a `realm-hil serve` host (HOST:PORT), not {self.address or 'this board'}")


@dataclass(frozen=True)
class Capabilities:
    clock_control: bool  # its clock changes what it computes (the reference's is only recorded)
    voltage: bool  # its operating point takes a supply voltage (a board's supply is not the host's to set)
    recovery: bool  # a second one, left at the nominal clock, can recompute flagged tiles
    emulated_checks: bool  # its checksum accumulators can be overclocked with the array (EMU_CHECKS)
    models_die: bool  # it models the die from (profile, seed): two such backends agree point for point
    # `realm-hil run`'s text length: cycle-accurate backends simulate ~1e8 MAC/s, the twin and the
    # reference ~1e9 or more, and a run should take minutes
    default_tokens: int
    default_window: int


@dataclass(frozen=True)
class BackendSpec:
    name: str
    summary: str  # what it is, for `realm-hil info`
    options: type  # its options dataclass
    capabilities: Capabilities
    opener: Callable[[Any], Accelerator]  # options -> an open accelerator
    unavailable: Callable[[], str | None]  # why it cannot open on this machine; None when it can

    def __post_init__(self) -> None:
        # the capabilities that are also options must agree with them, or a check would pass what opening refuses
        for capability, option in (("voltage", "voltage_v"), ("emulated_checks", "emulate_checks")):
            if getattr(self.capabilities, capability) != self.takes(option):
                raise TypeError(f"{self.name}: capability {capability} disagrees with option {option}")

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.options))

    def takes(self, name: str) -> bool:
        return name in self.option_names

    def make_options(self, **values):
        """Its options from field values; a field it does not take is a one-line InputError naming those it does."""
        unknown = sorted(set(values) - set(self.option_names))
        if unknown:
            raise InputError(f"the {self.name} backend takes {', '.join(self.option_names)}; "
                             f"not {', '.join(unknown)}")
        return self.options(**values)

    def status(self) -> str:
        reason = self.unavailable()
        return f"unavailable: {reason}" if reason else f"available ({self.summary})"


def _open_board(o: BoardOptions) -> Accelerator:
    from .board import open_board

    return open_board(o.address, o.board_name, o.manifest, o.token)


def _open_sim(o: SimOptions) -> Accelerator:
    from .pynq_backend import open_sim

    return open_sim(o.array_n, o.waves, o.profile, o.seed, o.voltage_v, o.emulate_checks, o.environment)


def _open_twin(o: TwinOptions) -> Accelerator:
    from .twin import TwinAccelerator

    return TwinAccelerator(o.array_n, o.profile, o.seed, o.voltage_v, o.emulate_checks, o.environment)


def _open_reference(o: ReferenceOptions) -> Accelerator:
    from .reference import ReferenceAccelerator

    return ReferenceAccelerator(o.array_n, o.nominal_mhz, o.voltage_v)


def _board_unavailable() -> str | None:
    from .board import find_pynq_devices

    try:
        find_pynq_devices()
    except BackendUnavailable as exc:
        return str(exc)
    return None


def _sim_unavailable() -> str | None:
    from ..toolchain import ToolchainError, find_verilator

    try:
        find_verilator()
    except ToolchainError as exc:
        return str(exc)
    return _no_compiler("the Verilated model")


def _twin_unavailable() -> str | None:
    return _no_compiler("the twin kernel")


def _no_compiler(what: str) -> str | None:
    return None if shutil.which("g++") else f"no C++ compiler (g++) for {what}"


TABLE: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("board", "a PYNQ board: this machine's, a `realm-hil serve` host's or a PYNQ.remote one",
                BoardOptions, Capabilities(clock_control=True, voltage=False, recovery=False, emulated_checks=False,
                                           models_die=False, default_tokens=256, default_window=128),
                _open_board, _board_unavailable),
    BackendSpec("sim", "Verilated RTL, built and cached on first use",
                SimOptions, Capabilities(clock_control=True, voltage=True, recovery=False, emulated_checks=True,
                                         models_die=True, default_tokens=64, default_window=64),
                _open_sim, _sim_unavailable),
    BackendSpec("twin", "compiled timing-model kernel",
                TwinOptions, Capabilities(clock_control=True, voltage=True, recovery=True, emulated_checks=True,
                                          models_die=True, default_tokens=1024, default_window=256),
                _open_twin, _twin_unavailable),
    BackendSpec("reference", "exact integer GEMM, the ground truth",
                ReferenceOptions, Capabilities(clock_control=False, voltage=True, recovery=True,
                                               emulated_checks=False, models_die=False, default_tokens=1024,
                                               default_window=256),
                _open_reference, lambda: None),
)}
BACKENDS = tuple(TABLE)

# Values that describe the die a modeled backend simulates: a board is its own die and the
# reference models none, so these fall away where a backend does not take them.
DIE_MODEL = ("array_n", "profile", "seed")
# The other shared values, as the one line that refuses one on a backend that cannot use it names it
_NEEDS = {
    "voltage_v": "a supply voltage needs",
    "emulate_checks": "emulated checksums need",
    "environment": "a modeled die's environment needs",
    "address": "a board address needs",
    "board_name": "a board name or manifest needs",
    "manifest": "a board name or manifest needs",
    "token": "a token needs",
}


def backend_spec(kind: str) -> BackendSpec:
    try:
        return TABLE[kind]
    except KeyError:
        raise InputError(f"unknown backend {kind!r}: choose one of {', '.join(TABLE)}") from None


def backends_with(capability: str) -> tuple[str, ...]:
    """The backends that have a capability (a Capabilities field), in table order."""
    return tuple(name for name, spec in TABLE.items() if getattr(spec.capabilities, capability))


def options_for(kind: str, **values):
    """The options of backend `kind` from values many jobs share: array_n, profile, seed, voltage_v,
    emulate_checks, address, board_name, manifest, token.

    A value of None (or a flag left False) is not set. A set value the backend cannot use is a
    one-line InputError naming the backends that can, except the die model (DIE_MODEL), which
    falls away.
    """
    spec = backend_spec(kind)
    taken = {}
    for name, value in values.items():
        if value is None or value is False or (name in DIE_MODEL and not spec.takes(name)):
            continue
        if name in _NEEDS and not spec.takes(name):
            takers = [other.name for other in TABLE.values() if other.takes(name)]
            raise InputError(f"{_NEEDS[name]} the {_either(takers)} backend, not {kind}")
        taken[name] = value
    return spec.make_options(**taken)


def open_accelerator(kind: str = "sim", options=None, **fields) -> Accelerator:
    """Open a backend by name ("board", "sim", "twin" or "reference"), with its options dataclass
    (BoardOptions, SimOptions, TwinOptions, ReferenceOptions) or that dataclass's fields as keywords."""
    spec = backend_spec(kind)
    if options is None:
        options = spec.make_options(**fields)
    elif fields or type(options) is not spec.options:
        raise InputError(f"open {kind} with a {spec.options.__name__} or with its fields as keywords, not "
                         f"{type(options).__name__}{' and keywords' if fields else ''}")
    return spec.opener(options)


def _either(names: list[str]) -> str:
    return " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"
