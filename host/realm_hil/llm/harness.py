"""lm-evaluation-harness tasks on the model as it stands: float, W8A8, or with its GEMMs on an accelerator.

The harness's own HFLM wraps the already-loaded model object: given a PreTrainedModel it neither
reloads nor moves it (no .to(device), no parallelize), so quantize_model's QuantLinear modules and
the GemmRouter behind them stay in place, and every forward the harness makes, loglikelihood or
generation on the KV cache, runs through them. One HFLM serves the float model and, quantized in
place, every operating point. Batch size 1: a batch pads its sequences, and the padding would be
GEMM rows too, erring and flagging tiles the unbatched model does not have.

Tasks come from the harness's registry or from YAML files in an include directory (the tests
write their own). Data sets are read offline from the Hugging Face cache (llm/model.py sets
HF_DATASETS_OFFLINE); a task whose data set is not cached fails before any evaluation, saying
how to cache it. The harness is the optional extra `eval` (pip install 'realm-hil[eval]').
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from realm_hil.errors import InputError, missing_dependency
from realm_hil.llm.model import LoadedModel

# Tasks' statistics: the standard errors of metrics with a closed form (acc, exact_match) are exact;
# others (bleu, ...) are bootstrapped this many times, seeded by the harness.
BOOTSTRAP_ITERS = 1000
_PROGRESS_BAR = re.compile(r"\d+%\||it/s\]|s/it\]|examples/s\]")


def harness():
    """The lm_eval package, or a one-line MissingDependency naming the eval extra."""
    try:
        import lm_eval
        import lm_eval.models.huggingface  # noqa: F401
        import lm_eval.tasks  # noqa: F401
    except ModuleNotFoundError as err:
        missing = missing_dependency(err, "realm-hil eval")
        if missing is None:
            raise
        raise missing from None
    return lm_eval


@dataclass
class TaskResults:
    """One evaluation of the tasks: per task, its metrics (the harness's names; ',none' dropped)."""

    scores: dict[str, dict[str, float]]
    samples: dict[str, int]  # documents evaluated per task
    higher_is_better: dict[str, dict[str, bool]]

    def metrics(self) -> list[tuple[str, str]]:
        """(task, metric) pairs to show, without the standard errors."""
        return [(t, m) for t, ms in self.scores.items() for m in ms if "_stderr" not in m]


class Tasks:
    """Named harness tasks, checked and their data sets loaded before any evaluation."""

    def __init__(self, names: list[str], include_path: str | None = None) -> None:
        lm_eval = harness()
        if include_path is not None and not Path(include_path).expanduser().is_dir():
            raise InputError(f"task directory not found: {include_path}")
        self.names = list(names)
        with quiet():
            self.manager = lm_eval.tasks.TaskManager(
                include_path=None if include_path is None else str(Path(include_path).expanduser()))
        known = set(self.manager.all_tasks)
        unknown = [n for n in self.names if n not in known]
        if unknown:
            where = f" or in {include_path}" if include_path else " (add your own with --include-path DIR)"
            raise InputError(f"unknown lm-evaluation-harness task(s) {', '.join(unknown)}: not in the harness's "
                             f"registry{where}")
        for name in self.names:
            try:
                with quiet():
                    self.manager.load([name])
            except OSError as err:  # datasets: ConnectionError (offline) or FileNotFoundError
                raise InputError(
                    f"task {name}: its data set is not in the local Hugging Face cache ({_first_line(err)}); on a "
                    f"connected machine run python -c \"from lm_eval.tasks import TaskManager; "
                    f"TaskManager().load(['{name}'])\" and copy ~/.cache/huggingface to this one") from None

    def evaluate(self, lm, *, limit: int | None = None, num_fewshot: int | None = None, seed: int = 0) -> TaskResults:
        """The tasks on `lm` through lm_eval.simple_evaluate; every random choice seeded by `seed`."""
        lm_eval = harness()
        with quiet():
            out = lm_eval.simple_evaluate(
                model=lm, tasks=self.names, task_manager=self.manager, limit=limit, num_fewshot=num_fewshot,
                bootstrap_iters=BOOTSTRAP_ITERS, log_samples=False, random_seed=seed, numpy_random_seed=seed,
                torch_random_seed=seed, fewshot_random_seed=seed)
        scores = {task: {_metric(k): float(v) for k, v in values.items() if _numeric(k, v)}
                  for task, values in out["results"].items()}
        samples = {task: int(n["effective"]) for task, n in out.get("n-samples", {}).items()}
        return TaskResults(scores, samples, out.get("higher_is_better", {}))


def task_scorer(tasks: Tasks, lm, limit: int | None, seed: int) -> Callable[[], tuple[float, bool]]:
    """The first metric of the one task in `tasks` (acc, exact_match, ...) on `lm`'s model as it stands,
    and whether higher is better: `characterize --metric task:NAME` measures each point by it."""
    [name] = tasks.names

    def score() -> tuple[float, bool]:
        result = tasks.evaluate(lm, limit=limit, seed=seed)
        metric = next(m for t, m in result.metrics() if t == name)
        higher = result.higher_is_better.get(name, {}).get(metric.partition(",")[0], True)
        return result.scores[name][metric], bool(higher)

    return score


def model_lm(loaded: LoadedModel):
    """The harness's HFLM around the loaded model object itself (see the module docstring)."""
    harness()
    from lm_eval.models.huggingface import HFLM

    class QuietHFLM(HFLM):
        # the command draws its own progress bar; the harness's per-request bars would interleave with it
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return super().loglikelihood(requests, disable_tqdm=True)

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            return super().loglikelihood_rolling(requests, disable_tqdm=True)

        def generate_until(self, requests, disable_tqdm: bool = False):
            return super().generate_until(requests, disable_tqdm=True)

    with quiet():
        return QuietHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, backend="causal", batch_size=1,
                         device="cpu")


def harness_version() -> str:
    return harness().__version__


@contextlib.contextmanager
def quiet():
    """The harness's and datasets' informational logging and progress bars held back; any other
    output they write to stderr is passed on when the block ends."""
    loggers = [logging.getLogger(name) for name in ("lm_eval", "datasets", "evaluate")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        kept = [line for line in re.split(r"[\r\n]", captured.getvalue()) if line.strip()
                and not _PROGRESS_BAR.search(line)]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def _metric(key: str) -> str:
    name, _, filter_name = key.partition(",")
    return name if filter_name in ("", "none") else key


def _numeric(key: str, value) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and key not in ("alias", "name", "sample_len")


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
