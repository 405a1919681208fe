"""The project's own lm-evaluation-harness tasks, made from the GPL-3 text shipped in the package.

No task data set ships offline, so the tests (and the README's table) write two small tasks into a
directory and hand it to the harness as an include path (lm_eval TaskManager(include_path=...)):
- gpl3_mc, multiple choice: a sentence of the licence without its last three words, and four
  endings: its own and those of three other sentences (seeded); metric acc.
- gpl3_gen, generation (copying): a sentence, a new line, and the same sentence again without its
  last three words; the greedy continuation up to the next full stop or new line must be those
  words (exact_match after stripping leading whitespace).

`ranking` is the tests' oracle for gpl3_mc: each item's choice by summed log-probability, by hand.

Run as a script to write them: `python tests/host/gpl3_task.py DIR`.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import torch

from realm_hil.llm.text import load_text

MC_TASK, GEN_TASK = "gpl3_mc", "gpl3_gen"
ENDING_WORDS = 3


def sentences(text: str) -> list[list[str]]:
    """The licence's sentences of 10 to 40 words, as word lists without the final full stop."""
    flat = " ".join(text.split())
    out = []
    for raw in re.split(r"(?<=[a-z])\. (?=[A-Z])", flat):
        words = raw.rstrip(".").split()
        if 10 <= len(words) <= 40 and all(re.fullmatch(r"[A-Za-z,;'-]+", w) for w in words[-ENDING_WORDS:]):
            out.append(words)
    return out


def items(mc: int = 32, gen: int = 6, seed: int = 0) -> tuple[list[dict], list[dict]]:
    pool = sentences(load_text())
    rng = random.Random(seed)
    chosen = rng.sample(range(len(pool)), mc + gen)
    mc_items = []
    for i in chosen[:mc]:
        words = pool[i]
        others = rng.sample([j for j in range(len(pool)) if pool[j][-ENDING_WORDS:] != words[-ENDING_WORDS:]], 3)
        endings = [" ".join(words[-ENDING_WORDS:]), *(" ".join(pool[j][-ENDING_WORDS:]) for j in others)]
        order = list(range(4))
        rng.shuffle(order)
        mc_items.append({"context": " ".join(words[:-ENDING_WORDS]), "choices": [endings[k] for k in order],
                         "label": order.index(0)})
    gen_items = [{"context": f"{' '.join(pool[i])}.\n{' '.join(pool[i][:-ENDING_WORDS])}",
                  "target": " ".join(pool[i][-ENDING_WORDS:])} for i in chosen[mc:]]
    return mc_items, gen_items


def _task(name: str, data: Path, body: str) -> str:
    return (f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
            f"test_split: test\n{body}")


MC_BODY = """output_type: multiple_choice
doc_to_text: "{{context}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{label}}"
metric_list:
  - metric: acc
"""

GEN_BODY = """output_type: generate_until
doc_to_text: "{{context}}"
doc_to_target: "{{target}}"
generation_kwargs:
  until: [".", "\\n"]
  max_gen_toks: 12
  do_sample: false
filter_list:
  - name: strip
    filter:
      - function: remove_whitespace
      - function: take_first
metric_list:
  - metric: exact_match
"""


def write_task(directory: Path, mc: int = 32, gen: int = 6, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Write gpl3_mc and gpl3_gen (data and task YAML) into `directory`; returns their items."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mc_items, gen_items = items(mc, gen, seed)
    for name, rows, body in ((MC_TASK, mc_items, MC_BODY), (GEN_TASK, gen_items, GEN_BODY)):
        data = directory / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        (directory / f"{name}.yaml").write_text(_task(name, data.resolve(), body))
    return mc_items, gen_items


@torch.no_grad()
def ranking(loaded, items) -> list[int]:
    """Each item's choice of highest summed log-probability after its context (the harness's acc, by hand):
    the context and the context with " " + choice are tokenized whole, the choice's tokens are the rest."""
    tok = loaded.tokenizer
    picks = []
    for item in items:
        context = tok(item["context"], add_special_tokens=False).input_ids
        scores = []
        for choice in item["choices"]:
            whole = tok(item["context"] + " " + choice, add_special_tokens=False).input_ids
            logp = torch.log_softmax(loaded.model(torch.tensor([whole[:-1]])).logits[0].float(), dim=-1)
            scores.append(sum(logp[i - 1, whole[i]].item() for i in range(len(context), len(whole))))
        picks.append(max(range(len(scores)), key=scores.__getitem__))
    return picks


def accuracy(picks, items) -> float:
    return sum(p == item["label"] for p, item in zip(picks, items, strict=True)) / len(items)


if __name__ == "__main__":
    write_task(Path(sys.argv[1]))
    print(f"wrote {MC_TASK} and {GEN_TASK} to {sys.argv[1]}")
