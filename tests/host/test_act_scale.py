"""The static-clamped activation scale is ReaLM's error injector, pinned on a small layer.

The oracle is written here in numpy from the injector's definition (docs/quantization-modes.md):
weights per output channel and activations per token, absmax / 127, round half to even; the exact
integer GEMM; bit flips XORed into the INT32 accumulator; each element dequantized as
(A * s_x) * s_w (+ bias); then q, k, v, gate, up and down re-quantized per token with the scale of
the error-free output (absmax / 127), clamped to +-127 and dequantized, while o goes on as it is.
All of it in float32, in the order QuantLinear must use, so the comparison is bit for bit.
"""

import numpy as np
import pytest
import torch
from torch import nn

from realm_hil.errors import InputError
from realm_hil.llm.gemm import GemmRouter
from realm_hil.llm.offload import QuantLinear, W8A8Config, quantize_model
from realm_hil.llm.selection import LINEAR_COMPONENTS, Selection

K, N, TOKENS = 48, 24, 6
CLAMPED = {"q", "k", "v", "gate", "up", "down"}
LEAVES = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj", "o": "self_attn.o_proj",
          "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj"}
F32 = np.float32


class TinyLlama(nn.Module):
    """One decoder layer's seven projections under their Llama names (model.layers.0.self_attn.q_proj ...)."""

    def __init__(self, bias: bool):
        super().__init__()
        gen = torch.Generator().manual_seed(5)
        layer = nn.Module()
        layer.self_attn, layer.mlp = nn.Module(), nn.Module()
        for path in LEAVES.values():
            group, leaf = path.split(".")
            linear = nn.Linear(K, N, bias=bias)
            with torch.no_grad():
                # channels of very different ranges, so the per-channel scales matter
                linear.weight.copy_(torch.randn(N, K, generator=gen) * torch.logspace(-2, 0, N)[:, None])
                if bias:
                    linear.bias.copy_(torch.randn(N, generator=gen) * 0.1)
            setattr(getattr(layer, group), leaf, linear)
        self.layers = nn.ModuleList([layer])


def _per_row_scale(a: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(a).max(axis=-1, keepdims=True), F32(1e-8)) / F32(127)


def oracle(weight: np.ndarray, bias: np.ndarray | None, x: np.ndarray, flips: dict, clamp: bool) -> dict:
    """The injector's output for x (tokens, K), bit flips {(row, col): bit} in the accumulator."""
    s_w = _per_row_scale(weight)[:, 0]
    w_int = np.rint(weight / s_w[:, None]).astype(np.int64)
    s_x = _per_row_scale(x)
    x_int = np.rint(x / s_x).astype(np.int64)
    exact = (x_int @ w_int.T).astype(np.int32)
    faulty = exact.copy()
    for (row, col), bit in flips.items():
        faulty[row, col] = (faulty[row, col].view(np.uint32) ^ np.uint32(1 << bit)).view(np.int32)

    def dequantize(acc):
        y = acc.astype(F32) * s_x * s_w
        return y if bias is None else y + bias

    clean, y = dequantize(exact), dequantize(faulty)
    if clamp:
        s_out = _per_row_scale(clean)
        y = np.clip(np.rint(y / s_out), -127, 127).astype(F32) * s_out
    return {"y": y, "exact": exact, "clean": clean}


def flip_at(flips: dict):
    def hook(acc, _site):
        for (row, col), bit in flips.items():
            acc[row, col] ^= np.array(1 << bit, np.uint32).view(np.int32)
        return acc

    return hook


@pytest.fixture
def tokens():
    gen = torch.Generator().manual_seed(6)
    # tokens of very different magnitudes, one with an outlier channel
    x = torch.randn(TOKENS, K, generator=gen) * torch.logspace(-1, 1, TOKENS)[:, None]
    x[2, 7] = 40.0
    return x


