"""Seconds per LLM forward on each run path, as ratios to the plain W8A8 forward measured in the same round.

One window of the model is evaluated by each variant in turn, `rounds` times, the order rotating
every round so no variant always follows the same one (cache state, a neighbour's load burst on a
shared machine). A variant's figure is the median of its per-round ratios to the plain W8A8
forward of that round, which a machine whose load drifts between rounds moves much less than the
seconds themselves.

Variants: `w8a8`, every linear on torch._int_mm with no router bookkeeping (the floor);
`reference`, the run path (ProtectedGemm, policy none, measuring) on the exact reference backend;
`flip-1e-06` and `flip-1e-05`, the realm bit-flip model (bit 30) at those element rates through the
run path; `twin-onset`, the twin at its first-error clock + ONSET_MARGIN_MHZ through the run path;
`twin-heavy`, the twin at the heavy overclock (median L = 15).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..abft.recovery import ProtectedGemm, SoftwareFaultAccelerator
from ..backends.reference import ReferenceAccelerator
from ..backends.twin import TwinAccelerator
from ..error_models import RealmModel, SeededFaults
from ..errors import InputError
from ..llm.gemm import GemmRouter, TorchIntMM
from ..llm.model import DEFAULT_MODEL, load_model
from ..llm.offload import W8A8Config, quantize_model
from ..llm.perplexity import perplexity
from ..llm.selection import Selection
from ..llm.text import DEFAULT_TEXT, load_text, token_windows
from ..offloaded import REALM_BIT, summarize
from ..timing.emulation import L_EXACT
from ..timing.slack import first_error_clock
from .twin_vs_rtl import ONSET_MARGIN_MHZ, heavy_overclock_mhz

FLIP_RATES = (1e-6, 1e-5)
# No GEMM matches: every linear goes straight to torch._int_mm, as a plain W8A8 model would run it.
_NOTHING = Selection(frozenset(), frozenset(), frozenset())


@dataclass(frozen=True)
class LlmBenchConfig:
    tokens: int = 512  # one window of this many tokens
    rounds: int = 5
    threads: int = 1  # torch threads, and the twin kernel's
    model: str = DEFAULT_MODEL
    text: str = DEFAULT_TEXT
    profile: str = "pynq-z2"
    array_n: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if self.tokens < 2 or self.rounds < 1 or self.threads < 1:
            raise InputError(f"bench llm needs tokens >= 2, rounds >= 1 and threads >= 1, got {self.tokens}, "
                             f"{self.rounds} and {self.threads}")


def bench_llm(config: LlmBenchConfig = LlmBenchConfig()) -> list[dict]:
    """One dict per variant: name, seconds (median), ratio (median of per-round ratios to w8a8) and evidence."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _bench(config)
    finally:
        torch.set_num_threads(previous_threads)


def _bench(config: LlmBenchConfig) -> list[dict]:
    loaded = load_model(config.model)
    window = token_windows(loaded.tokenizer, load_text(config.text), config.tokens, config.tokens)[:1]
    router = GemmRouter()
    quantize_model(loaded.model, W8A8Config(), router)
    linear = Selection.parse("all", "linear", "all", num_layers=loaded.model.config.num_hidden_layers)
    reference = ReferenceAccelerator(config.array_n)
    onset_mhz = first_error_clock(config.profile, config.array_n, config.seed) + ONSET_MARGIN_MHZ
    twins = {}
    for name, mhz in (("twin-onset", onset_mhz), ("twin-heavy", heavy_overclock_mhz(config.profile))):
        twin = TwinAccelerator(config.array_n, config.profile, config.seed, threads=config.threads)
        twin.set_clock(mhz, force=True)
        twins[name] = twin

    def plain() -> dict:
        router.backend, router.selection = TorchIntMM(), _NOTHING
        return {}

    def run_path(device, **evidence) -> Callable[[], dict]:
        # as experiment._run evaluates one point: a measuring ProtectedGemm behind the linear selection
        def prepare() -> dict:
            router.backend = ProtectedGemm(device(), "none", nominal_mhz=reference.nominal.clock_mhz, measure=True)
            router.selection = linear
            router.log.clear()
            return evidence
        return prepare

    def flips(rate: float) -> Callable[[], SoftwareFaultAccelerator]:
        return lambda: SoftwareFaultAccelerator(SeededFaults(RealmModel(rate, REALM_BIT), config.seed),
                                                config.array_n, reference.nominal.clock_mhz)

    variants = [("w8a8", plain), ("reference", run_path(lambda: reference))]
    variants += [(f"flip-{rate:.0e}", run_path(flips(rate), rate=rate, bit=REALM_BIT)) for rate in FLIP_RATES]
    variants += [(name, run_path(lambda t=twin: t, clock_mhz=round(twin.clock_mhz, 3),
                                 pes_can_err=int((twin.array.slack < L_EXACT).sum())))
                 for name, twin in twins.items()]
    names = [name for name, _ in variants]
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    evidence: dict[str, dict] = {}
    try:
        perplexity(loaded.model, window)  # warm-up: first touch of weights, the twin kernel's load
        for r in range(config.rounds):
            for name, prepare in variants[r % len(variants):] + variants[: r % len(variants)]:
                facts = prepare()
                start, start_cpu = time.perf_counter(), time.process_time()
                perplexity(loaded.model, window)
                summary = summarize(router.log)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
                evidence[name] = {**facts, **_ran(router.backend, summary)}
    finally:
        router.backend, router.selection = TorchIntMM(), _NOTHING
        for twin in twins.values():
            twin.close()
    return [{"name": name, "seconds": statistics.median(wall[name]), "ratio": _median_ratio(wall, name),
             # CPU time of this process: what a shared machine's other load moves far less than wall-clock time
             "cpu_seconds": statistics.median(cpu[name]), "cpu_ratio": _median_ratio(cpu, name),
             **evidence[name], "rounds": config.rounds, "threads": config.threads, "tokens": int(window.numel())}
            for name in names]


def _median_ratio(times: dict[str, list[float]], name: str) -> float:
    """The median over rounds of the variant's time over the plain W8A8 forward's in the same round."""
    return statistics.median(t / base for t, base in zip(times[name], times["w8a8"], strict=True))


def _ran(backend, summary: dict) -> dict:
    """What a forward on `backend` did: the GEMMs offloaded and the output elements in error (run path only)."""
    if not isinstance(backend, ProtectedGemm):
        return {}
    cost = backend.cost
    return {"gemms": cost.gemms, "elements_wrong": cost.elements_wrong,
            "tiles_err": sum(v["tiles_err"] for k, v in summary.items() if not k.startswith("layer"))}

