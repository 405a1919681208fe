"""The GEMM seam: a GEMM's site travels with the call, validation and tiling run once per GEMM, and
the operating point (clock and supply voltage) is one concept on every backend."""

import sys

import numpy as np
import pytest
import torch
from oracles import int32_matmul

import realm_hil
from realm_hil import regmap, tiling
from realm_hil.abft.recovery import ProtectedGemm, SoftwareFaultAccelerator
from realm_hil.gemm_call import GemmSite
from realm_hil.llm.gemm import GemmRouter
from realm_hil.operating_point import OperatingPoint
from realm_hil.timing.emulation import timed_dot
from realm_hil.timing.slack import slack_table

N = 8


def operands(rng, m, k, n):
    return rng.integers(-128, 128, (m, k), dtype=np.int8), rng.integers(-128, 128, (k, n), dtype=np.int8)


class SiteRecorder:
    """A fault model that keeps the site of every GEMM it corrupts, and flips bit 30 of element (0, 0)."""

    def __init__(self):
        self.sites = []

    def __call__(self, acc, site):
        self.sites.append(site)
        acc[0, 0] ^= 1 << 30
        return acc


def test_a_fault_model_sees_each_gemms_site_without_mutation():
    fault = SiteRecorder()
    device = SoftwareFaultAccelerator(fault, N)
    protected = ProtectedGemm(device, "classic")
    router = GemmRouter(protected)
    router.stage = "decode"
    x = torch.randint(-128, 128, (9, 40), dtype=torch.int8)
    w = torch.randint(-128, 128, (40, 12), dtype=torch.int8)
    for layer, component in [(0, "o"), (2, "up"), (None, "lm_head")]:
        # classic ABFT recomputes the tile the fault model corrupted
        assert torch.equal(router.matmul(layer, component, x, w), torch._int_mm(x, w))
    assert fault.sites == [GemmSite(0, "o", "decode"), GemmSite(2, "up", "decode"), GemmSite(None, "lm_head", "decode")]
    assert [r.site for r in router.log.records] == fault.sites
    assert [r.stats.tiles_err for r in router.log.records] == [1, 1, 1]
    assert not hasattr(protected, "site") and not hasattr(device, "site")


@pytest.fixture
def counted(monkeypatch):
    """Calls of tiling.validate_operands and tiling.plan_for, wherever in realm_hil they were imported."""
    counts = {"validate_operands": 0, "plan_for": 0}
    for name in counts:
        original = getattr(tiling, name)

        def counting(*args, _name=name, _original=original):
            counts[_name] += 1
            return _original(*args)

        for module in [m for key, m in sys.modules.items() if key.startswith("realm_hil")]:
            if getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counting)
    return counts


@pytest.mark.parametrize("kind", ["reference", "twin", pytest.param("sim", marks=pytest.mark.sim)])
def test_validation_and_the_tile_plan_run_once_per_gemm(kind, counted):
    x, w = operands(np.random.default_rng(2), 20, 50, 30)
    with realm_hil.open_accelerator(kind) as acc:
        acc.set_clock(120.0)  # errors on twin and sim: the statistics and the policy look at every tile
        protected = ProtectedGemm(acc, "classic", measure=True)
        for call in (lambda: acc.gemm(x, w), lambda: protected.gemm(x, w, site=GemmSite(3, "o", "prefill"))):
            before = dict(counted)
            call()
            assert {k: counted[k] - before[k] for k in counted} == {"validate_operands": 1, "plan_for": 1}


@pytest.mark.sim
def test_an_undervolt_gives_twin_and_sim_the_same_l_tables_and_errors():
    """At the nominal clock, 0.85 V (nominal 1.0 V on pynq-z2) slows the PEs enough to err: twin and
    sim load the same L tables and compute what the numpy timing model computes with them."""
    x, w = operands(np.random.default_rng(3), 24, 256, 24)
    exact = int32_matmul(x, w)
    point = OperatingPoint(100.0, 0.85)
    with realm_hil.open_accelerator("twin", seed=5) as twin, realm_hil.open_accelerator("sim", seed=5) as sim:
        assert np.array_equal(sim.gemm(x, w).y, exact)  # the nominal point: no errors
        for acc in (twin, sim):
            assert acc.set_operating_point(point) == point == acc.operating_point
        table = slack_table("pynq-z2", 100.0, N, 5, 0.85)
        on_device = [sim.driver.mmio.read(regmap.L_TABLE_BASE + 4 * i) for i in range(N * N)]
        assert on_device == [int(v) & 0xFFFFFFFF for v in table.ravel()]
        assert np.array_equal(twin.array.slack, table)
        y_twin, y_sim = twin.gemm(x, w), sim.gemm(x, w)
        model = timed_dot(x[:, None, :], w.T[None, :, :], table[np.arange(24)[:, None] % N, np.arange(24) % N])
        assert np.array_equal(y_sim.y, model) and np.array_equal(y_twin.y, model)
        assert 0 < np.count_nonzero(model != exact) < model.size
        assert y_sim.stats.tiles.equals(y_twin.stats.tiles)
        # the clock alone, at the nominal supply, is exact again
        assert sim.set_operating_point(OperatingPoint(100.0)) == sim.nominal
        assert np.array_equal(sim.gemm(x, w).y, exact)


@pytest.mark.parametrize("bad", [0.35, 0.1, float("nan"), -1.0, "0.9", True])
def test_a_voltage_the_device_cannot_take_is_one_line_and_changes_nothing(bad):
    with realm_hil.open_accelerator("twin") as acc:
        with pytest.raises(ValueError, match="voltage") as exc:
            acc.set_operating_point(OperatingPoint(110.0, bad))
        assert "\n" not in str(exc.value)
        assert acc.operating_point == acc.nominal
