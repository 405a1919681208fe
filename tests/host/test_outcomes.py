"""Outcomes beyond perplexity in `run`: top-1 agreement and generation outcome classes. The oracles: the
argmax of the model's own forward under the same errors, and transformers' own greedy `generate` (its KV
cache, its loop) with the GEMMs on the same backend."""

import math

import pytest
import torch

import realm_hil
from realm_hil.abft.recovery import SoftwareFaultAccelerator
from realm_hil.error_models import RealmModel, SeededFaults
from realm_hil.errors import InputError
from realm_hil.experiment import RunConfig, run_experiment
from realm_hil.llm.gemm import TorchIntMM
from realm_hil.llm.generation import Continuation, classify, degenerate
from realm_hil.llm.selection import Selection
from realm_hil.llm.text import load_text, token_windows

CLOCK = 116.0  # pynq-z2 twin: errors in layers 0-1 change the model's predictions
# decode GEMMs (one row each) err less often: at 116 MHz none of the three continuations changes
DECODE_CLOCK = 122.0
LAYERS = "0-1"


def on_twin(loaded, router, components: str, stages: str, compute, clock: float = CLOCK):
    """`compute()` with the selected GEMMs on the twin at `clock`, unprotected."""
    with realm_hil.open_accelerator("twin") as acc:
        acc.set_clock(clock)
        router.selection = Selection.parse(LAYERS, components, stages, num_layers=loaded.model.config.num_hidden_layers)
        router.backend = acc
        try:
            return compute()
        finally:
            router.backend = TorchIntMM()
            router.selection = Selection.parse()


def test_degenerate_rule_and_classes():
    """The stated rule: fewer than half the tokens distinct, or a mean NLL above 6 nats (NaN too)."""
    assert degenerate((5, 5, 5, 5, 5, 7), 1.0)  # 2 of 6 distinct: repetition
    assert not degenerate((5, 6, 5, 6), 1.0)  # exactly half distinct is not
    assert not degenerate((5, 5, 5, 5, 6, 7, 8), 1.0)  # 4 of 7
    assert degenerate((1, 2, 3, 4), 6.5) and degenerate((1, 2, 3, 4), math.nan)
    assert not degenerate((1, 2, 3, 4), 6.0)
    ref = Continuation((1, 2, 3, 4), True)
    assert classify(Continuation((1, 2), False), ref, 0.0) == "failed"
    assert classify(Continuation((1, 2, 3, 4), True), ref, 0.0) == "identical"
    assert classify(Continuation((1, 2, 3, 9), True), ref, 2.0) == "fluent"
    assert classify(Continuation((1, 1, 1, 1), True), ref, 2.0) == "degenerate"


@pytest.mark.llm
def test_top1_agreement_equals_the_argmax_of_an_independent_forward(quantized):
    """The paper's bit flips on bit 10 at the element error rate the twin shows at 116 MHz, in the o
    projections of layers 0-1, unprotected: the run's top-1 agreement is the fraction of positions whose
    argmax under the same seeded flips (injected here by hand) equals the error-free W8A8 one; some
    change, not all; classic ABFT agrees everywhere."""
    loaded, router = quantized
    report = run_experiment(RunConfig(backend="twin", tokens=24, window=12, clocks_mhz=[CLOCK],
                                      policies=["none", "classic"], error_models=["timing", "realm@10"],
                                      layers=LAYERS, components="o"))
    rows = {(r.error_model, r.policy): r for r in report.rows}
    windows = token_windows(loaded.tokenizer, load_text(), 12, 24)

    @torch.no_grad()
    def argmaxes():
        return [loaded.model(w[None]).logits[0, :-1].argmax(-1) for w in windows]

    clean = argmaxes()
    # the rate the run injects: the timing model's on the error-free operands (classic left nothing wrong)
    rate = rows["timing", "classic"].element_error_rate
    router.selection = Selection.parse(LAYERS, "o", "all", num_layers=loaded.model.config.num_hidden_layers)
    router.backend = SoftwareFaultAccelerator(SeededFaults(RealmModel(rate, 10), 0), 8, CLOCK)
    try:
        flipped = argmaxes()
    finally:
        router.backend = TorchIntMM()
        router.selection = Selection.parse()
    same = sum(int((a == b).sum()) for a, b in zip(clean, flipped, strict=True))
    assert 0 < rows["realm@10", "none"].top1 == same / 22 < 1
    for model in ("timing", "realm@10"):
        assert rows[model, "classic"].top1 == 1.0 and rows[model, "classic"].ppl == report.w8a8_ppl
    assert "top1 %" in report.table()


@pytest.mark.llm
def test_decode_stage_errors_show_in_generation_not_in_perplexity(quantized, tmp_path):
    """With --stages decode, perplexity (prefill only) is the error-free one and agrees everywhere, while the
    greedy continuations under errors are transformers' own greedy generate under the same errors; classic
    ABFT gives back the error-free continuations."""
    loaded, router = quantized
    prompts = ["This License applies to any program or other work which", "You may charge any price or no price",
               "The source code for a work means the preferred form"]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n\n")
    new = 8
    report = run_experiment(RunConfig(backend="twin", tokens=16, window=16, clocks_mhz=[DECODE_CLOCK],
                                      policies=["none", "classic"], layers=LAYERS, stages="decode", generate=new,
                                      prompts=str(tmp_path / "prompts.txt")))

    @torch.no_grad()
    def generate():
        texts = []
        for prompt in prompts:
            ids = loaded.tokenizer(prompt, return_tensors="pt").input_ids
            out = loaded.model.generate(ids, max_new_tokens=new, do_sample=False, pad_token_id=0)
            texts.append(loaded.tokenizer.decode(out[0, ids.shape[1]:]))
        return texts

    clean = generate()
    erring = on_twin(loaded, router, "linear", "decode", generate, DECODE_CLOCK)
    assert erring != clean
    gen = report.generation
    assert gen["prompts"] == prompts and gen["new_tokens"] == new
    # generate stops at the end-of-text token; the run's continuations are always `new` tokens long
    assert all(ours.startswith(hf) for ours, hf in zip(gen["reference"], clean, strict=True))
    none, classic = report.rows
    assert none.ppl == classic.ppl == report.w8a8_ppl and none.top1 == 1.0
    assert none.tiles_err > 0
    texts = [c["text"] for c in gen["continuations"][f"{DECODE_CLOCK:.3f}/timing/none"]]
    assert all(ours.startswith(hf) for ours, hf in zip(texts, erring, strict=True))
    want = sum(a == b for a, b in zip(texts, gen["reference"], strict=True))
    assert none.generation["identical"] == want < len(prompts)
    assert sum(none.generation.values()) == len(prompts)
    assert classic.generation == {"identical": 3, "fluent": 0, "degenerate": 0, "failed": 0}
    assert "ident" in report.table()


def test_prompts_need_generation():
    with pytest.raises(InputError, match="give the new tokens"):
        RunConfig(backend="twin", prompts=__file__)
