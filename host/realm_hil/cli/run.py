"""`realm-hil run`: perplexity of the W8A8 model with its GEMMs on the accelerator, per clock and policy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..abft.policies import POLICIES
from ..backends.registry import backends_with
from ..campaign.executors import make_executor
from ..campaign.progress import progress_bar as campaign_bar
from ..errors import InputError
from ..experiment import RunConfig, run_experiment
from ..experiment_campaign import run_experiment_campaign
from ..fpga.manifest import BOARDS
from ..governor import KNOBS, GovernorConfig
from ..llm.offload import ACT_SCALES
from ..llm.text import WIKITEXT2
from ..offloaded import realm_bit
from ..timing.thermal import AmbientTrace, ThermalEnvironment
from .campaign_options import campaign_options
from .options import (
    MHZ,
    SEED,
    FiniteFloat,
    backend_option,
    emulate_checks_option,
    labelled_progress_bar,
    out_dir_option,
)


def _names(choices):
    def parse(_ctx, _param, value: str) -> list[str]:
        names = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise click.BadParameter(f"choose from {', '.join(choices)} (comma-separated), got {value!r}")
        return names

    return parse


def _error_models(_ctx, _param, value: str) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    try:
        for name in names:
            realm_bit(name)
    except InputError as exc:
        raise click.BadParameter(str(exc)) from None
    return names


def _ambient(_ctx, _param, value: str | None):
    if value is None:
        return None
    try:
        parts = [float(v) for v in value.split(":")]
        if len(parts) == 1:
            return AmbientTrace.constant(parts[0])
        if len(parts) == 3:
            return AmbientTrace.ramp(*parts)
    except (ValueError, InputError) as exc:
        raise click.BadParameter(f"{value!r}: {exc}") from None
    raise click.BadParameter(f"an ambient is C or START:END:SECONDS, got {value!r}")


@click.command()
@click.option("--board", "board", default=None, is_flag=False, flag_value="local",
              help="run on a PYNQ board: alone for this machine's board, --board HOST:PORT for `realm-hil serve`, "
                   "--board pynq://HOST[:PORT] for a ZU board running the PYNQ.remote image")
@click.option("--board-name", type=click.Choice(BOARDS),
              help="the overlay to load [the board's own: $BOARD on this machine's board, a pynq:// board's name]")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="bitstream manifest, the overlay files beside it [bitstreams/manifest.json]")
@backend_option
@click.option("--model", default=RunConfig.model, show_default=True,
              help="default model, .gguf path, or local HF model")
@click.option("--text", default=RunConfig.text, show_default=True,
              help="'gpl3', 'wikitext2' (if cached) or a text file")
@click.option("--dataset", type=click.Choice([WIKITEXT2]),
              help="a locally cached data set instead of --text (WikiText-2 test split)")
@click.option("--tokens", type=click.IntRange(2), help="tokens to evaluate [sim 64, board 256, twin/reference 1024]")
@click.option("--window", type=click.IntRange(2), help="perplexity window length [sim 64, else 128-256]")
@click.option("--clock-mhz", "clocks", multiple=True, type=MHZ,
              help="array clock (repeatable) [nominal and 1.18x; nominal alone when timing does not run]")
@click.option("--abft", "policies", default="none", show_default=True, callback=_names(POLICIES),
              help=f"comma-separated policies: {', '.join(POLICIES)}")
@click.option("--error-model", "error_models", default="timing", show_default=True,
              callback=_error_models,
              help="timing: the backend's own errors; realm: i.i.d. bit-30 flips at the element error rate "
                   "timing showed at the same clock on the error-free operands; realm@B: the same on bit B "
                   "(comma-separated)")
@click.option("--error-rate", type=FiniteFloat(0, 1),
              help="inject the realm models at this element error rate at every clock, on any backend, "
                   "without the timing model [the rate timing showed at the same clock]")
@click.option("--act-scale", type=click.Choice(ACT_SCALES), default="dynamic", show_default=True,
              help="dynamic: each quantizer's per-token scale from the values that arrive, errors included "
                   "(true W8A8); static-clamped: q,k,v,gate,up,down outputs re-quantized with the error-free "
                   "scale and clamped to +-127, o not, as ReaLM's injector (docs/quantization-modes.md)")
@click.option("--abft-profile", default=RunConfig.abft_profile, show_default=True,
              help="ABFT profile (name or YAML path) with the approx and statistical thresholds")
@click.option("--recover-on", type=click.Choice(["accelerator", "host"]),
              help="where flagged tiles are recomputed [a second twin/reference at nominal clock, else host]")
@click.option("--layers", default="all", show_default=True, help="decoder layers to offload, e.g. 0-3,29")
@click.option("--components", default="linear", show_default=True, help="e.g. q,k,v,o,gate,up,down or linear, all")
@click.option("--stages", default="all", show_default=True, type=click.Choice(["all", "prefill", "decode"]))
@click.option("--attention", is_flag=True, help="also offload Q.K^T and S.V")
@click.option("--profile", default="pynq-z2", show_default=True, help="device timing profile (sim, twin)")
@click.option("--seed", default=0, show_default=True, type=SEED, help="per-PE variation map and any random choice")
@click.option("--supply-v", type=FiniteFloat(0.1, 2.0),
              help="sim, twin: the array's supply voltage (VCCINT) through the profile's alpha-power law; the "
                   "profile's v_min gives the slow corner the rated clock is signed off at [the profile's nominal]")
@click.option("--force-clock", is_flag=True, help="allow clocks above the board's safety ceiling")
@emulate_checks_option
@click.option("--confirm", "confirm_on", type=click.Choice(backends_with("models_die")),
              help="rerun one point (highest clock, first protecting policy) on the first window on this second "
                   "model of the same die; its figures must be identical")
@click.option("--governor", type=click.Choice(KNOBS),
              help="a closed loop on the clock (or the supply at the rated clock) driven by the statistics unit, "
                   "one governed evaluation per --abft policy; out-dir gets its trace and plot")
@click.option("--governor-window", default=GovernorConfig.window_gemms, show_default=True, type=click.IntRange(1),
              help="GEMMs per governor window")
@click.option("--ambient", callback=_ambient,
              help="sim, twin: the die's ambient in C, constant (45) or a ramp START:END:SECONDS (25:70:600) "
                   "[the sign-off corner: slowest die, junction held at its binding temperature]")
@click.option("--time-compression", default=1.0, show_default=True, type=MHZ,
              help="modeled thermal seconds per second of array time (with --ambient)")
@click.option("--generate", default=0, show_default=True, type=click.IntRange(0),
              help="also generate this many greedy tokens per prompt and class each continuation against the "
                   "error-free W8A8 one: identical, fluent, degenerate, failed")
@click.option("--prompts", type=click.Path(dir_okay=False),
              help="prompts for --generate, one per line [8 prompts of 32 tokens cut from the text]")
@out_dir_option(None, "write results.json and table.txt here")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
@campaign_options
def run(out_dir, as_json, jobs, cluster, campaign_dir, resume, **options) -> None:
    """Perplexity and top-1 agreement of the W8A8 model on the accelerator at the nominal clock and an overclock.

    With --jobs, --cluster, --campaign-dir or --resume, each clock (with all its error models and
    policies) is a campaign point (docs/campaigns.md).
    """
    config = run_config(options)
    if jobs or cluster or campaign_dir or resume:
        directory = campaign_dir or out_dir
        if directory is None:
            raise InputError("a campaign keeps its points in a directory: give --campaign-dir or --out")
        with campaign_bar("run") as progress:
            report = run_experiment_campaign(config, directory, make_executor(jobs, cluster), resume, progress)
        _show(report, out_dir, as_json)
        return
    with labelled_progress_bar() as progress:
        report = run_experiment(config, progress)
    _show(report, out_dir, as_json)


def _show(report, out_dir, as_json: bool) -> None:
    # shown before it is saved: should the disk fail now, the figures are still on the screen
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
    if out_dir is not None:
        report.save(out_dir)
    if report.confirmation is not None and not report.confirmation.identical:
        raise SystemExit(1)  # the two models of one die disagree: a bug, shown above in the table


def run_config(options: dict) -> RunConfig:
    """The RunConfig of the run options given (`eval` takes the same ones, less the perplexity text)."""
    options = dict(options)
    board, backend = options.pop("board", None), options.pop("backend", RunConfig.backend)
    clocks, manifest, dataset = options.pop("clocks", ()), options.pop("manifest", None), options.pop("dataset", None)
    ambient, compression = options.pop("ambient", None), options.pop("time_compression", 1.0)
    if dataset:
        options["text"] = dataset
    return RunConfig(
        **options, backend="board" if board else backend, board_address=None if board in (None, "local") else board,
        clocks_mhz=list(clocks) or None, manifest=None if manifest is None else str(manifest),
        environment=None if ambient is None else ThermalEnvironment(ambient, compression),
    )


COMMANDS = [run]
