"""Perplexity over fixed-length token windows (each window evaluated independently)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class WindowResult:
    nll: float  # mean negative log-likelihood per predicted token
    tokens: int  # predicted tokens (window length - 1)
    seconds: float
    # the argmax next token at each predicted position, for top-1 agreement (llm/agreement.py)
    top1: torch.Tensor | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PerplexityResult:
    ppl: float
    nll: float  # mean over all predicted tokens
    tokens: int
    seconds: float
    windows: list[WindowResult]


# Called after each window with (index, number of windows, that window's result).
Progress = Callable[[int, int, WindowResult], None]


@torch.no_grad()
def logits(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """Float32 logits (batch, seq, vocab) of one forward pass without a KV cache."""
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
    return model(input_ids, use_cache=False).logits.float()


def perplexity(model: nn.Module, windows: torch.Tensor, progress: Progress | None = None) -> PerplexityResult:
    """Perplexity of `model` on (n, seq) token windows."""
    results = []
    start = time.perf_counter()
    for i, window in enumerate(windows):
        t0 = time.perf_counter()
        out = logits(model, window)[0, :-1]
        nll = nn.functional.cross_entropy(out, window[1:], reduction="mean").item()
        result = WindowResult(nll, window.numel() - 1, time.perf_counter() - t0, out.argmax(dim=-1))
        results.append(result)
        if progress is not None:
            progress(i, len(windows), result)
    tokens = sum(r.tokens for r in results)
    nll = sum(r.nll * r.tokens for r in results) / tokens
    return PerplexityResult(math.exp(nll), nll, tokens, time.perf_counter() - start, results)
