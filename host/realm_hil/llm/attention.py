"""Q.K^T and S.V as INT8 GEMMs, registered as a transformers attention implementation.

Stock transformers never calls a per-matmul hook, so the whole attention function is replaced.
Q and K are quantized per token and per head (K's tokens are the output columns of Q.K^T, like
weight channels); the softmax probabilities per query row; V per head-dim channel, since its
channels are the output columns of S.V. Each (batch, query head) pair is one GEMM.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

from realm_hil.llm.gemm import GemmRouter
from realm_hil.llm.quant import quantize_columns, quantize_rows

ATTN_IMPLEMENTATION = "realm_w8a8"


def _batched(
    router: GemmRouter, layer: int, component: str, x: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    batch, heads = x.shape[:2]
    out = [router.matmul(layer, component, x[b, h], w[b, h]) for b in range(batch) for h in range(heads)]
    return torch.stack(out).reshape(batch, heads, x.shape[2], w.shape[3])


def w8a8_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    router: GemmRouter = module.realm_router
    layer = module.layer_idx
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)

    q_int, q_scale = quantize_rows(query)  # (B, H, Sq, D), (B, H, Sq, 1)
    k_int, k_scale = quantize_rows(key)  # (B, H, Sk, D), (B, H, Sk, 1)
    scores = _batched(router, layer, "qk", q_int, k_int.transpose(-1, -2).contiguous())
    scores = scores.float() * q_scale * k_scale.transpose(-1, -2) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = nn.functional.softmax(scores, dim=-1, dtype=torch.float32)

    p_int, p_scale = quantize_rows(probs)  # (B, H, Sq, Sk), (B, H, Sq, 1)
    v_int, v_scale = quantize_columns(value)  # (B, H, Sk, D), (B, H, 1, D)
    out = _batched(router, layer, "sv", p_int, v_int).float() * p_scale * v_scale
    return out.transpose(1, 2).contiguous().to(query.dtype), probs


AttentionInterface.register(ATTN_IMPLEMENTATION, w8a8_attention)
# The additive float mask of eager attention is what w8a8_attention adds to the scores.
ALL_MASK_ATTENTION_FUNCTIONS.register(ATTN_IMPLEMENTATION, eager_mask)
