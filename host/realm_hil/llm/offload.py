"""Turn a float causal LM into a W8A8 model whose integer GEMMs all pass through one GemmRouter.

Every INT32 result is dequantized with scales known before the GEMM (activation scale per token
times weight scale per channel). What happens next is the activation-scale mode
(docs/quantization-modes.md):
- "dynamic" (default, the hardware-faithful W8A8): the result goes on as it is, and the next
  quantizer takes its per-token scale from the values that arrive, errors included.
- "static-clamped" (ReaLM's error injector): the outputs of q, k, v, gate, up and down are
  re-quantized per token with the scale of the error-free result and clamped to +-127, which caps
  every error at the clean row's largest magnitude; o's output goes on unclamped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn
from transformers.cache_utils import Cache

from realm_hil.errors import InputError
from realm_hil.llm.attention import ATTN_IMPLEMENTATION
from realm_hil.llm.gemm import GemmRouter
from realm_hil.llm.quant import input_absmax, quantize_rows, requantize_clamped, smoothing_factors
from realm_hil.llm.selection import MODULE_COMPONENTS

_LAYER_INDEX = re.compile(r"(?:^|\.)(?:layers|h)\.(\d+)\.")

ACT_SCALES = ("dynamic", "static-clamped")
# The projections whose outputs ReaLM's Llama wrapper re-quantizes (quantize_output); o_proj is not one.
REQUANTIZED_COMPONENTS = frozenset({"q", "k", "v", "gate", "up", "down"})


@dataclass(frozen=True)
class W8A8Config:
    smooth_alpha: float | None = None  # SmoothQuant migration strength (paper: 0.5); None: off
    attention: bool = False  # Q.K^T and S.V as INT8 GEMMs too (else float attention)
    lm_head: bool = False  # the output projection stays float by default, as in SmoothQuant
    act_scale: str = "dynamic"  # or "static-clamped" (module docstring)

    def __post_init__(self) -> None:
        if self.act_scale not in ACT_SCALES:
            raise InputError(f"the activation scale must be {' or '.join(ACT_SCALES)}, got {self.act_scale!r}")


class QuantLinear(nn.Module):
    """nn.Linear with INT8 per-channel weights and dynamic INT8 per-token activations.

    `requantize`: the output is re-quantized per token with the error-free result's scale and
    clamped (the static-clamped mode), else it leaves as the dequantized INT32 result.
    """

    def __init__(
        self,
        linear: nn.Linear,
        layer: int | None,
        component: str,
        router: GemmRouter,
        smooth: torch.Tensor | None = None,
        requantize: bool = False,
    ):
        super().__init__()
        self.layer, self.component, self.router = layer, component, router
        self.requantize = requantize
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        if smooth is not None:
            weight = weight * smooth
        w_int, w_scale = quantize_rows(weight)
        self.register_buffer("weight_int_t", w_int.t().contiguous())  # (K, N), as the GEMM takes it
        self.register_buffer("weight_scale", w_scale.reshape(-1))
        self.register_buffer("inv_smooth", None if smooth is None else 1.0 / smooth)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features).float()
        if self.inv_smooth is not None:
            x2 = x2 * self.inv_smooth
        x_int, x_scale = quantize_rows(x2)
        acc = self.router.matmul(self.layer, self.component, x_int, self.weight_int_t)
        y = self._dequantize(acc, x_scale)
        if self.requantize:
            y = requantize_clamped(y, self._dequantize(self._exact(x_int, acc), x_scale))
        return y.reshape(*lead, self.out_features).to(x.dtype)

    def _dequantize(self, acc: torch.Tensor, x_scale: torch.Tensor) -> torch.Tensor:
        y = acc.float() * x_scale * self.weight_scale
        return y if self.bias is None else y + self.bias

    def _exact(self, x_int: torch.Tensor, acc: torch.Tensor) -> torch.Tensor:
        """The error-free INT32 result: a GEMM the router keeps on torch._int_mm is exact already;
        one it sends to a backend or a fault hook may not be, so the host computes it once more."""
        if not self.router.selection.matches(self.layer, self.component, self.router.stage):
            return acc
        return torch._int_mm(x_int, self.weight_int_t)

    def extra_repr(self) -> str:
        mode = ", static-clamped output" if self.requantize else ""
        return f"{self.in_features}->{self.out_features}, layer={self.layer}, component={self.component}{mode}"


def quantize_model(
    model: nn.Module,
    config: W8A8Config = W8A8Config(),
    router: GemmRouter | None = None,
    calibration: torch.Tensor | None = None,
) -> GemmRouter:
    """Replace the model's linears (and optionally attention) in place; returns the router to drive.

    `calibration`: (n, seq) token windows, required for SmoothQuant (a few samples suffice).
    """
    router = router if router is not None else GemmRouter()
    targets = _targets(model, config)
    if not targets:
        raise InputError(f"no quantizable linear layers found in {type(model).__name__}")
    smooth: dict[str, torch.Tensor] = {}
    if config.smooth_alpha is not None:
        if calibration is None:
            raise ValueError("SmoothQuant needs calibration token windows")
        absmax = input_absmax(model, targets, calibration)
        modules = dict(model.named_modules())
        smooth = {n: smoothing_factors(absmax[n], modules[n].weight, config.smooth_alpha) for n in targets}
    for name, (layer, component) in targets.items():
        parent_name, _, leaf = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        requantize = config.act_scale == "static-clamped" and component in REQUANTIZED_COMPONENTS
        setattr(parent, leaf, QuantLinear(getattr(parent, leaf), layer, component, router, smooth.get(name),
                                          requantize))
    if config.attention:
        _quantize_attention(model, router)
    model.register_forward_pre_hook(_stage_hook(router), with_kwargs=True)
    return router


def _targets(model: nn.Module, config: W8A8Config) -> dict[str, tuple[int | None, str]]:
    found = {}
    for name, module in model.named_modules():
        component = MODULE_COMPONENTS.get(name.rpartition(".")[2])
        if not isinstance(module, nn.Linear) or component is None:
            continue
        if component == "lm_head":
            if config.lm_head:
                found[name] = (None, component)
            continue
        match = _LAYER_INDEX.search(name)
        if match:
            found[name] = (int(match[1]), component)
    return found


def _quantize_attention(model: nn.Module, router: GemmRouter) -> None:
    attentions = [m for m in model.modules() if hasattr(m, "layer_idx") and hasattr(m, "scaling")]
    if not attentions:
        raise InputError(f"{type(model).__name__}: no attention modules with layer_idx to quantize")
    for module in attentions:
        module.realm_router = router
    model.set_attn_implementation(ATTN_IMPLEMENTATION)


def _stage_hook(router: GemmRouter):
    # Decode means the model runs on top of a non-empty KV cache; anything else is prefill. The
    # cache is found by type, not by keyword: transformers 4.x passes it as `past_key_values`, 5.x
    # as `cache`, and a caller may pass it positionally.
    def hook(_module, args, kwargs):
        router.stage = "decode" if _cached_tokens(*args, *kwargs.values()) > 0 else "prefill"

    return hook


def _cached_tokens(*values) -> int:
    return max((v.get_seq_length() for v in values if isinstance(v, Cache)), default=0)
