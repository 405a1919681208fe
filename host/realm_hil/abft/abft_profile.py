"""ABFT profiles: one versioned YAML file per model holding the fitted recover rules.

A profile says which GEMM components are sensitive or resilient to errors on one model, the
per-tile statistical rule of each class (theta_mag = 2^(alpha * log2(tile msd) + beta), recover
when freq_eff >= freq_min; rtl/README.md "Statistics words"), the class's GEMM gate (the flagged
tiles of a GEMM are recovered only when the GEMM's total freq_eff, the unit's FREQ_EFF_TOTAL
register, reaches gemm_freq_min: the paper's 2^theta_freq of resilient components, which a
single tile cannot see), the per-layer MSD thresholds of the
ApproxABFT baseline, and where the numbers came from (abft/characterization.py makes them).
Files are validated strictly: a typo must not silently fall back to a default rule.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from realm_hil.errors import InputError
from realm_hil.llm.selection import ATTENTION_COMPONENTS, LINEAR_COMPONENTS
from realm_hil.packaged_yaml import read_yaml, resolve, shipped_names
from realm_hil.results import atomic_write_text
from realm_hil.stats import HW_MODES, PolicyConfig

# 2 records the metric the critical region was fitted on (provenance.metric); a schema 1 profile was
# fitted on perplexity and reads as metric ppl.
SCHEMA_VERSION = 2
SCHEMA_VERSIONS = (1, 2)
PROFILE_DIR = Path(__file__).resolve().parent.parent / "abft_profiles"
CLASS_NAMES = ("sensitive", "resilient")
# Components a profile may classify: every per-layer GEMM (lm_head has no layer and stays float).
PROFILE_COMPONENTS = (*LINEAR_COMPONENTS, *ATTENTION_COMPONENTS)
# alpha and beta travel to the hardware as signed Q8.8 in 16 bits.
_Q88_RANGE = (-128.0, 128.0 - 1 / 256)

_TOP_FIELDS = ("schema_version", "model", "array_n", "tolerance", "classes", "approx", "provenance")
_CLASS_FIELDS = ("components", "alpha", "beta", "freq_min")
_CLASS_OPTIONAL = ("boundary", "gemm_freq_min")
_BOUNDARY_FIELDS = ("slope", "intercept")
_PROVENANCE_FIELDS = ("text", "tokens", "seed", "date", "grid")
_PROVENANCE_OPTIONAL = ("notes",)
_PROVENANCE_V2 = ("metric",)


@dataclass(frozen=True)
class Boundary:
    """The fitted per-GEMM critical-region line: critical when log2 freq <= slope * log2 msd + intercept."""

    slope: float
    intercept: float


@dataclass(frozen=True)
class ComponentClass:
    components: tuple[str, ...]
    alpha: float
    beta: float
    freq_min: int
    boundary: Boundary | None = None  # the characterization fit these per-tile parameters came from
    gemm_freq_min: int = 1  # recover a GEMM's flagged tiles only when its total freq_eff reaches this


@dataclass(frozen=True)
class Provenance:
    text: str
    tokens: int  # 0: not measured on this model
    seed: int
    date: str
    grid: str  # the characterization grid, as given to `realm-hil characterize`
    notes: str = ""
    # what the critical region was fitted on: ppl, top1 or task:NAME (characterization_sweep.METRICS)
    metric: str = "ppl"


@dataclass(frozen=True)
class AbftProfile:
    model: str
    array_n: int
    # the damage over the error-free W8A8 model that counts as critical, in the units of provenance.metric:
    # perplexity increase (ppl), fraction of positions whose top-1 token changed (top1), score drop (task)
    tolerance: float
    classes: dict[str, ComponentClass]
    approx: dict[str, tuple[int, ...]]  # component -> per-layer tile MSD threshold of ApproxABFT
    provenance: Provenance
    schema_version: int = SCHEMA_VERSION
    _by_component: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check(self)
        object.__setattr__(
            self, "_by_component", {c: name for name, cls in self.classes.items() for c in cls.components}
        )

    def class_of(self, component: str) -> str:
        """ "sensitive" or "resilient"."""
        try:
            return self._by_component[component]
        except KeyError:
            raise InputError(
                f"component {component!r} is not classified by ABFT profile {self.model!r}; "
                f"classified: {', '.join(sorted(self._by_component))}"
            ) from None

    def policy_for(self, mode: str, layer: int, component: str) -> PolicyConfig:
        """The statistics unit's registers for GEMMs of `component` in `layer` under `mode`."""
        if mode not in HW_MODES:
            raise InputError(f"policy mode must be one of {', '.join(HW_MODES)}, got {mode!r}")
        if mode in ("off", "classic"):
            return PolicyConfig(mode)
        if mode == "statistical":
            cls = self.classes[self.class_of(component)]
            return PolicyConfig.from_floats("statistical", cls.alpha, cls.beta, freq_min=cls.freq_min)
        thresholds = self.approx.get(component)
        if thresholds is None:
            raise InputError(f"ABFT profile {self.model!r} has no approx thresholds for {component!r}")
        if not 0 <= layer < len(thresholds):
            raise InputError(
                f"layer {layer} out of range: profile {self.model!r} has approx thresholds "
                f"for layers 0-{len(thresholds) - 1}"
            )
        return PolicyConfig("approx", msd_thresh=thresholds[layer])

    def gemm_gate(self, component: str) -> int:
        """Total freq_eff a GEMM of `component` needs before its flagged tiles are recovered."""
        return self.classes[self.class_of(component)].gemm_freq_min

    def to_dict(self) -> dict:
        classes = {}
        for name, cls in self.classes.items():
            entry = {
                "components": list(cls.components),
                "alpha": cls.alpha,
                "beta": cls.beta,
                "freq_min": cls.freq_min,
            }
            if cls.gemm_freq_min != 1:
                entry["gemm_freq_min"] = cls.gemm_freq_min
            if cls.boundary is not None:
                entry["boundary"] = {"slope": cls.boundary.slope, "intercept": cls.boundary.intercept}
            classes[name] = entry
        p = self.provenance
        provenance = {"text": p.text, "tokens": p.tokens, "seed": p.seed, "date": p.date, "grid": p.grid}
        if p.notes:
            provenance["notes"] = p.notes
        if self.schema_version >= 2:
            provenance["metric"] = p.metric
        return {
            "schema_version": self.schema_version,
            "model": self.model,
            "array_n": self.array_n,
            "tolerance": self.tolerance,
            "classes": classes,
            "approx": {c: list(v) for c, v in self.approx.items()},
            "provenance": provenance,
        }

    def save(self, path: Path) -> None:
        header = (
            f"# ABFT profile (realm_hil.abft.abft_profile, schema {self.schema_version}), written by "
            "`realm-hil characterize`.\n"
            "# Statistical rule per n x n tile: theta = 2^(alpha * log2(msd) + beta),\n"
            "# recover when freq_eff = #{columns with |d| > theta} >= freq_min, and only in GEMMs whose\n"
            "# total freq_eff reaches gemm_freq_min (default 1).\n"
        )
        body = yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, width=100)
        atomic_write_text(Path(path), header + body)


