"""Offload selection patterns and evaluation text, without a pretrained model."""

import sys

import pytest

from realm_hil.llm.selection import LINEAR_COMPONENTS, Selection
from realm_hil.llm.text import WIKITEXT2, load_text, token_windows


def test_layer_ranges_and_lists():
    sel = Selection.parse(layers="0-3,29", num_layers=30)
    assert sel.layers == frozenset({0, 1, 2, 3, 29})
    assert sel.matches(2, "q", "prefill") and not sel.matches(4, "q", "prefill")
    assert Selection.parse().layers is None


@pytest.mark.parametrize("pattern", ["3-1", "x", "1,,2", "-2", "0-30"])
def test_bad_layer_patterns(pattern):
    with pytest.raises(ValueError):
        Selection.parse(layers=pattern, num_layers=30)


def test_component_aliases_across_architectures():
    opt = Selection.parse(components="q_proj,out_proj,fc1,fc2")
    assert opt.components == frozenset({"q", "o", "up", "down"})
    assert Selection.parse(components="linear").components == frozenset(LINEAR_COMPONENTS)
    assert {"qk", "sv", "lm_head"} <= Selection.parse(components="all").components
    with pytest.raises(ValueError, match="unknown component 'attn'"):
        Selection.parse(components="attn")


def test_stages():
    sel = Selection.parse(stages="decode")
    assert sel.matches(0, "o", "decode") and not sel.matches(0, "o", "prefill")
    assert Selection.parse(components="lm_head", layers="0").matches(None, "lm_head", "prefill")
    with pytest.raises(ValueError):
        Selection.parse(stages="train")


def test_default_text_and_bad_path(tmp_path):
    assert "GNU GENERAL PUBLIC LICENSE" in load_text()
    with pytest.raises(ValueError, match="text file not found"):
        load_text(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        load_text(str(tmp_path / "empty.txt"))


class _CharTokenizer:
    def __call__(self, text, return_tensors, verbose):
        import torch

        return type("Enc", (), {"input_ids": torch.tensor([[ord(c) for c in text]])})


def test_token_windows_non_overlapping():
    windows = token_windows(_CharTokenizer(), "abcdefghij" * 3, window=8, max_tokens=20)
    assert windows.shape == (2, 8)
    assert windows.flatten().tolist() == [ord(c) for c in ("abcdefghij" * 3)[:16]]
    with pytest.raises(ValueError, match="fewer than one"):
        token_windows(_CharTokenizer(), "abc", window=8)


def test_wikitext2_without_datasets_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails, installed or not
    with pytest.raises(ValueError, match="needs the `datasets` package"):
        load_text(WIKITEXT2)
