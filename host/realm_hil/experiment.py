"""The main job: perplexity of a W8A8 LLM whose GEMMs run on an accelerator backend, per clock and policy."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__, open_accelerator
from .llm.gemm import GemmLog, GemmRouter, TorchIntMM
from .llm.model import DEFAULT_MODEL, load_model
from .llm.offload import W8A8Config, quantize_model
from .llm.perplexity import perplexity
from .llm.selection import Selection
from .llm.text import DEFAULT_TEXT, load_text, token_windows
from .results import atomic_write_json, atomic_write_text
from .stats import PolicyConfig

# Cycle-accurate backends simulate ~1e8 MAC/s, the twin and reference run ~1e9 or more: each gets
# a default text length that keeps `realm-hil run` to minutes.
DEFAULT_TOKENS = {"sim": 128, "board": 256, "twin": 1024, "reference": 1024}
DEFAULT_WINDOW = {"sim": 64, "board": 128, "twin": 256, "reference": 256}
# Default overclock relative to nominal: inside the band where the first timing errors appear.
DEFAULT_OVERCLOCK = 1.12


@dataclass
class RunConfig:
    backend: str = "sim"
    model: str = DEFAULT_MODEL
    text: str = DEFAULT_TEXT
    tokens: int | None = None  # None: DEFAULT_TOKENS[backend]
    window: int | None = None  # None: DEFAULT_WINDOW[backend]
    clocks_mhz: list[float] | None = None  # None: nominal and DEFAULT_OVERCLOCK x nominal
    policies: list[str] = field(default_factory=lambda: ["none"])
    seed: int = 0
    layers: str = "all"
    components: str = "linear"
    stages: str = "all"
    attention: bool = False
    profile: str = "pynq-z2"
    array_n: int = 8
    board_address: str | None = None
    force_clock: bool = False

    def __post_init__(self) -> None:
        if self.backend not in DEFAULT_TOKENS:
            raise ValueError(f"backend must be one of {', '.join(DEFAULT_TOKENS)}, got {self.backend!r}")
        self.tokens = self.tokens or DEFAULT_TOKENS[self.backend]
        self.window = self.window or DEFAULT_WINDOW[self.backend]
        if self.tokens < 2 or self.window < 2:
            raise ValueError("tokens and window must be at least 2")
        unknown = set(self.policies) - set(POLICY_MODES)
        if unknown:
            raise ValueError(f"unknown ABFT policy {sorted(unknown)}: choose from {', '.join(POLICY_MODES)}")


# ABFT policy names -> the statistics unit's mode (recovery itself is the abft package's job)
POLICY_MODES = {"none": "off"}


@dataclass
class RunRow:
    backend: str
    clock_mhz: float
    policy: str
    ppl: float
    delta_float: float
    delta_w8a8: float
    gemms: int
    tiles: int
    tiles_err: int
    tiles_recover: int
    seconds: float


@dataclass
class RunReport:
    config: RunConfig
    model: str
    tokens: int
    float_ppl: float
    w8a8_ppl: float
    rows: list[RunRow]
    breakdown: dict  # "clock/policy" -> component -> summed statistics
    seed: int
    version: str = __version__

    def table(self) -> str:
        header = (f"{'backend':<10}{'clock MHz':>10}  {'ABFT':<12}{'ppl':>9}{'d float':>9}{'d W8A8':>9}"
                  f"{'tiles err':>11}{'of tiles':>10}{'seconds':>9}")
        lines = [f"{self.model}: {self.tokens} tokens, float ppl {self.float_ppl:.3f}, "
                 f"W8A8 (torch._int_mm) ppl {self.w8a8_ppl:.3f}", header]
        for r in self.rows:
            lines.append(f"{r.backend:<10}{r.clock_mhz:>10.2f}  {r.policy:<12}{_num(r.ppl):>9}{_num(r.delta_float, True):>9}"
                         f"{_num(r.delta_w8a8, True):>9}{r.tiles_err:>11}{r.tiles:>10}{r.seconds:>9.1f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"version": self.version, "config": asdict(self.config), "model": self.model, "tokens": self.tokens,
                "seed": self.seed, "float_ppl": self.float_ppl, "w8a8_ppl": self.w8a8_ppl,
                "rows": [asdict(r) for r in self.rows], "breakdown": self.breakdown}

    def save(self, out_dir: Path) -> None:
        atomic_write_json(Path(out_dir) / "results.json", self.to_dict())
        atomic_write_text(Path(out_dir) / "table.txt", self.table() + "\n")


def _num(value: float, signed: bool = False) -> str:
    """Perplexities span 1e1..1e9 under errors: fixed point while it fits, else scientific."""
    sign = "+" if signed else ""
    return f"{value:{sign}.3f}" if abs(value) < 1e4 else f"{value:{sign}.2e}"


# (done, total, label) after each evaluated window
Progress = Callable[[int, int, str], None]


def summarize(log: GemmLog) -> dict:
    """Statistics summed per component (and per layer) over the GEMMs of one evaluation."""
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in log.records:
        stats = record.stats
        if stats is None:
            continue
        for key in (record.site.component, f"layer{record.site.layer}.{record.site.component}"):
            entry = per[key]
            entry["gemms"] += 1
            entry["tiles"] += stats.n_tiles
            entry["tiles_err"] += stats.tiles_err
            entry["tiles_recover"] += stats.tiles_recover
            entry["msd"] += stats.msd
            entry["freq"] += stats.freq
    return {k: dict(v) for k, v in sorted(per.items())}


def run_experiment(config: RunConfig, progress: Progress | None = None) -> RunReport:
    loaded = load_model(config.model)
    windows = token_windows(loaded.tokenizer, load_text(config.text), config.window, config.tokens)
    evaluations = 2 + len(config.policies) * len(config.clocks_mhz or [0, 0])
    done = 0

    def evaluate(label: str) -> float:
        nonlocal done

        def step(i: int, n: int, _result) -> None:
            if progress is not None:
                progress(done * n + i + 1, evaluations * n, label)

        ppl = perplexity(loaded.model, windows, step).ppl
        done += 1
        return ppl

    float_ppl = evaluate("float")
    router = GemmRouter()
    quantize_model(loaded.model, W8A8Config(attention=config.attention), router)
    w8a8_ppl = evaluate("W8A8 reference")
    router.selection = Selection.parse(config.layers, config.components, config.stages,
                                       num_layers=loaded.model.config.num_hidden_layers)
    rows, breakdown = [], {}
    options = _backend_options(config)
    with open_accelerator(config.backend, **options) as acc:
        clocks = config.clocks_mhz or [acc.clock_mhz, acc.clock_mhz * DEFAULT_OVERCLOCK]
        router.backend = acc
        nominal = acc.clock_mhz
        try:
            for clock in clocks:
                applied = acc.set_clock(clock, force=config.force_clock)
                for policy in config.policies:
                    acc.set_policy(PolicyConfig(POLICY_MODES[policy]))
                    router.log.clear()
                    start = time.perf_counter()
                    ppl = evaluate(f"{config.backend} {applied:.1f} MHz {policy}")
                    summary = summarize(router.log)
                    totals = _totals(summary)
                    rows.append(RunRow(acc.name, applied, policy, ppl, ppl - float_ppl, ppl - w8a8_ppl,
                                       len(router.log), totals["tiles"], totals["tiles_err"],
                                       totals["tiles_recover"], time.perf_counter() - start))
                    breakdown[f"{applied:.3f}/{policy}"] = summary
        finally:
            acc.set_clock(nominal)
            router.backend = TorchIntMM()
    tokens = int(windows.numel())
    return RunReport(config, loaded.name, tokens, float_ppl, w8a8_ppl, rows, breakdown, config.seed)


def _backend_options(config: RunConfig) -> dict:
    if config.backend in ("sim", "twin"):
        return {"array_n": config.array_n, "profile": config.profile, "seed": config.seed}
    if config.backend == "board" and config.board_address:
        return {"address": config.board_address}
    return {"array_n": config.array_n} if config.backend == "reference" else {}


def _totals(summary: dict) -> dict:
    components = {k: v for k, v in summary.items() if not k.startswith("layer")}
    keys = ("tiles", "tiles_err", "tiles_recover")
    return {key: sum(v.get(key, 0) for v in components.values()) for key in keys}
