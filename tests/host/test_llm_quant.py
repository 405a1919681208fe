"""W8A8 quantization, the GEMM router and fault hook, without a pretrained model."""

import numpy as np
import torch
from torch import nn

from realm_hil.gemm_call import GemmResult, GemmSite
from realm_hil.llm.gemm import GemmRouter, TorchIntMM
from realm_hil.llm.offload import QuantLinear
from realm_hil.llm.quant import QMAX, dequantize, quantize_columns, quantize_rows, smoothing_factors
from realm_hil.llm.selection import Selection


class NumpyAccelerator:
    """Stand-in with the accelerator interface until a real backend is wired in; it keeps the sites it was given."""

    name = "numpy-int32"

    def __init__(self):
        self.sites = []

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site=None) -> GemmResult:
        assert x.dtype == np.int8 and w.dtype == np.int8 and x.flags.c_contiguous
        self.sites.append(site)
        return GemmResult(np.matmul(x.astype(np.int32), w.astype(np.int32)), {"call": len(self.sites)})


def test_weight_round_trip_per_channel():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 96, generator=gen) * torch.logspace(-3, 1, 64).unsqueeze(1)
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (64, 1)
    assert torch.allclose(scale[:, 0], w.abs().amax(dim=1) / QMAX)
    assert (q.abs().amax(dim=1) == QMAX).all()  # each channel uses its full range
    assert ((dequantize(q, scale) - w).abs() <= scale / 2 + 1e-7).all()


def test_zero_rows_and_column_scales():
    x = torch.zeros(3, 5)
    x[1] = torch.arange(5.0)
    q, scale = quantize_rows(x)
    assert (q[0] == 0).all() and (scale > 0).all()
    qc, col_scale = quantize_columns(torch.randn(2, 7, 4))
    assert qc.shape == (2, 7, 4) and col_scale.shape == (2, 1, 4)


def test_smoothing_balances_activation_and_weight_ranges():
    act = torch.tensor([100.0, 1.0])
    w = torch.tensor([[1.0, 1.0]])
    s = smoothing_factors(act, w, alpha=0.5)
    assert torch.allclose(act / s, (w * s).abs().amax(dim=0))


def test_router_default_equals_int_mm_exactly():
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(-127, 128, (5, 40), generator=gen, dtype=torch.int8)
    w = torch.randint(-127, 128, (40, 24), generator=gen, dtype=torch.int8)
    expected = torch._int_mm(x, w)
    assert torch.equal(expected.long(), x.long() @ w.long())
    for backend in (TorchIntMM(), NumpyAccelerator()):
        router = GemmRouter(backend, Selection.parse())
        assert torch.equal(router.matmul(0, "q", x, w), expected)
        assert len(router.log) == 1 and router.log.records[0].shape == (5, 40, 24)


def test_router_logs_only_selected_sites_with_backend_stats():
    acc = NumpyAccelerator()
    router = GemmRouter(acc, Selection.parse(layers="1", components="o", stages="prefill"))
    x, w = torch.ones(2, 3, dtype=torch.int8), torch.ones(3, 4, dtype=torch.int8)
    router.matmul(0, "o", x, w)
    router.matmul(1, "q", x, w)
    router.matmul(1, "o", x, w)
    router.stage = "decode"
    router.matmul(1, "o", x, w)
    assert acc.sites == [GemmSite(1, "o", "prefill")]  # the engine is told the site of the GEMM it runs
    (record,) = router.log.records
    assert record.site == GemmSite(1, "o", "prefill") and record.stats == {"call": 1}


def test_quant_linear_matches_float_and_passes_faults_unclamped():
    gen = torch.Generator().manual_seed(2)
    linear = nn.Linear(32, 16)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(16, 32, generator=gen))
    x = torch.randn(2, 3, 32, generator=gen)
    router = GemmRouter()
    layer = QuantLinear(linear, 0, "down", router)
    clean = layer(x)
    assert clean.shape == (2, 3, 16)
    with torch.no_grad():
        reference = linear(x)
    assert (clean - reference).norm() < 0.02 * reference.norm()

    def flip_one(acc, site):
        acc[4, 7] ^= 1 << 30
        return acc

    router.fault = flip_one
    faulty = layer(x)
    x_int, x_scale = quantize_rows(x.reshape(-1, 32))
    acc = torch._int_mm(x_int, layer.weight_int_t)[4, 7]
    expected = float((acc ^ (1 << 30)) - acc) * x_scale[4, 0] * layer.weight_scale[7]
    delta = (faulty - clean).reshape(-1, 16)
    assert torch.isclose(delta[4, 7], expected, rtol=1e-5)
    delta[4, 7] = 0
    assert (delta == 0).all()
