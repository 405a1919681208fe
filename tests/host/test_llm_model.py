"""The pretrained model offline, W8A8 exactness through the GEMM seam, other architectures."""

import numpy as np
import pytest
import torch

from realm_hil.gemm_call import GemmResult
from realm_hil.llm.gemm import TorchIntMM
from realm_hil.llm.model import load_model
from realm_hil.llm.offload import QuantLinear, W8A8Config, quantize_model
from realm_hil.llm.perplexity import logits, perplexity
from realm_hil.llm.selection import Selection
from realm_hil.llm.text import load_text, token_windows

pytestmark = pytest.mark.llm

NOTHING = Selection(frozenset(), frozenset(), frozenset())


class NumpyAccelerator:
    """Stand-in with the accelerator interface: a plain numpy int32 GEMM."""

    name = "numpy-int32"

    def gemm(self, x: np.ndarray, w: np.ndarray, *, site=None) -> GemmResult:
        return GemmResult(np.matmul(x.astype(np.int32), w.astype(np.int32)), None)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Inputs here are a dozen tokens: two OpenMP threads gain nothing, and on a loaded 2-core
    # machine their barriers made a 12-token forward take 9 s instead of 0.5 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokens():
    lm = load_model()
    return token_windows(lm.tokenizer, load_text(), window=12, max_tokens=24)


def test_default_model_answers_offline():
    lm = load_model()
    assert type(lm.model).__name__ == "LlamaForCausalLM" and lm.model.config.num_hidden_layers == 30
    ids = lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    out = lm.model.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in lm.tokenizer.decode(out[0, ids.shape[1] :])


@pytest.mark.parametrize(
    ("name", "message"),
    [("no-such-org/no-such-model", "not available offline"), ("./no/such/dir", "model directory not found")],
)
def test_unavailable_model_is_a_clear_value_error(name, message):
    with pytest.raises(ValueError, match=message):
        load_model(name)


def test_w8a8_logits_int_mm_and_numpy_gemm_bit_identical(tokens):
    lm = load_model()
    with torch.no_grad():
        reference = logits(lm.model, tokens[0])
    router = quantize_model(lm.model, W8A8Config(attention=True))
    router.selection = NOTHING
    int_mm = logits(lm.model, tokens[0])
    assert len(router.log) == 0
    router.selection, router.backend = Selection.parse(), NumpyAccelerator()
    numpy_gemm = logits(lm.model, tokens[0])
    assert torch.equal(int_mm, numpy_gemm)
    assert len(router.log) == 30 * (7 + 2 * 9)  # 7 linears and 9 heads x (Q.K^T, S.V) per layer
    assert (int_mm.argmax(-1) == reference.argmax(-1)).float().mean() > 0.7


def test_stage_targeting_logs_decode_gemms_only():
    lm = load_model()
    router = quantize_model(lm.model, router=None)
    router.selection = Selection.parse(components="o", stages="decode")
    ids = lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
    lm.model.generate(ids, max_new_tokens=3, do_sample=False)
    records = router.log.records
    assert len(records) == 2 * 30  # tokens 2 and 3 are decode steps; token 1 comes from prefill
    assert all(r.site.stage == "decode" and r.shape == (1, 576, 576) for r in records)


def test_smoothquant_calibrates_and_stays_close(tokens):
    lm = load_model()
    with torch.no_grad():
        reference = logits(lm.model, tokens[1])
    quantize_model(lm.model, W8A8Config(smooth_alpha=0.5), calibration=tokens[:1])
    layer = lm.model.model.layers[0].self_attn.q_proj
    assert isinstance(layer, QuantLinear) and layer.inv_smooth is not None
    result = perplexity(lm.model, tokens[1:])
    assert result.tokens == 11 and np.isfinite(result.ppl)
    assert (logits(lm.model, tokens[1]).argmax(-1) == reference.argmax(-1)).float().mean() > 0.7


@pytest.mark.parametrize("arch", ["llama", "mistral", "opt"])
def test_local_checkpoints_of_other_architectures(tmp_path, arch):
    from transformers import AutoConfig, AutoModelForCausalLM

    lm = load_model()
    small = {"hidden_size": 32, "num_attention_heads": 4, "vocab_size": lm.tokenizer.vocab_size}
    if arch == "opt":
        config = AutoConfig.for_model(arch, num_hidden_layers=2, ffn_dim=64, word_embed_proj_dim=32, **small)
    else:
        config = AutoConfig.for_model(
            arch, num_hidden_layers=2, intermediate_size=64, num_key_value_heads=2, **small
        )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    other = load_model(str(tmp_path))
    router = quantize_model(other.model, W8A8Config(attention=True), router=None)
    router.backend = TorchIntMM()
    logits(other.model, torch.arange(5, 13))
    expected = {"q", "k", "v", "o", "up", "down", "qk", "sv"} | ({"gate"} if arch != "opt" else set())
    assert {r.site.component for r in router.log.records} == expected
    assert {r.site.layer for r in router.log.records} == {0, 1}
