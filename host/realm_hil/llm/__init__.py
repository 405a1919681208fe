"""The LLM side: offline model and text, W8A8 quantization, GEMM offload, perplexity."""

from realm_hil.llm.gemm import FaultHook, GemmLog, GemmRecord, GemmRouter, GemmSite, IntGemm, TorchIntMM
from realm_hil.llm.model import DEFAULT_MODEL, LoadedModel, load_model
from realm_hil.llm.offload import QuantLinear, W8A8Config, quantize_model
from realm_hil.llm.perplexity import PerplexityResult, WindowResult, logits, perplexity
from realm_hil.llm.selection import COMPONENTS, STAGES, Selection
from realm_hil.llm.text import DEFAULT_TEXT, WIKITEXT2, load_text, token_windows

__all__ = [
    "COMPONENTS",
    "DEFAULT_MODEL",
    "DEFAULT_TEXT",
    "FaultHook",
    "GemmLog",
    "GemmRecord",
    "GemmRouter",
    "GemmSite",
    "IntGemm",
    "LoadedModel",
    "PerplexityResult",
    "QuantLinear",
    "STAGES",
    "Selection",
    "TorchIntMM",
    "W8A8Config",
    "WIKITEXT2",
    "WindowResult",
    "load_model",
    "load_text",
    "logits",
    "perplexity",
    "quantize_model",
    "token_windows",
]
