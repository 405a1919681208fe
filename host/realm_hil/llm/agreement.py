"""Top-1 agreement: how often the model under errors still predicts the token the error-free model predicts.

Perplexity scores the probability of the text's own next token; a researcher asking whether the
answer changed wants the argmax. Both come from the same forward (llm/perplexity.py keeps each
window's argmax), so agreement costs nothing beyond the evaluation itself.
"""

from __future__ import annotations

from realm_hil.llm.perplexity import PerplexityResult


def top1_agreement(reference: PerplexityResult, result: PerplexityResult) -> float:
    """The fraction of predicted positions whose argmax next token equals the reference's.

    Both evaluations must cover the same windows. A position whose logits are NaN agrees only by
    accident of argmax, as a corrupted answer would.
    """
    if len(reference.windows) != len(result.windows):
        raise ValueError(f"agreement needs the same windows: {len(reference.windows)} against {len(result.windows)}")
    same = 0
    for ref, got in zip(reference.windows, result.windows, strict=True):
        if ref.top1 is None or got.top1 is None or ref.top1.shape != got.top1.shape:
            raise ValueError("agreement needs each window's argmax predictions (perplexity() records them)")
        same += int((ref.top1 == got.top1).sum())
    return same / reference.tokens
