"""Evaluation text and its split into fixed-length token windows.

No English corpus ships in a PyPI package, so the default is a verbatim copy of the GPL-3 text
(identical to Debian's /usr/share/common-licenses/GPL-3; its licence permits verbatim copies)
carried in the package: every machine evaluates the same bytes. WikiText-2, the paper's
benchmark, is used only where the `datasets` library already has it cached.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from realm_hil.errors import InputError

DEFAULT_TEXT = "gpl3"
WIKITEXT2 = "wikitext2"
_GPL3 = Path(__file__).with_name("data") / "GPL-3"


def load_text(source: str = DEFAULT_TEXT) -> str:
    """Text named by `source`: "gpl3" (default), "wikitext2" (test split, cached), or a file path."""
    if source == DEFAULT_TEXT:
        return _GPL3.read_text(encoding="utf-8")
    if source == WIKITEXT2:
        return _wikitext2()
    path = check_text_source(source)
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        raise InputError(f"text file is empty: {path}")
    return text


def check_text_source(source: str) -> Path | None:
    """The file `source` names (None for the built-in texts); an InputError, before any work, if there is none."""
    if source in (DEFAULT_TEXT, WIKITEXT2):
        return None
    path = Path(source).expanduser()
    if not path.is_file():
        raise InputError(f"text file not found: {path} (or use {DEFAULT_TEXT!r} / {WIKITEXT2!r})")
    return path


def _wikitext2() -> str:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import datasets
    except ImportError as err:
        raise InputError(
            "WikiText-2 needs the `datasets` package with the data set already cached; "
            "pass a text file instead"
        ) from err
    try:
        split = datasets.load_dataset("wikitext", "wikitext-2-raw-v1", split="test")
    except Exception as err:  # datasets raises many unrelated types for "not cached offline"
        raise InputError(f"WikiText-2 is not in the local datasets cache (offline): {err}") from err
    # Joined as in the GPTQ / SmoothQuant evaluation scripts, so figures are comparable.
    return "\n\n".join(split["text"])


def token_windows(
    tokenizer: PreTrainedTokenizerBase, text: str, window: int = 512, max_tokens: int | None = 2048
) -> torch.Tensor:
    """Non-overlapping (n, window) token windows over the first `max_tokens` tokens (None: all)."""
    if window < 2:
        raise InputError(f"window must be at least 2 tokens, got {window}")
    ids = tokenizer(text, return_tensors="pt", verbose=False).input_ids[0]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    count = ids.numel() // window
    if count == 0:
        raise InputError(f"text has {ids.numel()} tokens, fewer than one {window}-token window")
    return ids[: count * window].reshape(count, window)
