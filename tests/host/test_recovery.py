"""Recovery: exact results under classic ABFT on the twin, locate-and-correct, and the cost accounting."""

import dataclasses

import numpy as np
import pytest
import torch

from realm_hil import open_accelerator
from realm_hil.abft.abft_profile import profile_from_dict
from realm_hil.abft.correct import correct_tiles
from realm_hil.abft.cost import CostModel, RecoveryCost
from realm_hil.abft.policies import registers
from realm_hil.abft.recovery import ProtectedGemm, SoftwareFaultAccelerator
from realm_hil.gemm_call import GemmResult, GemmSite
from realm_hil.llm.gemm import GemmRouter
from realm_hil.stats import GemmStats
from realm_hil.tiling import int32_gemm, plan_for

N = 8
SIGN = -(1 << 31)


class AddErrors:
    """A fault hook adding a fixed error matrix (wrapping like the INT32 accumulator)."""

    def __init__(self, err: np.ndarray):
        self.err = err

    def __call__(self, acc, site):
        return ((acc.astype(np.int64) + self.err) % (1 << 32)).astype(np.uint32).view(np.int32)


def operands(rng, m, k, n):
    return (rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8))


def profile():
    rule = {"alpha": -0.5, "beta": 25.0, "freq_min": 1}
    return profile_from_dict(
        {
            "schema_version": 1,
            "model": "test",
            "array_n": N,
            "tolerance": 1.0,
            "classes": {
                "sensitive": {"components": ["o", "down"], **rule},
                "resilient": {"components": ["q", "k", "v", "gate", "up"], **rule},
            },
            "approx": {c: [10, 20, 30] for c in ("q", "k", "v", "o", "gate", "up", "down")},
            "provenance": {"text": "t", "tokens": 1, "seed": 0, "date": "2025-01-01", "grid": "g"},
        }
    )


@pytest.mark.parametrize("clock", [122.0, 126.0, 137.0])
@pytest.mark.parametrize("recover_on", ["accelerator", "host"])
def test_classic_recovery_is_exact_on_the_twin(clock, recover_on):
    rng = np.random.default_rng(int(clock))
    x, w = operands(rng, 45, 160, 37)
    with (
        open_accelerator("twin", profile="pynq-z2", seed=0) as acc,
        open_accelerator("twin", profile="pynq-z2", seed=0) as spare,
    ):
        acc.set_clock(clock)
        recovery = spare if recover_on == "accelerator" else None
        protected = ProtectedGemm(acc, "classic", recovery=recovery, nominal_mhz=100.0, measure=True)
        y = protected.gemm(x, w).y
    cost = protected.last_cost
    assert cost.elements_wrong > 0, "the overclock must really produce errors"
    assert np.array_equal(y, int32_gemm(x, w))
    assert cost.elements_wrong_after == 0 and cost.host_fallback_tiles == 0
    assert cost.tiles_recomputed == cost.tiles_flagged == protected.last_stats.tiles_err


def protected_with(err, policy="correct", **kwargs):
    return ProtectedGemm(SoftwareFaultAccelerator(AddErrors(err), N), policy, measure=True, **kwargs)


@pytest.mark.parametrize(
    "cells",
    [
        [(3, 1, 5)],  # a single element
        [(2, 0, 1 << 30), (2, 3, -7), (2, 7, SIGN)],  # one row
        [(0, 6, 1 << 31), (5, 6, -(1 << 12)), (7, 6, 99)],  # one column (2^31 wraps to -2^31)
    ],
)
def test_correct_fixes_one_row_or_one_column_in_place(cells):
    rng = np.random.default_rng(1)
    x, w = operands(rng, 20, 64, 20)
    err = np.zeros((20, 20), dtype=np.int64)
    for r, c, v in cells:
        err[8 + r, 8 + c] = v  # inside tile (1, 1)
    protected = protected_with(err)
    y = protected.gemm(x, w).y
    assert np.array_equal(y, int32_gemm(x, w))
    cost = protected.last_cost
    assert (cost.tiles_corrected, cost.tiles_recomputed, cost.recompute_seconds) == (1, 0, 0.0)


