"""Generation outcome classes: greedy continuations under errors against the error-free W8A8 ones.

Fault-injection studies of LLMs (LLMFI among them) report what errors do to generated answers in
classes; for each prompt the continuation under errors is, in this order of precedence:
- failed: the logits of some step held NaN or inf (generation stops there);
- identical: the same tokens as the error-free W8A8 model's greedy continuation;
- degenerate: repetition or garbage, by DEGENERATE_RULE below;
- fluent: different from the error-free continuation, but neither.

Continuations are greedy (argmax) and exactly `new_tokens` long: no sampling, no stop at the end
of text, so two continuations compare token by token. The prompt runs as one prefill, every new
token as a decode step on the KV cache (llm/offload.py tells the stages apart), so `--stages
decode` selects the GEMMs of generation only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from realm_hil.errors import InputError

CLASSES = ("identical", "fluent", "degenerate", "failed")
# Repetition: fewer than this fraction of the continuation's tokens are distinct ("of the of the
# of the", one token over and over). Natural text of 16-64 tokens keeps 60-90 % distinct.
DISTINCT_MIN = 0.5
# Garbage: the error-free W8A8 model's mean negative log-likelihood per token of the continuation,
# given its prompt, above this many nats (perplexity 403; the model reads the GPL-3 text at about 25).
GARBAGE_NLL = 6.0
DEGENERATE_RULE = (f"fewer than {DISTINCT_MIN:.0%} of its tokens distinct (repetition), or a mean NLL above "
                   f"{GARBAGE_NLL:g} nats per token under the error-free W8A8 model given the prompt (garbage)")
# Default prompts: this many, of this many tokens each, cut at evenly spaced places from the run's text.
PROMPT_COUNT = 8
PROMPT_TOKENS = 32


@dataclass(frozen=True)
class Continuation:
    tokens: tuple[int, ...]
    finite: bool  # every step's logits were finite


def text_prompts(tokenizer, text: str, count: int = PROMPT_COUNT, length: int = PROMPT_TOKENS) -> list[list[int]]:
    """`count` prompts of `length` tokens cut at evenly spaced places from `text`."""
    ids = tokenizer(text, verbose=False).input_ids
    if len(ids) < length:
        raise InputError(f"the text has {len(ids)} tokens, fewer than one {length}-token prompt")
    span = len(ids) - length
    starts = [round(i * span / max(count - 1, 1)) for i in range(count)]
    return [list(ids[s : s + length]) for s in starts]


def check_prompts_file(path: str) -> Path:
    """The prompts file, one prompt per line; an InputError before any work if it has none."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InputError(f"prompts file not found: {file}")
    if not any(line.strip() for line in file.read_text(encoding="utf-8", errors="replace").splitlines()):
        raise InputError(f"prompts file {file} holds no prompt (one per line)")
    return file


def file_prompts(tokenizer, path: str) -> list[list[int]]:
    """One prompt per non-empty line of the file."""
    lines = check_prompts_file(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return [list(tokenizer(line.strip(), verbose=False).input_ids) for line in lines if line.strip()]


@torch.no_grad()
def greedy(model: nn.Module, prompt: list[int], new_tokens: int) -> Continuation:
    """The greedy continuation of `prompt`: one prefill, then one decode step per further token."""
    logits, cache = cached_step(model, torch.tensor([prompt]), None)
    tokens: list[int] = []
    for step in range(new_tokens):
        last = logits[0, -1].float()
        if not torch.isfinite(last).all():
            return Continuation(tuple(tokens), False)
        tokens.append(int(last.argmax()))
        if step + 1 < new_tokens:
            logits, cache = cached_step(model, torch.tensor([tokens[-1:]]), cache)
    return Continuation(tuple(tokens), True)


def cached_step(model: nn.Module, ids: torch.Tensor, cache):
    """One forward on the KV cache (None: a new one): the logits and the cache that now holds `ids` too.

    transformers 5 calls the cache `cache`, 4.x `past_key_values`; both take it as the fourth
    argument and return it as the output's second field.
    """
    out = model(ids, None, None, cache, use_cache=True)
    return out.logits, out["cache"] if "cache" in out else out["past_key_values"]


@torch.no_grad()
def mean_nll(model: nn.Module, prompt: list[int], tokens: tuple[int, ...]) -> float:
    """Mean negative log-likelihood per token of `tokens` following `prompt` (one forward, no cache)."""
    ids = torch.tensor([[*prompt, *tokens]])
    logits = model(ids, use_cache=False).logits[0, len(prompt) - 1 : -1].float()
    return nn.functional.cross_entropy(logits, torch.tensor(tokens)).item()


def degenerate(tokens: tuple[int, ...], nll: float) -> bool:
    """DEGENERATE_RULE: repetition or garbage."""
    return len(set(tokens)) < DISTINCT_MIN * len(tokens) or not nll <= GARBAGE_NLL


def classify(continuation: Continuation, reference: Continuation, nll: float) -> str:
    """The class of one continuation under errors; `nll` is mean_nll of it under the error-free model."""
    if not continuation.finite:
        return "failed"
    if continuation.tokens == reference.tokens:
        return "identical"
    return "degenerate" if degenerate(continuation.tokens, nll) else "fluent"


def counts(classes: list[str]) -> dict[str, int]:
    """How many continuations fell in each class, every class named."""
    return {name: classes.count(name) for name in CLASSES}


@dataclass
class Generation:
    """The prompts of a run and their error-free W8A8 continuations, against which each point is classed."""

    prompts: list[list[int]]
    new_tokens: int
    reference: list[Continuation] | None = None

    def generate(self, model: nn.Module) -> list[Continuation]:
        return [greedy(model, prompt, self.new_tokens) for prompt in self.prompts]

    def classify(self, clean_model: nn.Module, continuations: list[Continuation]) -> list[str]:
        """Classes of one point's continuations; `clean_model` must be the error-free W8A8 model."""
        if self.reference is None:
            raise ValueError("generate the error-free reference continuations first")
        classes = []
        for prompt, ref, cont in zip(self.prompts, self.reference, continuations, strict=True):
            nll = mean_nll(clean_model, prompt, cont.tokens) if cont.finite and cont.tokens != ref.tokens else 0.0
            classes.append(classify(cont, ref, nll))
        return classes

    def reference_degenerate(self, clean_model: nn.Module) -> int:
        """How many error-free continuations the same rule calls degenerate: the baseline of the class."""
        if self.reference is None:
            raise ValueError("generate the error-free reference continuations first")
        return sum(degenerate(ref.tokens, mean_nll(clean_model, prompt, ref.tokens))
                   for prompt, ref in zip(self.prompts, self.reference, strict=True))