class _Dumper(yaml.SafeDumper):
    """Mappings in block style, lists (components, 30 per-layer thresholds) on one flow line."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def list_abft_profiles() -> list[str]:
    """Names of the ABFT profiles shipped with the package."""
    return shipped_names(PROFILE_DIR)


def load_abft_profile(name_or_path: str | Path | AbftProfile) -> AbftProfile:
    """A shipped ABFT profile by name (e.g. "smollm2-135m") or a profile YAML file by path."""
    if isinstance(name_or_path, AbftProfile):
        return name_or_path
    path = resolve(name_or_path, PROFILE_DIR, "ABFT profile")
    raw = read_yaml(path, "ABFT profile")
    try:
        return profile_from_dict(raw)
    except InputError as exc:
        raise InputError(f"invalid ABFT profile {path}: {exc}") from None


def profile_from_dict(raw: object) -> AbftProfile:
    """Validate a parsed profile mapping; every problem is an InputError naming the field."""
    _fields(raw, _TOP_FIELDS, (), "profile")
    version = raw["schema_version"]
    if version not in SCHEMA_VERSIONS or isinstance(version, bool):
        raise InputError(f"schema_version {version!r} is not supported (expected one of "
                         f"{', '.join(map(str, SCHEMA_VERSIONS))})")
    classes_raw = raw["classes"]
    _fields(classes_raw, CLASS_NAMES, (), "classes")
    classes = {name: _component_class(classes_raw[name], f"classes.{name}") for name in CLASS_NAMES}
    approx_raw = raw["approx"]
    if not isinstance(approx_raw, dict):
        raise InputError("approx must be a mapping of component -> list of per-layer MSD thresholds")
    approx = {
        str(c): tuple(_int(v, f"approx.{c}[{i}]", 0) for i, v in enumerate(_list(t, f"approx.{c}")))
        for c, t in approx_raw.items()
    }
    prov = raw["provenance"]
    _fields(prov, _PROVENANCE_FIELDS + (_PROVENANCE_V2 if version >= 2 else ()), _PROVENANCE_OPTIONAL, "provenance")
    provenance = Provenance(
        text=_str(prov["text"], "provenance.text"),
        tokens=_int(prov["tokens"], "provenance.tokens", 0),
        seed=_int(prov["seed"], "provenance.seed", 0),
        # YAML reads an unquoted 2025-06-01 as a date
        date=_str(
            str(prov["date"]) if isinstance(prov["date"], datetime.date) else prov["date"], "provenance.date"
        ),
        grid=_str(prov["grid"], "provenance.grid"),
        notes=_str(prov["notes"], "provenance.notes") if "notes" in prov else "",
        metric=_metric(prov["metric"]) if version >= 2 else "ppl",
    )
    return AbftProfile(
        model=_str(raw["model"], "model"),
        array_n=_int(raw["array_n"], "array_n", 1),
        tolerance=_float(raw["tolerance"], "tolerance"),
        classes=classes,
        approx=approx,
        provenance=provenance,
        schema_version=version,
    )


def _metric(value: object) -> str:
    metric = _str(value, "provenance.metric")
    name, sep, task = metric.partition(":")
    if not (metric in ("ppl", "top1") or (name == "task" and sep and task)):
        raise InputError(f"provenance.metric must be ppl, top1 or task:NAME, got {metric!r}")
    return metric


def _check(profile: AbftProfile) -> None:
    """Invariants that hold however the profile was built (file or code)."""
    if set(profile.classes) != set(CLASS_NAMES):
        raise InputError(
            f"classes must be exactly {', '.join(CLASS_NAMES)}, got {', '.join(profile.classes)}"
        )
    if profile.tolerance <= 0:
        raise InputError(f"tolerance must be a positive damage ({profile.provenance.metric}), got {profile.tolerance}")
    if profile.array_n < 1:
        raise InputError(f"array_n must be positive, got {profile.array_n}")
    seen: dict[str, str] = {}
    for name, cls in profile.classes.items():
        if not cls.components:
            raise InputError(f"classes.{name}.components must not be empty")
        for component in cls.components:
            if component not in PROFILE_COMPONENTS:
                raise InputError(
                    f"classes.{name}: unknown component {component!r}; known: {', '.join(PROFILE_COMPONENTS)}"
                )
            if component in seen:
                raise InputError(f"component {component!r} is in both classes {seen[component]} and {name}")
            seen[component] = name
        for attr in ("alpha", "beta"):
            value = getattr(cls, attr)
            if not _Q88_RANGE[0] <= value <= _Q88_RANGE[1]:
                raise InputError(
                    f"classes.{name}.{attr} = {value} does not fit signed Q8.8 "
                    f"[{_Q88_RANGE[0]}, {_Q88_RANGE[1]:.4f}]"
                )
        if not 0 <= cls.freq_min < (1 << 16):
            raise InputError(f"classes.{name}.freq_min must be in [0, 65535], got {cls.freq_min}")
        if cls.freq_min > profile.array_n:
            raise InputError(
                f"classes.{name}.freq_min = {cls.freq_min} can never be reached: a tile of an "
                f"{profile.array_n} x {profile.array_n} array has {profile.array_n} columns"
            )
    for component, thresholds in profile.approx.items():
        if component not in PROFILE_COMPONENTS:
            raise InputError(
                f"approx: unknown component {component!r}; known: {', '.join(PROFILE_COMPONENTS)}"
            )
        if not thresholds:
            raise InputError(f"approx.{component} must list one threshold per layer")
        if any(not 0 <= t < (1 << 64) for t in thresholds):
            raise InputError(f"approx.{component}: thresholds must be unsigned 64-bit values")


def _fields(raw: object, required: tuple[str, ...], optional: tuple[str, ...], where: str) -> None:
    if not isinstance(raw, dict):
        raise InputError(f"{where} must be a mapping")
    missing = [f for f in required if f not in raw]
    unknown = sorted(set(raw) - set(required) - set(optional))
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")


def _component_class(raw: object, where: str) -> ComponentClass:
    _fields(raw, _CLASS_FIELDS, _CLASS_OPTIONAL, where)
    components = tuple(
        _str(c, f"{where}.components") for c in _list(raw["components"], f"{where}.components")
    )
    boundary = None
    if "boundary" in raw:
        _fields(raw["boundary"], _BOUNDARY_FIELDS, (), f"{where}.boundary")
        boundary = Boundary(
            _float(raw["boundary"]["slope"], f"{where}.boundary.slope"),
            _float(raw["boundary"]["intercept"], f"{where}.boundary.intercept"),
        )
    return ComponentClass(
        components,
        _float(raw["alpha"], f"{where}.alpha"),
        _float(raw["beta"], f"{where}.beta"),
        _int(raw["freq_min"], f"{where}.freq_min", 0),
        boundary,
        _int(raw.get("gemm_freq_min", 1), f"{where}.gemm_freq_min", 1),
    )


def _list(value: object, where: str) -> list:
    if not isinstance(value, list):
        raise InputError(f"{where} must be a list, got {value!r}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _int(value: object, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{where} must be >= {minimum}, got {value}")
    return value


def _float(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where} must be a finite number, got {value!r}")
    return float(value)