def test_correct_recomputes_what_it_cannot_locate():
    rng = np.random.default_rng(2)
    x, w = operands(rng, 16, 64, 16)
    err = np.zeros((16, 16), dtype=np.int64)
    err[[1, 4], 2] = 3
    err[[1, 6], 5] = -1 << 18  # two bad rows and two bad columns in tile 0
    protected = protected_with(err)
    y = protected.gemm(x, w).y
    assert np.array_equal(y, int32_gemm(x, w))
    assert (protected.last_cost.tiles_corrected, protected.last_cost.tiles_recomputed) == (0, 1)


def test_correct_never_applies_an_implausible_fix():
    """Row 2 holds two 2^31 errors, invisible in its row sum (2^32 = 0): the deviations point at row 1 alone.

    Subtracting them there would leave -2^31 + y, far outside the provable range: undone, recomputed.
    """
    rng = np.random.default_rng(3)
    x, w = operands(rng, 8, 64, 8)
    err = np.zeros((8, 8), dtype=np.int64)
    err[1, 3] = 1000
    err[2, [3, 4]] = SIGN
    protected = protected_with(err)
    y = protected.gemm(x, w).y
    assert np.array_equal(y, int32_gemm(x, w))
    assert (protected.last_cost.tiles_corrected, protected.last_cost.tiles_recomputed) == (0, 1)


class TamperedChecks(SoftwareFaultAccelerator):
    """The row deviations come back corrupted, as if the checking path itself had erred."""

    def _run(self, call):
        result = super()._run(call)
        row_dev = result.stats.row_dev.copy()
        row_dev[row_dev != 0] += 1
        return GemmResult(result.y, dataclasses.replace(result.stats, row_dev=row_dev))


def test_correct_falls_back_to_recompute_when_checksums_disagree():
    rng = np.random.default_rng(4)
    x, w = operands(rng, 8, 64, 8)
    err = np.zeros((8, 8), dtype=np.int64)
    err[2, 3] = 12345
    protected = ProtectedGemm(TamperedChecks(AddErrors(err), N), "correct", measure=True)
    y = protected.gemm(x, w).y
    assert np.array_equal(y, int32_gemm(x, w))
    assert (protected.last_cost.tiles_corrected, protected.last_cost.tiles_recomputed) == (0, 1)
    # and the corrector on its own leaves y untouched
    faulty = y.copy()
    faulty[2, 3] += 12345
    plan = plan_for(x, w, N)
    d = np.zeros((1, N), np.int32)
    d[0, 3] = 12345
    e = np.zeros((1, N), np.int32)
    e[0, 2] = 12346
    before = faulty.copy()
    assert not correct_tiles(faulty, x, w, plan, d, e, np.ones(1, bool)).any()
    assert np.array_equal(faulty, before)


def test_cost_accounting_adds_up():
    rng = np.random.default_rng(7)
    x, w = operands(rng, 20, 64, 24)  # 3 x 3 tiles, the bottom row partial
    err = np.zeros((20, 24), dtype=np.int64)
    err[1, 1] = err[2, 2] = 1 << 20  # tile (0, 0), not locatable
    err[9, 17] = err[10, 18] = 5  # tile (1, 2)
    err[17, 20] = err[18, 21] = 7  # tile (2, 2): rows 0 and 2 need column sets {0} and {2}
    model = CostModel()
    device = SoftwareFaultAccelerator(AddErrors(err), N, clock_mhz=120.0)
    with open_accelerator("reference", array_n=N) as spare:
        protected = ProtectedGemm(device, "correct", recovery=spare, nominal_mhz=100.0, cost_model=model)
        protected.gemm(x, w)
        first = protected.last_cost
        protected.gemm(x, w)
    tile_cycles = max(1 + 64, N + 2 + 2)
    main_cycles = 9 * tile_cycles + 3 * N
    assert first.main_seconds == pytest.approx(main_cycles / 120e6)
    assert first.nominal_seconds == pytest.approx(main_cycles / 100e6)
    assert (first.tiles, first.tiles_flagged, first.tiles_recomputed, first.tiles_corrected) == (9, 3, 3, 0)
    assert first.recompute_calls == 2  # tile rows 1 and 2 share the column set {2}
    assert first.recompute_macs == 3 * N * N * 64
    assert first.useful_macs == 20 * 64 * 24 and first.array_macs == 9 * N * N * 64
    recompute_cycles = (1 * tile_cycles + 3 * N) + (2 * tile_cycles + 3 * N)
    assert first.recompute_seconds == pytest.approx(recompute_cycles / 100e6)
    assert first.throughput_vs_nominal == pytest.approx(main_cycles / 100e6 / first.seconds)
    energy = model.dynamic_energy(first.array_macs + first.recompute_macs) + model.static_energy(
        first.main_seconds + first.recompute_seconds
    )
    assert first.energy_j == pytest.approx(energy)
    total = RecoveryCost()
    total += first
    total += protected.last_cost
    assert protected.cost == total and protected.cost.gemms == 2