# bit 30 far beyond every clean value (saturates), bit 22 beyond it too, bit 12 within the clean range
FLIPS = {(0, 3): 30, (1, 0): 30, (1, 5): 30, (2, 11): 30, (3, 3): 22, (4, 8): 12, (4, 9): 12, (5, 23): 30}


@pytest.mark.parametrize("bias", [False, True])
def test_static_clamped_is_the_injector_bit_for_bit(tokens, bias):
    model = TinyLlama(bias)
    floats = {c: model.layers[0].get_submodule(LEAVES[c]) for c in LINEAR_COMPONENTS}
    weights = {c: (m.weight.detach().numpy().copy(), None if m.bias is None else m.bias.detach().numpy().copy())
               for c, m in floats.items()}
    router = GemmRouter()
    quantize_model(model, W8A8Config(act_scale="static-clamped"), router)
    router.fault = flip_at(FLIPS)
    x = tokens.numpy()
    for component in LINEAR_COMPONENTS:
        module = model.layers[0].get_submodule(LEAVES[component])
        assert isinstance(module, QuantLinear)
        want = oracle(*weights[component], x, FLIPS, clamp=component in CLAMPED)
        got = module(tokens.reshape(2, 3, K)).reshape(TOKENS, N).detach().numpy()
        np.testing.assert_array_equal(got, want["y"], err_msg=component)
        exact, clean = want["exact"], want["clean"]
        for (row, col), bit in FLIPS.items():
            if bit != 30:
                continue
            if component in CLAMPED:  # saturated at the clean row's largest magnitude, with A's sign
                edge = F32(127) * _per_row_scale(clean[row])[0]
                assert got[row, col] == (edge if exact[row, col] >= 0 else -edge)
            else:  # o: the flip reaches the next layer at full size
                assert abs(got[row, col]) > 100 * np.abs(clean[row]).max()
    flipped_signs = {np.sign(oracle(*weights["q"], x, {}, True)["exact"][rc]) for rc, b in FLIPS.items() if b == 30}
    assert flipped_signs == {-1, 1}  # both saturation directions are exercised
    # an in-range flip moves its element by one grid step or more without saturating
    q = model.layers[0].self_attn.q_proj(tokens).detach().numpy()
    clean_q = oracle(*weights["q"], x, {}, True)["y"]
    assert 0 < abs(q[4, 8] - clean_q[4, 8]) < np.abs(clean_q[4]).max()


def test_unrouted_and_error_free_gemms_are_requantized_with_their_own_scale(tokens):
    """A GEMM kept on torch._int_mm (not selected) or routed without errors: the clean row re-quantized."""
    model = TinyLlama(bias=False)
    weight = model.layers[0].mlp.down_proj.weight.detach().numpy().copy()
    router = GemmRouter(selection=Selection.parse(components="q"))
    quantize_model(model, W8A8Config(act_scale="static-clamped"), router)
    router.fault = flip_at(FLIPS)  # reaches q only
    want = oracle(weight, None, tokens.numpy(), {}, clamp=True)["y"]
    np.testing.assert_array_equal(model.layers[0].mlp.down_proj(tokens).detach().numpy(), want)
    router.selection, router.fault = Selection.parse(), None
    np.testing.assert_array_equal(model.layers[0].mlp.down_proj(tokens).detach().numpy(), want)


def test_dynamic_mode_leaves_outputs_unclamped(tokens):
    model = TinyLlama(bias=False)
    weight = model.layers[0].mlp.down_proj.weight.detach().numpy().copy()
    router = GemmRouter(fault=flip_at(FLIPS))
    quantize_model(model, W8A8Config(), router)
    got = model.layers[0].mlp.down_proj(tokens).detach().numpy()
    np.testing.assert_array_equal(got, oracle(weight, None, tokens.numpy(), FLIPS, clamp=False)["y"])


def test_unknown_activation_scale_is_refused():
    with pytest.raises(InputError, match="static-clamped"):
        W8A8Config(act_scale="static")
