"""Symmetric INT8 quantization (W8A8) and SmoothQuant smoothing factors.

Weights: one scale per output channel. Activations: one dynamic scale per token (row). The
integer range is [-127, 127] so that negation never overflows and the grid is symmetric.
`requantize_clamped` is the other activation scale (docs/quantization-modes.md): a row snapped to
the grid of the error-free row's scale and clamped, as ReaLM's error injector re-quantizes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

QMAX = 127
# Keeps all-zero rows/channels quantizable (scale > 0) without changing any non-zero scale.
_EPS = 1e-8


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """INT8 values and float32 scales (shape (..., 1)), one scale per row along the last dim.

    Used for activations per token and for weights per output channel (rows of (out, in)).
    """
    x = x.float()
    scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(_EPS) / QMAX
    q = torch.round(x / scale).clamp_(-QMAX, QMAX).to(torch.int8)
    return q.contiguous(), scale


def quantize_columns(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """INT8 values and float32 scales (shape (..., 1, N)), one scale per column (dim -2 reduced)."""
    q, scale = quantize_rows(x.transpose(-1, -2))
    return q.transpose(-1, -2).contiguous(), scale.transpose(-1, -2)


def requantize_clamped(y: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """`y` fake-quantized per row with the scale of `clean` (the same rows without errors), clamped to +-127.

    An element of `y` larger than its row of `clean` allows saturates at +-max|clean row|, however
    large the error that made it.
    """
    scale = clean.abs().amax(dim=-1, keepdim=True).clamp_min(_EPS) / QMAX
    return torch.round(y / scale).clamp_(-QMAX, QMAX) * scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale


def smoothing_factors(act_absmax: torch.Tensor, weight: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """SmoothQuant per-input-channel factors s: the layer computes (x / s) @ (W * s)^T.

    s_k = max|x_k|^alpha / max|W_:,k|^(1 - alpha), moving activation outliers into the weights.
    """
    w_absmax = weight.detach().float().abs().amax(dim=0).clamp_min(1e-5)
    s = act_absmax.float().clamp_min(1e-5).pow(alpha) / w_absmax.pow(1 - alpha)
    return s.clamp_min(1e-5)


@torch.no_grad()
def input_absmax(model: nn.Module, names: Iterable[str], samples: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-input-channel max |x| seen by each named nn.Linear while the model runs `samples`."""
    modules = dict(model.named_modules())
    stats: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(_module, args):
            cur = args[0].detach().reshape(-1, args[0].shape[-1]).abs().amax(dim=0).float()
            stats[name] = torch.maximum(stats[name], cur) if name in stats else cur

        return hook

    handles = [modules[n].register_forward_pre_hook(record(n)) for n in names]
    try:
        for row in samples:
            model(row.unsqueeze(0), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return stats