def test_unprotected_overclock_throughput_is_the_clock_ratio():
    rng = np.random.default_rng(8)
    x, w = operands(rng, 16, 64, 16)
    with open_accelerator("reference", array_n=N) as acc:
        acc.set_clock(125.0)
        protected = ProtectedGemm(acc, "classic", nominal_mhz=100.0)
        protected.gemm(x, w)
    assert protected.cost.throughput_vs_nominal == pytest.approx(1.25)
    assert protected.cost.tiles_recomputed == 0 and protected.cost.energy_vs_nominal < 1


def test_router_programs_each_gemm_for_its_layer_and_component():
    prof = profile()
    with open_accelerator("reference", array_n=N) as acc:
        protected = ProtectedGemm(acc, "approx", prof)
        router = GemmRouter(protected)
        x = torch.randint(-128, 128, (8, 32), dtype=torch.int8)
        w = torch.randint(-128, 128, (32, 16), dtype=torch.int8)
        for layer, component in [(0, "o"), (2, "up")]:
            out = router.matmul(layer, component, x, w)
            assert torch.equal(out, torch._int_mm(x, w))
            assert acc.policy == prof.policy_for("approx", layer, component)
            assert acc.policy == registers(protected.policy, prof, GemmSite(layer, component, "prefill"))
    assert isinstance(router.log.records[0].stats, GemmStats)


@pytest.mark.llm
def test_headline_run_classic_restores_the_error_free_model():
    from realm_hil.experiment import RunConfig, run_experiment

    config = RunConfig(
        backend="twin",
        tokens=24,
        window=24,
        clocks_mhz=[120.0],
        policies=["none", "classic"],
        error_models=["realm", "timing"],
    )
    report = run_experiment(config)
    rows = {(r.error_model, r.policy): r for r in report.rows}
    assert [r.error_model for r in report.rows] == ["timing", "timing", "realm", "realm"]
    for model in ("timing", "realm"):
        assert rows[model, "classic"].ppl == report.w8a8_ppl
        assert rows[model, "classic"].residual_errors == 0
        assert rows[model, "none"].throughput == pytest.approx(1.20)
    rate = rows["timing", "classic"].element_error_rate  # on the error-free trajectory
    assert rate > 0
    assert rows["realm", "none"].element_error_rate == pytest.approx(rate, rel=0.5)


def test_error_model_names_pick_the_realm_bit():
    from realm_hil.experiment import RunConfig
    from realm_hil.offloaded import realm_bit

    assert [realm_bit(m) for m in ("timing", "realm", "realm@14", "realm@0")] == [None, 30, 14, 0]
    for bad in ("realm@32", "realm@", "realm@x", "bitflip"):
        with pytest.raises(ValueError, match="timing, realm or realm@B"):
            realm_bit(bad)
    config = RunConfig(backend="twin", error_models=["realm@10", "timing", "realm", "realm@10"])
    assert config.error_models == ["timing", "realm@10", "realm"]
    with pytest.raises(ValueError, match="needs the timing model"):
        RunConfig(backend="twin", error_models=["realm@22"])
