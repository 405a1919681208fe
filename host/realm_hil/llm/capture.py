"""Capture real INT8 GEMM operands from the quantized model, for clock sweeps and model comparisons."""

from __future__ import annotations

import math

import torch

from ..errors import InputError
from ..workload import CapturingGemm, Gemm
from .gemm import GemmRouter
from .model import DEFAULT_MODEL, load_config, load_model
from .offload import W8A8Config, quantize_model
from .selection import Selection
from .text import DEFAULT_TEXT, load_text, token_windows

# the first, a middle and the last layer of the default model, and the projections in the paper's
# sensitive class (docs/abft-statistics.md, "Which components share a rule")
DEFAULT_LAYERS = "0,15,29"
DEFAULT_COMPONENTS = "o,down"


def llm_workload(
    count: int | None = None,
    seed: int = 0,
    model: str = DEFAULT_MODEL,
    text: str = DEFAULT_TEXT,
    tokens: int = 16,
    layers: str = DEFAULT_LAYERS,
    components: str = DEFAULT_COMPONENTS,
    max_cols: int | None = 128,
) -> list[Gemm]:
    """The prefill GEMMs of `tokens` tokens of text on the selected layers and components.

    `seed` is accepted for a uniform workload interface; capture itself is deterministic.
    `max_cols` keeps the first output columns of each weight so sweeps stay short.
    """
    del seed
    loaded = load_model(model)
    windows = token_windows(loaded.tokenizer, load_text(text), tokens, tokens)
    capture = CapturingGemm(limit_cols=max_cols)
    router = GemmRouter(capture, Selection.parse(layers, components,
                                                 num_layers=loaded.model.config.num_hidden_layers))
    quantize_model(loaded.model, W8A8Config(), router)
    with torch.no_grad():
        loaded.model(windows[:1], use_cache=False)
    gemms = [
        Gemm(x, w, f"layer{rec.site.layer}.{rec.site.component}", rec.site.layer, rec.site.component)
        for rec, (x, w) in zip(router.log.records, capture.captured, strict=True)
    ]
    return gemms[:count] if count else gemms


def spread_layers(count: int, model: str = DEFAULT_MODEL) -> str:
    """Layers whose o and down projections make `count` GEMMs spread evenly over the model's depth,
    so errors can be located by layer; the depth is read from the model's configuration."""
    num_layers = load_config(model).num_hidden_layers
    if count > 2 * num_layers:
        raise InputError(f"the llm workload has {2 * num_layers} GEMMs (o and down of {num_layers} layers), "
                         f"not {count}")
    pairs = math.ceil(count / 2)
    layers = sorted({round(i * (num_layers - 1) / max(pairs - 1, 1)) for i in range(pairs)})
    return ",".join(map(str, layers))
